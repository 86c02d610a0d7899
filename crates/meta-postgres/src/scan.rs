//! Scan records, inventories, scanning configuration and vulnerability-data generations
//! (`ScanMeta`) on PostgreSQL.
//!
//! Every write that reads before it decides runs at SERIALIZABLE (see the crate
//! documentation), so each argument made for SQLite's single writer holds here as written:
//! - two requests of one image within the interval: each reads the image's record (or its
//!   absence) and writes it, so they cannot both commit on the same read; the one serialized
//!   second runs again, sees the first's `requested_at` and is refused;
//! - a request and the image's deletion: the request reads the manifest row and the deletion
//!   removes it (its record with it, ON DELETE CASCADE); serialized, the request either comes
//!   first (and its record goes with the image) or after (and answers `NotFound`);
//! - a result and a newer request: the result's `UPDATE` names the `requested_at` it answers,
//!   and a record a concurrent request rewrote after this transaction's snapshot makes it run
//!   again, on the new record, which no longer matches.

use async_trait::async_trait;
use berth_meta::{
    Error, Missing, NewJob, Result, ScanKind, ScanMeta, ScanRequest, ScanRequested, ScanResult, ScanStatus,
    ScanSummary, VulnDbGeneration,
};
use berth_types::{AccountId, Digest, RepositoryKey};
use tokio_postgres::Row;

use crate::db::{Client, exec, row, rows};
use crate::jobs::enqueue;
use crate::{PgMeta, corrupt, digest, get, repository_key, to_i64, to_u64};

/// A scan's summary columns (from column 0), then its findings.
macro_rules! scan_columns {
    () => {
        "s.kind, s.status, s.description, s.requested_at, s.completed_at, s.source_updated_at, s.severity_counts"
    };
}

/// The scan on record of image `$3` of repository (`$1`, `$2`), with its findings.
const SCAN_SQL: &str = concat!(
    "SELECT ",
    scan_columns!(),
    ", s.findings FROM repositories r JOIN image_scans s ON s.repository_id = r.id
     WHERE r.registry = $1 AND r.name = $2 AND s.digest = $3"
);

fn summary(r: &Row, repo: &RepositoryKey, digest: &Digest) -> Result<ScanSummary> {
    Ok(ScanSummary {
        repository: repo.clone(),
        digest: digest.clone(),
        kind: ScanKind::parse(get(r, 0)?).ok_or_else(|| corrupt("scan kind"))?,
        status: ScanStatus::parse(get(r, 1)?).ok_or_else(|| corrupt("scan status"))?,
        description: get(r, 2)?,
        requested_at: get(r, 3)?,
        completed_at: get(r, 4)?,
        source_updated_at: get(r, 5)?,
        severity_counts: get(r, 6)?,
    })
}

async fn scan(c: &Client, repo: &RepositoryKey, digest: &Digest) -> Result<Option<(ScanSummary, Vec<u8>)>> {
    let found = row(c, SCAN_SQL, &[&repo.registry.as_str(), &repo.name.as_str(), &digest.as_str()]).await?;
    found.map(|r| Ok((summary(&r, repo, digest)?, get(&r, 7)?))).transpose()
}

const FINISH_SQL: &str = "UPDATE image_scans SET status = $1, description = $2, completed_at = $3,
    source_updated_at = $4, severity_counts = $5, findings = $6, inventory = coalesce($7, inventory)
    WHERE repository_id = (SELECT id FROM repositories WHERE registry = $8 AND name = $9) AND digest = $10
      AND ($11::bigint IS NULL OR requested_at = $11)";

const GENERATION_SQL: &str =
    "SELECT digest, size, imported_at, source_updated_at, summary FROM vulndb_generations ORDER BY seq DESC LIMIT 1";

async fn current_generation(c: &Client) -> Result<Option<VulnDbGeneration>> {
    let found = row(c, GENERATION_SQL, &[]).await?;
    found
        .map(|r| {
            Ok(VulnDbGeneration {
                digest: digest(get(&r, 0)?)?,
                size: to_u64(get(&r, 1)?),
                imported_at: get(&r, 2)?,
                source_updated_at: get(&r, 3)?,
                summary: get(&r, 4)?,
            })
        })
        .transpose()
}

#[async_trait]
impl ScanMeta for PgMeta {
    async fn request_scan(&self, req: &ScanRequest) -> Result<ScanRequested> {
        let repo = &req.repository;
        self.write_in(repo, async move |c: &Client| {
            let missing = || Error::NotFound(Missing::Image(repo.clone(), req.digest.clone()));
            let found = row(
                c,
                "SELECT r.id FROM repositories r JOIN manifests m ON m.repository_id = r.id
                 WHERE r.registry = $1 AND r.name = $2 AND m.digest = $3",
                &[&repo.registry.as_str(), &repo.name.as_str(), &req.digest.as_str()],
            )
            .await?;
            let id: i64 = get(&found.ok_or_else(missing)?, 0)?;
            // The limit is decided on the record this transaction read; see the module
            // documentation for why a concurrent request cannot slip past it.
            let on_record = scan(c, repo, &req.digest).await?.map(|(s, _)| s);
            if let (Some(min), Some(s)) = (req.min_interval_ms, &on_record)
                && s.kind == req.kind
                && s.requested_at > req.now_ms.saturating_sub(min)
            {
                return Ok(ScanRequested::TooSoon(s.clone()));
            }
            // The previous findings, inventory and completion stay until a result replaces
            // them.
            let written = row(
                c,
                concat!(
                    "INSERT INTO image_scans AS s (repository_id, digest, kind, status, requested_at)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (repository_id, digest) DO UPDATE SET kind = excluded.kind,
                         status = excluded.status, description = NULL, requested_at = excluded.requested_at
                     RETURNING ",
                    scan_columns!()
                ),
                &[&id, &req.digest.as_str(), &req.kind.as_str(), &ScanStatus::InProgress.as_str(), &req.now_ms],
            )
            .await?
            .ok_or_else(missing)?;
            // In the same transaction: the record and its job commit together or not at all.
            enqueue(c, &req.job).await?;
            Ok(ScanRequested::Started(summary(&written, repo, &req.digest)?))
        })
        .await
    }

    async fn scan_summaries(&self, repo: &RepositoryKey, digests: &[Digest]) -> Result<Vec<Option<ScanSummary>>> {
        let keys: Vec<&str> = digests.iter().map(Digest::as_str).collect();
        let found = self
            .read(async |c: &Client| {
                rows(
                    c,
                    concat!(
                        "SELECT x.i, ",
                        scan_columns!(),
                        " FROM unnest($3::text[]) WITH ORDINALITY AS x(d, i)
                         JOIN image_scans s ON s.digest = x.d
                         JOIN repositories r ON r.id = s.repository_id
                         WHERE r.registry = $1 AND r.name = $2"
                    ),
                    &[&repo.registry.as_str(), &repo.name.as_str(), &keys],
                )
                .await
            })
            .await?;
        let mut out = vec![None; digests.len()];
        for r in &found {
            let place = usize::try_from(get::<i64>(r, 0)? - 1).map_err(|_| corrupt("batch position"))?;
            if let (Some(slot), Some(d)) = (out.get_mut(place), digests.get(place)) {
                // Shift past the position column.
                let s = ScanSummary {
                    repository: repo.clone(),
                    digest: d.clone(),
                    kind: ScanKind::parse(get(r, 1)?).ok_or_else(|| corrupt("scan kind"))?,
                    status: ScanStatus::parse(get(r, 2)?).ok_or_else(|| corrupt("scan status"))?,
                    description: get(r, 3)?,
                    requested_at: get(r, 4)?,
                    completed_at: get(r, 5)?,
                    source_updated_at: get(r, 6)?,
                    severity_counts: get(r, 7)?,
                };
                *slot = Some(s);
            }
        }
        Ok(out)
    }

    async fn scan_findings(&self, repo: &RepositoryKey, digest: &Digest) -> Result<Option<(ScanSummary, Vec<u8>)>> {
        self.read(async |c: &Client| scan(c, repo, digest).await).await
    }

    async fn image_inventory(&self, repo: &RepositoryKey, digest: &Digest) -> Result<Option<Vec<u8>>> {
        let found = self
            .read(async |c: &Client| {
                row(
                    c,
                    "SELECT s.inventory FROM repositories r JOIN image_scans s ON s.repository_id = r.id
                     WHERE r.registry = $1 AND r.name = $2 AND s.digest = $3",
                    &[&repo.registry.as_str(), &repo.name.as_str(), &digest.as_str()],
                )
                .await
            })
            .await?;
        Ok(found.map(|r| get::<Option<Vec<u8>>>(&r, 0)).transpose()?.flatten())
    }

    async fn finish_scan(&self, result: &ScanResult) -> Result<bool> {
        let r = result;
        // One statement: it writes only a record that exists (so only of an image that exists:
        // the record goes with its image) and that still answers the request named.
        self.write_in(&r.repository, async move |c: &Client| {
            exec(
                c,
                FINISH_SQL,
                &[
                    &r.status.as_str(),
                    &r.description,
                    &r.completed_at,
                    &r.source_updated_at,
                    &r.severity_counts,
                    &r.findings,
                    &r.inventory,
                    &r.repository.registry.as_str(),
                    &r.repository.name.as_str(),
                    &r.digest.as_str(),
                    &r.requested_at,
                ],
            )
            .await
            .map(|n| n > 0)
        })
        .await
    }

    async fn layer_inventory(&self, layer: &Digest, version: u32) -> Result<Option<Vec<u8>>> {
        let version = i32::try_from(version).unwrap_or(i32::MAX);
        let found = self
            .read(async |c: &Client| {
                row(
                    c,
                    "SELECT inventory FROM layer_inventories WHERE digest = $1 AND version = $2",
                    &[&layer.as_str(), &version],
                )
                .await
            })
            .await?;
        found.map(|r| get(&r, 0)).transpose()
    }

    async fn put_layer_inventory(&self, layer: &Digest, version: u32, inventory: &[u8]) -> Result<()> {
        let version = i32::try_from(version).unwrap_or(i32::MAX);
        // Only for a layer whose blob is recorded: the inventory goes with that record when
        // garbage collection removes it (ON DELETE CASCADE). One of an unrecorded layer (its
        // image deleted and its blob collected while it was scanned) would never be removed, so
        // it is not kept. A collection racing this write is serialized with it (the insert's
        // foreign-key check also locks the blob row).
        self.write(async move |c: &Client| {
            exec(
                c,
                "INSERT INTO layer_inventories (digest, version, inventory)
                 SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM blobs WHERE digest = $1)
                 ON CONFLICT (digest, version) DO UPDATE SET inventory = excluded.inventory",
                &[&layer.as_str(), &version, &inventory],
            )
            .await
            .map(drop)
        })
        .await
    }

    async fn scanned_images(
        &self,
        after: Option<&(RepositoryKey, Digest)>,
        limit: usize,
    ) -> Result<Vec<(RepositoryKey, Digest)>> {
        let (registry, name, last) =
            after.map_or(("", "", ""), |(k, d)| (k.registry.as_str(), k.name.as_str(), d.as_str()));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let found = self
            .read(async |c: &Client| {
                rows(
                    c,
                    "SELECT r.registry, r.name, s.digest FROM repositories r
                     JOIN image_scans s ON s.repository_id = r.id
                     WHERE s.inventory IS NOT NULL AND (r.registry, r.name, s.digest) > ($1, $2, $3)
                     ORDER BY r.registry, r.name, s.digest LIMIT $4",
                    &[&registry, &name, &last, &limit],
                )
                .await
            })
            .await?;
        found.iter().map(|r| Ok((repository_key(get(r, 0)?, get(r, 1)?)?, digest(get(r, 2)?)?))).collect()
    }

    async fn scanning_configuration(&self, registry: &AccountId) -> Result<Option<String>> {
        let found = self
            .read(async |c: &Client| {
                row(c, "SELECT config FROM scanning_configurations WHERE registry = $1", &[&registry.as_str()]).await
            })
            .await?;
        found.map(|r| get(&r, 0)).transpose()
    }

    async fn put_scanning_configuration(&self, registry: &AccountId, config: &str) -> Result<()> {
        self.write(async move |c: &Client| {
            exec(
                c,
                "INSERT INTO scanning_configurations (registry, config) VALUES ($1, $2)
                 ON CONFLICT (registry) DO UPDATE SET config = excluded.config",
                &[&registry.as_str(), &config],
            )
            .await
            .map(drop)
        })
        .await
    }

    async fn vulndb_generation(&self) -> Result<Option<VulnDbGeneration>> {
        self.read(async |c: &Client| current_generation(c).await).await
    }

    async fn publish_vulndb(&self, generation: &VulnDbGeneration, job: &NewJob) -> Result<Option<VulnDbGeneration>> {
        let g = generation;
        // One SERIALIZABLE transaction: two publishers are serialized, each seeing the other's
        // generation as the previous one.
        self.write(async move |c: &Client| {
            let previous = current_generation(c).await?;
            // The same file published again becomes the newest generation (a fresh `seq`).
            exec(c, "DELETE FROM vulndb_generations WHERE digest = $1", &[&g.digest.as_str()]).await?;
            exec(
                c,
                "INSERT INTO vulndb_generations (digest, size, imported_at, source_updated_at, summary)
                 VALUES ($1, $2, $3, $4, $5)",
                &[&g.digest.as_str(), &to_i64(g.size), &g.imported_at, &g.source_updated_at, &g.summary],
            )
            .await?;
            // The new one and the one before it stay recorded (their blobs protected from
            // garbage collection); older ones are forgotten and their blobs become garbage.
            exec(
                c,
                "DELETE FROM vulndb_generations
                 WHERE seq NOT IN (SELECT seq FROM vulndb_generations ORDER BY seq DESC LIMIT 2)",
                &[],
            )
            .await?;
            // The re-match is queued in the same transaction.
            enqueue(c, job).await?;
            Ok(previous)
        })
        .await
    }
}
