//! Metadata of online garbage collection: when a blob's bytes may go, and the steps that make
//! their deletion safe while pushes go on.
//!
//! The rule, and why it is safe, is written once in `berth_registry::gc`; this trait is the
//! metadata half of it. Every method is one transaction.

use async_trait::async_trait;
use berth_types::{Digest, RepositoryKey, UploadId};

use crate::{CreateRepo, Result};

/// The answer to a reservation of a digest before its bytes are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The digest may be stored; pass the token to `link_reserved`.
    Granted(i64),
    /// The digest's bytes are being deleted (a tombstone exists): wait and ask again.
    Collecting,
}

/// Where a reserved blob is recorded once its bytes are in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkTarget {
    /// Ends an upload session, linking the blob into the session's repository
    /// (`UploadMeta::complete_upload`).
    Upload(UploadId),
    /// Links the blob into a repository (`BlobIndex::link_blob`).
    Repository(RepositoryKey, CreateRepo),
}

/// A blob whose metadata garbage collection removed, leaving a tombstone until its bytes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collected {
    pub digest: Digest,
    pub size: u64,
}

/// Bytes a repository uses: the distinct blobs its manifests reference, and its manifests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryUsage {
    pub repository: RepositoryKey,
    pub manifests: u64,
    pub manifest_bytes: u64,
    pub blobs: u64,
    pub blob_bytes: u64,
}

/// Storage use of the whole registry. A blob shared by several repositories counts in each of
/// them but once in `blob_bytes`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StorageUsage {
    /// In (registry, name) order.
    pub repositories: Vec<RepositoryUsage>,
    /// Blobs recorded (referenced or not yet collected) and their bytes.
    pub blobs: u64,
    pub blob_bytes: u64,
    /// Bytes of all manifests (stored in the metadata database).
    pub manifest_bytes: u64,
}

#[async_trait]
pub trait GcMeta: Send + Sync {
    /// Before bytes of `digest` are placed: refuses while a tombstone for it exists, else marks
    /// it touched at `now_ms` and returns a token that stays valid until garbage collection
    /// takes the digest. Need not be durable.
    async fn reserve_blob(&self, digest: &Digest, now_ms: i64) -> Result<Reservation>;
    /// Records a reserved blob (as `complete_upload` or `link_blob` would) if the reservation
    /// `token` is still valid, in one transaction; `false`, recording nothing, if garbage
    /// collection took the digest since. `NotFound` as those methods.
    async fn link_reserved(&self, target: &LinkTarget, digest: &Digest, size: u64, token: i64) -> Result<bool>;
    /// Marks a blob touched at `now_ms` unless it was touched at `fresh_after_ms` or later, or
    /// is being collected. Need not be durable.
    async fn touch_blob(&self, digest: &Digest, now_ms: i64, fresh_after_ms: i64) -> Result<()>;
    /// Takes up to `limit` blobs after `after` (in digest order) that no manifest references,
    /// that were last touched before `cutoff_ms` and that are not in `exclude`: removes their
    /// records and links and leaves a tombstone for each, all in one transaction. With
    /// `touched_since`, only blobs whose touch mark is that recent are looked at (an
    /// incremental run: the rule is checked all the same, only fewer blobs are read).
    async fn collect_blobs(
        &self,
        cutoff_ms: i64,
        now_ms: i64,
        after: Option<&Digest>,
        limit: usize,
        exclude: &[Digest],
        touched_since: Option<i64>,
    ) -> Result<Vec<Collected>>;
    /// Of `digests` found in the blob store, takes those without a record that were touched
    /// before `cutoff_ms`, leaving a tombstone for each; marks the untouched ones touched at
    /// `now_ms` (their grace starts when first seen).
    async fn claim_orphans(&self, digests: &[Digest], cutoff_ms: i64, now_ms: i64) -> Result<Vec<Digest>>;
    /// Tombstones left by earlier runs, up to `limit`.
    async fn tombstones(&self, limit: usize) -> Result<Vec<Digest>>;
    /// Removes tombstones once their bytes are gone.
    async fn finish_tombstones(&self, digests: &[Digest]) -> Result<()>;
    /// Forgets touch marks older than `cutoff_ms` of digests without a record, except those in
    /// `exclude`. Returns how many.
    async fn forget_touches(&self, cutoff_ms: i64, exclude: &[Digest]) -> Result<u64>;
    /// Bytes used per repository and in total.
    async fn storage_usage(&self) -> Result<StorageUsage>;
}
