//! The durable job queue (`JobQueue`) on SQLite.
//!
//! Every decision runs on the single writer connection (`writer.rs`), one job after another:
//! each sees every earlier write, so reading a job's row and then changing it cannot interleave
//! with another claimer, enqueuer or holder. Times are this process's clock, which is the
//! store's clock: one process serves a data directory. Read-only pre-checks on the reader pool
//! only skip a write when there is nothing to do; the write checks again.

use async_trait::async_trait;
use berth_meta::{Job, JobQueue, NewJob, Result};
use berth_types::now_ms;
use rusqlite::{Connection, OptionalExtension, params};

use crate::{SqliteMeta, backend, to_u64};

/// Most jobs one claim takes, whatever the caller asks.
const MAX_CLAIM: usize = 1000;

pub(crate) const JOB_BY_KEY_SQL: &str = "SELECT id, holder, claimed_until FROM jobs WHERE kind = ?1 AND key = ?2";

/// Queues `job` at `now` (see `JobQueue::enqueue`); also the step of `request_scan` and
/// `publish_vulndb`, inside their transactions.
pub(crate) fn enqueue(c: &Connection, job: &NewJob, now: i64) -> Result<bool> {
    let run_at = now.saturating_add(job.delay_ms.max(0));
    let found: Option<(i64, Option<String>, Option<i64>)> = c
        .prepare_cached(JOB_BY_KEY_SQL)
        .and_then(|mut s| s.query_row([&job.kind, &job.key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional())
        .map_err(backend)?;
    match found {
        None => {
            c.prepare_cached("INSERT INTO jobs (kind, key, payload, run_at) VALUES (?1, ?2, ?3, ?4)")
                .and_then(|mut s| s.execute(params![job.kind, job.key, job.payload, run_at]))
                .map_err(backend)?;
            Ok(true)
        }
        // Running under a live claim: the holder read its payload when it claimed, so this
        // request may come after what it is doing; it runs once more when it finishes, with
        // this payload.
        Some((id, Some(_), Some(until))) if until >= now => {
            c.prepare_cached("UPDATE jobs SET again = 1, payload = ?2 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![id, job.payload]))
                .map_err(backend)?;
            Ok(true)
        }
        // Waiting (never claimed, given back, or its claim expired): its next run covers this
        // request. It stays as it is but for becoming due at the earlier of the two times.
        Some((id, ..)) => {
            c.prepare_cached("UPDATE jobs SET run_at = min(run_at, ?2) WHERE id = ?1")
                .and_then(|mut s| s.execute(params![id, run_at]))
                .map_err(backend)?;
            Ok(false)
        }
    }
}

/// Due jobs of kind `?1` that no live claim holds at `?2`, oldest due first, at most `?3`: a
/// range of the index on (kind, run_at), which stops after `?3` rows (passing over the held
/// ones).
pub(crate) const DUE_SQL: &str = "SELECT run_at, id FROM jobs
    WHERE kind = ?1 AND run_at <= ?2 AND (holder IS NULL OR claimed_until < ?2)
    ORDER BY run_at, id LIMIT ?3";

/// Up to `limit` due jobs of `kinds`, oldest due first: the oldest `limit` of each kind, merged.
fn due(c: &Connection, kinds: &[String], now: i64, limit: usize) -> Result<Vec<i64>> {
    let mut stmt = c.prepare_cached(DUE_SQL).map_err(backend)?;
    let mut found: Vec<(i64, i64)> = Vec::new();
    for kind in kinds {
        let rows = stmt
            .query_map(params![kind, now, i64::try_from(limit).unwrap_or(i64::MAX)], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(backend)?;
        for row in rows {
            found.push(row.map_err(backend)?);
        }
    }
    found.sort_unstable();
    found.truncate(limit);
    Ok(found.into_iter().map(|(_, id)| id).collect())
}

fn attempts(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[async_trait]
impl JobQueue for SqliteMeta {
    async fn enqueue(&self, job: &NewJob) -> Result<bool> {
        let job = job.clone();
        self.writer.write(move |c| enqueue(c, &job, now_ms())).await
    }

    async fn claim_jobs(&self, kinds: &[&str], holder: &str, lease_ms: i64, limit: usize) -> Result<Vec<Job>> {
        let limit = limit.min(MAX_CLAIM);
        if kinds.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let probe = kinds.clone();
        if self.readers.read(move |c| due(c, &probe, now_ms(), 1)).await?.is_empty() {
            return Ok(Vec::new());
        }
        let holder = holder.to_owned();
        // Lazy: a claim lost in a crash leaves the job unclaimed, and it is claimed again (the
        // queue promises at least once, not once).
        self.writer
            .write_lazy(move |c| {
                let now = now_ms();
                let until = now.saturating_add(lease_ms.max(0));
                let mut take = c
                    .prepare_cached(
                        "UPDATE jobs SET holder = ?2, claimed_until = ?3, attempts = attempts + 1, again = 0
                         WHERE id = ?1 RETURNING kind, key, payload, attempts",
                    )
                    .map_err(backend)?;
                let mut out = Vec::new();
                // Chosen and claimed in one write job, so no other claimer sees them unclaimed.
                // A request made while an expired claim was held is covered by this run (it
                // reads the payload now), so `again` starts over.
                for id in due(c, &kinds, now, limit)? {
                    let (kind, key, payload, n) = take
                        .query_row(params![id, holder, until], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)?))
                        })
                        .map_err(backend)?;
                    out.push(Job { id, kind, key, payload, attempts: attempts(n) });
                }
                Ok(out)
            })
            .await
    }

    async fn renew_job(&self, id: i64, holder: &str, lease_ms: i64) -> Result<bool> {
        let holder = holder.to_owned();
        self.writer
            .write_lazy(move |c| {
                // A claim that expired but that nobody took since is still this holder's.
                c.prepare_cached("UPDATE jobs SET claimed_until = ?3 WHERE id = ?1 AND holder = ?2")
                    .and_then(|mut s| s.execute(params![id, holder, now_ms().saturating_add(lease_ms.max(0))]))
                    .map(|n| n > 0)
                    .map_err(backend)
            })
            .await
    }

    async fn finish_job(&self, id: i64, holder: &str) -> Result<bool> {
        let holder = holder.to_owned();
        self.writer
            .write(move |c| {
                let again: Option<bool> = c
                    .prepare_cached("SELECT again FROM jobs WHERE id = ?1 AND holder = ?2")
                    .and_then(|mut s| s.query_row(params![id, holder], |r| r.get(0)).optional())
                    .map_err(backend)?;
                match again {
                    None => Ok(false),
                    Some(true) => {
                        c.prepare_cached(
                            "UPDATE jobs SET holder = NULL, claimed_until = NULL, again = 0, run_at = ?2,
                             attempts = 0, last_error = NULL WHERE id = ?1",
                        )
                        .and_then(|mut s| s.execute(params![id, now_ms()]))
                        .map_err(backend)?;
                        Ok(true)
                    }
                    Some(false) => {
                        c.prepare_cached("DELETE FROM jobs WHERE id = ?1")
                            .and_then(|mut s| s.execute([id]))
                            .map_err(backend)?;
                        Ok(true)
                    }
                }
            })
            .await
    }

    async fn retry_job(&self, id: i64, holder: &str, delay_ms: i64, error: &str) -> Result<bool> {
        let (holder, error) = (holder.to_owned(), bounded(error));
        self.writer
            .write(move |c| {
                // A request made while it ran is covered by the retry, which runs anyway.
                c.prepare_cached(
                    "UPDATE jobs SET holder = NULL, claimed_until = NULL, again = 0, run_at = ?3, last_error = ?4
                     WHERE id = ?1 AND holder = ?2",
                )
                .and_then(|mut s| s.execute(params![id, holder, now_ms().saturating_add(delay_ms.max(0)), error]))
                .map(|n| n > 0)
                .map_err(backend)
            })
            .await
    }

    async fn queued_jobs(&self, kind: &str) -> Result<u64> {
        let kind = kind.to_owned();
        self.readers
            .read(move |c| {
                c.prepare_cached("SELECT count(*) FROM jobs WHERE kind = ?1")
                    .and_then(|mut s| s.query_row([kind], |r| r.get(0)))
                    .map(to_u64)
                    .map_err(backend)
            })
            .await
    }
}

/// Most bytes of a job's last error kept.
const MAX_ERROR_BYTES: usize = 4096;

/// `error` cut to `MAX_ERROR_BYTES` at a character boundary.
pub(crate) fn bounded(error: &str) -> String {
    let mut end = error.len().min(MAX_ERROR_BYTES);
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    error[..end].to_owned()
}
