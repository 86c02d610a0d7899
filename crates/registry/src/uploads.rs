//! Blob uploads: sessions opened, appended to, completed or cancelled, on either door, and
//! the sweeping of sessions left behind.

use berth_blobstore::ByteStream;
use berth_meta::{LinkTarget, UploadSession};
use berth_types::{Algorithm, Digest, Hasher, RepositoryKey, UploadId, now_ms};
use futures_util::StreamExt;

use crate::authz::{Action, Caller, Target};
use crate::core::{Core, NO_CREATE, check_len, collect_limited, hashing, take, verify};
use crate::{Error, Result, gc, service};

service! {
    /// Uploads: `/v2` blob uploads (`POST`, `PATCH`, `PUT`, `GET`, `DELETE` of
    /// `…/blobs/uploads/`); ECR's `InitiateLayerUpload`, `UploadLayerPart` and
    /// `CompleteLayerUpload`.
    Uploads
}

/// Blobs up to this size, sent whole with a known length, are received in memory and written
/// in one step.
const SMALL_BLOB: u64 = 1 << 20;

/// Where an upload stands: its id and how many bytes it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadStatus {
    pub id: UploadId,
    pub offset: u64,
}

/// One part of an ECR layer upload: its bytes, and the inclusive byte range the client says
/// they fill.
#[derive(Debug, Clone)]
pub struct LayerPart {
    pub first: i64,
    pub last: i64,
    pub data: Vec<u8>,
}

impl Uploads {
    /// ECR's `UploadLayerPart`: appends a part, which must hold bytes, start where the upload
    /// stands, and end where its length says.
    ///
    /// # Errors
    /// `UploadRangeInvalid` (ECR's `InvalidLayerPartException`), `UploadNotFound`.
    pub async fn append_part(
        &self,
        caller: &Caller,
        repo: &RepositoryKey,
        id: &UploadId,
        part: LayerPart,
    ) -> Result<UploadStatus> {
        let expected_last = part.first.saturating_add(i64::try_from(part.data.len()).unwrap_or(i64::MAX)) - 1;
        if part.data.is_empty() || part.last != expected_last {
            return Err(Error::LayerPartInvalid(format!(
                "the part holds {} bytes, so partLastByte must be {expected_last}, not {}",
                part.data.len(),
                part.last
            )));
        }
        let start = u64::try_from(part.first)
            .map_err(|_| Error::LayerPartInvalid("partFirstByte must not be negative".into()))?;
        self.append(caller, repo, id, Some(start), crate::single_chunk(part.data)).await
    }

    /// Opens an upload session.
    ///
    /// # Errors
    /// `RepositoryNotFound` when the repository is missing and may not be created.
    pub async fn start(&self, caller: &Caller, repo: &RepositoryKey) -> Result<UploadStatus> {
        self.authorize(caller, Action::InitiateLayerUpload, Target::Repository(repo), &[]).await?;
        self.create_on_push(caller, repo).await?;
        let now = now_ms();
        let session = UploadSession {
            id: UploadId::generate(),
            repository: repo.clone(),
            offset: 0,
            hash_state: self.seal(&Hasher::new(Algorithm::Sha256), &[]),
            created_at: now,
        };
        let principal = match caller {
            Caller::Principal(p) => p.arn.as_str(),
            Caller::Anonymous => "anonymous",
        };
        self.local.sessions.open(&session.id, principal, self.account_of(caller).as_str(), now)?;
        match self.meta.create_upload(&session, NO_CREATE).await {
            Ok(()) => Ok(UploadStatus { id: session.id, offset: 0 }),
            Err(e) => {
                self.local.sessions.close(&session.id);
                Err(e.into())
            }
        }
    }

    /// Stores a whole blob from one request body (`POST ?digest=`), verifying its digest while
    /// streaming. Nothing is visible unless the digest matches.
    ///
    /// # Errors
    /// `DigestInvalid` on mismatch, `SizeInvalid` when `expected_len` is given and differs.
    pub async fn monolithic(
        &self,
        caller: &Caller,
        repo: &RepositoryKey,
        digest: &Digest,
        expected_len: Option<u64>,
        body: ByteStream,
    ) -> Result<Digest> {
        self.authorize(caller, Action::InitiateLayerUpload, Target::Repository(repo), &[]).await?;
        self.authorize(caller, Action::CompleteLayerUpload, Target::Repository(repo), &[]).await?;
        self.create_on_push(caller, repo).await?;
        if !self.meta.repository_exists(repo).await? {
            return Err(Error::RepositoryNotFound(repo.clone()));
        }
        let target = LinkTarget::Repository(repo.clone(), NO_CREATE);
        if let Some(len) = expected_len.filter(|n| *n <= SMALL_BLOB) {
            let (size, reserved) = self.store_small(digest, body, len).await?;
            self.record_reserved(&target, digest, size, reserved).await?;
            return Ok(digest.clone());
        }
        let id = UploadId::generate();
        let (body, state) = hashing(body, Hasher::new(digest.algorithm()));
        let written = self.blobs.upload_append(&id, 0, body).await;
        let (hasher, _) = take(state);
        let result = async {
            let written = written?;
            check_len(expected_len, written.len)?;
            verify(&hasher.finish(), digest)?;
            let reserved = self.reserve(digest).await?;
            let size = self.blobs.upload_commit(&id, &Vec::from_iter(written.part), digest).await?;
            self.record_reserved(&target, digest, size, reserved).await?;
            Ok(digest.clone())
        }
        .await;
        if result.is_err() {
            self.discard_bytes(&id).await;
        }
        result
    }

    /// Appends a chunk (`PATCH`). `start`, when given, must equal the session's offset.
    ///
    /// # Errors
    /// `UploadNotFound`, `UploadRangeInvalid`, or `BodyFailed` (nothing of the chunk is kept).
    pub async fn append(
        &self,
        caller: &Caller,
        repo: &RepositoryKey,
        id: &UploadId,
        start: Option<u64>,
        body: ByteStream,
    ) -> Result<UploadStatus> {
        self.authorize(caller, Action::UploadLayerPart, Target::Repository(repo), &[]).await?;
        // One request per session at a time: a second one (a retry racing the first, or an
        // attacker's held request) is told where the session stands, as for an out-of-order
        // chunk.
        let Some(_held) = self.local.sessions.hold(id) else {
            let s = self.session(repo, id).await?;
            return Err(Error::UploadRangeInvalid { offset: s.offset });
        };
        let s = self.session(repo, id).await?;
        let (offset, _, _) = self.append_bytes(&s, start, body).await?;
        Ok(UploadStatus { id: id.clone(), offset })
    }

    /// Where an upload stands.
    ///
    /// # Errors
    /// `UploadNotFound`.
    pub async fn status(&self, caller: &Caller, repo: &RepositoryKey, id: &UploadId) -> Result<UploadStatus> {
        self.authorize(caller, Action::UploadLayerPart, Target::Repository(repo), &[]).await?;
        let s = self.session(repo, id).await?;
        Ok(UploadStatus { id: s.id, offset: s.offset })
    }

    /// ECR's `CompleteLayerUpload`: completes an upload that holds bytes, unless the repository
    /// already holds the layer intact, in which case the upload is dropped and the answer is
    /// `LayerAlreadyExists`. Authorized as `ecr:CompleteLayerUpload` alone.
    ///
    /// # Errors
    /// `UploadEmpty`, `LayerAlreadyExists`, and those of `upload_complete`.
    pub async fn complete_layer(
        &self,
        caller: &Caller,
        repo: &RepositoryKey,
        id: &UploadId,
        digest: &Digest,
    ) -> Result<Digest> {
        self.authorize(caller, Action::CompleteLayerUpload, Target::Repository(repo), &[]).await?;
        let _held = self.local.sessions.hold(id).ok_or(Error::UploadNotFound)?;
        let s = self.session(repo, id).await?;
        if s.offset == 0 {
            return Err(Error::UploadEmpty);
        }
        let held = self.meta.blob_in_repository(repo, digest).await?;
        if held.is_some() && self.blobs.stat(digest).await? == held {
            if self.meta.delete_upload(id).await? {
                self.local.sessions.close(id);
                self.discard_bytes(id).await;
            }
            return Err(Error::LayerAlreadyExists(digest.clone()));
        }
        self.complete_held(&s, digest, None).await
    }

    /// Completes an upload (`PUT ?digest=`), with an optional last chunk. On a digest mismatch
    /// the session and its bytes are dropped and nothing becomes visible.
    ///
    /// # Errors
    /// `UploadNotFound`, `DigestInvalid`, `BodyFailed`.
    pub async fn complete(
        &self,
        caller: &Caller,
        repo: &RepositoryKey,
        id: &UploadId,
        digest: &Digest,
        last_chunk: Option<(ByteStream, Option<u64>)>,
    ) -> Result<Digest> {
        self.authorize(caller, Action::CompleteLayerUpload, Target::Repository(repo), &[]).await?;
        // A session another request is working on (a concurrent completion, most likely) is not
        // this request's to complete.
        let _held = self.local.sessions.hold(id).ok_or(Error::UploadNotFound)?;
        let s = self.session(repo, id).await?;
        self.complete_held(&s, digest, last_chunk).await
    }

    /// Cancels an upload and drops its bytes.
    ///
    /// # Errors
    /// `UploadNotFound`.
    pub async fn cancel(&self, caller: &Caller, repo: &RepositoryKey, id: &UploadId) -> Result<()> {
        self.authorize(caller, Action::UploadLayerPart, Target::Repository(repo), &[]).await?;
        let _held = self.local.sessions.hold(id).ok_or(Error::UploadNotFound)?;
        self.session(repo, id).await?;
        if !self.meta.delete_upload(id).await? {
            return Err(Error::UploadNotFound);
        }
        self.local.sessions.close(id);
        self.discard_bytes(id).await;
        Ok(())
    }
}

impl Core {
    /// Receives a small blob of known length in memory, verifies it and stores it in one step
    /// under a reservation. Returns its size and the reservation.
    pub(crate) async fn store_small(
        &self,
        digest: &Digest,
        body: ByteStream,
        len: u64,
    ) -> Result<(u64, gc::Reserved<'_>)> {
        let data = collect_limited(body, usize::try_from(len).unwrap_or(usize::MAX)).await.map_err(|e| match e {
            Error::ManifestTooLarge(_) => Error::SizeInvalid(format!("body is longer than {len} bytes")),
            other => other,
        })?;
        check_len(Some(len), data.len() as u64)?;
        verify(&Digest::of(digest.algorithm(), &data), digest)?;
        let reserved = self.reserve(digest).await?;
        Ok((self.blobs.put_small(digest, data).await?, reserved))
    }

    /// The saved state of a session: its hash state and its parts. Bytes a store keeps as named
    /// parts were whole before the state naming them was written, and bytes appended by this
    /// process are in its page cache: both are trusted. A session a store writes in place, last
    /// written by an earlier process, is trusted only after its stored bytes hash to the same
    /// state. Otherwise it is dropped and the client starts over.
    pub(crate) async fn session_state(&self, s: &UploadSession) -> Result<(Hasher, Vec<String>)> {
        let damaged = || Error::Internal("damaged upload state".into());
        let (epoch, state) = s.hash_state.split_at_checked(8).ok_or_else(damaged)?;
        let (hasher, mut rest) = Hasher::restore_prefix(state).ok_or_else(damaged)?;
        let mut parts = Vec::new();
        while let Some((len, tail)) = rest.split_first_chunk::<2>() {
            let (name, tail) = tail.split_at_checked(usize::from(u16::from_be_bytes(*len))).ok_or_else(damaged)?;
            parts.push(String::from_utf8(name.to_vec()).map_err(|_| damaged())?);
            rest = tail;
        }
        if !rest.is_empty() {
            return Err(damaged());
        }
        if epoch == self.local.epoch || s.offset == 0 || !parts.is_empty() {
            return Ok((hasher, parts));
        }
        let mut check = Hasher::new(hasher.algorithm());
        let mut seen = 0u64;
        if let Ok(mut bytes) = self.blobs.upload_read(&s.id, &parts).await {
            while seen < s.offset {
                let Some(chunk) = bytes.next().await else { break };
                let chunk = chunk.map_err(Error::Internal)?;
                let take = usize::try_from(s.offset - seen).unwrap_or(usize::MAX).min(chunk.len());
                check.update(&chunk[..take]);
                seen += take as u64;
            }
        }
        if seen == s.offset && check.save() == hasher.save() {
            return Ok((hasher, parts));
        }
        tracing::warn!(upload = %s.id, "upload bytes do not match the saved state after a restart; dropping the session");
        self.meta.delete_upload(&s.id).await?;
        self.discard_bytes(&s.id).await;
        Err(Error::UploadNotFound)
    }

    pub(crate) async fn session(&self, repo: &RepositoryKey, id: &UploadId) -> Result<UploadSession> {
        match self.meta.get_upload(id).await? {
            Some(s) if &s.repository == repo => Ok(s),
            _ => Err(Error::UploadNotFound),
        }
    }

    /// Appends to a session at its current offset (`start`, when the client gives one, must
    /// equal it) and records the new offset and hash state.
    pub(crate) async fn append_bytes(
        &self,
        s: &UploadSession,
        start: Option<u64>,
        body: ByteStream,
    ) -> Result<(u64, Hasher, Vec<String>)> {
        if let Some(start) = start
            && start != s.offset
        {
            return Err(Error::UploadRangeInvalid { offset: s.offset });
        }
        let (hasher, mut parts) = self.session_state(s).await?;
        let (body, state) = hashing(body, hasher);
        let len = match self.blobs.upload_append(&s.id, s.offset, body).await {
            Ok(appended) => {
                parts.extend(appended.part);
                appended.len
            }
            Err(berth_blobstore::Error::UploadOffset { .. } | berth_blobstore::Error::NotFound) => {
                return Err(Error::UploadNotFound);
            }
            // The bytes of an earlier request of this session are still being written.
            Err(berth_blobstore::Error::UploadBusy) => return Err(Error::UploadRangeInvalid { offset: s.offset }),
            Err(e) => return Err(e.into()),
        };
        let (hasher, counted) = take(state);
        if len != s.offset + counted {
            return Err(Error::Internal("upload length disagrees with bytes received".into()));
        }
        match self.meta.advance_upload(&s.id, s.offset, len, &self.seal(&hasher, &parts)).await {
            Ok(()) => {
                if len > 0 {
                    self.local.sessions.received(&s.id);
                }
                Ok((len, hasher, parts))
            }
            Err(berth_meta::Error::Conflict(berth_meta::Conflict::UploadMoved(_))) => {
                Err(Error::UploadRangeInvalid { offset: s.offset })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Completes a session this request holds. Unless the last chunk was refused (the session
    /// then stands as it was), the session no longer counts against its owner's limits:
    /// completed, or dropped with its bytes.
    pub(crate) async fn complete_held(
        &self,
        s: &UploadSession,
        digest: &Digest,
        last_chunk: Option<(ByteStream, Option<u64>)>,
    ) -> Result<Digest> {
        let result = self.complete_session(s, digest, last_chunk).await;
        if !matches!(result, Err(Error::UploadRangeInvalid { .. } | Error::BodyFailed(_))) {
            self.local.sessions.close(&s.id);
        }
        result
    }

    pub(crate) async fn complete_session(
        &self,
        s: &UploadSession,
        digest: &Digest,
        last_chunk: Option<(ByteStream, Option<u64>)>,
    ) -> Result<Digest> {
        let id = &s.id;
        let last_chunk = match last_chunk {
            // Nothing was ever appended and nothing comes now: the blob is empty.
            None if s.offset == 0 => Some((futures_util::stream::empty().boxed(), Some(0))),
            other => other,
        };
        let (size, reserved) = match last_chunk {
            // The whole blob in this one request: receive it in memory and store it in one step.
            Some((body, Some(len))) if s.offset == 0 && len <= SMALL_BLOB => {
                match self.store_small(digest, body, len).await {
                    Ok(stored) => stored,
                    Err(e) => {
                        self.meta.delete_upload(id).await?;
                        return Err(e);
                    }
                }
            }
            last_chunk => {
                let (hasher, parts) = match last_chunk {
                    Some((body, _)) => {
                        let (_, hasher, parts) = self.append_bytes(s, None, body).await?;
                        (hasher, parts)
                    }
                    None => self.session_state(s).await?,
                };
                let actual = if hasher.algorithm() == digest.algorithm() {
                    hasher.finish()
                } else {
                    // The session hashed with another algorithm: hash the stored bytes again.
                    let mut h = Hasher::new(digest.algorithm());
                    let mut bytes = self.blobs.upload_read(id, &parts).await?;
                    while let Some(chunk) = bytes.next().await {
                        h.update(&chunk.map_err(Error::Internal)?);
                    }
                    h.finish()
                };
                if let Err(e) = verify(&actual, digest) {
                    self.meta.delete_upload(id).await?;
                    self.discard_bytes(id).await;
                    return Err(e);
                }
                let reserved = self.reserve(digest).await?;
                (self.blobs.upload_commit(id, &parts, digest).await?, reserved)
            }
        };
        // `UploadNotFound` when completed concurrently by a retry of the same request: the blob
        // is linked.
        self.record_reserved(&LinkTarget::Upload(id.clone()), digest, size, reserved).await?;
        Ok(digest.clone())
    }

    /// Removes sessions idle past the expiry and upload bytes whose session is gone. Returns how
    /// many uploads it removed. Safe while uploads run: only bytes untouched for the whole
    /// expiry period and without a live session are removed.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) async fn sweep_uploads(&self) -> Result<usize> {
        let now = now_ms();
        let cutoff = now - self.opts.upload_expiry_ms;
        let mut removed = 0;
        // Sessions that never received a byte live only briefly.
        for id in self.local.sessions.empty_expired(now) {
            let Some(_held) = self.local.sessions.hold(&id) else { continue };
            if self.meta.get_upload(&id).await?.is_some_and(|s| s.offset == 0) && self.meta.delete_upload(&id).await? {
                removed += 1;
            }
            self.local.sessions.close(&id);
        }
        loop {
            let stale = self.meta.stale_uploads(cutoff, 100).await?;
            if stale.is_empty() {
                break;
            }
            let mut progressed = false;
            for id in stale {
                // A session a request is working on right now is not idle.
                let Some(_held) = self.local.sessions.hold(&id) else { continue };
                self.meta.delete_upload(&id).await?;
                self.local.sessions.close(&id);
                self.discard_bytes(&id).await;
                removed += 1;
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        for (id, modified) in self.blobs.uploads().await? {
            if modified < cutoff && self.meta.get_upload(&id).await?.is_none() {
                self.discard_bytes(&id).await;
                removed += 1;
            }
        }
        Ok(removed)
    }
}
