//! The scan and re-match jobs, as the workers run them.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use berth_blobstore::BlobBody;
use berth_meta::{Job, NewJob, ScanKind, ScanResult, ScanStatus, ScanSummary};
use berth_scanner::inventory::INVENTORY_VERSION;
use berth_scanner::matcher::{Finding, MatchOutcome};
use berth_scanner::{ImageInventory, LayerInventory};
use berth_types::{AccountId, Digest, Reference, RepositoryKey, RepositoryName, now_ms};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::config::{Frequency, ScanningConfiguration};
use super::findings::{self, ImageFacts, StoredFindings};
use super::{REMATCH_JOB, SCAN_JOB, Scanning};
use crate::core::Core;
use crate::{Error, Result};

/// Attempts before a scan that keeps failing is recorded FAILED.
const MAX_ATTEMPTS: u32 = 5;
/// An index waits this long between looks at its images' scans, at most `INDEX_WAITS` times.
const INDEX_WAIT_MS: i64 = 1_000;
const INDEX_WAITS: u32 = 600;
/// Largest image configuration read for an image's architecture.
const MAX_CONFIG_BYTES: usize = 4 * 1024 * 1024;
/// Images read per step of a re-match.
const REMATCH_BATCH: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ManifestKind {
    Image,
    Index,
    Other,
}

/// Whether a manifest is an image that can be scanned, an index of them, or something else
/// (an artifact, a signature, an SBOM).
pub(crate) fn manifest_kind(media_type: &str, payload: &[u8]) -> ManifestKind {
    match media_type {
        "application/vnd.oci.image.index.v1+json" | "application/vnd.docker.distribution.manifest.list.v2+json" => {
            ManifestKind::Index
        }
        "application/vnd.docker.distribution.manifest.v2+json" => ManifestKind::Image,
        "application/vnd.oci.image.manifest.v1+json" => {
            let config_type = serde_json::from_slice::<ImageManifest>(payload).ok().map(|m| m.config.media_type);
            match config_type.as_deref() {
                Some("application/vnd.oci.image.config.v1+json" | "application/vnd.docker.container.image.v1+json") => {
                    ManifestKind::Image
                }
                _ => ManifestKind::Other,
            }
        }
        _ => ManifestKind::Other,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: String,
}

#[derive(Deserialize)]
struct ImageManifest {
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct IndexManifest {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Serialize, Deserialize)]
struct ScanPayload {
    registry: String,
    repository: String,
    digest: String,
}

/// The merged inventory as stored per image, with the digests of its layers (bottom first).
#[derive(Deserialize)]
pub(crate) struct StoredInventory {
    pub(crate) layers: Vec<String>,
    pub(crate) inventory: ImageInventory,
}

/// What `StoredInventory` reads back, written from borrowed parts.
#[derive(Serialize)]
struct StoredInventoryRef<'a> {
    layers: &'a [String],
    inventory: &'a ImageInventory,
}

pub(crate) fn scan_job(repo: &RepositoryKey, digest: &Digest) -> NewJob {
    let payload = ScanPayload {
        registry: repo.registry.to_string(),
        repository: repo.name.to_string(),
        digest: digest.to_string(),
    };
    NewJob {
        kind: SCAN_JOB.into(),
        key: format!("{}/{}@{}", repo.registry, repo.name, digest),
        payload: serde_json::to_vec(&payload).unwrap_or_default(),
        delay_ms: 0,
    }
}

/// How a job went.
enum Outcome {
    Done,
    /// Not ready: look again after this many ms (an index waiting on its images).
    Later(i64),
}

/// A terminal result of a scan, before findings are merged.
struct Verdict {
    status: ScanStatus,
    description: Option<String>,
    found: Vec<(Finding, Option<String>, Option<String>)>,
    source_updated_at: Option<i64>,
}

impl Verdict {
    fn without_findings(status: ScanStatus, description: impl Into<String>) -> Verdict {
        Verdict { status, description: Some(description.into()), found: Vec::new(), source_updated_at: None }
    }
}

impl Scanning {
    /// Claims up to `limit` due scan and re-match jobs for `holder` and runs them one by one;
    /// returns how many it ran.
    ///
    /// # Errors
    /// Storage failures while claiming; a job's own failure is retried later, not returned.
    pub async fn run_jobs(&self, holder: &str, limit: usize) -> Result<usize> {
        let jobs = self.meta.claim_jobs(&[SCAN_JOB, REMATCH_JOB], holder, self.opts.scan_lease_ms, limit).await?;
        let n = jobs.len();
        for job in jobs {
            self.run_job(holder, job).await;
        }
        Ok(n)
    }

    /// Jobs of scanning queued or running (for tests and `berth admin`).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn queued(&self) -> Result<u64> {
        Ok(self.meta.queued_jobs(SCAN_JOB).await? + self.meta.queued_jobs(REMATCH_JOB).await?)
    }

    async fn run_job(&self, holder: &str, job: Job) {
        let work = async {
            match job.kind.as_str() {
                SCAN_JOB => self.scan_from(&job).await,
                REMATCH_JOB => self.rematch_all().await.map(|_| Outcome::Done),
                other => {
                    tracing::warn!(kind = other, "a job of an unknown kind is dropped");
                    Ok(Outcome::Done)
                }
            }
        };
        // The claim is renewed while the job runs, so a long scan is not taken over.
        let renew = async {
            let lease = self.opts.scan_lease_ms.max(30);
            let mut tick =
                tokio::time::interval(std::time::Duration::from_millis(u64::try_from(lease / 3).unwrap_or(10)));
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = self.meta.renew_job(job.id, holder, lease).await {
                    tracing::warn!(job = job.id, error = %e, "could not renew a job's claim");
                }
            }
        };
        let outcome = tokio::select! {
            o = work => o,
            () = renew => unreachable!("the renewal loop does not end"),
        };
        let settled = match outcome {
            Ok(Outcome::Done) => self.meta.finish_job(job.id, holder).await,
            Ok(Outcome::Later(ms)) => self.meta.retry_job(job.id, holder, ms, "waiting").await,
            Err(e) if job.kind == SCAN_JOB && job.attempts >= MAX_ATTEMPTS => {
                tracing::warn!(job = %job.key, error = %e, "a scan failed {MAX_ATTEMPTS} times; recorded FAILED");
                if let Err(e2) = self.fail_scan(&job, &e.to_string()).await {
                    tracing::warn!(job = %job.key, error = %e2, "could not record a failed scan");
                }
                self.meta.finish_job(job.id, holder).await
            }
            Err(e) => {
                let delay = 1000_i64 << job.attempts.min(8);
                tracing::info!(job = %job.key, error = %e, delay_ms = delay, "a scan job failed; it will be retried");
                self.meta.retry_job(job.id, holder, delay, &e.to_string()).await
            }
        };
        if let Err(e) = settled {
            tracing::warn!(job = %job.key, error = %e, "could not settle a job; its claim will expire and it runs again");
        }
    }

    async fn fail_scan(&self, job: &Job, why: &str) -> Result<()> {
        let (repo, digest) = parse_payload(&job.payload)?;
        let result = ScanResult {
            repository: repo,
            digest,
            requested_at: None,
            status: ScanStatus::Failed,
            description: Some(format!("The scan failed: {why}")),
            completed_at: now_ms(),
            source_updated_at: None,
            severity_counts: None,
            inventory: None,
            findings: Vec::new(),
        };
        self.meta.finish_scan(&result).await?;
        Ok(())
    }

    async fn scan_from(&self, job: &Job) -> Result<Outcome> {
        let (repo, digest) = parse_payload(&job.payload)?;
        let Some(Some(summary)) = self.meta.scan_summaries(&repo, std::slice::from_ref(&digest)).await?.pop() else {
            return Ok(Outcome::Done); // the image was deleted
        };
        let Some(record) = self.meta.resolve(&repo, &Reference::Digest(digest.clone())).await? else {
            return Ok(Outcome::Done);
        };
        let started = std::time::Instant::now();
        let is_image = manifest_kind(&record.media_type, &record.payload) == ManifestKind::Image;
        let (verdict, inventory, facts) = match manifest_kind(&record.media_type, &record.payload) {
            ManifestKind::Image => self.scan_image(&repo, &record.payload, summary.kind).await?,
            ManifestKind::Index => match self.scan_index(&repo, &record.payload, &summary, job).await? {
                Some(v) => (v, None, None),
                None => return Ok(Outcome::Later(INDEX_WAIT_MS)),
            },
            ManifestKind::Other => (
                Verdict::without_findings(ScanStatus::UnsupportedImage, "The manifest is not a container image"),
                None,
                None,
            ),
        };
        let complete = verdict.status == ScanStatus::Complete;
        let sbom_source = inventory
            .as_deref()
            .filter(|_| complete && is_image)
            .and_then(|b| serde_json::from_slice::<StoredInventory>(b).ok());
        self.record(&repo, &digest, &summary, Some(summary.requested_at), verdict, inventory, facts).await?;
        if let Some(stored) = sbom_source
            && let Err(e) = self.attach_sbom(&repo, &digest, &record.media_type, record.payload.len(), &stored).await
        {
            tracing::warn!(repository = %repo, %digest, error = %e, "could not attach the SBOM");
        }
        self.local.scan.scans_done.fetch_add(1, Ordering::Relaxed);
        tracing::info!(repository = %repo, %digest, elapsed_ms = started.elapsed().as_millis() as u64, "scan finished");
        Ok(Outcome::Done)
    }

    /// Merges a verdict with the findings on record and writes it.
    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        repo: &RepositoryKey,
        digest: &Digest,
        summary: &ScanSummary,
        requested_at: Option<i64>,
        verdict: Verdict,
        inventory: Option<Vec<u8>>,
        facts: Option<ImageFacts>,
    ) -> Result<bool> {
        let previous = match self.meta.scan_findings(repo, digest).await? {
            Some((_, bytes)) => findings::decode(&bytes),
            None => StoredFindings::default(),
        };
        let now = now_ms();
        let merged = if verdict.status == ScanStatus::Complete {
            findings::merge(summary.kind, &previous, verdict.found, now)
        } else {
            Vec::new()
        };
        let counts = (verdict.status == ScanStatus::Complete).then(|| findings::severity_counts(&merged));
        let stored = StoredFindings { findings: merged, image: facts.or(previous.image) };
        let result = ScanResult {
            repository: repo.clone(),
            digest: digest.clone(),
            requested_at,
            status: verdict.status,
            description: verdict.description,
            completed_at: now,
            source_updated_at: verdict.source_updated_at,
            severity_counts: counts,
            inventory,
            findings: findings::encode(&stored),
        };
        Ok(self.meta.finish_scan(&result).await?)
    }

    async fn scan_image(
        &self,
        repo: &RepositoryKey,
        payload: &[u8],
        kind: ScanKind,
    ) -> Result<(Verdict, Option<Vec<u8>>, Option<ImageFacts>)> {
        let Ok(manifest) = serde_json::from_slice::<ImageManifest>(payload) else {
            return Ok((
                Verdict::without_findings(ScanStatus::Failed, "The image manifest cannot be read"),
                None,
                None,
            ));
        };
        let facts = self.image_facts(&manifest.config).await;
        let mut layers = Vec::with_capacity(manifest.layers.len());
        let mut digests = Vec::with_capacity(manifest.layers.len());
        for l in &manifest.layers {
            let Ok(d) = Digest::parse(&l.digest) else {
                return Ok((Verdict::without_findings(ScanStatus::Failed, "A layer digest is invalid"), None, facts));
            };
            match self.layer(repo, &d, &l.media_type).await? {
                Ok(inv) => layers.push(inv),
                Err(why) => {
                    let v =
                        Verdict::without_findings(ScanStatus::Failed, format!("Layer {d} cannot be scanned: {why}"));
                    return Ok((v, None, facts));
                }
            }
            digests.push(d.to_string());
        }
        let inventory = Arc::new(berth_scanner::merge::merge(&layers));
        drop(layers);
        // Written before matching, so the merged inventory is the only large copy held after.
        let stored =
            serde_json::to_vec(&StoredInventoryRef { layers: &digests, inventory: &inventory }).unwrap_or_default();
        let verdict = self.verdict(inventory, &digests, kind, None).await?;
        Ok((verdict, Some(stored), facts))
    }

    /// Matches an inventory against the database serving now.
    async fn verdict(
        &self,
        inventory: Arc<ImageInventory>,
        layers: &[String],
        kind: ScanKind,
        image: Option<&Digest>,
    ) -> Result<Verdict> {
        let Some((generation, db)) = self.current_db().await? else {
            return Ok(Verdict::without_findings(
                ScanStatus::FindingsUnavailable,
                "No vulnerability database is loaded; import one with `berth admin vulndb import`",
            ));
        };
        let enhanced = kind == ScanKind::Enhanced;
        let outcome =
            tokio::task::spawn_blocking(move || berth_scanner::matcher::match_image(&inventory, enhanced, db.as_ref()))
                .await
                .map_err(|e| Error::Internal(e.into()))?
                .map_err(Error::Internal)?;
        Ok(match outcome {
            MatchOutcome::Unsupported(why) => Verdict::without_findings(ScanStatus::UnsupportedImage, why),
            MatchOutcome::Findings(found) => Verdict {
                status: ScanStatus::Complete,
                description: Some("The scan was completed successfully.".into()),
                found: found
                    .into_iter()
                    .map(|f| {
                        let layer = layers.get(f.layer).cloned();
                        (f, layer, image.map(ToString::to_string))
                    })
                    .collect(),
                source_updated_at: generation.source_updated_at,
            },
        })
    }

    /// An index is scanned through its images: each is asked to be scanned (once), and when
    /// all are finished their findings, each marked with its image, are the index's. `None`
    /// while some are still running.
    async fn scan_index(
        &self,
        repo: &RepositoryKey,
        payload: &[u8],
        summary: &ScanSummary,
        job: &Job,
    ) -> Result<Option<Verdict>> {
        let Ok(index) = serde_json::from_slice::<IndexManifest>(payload) else {
            return Ok(Some(Verdict::without_findings(ScanStatus::Failed, "The image index cannot be read")));
        };
        let children: Vec<Digest> = index
            .manifests
            .iter()
            .filter(|m| manifest_kind(&m.media_type, b"{}") != ManifestKind::Index)
            .filter_map(|m| Digest::parse(&m.digest).ok())
            .collect();
        let scans = self.meta.scan_summaries(repo, &children).await?;
        let mut waiting = false;
        for (child, scan) in children.iter().zip(&scans) {
            match scan {
                Some(s) if s.kind == summary.kind && s.requested_at >= summary.requested_at => {
                    waiting |= s.status == berth_meta::ScanStatus::InProgress;
                }
                Some(s) if s.status == ScanStatus::InProgress => waiting = true,
                _ => {
                    match self.request(repo, child, summary.kind, None).await {
                        Ok(_) | Err(Error::ImageNotFound { .. }) => {}
                        Err(e) => return Err(e),
                    }
                    waiting = true;
                }
            }
        }
        if waiting && job.attempts < INDEX_WAITS {
            return Ok(None);
        }
        let mut found = Vec::new();
        let mut statuses = Vec::new();
        let mut source_updated_at = None;
        for child in &children {
            let Some((s, bytes)) = self.meta.scan_findings(repo, child).await? else { continue };
            statuses.push((s.status, s.description.clone()));
            source_updated_at = source_updated_at.max(s.source_updated_at);
            for f in findings::decode(&bytes).findings {
                if f.status == findings::FindingStatus::Active {
                    found.push((f.finding, f.layer_digest, Some(child.to_string())));
                }
            }
        }
        let complete = statuses.iter().any(|(s, _)| *s == ScanStatus::Complete);
        Ok(Some(if complete {
            Verdict {
                status: ScanStatus::Complete,
                description: Some("The scan was completed successfully.".into()),
                found,
                source_updated_at,
            }
        } else if let Some((status, description)) = statuses.into_iter().next() {
            Verdict { status, description, found: Vec::new(), source_updated_at }
        } else {
            Verdict::without_findings(
                ScanStatus::UnsupportedImage,
                "The image index holds no image that can be scanned",
            )
        }))
    }

    /// Matches every image under CONTINUOUS_SCAN again, from its stored inventory. Images not
    /// pushed or pulled within the re-scan duration are marked SCAN_ELIGIBILITY_EXPIRED.
    async fn rematch_all(&self) -> Result<usize> {
        let mut configs: HashMap<AccountId, ScanningConfiguration> = HashMap::new();
        let mut repos: HashMap<RepositoryKey, Option<bool>> = HashMap::new();
        let mut after: Option<(RepositoryKey, Digest)> = None;
        let mut n = 0;
        loop {
            let batch = self.meta.scanned_images(after.as_ref(), REMATCH_BATCH).await?;
            let Some(last) = batch.last().cloned() else { break };
            for (repo, digest) in batch {
                if !configs.contains_key(&repo.registry) {
                    let c = self.configuration(&repo.registry).await?;
                    configs.insert(repo.registry.clone(), c);
                }
                let config = &configs[&repo.registry];
                if config.kind != ScanKind::Enhanced {
                    continue;
                }
                if !repos.contains_key(&repo) {
                    let r = self.meta.get_repository(&repo).await?.map(|r| r.settings.scan_on_push);
                    repos.insert(repo.clone(), r);
                }
                let Some(scan_on_push) = repos[&repo] else { continue };
                if config.for_repository(&repo.name, scan_on_push).frequency != Frequency::ContinuousScan {
                    continue;
                }
                if self.rematch(&repo, &digest).await? {
                    n += 1;
                }
            }
            after = Some(last);
        }
        Ok(n)
    }

    async fn rematch(&self, repo: &RepositoryKey, digest: &Digest) -> Result<bool> {
        let Some(Some(summary)) = self.meta.scan_summaries(repo, std::slice::from_ref(digest)).await?.pop() else {
            return Ok(false);
        };
        if summary.kind != ScanKind::Enhanced || summary.status == ScanStatus::InProgress {
            return Ok(false);
        }
        let Some(image) = self.meta.get_image(repo, digest).await? else { return Ok(false) };
        let last_use = image.last_pulled_at.unwrap_or(0).max(image.pushed_at);
        if now_ms() - last_use > self.opts.rescan_ms {
            if summary.status != ScanStatus::ScanEligibilityExpired {
                let v = Verdict::without_findings(
                    ScanStatus::ScanEligibilityExpired,
                    "The image was not pushed or pulled within the re-scan duration",
                );
                self.record(repo, digest, &summary, None, v, None, None).await?;
            }
            return Ok(false);
        }
        let Some(bytes) = self.meta.image_inventory(repo, digest).await? else { return Ok(false) };
        let Ok(stored) = serde_json::from_slice::<StoredInventory>(&bytes) else { return Ok(false) };
        let verdict = self.verdict(Arc::new(stored.inventory), &stored.layers, summary.kind, None).await?;
        self.record(repo, digest, &summary, None, verdict, None, None).await?;
        self.local.scan.rematched.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }
}

fn parse_payload(payload: &[u8]) -> Result<(RepositoryKey, Digest)> {
    let bad = |why: &str| Error::Internal(format!("a scan job's payload is invalid: {why}").into());
    let p: ScanPayload = serde_json::from_slice(payload).map_err(|_| bad("not JSON"))?;
    let registry = AccountId::parse(&p.registry).map_err(|_| bad("registry"))?;
    let name = RepositoryName::parse(&p.repository).map_err(|_| bad("repository"))?;
    let digest = Digest::parse(&p.digest).map_err(|_| bad("digest"))?;
    Ok((RepositoryKey { registry, name }, digest))
}

impl Core {
    /// A layer's inventory: the one stored for its digest, else made by reading the layer once
    /// (and stored). The inner error says why the layer cannot be scanned.
    async fn layer(
        &self,
        repo: &RepositoryKey,
        digest: &Digest,
        media_type: &str,
    ) -> Result<Result<LayerInventory, String>> {
        if let Some(bytes) = self.meta.layer_inventory(digest, INVENTORY_VERSION).await?
            && let Ok(inv) = serde_json::from_slice::<LayerInventory>(&bytes)
        {
            self.local.scan.layer_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Ok(inv));
        }
        if self.meta.blob_in_repository(repo, digest).await?.is_none() {
            return Ok(Err(format!("the repository does not hold it (media type {media_type})")));
        }
        let read = match self.blobs.read(digest, None).await {
            Ok(r) => r,
            Err(berth_blobstore::Error::NotFound) => return Ok(Err("its bytes are missing from storage".into())),
            Err(e) => return Err(e.into()),
        };
        self.local.scan.layer_reads.fetch_add(1, Ordering::Relaxed);
        let reader: Box<dyn Read + Send> = match read.body {
            BlobBody::File { file, offset, len } => {
                use std::io::{Seek, SeekFrom};
                let mut file = file;
                file.seek(SeekFrom::Start(offset)).map_err(|e| Error::Internal(e.into()))?;
                Box::new(std::io::BufReader::with_capacity(256 * 1024, file.take(len)))
            }
            BlobBody::Stream(s) => {
                let s = s.map(|r| r.map_err(std::io::Error::other));
                Box::new(tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(s)))
            }
            BlobBody::Redirect(_) => return Ok(Err("the blob store only offers a URL for it".into())),
        };
        let scanned = tokio::task::spawn_blocking(move || {
            berth_scanner::layer::scan_layer(reader, &berth_scanner::layer::Limits::default())
        })
        .await
        .map_err(|e| Error::Internal(e.into()))?;
        match scanned {
            Ok(inv) => {
                let bytes = serde_json::to_vec(&inv).unwrap_or_default();
                self.meta.put_layer_inventory(digest, INVENTORY_VERSION, &bytes).await?;
                Ok(Ok(inv))
            }
            Err(e) => Ok(Err(e.to_string())),
        }
    }

    /// Architecture, OS and author from an image's configuration (best effort).
    async fn image_facts(&self, config: &Descriptor) -> Option<ImageFacts> {
        #[derive(Deserialize)]
        struct Config {
            architecture: Option<String>,
            os: Option<String>,
            author: Option<String>,
        }
        let digest = Digest::parse(&config.digest).ok()?;
        let read = self.blobs.read(&digest, None).await.ok()?;
        if read.size > MAX_CONFIG_BYTES as u64 {
            return None;
        }
        let bytes = crate::core::collect_limited(read.body.into_stream(), MAX_CONFIG_BYTES).await.ok()?;
        let c: Config = serde_json::from_slice(&bytes).ok()?;
        Some(ImageFacts { architecture: c.architecture, os: c.os, author: c.author })
    }
}
