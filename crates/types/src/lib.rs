//! Berth's vocabulary: identifiers parsed once at the edge (digests, repository names, tags,
//! references, upload ids, account ids, regions, ARNs), tag mutability, the one wildcard
//! matcher, manifest parsing and pagination. No async, no IO.

mod arn;
mod digest;
mod ids;
mod manifest;
mod mutability;
mod names;
pub mod records;
pub mod wildcard;

pub use arn::{Arn, ArnError, PARTITION};
pub use digest::{Algorithm, Digest, DigestError, Hasher};
pub use ids::{AccountId, AccountIdError, Region, RegionError, RepositoryKey};
pub use manifest::{Descriptor, ManifestError, ParsedManifest, media_types};
pub use mutability::{ExclusionFilters, TagMutability, TagMutabilityError};
pub use names::{NameError, Reference, RepositoryName, Tag, UploadId};

/// A request for one page of an ordered listing: at most `limit` items strictly after `after`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: Option<usize>,
    pub after: Option<String>,
}

/// One page of an ordered listing; `next` is the key to continue after, when more remain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// Milliseconds since the Unix epoch, the one time representation stored in metadata.
#[must_use]
pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
