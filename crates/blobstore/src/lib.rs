//! The blob store: content-addressed bytes and in-progress uploads, nothing else.
//!
//! Registry semantics (which repository may see a blob, digests of uploads, sessions) live in the
//! core and the metadata store. A backend only moves bytes; the core hashes them as they pass.

use async_trait::async_trait;
use berth_types::{Digest, UploadId};
use bytes::Bytes;
use futures_util::stream::BoxStream;

#[cfg(feature = "testsuite")]
pub mod testsuite;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A stream of body bytes. An `Err` item means the producer (usually a client) failed.
pub type ByteStream = BoxStream<'static, Result<Bytes, BoxError>>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("blob or upload not found")]
    NotFound,
    #[error("requested range is not satisfiable")]
    InvalidRange,
    #[error("upload holds {actual} bytes, cannot append at {requested}")]
    UploadOffset { requested: u64, actual: u64 },
    #[error("request body failed: {0}")]
    Body(#[source] BoxError),
    #[error("storage backend failed: {0}")]
    Backend(#[source] BoxError),
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::NotFound { Error::NotFound } else { Error::Backend(Box::new(e)) }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An inclusive byte range `start..=end` within a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    #[must_use]
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }
    #[must_use]
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Bytes being read: the blob's total size, the range served (if any), and the body.
pub struct BlobRead {
    pub size: u64,
    pub range: Option<ByteRange>,
    pub body: ByteStream,
}

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Size of a stored blob, or `None`.
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>>;
    /// Streams a blob, or the inclusive `range` of it (`InvalidRange` when out of bounds).
    async fn read(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobRead>;
    /// Appends `body` to upload `id` at byte offset `at` (the upload is created when `at` is 0)
    /// and makes it durable. Bytes past `at` from an earlier failed append are discarded first.
    /// On any error nothing past `at` remains. Returns the new length.
    async fn upload_append(&self, id: &UploadId, at: u64, body: ByteStream) -> Result<u64>;
    /// Streams the bytes of an upload so far (used to re-hash with another algorithm).
    async fn upload_read(&self, id: &UploadId) -> Result<ByteStream>;
    /// Durably moves upload `id` to blob `digest` (the caller has verified the digest). If the
    /// blob already exists the upload is simply dropped. Returns the blob's size.
    async fn upload_commit(&self, id: &UploadId, digest: &Digest) -> Result<u64>;
    /// Durably stores a small blob whose bytes are all in memory and already verified against
    /// `digest`, in one step. Returns its size.
    async fn put_small(&self, digest: &Digest, data: Bytes) -> Result<u64>;
    /// Drops an upload's bytes; succeeds when there are none.
    async fn upload_abort(&self, id: &UploadId) -> Result<()>;
    /// Ids of uploads holding bytes, with the time of their last write (ms since the epoch),
    /// so that debris of uploads whose session is gone can be swept.
    async fn uploads(&self) -> Result<Vec<(UploadId, i64)>>;
    /// Removes a blob's bytes; succeeds when there are none. Only garbage collection calls it.
    async fn delete(&self, digest: &Digest) -> Result<()>;
}
