//! Garbage-collection metadata (`GcMeta`) on PostgreSQL.
//!
//! The rule and its safety argument are in `berth_registry::gc`. It needs every transaction of
//! the protocol (`put_manifest`, `reserve_blob`, `link_reserved`, `collect_blobs`,
//! `claim_orphans`, and the mounts and deletions around them) to behave as if run one at a time,
//! each seeing all that committed before it. Every one of them runs at SERIALIZABLE (see the
//! crate documentation), which gives exactly that across nodes: a history of them that commits
//! is equivalent to a serial one, and a transaction whose reads a concurrent commit made stale
//! is aborted and run again on the new state. Read-only pre-checks at READ COMMITTED only skip a
//! write when there is nothing to do; the write re-checks everything it acts on.
//!
//! The protocol's steps, and the interleavings the argument rules out:
//! - a collection and a push of a manifest naming the blob: see `put_manifest` (a);
//! - a collection and a reservation: `reserve_blob` inserts or updates the digest's touch mark
//!   only while no tombstone exists; the collection deletes the mark and inserts the tombstone.
//!   Serialized, the reservation either precedes the collection (its token is voided by the
//!   deleted mark) or follows it (it sees the tombstone and answers `Collecting`);
//! - a collection and `link_reserved`: the link checks, in its transaction, that the touch mark
//!   still has the token's id and that no tombstone exists, then records the blob. Serialized
//!   after the collection it sees the mark gone (a new mark gets a new id: identities are never
//!   reused) and records nothing; before it, the collection sees the new touch and the link and
//!   leaves the blob for the grace.

use std::collections::HashSet;

use async_trait::async_trait;
use berth_meta::{Collected, GcMeta, LinkTarget, RepositoryUsage, Reservation, Result, StorageUsage};
use berth_types::{Digest, now_ms};

use crate::db::{Client, exec, one, row, rows};
use crate::{PgMeta, complete_upload, digest, ensure_repo, get, link, repository_key, to_limit, to_u64};

/// Blobs after `$1` that no manifest references, that were last touched before `$2` and that
/// are not in `$3`, in digest order, at most `$4`.
macro_rules! candidates {
    () => {
        "SELECT b.digest, b.size FROM blobs b LEFT JOIN gc_touches t ON t.digest = b.digest
         WHERE b.digest > $1 AND greatest(b.created_at, coalesce(t.touched_at, b.created_at)) < $2
           AND NOT EXISTS (SELECT 1 FROM manifest_references r WHERE r.target = b.digest AND r.kind = 0)
           AND b.digest <> ALL($3)
         ORDER BY b.digest LIMIT $4"
    };
}

/// The same rule, reading only blobs whose touch mark is at least parameter `$since` (through
/// its index).
macro_rules! recent_candidates {
    ($since:literal) => {
        concat!(
            "SELECT b.digest, b.size FROM gc_touches t JOIN blobs b ON b.digest = t.digest
         WHERE t.touched_at >= ",
            $since,
            " AND b.digest > $1 AND greatest(b.created_at, t.touched_at) < $2
           AND NOT EXISTS (SELECT 1 FROM manifest_references r WHERE r.target = b.digest AND r.kind = 0)
           AND b.digest <> ALL($3)
         ORDER BY b.digest LIMIT $4"
        )
    };
}

/// Replaces the records, links and touch marks of the candidates with tombstones (started at
/// `$5`), and returns the candidates.
macro_rules! bury_candidates {
    ($candidates:expr) => {
        concat!(
            "WITH c AS (",
            $candidates,
            "), links AS (DELETE FROM repository_blobs WHERE digest IN (SELECT digest FROM c)),
             records AS (DELETE FROM blobs WHERE digest IN (SELECT digest FROM c)),
             marks AS (DELETE FROM gc_touches WHERE digest IN (SELECT digest FROM c)),
             stones AS (INSERT INTO gc_tombstones (digest, started_at) SELECT digest, $5 FROM c
                        ON CONFLICT (digest) DO NOTHING)
             SELECT digest, size FROM c ORDER BY digest"
        )
    };
}

/// Replaces the records, links and touch marks of the digests `$1` with tombstones started at
/// `$2`.
const BURY_SQL: &str = "
    WITH links AS (DELETE FROM repository_blobs WHERE digest = ANY($1)),
    records AS (DELETE FROM blobs WHERE digest = ANY($1)),
    marks AS (DELETE FROM gc_touches WHERE digest = ANY($1))
    INSERT INTO gc_tombstones (digest, started_at) SELECT d, $2 FROM unnest($1::text[]) AS d
    ON CONFLICT (digest) DO NOTHING";

/// Marks `$1` touched at `$2` (never moving the mark back) unless it has a tombstone; returns the
/// mark's id (the reservation token), or no row under a tombstone.
const TOUCH_SQL: &str = "
    INSERT INTO gc_touches (digest, touched_at) SELECT $1, $2
    WHERE NOT EXISTS (SELECT 1 FROM gc_tombstones WHERE digest = $1)
    ON CONFLICT (digest) DO UPDATE SET touched_at = greatest(gc_touches.touched_at, excluded.touched_at)
    RETURNING id";

async fn touch(c: &Client, digest: &str, now: i64) -> Result<Option<i64>> {
    row(c, TOUCH_SQL, &[&digest, &now]).await?.map(|r| get(&r, 0)).transpose()
}

fn collected(rows: &[tokio_postgres::Row]) -> Result<Vec<Collected>> {
    rows.iter().map(|r| Ok(Collected { digest: digest(get(r, 0)?)?, size: to_u64(get(r, 1)?) })).collect()
}

#[async_trait]
impl GcMeta for PgMeta {
    async fn reserve_blob(&self, digest: &Digest, now_ms: i64) -> Result<Reservation> {
        let token = self.write(async move |c: &Client| touch(c, digest.as_str(), now_ms).await).await?;
        Ok(token.map_or(Reservation::Collecting, Reservation::Granted))
    }

    async fn link_reserved(&self, target: &LinkTarget, digest: &Digest, size: u64, token: i64) -> Result<bool> {
        let link = async move |c: &Client| {
            let d = digest.as_str();
            let state = one(
                c,
                "SELECT (SELECT id FROM gc_touches WHERE digest = $1),
                        EXISTS (SELECT 1 FROM gc_tombstones WHERE digest = $1)",
                &[&d],
            )
            .await?;
            let (current, buried): (Option<i64>, bool) = (get(&state, 0)?, get(&state, 1)?);
            // The reservation holds only while its touch mark does (see the module
            // documentation): a collection since deleted it, and a tombstone forbids new bytes.
            if current != Some(token) || buried {
                return Ok(false);
            }
            match target {
                LinkTarget::Repository(repo, create) => {
                    let id = ensure_repo(c, repo, *create).await?;
                    link(c, id, digest, size).await?;
                }
                LinkTarget::Upload(upload) => complete_upload(c, upload, digest, size).await?,
            }
            touch(c, d, now_ms()).await?;
            Ok(true)
        };
        // Retries queue behind the other retried writes of the repository the blob goes to
        // (concurrent pushes of one repository's layers otherwise abort one another again and
        // again on its index pages).
        match target {
            LinkTarget::Repository(repo, _) => self.write_in(repo, link).await,
            LinkTarget::Upload(upload) => self.write_in_upload(upload, link).await,
        }
    }

    async fn touch_blob(&self, digest: &Digest, now_ms: i64, fresh_after_ms: i64) -> Result<()> {
        let current = self
            .read(async |c: &Client| {
                row(c, "SELECT touched_at FROM gc_touches WHERE digest = $1", &[&digest.as_str()]).await
            })
            .await?;
        if current.map(|r| get::<i64>(&r, 0)).transpose()?.is_some_and(|t| t >= fresh_after_ms) {
            return Ok(());
        }
        self.write(async move |c: &Client| touch(c, digest.as_str(), now_ms).await.map(drop)).await
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
        let after = after.map_or("", Digest::as_str);
        let exclude: Vec<&str> = exclude.iter().map(Digest::as_str).collect();
        let none: Vec<&str> = Vec::new();
        let probe = self
            .read(async |c: &Client| match touched_since {
                Some(t) => row(c, recent_candidates!("$5"), &[&after, &cutoff_ms, &none, &1i64, &t]).await,
                None => row(c, candidates!(), &[&after, &cutoff_ms, &none, &1i64]).await,
            })
            .await?;
        if probe.is_none() {
            return Ok(Vec::new());
        }
        let limit = to_limit(limit);
        // (a) The rule is checked again in this transaction and the candidates are buried by
        // the same statement; see `put_manifest` for why a racing push and this transaction
        // cannot both commit on stale reads.
        let taken = self
            .write(async move |c: &Client| match touched_since {
                Some(t) => {
                    let sql = bury_candidates!(recent_candidates!("$6"));
                    rows(c, sql, &[&after, &cutoff_ms, &exclude, &limit, &now_ms, &t]).await
                }
                None => {
                    rows(c, bury_candidates!(candidates!()), &[&after, &cutoff_ms, &exclude, &limit, &now_ms]).await
                }
            })
            .await?;
        collected(&taken)
    }

    async fn claim_orphans(&self, digests: &[Digest], cutoff_ms: i64, now_ms: i64) -> Result<Vec<Digest>> {
        let mut seen = HashSet::new();
        let all: Vec<&str> = digests.iter().map(Digest::as_str).filter(|d| seen.insert(*d)).collect();
        if all.is_empty() {
            return Ok(Vec::new());
        }
        let unrecorded = self
            .read(async |c: &Client| {
                rows(
                    c,
                    "SELECT d FROM unnest($1::text[]) AS d WHERE NOT EXISTS (SELECT 1 FROM blobs WHERE digest = d)
                     AND NOT EXISTS (SELECT 1 FROM vulndb_generations WHERE digest = d)",
                    &[&all],
                )
                .await
            })
            .await?;
        let unrecorded: Vec<String> = unrecorded.iter().map(|r| get(r, 0)).collect::<Result<_>>()?;
        if unrecorded.is_empty() {
            return Ok(Vec::new());
        }
        let taken = self
            .write(async move |c: &Client| {
                let state = rows(
                    c,
                    "SELECT x.d, EXISTS (SELECT 1 FROM blobs WHERE digest = x.d)
                                 OR EXISTS (SELECT 1 FROM vulndb_generations WHERE digest = x.d),
                            EXISTS (SELECT 1 FROM gc_tombstones WHERE digest = x.d),
                            (SELECT touched_at FROM gc_touches WHERE digest = x.d)
                     FROM unnest($1::text[]) WITH ORDINALITY AS x(d, i) ORDER BY x.i",
                    &[&unrecorded],
                )
                .await?;
                // A recorded vulnerability-data generation (the current or the previous one) is a
                // file no repository links, kept while recorded: never an orphan. A publish
                // racing this transaction is serialized with it (it writes the rows read here);
                // one serialized after it places bytes reserved beforehand, whose touch mark
                // keeps them through the grace period.
                let (mut first_seen, mut taken) = (Vec::new(), Vec::new());
                for r in &state {
                    let (d, recorded, buried, touched): (String, bool, bool, Option<i64>) =
                        (get(r, 0)?, get(r, 1)?, get(r, 2)?, get(r, 3)?);
                    if recorded || buried {
                        continue;
                    }
                    match touched {
                        None => first_seen.push(d),
                        Some(t) if t >= cutoff_ms => {}
                        Some(_) => taken.push(d),
                    }
                }
                if !first_seen.is_empty() {
                    exec(
                        c,
                        "INSERT INTO gc_touches (digest, touched_at) SELECT d, $2 FROM unnest($1::text[]) AS d
                         ON CONFLICT (digest) DO UPDATE SET touched_at = greatest(gc_touches.touched_at, excluded.touched_at)",
                        &[&first_seen, &now_ms],
                    )
                    .await?;
                }
                if !taken.is_empty() {
                    exec(c, BURY_SQL, &[&taken, &now_ms]).await?;
                }
                Ok(taken)
            })
            .await?;
        taken.iter().map(|d| digest(d)).collect()
    }

    async fn tombstones(&self, limit: usize) -> Result<Vec<Digest>> {
        let found = self
            .read(async |c: &Client| {
                rows(c, "SELECT digest FROM gc_tombstones ORDER BY started_at, digest LIMIT $1", &[&to_limit(limit)])
                    .await
            })
            .await?;
        found.iter().map(|r| digest(get(r, 0)?)).collect()
    }

    async fn finish_tombstones(&self, digests: &[Digest]) -> Result<()> {
        if digests.is_empty() {
            return Ok(());
        }
        let digests: Vec<&str> = digests.iter().map(Digest::as_str).collect();
        self.write(async move |c: &Client| {
            exec(c, "DELETE FROM gc_tombstones WHERE digest = ANY($1)", &[&digests]).await.map(drop)
        })
        .await
    }

    async fn forget_touches(&self, cutoff_ms: i64, exclude: &[Digest]) -> Result<u64> {
        const STALE: &str = "FROM gc_touches t WHERE t.touched_at < $1
            AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = t.digest)";
        let any =
            self.read(async |c: &Client| row(c, &format!("SELECT 1 {STALE} LIMIT 1"), &[&cutoff_ms]).await).await?;
        if any.is_none() {
            return Ok(0);
        }
        let exclude: Vec<&str> = exclude.iter().map(Digest::as_str).collect();
        self.write(async move |c: &Client| {
            exec(
                c,
                "DELETE FROM gc_touches t WHERE t.touched_at < $1
                 AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = t.digest) AND t.digest <> ALL($2)",
                &[&cutoff_ms, &exclude],
            )
            .await
        })
        .await
    }

    async fn storage_usage(&self) -> Result<StorageUsage> {
        let (per_repository, totals) = self
            .read(async |c: &Client| {
                let per_repository = rows(
                    c,
                    "SELECT r.registry, r.name,
                        (SELECT count(*) FROM manifests m WHERE m.repository_id = r.id),
                        (SELECT coalesce(sum(m.size), 0) FROM manifests m WHERE m.repository_id = r.id)::bigint,
                        (SELECT count(*) FROM blobs b WHERE b.digest IN (SELECT x.target
                            FROM manifest_references x WHERE x.repository_id = r.id AND x.kind = 0)),
                        (SELECT coalesce(sum(b.size), 0) FROM blobs b WHERE b.digest IN (SELECT x.target
                            FROM manifest_references x WHERE x.repository_id = r.id AND x.kind = 0))::bigint
                     FROM repositories r ORDER BY r.registry, r.name",
                    &[],
                )
                .await?;
                let totals = one(
                    c,
                    "SELECT (SELECT count(*) FROM blobs), (SELECT coalesce(sum(size), 0) FROM blobs)::bigint,
                            (SELECT coalesce(sum(size), 0) FROM manifests)::bigint",
                    &[],
                )
                .await?;
                Ok((per_repository, totals))
            })
            .await?;
        let repositories = per_repository
            .iter()
            .map(|r| {
                Ok(RepositoryUsage {
                    repository: repository_key(get(r, 0)?, get(r, 1)?)?,
                    manifests: to_u64(get(r, 2)?),
                    manifest_bytes: to_u64(get(r, 3)?),
                    blobs: to_u64(get(r, 4)?),
                    blob_bytes: to_u64(get(r, 5)?),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(StorageUsage {
            repositories,
            blobs: to_u64(get(&totals, 0)?),
            blob_bytes: to_u64(get(&totals, 1)?),
            manifest_bytes: to_u64(get(&totals, 2)?),
        })
    }
}
