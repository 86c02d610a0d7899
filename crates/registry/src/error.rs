use berth_types::{AccountId, Digest, RepositoryKey, RepositoryName};

use berth_meta::{Conflict, Missing};

use crate::action::Action;

/// Which policy [`Error::PolicyNotFound`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKindName {
    Repository,
    Registry,
    Lifecycle,
    LifecyclePreview,
}

impl std::fmt::Display for PolicyKindName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PolicyKindName::Repository => "Repository policy",
            PolicyKindName::Registry => "Registry policy",
            PolicyKindName::Lifecycle => "Lifecycle policy",
            PolicyKindName::LifecyclePreview => "Lifecycle policy preview",
        })
    }
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong, in the registry's own terms. Every front door maps each variant
/// exhaustively to its wire format.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid repository name: {0}")]
    NameInvalid(String),
    #[error("invalid tag: {0}")]
    TagInvalid(String),
    #[error("invalid digest: {0}")]
    DigestInvalid(String),
    #[error("repository {} does not exist in the registry of account {}", .0.name, .0.registry)]
    RepositoryNotFound(RepositoryKey),
    #[error("repository {} already exists in the registry of account {}", .0.name, .0.registry)]
    RepositoryAlreadyExists(RepositoryKey),
    #[error("repository {} contains images; delete them first or force the deletion", .0.name)]
    RepositoryNotEmpty(RepositoryKey),
    #[error("manifest {reference} is not in repository {}", .repository.name)]
    ImageNotFound { repository: RepositoryKey, reference: String },
    #[error("blob {0} is not in this repository")]
    BlobNotFound(Digest),
    #[error("manifest references blobs or manifests the repository does not hold: {}", join(.0))]
    ManifestBlobUnknown(Vec<Digest>),
    #[error("invalid manifest: {0}")]
    ManifestInvalid(String),
    #[error("a repository may carry at most {0} tags")]
    TooManyTags(usize),
    #[error("tag {tag} already exists in {}, whose tags are immutable", .repository.name)]
    TagImmutable { repository: RepositoryKey, tag: String },
    #[error("image with digest {digest} and tag {tag} already exists in {}", .repository.name)]
    ImageAlreadyExists { repository: RepositoryKey, digest: Digest, tag: String },
    #[error("the manifest's digest is {actual}, not {expected}")]
    ImageDigestMismatch { expected: String, actual: Digest },
    #[error("manifest is larger than the limit of {0} bytes")]
    ManifestTooLarge(usize),
    #[error("upload session not found")]
    UploadNotFound,
    /// ECR's `CompleteLayerUpload` of an upload that received no part.
    #[error("the upload has no layer parts")]
    UploadEmpty,
    /// ECR's `CompleteLayerUpload` of a layer the repository already holds.
    #[error("layer {0} already exists in the repository")]
    LayerAlreadyExists(Digest),
    #[error("the upload holds {offset} bytes and takes one request at a time; a chunk must start at byte {offset}")]
    UploadRangeInvalid { offset: u64 },
    /// An ECR layer part whose stated range does not fit its bytes.
    #[error("{0}")]
    LayerPartInvalid(String),
    #[error("range not satisfiable for a blob of {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    #[error("upload size does not match: {0}")]
    SizeInvalid(String),
    #[error("{0}")]
    Unsupported(String),
    /// A request parameter that is well-formed but not acceptable (a bad policy document, a
    /// malformed user name), with the reason.
    #[error("{0}")]
    InvalidParameter(String),
    /// An account, user, access key or named user policy that does not exist.
    #[error("{0} does not exist")]
    EntityNotFound(String),
    #[error("{0} already exists")]
    EntityAlreadyExists(String),
    /// The repository (or, without one, the registry) has no policy of this kind.
    #[error("{kind} does not exist for {}", policy_scope(.registry, .repository.as_ref()))]
    PolicyNotFound { kind: PolicyKindName, registry: AccountId, repository: Option<RepositoryName> },
    #[error("authentication required")]
    Unauthenticated,
    #[error("User: {principal} is not authorized to perform: {action} on resource: {resource} {reason}")]
    AccessDenied { action: Action, resource: String, principal: String, reason: String },
    #[error("request body failed: {0}")]
    BodyFailed(#[source] BoxError),
    /// A per-principal or per-account limit (open upload sessions) is reached.
    #[error("{0}")]
    LimitExceeded(String),
    /// The storage underneath has no room left; nothing of the request was stored.
    #[error("the registry's storage is full; nothing was stored, retry once space is freed")]
    StorageFull,
    /// A blob is recorded but its stored bytes are missing or do not match its record; a push
    /// of the blob stores it again.
    #[error("the stored bytes of blob {0} are missing or damaged; push the blob again to repair it")]
    BlobDamaged(Digest),
    /// The database or the blob storage underneath cannot be reached or did not answer in
    /// time. Nothing of the request is half-written; the client may retry.
    #[error("the registry's storage is unavailable; retry shortly")]
    Unavailable,
    /// The image was never scanned.
    #[error(
        "Image scan does not exist for the image with '{{imageDigest:'{digest}', imageTag:'null'}}' in the repository \
         with name '{}' in the registry with id '{}'",
        .repository.name,
        .repository.registry
    )]
    ScanNotFound { repository: RepositoryKey, digest: Digest },
    /// A scan asked of a manifest that is no container image (an artifact, or an unknown type).
    #[error("{0}")]
    UnsupportedImageType(String),
    /// A request that breaks a rule of the operation (ECR's `ValidationException`).
    #[error("{0}")]
    Validation(String),
    #[error("internal error")]
    Internal(#[source] BoxError),
}

fn policy_scope(registry: &AccountId, repository: Option<&RepositoryName>) -> String {
    match repository {
        Some(r) => format!("repository {r} of registry {registry}"),
        None => format!("registry {registry}"),
    }
}

impl Error {
    pub(crate) fn policy_not_found(kind: PolicyKindName, repo: &RepositoryKey) -> Self {
        Error::PolicyNotFound { kind, registry: repo.registry.clone(), repository: Some(repo.name.clone()) }
    }
}

fn join(ds: &[Digest]) -> String {
    ds.iter().map(Digest::as_str).collect::<Vec<_>>().join(", ")
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<berth_meta::Error> for Error {
    fn from(e: berth_meta::Error) -> Self {
        match e {
            berth_meta::Error::StorageFull(why) => {
                tracing::warn!(error = %why, "metadata storage is full");
                Error::StorageFull
            }
            berth_meta::Error::NotFound(missing) => match missing {
                Missing::Repository(key) => Error::RepositoryNotFound(key),
                Missing::Upload(_) => Error::UploadNotFound,
                Missing::Image(repository, digest) => {
                    Error::ImageNotFound { repository, reference: digest.to_string() }
                }
                Missing::Preview(key) => Error::policy_not_found(PolicyKindName::LifecyclePreview, &key),
                Missing::Account(a) => Error::EntityNotFound(format!("account {a}")),
                Missing::User { account, name } => {
                    Error::EntityNotFound(format!("user {}", crate::identity::user_arn(&account, &name)))
                }
            },
            berth_meta::Error::Conflict(conflict) => match conflict {
                Conflict::RepositoryExists(key) => Error::RepositoryAlreadyExists(key),
                Conflict::TooManyUploads => Error::LimitExceeded("too many upload sessions are open".into()),
                Conflict::AccountExists(a) => Error::EntityAlreadyExists(format!("account {a}")),
                Conflict::UserExists { account, name } => {
                    Error::EntityAlreadyExists(format!("user {}", crate::identity::user_arn(&account, &name)))
                }
                Conflict::AccessKeyExists(id) => Error::EntityAlreadyExists(format!("access key {id}")),
                // Another request moved the session first: it is not this request's to go on with.
                Conflict::UploadMoved(_) => Error::UploadNotFound,
                Conflict::Other(why) => Error::Internal(why.into()),
            },
            berth_meta::Error::Unavailable(why) => {
                tracing::warn!(error = %why, "metadata database unavailable");
                Error::Unavailable
            }
            berth_meta::Error::Backend(_) => Error::Internal(Box::new(e)),
        }
    }
}

impl From<berth_blobstore::Error> for Error {
    fn from(e: berth_blobstore::Error) -> Self {
        match e {
            berth_blobstore::Error::Body(b) => Error::BodyFailed(b),
            berth_blobstore::Error::StorageFull(why) => {
                tracing::warn!(error = %why, "blob storage is full");
                Error::StorageFull
            }
            // Reached only on completion or cancellation (appends answer with the session's
            // offset): a session whose bytes another request is still writing is not this
            // request's to end.
            berth_blobstore::Error::UploadBusy => Error::UploadNotFound,
            berth_blobstore::Error::Unavailable(why) => {
                tracing::warn!(error = %why, "blob storage unavailable");
                Error::Unavailable
            }
            berth_blobstore::Error::NotFound
            | berth_blobstore::Error::InvalidRange
            | berth_blobstore::Error::UploadOffset { .. }
            | berth_blobstore::Error::Backend(_) => Error::Internal(Box::new(e)),
        }
    }
}
