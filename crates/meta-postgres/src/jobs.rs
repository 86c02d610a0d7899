//! The durable job queue (`JobQueue`) on PostgreSQL, shared by every node.
//!
//! Times are the database's clock (`DB_NOW_MS`), as for leases, so the nodes need not agree on
//! theirs. How each operation keeps a job with one holder at a time:
//! - `claim_jobs` is one statement at READ COMMITTED that picks due, unheld jobs `FOR UPDATE
//!   SKIP LOCKED` (the oldest `limit` of each kind, through the index on (kind, run_at), then
//!   the oldest `limit` of those) and claims them. Rows locked but not claimed are let go when
//!   the statement commits. A row another claimer has locked is skipped; a row another
//!   claimer changed and committed since this statement's snapshot is locked at its newest
//!   version and its conditions checked again on that version (READ COMMITTED's re-check of a
//!   locked row), so a job claimed meanwhile is not claimed twice.
//! - `enqueue` (alone, or inside `request_scan` and `publish_vulndb`) runs at SERIALIZABLE:
//!   it locks the job's row (`FOR UPDATE`) before deciding, and a row changed by a transaction
//!   that committed after its snapshot (a claim, a finish) makes it fail to serialize and run
//!   again on the new state; two enqueuers of a new key cannot both insert (the unique index,
//!   which at SERIALIZABLE aborts the second to run again instead of erring).
//! - `renew_job` and `retry_job` are one statement each, at READ COMMITTED, changing the row
//!   only while `holder` is the caller (the condition is checked again on the newest version).
//! - `finish_job` locks the row held by the caller, then deletes it or queues it again as its
//!   `again` says, in one READ COMMITTED transaction: no enqueue can change `again` between.

use async_trait::async_trait;
use berth_meta::{Job, JobQueue, NewJob, Result};

use crate::db::{Client, exec, row, rows};
use crate::{DB_NOW_MS, PgMeta, get, to_u64};

/// Most jobs one claim takes, whatever the caller asks.
const MAX_CLAIM: usize = 1000;

/// Most bytes of a job's last error kept.
const MAX_ERROR_BYTES: usize = 4096;

/// Queues `job` (see `JobQueue::enqueue`) inside the caller's SERIALIZABLE transaction.
pub(crate) async fn enqueue(c: &Client, job: &NewJob) -> Result<bool> {
    let delay = job.delay_ms.max(0);
    let found = row(
        c,
        &format!(
            "SELECT id, holder IS NOT NULL AND claimed_until >= {DB_NOW_MS} FROM jobs
             WHERE kind = $1 AND key = $2 FOR UPDATE"
        ),
        &[&job.kind, &job.key],
    )
    .await?;
    let Some(found) = found else {
        let inserted = exec(
            c,
            &format!(
                "INSERT INTO jobs (kind, key, payload, run_at) VALUES ($1, $2, $3, {DB_NOW_MS} + $4)
                 ON CONFLICT (kind, key) DO NOTHING"
            ),
            &[&job.kind, &job.key, &job.payload, &delay],
        )
        .await?;
        // At SERIALIZABLE a row another enqueuer committed after this snapshot aborts the
        // insert (to run again), so no row here means none at all.
        return Ok(inserted == 1);
    };
    let (id, running): (i64, bool) = (get(&found, 0)?, get(&found, 1)?);
    if running {
        // Under a live claim: the holder read its payload when it claimed, so this request
        // may come after what it is doing; it runs once more when it finishes, with this
        // payload.
        exec(c, "UPDATE jobs SET again = true, payload = $2 WHERE id = $1", &[&id, &job.payload]).await?;
        return Ok(true);
    }
    // Waiting (never claimed, given back, or its claim expired): its next run covers this
    // request. It stays as it is but for becoming due at the earlier of the two times.
    exec(c, &format!("UPDATE jobs SET run_at = least(run_at, {DB_NOW_MS} + $2) WHERE id = $1"), &[&id, &delay]).await?;
    Ok(false)
}

/// `error` cut to `MAX_ERROR_BYTES` at a character boundary.
fn bounded(error: &str) -> &str {
    let mut end = error.len().min(MAX_ERROR_BYTES);
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    &error[..end]
}

#[async_trait]
impl JobQueue for PgMeta {
    async fn enqueue(&self, job: &NewJob) -> Result<bool> {
        self.write(async move |c: &Client| enqueue(c, job).await).await
    }

    async fn claim_jobs(&self, kinds: &[&str], holder: &str, lease_ms: i64, limit: usize) -> Result<Vec<Job>> {
        let limit = limit.min(MAX_CLAIM);
        if kinds.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let lease = lease_ms.max(0);
        let mut kinds: Vec<&str> = kinds.to_vec();
        kinds.sort_unstable();
        kinds.dedup();
        // A request made while an expired claim was held is covered by this run (it reads the
        // payload now), so `again` starts over.
        let claimed = self
            .single(async |c: &Client| {
                rows(
                    c,
                    &format!(
                        "WITH now AS (SELECT {DB_NOW_MS} AS t),
                         due AS (
                             SELECT d.id FROM now, unnest($1::text[]) AS k(kind),
                             LATERAL (
                                 SELECT j.id, j.run_at FROM jobs j
                                 WHERE j.kind = k.kind AND j.run_at <= now.t
                                   AND (j.holder IS NULL OR j.claimed_until < now.t)
                                 ORDER BY j.run_at, j.id LIMIT $2
                                 FOR UPDATE OF j SKIP LOCKED) d
                             ORDER BY d.run_at, d.id LIMIT $2)
                         UPDATE jobs SET holder = $3, claimed_until = now.t + $4, attempts = jobs.attempts + 1,
                             again = false
                         FROM due, now WHERE jobs.id = due.id
                         RETURNING jobs.id, jobs.kind, jobs.key, jobs.payload, jobs.attempts, jobs.run_at"
                    ),
                    &[&kinds, &limit, &holder, &lease],
                )
                .await
            })
            .await?;
        let mut out = claimed
            .iter()
            .map(|r| {
                let attempts: i32 = get(r, 4)?;
                let job = Job {
                    id: get(r, 0)?,
                    kind: get(r, 1)?,
                    key: get(r, 2)?,
                    payload: get(r, 3)?,
                    attempts: u32::try_from(attempts).unwrap_or(0),
                };
                Ok((get::<i64>(r, 5)?, job))
            })
            .collect::<Result<Vec<_>>>()?;
        // Oldest due first (an UPDATE returns its rows in no promised order).
        out.sort_by_key(|(run_at, j)| (*run_at, j.id));
        Ok(out.into_iter().map(|(_, j)| j).collect())
    }

    async fn renew_job(&self, id: i64, holder: &str, lease_ms: i64) -> Result<bool> {
        // A claim that expired but that nobody took since is still this holder's.
        let lease = lease_ms.max(0);
        self.single(async |c: &Client| {
            exec(
                c,
                &format!("UPDATE jobs SET claimed_until = {DB_NOW_MS} + $3 WHERE id = $1 AND holder = $2"),
                &[&id, &holder, &lease],
            )
            .await
            .map(|n| n > 0)
        })
        .await
    }

    async fn finish_job(&self, id: i64, holder: &str) -> Result<bool> {
        self.write_read_committed(async move |c: &Client| {
            let found =
                row(c, "SELECT again FROM jobs WHERE id = $1 AND holder = $2 FOR UPDATE", &[&id, &holder]).await?;
            let Some(found) = found else { return Ok(false) };
            if get::<bool>(&found, 0)? {
                exec(
                    c,
                    &format!(
                        "UPDATE jobs SET holder = NULL, claimed_until = NULL, again = false, run_at = {DB_NOW_MS},
                         attempts = 0, last_error = NULL WHERE id = $1"
                    ),
                    &[&id],
                )
                .await?;
            } else {
                exec(c, "DELETE FROM jobs WHERE id = $1", &[&id]).await?;
            }
            Ok(true)
        })
        .await
    }

    async fn retry_job(&self, id: i64, holder: &str, delay_ms: i64, error: &str) -> Result<bool> {
        let (delay, error) = (delay_ms.max(0), bounded(error));
        // A request made while it ran is covered by the retry, which runs anyway.
        self.single(async |c: &Client| {
            exec(
                c,
                &format!(
                    "UPDATE jobs SET holder = NULL, claimed_until = NULL, again = false,
                     run_at = {DB_NOW_MS} + $3, last_error = $4 WHERE id = $1 AND holder = $2"
                ),
                &[&id, &holder, &delay, &error],
            )
            .await
            .map(|n| n > 0)
        })
        .await
    }

    async fn queued_jobs(&self, kind: &str) -> Result<u64> {
        let found =
            self.read(async |c: &Client| row(c, "SELECT count(*) FROM jobs WHERE kind = $1", &[&kind]).await).await?;
        found.map_or(Ok(0), |r| get::<i64>(&r, 0).map(to_u64))
    }
}
