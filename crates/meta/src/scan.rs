//! Vulnerability scanning's records, and the durable job queue background work runs from.
//!
//! The store keeps what a scan found, not how: package inventories (per layer digest, and the
//! merged one per image) and findings are bytes the core encodes (JSON); the store only files
//! them under their keys and answers the questions below in one transaction each.

use async_trait::async_trait;
use berth_types::{AccountId, Digest, RepositoryKey};

use crate::Result;

/// Basic (operating-system packages) or enhanced (also programming-language packages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScanKind {
    Basic,
    Enhanced,
}

impl ScanKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ScanKind::Basic => "BASIC",
            ScanKind::Enhanced => "ENHANCED",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<ScanKind> {
        match s {
            "BASIC" => Some(ScanKind::Basic),
            "ENHANCED" => Some(ScanKind::Enhanced),
            _ => None,
        }
    }
}

/// Where an image's scan stands (ECR's `ScanStatus`). `Active` and `Pending` are never stored:
/// the core shows a completed or running enhanced scan of a continuously scanned repository so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScanStatus {
    /// Asked for, not finished (queued or running).
    InProgress,
    Complete,
    Failed,
    /// The image's operating system or package database cannot be scanned (the description
    /// says why).
    UnsupportedImage,
    /// No vulnerability database was loaded when the scan ran.
    FindingsUnavailable,
    /// Enhanced scanning: the image has not been pushed or pulled within the re-scan duration,
    /// so it is no longer re-matched.
    ScanEligibilityExpired,
    /// Enhanced scanning: matched, and matched again whenever the data changes.
    Active,
    /// Enhanced scanning: not matched yet.
    Pending,
}

impl ScanStatus {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ScanStatus::InProgress => "IN_PROGRESS",
            ScanStatus::Complete => "COMPLETE",
            ScanStatus::Failed => "FAILED",
            ScanStatus::UnsupportedImage => "UNSUPPORTED_IMAGE",
            ScanStatus::FindingsUnavailable => "FINDINGS_UNAVAILABLE",
            ScanStatus::ScanEligibilityExpired => "SCAN_ELIGIBILITY_EXPIRED",
            ScanStatus::Active => "ACTIVE",
            ScanStatus::Pending => "PENDING",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<ScanStatus> {
        [
            ScanStatus::InProgress,
            ScanStatus::Complete,
            ScanStatus::Failed,
            ScanStatus::UnsupportedImage,
            ScanStatus::FindingsUnavailable,
            ScanStatus::ScanEligibilityExpired,
            ScanStatus::Active,
            ScanStatus::Pending,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// An image's scan without its findings: what `DescribeImages` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanSummary {
    pub repository: RepositoryKey,
    pub digest: Digest,
    pub kind: ScanKind,
    pub status: ScanStatus,
    pub description: Option<String>,
    /// When the scan now on record was asked for (ms); a basic scan may be asked for again
    /// only a day after it.
    pub requested_at: i64,
    /// When it last finished (ms), also after a re-match.
    pub completed_at: Option<i64>,
    /// The newest change in the vulnerability data it was matched against (ms).
    pub source_updated_at: Option<i64>,
    /// Findings per severity, as the core encodes them (JSON object), when finished.
    pub severity_counts: Option<String>,
}

/// Asking for a scan of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRequest {
    pub repository: RepositoryKey,
    pub digest: Digest,
    pub kind: ScanKind,
    pub now_ms: i64,
    /// Refuse when the image's last scan of the same kind was asked for less than this long
    /// ago (ECR's one basic scan a day); `None`: no limit.
    pub min_interval_ms: Option<i64>,
    /// The job to queue in the same transaction (kind `scan`, keyed by image).
    pub job: NewJob,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanRequested {
    /// The scan is recorded IN_PROGRESS and its job queued.
    Started(ScanSummary),
    /// Refused by `min_interval_ms`; nothing changed. Carries the scan on record.
    TooSoon(ScanSummary),
}

/// A finished scan, or a re-match of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanResult {
    pub repository: RepositoryKey,
    pub digest: Digest,
    /// The `requested_at` of the scan this result answers: a result for a scan that a newer
    /// request has replaced is not written. `None` for a re-match, which writes whatever the
    /// request on record.
    pub requested_at: Option<i64>,
    pub status: ScanStatus,
    pub description: Option<String>,
    pub completed_at: i64,
    pub source_updated_at: Option<i64>,
    pub severity_counts: Option<String>,
    /// The merged package inventory (kept for re-matching); `None` keeps the one on record.
    pub inventory: Option<Vec<u8>>,
    pub findings: Vec<u8>,
}

/// A generation of imported vulnerability data: a file in the blob store, by digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VulnDbGeneration {
    pub digest: Digest,
    pub size: u64,
    pub imported_at: i64,
    pub source_updated_at: Option<i64>,
    /// What the import reported, as the core encodes it (JSON).
    pub summary: String,
}

#[async_trait]
pub trait ScanMeta: Send + Sync {
    /// Records an image's scan as IN_PROGRESS and queues its job, in one transaction, unless
    /// `min_interval_ms` refuses it. `NotFound(Image)` if the repository holds no such image.
    async fn request_scan(&self, req: &ScanRequest) -> Result<ScanRequested>;
    /// The scans on record of these images, in order (`None`: never scanned).
    async fn scan_summaries(&self, repo: &RepositoryKey, digests: &[Digest]) -> Result<Vec<Option<ScanSummary>>>;
    /// One image's scan with its findings bytes (empty until a result is written).
    async fn scan_findings(&self, repo: &RepositoryKey, digest: &Digest) -> Result<Option<(ScanSummary, Vec<u8>)>>;
    /// The image's merged package inventory, if a scan stored one.
    async fn image_inventory(&self, repo: &RepositoryKey, digest: &Digest) -> Result<Option<Vec<u8>>>;
    /// Writes a result; `false` (nothing written) when the image or its scan record is gone,
    /// or `requested_at` is given and no longer the one on record.
    async fn finish_scan(&self, result: &ScanResult) -> Result<bool>;
    /// A layer's package inventory made by detection version `version`.
    async fn layer_inventory(&self, layer: &Digest, version: u32) -> Result<Option<Vec<u8>>>;
    async fn put_layer_inventory(&self, layer: &Digest, version: u32, inventory: &[u8]) -> Result<()>;
    /// Up to `limit` images with a stored inventory, after `after`, in (registry, repository,
    /// digest) order: what a re-match walks.
    async fn scanned_images(
        &self,
        after: Option<&(RepositoryKey, Digest)>,
        limit: usize,
    ) -> Result<Vec<(RepositoryKey, Digest)>>;
    /// A registry's scanning configuration as the core encodes it (JSON); `None`: the default.
    async fn scanning_configuration(&self, registry: &AccountId) -> Result<Option<String>>;
    async fn put_scanning_configuration(&self, registry: &AccountId, config: &str) -> Result<()>;
    /// The vulnerability data now serving.
    async fn vulndb_generation(&self) -> Result<Option<VulnDbGeneration>>;
    /// Makes `generation` the one serving and queues `job` (the re-match), in one transaction;
    /// the previous generation stays recorded (its blob kept) until the next publish, older ones
    /// are forgotten (their blobs become garbage). Recorded generations' blobs are never
    /// collected as orphans. Returns the previous one.
    async fn publish_vulndb(&self, generation: &VulnDbGeneration, job: &NewJob) -> Result<Option<VulnDbGeneration>>;
}

/// A job to queue. At most one job per (`kind`, `key`) waits at a time: queuing one that is
/// already waiting changes nothing, and queuing one that is running makes it run once more
/// after it finishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub kind: String,
    pub key: String,
    pub payload: Vec<u8>,
    /// Not to run before this long from now.
    pub delay_ms: i64,
}

/// A claimed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub key: String,
    pub payload: Vec<u8>,
    /// Claims so far, this one included.
    pub attempts: u32,
}

/// Durable background work, delivered at least once: a job stays queued until its claimer
/// finishes it, and a claim its holder stops renewing (a crash, a dead node) expires so another
/// claimer takes the job. Times are the store's own clock.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Queues a job; `false` if the same (`kind`, `key`) was already waiting.
    async fn enqueue(&self, job: &NewJob) -> Result<bool>;
    /// Claims up to `limit` due jobs of these kinds (oldest due first) for `holder` for
    /// `lease_ms`: unclaimed ones, and ones whose claim expired.
    async fn claim_jobs(&self, kinds: &[&str], holder: &str, lease_ms: i64, limit: usize) -> Result<Vec<Job>>;
    /// Extends `holder`'s claim; `false` if it no longer holds the job.
    async fn renew_job(&self, id: i64, holder: &str, lease_ms: i64) -> Result<bool>;
    /// Removes a finished job (or queues it once more, if it was queued again while running);
    /// `false` if `holder` no longer held it.
    async fn finish_job(&self, id: i64, holder: &str) -> Result<bool>;
    /// Gives a failed job back, due again after `delay_ms`, noting `error`; `false` if `holder`
    /// no longer held it.
    async fn retry_job(&self, id: i64, holder: &str, delay_ms: i64, error: &str) -> Result<bool>;
    /// Jobs of `kind` queued or running.
    async fn queued_jobs(&self, kind: &str) -> Result<u64>;
}
