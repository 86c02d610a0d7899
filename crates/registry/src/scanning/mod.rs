//! Vulnerability scanning: ECR's basic and enhanced scanning over an imported vulnerability
//! database.
//!
//! - Requests (a push under a scan-on-push rule, `StartImageScan`) record the scan IN_PROGRESS
//!   and queue a `scan` job in one transaction (`ScanMeta::request_scan`); nothing is scanned
//!   on the request path.
//! - Workers claim jobs (`run_jobs`): a scan reads each layer once (its package inventory is
//!   kept per layer digest, so shared base layers are read once for every image), merges the
//!   layers, matches the packages against the database and stores the findings and the merged
//!   inventory. A claim expires when its holder dies, so a scan cut short by kill -9 is
//!   claimed again and finished.
//! - `berth admin vulndb import` makes a new database file (`berth_vulndb::import`), stores it
//!   as a blob and publishes it (`ScanMeta::publish_vulndb`), which queues one `rematch` job:
//!   every image under CONTINUOUS_SCAN is matched again from its stored inventory, reading no
//!   layer. Every node fetches the published file into its cache directory, so all nodes of a
//!   cluster match against the same data.

mod config;
mod findings;
mod run;
mod sbom;
mod vulndb;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use berth_meta::{ScanKind, ScanStatus, ScanSummary};
use berth_meta::{ScanRequest, ScanRequested};
use berth_types::{AccountId, Digest, PageRequest, Reference, RepositoryKey, RepositoryName, now_ms};

use crate::authz::{Action, Caller, Target};
use crate::core::Core;
use crate::{Error, ImageId, Result, service};

pub use berth_scanner::matcher::Finding;
pub use berth_scanner::severity::{Cvss, Severity};
pub use config::{Frequency, RepositoryScanning, ScanRule, ScanningConfiguration};
pub use findings::{FindingStatus, ImageFacts, StoredFinding, StoredFindings};
pub use vulndb::{ImportSummary, VulnDbStatus};

service! {
    /// Scanning: ECR's `StartImageScan`, `DescribeImageScanFindings` and the registry and
    /// repository scanning configurations; the scan jobs the workers run; the vulnerability
    /// database `berth admin` imports.
    Scanning
}

/// How long a basic scan of an image must wait after the last one (ECR: once a day).
pub const BASIC_SCAN_INTERVAL_MS: i64 = 24 * 3600 * 1000;
/// Job kinds.
pub(crate) const SCAN_JOB: &str = "scan";
pub(crate) const REMATCH_JOB: &str = "rematch";

/// Node-local scanning state: the open vulnerability database and counters.
#[derive(Default)]
pub(crate) struct ScanState {
    pub(crate) db: tokio::sync::Mutex<Option<(Digest, Arc<berth_vulndb::VulnDb>)>>,
    /// Layers read from the blob store by scans (a re-match reads none).
    pub(crate) layer_reads: AtomicU64,
    /// Layers whose inventory came from the store instead.
    pub(crate) layer_hits: AtomicU64,
    pub(crate) scans_done: AtomicU64,
    pub(crate) rematched: AtomicU64,
    /// Woken when this node queues a scan, so its worker need not wait for its next poll.
    pub(crate) queued: tokio::sync::Notify,
}

/// Counters of this process, for `berth admin scan stats` and the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ScanStats {
    pub layer_reads: u64,
    pub layer_hits: u64,
    pub scans: u64,
    pub rematched: u64,
}

/// A scan as `StartImageScan` and `DescribeImageScanFindings` report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanView {
    pub repository: RepositoryKey,
    pub digest: Digest,
    pub summary: ScanSummary,
}

/// One page of an image's findings.
#[derive(Debug, Clone)]
pub struct FindingsPage {
    pub view: ScanView,
    pub kind: ScanKind,
    /// Findings of this page (for a basic scan only ACTIVE ones).
    pub findings: Vec<StoredFinding>,
    pub image: Option<ImageFacts>,
    pub next: Option<String>,
}

impl Scanning {
    /// ECR's `StartImageScan`: records the scan and queues it. A basic scan of an image may be
    /// asked for once a day (`LimitExceeded` otherwise).
    ///
    /// # Errors
    /// `RepositoryNotFound`, `ImageNotFound`, `LimitExceeded`, `UnsupportedImageType` for a
    /// manifest that is no image (an artifact).
    pub async fn start(&self, caller: &Caller, repo: &RepositoryKey, id: &ImageId) -> Result<ScanView> {
        self.authorize(caller, Action::StartImageScan, Target::Repository(repo), &[]).await?;
        let digest = self.image_digest(repo, id).await?;
        let record = self.meta.resolve(repo, &Reference::Digest(digest.clone())).await?;
        let Some(record) = record else { return Err(self.image_missing(repo, digest.to_string()).await) };
        if run::manifest_kind(&record.media_type, &record.payload) == run::ManifestKind::Other {
            return Err(Error::UnsupportedImageType(format!(
                "The image of media type {} cannot be scanned: it is not a container image",
                record.media_type
            )));
        }
        let config = self.configuration(&repo.registry).await?;
        let kind = config.kind;
        let limit = (kind == ScanKind::Basic).then_some(BASIC_SCAN_INTERVAL_MS);
        match self.request(repo, &digest, kind, limit).await? {
            ScanRequested::Started(summary) => Ok(ScanView { repository: repo.clone(), digest, summary }),
            ScanRequested::TooSoon(_) => Err(Error::LimitExceeded(format!(
                "The scan quota per image has been exceeded: a basic scan of an image runs once every 24 hours \
                 (image {digest} in {}). Wait and try again.",
                repo.name
            ))),
        }
    }

    /// ECR's `DescribeImageScanFindings`: the scan's status and a page of its findings
    /// (`page.after` is the opaque position a previous page returned).
    ///
    /// # Errors
    /// `RepositoryNotFound`, `ImageNotFound`, `ScanNotFound`, `InvalidParameter` for a
    /// position that is not one.
    pub async fn findings(
        &self,
        caller: &Caller,
        repo: &RepositoryKey,
        id: &ImageId,
        page: &PageRequest,
    ) -> Result<FindingsPage> {
        self.authorize(caller, Action::DescribeImageScanFindings, Target::Repository(repo), &[]).await?;
        let digest = self.image_digest(repo, id).await?;
        let Some((summary, bytes)) = self.meta.scan_findings(repo, &digest).await? else {
            if self.meta.get_image(repo, &digest).await?.is_none() {
                return Err(self.image_missing(repo, digest.to_string()).await);
            }
            return Err(Error::ScanNotFound { repository: repo.clone(), digest });
        };
        let summary = self.shown(repo, vec![Some(summary)]).await?.pop().flatten().unwrap_or_else(|| unreachable!());
        let stored = findings::decode(&bytes);
        let visible: Vec<StoredFinding> = stored
            .findings
            .into_iter()
            .filter(|f| summary.kind == ScanKind::Enhanced || f.status == FindingStatus::Active)
            .collect();
        let start = match page.after.as_deref() {
            None => 0,
            Some(t) => parse_position(t, visible.len())?,
        };
        let limit = page.limit.unwrap_or(100).clamp(1, 1000);
        let end = (start + limit).min(visible.len());
        let next = (end < visible.len()).then(|| position_token(end));
        let kind = summary.kind;
        Ok(FindingsPage {
            view: ScanView { repository: repo.clone(), digest, summary },
            kind,
            findings: visible[start..end].to_vec(),
            image: stored.image,
            next,
        })
    }

    /// The scans on record of these images, for `DescribeImages` (whose authorization the
    /// caller has already passed).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn summaries(&self, repo: &RepositoryKey, digests: &[Digest]) -> Result<Vec<Option<ScanSummary>>> {
        let found = self.meta.scan_summaries(repo, digests).await?;
        if found.iter().all(Option::is_none) {
            return Ok(found);
        }
        self.shown(repo, found).await
    }

    /// Scans as ECR shows them: an enhanced scan of a repository under CONTINUOUS_SCAN is
    /// PENDING until first matched, then ACTIVE (it is matched again as the data changes).
    async fn shown(&self, repo: &RepositoryKey, scans: Vec<Option<ScanSummary>>) -> Result<Vec<Option<ScanSummary>>> {
        if !scans.iter().flatten().any(|s| s.kind == ScanKind::Enhanced) {
            return Ok(scans);
        }
        let config = self.configuration(&repo.registry).await?;
        let on_push = self.meta.get_repository(repo).await?.is_some_and(|r| r.settings.scan_on_push);
        if config.kind != ScanKind::Enhanced
            || config.for_repository(&repo.name, on_push).frequency != Frequency::ContinuousScan
        {
            return Ok(scans);
        }
        Ok(scans
            .into_iter()
            .map(|s| {
                s.map(|mut s| {
                    match (s.kind, s.status) {
                        (ScanKind::Enhanced, ScanStatus::Complete) => {
                            s.status = ScanStatus::Active;
                            s.description = Some("Continuous scan is selected for image.".into());
                        }
                        (ScanKind::Enhanced, ScanStatus::InProgress) => s.status = ScanStatus::Pending,
                        _ => {}
                    }
                    s
                })
            })
            .collect())
    }

    /// ECR's `PutRegistryScanningConfiguration` for the caller's registry.
    ///
    /// # Errors
    /// `InvalidParameter` (ECR's `ValidationException`) for a rule the scan type does not allow.
    pub async fn put_configuration(
        &self,
        caller: &Caller,
        config: ScanningConfiguration,
    ) -> Result<ScanningConfiguration> {
        self.authorize(caller, Action::PutRegistryScanningConfiguration, Target::Registry, &[]).await?;
        config.validate()?;
        let registry = self.account_of(caller).clone();
        self.meta.put_scanning_configuration(&registry, &config.encode()).await?;
        Ok(config)
    }

    /// ECR's `GetRegistryScanningConfiguration`: the caller's registry's.
    ///
    /// # Errors
    /// Authorization and storage failures.
    pub async fn get_configuration(&self, caller: &Caller) -> Result<(AccountId, ScanningConfiguration)> {
        self.authorize(caller, Action::GetRegistryScanningConfiguration, Target::Registry, &[]).await?;
        let registry = self.account_of(caller).clone();
        let config = self.configuration(&registry).await?;
        Ok((registry, config))
    }

    /// ECR's `BatchGetRepositoryScanningConfiguration`: each repository's effective scanning,
    /// or `None` for one that does not exist. Authorized once per repository.
    ///
    /// # Errors
    /// `AccessDenied` for a repository the caller may not ask about.
    pub async fn repository_configurations(
        &self,
        caller: &Caller,
        registry: &AccountId,
        names: &[RepositoryName],
    ) -> Result<Vec<(RepositoryName, Option<RepositoryScanning>)>> {
        let config = self.configuration(registry).await?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let key = RepositoryKey { registry: registry.clone(), name: name.clone() };
            self.authorize(caller, Action::BatchGetRepositoryScanningConfiguration, Target::Repository(&key), &[])
                .await?;
            let found = self.meta.get_repository(&key).await?;
            out.push((name.clone(), found.map(|r| config.for_repository(&r.key.name, r.settings.scan_on_push))));
        }
        Ok(out)
    }

    /// Completes once this node has queued a scan since the last call (or at once, if it did
    /// while nobody waited): the scan worker's wake-up. Cancel-safe.
    pub async fn requested(&self) {
        self.local.scan.queued.notified().await;
    }

    /// Counters of this process.
    #[must_use]
    pub fn stats(&self) -> ScanStats {
        let s = &self.local.scan;
        ScanStats {
            layer_reads: s.layer_reads.load(Ordering::Relaxed),
            layer_hits: s.layer_hits.load(Ordering::Relaxed),
            scans: s.scans_done.load(Ordering::Relaxed),
            rematched: s.rematched.load(Ordering::Relaxed),
        }
    }
}

impl Core {
    /// The registry's scanning configuration (the default when none was put).
    pub(crate) async fn configuration(&self, registry: &AccountId) -> Result<ScanningConfiguration> {
        Ok(match self.meta.scanning_configuration(registry).await? {
            Some(text) => ScanningConfiguration::decode(&text),
            None => ScanningConfiguration::default(),
        })
    }

    /// Records a scan of an image and queues its job.
    pub(crate) async fn request(
        &self,
        repo: &RepositoryKey,
        digest: &Digest,
        kind: ScanKind,
        min_interval_ms: Option<i64>,
    ) -> Result<ScanRequested> {
        let job = run::scan_job(repo, digest);
        let req = ScanRequest {
            repository: repo.clone(),
            digest: digest.clone(),
            kind,
            now_ms: now_ms(),
            min_interval_ms,
            job,
        };
        let outcome = self.meta.request_scan(&req).await?;
        if matches!(outcome, ScanRequested::Started(_)) {
            self.local.scan.queued.notify_one();
        }
        Ok(outcome)
    }

    /// After a push: queues a scan when the repository's configuration scans on push. Never
    /// fails the push: a failure to queue is logged.
    pub(crate) async fn scan_on_push(&self, repo: &RepositoryKey, digest: &Digest, media_type: &str, payload: &[u8]) {
        if run::manifest_kind(media_type, payload) == run::ManifestKind::Other {
            return;
        }
        let outcome = async {
            let Some(record) = self.meta.get_repository(repo).await? else { return Ok(()) };
            let config = self.configuration(&repo.registry).await?;
            let scanning = config.for_repository(&repo.name, record.settings.scan_on_push);
            if scanning.frequency != Frequency::Manual {
                // Push scans count toward the daily limit of basic scans, but are never refused.
                self.request(repo, digest, config.kind, None).await?;
            }
            Ok::<(), Error>(())
        }
        .await;
        if let Err(e) = outcome {
            tracing::warn!(repository = %repo, %digest, error = %e, "could not queue the scan on push");
        }
    }

    /// The digest an ECR image id names.
    async fn image_digest(&self, repo: &RepositoryKey, id: &ImageId) -> Result<Digest> {
        let found = match id {
            ImageId::Digest(d) => return Ok(d.clone()),
            ImageId::Tag(t) => self.meta.resolve(repo, &Reference::Tag(t.clone())).await?.map(|m| m.digest),
            ImageId::Both(d, t) => {
                self.meta.resolve(repo, &Reference::Tag(t.clone())).await?.map(|m| m.digest).filter(|found| found == d)
            }
        };
        match found {
            Some(d) => Ok(d),
            None => Err(self.image_missing(repo, id.describe()).await),
        }
    }
}

/// Page positions are opaque to clients: `f` and the offset in base 36.
fn position_token(offset: usize) -> String {
    let mut n = offset as u64;
    let mut digits = Vec::new();
    loop {
        digits.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    digits.reverse();
    format!("f{}", String::from_utf8_lossy(&digits))
}

fn parse_position(token: &str, len: usize) -> Result<usize> {
    let bad = || Error::InvalidParameter("Invalid parameter at 'nextToken': not a token this listing gave".into());
    let digits = token.strip_prefix('f').ok_or_else(bad)?;
    if digits.is_empty() || digits.len() > 12 {
        return Err(bad());
    }
    let n = u64::from_str_radix(digits, 36).map_err(|_| bad())?;
    usize::try_from(n).ok().filter(|&n| n <= len).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_refuse_others() {
        for n in [0usize, 1, 35, 36, 1000, 99_999] {
            assert_eq!(parse_position(&position_token(n), 100_000).unwrap(), n);
        }
        for bad in ["", "f", "x1", "f-1", "fzzzzzzzzzzzzzz", "f%", "fzz"] {
            assert!(parse_position(bad, 100).is_err(), "{bad}");
        }
    }
}
