//! The state every service shares: the stores, authorization, the options, and the node-local
//! state, declared here in one place.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_blobstore::{BlobStore, ByteStream};
use berth_meta::{CreateRepo, MetaStore};
use berth_types::{AccountId, Digest, Hasher, RepositoryKey, UploadId};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::authz::{Action, Authorizer, Caller, Target};
use crate::error::{Error, Result};
use crate::{Options, cache, gc, sessions, throttle};

/// State held in this process only. Each piece says what a cluster of nodes (sharing
/// PostgreSQL and S3) does instead; the server sets the options that choose it:
///
/// | piece | what it holds | several nodes |
/// |---|---|---|
/// | `manifests` | resolved manifests, 5 s at most | off (`manifest_cache_entries = 0`) |
/// | `pulls` | pull times not yet written | each node flushes its own; the store keeps the latest |
/// | `gc` | the run lock and digests being stored | a lease on the `gc` worker; other nodes' uploads are reservations in metadata, protected by the grace |
/// | `sessions` | which request holds an upload, limits per owner | per node; across nodes the parts named by the blob store and the conditional `advance_upload` decide, and limits are per node |
/// | `throttle` | token buckets per account | per node (rates are per node) |
/// | `epoch` | this process's mark on saved hash states | unused for stores that name parts (their bytes are whole before being named) |
/// | `authz` caches | identities, repositories, registry policies | 0.5 s instead of 5 s |
/// | `scan` | the open vulnerability database, counters | each node opens the published generation itself |
pub(crate) struct NodeLocal {
    pub(crate) manifests: cache::ManifestCache,
    /// Pulls since the last flush, by image: the latest time each (ECR's
    /// `lastRecordedPullTime`, and lifecycle's `sinceImagePulled`).
    pub(crate) pulls: Mutex<HashMap<(RepositoryKey, Digest), i64>>,
    pub(crate) gc: gc::GcState,
    pub(crate) sessions: sessions::Sessions,
    pub(crate) throttle: throttle::Throttle,
    /// Random per process. Saved hash states carry the epoch of the process that wrote them, so
    /// a session written before a restart (perhaps a crash that lost unsynced bytes) is checked
    /// against its bytes before it is trusted.
    pub(crate) epoch: [u8; 8],
    /// The open vulnerability database and scan counters (each node fetches the published
    /// database into its own cache directory).
    pub(crate) scan: crate::scanning::ScanState,
}

/// The shared inner state of every service.
#[doc(hidden)]
pub struct Core {
    pub(crate) blobs: Arc<dyn BlobStore>,
    pub(crate) meta: Arc<dyn MetaStore>,
    pub(crate) authz: Authorizer,
    pub(crate) opts: Options,
    pub(crate) local: NodeLocal,
}

impl Core {
    pub(crate) fn new(blobs: Arc<dyn BlobStore>, meta: Arc<dyn MetaStore>, authz: Authorizer, opts: Options) -> Self {
        let epoch = uuid::Uuid::new_v4().as_bytes()[..8].try_into().unwrap_or_default();
        let local = NodeLocal {
            manifests: cache::ManifestCache::new(opts.manifest_cache_entries),
            pulls: Mutex::default(),
            gc: gc::GcState::default(),
            sessions: sessions::Sessions::new(opts.upload_limits),
            throttle: throttle::Throttle::new(&opts.throttle),
            epoch,
            scan: crate::scanning::ScanState::default(),
        };
        Core { blobs, meta, authz, opts, local }
    }

    /// The account a caller acts in (the default account for an anonymous caller).
    pub(crate) fn account_of<'a>(&'a self, caller: &'a Caller) -> &'a AccountId {
        match caller {
            Caller::Principal(p) => &p.account,
            Caller::Anonymous => self.authz.default_account(),
        }
    }

    /// With `create_on_push`, a push to a repository that does not exist creates it in the
    /// registry it names, when the pusher may create repositories there
    /// (`ecr:CreateRepository`).
    pub(crate) async fn create_on_push(&self, caller: &Caller, repo: &RepositoryKey) -> Result<()> {
        if !self.opts.create_on_push || self.meta.repository_exists(repo).await? {
            return Ok(());
        }
        self.authorize(caller, Action::CreateRepository, Target::Repository(repo), &[]).await?;
        match self.meta.create_repository_with(repo, &berth_meta::RepositorySettings::default()).await {
            // Conflict: another push created it first.
            Ok(_) | Err(berth_meta::Error::Conflict(_)) => {
                self.forget_repository(repo);
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A blob whose stored bytes are not what its record says: logged, and reported to the
    /// client as needing a push (which stores the bytes anew).
    pub(crate) fn damaged(digest: &Digest, how: &str) -> Error {
        tracing::error!(%digest, "stored bytes of a recorded blob are {how}; a push of the blob will repair it");
        Error::BlobDamaged(digest.clone())
    }

    pub(crate) async fn discard_bytes(&self, id: &UploadId) {
        if let Err(e) = self.blobs.upload_abort(id).await {
            tracing::warn!(upload = %id, error = %e, "could not remove upload bytes; the sweeper will");
        }
    }

    /// The state to save with a session: this process's epoch, the hash state, then the blob
    /// store's parts so far, each as a two-byte length and its name. A store that names no
    /// parts leaves the state as it always was (epoch and hash state only).
    pub(crate) fn seal(&self, h: &Hasher, parts: &[String]) -> Vec<u8> {
        let mut out = [&self.local.epoch[..], &h.save()].concat();
        for p in parts {
            let len = u16::try_from(p.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&p.as_bytes()[..usize::from(len)]);
        }
        out
    }
}

/// A write that may create the repository it names does so only through `create_on_push`.
pub(crate) const NO_CREATE: CreateRepo = CreateRepo::No;

/// Wraps a body so that every chunk is hashed and counted on its way to the blob store.
pub(crate) fn hashing(body: ByteStream, hasher: Hasher) -> (ByteStream, Arc<Mutex<(Hasher, u64)>>) {
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

pub(crate) fn take(state: Arc<Mutex<(Hasher, u64)>>) -> (Hasher, u64) {
    match Arc::try_unwrap(state) {
        Ok(m) => m.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner),
        Err(shared) => shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone(),
    }
}

pub(crate) fn verify(actual: &Digest, expected: &Digest) -> Result<()> {
    if actual == expected {
        Ok(())
    } else {
        Err(Error::DigestInvalid(format!("content digest is {actual}, not {expected}")))
    }
}

pub(crate) fn check_len(expected: Option<u64>, actual: u64) -> Result<()> {
    match expected {
        Some(n) if n != actual => Err(Error::SizeInvalid(format!("received {actual} bytes, expected {n}"))),
        _ => Ok(()),
    }
}

pub(crate) async fn collect_limited(mut body: ByteStream, limit: usize) -> Result<Bytes> {
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
