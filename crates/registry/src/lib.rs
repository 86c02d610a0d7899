//! The registry core: every rule of the registry, written once, behind every front door.
//!
//! Front doors parse wire input into `berth_types` values, call one method here with the
//! `Caller`, and format the result. Each method authorizes first, then touches storage.

pub mod authz;
mod cache;
mod error;
mod gc;
pub mod identity;
pub mod lifecycle;
mod paging;
mod policies;
mod scrub;
mod sessions;
pub mod throttle;
mod ttl;

use std::sync::{Arc, Mutex};

use berth_blobstore::{BlobRead, BlobStore, ByteRange, ByteStream};
use berth_meta::{
    CreateRepo, DeleteRepository, LinkTarget, MetaStore, NewManifest, PutOutcome, Referrer, RepositorySettingsChange,
    UploadSession,
};
use berth_types::{
    Algorithm, Digest, Hasher, Page, PageRequest, ParsedManifest, Reference, RepositoryName, Tag, UploadId, now_ms,
};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

pub use authz::{Action, Authorizer, Caller, Origin, Principal, Target};
pub use berth_meta::{Expiration, ImageRecord, RepositoryRecord, RepositorySettings, TagStatus};
pub use berth_meta::{RepositoryUsage, StorageUsage};
pub use cache::Manifest;
pub use error::{BoxError, Error, PolicyKindName, Result};
pub use gc::GcReport;
pub use scrub::ScrubReport;
pub use sessions::UploadLimits;
pub use throttle::Throttled;

#[derive(Debug, Clone)]
pub struct Options {
    /// Whether a push may create the repository it names.
    pub create_on_push: bool,
    /// Largest manifest accepted, in bytes.
    pub max_manifest_bytes: usize,
    /// How long an idle upload session, or upload bytes without a session, are kept.
    pub upload_expiry_ms: i64,
    /// Resolved manifests kept in memory (0: no cache). Only for a single node.
    pub manifest_cache_entries: usize,
    /// How long an unreferenced blob is kept after it was last touched (see `gc`).
    pub gc_grace_ms: i64,
    /// Open upload sessions per principal and per account, and the life of an empty one.
    pub upload_limits: UploadLimits,
    /// Request rates per account and ECR operation (see `throttle`); empty: none.
    pub throttle: throttle::Limits,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            create_on_push: true,
            max_manifest_bytes: 4 * 1024 * 1024,
            upload_expiry_ms: 24 * 3600 * 1000,
            manifest_cache_entries: 10_000,
            gc_grace_ms: 24 * 3600 * 1000,
            upload_limits: UploadLimits::default(),
            throttle: throttle::Limits::new(),
        }
    }
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

/// A stored manifest after a successful put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutManifest {
    pub digest: Digest,
    pub subject: Option<Digest>,
}

pub struct Registry {
    blobs: Arc<dyn BlobStore>,
    meta: Arc<dyn MetaStore>,
    authz: Authorizer,
    opts: Options,
    manifests: cache::ManifestCache,
    /// Pulls since the last flush, by image: the latest time each (ECR's
    /// `lastRecordedPullTime`, and lifecycle's `sinceImagePulled`).
    pulls: Mutex<std::collections::HashMap<(RepositoryName, Digest), i64>>,
    previews: lifecycle::Previews,
    gc: gc::GcState,
    sessions: sessions::Sessions,
    throttle: throttle::Throttle,
    /// Random per process. Saved hash states carry the epoch of the process that wrote them, so
    /// a session written before a restart (perhaps a crash that lost unsynced bytes) is checked
    /// against its bytes before it is trusted.
    epoch: [u8; 8],
}

/// Most resource tags a repository may carry (ECR's limit).
pub const MAX_RESOURCE_TAGS: usize = 50;

/// ECR's rules for tag mutability and its exclusion filters: the `..._WITH_EXCLUSION` modes
/// take 1 to 5 wildcard filters of 1 to 128 characters `[0-9a-zA-Z._*-]`, the others none.
fn check_tag_mutability(mutability: &str, exclusions: &[String]) -> Result<()> {
    let invalid = |m: String| Err(Error::InvalidParameter(m));
    let with_exclusion = mutability.ends_with("_WITH_EXCLUSION");
    if with_exclusion && !(1..=5).contains(&exclusions.len()) {
        return invalid(format!("{mutability} needs 1 to 5 imageTagMutabilityExclusionFilters"));
    }
    if !with_exclusion && !exclusions.is_empty() {
        return invalid(format!(
            "imageTagMutabilityExclusionFilters apply only to the _WITH_EXCLUSION modes, not {mutability}"
        ));
    }
    for f in exclusions {
        let ok = (1..=128).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_alphanumeric() || b"._*-".contains(&b));
        if !ok {
            return invalid(format!("exclusion filter {f:?} must be 1 to 128 characters of [0-9a-zA-Z._*-]"));
        }
    }
    Ok(())
}

/// A body of one chunk already in memory.
#[must_use]
pub fn single_chunk(data: Vec<u8>) -> ByteStream {
    futures_util::stream::iter([Ok(Bytes::from(data))]).boxed()
}

/// Wraps a body so that every chunk is hashed and counted on its way to the blob store.
fn hashing(body: ByteStream, hasher: Hasher) -> (ByteStream, Arc<Mutex<(Hasher, u64)>>) {
    let state = Arc::new(Mutex::new((hasher, 0u64)));
    let tap = Arc::clone(&state);
    let body = body
        .map(move |item| {
            if let Ok(chunk) = &item {
                let mut g = tap.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                g.0.update(chunk);
                g.1 += chunk.len() as u64;
            }
            item
        })
        .boxed();
    (body, state)
}

fn take(state: Arc<Mutex<(Hasher, u64)>>) -> (Hasher, u64) {
    match Arc::try_unwrap(state) {
        Ok(m) => m.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner),
        Err(shared) => shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone(),
    }
}

impl Registry {
    #[must_use]
    pub fn new(blobs: Arc<dyn BlobStore>, meta: Arc<dyn MetaStore>, authz: Authorizer, opts: Options) -> Self {
        let manifests = cache::ManifestCache::new(opts.manifest_cache_entries);
        let throttle = throttle::Throttle::new(&opts.throttle);
        let epoch = uuid::Uuid::new_v4().as_bytes()[..8].try_into().unwrap_or_default();
        Registry {
            sessions: sessions::Sessions::new(opts.upload_limits),
            blobs,
            meta,
            authz,
            opts,
            manifests,
            pulls: Mutex::default(),
            previews: lifecycle::Previews::default(),
            gc: gc::GcState::default(),
            throttle,
            epoch,
        }
    }

    /// With `create_on_push`, a push to a repository that does not exist creates it, owned by
    /// the pusher's account, when the pusher may create repositories (`ecr:CreateRepository`).
    async fn create_on_push(&self, caller: &Caller, repo: &RepositoryName) -> Result<()> {
        if !self.opts.create_on_push || self.meta.repository_exists(repo).await? {
            return Ok(());
        }
        self.authorize(caller, Action::CreateRepository, Target::Repository(repo), &[]).await?;
        let settings = RepositorySettings { owner: Some(self.account_of(caller).to_owned()), ..Default::default() };
        match self.meta.create_repository_with(repo, &settings).await {
            // Conflict: another push created it first.
            Ok(_) | Err(berth_meta::Error::Conflict(_)) => {
                self.forget_repository(repo);
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Maps "the repository is missing" from a store write into the domain error.
    fn missing_repo(repo: &RepositoryName) -> impl FnOnce(berth_meta::Error) -> Error + '_ {
        move |e| match e {
            berth_meta::Error::NotFound => Error::RepositoryNotFound(repo.clone()),
            other => other.into(),
        }
    }

    /// The API root: succeeds for any caller allowed to use the registry at all.
    ///
    /// # Errors
    /// `Unauthenticated` when the caller may not use the registry: anonymous where that is not
    /// configured, or a user that no longer exists.
    pub async fn check_access(&self, caller: &Caller) -> Result<()> {
        match caller {
            Caller::Anonymous if !self.authz.allows_anonymous() => Err(Error::Unauthenticated),
            Caller::Anonymous => Ok(()),
            Caller::Principal(p) => self.identity_policies(p).await.map(drop),
        }
    }

    /// Admits one request of ECR `operation` (or the `/v2` request that maps to it) from the
    /// caller's account, under the configured rates. Each front door calls it once per
    /// request, after authentication.
    ///
    /// # Errors
    /// `Throttled` when the account's bucket for the operation is empty.
    pub fn throttle(&self, caller: &Caller, operation: &str) -> Result<(), Throttled> {
        self.throttle.admit(caller, operation, std::time::Instant::now())
    }

    // ---- repositories ----

    /// Creates a repository with `settings` and resource `tags`, owned by the caller's account.
    ///
    /// # Errors
    /// `RepositoryAlreadyExists`, `TooManyTags`.
    pub async fn repository_create(
        &self,
        caller: &Caller,
        name: &RepositoryName,
        settings: &RepositorySettings,
        tags: &[(String, String)],
    ) -> Result<RepositoryRecord> {
        self.authorize(caller, Action::CreateRepository, Target::Repository(name), tags).await?;
        if !tags.is_empty() {
            self.authorize(caller, Action::TagResource, Target::Repository(name), tags).await?;
        }
        if tags.len() > MAX_RESOURCE_TAGS {
            return Err(Error::TooManyTags(MAX_RESOURCE_TAGS));
        }
        check_tag_mutability(&settings.tag_mutability, &settings.tag_mutability_exclusions)?;
        let settings = RepositorySettings { owner: Some(self.account_of(caller).to_owned()), ..settings.clone() };
        let record = match self.meta.create_repository_with(name, &settings).await {
            Ok(r) => r,
            Err(berth_meta::Error::Conflict(_)) => return Err(Error::RepositoryAlreadyExists(name.clone())),
            Err(e) => return Err(e.into()),
        };
        self.forget_repository(name);
        if !tags.is_empty() {
            self.meta.update_repository_tags(name, tags, &[]).await?;
        }
        Ok(record)
    }

    /// The account a caller acts in (the default account for an anonymous caller).
    #[must_use]
    pub fn account_of<'a>(&'a self, caller: &'a Caller) -> &'a str {
        match caller {
            Caller::Principal(p) => &p.account,
            Caller::Anonymous => self.authz.default_account(),
        }
    }

    /// The named repositories (each must exist), or a page of all of them. A page's `next` is
    /// an opaque marker (the `paging` module); `page.after` must be one this listing made.
    ///
    /// # Errors
    /// `RepositoryNotFound` for a named repository that does not exist, `InvalidParameter` for
    /// a marker this server did not make for this registry's listing.
    pub async fn repository_describe(
        &self,
        caller: &Caller,
        registry: Option<&str>,
        names: Option<&[RepositoryName]>,
        page: &PageRequest,
    ) -> Result<Page<RepositoryRecord>> {
        let registry = registry.unwrap_or_else(|| self.account_of(caller)).to_owned();
        let Some(names) = names else {
            // A page of the registry's repositories, keeping those the caller may describe.
            let listing = paging::Listing::Repositories(&registry);
            let mut after = match page.after.as_deref() {
                None => None,
                Some(marker) => Some(
                    paging::open_marker(&self.authz.keys.seal, listing, marker)
                        .ok_or_else(|| Error::InvalidParameter("Invalid parameter at 'nextToken'".to_owned()))?,
                ),
            };
            let want = page.limit.unwrap_or(usize::MAX);
            let (mut items, mut examined) = (Vec::new(), 0);
            let more = loop {
                if items.len() >= want || examined >= paging::SCAN_BUDGET {
                    break true;
                }
                let limit = (want - items.len()).clamp(16, paging::SCAN_BATCH).min(paging::SCAN_BUDGET - examined);
                let found = self
                    .meta
                    .list_repository_records(&PageRequest { limit: Some(limit), after: after.clone() })
                    .await?;
                let (rows, exhausted) = (found.items.len(), found.next.is_none());
                let mut used = 0;
                for r in found.items {
                    used += 1;
                    examined += 1;
                    after = Some(r.name.to_string());
                    let owner = r.settings.owner.as_deref().unwrap_or(self.authz.default_account());
                    if owner == registry
                        && self
                            .authorize(caller, Action::DescribeRepositories, Target::Repository(&r.name), &[])
                            .await
                            .is_ok()
                    {
                        items.push(r);
                        if items.len() >= want {
                            break;
                        }
                    }
                }
                if used == rows && exhausted {
                    break false;
                }
            };
            let next = match after {
                Some(position) if more => Some(paging::seal_marker(&self.authz.keys.seal, listing, &position)?),
                _ => None,
            };
            return Ok(Page { items, next });
        };
        let mut items = Vec::with_capacity(names.len());
        for name in names {
            self.authorize(caller, Action::DescribeRepositories, Target::Repository(name), &[]).await?;
            let r = self.meta.get_repository(name).await?.ok_or_else(|| Error::RepositoryNotFound(name.clone()))?;
            if r.settings.owner.as_deref().unwrap_or(self.authz.default_account()) != registry {
                return Err(Error::RepositoryNotFound(name.clone()));
            }
            items.push(r);
        }
        Ok(Page { items, next: None })
    }

    /// Deletes a repository; with `force`, also its images.
    ///
    /// # Errors
    /// `RepositoryNotFound`, `RepositoryNotEmpty`.
    pub async fn repository_delete(
        &self,
        caller: &Caller,
        name: &RepositoryName,
        force: bool,
    ) -> Result<RepositoryRecord> {
        self.authorize(caller, Action::DeleteRepository, Target::Repository(name), &[]).await?;
        let outcome = self.meta.delete_repository(name, force).await?;
        self.manifests.invalidate(name);
        self.forget_repository(name);
        match outcome {
            DeleteRepository::Deleted(r) => Ok(r),
            DeleteRepository::NotFound => Err(Error::RepositoryNotFound(name.clone())),
            DeleteRepository::NotEmpty => Err(Error::RepositoryNotEmpty(name.clone())),
        }
    }

    // ---- blobs ----

    /// Size of a blob the repository holds.
    ///
    /// # Errors
    /// `BlobNotFound` when the repository does not hold it.
    pub async fn blob_stat(&self, caller: &Caller, repo: &RepositoryName, digest: &Digest) -> Result<u64> {
        self.authorize(caller, Action::BatchCheckLayerAvailability, Target::Repository(repo), &[]).await?;
        let size =
            self.meta.blob_in_repository(repo, digest).await?.ok_or_else(|| Error::BlobNotFound(digest.clone()))?;
        // A client that finds the blob skips its upload, so its bytes must be there: missing or
        // cut short, the client is told to push it again, which stores it anew.
        if self.blobs.stat(digest).await? != Some(size) {
            return Err(self.damaged(digest, "missing or of the wrong size"));
        }
        // A client that finds the blob skips its upload and references it soon.
        self.touch(digest).await;
        Ok(size)
    }

    /// Streams a blob, or the inclusive range of it that `range` picks once the blob's size is
    /// known.
    ///
    /// # Errors
    /// `BlobNotFound`, `RangeNotSatisfiable`, or what `range` returns.
    pub async fn blob_read(
        &self,
        caller: &Caller,
        repo: &RepositoryName,
        digest: &Digest,
        range: impl FnOnce(u64) -> Result<Option<ByteRange>>,
    ) -> Result<BlobRead> {
        self.authorize(caller, Action::GetDownloadUrlForLayer, Target::Repository(repo), &[]).await?;
        let size =
            self.meta.blob_in_repository(repo, digest).await?.ok_or_else(|| Error::BlobNotFound(digest.clone()))?;
        match self.blobs.read(digest, range(size)?).await {
            Ok(r) if r.size == size => Ok(r),
            Ok(_) => Err(self.damaged(digest, "of the wrong size")),
            Err(berth_blobstore::Error::NotFound) => Err(self.damaged(digest, "missing")),
            Err(berth_blobstore::Error::InvalidRange) => match self.blobs.stat(digest).await? {
                Some(held) if held != size => Err(self.damaged(digest, "of the wrong size")),
                _ => Err(Error::RangeNotSatisfiable { size }),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// A blob whose stored bytes are not what its record says: logged, and reported to the
    /// client as needing a push (which stores the bytes anew).
    fn damaged(&self, digest: &Digest, how: &str) -> Error {
        tracing::error!(%digest, "stored bytes of a recorded blob are {how}; a push of the blob will repair it");
        Error::BlobDamaged(digest.clone())
    }

    /// Checks that the caller may read a blob the repository holds, without reading it.
    ///
    /// # Errors
    /// `BlobNotFound`.
    pub async fn blob_read_check(&self, caller: &Caller, repo: &RepositoryName, digest: &Digest) -> Result<u64> {
        self.authorize(caller, Action::GetDownloadUrlForLayer, Target::Repository(repo), &[]).await?;
        self.meta.blob_in_repository(repo, digest).await?.ok_or_else(|| Error::BlobNotFound(digest.clone()))
    }

    /// Removes a blob from a repository (its bytes go when nothing references them).
    ///
    /// # Errors
    /// `BlobNotFound` when the repository does not hold it.
    pub async fn blob_delete(&self, caller: &Caller, repo: &RepositoryName, digest: &Digest) -> Result<()> {
        self.authorize(caller, Action::BatchDeleteImage, Target::Repository(repo), &[]).await?;
        if self.meta.unlink_blob(repo, digest).await? { Ok(()) } else { Err(Error::BlobNotFound(digest.clone())) }
    }

    /// Links a blob held by `from` into `to`. `None` when `from` does not hold it (or may not be
    /// read), in which case the client falls back to uploading.
    ///
    /// # Errors
    /// Authorization or storage failures.
    pub async fn blob_mount(
        &self,
        caller: &Caller,
        to: &RepositoryName,
        from: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<Digest>> {
        self.authorize(caller, Action::CompleteLayerUpload, Target::Repository(to), &[]).await?;
        if self.authorize(caller, Action::GetDownloadUrlForLayer, Target::Repository(from), &[]).await.is_err() {
            return Ok(None);
        }
        self.create_on_push(caller, to).await?;
        let mounted = self.meta.mount_blob(from, to, digest, CreateRepo::No).await.map_err(Self::missing_repo(to))?;
        if mounted {
            self.touch(digest).await;
        }
        Ok(mounted.then(|| digest.clone()))
    }

    // ---- uploads ----

    /// Opens an upload session.
    ///
    /// # Errors
    /// `RepositoryNotFound` when the repository is missing and may not be created.
    pub async fn upload_start(&self, caller: &Caller, repo: &RepositoryName) -> Result<UploadStatus> {
        self.authorize(caller, Action::InitiateLayerUpload, Target::Repository(repo), &[]).await?;
        self.create_on_push(caller, repo).await?;
        let now = now_ms();
        let session = UploadSession {
            id: UploadId::generate(),
            repository: repo.clone(),
            offset: 0,
            hash_state: self.seal(&Hasher::new(Algorithm::Sha256)),
            created_at: now,
        };
        let principal = match caller {
            Caller::Principal(p) => p.arn.as_str(),
            Caller::Anonymous => "anonymous",
        };
        self.sessions.open(&session.id, principal, self.account_of(caller), now)?;
        match self.meta.create_upload(&session, CreateRepo::No).await {
            Ok(()) => Ok(UploadStatus { id: session.id, offset: 0 }),
            Err(e) => {
                self.sessions.close(&session.id);
                Err(match e {
                    berth_meta::Error::NotFound => Error::RepositoryNotFound(repo.clone()),
                    berth_meta::Error::Conflict(m) => Error::LimitExceeded(m),
                    other => other.into(),
                })
            }
        }
    }

    /// Stores a whole blob from one request body (`POST ?digest=`), verifying its digest while
    /// streaming. Nothing is visible unless the digest matches.
    ///
    /// # Errors
    /// `DigestInvalid` on mismatch, `SizeInvalid` when `expected_len` is given and differs.
    pub async fn upload_monolithic(
        &self,
        caller: &Caller,
        repo: &RepositoryName,
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
        let target = LinkTarget::Repository(repo.clone(), CreateRepo::No);
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
            let len = written?;
            check_len(expected_len, len)?;
            verify(&hasher.finish(), digest)?;
            let reserved = self.reserve(digest).await?;
            let size = self.blobs.upload_commit(&id, digest).await?;
            self.record_reserved(&target, digest, size, reserved).await?;
            Ok(digest.clone())
        }
        .await;
        if result.is_err() {
            self.discard_bytes(&id).await;
        }
        result
    }

    /// Receives a small blob of known length in memory, verifies it and stores it in one step
    /// under a reservation. Returns its size and the reservation.
    async fn store_small(&self, digest: &Digest, body: ByteStream, len: u64) -> Result<(u64, gc::Reserved<'_>)> {
        let data = collect_limited(body, usize::try_from(len).unwrap_or(usize::MAX)).await.map_err(|e| match e {
            Error::ManifestTooLarge(_) => Error::SizeInvalid(format!("body is longer than {len} bytes")),
            other => other,
        })?;
        check_len(Some(len), data.len() as u64)?;
        verify(&Digest::of(digest.algorithm(), &data), digest)?;
        let reserved = self.reserve(digest).await?;
        Ok((self.blobs.put_small(digest, data).await?, reserved))
    }

    async fn discard_bytes(&self, id: &UploadId) {
        if let Err(e) = self.blobs.upload_abort(id).await {
            tracing::warn!(upload = %id, error = %e, "could not remove upload bytes; the sweeper will");
        }
    }

    /// A hash state to save with a session: this process's epoch, then the state.
    fn seal(&self, h: &Hasher) -> Vec<u8> {
        [&self.epoch[..], &h.save()].concat()
    }

    /// The hash state of a session. Bytes appended by this process are in its page cache and
    /// trusted; a session last written by an earlier process is trusted only after its stored
    /// bytes hash to the same state. Otherwise it is dropped and the client starts over.
    async fn session_hasher(&self, s: &UploadSession) -> Result<Hasher> {
        let damaged = || Error::Internal("damaged upload state".into());
        let (epoch, state) = s.hash_state.split_at_checked(8).ok_or_else(damaged)?;
        let hasher = Hasher::restore(state).ok_or_else(damaged)?;
        if epoch == self.epoch || s.offset == 0 {
            return Ok(hasher);
        }
        let mut check = Hasher::new(hasher.algorithm());
        let mut seen = 0u64;
        if let Ok(mut bytes) = self.blobs.upload_read(&s.id).await {
            while seen < s.offset {
                let Some(chunk) = bytes.next().await else { break };
                let chunk = chunk.map_err(Error::Internal)?;
                let take = usize::try_from(s.offset - seen).unwrap_or(usize::MAX).min(chunk.len());
                check.update(&chunk[..take]);
                seen += take as u64;
            }
        }
        if seen == s.offset && check.save() == hasher.save() {
            return Ok(hasher);
        }
        tracing::warn!(upload = %s.id, "upload bytes do not match the saved state after a restart; dropping the session");
        self.meta.delete_upload(&s.id).await?;
        self.discard_bytes(&s.id).await;
        Err(Error::UploadNotFound)
    }

    async fn session(&self, repo: &RepositoryName, id: &UploadId) -> Result<UploadSession> {
        match self.meta.get_upload(id).await? {
            Some(s) if &s.repository == repo => Ok(s),
            _ => Err(Error::UploadNotFound),
        }
    }

    /// Appends to a session at its current offset (`start`, when the client gives one, must
    /// equal it) and records the new offset and hash state.
    async fn append(&self, s: &UploadSession, start: Option<u64>, body: ByteStream) -> Result<(u64, Hasher)> {
        if let Some(start) = start
            && start != s.offset
        {
            return Err(Error::UploadRangeInvalid { offset: s.offset });
        }
        let hasher = self.session_hasher(s).await?;
        let (body, state) = hashing(body, hasher);
        let len = match self.blobs.upload_append(&s.id, s.offset, body).await {
            Ok(len) => len,
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
        match self.meta.advance_upload(&s.id, s.offset, len, &self.seal(&hasher)).await {
            Ok(()) => {
                if len > 0 {
                    self.sessions.received(&s.id);
                }
                Ok((len, hasher))
            }
            Err(berth_meta::Error::Conflict(_)) => Err(Error::UploadRangeInvalid { offset: s.offset }),
            Err(e) => Err(e.into()),
        }
    }

    /// Appends a chunk (`PATCH`). `start`, when given, must equal the session's offset.
    ///
    /// # Errors
    /// `UploadNotFound`, `UploadRangeInvalid`, or `BodyFailed` (nothing of the chunk is kept).
    pub async fn upload_append(
        &self,
        caller: &Caller,
        repo: &RepositoryName,
        id: &UploadId,
        start: Option<u64>,
        body: ByteStream,
    ) -> Result<UploadStatus> {
        self.authorize(caller, Action::UploadLayerPart, Target::Repository(repo), &[]).await?;
        // One request per session at a time: a second one (a retry racing the first, or an
        // attacker's held request) is told where the session stands, as for an out-of-order
        // chunk.
        let Some(_held) = self.sessions.hold(id) else {
            let s = self.session(repo, id).await?;
            return Err(Error::UploadRangeInvalid { offset: s.offset });
        };
        let s = self.session(repo, id).await?;
        let (offset, _) = self.append(&s, start, body).await?;
        Ok(UploadStatus { id: id.clone(), offset })
    }

    /// Where an upload stands.
    ///
    /// # Errors
    /// `UploadNotFound`.
    pub async fn upload_status(&self, caller: &Caller, repo: &RepositoryName, id: &UploadId) -> Result<UploadStatus> {
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
    pub async fn upload_complete_layer(
        &self,
        caller: &Caller,
        repo: &RepositoryName,
        id: &UploadId,
        digest: &Digest,
    ) -> Result<Digest> {
        self.authorize(caller, Action::CompleteLayerUpload, Target::Repository(repo), &[]).await?;
        let _held = self.sessions.hold(id).ok_or(Error::UploadNotFound)?;
        let s = self.session(repo, id).await?;
        if s.offset == 0 {
            return Err(Error::UploadEmpty);
        }
        let held = self.meta.blob_in_repository(repo, digest).await?;
        if held.is_some() && self.blobs.stat(digest).await? == held {
            if self.meta.delete_upload(id).await? {
                self.sessions.close(id);
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
    pub async fn upload_complete(
        &self,
        caller: &Caller,
        repo: &RepositoryName,
        id: &UploadId,
        digest: &Digest,
        last_chunk: Option<(ByteStream, Option<u64>)>,
    ) -> Result<Digest> {
        self.authorize(caller, Action::CompleteLayerUpload, Target::Repository(repo), &[]).await?;
        // A session another request is working on (a concurrent completion, most likely) is not
        // this request's to complete.
        let _held = self.sessions.hold(id).ok_or(Error::UploadNotFound)?;
        let s = self.session(repo, id).await?;
        self.complete_held(&s, digest, last_chunk).await
    }

    /// Completes a session this request holds. Unless the last chunk was refused (the session
    /// then stands as it was), the session no longer counts against its owner's limits:
    /// completed, or dropped with its bytes.
    async fn complete_held(
        &self,
        s: &UploadSession,
        digest: &Digest,
        last_chunk: Option<(ByteStream, Option<u64>)>,
    ) -> Result<Digest> {
        let result = self.complete_session(s, digest, last_chunk).await;
        if !matches!(result, Err(Error::UploadRangeInvalid { .. } | Error::BodyFailed(_))) {
            self.sessions.close(&s.id);
        }
        result
    }

    async fn complete_session(
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
                let hasher = match last_chunk {
                    Some((body, _)) => self.append(s, None, body).await?.1,
                    None => self.session_hasher(s).await?,
                };
                let actual = if hasher.algorithm() == digest.algorithm() {
                    hasher.finish()
                } else {
                    // The session hashed with another algorithm: hash the stored bytes again.
                    let mut h = Hasher::new(digest.algorithm());
                    let mut bytes = self.blobs.upload_read(id).await?;
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
                (self.blobs.upload_commit(id, digest).await?, reserved)
            }
        };
        // `UploadNotFound` when completed concurrently by a retry of the same request: the blob
        // is linked.
        self.record_reserved(&LinkTarget::Upload(id.clone()), digest, size, reserved).await?;
        Ok(digest.clone())
    }

    /// Cancels an upload and drops its bytes.
    ///
    /// # Errors
    /// `UploadNotFound`.
    pub async fn upload_cancel(&self, caller: &Caller, repo: &RepositoryName, id: &UploadId) -> Result<()> {
        self.authorize(caller, Action::UploadLayerPart, Target::Repository(repo), &[]).await?;
        let _held = self.sessions.hold(id).ok_or(Error::UploadNotFound)?;
        self.session(repo, id).await?;
        if !self.meta.delete_upload(id).await? {
            return Err(Error::UploadNotFound);
        }
        self.sessions.close(id);
        self.discard_bytes(id).await;
        Ok(())
    }

    /// Removes sessions idle past the expiry and upload bytes whose session is gone. Returns how
    /// many uploads it removed. Safe while uploads run: only bytes untouched for the whole
    /// expiry period and without a live session are removed.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn sweep_uploads(&self) -> Result<usize> {
        let now = now_ms();
        let cutoff = now - self.opts.upload_expiry_ms;
        let mut removed = 0;
        // Sessions that never received a byte live only briefly.
        for id in self.sessions.empty_expired(now) {
            let Some(_held) = self.sessions.hold(&id) else { continue };
            if self.meta.get_upload(&id).await?.is_some_and(|s| s.offset == 0) && self.meta.delete_upload(&id).await? {
                removed += 1;
            }
            self.sessions.close(&id);
        }
        loop {
            let stale = self.meta.stale_uploads(cutoff, 100).await?;
            if stale.is_empty() {
                break;
            }
            let mut progressed = false;
            for id in stale {
                // A session a request is working on right now is not idle.
                let Some(_held) = self.sessions.hold(&id) else { continue };
                self.meta.delete_upload(&id).await?;
                self.sessions.close(&id);
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

    // ---- manifests ----

    /// A manifest by tag or digest.
    ///
    /// # Errors
    /// `ImageNotFound`.
    pub async fn manifest_get(
        &self,
        caller: &Caller,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<Arc<Manifest>> {
        self.authorize(caller, Action::BatchGetImage, Target::Repository(repo), &[]).await?;
        let generation = match self.manifests.get(repo, reference) {
            Ok(hit) => {
                self.note_pull(repo, &hit.digest);
                return Ok(hit);
            }
            Err(generation) => generation,
        };
        let record = self
            .meta
            .resolve(repo, reference)
            .await?
            .ok_or_else(|| Error::ImageNotFound { repository: repo.clone(), reference: reference.to_string() })?;
        let m = Arc::new(Manifest {
            digest: record.digest,
            media_type: record.media_type,
            payload: Bytes::from(record.payload),
        });
        self.manifests.fill(repo, reference, generation, &m);
        self.note_pull(repo, &m.digest);
        Ok(m)
    }

    fn note_pull(&self, repo: &RepositoryName, digest: &Digest) {
        let mut pulls = self.pulls.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        pulls.insert((repo.clone(), digest.clone()), now_ms());
    }

    /// Writes the pull times noted since the last flush; returns how many images it touched.
    ///
    /// # Errors
    /// Storage failures (the times are then kept for the next flush).
    pub async fn flush_pulls(&self) -> Result<usize> {
        let taken = std::mem::take(&mut *self.pulls.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        if taken.is_empty() {
            return Ok(0);
        }
        let batch: Vec<_> = taken.into_iter().map(|((r, d), at)| (r, d, at)).collect();
        if let Err(e) = self.meta.record_pulls(&batch).await {
            let mut pulls = self.pulls.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for (r, d, at) in batch {
                let slot = pulls.entry((r, d)).or_insert(at);
                *slot = (*slot).max(at);
            }
            return Err(e.into());
        }
        Ok(batch.len())
    }

    /// Stores a manifest under a tag or its digest, after checking it parses, matches the digest
    /// it is put under, and references only what the repository holds.
    ///
    /// # Errors
    /// `ManifestInvalid`, `ManifestTooLarge`, `DigestInvalid`, `ManifestBlobUnknown`.
    pub async fn manifest_put(
        &self,
        caller: &Caller,
        repo: &RepositoryName,
        reference: &Reference,
        content_type: Option<&str>,
        body: ByteStream,
    ) -> Result<PutManifest> {
        self.authorize(caller, Action::PutImage, Target::Repository(repo), &[]).await?;
        let payload = collect_limited(body, self.opts.max_manifest_bytes).await?;
        let (digest, tag) = match reference {
            Reference::Digest(d) => {
                let actual = Digest::of(d.algorithm(), &payload);
                verify(&actual, d)?;
                (actual, None)
            }
            Reference::Tag(t) => (Digest::of(Algorithm::Sha256, &payload), Some(t.clone())),
        };
        let parsed =
            ParsedManifest::parse(content_type, &payload).map_err(|e| Error::ManifestInvalid(e.to_string()))?;
        let m = NewManifest {
            repository: repo.clone(),
            digest: digest.clone(),
            media_type: parsed.media_type,
            payload: payload.to_vec(),
            artifact_type: parsed.artifact_type,
            subject: parsed.subject.clone(),
            annotations: parsed.annotations.map(|a| serde_json::Value::Object(a).to_string()),
            blobs: parsed.blobs,
            children: parsed.children,
            tag,
        };
        self.create_on_push(caller, repo).await?;
        match self.meta.put_manifest(&m, CreateRepo::No).await.map_err(Self::missing_repo(repo))? {
            PutOutcome::Stored => {
                self.manifests.invalidate(repo);
                Ok(PutManifest { digest, subject: parsed.subject })
            }
            PutOutcome::MissingReferences(missing) => Err(Error::ManifestBlobUnknown(missing)),
            PutOutcome::TagImmutable { .. } => Err(Error::TagImmutable {
                repository: repo.clone(),
                tag: m.tag.as_ref().map(ToString::to_string).unwrap_or_default(),
            }),
        }
    }

    /// ECR's `PutImage`: stores a manifest given whole, under a tag or only its digest. Unlike a
    /// `/v2` push, putting the same image under the same tag again is refused.
    ///
    /// # Errors
    /// `ImageAlreadyExists`, `ImageDigestMismatch`, and those of `manifest_put`.
    pub async fn image_put(
        &self,
        caller: &Caller,
        repo: &RepositoryName,
        manifest: Bytes,
        media_type: Option<&str>,
        tag: Option<&Tag>,
        digest: Option<&str>,
    ) -> Result<PutManifest> {
        self.authorize(caller, Action::PutImage, Target::Repository(repo), &[]).await?;
        let algorithm = digest.and_then(|d| Digest::parse(d).ok()).map_or(Algorithm::Sha256, |d| d.algorithm());
        let actual = Digest::of(algorithm, &manifest);
        if let Some(expected) = digest
            && expected != actual.as_str()
        {
            return Err(Error::ImageDigestMismatch { expected: expected.to_owned(), actual });
        }
        // ECR stores nothing whose type it cannot tell: the manifest's own `mediaType`, or
        // `imageManifestMediaType`, must say it.
        if media_type.is_none()
            && !serde_json::from_slice::<serde_json::Value>(&manifest)
                .is_ok_and(|m| m.get("mediaType").is_some_and(serde_json::Value::is_string))
        {
            return Err(Error::InvalidParameter(
                "Invalid parameter at 'imageManifest': the manifest has no mediaType, and no \
                 imageManifestMediaType was given"
                    .into(),
            ));
        }
        if let Some(t) = tag
            && self.meta.resolve(repo, &Reference::Tag(t.clone())).await?.is_some_and(|m| m.digest == actual)
        {
            return Err(Error::ImageAlreadyExists { repository: repo.clone(), digest: actual, tag: t.to_string() });
        }
        let reference = tag.map_or_else(|| Reference::Digest(actual.clone()), |t| Reference::Tag(t.clone()));
        let body = futures_util::stream::iter([Ok(manifest)]).boxed();
        self.manifest_put(caller, repo, &reference, media_type, body).await
    }

    /// Sets whether a repository's tags may be moved.
    ///
    /// # Errors
    /// `RepositoryNotFound`.
    pub async fn repository_set_tag_mutability(
        &self,
        caller: &Caller,
        repo: &RepositoryName,
        mutability: &str,
        exclusions: &[String],
    ) -> Result<RepositoryRecord> {
        check_tag_mutability(mutability, exclusions)?;
        let change = RepositorySettingsChange {
            tag_mutability: Some(mutability.to_owned()),
            tag_mutability_exclusions: Some(exclusions.to_vec()),
            ..RepositorySettingsChange::default()
        };
        self.repository_change(caller, repo, Action::PutImageTagMutability, &change).await
    }

    /// Sets whether images are scanned on push.
    ///
    /// # Errors
    /// `RepositoryNotFound`.
    pub async fn repository_set_scan_on_push(
        &self,
        caller: &Caller,
        repo: &RepositoryName,
        scan_on_push: bool,
    ) -> Result<RepositoryRecord> {
        let change =
            RepositorySettingsChange { scan_on_push: Some(scan_on_push), ..RepositorySettingsChange::default() };
        self.repository_change(caller, repo, Action::PutImageScanningConfiguration, &change).await
    }

    async fn repository_change(
        &self,
        caller: &Caller,
        repo: &RepositoryName,
        action: Action,
        change: &RepositorySettingsChange,
    ) -> Result<RepositoryRecord> {
        self.authorize(caller, action, Target::Repository(repo), &[]).await?;
        self.meta.update_repository(repo, change).await?.ok_or_else(|| Error::RepositoryNotFound(repo.clone()))
    }

    /// Changes a repository's resource tags (`set`, then `remove`) and returns them; with no
    /// change, lists them. At most [`MAX_RESOURCE_TAGS`] tags.
    ///
    /// # Errors
    /// `RepositoryNotFound`, `TooManyTags`.
    pub async fn repository_tags(
        &self,
        caller: &Caller,
        repo: &RepositoryName,
        set: &[(String, String)],
        remove: &[String],
    ) -> Result<Vec<(String, String)>> {
        let action = match (set.is_empty(), remove.is_empty()) {
            (true, true) => Action::ListTagsForResource,
            (false, _) => Action::TagResource,
            (true, false) => Action::UntagResource,
        };
        self.authorize(caller, action, Target::Repository(repo), set).await?;
        let missing = || Error::RepositoryNotFound(repo.clone());
        if !set.is_empty() {
            let current = self.meta.update_repository_tags(repo, &[], &[]).await?.ok_or_else(missing)?;
            let mut keys: std::collections::BTreeSet<&str> = current.iter().map(|(k, _)| k.as_str()).collect();
            keys.extend(set.iter().map(|(k, _)| k.as_str()));
            for k in remove {
                keys.remove(k.as_str());
            }
            if keys.len() > MAX_RESOURCE_TAGS {
                return Err(Error::TooManyTags(MAX_RESOURCE_TAGS));
            }
        }
        let tags = self.meta.update_repository_tags(repo, set, remove).await?.ok_or_else(missing)?;
        self.forget_repository(repo);
        Ok(tags)
    }

    /// That `repo` exists, for a caller allowed `action` on it (for operations that then fail
    /// item by item).
    ///
    /// # Errors
    /// `RepositoryNotFound`.
    pub async fn repository_check(&self, caller: &Caller, repo: &RepositoryName, action: Action) -> Result<()> {
        self.authorize(caller, action, Target::Repository(repo), &[]).await?;
        if self.meta.repository_exists(repo).await? { Ok(()) } else { Err(Error::RepositoryNotFound(repo.clone())) }
    }

    /// The registry as a whole may be described.
    ///
    /// # Errors
    /// Authorization failures.
    pub async fn registry_describe(&self, caller: &Caller) -> Result<()> {
        self.authorize(caller, Action::DescribeRegistry, Target::Registry, &[]).await
    }

    /// Deletes a manifest by digest (with its tags), or just a tag.
    ///
    /// # Errors
    /// `ImageNotFound`.
    pub async fn manifest_delete(&self, caller: &Caller, repo: &RepositoryName, reference: &Reference) -> Result<()> {
        self.authorize(caller, Action::BatchDeleteImage, Target::Repository(repo), &[]).await?;
        let deleted = match reference {
            Reference::Digest(d) => self.meta.delete_manifest(repo, d).await?,
            Reference::Tag(t) => self.meta.delete_tag(repo, t, false).await?.is_some(),
        };
        self.manifests.invalidate(repo);
        if deleted {
            Ok(())
        } else {
            Err(Error::ImageNotFound { repository: repo.clone(), reference: reference.to_string() })
        }
    }

    /// Images of a repository as ECR lists them, in digest order.
    ///
    /// # Errors
    /// `RepositoryNotFound`.
    pub async fn images(
        &self,
        caller: &Caller,
        action: Action,
        repo: &RepositoryName,
        status: TagStatus,
        page: &PageRequest,
    ) -> Result<Page<ImageRecord>> {
        self.authorize(caller, action, Target::Repository(repo), &[]).await?;
        self.meta.list_images(repo, status, page).await.map_err(Self::missing_repo(repo))
    }

    /// With a digest and a tag both (an ECR image id naming both), checks that the tag names
    /// that image: an image id whose tag is not the digest's names no image.
    async fn check_pair(&self, repo: &RepositoryName, reference: &Reference, tag: Option<&Tag>) -> Result<()> {
        let (Reference::Digest(d), Some(t)) = (reference, tag) else { return Ok(()) };
        match self.meta.resolve(repo, &Reference::Tag(t.clone())).await? {
            Some(m) if &m.digest == d => Ok(()),
            _ => Err(Error::ImageNotFound { repository: repo.clone(), reference: format!("{t}@{d}") }),
        }
    }

    /// One image, by tag or digest (with `tag` too: the digest's image only if `tag` names it),
    /// for a caller allowed `action`.
    ///
    /// # Errors
    /// `RepositoryNotFound`, `ImageNotFound`.
    pub async fn image(
        &self,
        caller: &Caller,
        action: Action,
        repo: &RepositoryName,
        reference: &Reference,
        tag: Option<&Tag>,
    ) -> Result<ImageRecord> {
        self.authorize(caller, action, Target::Repository(repo), &[]).await?;
        let not_found = || Error::ImageNotFound { repository: repo.clone(), reference: reference.to_string() };
        let found = async {
            self.check_pair(repo, reference, tag).await?;
            let digest = match reference {
                Reference::Digest(d) => d.clone(),
                Reference::Tag(_) => self.meta.resolve(repo, reference).await?.ok_or_else(not_found)?.digest,
            };
            self.meta.get_image(repo, &digest).await?.ok_or_else(not_found)
        }
        .await;
        match found {
            // Only a miss needs to know whether the repository itself is missing.
            Err(Error::ImageNotFound { .. }) if !self.meta.repository_exists(repo).await? => {
                Err(Error::RepositoryNotFound(repo.clone()))
            }
            other => other,
        }
    }

    /// Deletes an image the way ECR's `BatchDeleteImage` does: by digest, the image and its
    /// tags; by tag, the tag, and the image too when that was its last tag. With a digest and
    /// `tag` both, nothing is deleted unless `tag` names that image. Returns the image's digest.
    ///
    /// # Errors
    /// `ImageNotFound`.
    pub async fn image_delete(
        &self,
        caller: &Caller,
        repo: &RepositoryName,
        reference: &Reference,
        tag: Option<&Tag>,
    ) -> Result<Digest> {
        self.authorize(caller, Action::BatchDeleteImage, Target::Repository(repo), &[]).await?;
        self.check_pair(repo, reference, tag).await?;
        let not_found = || Error::ImageNotFound { repository: repo.clone(), reference: reference.to_string() };
        let result = async {
            match reference {
                Reference::Digest(d) => {
                    if self.meta.delete_manifest(repo, d).await? {
                        Ok(d.clone())
                    } else {
                        Err(not_found())
                    }
                }
                Reference::Tag(t) => self.meta.delete_tag(repo, t, true).await?.ok_or_else(not_found),
            }
        }
        .await;
        self.manifests.invalidate(repo);
        result
    }

    /// Tags of a repository, in byte order.
    ///
    /// # Errors
    /// `RepositoryNotFound`.
    pub async fn tags(&self, caller: &Caller, repo: &RepositoryName, page: &PageRequest) -> Result<Page<Tag>> {
        self.authorize(caller, Action::ListImages, Target::Repository(repo), &[]).await?;
        self.meta.list_tags(repo, page).await.map_err(Self::missing_repo(repo))
    }

    /// Repository names the caller may see (describe or pull), in byte order. A page's `next`
    /// is an opaque marker (the `paging` module), given whenever rows remain, even after a page
    /// that holds fewer than `page.limit` names because it ran out of its scan budget.
    ///
    /// # Errors
    /// Authorization or storage failures.
    pub async fn catalog(&self, caller: &Caller, page: &PageRequest) -> Result<Page<RepositoryName>> {
        self.check_access(caller).await?;
        let want = page.limit.unwrap_or(usize::MAX);
        if want == 0 {
            return Ok(Page { items: Vec::new(), next: None });
        }
        // `last` is a marker this listing made, or a name the client chose (the docker registry
        // API allows it; names after it are filtered like any others).
        let mut after = page.after.as_deref().map(|a| {
            paging::open_marker(&self.authz.keys.seal, paging::Listing::Catalog, a).unwrap_or_else(|| a.to_owned())
        });
        let sees_all = matches!(caller, Caller::Anonymous);
        let (mut items, mut examined) = (Vec::new(), 0);
        let more = loop {
            if items.len() >= want || examined >= paging::SCAN_BUDGET {
                break true;
            }
            let limit = (want - items.len()).clamp(16, paging::SCAN_BATCH).min(paging::SCAN_BUDGET - examined);
            let found = self.meta.list_repositories(&PageRequest { limit: Some(limit), after: after.clone() }).await?;
            let (rows, exhausted) = (found.items.len(), found.next.is_none());
            let mut used = 0;
            for name in found.items {
                used += 1;
                examined += 1;
                after = Some(name.to_string());
                // Only what the caller may see: repositories it may describe or pull from.
                let target = Target::Repository(&name);
                if sees_all
                    || self.authorize(caller, Action::DescribeRepositories, target, &[]).await.is_ok()
                    || self.authorize(caller, Action::BatchGetImage, target, &[]).await.is_ok()
                {
                    items.push(name);
                    if items.len() >= want {
                        break;
                    }
                }
            }
            if used == rows && exhausted {
                break false;
            }
        };
        let next = match after {
            Some(position) if more => {
                Some(paging::seal_marker(&self.authz.keys.seal, paging::Listing::Catalog, &position)?)
            }
            _ => None,
        };
        Ok(Page { items, next })
    }

    /// Manifests whose subject is `subject`, optionally of one artifact type.
    ///
    /// # Errors
    /// `RepositoryNotFound`.
    pub async fn referrers(
        &self,
        caller: &Caller,
        repo: &RepositoryName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>> {
        self.authorize(caller, Action::BatchGetImage, Target::Repository(repo), &[]).await?;
        if !self.meta.repository_exists(repo).await? {
            return Err(Error::RepositoryNotFound(repo.clone()));
        }
        Ok(self.meta.referrers(repo, subject, artifact_type).await?)
    }
}

fn verify(actual: &Digest, expected: &Digest) -> Result<()> {
    if actual == expected {
        Ok(())
    } else {
        Err(Error::DigestInvalid(format!("content digest is {actual}, not {expected}")))
    }
}

fn check_len(expected: Option<u64>, actual: u64) -> Result<()> {
    match expected {
        Some(n) if n != actual => Err(Error::SizeInvalid(format!("received {actual} bytes, expected {n}"))),
        _ => Ok(()),
    }
}

async fn collect_limited(mut body: ByteStream, limit: usize) -> Result<Bytes> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(Error::BodyFailed)?;
        if buf.len() + chunk.len() > limit {
            return Err(Error::ManifestTooLarge(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}
