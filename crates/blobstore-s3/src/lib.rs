//! Blob store on any S3-compatible API (AWS S3, Ceph RGW, Garage, …), for the scale-out mode.
//!
//! Key layout: see `src/layout.rs` (`blobs/<alg>/<2hex>/<hex>`, `uploads/<id>/<part>`,
//! `quarantine/…`, all below the configured prefix).
//!
//! # Appends name parts
//! Each `upload_append` writes its bytes to an object of its own, `uploads/<id>/<offset>-<nonce>`,
//! which appears only once whole (a PutObject, or a multipart upload completed at the end), and
//! returns that name. The core records it with the session's offset in one conditional write;
//! `upload_read` and `upload_commit` assemble exactly the recorded parts, in order, checking that
//! each starts where the previous ended. Nothing ever lists an upload to guess its parts, so a
//! racing append (a retry, or someone else) at the same offset cannot slip its bytes in.
//!
//! # Streaming and memory
//! An append reads its body into parts of 8 MiB (growing by 8 MiB every 1,000 parts, so a blob
//! may reach S3's 10,000-part limit at about 430 GiB) with at most four parts in flight: at most
//! five parts in memory per append, about 40 MiB for the first 8 GiB, whatever the body's size
//! (measured: 41 MiB more at the peak for 256 MiB and for 1 GiB). A body shorter than one part
//! is a single PutObject. If the body fails, or the append is dropped, the multipart upload is
//! aborted and no part remains. Commit copies a single part server-side (CopyObject, up to S3's
//! 5 GiB limit) and streams several parts, in order, into a new multipart upload at the blob's
//! key, bounded the same way; either replaces an existing blob object. Reads are one GET each
//! (ranged when asked), streamed.
//!
//! # Failures
//! Connect timeout 5 s; no whole-request timeout (a long body must not be cut), but a read
//! timeout of 60 s (waiting for an answer, or between two reads of a body) so a stalled
//! connection ends. Failed requests are retried by the client at most 5 times within 10 s;
//! what still fails for want of the server (no connection, a timeout, 5xx, SlowDown, 429)
//! becomes [`Error::Unavailable`].
//!
//! # Why `object_store` rather than `aws-sdk-s3`
//! - It does all this store needs through one small trait: PutObject, streaming multipart
//!   uploads with parts we size and bound ourselves, ranged GETs that report the object's total
//!   size from `Content-Range`, CopyObject, bulk delete, listing, and a `Signer` for presigned
//!   GET URLs. Its GET streams resume a cut body with a ranged retry checked against the ETag.
//! - It works on S3-compatible servers without extra settings (notes/backends.md §1.3); the
//!   SDK needs its checksum behaviour set to `WhenRequired` for RGW and Garage.
//! - It is lighter to build (the SDK adds about 85 s to a debug build on two cores) and shares
//!   reqwest and rustls with the rest of the workspace.
//! - What it lacks costs little here: the shared credentials file is read with `rust-ini`
//!   (`src/config.rs`); there is no UploadPartCopy, so a commit of several parts streams them
//!   through this process (registry clients mostly push a blob in one request, which commits
//!   as a server-side copy); the HTTP status and S3 error code of a failure are only in the
//!   error's text (`src/errors.rs`); and there is no ListMultipartUploads, so a multipart upload left
//!   by a crashed process is not seen by [`BlobStore::uploads`]: give the bucket a lifecycle
//!   rule (AbortIncompleteMultipartUpload after a day).

mod config;
mod errors;
mod layout;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use berth_blobstore::{Appended, BlobBody, BlobRead, BlobStore, BoxError, ByteRange, ByteStream, Error, Result};
use berth_types::{Digest, UploadId};
use bytes::Bytes;
use futures_util::stream::{self, BoxStream};
use futures_util::{Stream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, MultipartUpload, ObjectStore, ObjectStoreExt, PutPayload,
    RetryConfig,
};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

pub use config::S3Config;
use layout::PartName;

/// Size of an append's first 1,000 parts; each further 1,000 parts are 8 MiB larger.
const PART_SIZE: usize = 8 * 1024 * 1024;
const PARTS_PER_STEP: usize = 1000;
/// Parts of one multipart upload being sent at once.
const PARTS_IN_FLIGHT: usize = 4;
/// Body chunks queued between the reader of a body and the writer of its object.
const CHUNKS_QUEUED: usize = 16;
/// The largest object a single CopyObject may copy.
const COPY_LIMIT: u64 = 5 * 1024 * 1024 * 1024;

/// The longest a SigV4 presigned URL may be valid.
const PRESIGN_MAX: Duration = Duration::from_secs(7 * 24 * 3600);

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const READ_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_RETRIES: usize = 5;
const RETRY_BUDGET: Duration = Duration::from_secs(10);

/// Role credentials object_store may use on AWS when no static ones are found.
const AWS_ROLE_VARIABLES: &[&str] = &[
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
];

pub struct S3BlobStore {
    s3: Arc<AmazonS3>,
    /// The key prefix, without slashes at either end; empty for none.
    prefix: String,
    bucket: String,
    /// The endpoint as messages name it.
    endpoint: String,
    /// Objects up to this size are copied server-side ([`COPY_LIMIT`] but in tests).
    copy_limit: u64,
}

impl std::fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3BlobStore")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn backend<E: Into<BoxError>>(e: E) -> Error {
    Error::Backend(e.into())
}

impl S3BlobStore {
    /// A store on `cfg.bucket`. Nothing is sent yet: [`BlobStore::check`] tells whether the
    /// bucket is there and the credentials are accepted.
    ///
    /// Credentials: those in `cfg`, else `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
    /// `AWS_SESSION_TOKEN`, else the profile `AWS_PROFILE` (or `default`) of the shared
    /// credentials file (`AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials`). On AWS itself
    /// (no endpoint) role credentials (web identity, container, instance metadata) come last.
    ///
    /// # Errors
    /// When the configuration is incomplete or no credentials are found for a custom endpoint.
    pub fn open(cfg: S3Config) -> Result<Self> {
        if cfg.bucket.is_empty() {
            return Err(backend("the S3 bucket name is empty"));
        }
        let prefix = layout::normalize_prefix(cfg.prefix.as_deref());
        if !prefix.is_empty() {
            Path::parse(&prefix).map_err(|e| backend(format!("S3 key prefix {prefix:?} is not usable: {e}")))?;
        }
        let endpoint = cfg.endpoint_display();
        let mut client = ClientOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_timeout_disabled()
            .with_read_timeout(READ_TIMEOUT);
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&cfg.bucket)
            .with_region(cfg.region())
            .with_virtual_hosted_style_request(!cfg.path_style)
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(2),
                    base: 2.0,
                },
                max_retries: MAX_RETRIES,
                retry_timeout: RETRY_BUDGET,
            });
        if let Some(url) = cfg.client_endpoint() {
            client = client.with_allow_http(url.starts_with("http://"));
            builder = builder.with_endpoint(url);
        }
        let env = |k: &str| std::env::var(k).ok();
        match config::resolve(&cfg, &env).map_err(backend)? {
            Some(c) => {
                builder = builder.with_access_key_id(c.key_id).with_secret_access_key(c.secret);
                if let Some(token) = c.token {
                    builder = builder.with_token(token);
                }
            }
            None if cfg.endpoint.is_none() => {
                for var in AWS_ROLE_VARIABLES {
                    if let (Some(value), Ok(key)) = (env(var), var.to_ascii_lowercase().parse::<AmazonS3ConfigKey>()) {
                        builder = builder.with_config(key, value);
                    }
                }
            }
            None => {
                return Err(backend(format!(
                    "no S3 credentials for {endpoint}: set the access key and secret in the configuration, \
                     AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile in ~/.aws/credentials"
                )));
            }
        }
        let s3 = builder.with_client_options(client).build().map_err(backend)?;
        Ok(S3BlobStore { s3: Arc::new(s3), prefix, bucket: cfg.bucket, endpoint, copy_limit: COPY_LIMIT })
    }

    /// Lowers the size above which copies stream through this process instead of using
    /// CopyObject (5 GiB), so tests reach that path with small blobs.
    #[doc(hidden)]
    #[must_use]
    pub fn with_copy_limit(mut self, bytes: u64) -> Self {
        self.copy_limit = bytes;
        self
    }

    fn path(&self, rel: &str) -> Path {
        Path::from(layout::join(&self.prefix, rel))
    }

    fn blob_path(&self, d: &Digest) -> Path {
        self.path(&layout::blob_key(d))
    }

    /// The relative key of a listed object, if it is below the prefix.
    fn relative<'a>(&self, p: &'a Path) -> Option<&'a str> {
        layout::strip_prefix(&self.prefix, p.as_ref())
    }

    /// Writes `body` to `path` as one object, which appears only once whole; on an error from
    /// the body (returned as is) or from S3, nothing is left. Returns the bytes written.
    async fn write<S>(&self, path: Path, mut body: S) -> Result<u64>
    where
        S: Stream<Item = Result<Bytes>> + Unpin,
    {
        let (tx, rx) = mpsc::channel(CHUNKS_QUEUED);
        // The writer runs on a task of its own, so that if this future is dropped (the client
        // went away) the writer still sees the queue close without `Finish` and aborts.
        let writer = tokio::spawn(write_object(Arc::clone(&self.s3), path, rx));
        let mut failed = None;
        while let Some(item) = body.next().await {
            match item {
                Ok(chunk) if chunk.is_empty() => {}
                Ok(chunk) => {
                    if tx.send(Msg::Data(chunk)).await.is_err() {
                        break; // the writer stopped; its result says why
                    }
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if failed.is_none() {
            let _ = tx.send(Msg::Finish).await;
        }
        drop(tx);
        let written = writer.await.map_err(backend)?;
        match failed {
            Some(e) => Err(e),
            None => written,
        }
    }

    /// The recorded parts of an upload as one stream; the first part is opened here, so a
    /// missing upload is `NotFound` at once.
    async fn read_parts(&self, id: &UploadId, parts: &[String]) -> Result<BoxStream<'static, Result<Bytes>>> {
        let names = parts
            .iter()
            .map(|p| PartName::parse(p).ok_or_else(|| backend(format!("{p:?} is not a part name of this store"))))
            .collect::<Result<VecDeque<_>>>()?;
        let mut state = PartsState {
            s3: Arc::clone(&self.s3),
            dir: self.path(&layout::upload_dir(id)),
            names,
            offset: 0,
            current: None,
        };
        if let Some(first) = state.names.pop_front() {
            state.current = Some(open_part(&state.s3, &state.dir, state.offset, &first).await?);
        }
        Ok(stream::try_unfold(state, PartsState::next).boxed())
    }

    /// Copies an object of `size` bytes: server-side up to S3's CopyObject limit, streamed
    /// through here above it.
    async fn copy(&self, from: &Path, to: &Path, size: u64) -> Result<()> {
        if size <= self.copy_limit {
            return self.s3.copy(from, to).await.map_err(errors::map);
        }
        let body = self.s3.get(from).await.map_err(errors::map)?.into_stream().map_err(errors::map);
        let written = self.write(to.clone(), body).await?;
        if written == size { Ok(()) } else { Err(backend(format!("copied {written} of {size} bytes of {from}"))) }
    }

    /// Deletes every object below the relative directory `rel`.
    async fn delete_below(&self, rel: &str) -> Result<()> {
        let dir = self.path(rel);
        let found = self.s3.list(Some(&dir)).map_ok(|m| m.location).boxed();
        let mut deleted = self.s3.delete_stream(found);
        while let Some(r) = deleted.next().await {
            match r {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(errors::map(e)),
            }
        }
        Ok(())
    }
}

enum Msg {
    Data(Bytes),
    Finish,
}

/// The size of part number `n` (from 0) of a multipart upload.
fn part_size(n: usize) -> usize {
    PART_SIZE * (1 + n / PARTS_PER_STEP)
}

/// Takes the first `n` bytes off the queued chunks (`n` at most what they hold).
fn take(queued: &mut VecDeque<Bytes>, n: usize) -> PutPayload {
    let mut out = Vec::new();
    let mut left = n;
    while left > 0 {
        let Some(mut chunk) = queued.pop_front() else { break };
        if chunk.len() > left {
            queued.push_front(chunk.split_off(left));
        }
        left -= chunk.len();
        out.push(chunk);
    }
    out.into_iter().collect()
}

/// A multipart upload in progress and its parts being sent.
struct Multipart {
    upload: Box<dyn MultipartUpload>,
    sending: JoinSet<object_store::Result<()>>,
}

impl Multipart {
    async fn send(&mut self, part: PutPayload) -> Result<()> {
        while self.sending.len() >= PARTS_IN_FLIGHT {
            self.join_one().await?;
        }
        self.sending.spawn(self.upload.put_part(part));
        Ok(())
    }

    async fn join_one(&mut self) -> Result<()> {
        match self.sending.join_next().await {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(errors::map(e)),
            Some(Err(e)) => Err(backend(e)),
        }
    }

    async fn complete(&mut self) -> Result<()> {
        while !self.sending.is_empty() {
            self.join_one().await?;
        }
        self.upload.complete().await.map_err(errors::map)?;
        Ok(())
    }

    /// Stops sending and drops what was sent; the object never appears.
    async fn abort(mut self) {
        self.sending.shutdown().await;
        if let Err(e) = self.upload.abort().await {
            tracing::warn!(error = %e, "could not abort an S3 multipart upload; a bucket lifecycle rule will drop it");
        }
    }
}

/// Writes the chunks received on `rx` to `path`: one PutObject when they end (`Finish`) before
/// filling a part, a multipart upload otherwise. Without `Finish` (the body failed or its
/// reader was dropped) nothing is left.
async fn write_object(s3: Arc<AmazonS3>, path: Path, mut rx: mpsc::Receiver<Msg>) -> Result<u64> {
    let mut queued = VecDeque::new();
    let mut queued_len = 0;
    let mut total = 0u64;
    let mut multipart: Option<Multipart> = None;
    let mut parts = 0;
    loop {
        match rx.recv().await {
            Some(Msg::Data(chunk)) => {
                total += chunk.len() as u64;
                queued_len += chunk.len();
                queued.push_back(chunk);
                while queued_len >= part_size(parts) {
                    let size = part_size(parts);
                    let part = take(&mut queued, size);
                    queued_len -= size;
                    parts += 1;
                    let m = match &mut multipart {
                        Some(m) => m,
                        None => {
                            let upload = s3.put_multipart(&path).await.map_err(errors::map)?;
                            multipart.insert(Multipart { upload, sending: JoinSet::new() })
                        }
                    };
                    if let Err(e) = m.send(part).await {
                        if let Some(m) = multipart.take() {
                            m.abort().await;
                        }
                        return Err(e);
                    }
                }
            }
            Some(Msg::Finish) => break,
            None => {
                if let Some(m) = multipart {
                    m.abort().await;
                }
                return Err(Error::Body("request body ended early".into()));
            }
        }
    }
    let rest = take(&mut queued, queued_len);
    match multipart {
        None => {
            s3.put(&path, rest).await.map_err(errors::map)?;
        }
        Some(mut m) => {
            let mut result = Ok(());
            if queued_len > 0 {
                result = m.send(rest).await;
            }
            if result.is_ok() {
                result = m.complete().await;
            }
            if let Err(e) = result {
                m.abort().await;
                return Err(e);
            }
        }
    }
    Ok(total)
}

/// Reading the recorded parts of an upload one after the other.
struct PartsState {
    s3: Arc<AmazonS3>,
    /// `<prefix>/uploads/<id>`.
    dir: Path,
    names: VecDeque<PartName>,
    /// Bytes streamed so far, where the next part must start.
    offset: u64,
    current: Option<BoxStream<'static, object_store::Result<Bytes>>>,
}

/// Opens part `name` of the upload directory `dir`, which must start at `offset`.
async fn open_part(
    s3: &AmazonS3,
    dir: &Path,
    offset: u64,
    name: &PartName,
) -> Result<BoxStream<'static, object_store::Result<Bytes>>> {
    if name.at != offset {
        return Err(backend(format!(
            "upload part {} starts at {}, but the parts before it end at {offset}",
            name.as_str(),
            name.at
        )));
    }
    let path = dir.clone().join(name.as_str());
    Ok(s3.get(&path).await.map_err(errors::map)?.into_stream())
}

impl PartsState {
    async fn next(mut self) -> Result<Option<(Bytes, Self)>> {
        loop {
            if let Some(current) = &mut self.current {
                match current.next().await {
                    Some(Ok(chunk)) => {
                        self.offset += chunk.len() as u64;
                        return Ok(Some((chunk, self)));
                    }
                    Some(Err(e)) => return Err(errors::map(e)),
                    None => self.current = None,
                }
            }
            let Some(name) = self.names.pop_front() else { return Ok(None) };
            self.current = Some(open_part(&self.s3, &self.dir, self.offset, &name).await?);
        }
    }
}

fn now_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>> {
        match self.s3.head(&self.blob_path(digest)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(errors::map(e)),
        }
    }

    async fn read(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobRead> {
        let mut opts = GetOptions::default();
        if let Some(r) = range {
            if r.start > r.end || r.end == u64::MAX {
                return Err(Error::InvalidRange);
            }
            opts.range = Some(GetRange::Bounded(r.start..r.end + 1));
        }
        // One GET: its answer carries the total size (Content-Length, or Content-Range when
        // ranged), which decides whether the range was within the blob.
        let got = match self.s3.get_opts(&self.blob_path(digest), opts).await {
            Ok(got) => got,
            Err(e) if errors::status(&e) == Some(416) => return Err(Error::InvalidRange),
            Err(e) => return Err(errors::map(e)),
        };
        let size = got.meta.size;
        if range.is_some_and(|r| r.end >= size) {
            // S3 serves a range cut short at the end of the object; ours must be whole.
            return Err(Error::InvalidRange);
        }
        let body = got.into_stream().map_err(|e| -> BoxError { Box::new(errors::map(e)) }).boxed();
        Ok(BlobRead { size, range, body: BlobBody::Stream(body) })
    }

    async fn upload_append(&self, id: &UploadId, at: u64, body: ByteStream) -> Result<Appended> {
        let name = PartName::generate(at);
        let path = self.path(&name.key(id));
        let written = self.write(path, body.map_err(Error::Body)).await?;
        Ok(Appended { len: at + written, part: Some(name.as_str().to_owned()) })
    }

    async fn upload_read(&self, id: &UploadId, parts: &[String]) -> Result<ByteStream> {
        let s = self.read_parts(id, parts).await?;
        Ok(s.map_err(|e| -> BoxError { Box::new(e) }).boxed())
    }

    async fn upload_commit(&self, id: &UploadId, parts: &[String], digest: &Digest) -> Result<u64> {
        let blob = self.blob_path(digest);
        let single = match parts {
            [only] => PartName::parse(only).filter(|p| p.at == 0),
            _ => None,
        };
        let size = if let Some(part) = single {
            let from = self.path(&part.key(id));
            let size = self.s3.head(&from).await.map_err(errors::map)?.size;
            self.copy(&from, &blob, size).await?;
            size
        } else {
            let body = self.read_parts(id, parts).await?;
            self.write(blob, body).await?
        };
        // The blob is in place; leftovers of the upload are only debris now, which the sweep
        // of `uploads()` finds if this fails.
        if let Err(e) = self.delete_below(&layout::upload_dir(id)).await {
            tracing::warn!(upload = %id, error = %e, "could not delete a committed upload's parts");
        }
        Ok(size)
    }

    async fn put_small(&self, digest: &Digest, data: Bytes) -> Result<u64> {
        let len = data.len() as u64;
        self.s3.put(&self.blob_path(digest), data.into()).await.map_err(errors::map)?;
        Ok(len)
    }

    async fn upload_abort(&self, id: &UploadId) -> Result<()> {
        self.delete_below(&layout::upload_dir(id)).await
    }

    async fn uploads(&self) -> Result<Vec<(UploadId, i64)>> {
        let mut latest: HashMap<UploadId, i64> = HashMap::new();
        let mut listed = self.s3.list(Some(&self.path(layout::UPLOADS)));
        while let Some(meta) = listed.next().await {
            let meta = meta.map_err(errors::map)?;
            let Some(id) = self.relative(&meta.location).and_then(layout::parse_upload_key) else { continue };
            let ms = meta.last_modified.timestamp_millis();
            latest.entry(id).and_modify(|t| *t = (*t).max(ms)).or_insert(ms);
        }
        Ok(latest.into_iter().collect())
    }

    async fn delete(&self, digest: &Digest) -> Result<()> {
        match self.s3.delete(&self.blob_path(digest)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(errors::map(e)),
        }
    }

    async fn quarantine(&self, digest: &Digest) -> Result<()> {
        let from = self.blob_path(digest);
        let size = match self.s3.head(&from).await {
            Ok(meta) => meta.size,
            Err(object_store::Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(errors::map(e)),
        };
        self.copy(&from, &self.path(&layout::quarantine_key(digest, now_ms())), size).await?;
        self.delete(digest).await
    }

    fn list(&self) -> BoxStream<'_, Result<Digest>> {
        self.s3
            .list(Some(&self.path(layout::BLOBS)))
            .filter_map(move |item| {
                futures_util::future::ready(match item {
                    Ok(meta) => self.relative(&meta.location).and_then(layout::parse_blob_key).map(Ok),
                    Err(e) => Some(Err(errors::map(e))),
                })
            })
            .boxed()
    }

    async fn presigned_url(&self, digest: &Digest, ttl: Duration) -> Result<Option<String>> {
        // SigV4 query signatures last from 1 s to 7 days (and no longer than a session
        // token's credentials).
        let ttl = ttl.clamp(Duration::from_secs(1), PRESIGN_MAX);
        let url = self.s3.signed_url(http::Method::GET, &self.blob_path(digest), ttl).await.map_err(errors::map)?;
        Ok(Some(url.to_string()))
    }

    async fn check(&self) -> Result<()> {
        // One LIST of at most a page below the prefix: it needs the bucket and accepted
        // credentials, and changes nothing.
        let root = if self.prefix.is_empty() { None } else { Some(Path::from(self.prefix.as_str())) };
        match self.s3.list(root.as_ref()).next().await {
            None | Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(errors::check_error(&e, &self.bucket, &self.endpoint)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_grow_to_reach_large_blobs() {
        assert_eq!(part_size(0), PART_SIZE);
        assert_eq!(part_size(999), PART_SIZE);
        assert_eq!(part_size(1000), 2 * PART_SIZE);
        let max: u64 = (0..10_000).map(|n| part_size(n) as u64).sum();
        assert!(max > 400 * 1024 * 1024 * 1024, "{max}");
    }

    #[test]
    fn take_splits_chunks() {
        let mut q: VecDeque<Bytes> = [&b"abc"[..], b"defg", b"h"].into_iter().map(Bytes::from_static).collect();
        let p = take(&mut q, 5);
        assert_eq!(p.content_length(), 5);
        assert_eq!(p.iter().flat_map(|b| b.iter().copied()).collect::<Vec<u8>>(), b"abcde");
        assert_eq!(q, [Bytes::from_static(b"fg"), Bytes::from_static(b"h")]);
        assert_eq!(take(&mut q, 3).content_length(), 3);
        assert!(q.is_empty());
    }

    #[test]
    fn open_needs_credentials_for_a_custom_endpoint_only_when_none_are_around() {
        let cfg = S3Config {
            bucket: "b".into(),
            endpoint: Some("http://127.0.0.1:9".into()),
            path_style: true,
            access_key_id: Some("k".into()),
            secret_access_key: Some("s".into()),
            ..S3Config::default()
        };
        assert!(S3BlobStore::open(cfg.clone()).is_ok());
        assert!(S3BlobStore::open(S3Config { bucket: String::new(), ..cfg.clone() }).is_err());
        let half = S3Config { secret_access_key: None, ..cfg };
        assert!(S3BlobStore::open(half).is_err());
    }
}
