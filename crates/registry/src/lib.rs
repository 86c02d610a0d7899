//! The registry core: every rule of the registry, written once, behind every front door.
//!
//! The core is a set of services over one shared state ([`core::Core`]): repositories,
//! images, blobs, uploads, policies, lifecycle, identity and maintenance. A front door parses
//! wire input into `berth_types` values, calls one service method with the `Caller`, and
//! formats the result. Each service method authorizes once (`authz`), then touches storage;
//! batch operations decide once and apply the decision to every item.
//!
//! Every account owns a registry ([`RepositoryKey`] names a repository within one), as in ECR.

mod action;
pub mod authz;
mod blobs;
mod cache;
mod core;
mod error;
mod examples;
mod gc;
pub mod identity;
mod images;
pub mod lifecycle;
mod maintenance;
pub mod migrate;
mod paging;
mod policies;
mod repositories;
pub mod scanning;
mod scrub;
mod sessions;
pub mod throttle;
mod ttl;
mod uploads;

use std::ops::Deref;
use std::sync::Arc;

use berth_blobstore::BlobStore;
use berth_meta::MetaStore;
use berth_types::{AccountId, Digest, RepositoryKey, Tag};
use bytes::Bytes;
use futures_util::StreamExt;

use crate::core::Core;

pub use action::Action;
pub use authz::{Authorizer, Caller, Origin, Principal, Target};
/// What reading a blob gives, as the blob store hands it out (the doors need no storage crate).
pub use berth_blobstore::{BlobBody, BlobRead, ByteRange, ByteStream};
pub use berth_meta::{Expiration, ImageRecord, PreviewRow, RepositoryRecord, RepositorySettings, TagStatus};
pub use berth_meta::{RepositoryUsage, StorageUsage};
pub use blobs::{Blobs, DownloadLink};
pub use cache::Manifest;
pub use error::{BoxError, Error, PolicyKindName, Result};
#[doc(hidden)]
pub use examples::every_error_example;
pub use gc::GcReport;
pub use identity::{AuthorizationToken, Identity, Tokens};
pub use images::{ImageMiss, Images, PutManifest, StoredImage};
pub use lifecycle::{Lifecycle, PreviewPage, PreviewQuery};
pub use maintenance::Maintenance;
pub use policies::Policies;
pub use repositories::{Repositories, RepositoryListing};
pub use scanning::Scanning;
pub use scrub::ScrubReport;
pub use sessions::UploadLimits;
pub use throttle::Throttled;
pub use uploads::{LayerPart, UploadStatus, Uploads};

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
    /// Blob GETs answer 307 to the blob store's presigned URL when it has them (S3), and ECR's
    /// download URLs are those URLs.
    pub redirect_blobs: bool,
    /// Where this node keeps vulnerability database files (`None`: scanning cannot import or
    /// match, and scans end FINDINGS_UNAVAILABLE).
    pub scan_dir: Option<std::path::PathBuf>,
    /// Enhanced scanning re-matches an image only while it was pushed or pulled within this
    /// long (ECR's re-scan duration); older images become SCAN_ELIGIBILITY_EXPIRED.
    pub rescan_ms: i64,
    /// How long a node's claim on a scan job lasts unless renewed (it is renewed every third of
    /// that while the scan runs): a node that dies mid-scan holds the scan up this long.
    pub scan_lease_ms: i64,
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
            redirect_blobs: false,
            scan_dir: None,
            rescan_ms: 30 * 24 * 3600 * 1000,
            scan_lease_ms: 30_000,
        }
    }
}

/// Most resource tags a repository may carry (ECR's limit).
pub const MAX_RESOURCE_TAGS: usize = 50;

/// Declares a service: a handle on the shared core, through which its methods reach the
/// stores, authorization and node-local state.
macro_rules! service {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(pub(crate) std::sync::Arc<crate::core::Core>);

        impl std::ops::Deref for $name {
            type Target = crate::core::Core;
            fn deref(&self) -> &crate::core::Core {
                &self.0
            }
        }
    };
}
pub(crate) use service;

/// The registry core: its services, each with a narrow surface, over one shared state.
pub struct Registry {
    pub repositories: Repositories,
    pub images: Images,
    pub blobs: Blobs,
    pub uploads: Uploads,
    pub policies: Policies,
    pub lifecycle: Lifecycle,
    pub identity: Identity,
    pub tokens: Tokens,
    pub maintenance: Maintenance,
    pub scanning: Scanning,
    core: Arc<Core>,
}

impl Deref for Registry {
    type Target = Authorizer;
    fn deref(&self) -> &Authorizer {
        &self.core.authz
    }
}

impl Registry {
    #[must_use]
    pub fn new(blobs: Arc<dyn BlobStore>, meta: Arc<dyn MetaStore>, authz: Authorizer, opts: Options) -> Self {
        let core = Arc::new(Core::new(blobs, meta, authz, opts));
        Registry {
            repositories: Repositories(Arc::clone(&core)),
            images: Images(Arc::clone(&core)),
            blobs: Blobs(Arc::clone(&core)),
            uploads: Uploads(Arc::clone(&core)),
            policies: Policies(Arc::clone(&core)),
            lifecycle: Lifecycle(Arc::clone(&core)),
            identity: Identity(Arc::clone(&core)),
            tokens: Tokens(Arc::clone(&core)),
            maintenance: Maintenance(Arc::clone(&core)),
            scanning: Scanning(Arc::clone(&core)),
            core,
        }
    }

    /// The API root: succeeds for any caller allowed to use the registry at all.
    ///
    /// # Errors
    /// `Unauthenticated` when the caller may not use the registry: anonymous where that is not
    /// configured, or a user that no longer exists.
    pub async fn check_access(&self, caller: &Caller) -> Result<()> {
        match caller {
            Caller::Anonymous if !self.core.authz.allows_anonymous() => Err(Error::Unauthenticated),
            Caller::Anonymous => Ok(()),
            Caller::Principal(p) => self.core.identity_policies(p).await.map(drop),
        }
    }

    /// Admits one request of ECR `operation` (or the `/v2` request that maps to it) from the
    /// caller's account, under the configured rates. Each front door calls it once per
    /// request, after authentication.
    ///
    /// # Errors
    /// `Throttled` when the account's bucket for the operation is empty.
    pub fn throttle(&self, caller: &Caller, operation: &str) -> Result<(), Throttled> {
        self.core.local.throttle.admit(caller, operation, std::time::Instant::now())
    }

    /// Whether `caller` may do `action` on `repo`: the decision every service method makes
    /// first. For tests and diagnostics; the doors never ask it.
    ///
    /// # Errors
    /// `Unauthenticated`, `AccessDenied`.
    #[doc(hidden)]
    pub async fn may(&self, caller: &Caller, repo: &RepositoryKey, action: Action) -> Result<()> {
        self.core.authorize(caller, action, Target::Repository(repo), &[]).await
    }

    /// The account a caller acts in (the default account for an anonymous caller): the
    /// registry a request names when it names none.
    #[must_use]
    pub fn account_of<'a>(&'a self, caller: &'a Caller) -> &'a AccountId {
        self.core.account_of(caller)
    }
}

/// A body of one chunk already in memory.
#[must_use]
pub fn single_chunk(data: Vec<u8>) -> ByteStream {
    futures_util::stream::iter([Ok(Bytes::from(data))]).boxed()
}

/// An image id as ECR gives one: a digest, a tag, or both (then the tag must name that
/// digest's image).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageId {
    Digest(Digest),
    Tag(Tag),
    Both(Digest, Tag),
}
