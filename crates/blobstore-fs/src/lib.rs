//! Filesystem blob store for the embedded mode.
//!
//! Layout under the root (documented here and nowhere else):
//! - `blobs/<algorithm>/<first two hex>/<hex>`: committed blobs, immutable, content-addressed;
//! - `uploads/<uuid>`: bytes of upload sessions in progress;
//! - `quarantine/<algorithm>-<hex>-<ms>`: bytes found not to hash to their name, kept aside.
//!
//! One writer per upload: an append registers its upload until its writer thread has closed
//! the file, and commits and aborts refuse an upload that is still being written, so no
//! late write can land in a file after it was renamed into the blob store.
//!
//! Durability: appends are not synced (the core checks an upload's bytes against its saved hash
//! state after a restart); a commit syncs the file, renames it into place and syncs the
//! directory, so a committed blob survives power loss. Bytes past the session's recorded offset
//! (a crash mid-append) are truncated by the next append.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{IoSlice, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use berth_blobstore::{Appended, BlobBody, BlobRead, BlobStore, BoxError, ByteRange, ByteStream, Error, Result};
use berth_types::{Digest, UploadId};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::sync::mpsc;

const WRITE_BATCH: usize = 1024 * 1024;

pub struct FsBlobStore {
    root: PathBuf,
    /// Uploads whose append is writing right now.
    writing: Arc<Mutex<HashSet<UploadId>>>,
}

/// An upload marked as being written; unmarked when dropped (by the writer thread, after the
/// file is closed).
struct Writing {
    set: Arc<Mutex<HashSet<UploadId>>>,
    id: UploadId,
}

impl Drop for Writing {
    fn drop(&mut self) {
        self.set.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&self.id);
    }
}

impl FsBlobStore {
    /// Opens (creating if needed) a store rooted at `root`.
    ///
    /// # Errors
    /// When the directories cannot be created.
    pub fn open(root: impl Into<PathBuf>) -> std::io::Result<Self> {
        let root = root.into();
        for d in ["blobs/sha256", "blobs/sha512", "uploads", "quarantine"] {
            fs::create_dir_all(root.join(d))?;
        }
        sync_dir(&root)?;
        sync_dir(&root.join("blobs"))?;
        Ok(FsBlobStore { root, writing: Arc::default() })
    }

    fn start_writing(&self, id: &UploadId) -> Result<Writing> {
        let mut set = self.writing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !set.insert(id.clone()) {
            return Err(Error::UploadBusy);
        }
        Ok(Writing { set: Arc::clone(&self.writing), id: id.clone() })
    }

    fn is_writing(&self, id: &UploadId) -> bool {
        self.writing.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(id)
    }

    fn blob_path(&self, d: &Digest) -> PathBuf {
        let hex = d.hex();
        self.root.join("blobs").join(d.algorithm().as_str()).join(&hex[..2]).join(hex)
    }

    fn upload_path(&self, id: &UploadId) -> PathBuf {
        self.root.join("uploads").join(id.as_str())
    }
}

fn sync_dir(p: &Path) -> std::io::Result<()> {
    File::open(p)?.sync_all()
}

fn backend<E: Into<BoxError>>(e: E) -> Error {
    Error::Backend(e.into())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(backend)?
}

enum Msg {
    Data(Bytes),
    Finish,
}

fn write_all_vectored(f: &mut File, batch: &[Bytes]) -> std::io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = batch.iter().map(|b| IoSlice::new(b)).collect();
    let mut bufs = &mut slices[..];
    while !bufs.is_empty() {
        let n = f.write_vectored(bufs)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut bufs, n);
    }
    Ok(())
}

/// The writer thread of one append: receives chunks and writes them in batches until `Finish`.
/// Without `Finish` (the body failed) it truncates back to `at`.
fn write_upload(path: &Path, at: u64, mut rx: mpsc::Receiver<Msg>) -> Result<u64> {
    // The new file's directory entry is not synced: if a crash loses it, the session's next
    // append finds fewer bytes than recorded and the client is told to start over. Committed
    // blobs are synced in `upload_commit`.
    let mut f = OpenOptions::new().create(true).write(true).truncate(false).open(path)?;
    let len = f.metadata()?.len();
    if len < at {
        return Err(Error::UploadOffset { requested: at, actual: len });
    }
    if len > at {
        f.set_len(at)?;
    }
    f.seek(SeekFrom::Start(at))?;
    let mut written = at;
    let mut batch: Vec<Bytes> = Vec::new();
    loop {
        let Some(msg) = rx.blocking_recv() else {
            // The sender gave up: the body failed. Leave nothing past `at`.
            f.set_len(at)?;
            return Err(Error::Body("request body ended early".into()));
        };
        let mut finish = false;
        let mut size = 0;
        let mut push = |m: Msg, size: &mut usize| match m {
            Msg::Data(b) => {
                *size += b.len();
                batch.push(b);
                false
            }
            Msg::Finish => true,
        };
        finish |= push(msg, &mut size);
        while !finish && size < WRITE_BATCH {
            match rx.try_recv() {
                Ok(m) => finish |= push(m, &mut size),
                Err(_) => break,
            }
        }
        if let Err(e) = write_all_vectored(&mut f, &batch) {
            let _ = f.set_len(at);
            return Err(e.into());
        }
        written += size as u64;
        batch.clear();
        if finish {
            return Ok(written);
        }
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>> {
        match tokio::fs::metadata(self.blob_path(digest)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn read(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobRead> {
        let path = self.blob_path(digest);
        let (f, size) = blocking(move || {
            let f = File::open(path)?;
            let size = f.metadata()?.len();
            Ok((f, size))
        })
        .await?;
        let (start, len) = match range {
            None => (0, size),
            Some(r) if r.start <= r.end && r.end < size => (r.start, r.len()),
            Some(_) => return Err(Error::InvalidRange),
        };
        Ok(BlobRead { size, range, body: BlobBody::File { file: f, offset: start, len } })
    }

    async fn upload_append(&self, id: &UploadId, at: u64, mut body: ByteStream) -> Result<Appended> {
        let path = self.upload_path(id);
        let writing = self.start_writing(id)?;
        let (tx, rx) = mpsc::channel(32);
        // The mark goes with the thread: even if this future is dropped (the client went away),
        // the upload stays marked until the file is closed.
        let writer = tokio::task::spawn_blocking(move || {
            let result = write_upload(&path, at, rx);
            drop(writing);
            result
        });
        let mut body_error = None;
        while let Some(item) = body.next().await {
            match item {
                Ok(chunk) if chunk.is_empty() => {}
                Ok(chunk) => {
                    if tx.send(Msg::Data(chunk)).await.is_err() {
                        break; // the writer stopped; its result says why
                    }
                }
                Err(e) => {
                    body_error = Some(e);
                    break;
                }
            }
        }
        if body_error.is_none() {
            let _ = tx.send(Msg::Finish).await;
        }
        drop(tx);
        let result = writer.await.map_err(backend)?;
        match (body_error, result) {
            (Some(e), _) => Err(Error::Body(e)),
            (None, r) => r.map(|len| Appended { len, part: None }),
        }
    }

    async fn upload_read(&self, id: &UploadId, _parts: &[String]) -> Result<ByteStream> {
        let path = self.upload_path(id);
        let (f, size) = blocking(move || {
            let f = File::open(path)?;
            let size = f.metadata()?.len();
            Ok((f, size))
        })
        .await?;
        Ok(berth_blobstore::file_stream(f, 0, size))
    }

    async fn upload_commit(&self, id: &UploadId, _parts: &[String], digest: &Digest) -> Result<u64> {
        if self.is_writing(id) {
            return Err(Error::UploadBusy);
        }
        let src = self.upload_path(id);
        let dst = self.blob_path(digest);
        blocking(move || install(&src, &dst, |f| f.sync_data())).await
    }

    async fn put_small(&self, digest: &Digest, data: Bytes) -> Result<u64> {
        let src = self.upload_path(&UploadId::generate());
        let dst = self.blob_path(digest);
        blocking(move || {
            // An existing copy is kept only when its bytes are these (a small read); a damaged
            // or planted one is replaced.
            if fs::metadata(&dst).is_ok_and(|m| m.len() == data.len() as u64)
                && fs::read(&dst).is_ok_and(|held| held == data)
            {
                return Ok(data.len() as u64);
            }
            let mut f = File::create(&src)?;
            let result =
                f.write_all(&data).map_err(Error::from).and_then(|()| install_open(&f, &src, &dst, File::sync_data));
            if result.is_err() {
                let _ = fs::remove_file(&src);
            }
            result
        })
        .await
    }

    async fn upload_abort(&self, id: &UploadId) -> Result<()> {
        if self.is_writing(id) {
            return Err(Error::UploadBusy);
        }
        remove_if_exists(self.upload_path(id)).await
    }

    async fn uploads(&self) -> Result<Vec<(UploadId, i64)>> {
        let dir = self.root.join("uploads");
        blocking(move || {
            let mut out = Vec::new();
            for e in fs::read_dir(dir)? {
                let e = e?;
                let Some(id) = e.file_name().to_str().and_then(|n| UploadId::parse(n).ok()) else { continue };
                let modified = e.metadata()?.modified()?;
                let ms = modified.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
                out.push((id, i64::try_from(ms).unwrap_or(i64::MAX)));
            }
            Ok(out)
        })
        .await
    }

    async fn delete(&self, digest: &Digest) -> Result<()> {
        remove_if_exists(self.blob_path(digest)).await
    }

    async fn quarantine(&self, digest: &Digest) -> Result<()> {
        let src = self.blob_path(digest);
        let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let dir = self.root.join("quarantine");
        let dst = dir.join(format!("{}-{}-{ms}", digest.algorithm().as_str(), digest.hex()));
        blocking(move || match fs::rename(&src, &dst) {
            Ok(()) => Ok(sync_dir(&dir)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        })
        .await
    }

    fn list(&self) -> BoxStream<'_, Result<Digest>> {
        let root = self.root.join("blobs");
        let (tx, rx) = mpsc::channel::<Result<Digest>>(256);
        tokio::task::spawn_blocking(move || {
            if let Err(e) = walk_blobs(&root, &tx) {
                let _ = tx.blocking_send(Err(e));
            }
        });
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }).boxed()
    }
}

/// Sends the digest of every file under `blobs/<algorithm>/<2 hex>/`; stops early when the
/// receiver is gone. Names that are not digests are skipped.
fn walk_blobs(root: &Path, tx: &mpsc::Sender<Result<Digest>>) -> Result<()> {
    for alg in fs::read_dir(root)? {
        let alg = alg?;
        let Some(alg_name) = alg.file_name().to_str().map(str::to_owned) else { continue };
        for prefix in fs::read_dir(alg.path())? {
            let prefix = prefix?;
            let entries = match fs::read_dir(prefix.path()) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            for e in entries {
                let name = e?.file_name();
                let Some(d) = name.to_str().and_then(|n| Digest::parse(&format!("{alg_name}:{n}")).ok()) else {
                    continue;
                };
                if tx.blocking_send(Ok(d)).is_err() {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

/// Moves a finished upload file into place durably: its data synced (by `sync`), renamed, the
/// directory synced. An existing blob file is replaced: the new bytes were verified against the
/// digest as they arrived, the old ones may have been damaged since.
fn install(src: &Path, dst: &Path, sync: impl FnOnce(&File) -> std::io::Result<()>) -> Result<u64> {
    let f = File::open(src)?;
    install_open(&f, src, dst, sync)
}

/// `install` for a file the caller already has open.
fn install_open(f: &File, src: &Path, dst: &Path, sync: impl FnOnce(&File) -> std::io::Result<()>) -> Result<u64> {
    let len = f.metadata()?.len();
    sync(f)?;
    let dir = dst.parent().ok_or_else(|| backend("blob path has no parent"))?;
    match fs::create_dir(dir) {
        Ok(()) => sync_dir(dir.parent().ok_or_else(|| backend("no parent"))?)?,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e.into()),
    }
    fs::rename(src, dst)?;
    sync_dir(dir)?;
    Ok(len)
}

async fn remove_if_exists(p: PathBuf) -> Result<()> {
    match tokio::fs::remove_file(p).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::FsBlobStore::open(dir.path()).unwrap();
        berth_blobstore::testsuite::run(&store).await;
    }
}
