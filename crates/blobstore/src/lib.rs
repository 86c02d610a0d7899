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
    /// Another request is writing this upload's bytes right now (one writer per upload).
    #[error("another request is writing this upload")]
    UploadBusy,
    /// The storage cannot be reached or did not answer in time; the request may be retried.
    #[error("storage is unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// The storage has no room left (a full disk or quota). Nothing was stored.
    #[error("storage is full: {0}")]
    StorageFull(#[source] BoxError),
    #[error("storage backend failed: {0}")]
    Backend(#[source] BoxError),
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound,
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => Error::StorageFull(Box::new(e)),
            _ => Error::Backend(Box::new(e)),
        }
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
    pub body: BlobBody,
}

/// The bytes of a read: a stream, or an open file and the part of it to send, which a front
/// door can hand to the kernel (`sendfile`) instead of copying through user space, or a URL
/// where the client fetches them itself (a presigned S3 URL; the client sends its `Range` there).
pub enum BlobBody {
    Stream(ByteStream),
    File { file: std::fs::File, offset: u64, len: u64 },
    Redirect(String),
}

impl BlobBody {
    /// The bytes as a stream, whatever their source.
    #[must_use]
    pub fn into_stream(self) -> ByteStream {
        match self {
            BlobBody::Stream(s) => s,
            BlobBody::File { file, offset, len } => file_stream(file, offset, len),
            BlobBody::Redirect(_) => futures_util::StreamExt::boxed(futures_util::stream::once(async {
                Err::<Bytes, BoxError>("the blob is served from another URL".into())
            })),
        }
    }
}

/// Size of the chunks `file_stream` reads.
const READ_CHUNK: usize = 256 * 1024;

/// Streams `len` bytes of `file` from `offset`, read on a blocking thread, at most two chunks
/// ahead of the consumer.
#[must_use]
pub fn file_stream(mut file: std::fs::File, offset: u64, len: u64) -> ByteStream {
    use std::io::{Read, Seek, SeekFrom};
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, BoxError>>(2);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = file.seek(SeekFrom::Start(offset)) {
            let _ = tx.blocking_send(Err(e.into()));
            return;
        }
        let mut left = len;
        while left > 0 {
            let n = usize::try_from(left).unwrap_or(usize::MAX).min(READ_CHUNK);
            // `read_to_end` fills spare capacity without zeroing it first.
            let mut buf = Vec::with_capacity(n);
            let item = match (&mut file).take(n as u64).read_to_end(&mut buf) {
                Ok(got) if got == n => Ok(Bytes::from(buf)),
                Ok(_) => Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into()),
                Err(e) => Err(e.into()),
            };
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
            left -= n as u64;
        }
    });
    futures_util::StreamExt::boxed(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// What an append stored: the upload's new length and, for a store that keeps each append as a
/// part of its own, the part's name.
///
/// A part is named only once it is whole, and each append gets a new name, so two appends that
/// race at one offset never share a part. The core records the part with the session's new
/// offset in one conditional write of the metadata; commit then assembles exactly the recorded
/// parts, which are exactly the bytes the core hashed. A store that writes in place (the
/// filesystem, where one writer per upload is enforced locally) names no parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub len: u64,
    pub part: Option<String>,
}

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Size of a stored blob, or `None`.
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>>;
    /// Streams a blob, or the inclusive `range` of it (`InvalidRange` when out of bounds).
    async fn read(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobRead>;
    /// Appends `body` to upload `id` at byte offset `at` (the upload is created when `at` is 0).
    /// One append per upload at a time: `UploadBusy` while another is writing.
    /// Bytes past `at` from an earlier failed append are discarded first. On any error nothing
    /// past `at` remains. Returns the new length. The bytes need not be durable until
    /// `upload_commit`: after a crash an upload may hold fewer bytes than were appended.
    /// A store that names parts (see [`Appended`]) keeps whatever an append wrote at or past `at`
    /// under other names, so the discarding is done by `parts` at commit instead.
    async fn upload_append(&self, id: &UploadId, at: u64, body: ByteStream) -> Result<Appended>;
    /// Streams the bytes of an upload so far (used to re-hash with another algorithm): the
    /// recorded `parts` in order (empty for a store that names none).
    async fn upload_read(&self, id: &UploadId, parts: &[String]) -> Result<ByteStream>;
    /// Durably moves upload `id` to blob `digest` (the caller has verified the digest): the
    /// recorded `parts` in order, for a store that names them. If the blob already exists it is
    /// replaced by these verified bytes, so a damaged or planted copy is never trusted.
    /// `UploadBusy` while an append to `id` is still writing. Returns the blob's size.
    async fn upload_commit(&self, id: &UploadId, parts: &[String], digest: &Digest) -> Result<u64>;
    /// Durably stores a small blob whose bytes are all in memory and already verified against
    /// `digest`, in one step; an existing copy whose bytes differ is replaced. Returns its size.
    async fn put_small(&self, digest: &Digest, data: Bytes) -> Result<u64>;
    /// Drops an upload's bytes; succeeds when there are none. `UploadBusy` while an append to
    /// `id` is still writing.
    async fn upload_abort(&self, id: &UploadId) -> Result<()>;
    /// Ids of uploads holding bytes, with the time of their last write (ms since the epoch),
    /// so that debris of uploads whose session is gone can be swept.
    async fn uploads(&self) -> Result<Vec<(UploadId, i64)>>;
    /// Removes a blob's bytes; succeeds when there are none. Only garbage collection calls it.
    async fn delete(&self, digest: &Digest) -> Result<()>;
    /// Moves a blob whose bytes were found not to hash to its digest out of the store, keeping
    /// them aside for inspection; succeeds when there are none. A later push of the right
    /// bytes stores the blob again.
    async fn quarantine(&self, digest: &Digest) -> Result<()>;
    /// Every stored blob, in no particular order, streamed (garbage collection sweeps bytes
    /// that no record names). A blob stored or deleted while the stream runs may or may not
    /// appear.
    fn list(&self) -> BoxStream<'_, Result<Digest>>;
    /// A URL from which a client may fetch the blob directly for `ttl` (a presigned S3 URL), or
    /// `None` when the store has no such URLs and the registry streams the bytes itself.
    async fn presigned_url(&self, digest: &Digest, ttl: std::time::Duration) -> Result<Option<String>> {
        let _ = (digest, ttl);
        Ok(None)
    }
    /// Checks at start that the store can be used (reachable, the bucket there, the
    /// credentials accepted); the error says which.
    async fn check(&self) -> Result<()> {
        Ok(())
    }
}
