//! Scan records, inventories, scanning configuration and vulnerability-data generations
//! (`ScanMeta`) on SQLite.
//!
//! Every write runs on the single writer connection (`writer.rs`), one after another, so a
//! write that reads before it decides (a request and its one-a-day limit, a result and the
//! request it answers) sees every earlier write and nothing interleaves with it. The tables
//! live in `schema7.sql`.

use async_trait::async_trait;
use berth_meta::{
    Error, Missing, NewJob, Result, ScanKind, ScanMeta, ScanRequest, ScanRequested, ScanResult, ScanStatus,
    ScanSummary, VulnDbGeneration,
};
use berth_types::{AccountId, Digest, RepositoryKey, now_ms};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{SqliteMeta, backend, corrupt, repo_id, repository_key, to_i64, to_u64};

/// A scan record's summary columns, then its findings, of image `?2` in repository id `?1`.
pub(crate) const SCAN_SQL: &str = "SELECT kind, status, description, requested_at, completed_at, source_updated_at,
    severity_counts, findings FROM image_scans WHERE repository_id = ?1 AND digest = ?2";

type RawScan = (String, String, Option<String>, i64, Option<i64>, Option<i64>, Option<String>, Vec<u8>);

fn raw_scan(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawScan> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
}

fn to_summary(repo: &RepositoryKey, digest: &Digest, raw: RawScan) -> Result<(ScanSummary, Vec<u8>)> {
    let (kind, status, description, requested_at, completed_at, source_updated_at, severity_counts, findings) = raw;
    Ok((
        ScanSummary {
            repository: repo.clone(),
            digest: digest.clone(),
            kind: ScanKind::parse(&kind).ok_or_else(|| corrupt("scan kind"))?,
            status: ScanStatus::parse(&status).ok_or_else(|| corrupt("scan status"))?,
            description,
            requested_at,
            completed_at,
            source_updated_at,
            severity_counts,
        },
        findings,
    ))
}

/// The scan on record of an image of repository id `id`, with its findings.
fn scan(c: &Connection, id: i64, repo: &RepositoryKey, digest: &Digest) -> Result<Option<(ScanSummary, Vec<u8>)>> {
    c.prepare_cached(SCAN_SQL)
        .and_then(|mut s| s.query_row(params![id, digest.as_str()], raw_scan).optional())
        .map_err(backend)?
        .map(|raw| to_summary(repo, digest, raw))
        .transpose()
}

fn request_scan(c: &Connection, req: &ScanRequest) -> Result<ScanRequested> {
    let missing = || Error::NotFound(Missing::Image(req.repository.clone(), req.digest.clone()));
    let id = repo_id(c, &req.repository)?.ok_or_else(missing)?;
    let image = c
        .prepare_cached("SELECT 1 FROM manifests WHERE repository_id = ?1 AND digest = ?2")
        .and_then(|mut s| s.exists(params![id, req.digest.as_str()]))
        .map_err(backend)?;
    if !image {
        return Err(missing());
    }
    // The limit is decided on the record as the writes before this one left it, and nothing
    // writes between this read and the upsert below (single writer): of two requests within
    // the interval, the second sees the first's `requested_at` and is refused.
    let on_record = scan(c, id, &req.repository, &req.digest)?.map(|(s, _)| s);
    if let (Some(min), Some(s)) = (req.min_interval_ms, &on_record)
        && s.kind == req.kind
        && s.requested_at > req.now_ms.saturating_sub(min)
    {
        return Ok(ScanRequested::TooSoon(s.clone()));
    }
    // The previous findings, inventory and completion stay until a result replaces them.
    c.prepare_cached(
        "INSERT INTO image_scans (repository_id, digest, kind, status, requested_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (repository_id, digest) DO UPDATE SET kind = excluded.kind, status = excluded.status,
             description = NULL, requested_at = excluded.requested_at",
    )
    .and_then(|mut s| {
        s.execute(params![id, req.digest.as_str(), req.kind.as_str(), ScanStatus::InProgress.as_str(), req.now_ms])
    })
    .map_err(backend)?;
    // In the same write job (one savepoint): the record and its job are committed together or
    // not at all.
    crate::jobs::enqueue(c, &req.job, now_ms())?;
    let (summary, _) = scan(c, id, &req.repository, &req.digest)?.ok_or_else(missing)?;
    Ok(ScanRequested::Started(summary))
}

pub(crate) const FINISH_SQL: &str = "UPDATE image_scans SET status = ?1, description = ?2, completed_at = ?3,
    source_updated_at = ?4, severity_counts = ?5, findings = ?6, inventory = coalesce(?7, inventory)
    WHERE repository_id = (SELECT id FROM repositories WHERE registry = ?8 AND name = ?9) AND digest = ?10
      AND (?11 IS NULL OR requested_at = ?11)";

/// An image's merged inventory, by repository (`?1`, `?2`) and digest `?3`.
pub(crate) const IMAGE_INVENTORY_SQL: &str = "SELECT s.inventory FROM repositories r
    JOIN image_scans s ON s.repository_id = r.id WHERE r.registry = ?1 AND r.name = ?2 AND s.digest = ?3";

pub(crate) const LAYER_INVENTORY_SQL: &str =
    "SELECT inventory FROM layer_inventories WHERE digest = ?1 AND version = ?2";

pub(crate) const IS_GENERATION_SQL: &str = "SELECT 1 FROM vulndb_generations WHERE digest = ?1";

/// Images with an inventory after (`?1`, `?2`, `?3`) in (registry, repository, digest) order, at
/// most `?4`: a range of the repositories' key, and for each repository a range of the partial
/// index of scanned images.
pub(crate) const SCANNED_SQL: &str = "SELECT r.registry, r.name, s.digest FROM repositories r
    JOIN image_scans s ON s.repository_id = r.id
    WHERE s.inventory IS NOT NULL AND (r.registry, r.name, s.digest) > (?1, ?2, ?3)
    ORDER BY r.registry, r.name, s.digest LIMIT ?4";

/// Columns of a generation.
const GENERATION_SQL: &str =
    "SELECT digest, size, imported_at, source_updated_at, summary FROM vulndb_generations ORDER BY seq DESC LIMIT 1";

fn current_generation(c: &Connection) -> Result<Option<VulnDbGeneration>> {
    let raw: Option<(String, i64, i64, Option<i64>, String)> = c
        .prepare_cached(GENERATION_SQL)
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))).optional())
        .map_err(backend)?;
    raw.map(|(digest, size, imported_at, source_updated_at, summary)| {
        Ok(VulnDbGeneration {
            digest: Digest::parse(&digest).map_err(|_| corrupt("digest"))?,
            size: to_u64(size),
            imported_at,
            source_updated_at,
            summary,
        })
    })
    .transpose()
}

/// Whether `digest` is a recorded vulnerability-data generation (the current or the previous
/// one): garbage collection never takes one as an orphan.
pub(crate) fn is_generation(c: &Connection, digest: &str) -> Result<bool> {
    c.prepare_cached(IS_GENERATION_SQL).and_then(|mut s| s.exists([digest])).map_err(backend)
}

#[async_trait]
impl ScanMeta for SqliteMeta {
    async fn request_scan(&self, req: &ScanRequest) -> Result<ScanRequested> {
        let req = req.clone();
        self.writer.write(move |c| request_scan(c, &req)).await
    }

    async fn scan_summaries(&self, repo: &RepositoryKey, digests: &[Digest]) -> Result<Vec<Option<ScanSummary>>> {
        let (repo, digests) = (repo.clone(), digests.to_vec());
        self.readers
            .read(move |c| {
                let Some(id) = repo_id(c, &repo)? else { return Ok(vec![None; digests.len()]) };
                digests.iter().map(|d| Ok(scan(c, id, &repo, d)?.map(|(s, _)| s))).collect()
            })
            .await
    }

    async fn scan_findings(&self, repo: &RepositoryKey, digest: &Digest) -> Result<Option<(ScanSummary, Vec<u8>)>> {
        let (repo, digest) = (repo.clone(), digest.clone());
        self.readers
            .read(move |c| {
                let Some(id) = repo_id(c, &repo)? else { return Ok(None) };
                scan(c, id, &repo, &digest)
            })
            .await
    }

    async fn image_inventory(&self, repo: &RepositoryKey, digest: &Digest) -> Result<Option<Vec<u8>>> {
        let (repo, digest) = (repo.clone(), digest.clone());
        self.readers
            .read(move |c| {
                c.prepare_cached(IMAGE_INVENTORY_SQL)
                    .and_then(|mut s| {
                        s.query_row([repo.registry.as_str(), repo.name.as_str(), digest.as_str()], |r| {
                            r.get::<_, Option<Vec<u8>>>(0)
                        })
                        .optional()
                    })
                    .map(Option::flatten)
                    .map_err(backend)
            })
            .await
    }

    async fn finish_scan(&self, result: &ScanResult) -> Result<bool> {
        let r = result.clone();
        // One statement: it writes only a record that exists (so only of an image that exists:
        // the record goes with its image) and that still answers the request named.
        self.writer
            .write(move |c| {
                c.prepare_cached(FINISH_SQL)
                    .and_then(|mut s| {
                        s.execute(params![
                            r.status.as_str(),
                            r.description,
                            r.completed_at,
                            r.source_updated_at,
                            r.severity_counts,
                            r.findings,
                            r.inventory,
                            r.repository.registry.as_str(),
                            r.repository.name.as_str(),
                            r.digest.as_str(),
                            r.requested_at
                        ])
                    })
                    .map(|n| n > 0)
                    .map_err(backend)
            })
            .await
    }

    async fn layer_inventory(&self, layer: &Digest, version: u32) -> Result<Option<Vec<u8>>> {
        let layer = layer.clone();
        self.readers
            .read(move |c| {
                c.prepare_cached(LAYER_INVENTORY_SQL)
                    .and_then(|mut s| s.query_row(params![layer.as_str(), version], |r| r.get(0)).optional())
                    .map_err(backend)
            })
            .await
    }

    async fn put_layer_inventory(&self, layer: &Digest, version: u32, inventory: &[u8]) -> Result<()> {
        let (layer, inventory) = (layer.clone(), inventory.to_vec());
        // Only for a layer whose blob is recorded: the inventory goes with that record when
        // garbage collection removes it (ON DELETE CASCADE). One of an unrecorded layer (its
        // image deleted and its blob collected while it was scanned) would never be removed,
        // so it is not kept. Lazy: an inventory lost in a crash is only made again.
        self.writer
            .write_lazy(move |c| {
                c.prepare_cached(
                    "INSERT INTO layer_inventories (digest, version, inventory)
                     SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM blobs WHERE digest = ?1)
                     ON CONFLICT (digest, version) DO UPDATE SET inventory = excluded.inventory",
                )
                .and_then(|mut s| s.execute(params![layer.as_str(), version, inventory]))
                .map(drop)
                .map_err(backend)
            })
            .await
    }

    async fn scanned_images(
        &self,
        after: Option<&(RepositoryKey, Digest)>,
        limit: usize,
    ) -> Result<Vec<(RepositoryKey, Digest)>> {
        let after = after.map_or_else(
            || (String::new(), String::new(), String::new()),
            |(k, d)| (k.registry.to_string(), k.name.to_string(), d.as_str().to_owned()),
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.readers
            .read(move |c| {
                let mut stmt = c.prepare_cached(SCANNED_SQL).map_err(backend)?;
                let rows = stmt
                    .query_map(params![after.0, after.1, after.2, limit], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
                    })
                    .map_err(backend)?;
                rows.map(|row| {
                    let (registry, name, digest) = row.map_err(backend)?;
                    Ok((repository_key(&registry, &name)?, Digest::parse(&digest).map_err(|_| corrupt("digest"))?))
                })
                .collect()
            })
            .await
    }

    async fn scanning_configuration(&self, registry: &AccountId) -> Result<Option<String>> {
        let registry = registry.clone();
        self.readers
            .read(move |c| {
                c.prepare_cached("SELECT config FROM scanning_configurations WHERE registry = ?1")
                    .and_then(|mut s| s.query_row([registry.as_str()], |r| r.get(0)).optional())
                    .map_err(backend)
            })
            .await
    }

    async fn put_scanning_configuration(&self, registry: &AccountId, config: &str) -> Result<()> {
        let (registry, config) = (registry.clone(), config.to_owned());
        self.writer
            .write(move |c| {
                c.prepare_cached(
                    "INSERT INTO scanning_configurations (registry, config) VALUES (?1, ?2)
                     ON CONFLICT (registry) DO UPDATE SET config = excluded.config",
                )
                .and_then(|mut s| s.execute(params![registry.as_str(), config]))
                .map(drop)
                .map_err(backend)
            })
            .await
    }

    async fn vulndb_generation(&self) -> Result<Option<VulnDbGeneration>> {
        self.readers.read(current_generation).await
    }

    async fn publish_vulndb(&self, generation: &VulnDbGeneration, job: &NewJob) -> Result<Option<VulnDbGeneration>> {
        let (g, job) = (generation.clone(), job.clone());
        self.writer
            .write(move |c| {
                let previous = current_generation(c)?;
                // The same file published again becomes the newest generation (a fresh `seq`).
                c.prepare_cached("DELETE FROM vulndb_generations WHERE digest = ?1")
                    .and_then(|mut s| s.execute([g.digest.as_str()]))
                    .map_err(backend)?;
                c.prepare_cached(
                    "INSERT INTO vulndb_generations (digest, size, imported_at, source_updated_at, summary)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .and_then(|mut s| {
                    s.execute(params![g.digest.as_str(), to_i64(g.size), g.imported_at, g.source_updated_at, g.summary])
                })
                .map_err(backend)?;
                // The new one and the one before it stay recorded (their blobs protected from
                // garbage collection); older ones are forgotten and their blobs become garbage.
                c.prepare_cached(
                    "DELETE FROM vulndb_generations
                     WHERE seq NOT IN (SELECT seq FROM vulndb_generations ORDER BY seq DESC LIMIT 2)",
                )
                .and_then(|mut s| s.execute([]))
                .map_err(backend)?;
                // The re-match is queued in the same write job: committed with the generation
                // or not at all.
                crate::jobs::enqueue(c, &job, now_ms())?;
                Ok(previous)
            })
            .await
    }
}
