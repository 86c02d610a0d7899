//! The metadata store: the source of truth for repositories, blobs known to each repository,
//! manifests, tags, references between them, and upload sessions.
//!
//! Role traits, one domain command each, one transaction each. `MetaStore` bundles them.

use async_trait::async_trait;
use berth_types::{
    AccountId, Digest, Page, PageRequest, Reference, RepositoryKey, RepositoryName, Tag, TagMutability, UploadId,
};

mod error;
mod gc;
mod identity;
mod preview;
mod scan;
#[cfg(feature = "testsuite")]
pub mod testsuite;

pub use berth_types::records::{Expiration, ImageRecord, Referrer, RepositoryRecord, RepositorySettings, TagStatus};
pub use error::{Conflict, Error, Missing, Result};
pub use gc::{Collected, GcMeta, LinkTarget, RepositoryUsage, Reservation, StorageUsage};
pub use identity::{AccessKeyRecord, AccountRecord, IdentityMeta, PolicyMeta, RepositoryPolicyKind, UserRecord};
pub use preview::{PreviewMeta, PreviewPage, PreviewRow, PreviewSummary};
pub use scan::{
    Job, JobQueue, NewJob, ScanKind, ScanMeta, ScanRequest, ScanRequested, ScanResult, ScanStatus, ScanSummary,
    VulnDbGeneration,
};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Whether a write may create the repository it names (OCI push to a new name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateRepo {
    IfMissing,
    No,
}

/// The settings a repository may change after creation (`None`: leave as it is).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepositorySettingsChange {
    pub tag_mutability: Option<TagMutability>,
    pub scan_on_push: Option<bool>,
}

/// What deleting a repository found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // made once per DeleteRepository and moved out at once: a box buys nothing
pub enum DeleteRepository {
    Deleted(RepositoryRecord),
    NotFound,
    /// It holds images and `force` was not given. Nothing was deleted.
    NotEmpty,
}

/// Repositories. Each account has its own registry: a repository is named within one registry,
/// and two registries may each hold a repository of the same name, apart in everything.
#[async_trait]
pub trait RepoMeta: Send + Sync {
    /// Creates a repository with default settings; `false` if it already existed.
    async fn create_repository(&self, key: &RepositoryKey) -> Result<bool>;
    /// Creates a repository with `settings`; `Conflict::RepositoryExists` if it already exists.
    async fn create_repository_with(
        &self,
        key: &RepositoryKey,
        settings: &RepositorySettings,
    ) -> Result<RepositoryRecord>;
    async fn get_repository(&self, key: &RepositoryKey) -> Result<Option<RepositoryRecord>>;
    /// One registry's repositories in name order (`page.after` is a name).
    async fn list_repository_records(&self, registry: &AccountId, page: &PageRequest)
    -> Result<Page<RepositoryRecord>>;
    /// Changes the given settings of a repository in one write, leaving the others as they are;
    /// `None` if it does not exist.
    async fn update_repository(
        &self,
        key: &RepositoryKey,
        change: &RepositorySettingsChange,
    ) -> Result<Option<RepositoryRecord>>;
    /// Sets tags (`set`, replacing values of existing keys), then removes the keys in `remove`,
    /// in one transaction; returns the resulting tags in key order, or `None` if the repository
    /// does not exist. With nothing to change it just lists them.
    async fn update_repository_tags(
        &self,
        key: &RepositoryKey,
        set: &[(String, String)],
        remove: &[String],
    ) -> Result<Option<Vec<(String, String)>>>;
    /// Deletes a repository with its images, tags, blob links, uploads and preview (only with
    /// `force` if it holds images).
    async fn delete_repository(&self, key: &RepositoryKey, force: bool) -> Result<DeleteRepository>;
    async fn repository_exists(&self, key: &RepositoryKey) -> Result<bool>;
    /// One registry's repository names in byte order (`page.after` is a name).
    async fn list_repositories(&self, registry: &AccountId, page: &PageRequest) -> Result<Page<RepositoryName>>;
    /// Up to `limit` repositories of every registry after `after`, in (registry, name) order:
    /// the walk of garbage collection, scrubbing, lifecycle runs and `berth admin`.
    async fn list_all_repositories(&self, after: Option<&RepositoryKey>, limit: usize) -> Result<Vec<RepositoryKey>>;
}

#[async_trait]
pub trait BlobIndex: Send + Sync {
    /// Size of `digest` if the repository holds it.
    async fn blob_in_repository(&self, repo: &RepositoryKey, digest: &Digest) -> Result<Option<u64>>;
    /// Records a stored blob and links it into `repo`. `NotFound(Repository)` if the repository
    /// is missing and may not be created. Takes no part in garbage collection's protocol: the
    /// core records new blobs with `GcMeta::link_reserved`.
    async fn link_blob(&self, repo: &RepositoryKey, digest: &Digest, size: u64, create: CreateRepo) -> Result<()>;
    /// Links a blob that `from` holds into `to` (possibly in another registry); `false` when
    /// `from` does not hold it.
    async fn mount_blob(
        &self,
        from: &RepositoryKey,
        to: &RepositoryKey,
        digest: &Digest,
        create: CreateRepo,
    ) -> Result<bool>;
    /// Removes a blob from a repository; `false` if it was not there.
    async fn unlink_blob(&self, repo: &RepositoryKey, digest: &Digest) -> Result<bool>;
    /// Up to `limit` recorded blobs after `after`, in digest order, with their sizes (the
    /// scrubber reads each back).
    async fn recorded_blobs(&self, after: Option<&Digest>, limit: usize) -> Result<Vec<(Digest, u64)>>;
}

/// An upload in progress: bytes so far and the saved hash state over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSession {
    pub id: UploadId,
    pub repository: RepositoryKey,
    pub offset: u64,
    /// The core's state for resuming the session (its hash state and the blob store's parts),
    /// opaque to the store.
    pub hash_state: Vec<u8>,
    pub created_at: i64,
}

#[async_trait]
pub trait UploadMeta: Send + Sync {
    /// Starts a session; `NotFound(Repository)` if the repository is missing and may not be created.
    /// A session that holds no bytes yet need not survive a restart (its client starts over).
    async fn create_upload(&self, session: &UploadSession, create: CreateRepo) -> Result<()>;
    async fn get_upload(&self, id: &UploadId) -> Result<Option<UploadSession>>;
    /// Advances a session from `from_offset`; `Conflict(UploadMoved)` if another append moved it
    /// first, `NotFound(Upload)` without the session.
    /// Progress need not be durable: after a crash a session may be found at an earlier offset.
    async fn advance_upload(&self, id: &UploadId, from_offset: u64, to_offset: u64, hash_state: &[u8]) -> Result<()>;
    /// Ends a session by recording its blob in the repository, in one transaction. Takes no part
    /// in garbage collection's protocol: the core uses `GcMeta::link_reserved`.
    /// `NotFound(Upload)` without the session.
    async fn complete_upload(&self, id: &UploadId, digest: &Digest, size: u64) -> Result<()>;
    /// Removes a session; `false` if there was none.
    async fn delete_upload(&self, id: &UploadId) -> Result<bool>;
    /// Sessions not touched since `before_ms`.
    async fn stale_uploads(&self, before_ms: i64, limit: usize) -> Result<Vec<UploadId>>;
}

/// A manifest to store, already parsed and verified by the core.
#[derive(Debug, Clone)]
pub struct NewManifest {
    pub repository: RepositoryKey,
    pub digest: Digest,
    pub media_type: String,
    pub payload: Vec<u8>,
    pub artifact_type: Option<String>,
    pub subject: Option<Digest>,
    /// JSON text of the manifest's annotations, for referrer listings.
    pub annotations: Option<String>,
    pub blobs: Vec<Digest>,
    pub children: Vec<Digest>,
    pub tag: Option<Tag>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    Stored,
    /// Referenced blobs or child manifests the repository does not hold. Nothing was written.
    MissingReferences(Vec<Digest>),
    /// The repository's tags are immutable and the tag names another manifest. Nothing was
    /// written.
    TagImmutable {
        existing: Digest,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRecord {
    pub digest: Digest,
    pub media_type: String,
    pub payload: Vec<u8>,
}

#[async_trait]
pub trait ImageMeta: Send + Sync {
    /// Records pull times `(repository, manifest digest, ms)`, keeping the latest per image;
    /// images that no longer exist are skipped. Need not be durable before it returns.
    async fn record_pulls(&self, pulls: &[(RepositoryKey, Digest, i64)]) -> Result<()>;
    /// Images of a repository in digest order. `NotFound(Repository)` if it does not exist.
    async fn list_images(
        &self,
        repo: &RepositoryKey,
        status: TagStatus,
        page: &PageRequest,
    ) -> Result<Page<ImageRecord>>;
    /// One image by digest; costs the same whatever the repository holds.
    async fn get_image(&self, repo: &RepositoryKey, digest: &Digest) -> Result<Option<ImageRecord>>;
    /// Stores a manifest, its references and its tag in one transaction, creating the
    /// repository if allowed, after checking every reference exists in the repository.
    /// `NotFound(Repository)` if it is missing and may not be created.
    async fn put_manifest(&self, m: &NewManifest, create: CreateRepo) -> Result<PutOutcome>;
    async fn resolve(&self, repo: &RepositoryKey, reference: &Reference) -> Result<Option<ManifestRecord>>;
    /// `resolve` of each reference, in order, in one read: a batch costs one trip to the store.
    async fn resolve_many(
        &self,
        repo: &RepositoryKey,
        references: &[Reference],
    ) -> Result<Vec<Option<ManifestRecord>>> {
        let mut out = Vec::with_capacity(references.len());
        for r in references {
            out.push(self.resolve(repo, r).await?);
        }
        Ok(out)
    }
    /// Deletes a manifest and the tags pointing at it; `false` if it was not there.
    async fn delete_manifest(&self, repo: &RepositoryKey, digest: &Digest) -> Result<bool>;
    /// Deletes a tag, in one transaction also deleting its manifest when `drop_untagged` is set
    /// and no other tag names it (ECR's rule). Returns the digest the tag named, or `None` if
    /// there was no such tag.
    async fn delete_tag(&self, repo: &RepositoryKey, tag: &Tag, drop_untagged: bool) -> Result<Option<Digest>>;
    /// Tags in byte order. `NotFound(Repository)` if the repository does not exist.
    async fn list_tags(&self, repo: &RepositoryKey, page: &PageRequest) -> Result<Page<Tag>>;
    /// Manifests in `repo` whose subject is `subject`, optionally of one artifact type.
    async fn referrers(
        &self,
        repo: &RepositoryKey,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>>;
}

/// Upkeep of the store itself: reclaiming space (a background worker), and carrying over the
/// times another store recorded when its records are copied here (`berth admin migrate`).
#[async_trait]
pub trait MaintenanceMeta: Send + Sync {
    /// Gives up to `max_pages` free pages of the store back to the filesystem; returns how many
    /// it gave. A store with nothing to give (or no way to) returns 0.
    async fn reclaim(&self, max_pages: u32) -> Result<u64>;
    /// Sets when an image was pushed (`ImageRecord::pushed_at`, which lifecycle rules and
    /// listings read) to `pushed_at_ms`, the time the store it was copied from recorded;
    /// `false` if the repository holds no such image.
    async fn restore_pushed_at(&self, repo: &RepositoryKey, digest: &Digest, pushed_at_ms: i64) -> Result<bool>;
    /// Sets when a repository was created (`RepositoryRecord::created_at`) to `created_at_ms`,
    /// likewise; `false` if there is no such repository.
    async fn restore_repository_created_at(&self, repo: &RepositoryKey, created_at_ms: i64) -> Result<bool>;
}

/// Leases on background work shared by the nodes of a cluster: one node at a time runs a
/// cluster-wide job, and a lease its holder stops renewing (a dead node) expires.
#[async_trait]
pub trait LeaseMeta: Send + Sync {
    /// Takes lease `name` for `holder` until `ttl_ms` from now, or renews it if `holder` already
    /// holds it; `false` while another holder's lease has not expired. Time is the store's own
    /// clock, so nodes need not agree on theirs.
    async fn acquire_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> Result<bool>;
    /// Gives the lease back if `holder` holds it.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<()>;
}

pub trait MetaStore:
    RepoMeta
    + BlobIndex
    + UploadMeta
    + ImageMeta
    + IdentityMeta
    + PolicyMeta
    + GcMeta
    + PreviewMeta
    + MaintenanceMeta
    + LeaseMeta
    + ScanMeta
    + JobQueue
{
}
impl<T> MetaStore for T where
    T: RepoMeta
        + BlobIndex
        + UploadMeta
        + ImageMeta
        + IdentityMeta
        + PolicyMeta
        + GcMeta
        + PreviewMeta
        + MaintenanceMeta
        + LeaseMeta
        + ScanMeta
        + JobQueue
{
}
