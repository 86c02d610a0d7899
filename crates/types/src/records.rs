//! The registry's records as the core hands them out and the stores keep them: repositories,
//! images, referrers and lifecycle expirations. Plain data, no IO.

use crate::{Digest, RepositoryKey, Tag, TagMutability};

/// Settings of a repository (ECR's `imageTagMutability`, scan-on-push and encryption).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositorySettings {
    /// Whether tags may be moved, with the exception filters of the `..._WITH_EXCLUSION` modes
    /// (the rule itself lives in `crate::TagMutability`).
    pub tag_mutability: TagMutability,
    pub scan_on_push: bool,
    /// `AES256` or `KMS`.
    pub encryption_type: String,
    pub kms_key: Option<String>,
}

impl Default for RepositorySettings {
    fn default() -> Self {
        RepositorySettings {
            tag_mutability: TagMutability::Mutable,
            scan_on_push: false,
            encryption_type: "AES256".into(),
            kms_key: None,
        }
    }
}

/// A repository: its key (the registry that holds it and its name there) and its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryRecord {
    pub key: RepositoryKey,
    pub created_at: i64,
    pub settings: RepositorySettings,
    /// The repository (access) policy document, if any: what authorization reads with the
    /// record, so a listing filtered by permission needs no lookup per repository.
    pub policy: Option<String>,
    /// Resource tags, in key order.
    pub tags: Vec<(String, String)>,
}

/// A manifest that names a subject, as the referrers listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub artifact_type: Option<String>,
    pub annotations: Option<String>,
}

/// An image as ECR lists it: a manifest with its tags, size and push time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    pub digest: Digest,
    pub media_type: String,
    pub artifact_type: Option<String>,
    /// Bytes of the manifest's blobs (config and layers).
    pub size: u64,
    pub pushed_at: i64,
    /// When it was last pulled, as recorded (in batches, so possibly some seconds late).
    pub last_pulled_at: Option<i64>,
    /// In byte order.
    pub tags: Vec<Tag>,
}

/// Which images a listing keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TagStatus {
    #[default]
    Any,
    Tagged,
    Untagged,
}

/// An image a lifecycle policy expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiration {
    pub repository: RepositoryKey,
    pub digest: crate::Digest,
    pub tags: Vec<String>,
    pub pushed_at: i64,
    pub rule_priority: u32,
    pub expired_at: i64,
}
