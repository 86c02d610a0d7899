//! Garbage-collection metadata (`GcMeta`) on SQLite.
//!
//! Every method that decides anything runs on the single writer connection, so it is
//! serialized with every other write, `put_manifest`'s reference check included: each sees
//! the database exactly as the writes before it left it. That is the property the rule in
//! `berth_registry::gc` needs. Read-only pre-checks on the reader pool only skip a write when
//! there is nothing to do; the write re-checks everything it acts on.
//!
//! The tables live in `schema5.sql`, one of the numbered migrations (`migrate.rs`).

use std::collections::HashSet;

use async_trait::async_trait;
use berth_meta::{Collected, GcMeta, LinkTarget, RepositoryUsage, Reservation, Result, StorageUsage};
use berth_types::{Digest, now_ms};
use rusqlite::{Connection, OptionalExtension, params};

use berth_meta::{Error, Missing};

use crate::scan::is_generation;
use crate::{SqliteMeta, backend, corrupt, ensure_repo, link, repository_key, to_u64, upload_repository};

/// Creates the garbage-collection tables and trigger if they are missing.
/// Blobs after `?1` that no manifest references and that were last touched before `?2`, in
/// digest order.
const CANDIDATES_SQL: &str = "
    SELECT b.digest, b.size FROM blobs b LEFT JOIN gc_touches t ON t.digest = b.digest
    WHERE b.digest > ?1 AND max(b.created_at, coalesce(t.touched_at, b.created_at)) < ?2
      AND NOT EXISTS (SELECT 1 FROM manifest_references r WHERE r.target = b.digest AND r.kind = 0)
    ORDER BY b.digest";

/// The same rule, reading only blobs whose touch mark is at least `?3` (through its index).
const RECENT_CANDIDATES_SQL: &str = "
    SELECT b.digest, b.size FROM gc_touches t JOIN blobs b ON b.digest = t.digest
    WHERE t.touched_at >= ?3 AND b.digest > ?1 AND max(b.created_at, t.touched_at) < ?2
      AND NOT EXISTS (SELECT 1 FROM manifest_references r WHERE r.target = b.digest AND r.kind = 0)
    ORDER BY b.digest";

/// Up to `limit` candidates that are not in `exclude` (touched since `since`, if given).
fn candidates(
    c: &Connection,
    after: &str,
    cutoff: i64,
    limit: usize,
    exclude: &HashSet<Digest>,
    since: Option<i64>,
) -> Result<Vec<Collected>> {
    let mut stmt =
        c.prepare_cached(if since.is_some() { RECENT_CANDIDATES_SQL } else { CANDIDATES_SQL }).map_err(backend)?;
    let mut rows = match since {
        Some(t) => stmt.query(params![after, cutoff, t]),
        None => stmt.query(params![after, cutoff]),
    }
    .map_err(backend)?;
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(row) = rows.next().map_err(backend)? else { break };
        let digest = Digest::parse(&row.get::<_, String>(0).map_err(backend)?).map_err(|_| corrupt("digest"))?;
        if !exclude.contains(&digest) {
            out.push(Collected { digest, size: to_u64(row.get(1).map_err(backend)?) });
        }
    }
    Ok(out)
}

fn exists(c: &Connection, sql: &str, digest: &str) -> Result<bool> {
    c.prepare_cached(sql).and_then(|mut s| s.exists([digest])).map_err(backend)
}

fn has_record(c: &Connection, digest: &str) -> Result<bool> {
    exists(c, "SELECT 1 FROM blobs WHERE digest = ?1", digest)
}

fn has_tombstone(c: &Connection, digest: &str) -> Result<bool> {
    exists(c, "SELECT 1 FROM gc_tombstones WHERE digest = ?1", digest)
}

fn touched_at(c: &Connection, digest: &str) -> Result<Option<i64>> {
    c.prepare_cached("SELECT touched_at FROM gc_touches WHERE digest = ?1")
        .and_then(|mut s| s.query_row([digest], |r| r.get(0)).optional())
        .map_err(backend)
}

/// Marks `digest` touched at `now` (never moving the mark back), unless it has a tombstone.
/// Returns the mark's id (the reservation token), or `None` under a tombstone.
fn touch(c: &Connection, digest: &str, now: i64) -> Result<Option<i64>> {
    c.prepare_cached(
        "INSERT INTO gc_touches (digest, touched_at) SELECT ?1, ?2
         WHERE NOT EXISTS (SELECT 1 FROM gc_tombstones WHERE digest = ?1)
         ON CONFLICT (digest) DO UPDATE SET touched_at = max(touched_at, excluded.touched_at)
         RETURNING id",
    )
    .and_then(|mut s| s.query_row(params![digest, now], |r| r.get(0)).optional())
    .map_err(backend)
}

/// Replaces a digest's records and touch mark with a tombstone. The layer inventories of the
/// digest go with its `blobs` row (ON DELETE CASCADE, `schema7.sql`).
fn bury(c: &Connection, digest: &str, now: i64) -> Result<()> {
    for sql in [
        "DELETE FROM repository_blobs WHERE digest = ?1",
        "DELETE FROM blobs WHERE digest = ?1",
        "DELETE FROM gc_touches WHERE digest = ?1",
    ] {
        c.prepare_cached(sql).and_then(|mut s| s.execute([digest])).map_err(backend)?;
    }
    c.prepare_cached("INSERT INTO gc_tombstones (digest, started_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING")
        .and_then(|mut s| s.execute(params![digest, now]))
        .map_err(backend)?;
    Ok(())
}

fn count(c: &Connection, sql: &str) -> Result<(u64, u64)> {
    c.prepare_cached(sql)
        .and_then(|mut s| s.query_row([], |r| Ok((to_u64(r.get(0)?), to_u64(r.get(1)?)))))
        .map_err(backend)
}

#[async_trait]
impl GcMeta for SqliteMeta {
    async fn reserve_blob(&self, digest: &Digest, now_ms: i64) -> Result<Reservation> {
        let digest = digest.clone();
        // Lazy: a reservation lost in a crash only leaves bytes without a mark, which are
        // treated as first seen by the next collection.
        self.writer
            .write_lazy(move |c| {
                Ok(touch(c, digest.as_str(), now_ms)?.map_or(Reservation::Collecting, Reservation::Granted))
            })
            .await
    }

    async fn link_reserved(&self, target: &LinkTarget, digest: &Digest, size: u64, token: i64) -> Result<bool> {
        let fresh = match target {
            LinkTarget::Upload(id) => self.fresh().remove(id),
            LinkTarget::Repository(..) => None,
        };
        let (target, digest) = (target.clone(), digest.clone());
        self.writer
            .write(move |c| {
                let d = digest.as_str();
                let current = c
                    .prepare_cached("SELECT id FROM gc_touches WHERE digest = ?1")
                    .and_then(|mut s| s.query_row([d], |r| r.get::<_, i64>(0)).optional())
                    .map_err(backend)?;
                if current != Some(token) || has_tombstone(c, d)? {
                    return Ok(false);
                }
                match (&target, fresh) {
                    (LinkTarget::Repository(repo, create), _) => {
                        let id = ensure_repo(c, repo, *create)?;
                        link(c, id, &digest, size)?;
                    }
                    (LinkTarget::Upload(_), Some((s, create))) => {
                        let id = ensure_repo(c, &s.repository, create)?;
                        link(c, id, &digest, size)?;
                    }
                    (LinkTarget::Upload(upload), None) => {
                        let id = upload_repository(c, upload)?
                            .ok_or_else(|| Error::NotFound(Missing::Upload(upload.clone())))?;
                        link(c, id, &digest, size)?;
                        c.prepare_cached("DELETE FROM uploads WHERE id = ?1")
                            .and_then(|mut s| s.execute([upload.as_str()]))
                            .map_err(backend)?;
                    }
                }
                touch(c, d, now_ms())?;
                Ok(true)
            })
            .await
    }

    async fn touch_blob(&self, digest: &Digest, now_ms: i64, fresh_after_ms: i64) -> Result<()> {
        let d = digest.clone();
        let current = self.readers.read(move |c| touched_at(c, d.as_str())).await?;
        if current.is_some_and(|t| t >= fresh_after_ms) {
            return Ok(());
        }
        let digest = digest.clone();
        self.writer.write_lazy(move |c| touch(c, digest.as_str(), now_ms).map(drop)).await
    }

    async fn collect_blobs(
        &self,
        cutoff_ms: i64,
        now_ms: i64,
        after: Option<&Digest>,
        limit: usize,
        exclude: &[Digest],
        touched_since: Option<i64>,
    ) -> Result<Vec<Collected>> {
        let after = after.map_or_else(String::new, |d| d.as_str().to_owned());
        let probe = after.clone();
        let found =
            self.readers.read(move |c| candidates(c, &probe, cutoff_ms, 1, &HashSet::new(), touched_since)).await?;
        if found.is_empty() {
            return Ok(Vec::new());
        }
        let exclude: HashSet<Digest> = exclude.iter().cloned().collect();
        self.writer
            .write(move |c| {
                let taken = candidates(c, &after, cutoff_ms, limit, &exclude, touched_since)?;
                for b in &taken {
                    bury(c, b.digest.as_str(), now_ms)?;
                }
                Ok(taken)
            })
            .await
    }

    async fn claim_orphans(&self, digests: &[Digest], cutoff_ms: i64, now_ms: i64) -> Result<Vec<Digest>> {
        let all = digests.to_vec();
        let unrecorded = self
            .readers
            .read(move |c| {
                let mut out = Vec::new();
                for d in all {
                    if !has_record(c, d.as_str())? && !is_generation(c, d.as_str())? {
                        out.push(d);
                    }
                }
                Ok(out)
            })
            .await?;
        if unrecorded.is_empty() {
            return Ok(Vec::new());
        }
        self.writer
            .write(move |c| {
                let mut taken = Vec::new();
                for d in unrecorded {
                    let s = d.as_str();
                    // A recorded vulnerability-data generation is a file no repository links,
                    // kept while recorded: never an orphan. `publish_vulndb` runs on this same
                    // writer, so it is recorded before this check or recorded after it (and then
                    // its bytes were placed after a reservation whose touch mark keeps them
                    // through the grace period).
                    if has_record(c, s)? || has_tombstone(c, s)? || is_generation(c, s)? {
                        continue;
                    }
                    match touched_at(c, s)? {
                        None => {
                            touch(c, s, now_ms)?;
                        }
                        Some(t) if t >= cutoff_ms => {}
                        Some(_) => {
                            bury(c, s, now_ms)?;
                            taken.push(d);
                        }
                    }
                }
                Ok(taken)
            })
            .await
    }

    async fn tombstones(&self, limit: usize) -> Result<Vec<Digest>> {
        self.readers
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached("SELECT digest FROM gc_tombstones ORDER BY started_at, digest LIMIT ?1")
                    .map_err(backend)?;
                let rows = stmt
                    .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| r.get::<_, String>(0))
                    .map_err(backend)?;
                rows.map(|d| Digest::parse(&d.map_err(backend)?).map_err(|_| corrupt("digest"))).collect()
            })
            .await
    }

    async fn finish_tombstones(&self, digests: &[Digest]) -> Result<()> {
        if digests.is_empty() {
            return Ok(());
        }
        let digests = digests.to_vec();
        self.writer
            .write(move |c| {
                let mut stmt = c.prepare_cached("DELETE FROM gc_tombstones WHERE digest = ?1").map_err(backend)?;
                for d in &digests {
                    stmt.execute([d.as_str()]).map_err(backend)?;
                }
                Ok(())
            })
            .await
    }

    async fn forget_touches(&self, cutoff_ms: i64, exclude: &[Digest]) -> Result<u64> {
        let any = self
            .readers
            .read(move |c| {
                c.prepare_cached(
                    "SELECT 1 FROM gc_touches t WHERE t.touched_at < ?1
                     AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = t.digest)",
                )
                .and_then(|mut s| s.exists([cutoff_ms]))
                .map_err(backend)
            })
            .await?;
        if !any {
            return Ok(0);
        }
        let exclude: HashSet<Digest> = exclude.iter().cloned().collect();
        self.writer
            .write(move |c| {
                let stale: Vec<String> = c
                    .prepare_cached(
                        "SELECT t.digest FROM gc_touches t WHERE t.touched_at < ?1
                         AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = t.digest)",
                    )
                    .and_then(|mut s| s.query_map([cutoff_ms], |r| r.get(0))?.collect())
                    .map_err(backend)?;
                let mut delete = c.prepare_cached("DELETE FROM gc_touches WHERE digest = ?1").map_err(backend)?;
                let mut n = 0;
                for d in stale {
                    if !Digest::parse(&d).is_ok_and(|d| exclude.contains(&d)) {
                        n += delete.execute([d.as_str()]).map_err(backend)? as u64;
                    }
                }
                Ok(n)
            })
            .await
    }

    async fn storage_usage(&self) -> Result<StorageUsage> {
        self.readers
            .read(|c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT r.registry, r.name,
                            (SELECT count(*) FROM manifests m WHERE m.repository_id = r.id),
                            (SELECT coalesce(sum(m.size), 0) FROM manifests m WHERE m.repository_id = r.id),
                            (SELECT count(*) FROM blobs b WHERE b.digest IN (SELECT x.target
                                FROM manifest_references x WHERE x.repository_id = r.id AND x.kind = 0)),
                            (SELECT coalesce(sum(b.size), 0) FROM blobs b WHERE b.digest IN (SELECT x.target
                                FROM manifest_references x WHERE x.repository_id = r.id AND x.kind = 0))
                         FROM repositories r ORDER BY r.registry, r.name",
                    )
                    .map_err(backend)?;
                let rows = stmt
                    .query_map([], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get::<_, i64>(5)?,
                        ))
                    })
                    .map_err(backend)?;
                let repositories = rows
                    .map(|row| {
                        let (registry, name, manifests, manifest_bytes, blobs, blob_bytes) = row.map_err(backend)?;
                        Ok(RepositoryUsage {
                            repository: repository_key(&registry, &name)?,
                            manifests: to_u64(manifests),
                            manifest_bytes: to_u64(manifest_bytes),
                            blobs: to_u64(blobs),
                            blob_bytes: to_u64(blob_bytes),
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                let (blobs, blob_bytes) = count(c, "SELECT count(*), coalesce(sum(size), 0) FROM blobs")?;
                let (_, manifest_bytes) = count(c, "SELECT count(*), coalesce(sum(size), 0) FROM manifests")?;
                Ok(StorageUsage { repositories, blobs, blob_bytes, manifest_bytes })
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread")]
    async fn gc_conformance() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            super::SqliteMeta::open(&dir.path().join("meta.db"), &crate::tests::default_account()).await.unwrap();
        berth_meta::testsuite::run_gc(&store).await;
        store.close().await;
        // Reopening applies the garbage-collection schema again, harmlessly.
        let store =
            super::SqliteMeta::open(&dir.path().join("meta.db"), &crate::tests::default_account()).await.unwrap();
        assert!(berth_meta::GcMeta::tombstones(&store, 10).await.unwrap().is_empty());
    }
}
