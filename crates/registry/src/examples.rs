//! One value of every [`Error`] variant, for the front doors' wire tests: each door snapshots
//! how it shows every one of them.
//!
//! Adding a variant (or a [`PolicyKindName`]) does not compile until [`ordinal`] names it, and
//! [`every_error_example`] panics until an example of it is in the list, so no door's wire test
//! can silently skip a new error.

use berth_types::{AccountId, Algorithm, Digest, RepositoryKey, RepositoryName};

use crate::{Action, Error, PolicyKindName};

/// How many distinct shapes [`ordinal`] tells apart.
const SHAPES: usize = 41;

/// A distinct number below [`SHAPES`] for each variant (and each kind of missing policy). The
/// match has no `_` arm: a new variant must be given its number here.
fn ordinal(e: &Error) -> usize {
    match e {
        Error::NameInvalid(_) => 0,
        Error::TagInvalid(_) => 1,
        Error::DigestInvalid(_) => 2,
        Error::RepositoryNotFound(_) => 3,
        Error::RepositoryAlreadyExists(_) => 4,
        Error::RepositoryNotEmpty(_) => 5,
        Error::ImageNotFound { .. } => 6,
        Error::BlobNotFound(_) => 7,
        Error::ManifestBlobUnknown(_) => 8,
        Error::ManifestInvalid(_) => 9,
        Error::TooManyTags(_) => 10,
        Error::TagImmutable { .. } => 11,
        Error::ImageAlreadyExists { .. } => 12,
        Error::ImageDigestMismatch { .. } => 13,
        Error::ManifestTooLarge(_) => 14,
        Error::UploadNotFound => 15,
        Error::UploadEmpty => 16,
        Error::LayerAlreadyExists(_) => 17,
        Error::UploadRangeInvalid { .. } => 18,
        Error::LayerPartInvalid(_) => 19,
        Error::RangeNotSatisfiable { .. } => 20,
        Error::SizeInvalid(_) => 21,
        Error::Unsupported(_) => 22,
        Error::InvalidParameter(_) => 23,
        Error::EntityNotFound(_) => 24,
        Error::EntityAlreadyExists(_) => 25,
        Error::PolicyNotFound { kind: PolicyKindName::Repository, .. } => 26,
        Error::PolicyNotFound { kind: PolicyKindName::Registry, .. } => 27,
        Error::PolicyNotFound { kind: PolicyKindName::Lifecycle, .. } => 28,
        Error::PolicyNotFound { kind: PolicyKindName::LifecyclePreview, .. } => 29,
        Error::Unauthenticated => 30,
        Error::AccessDenied { .. } => 31,
        Error::BodyFailed(_) => 32,
        Error::LimitExceeded(_) => 33,
        Error::StorageFull => 34,
        Error::BlobDamaged(_) => 35,
        Error::Internal(_) => 36,
        Error::Unavailable => 37,
        Error::ScanNotFound { .. } => 38,
        Error::UnsupportedImageType(_) => 39,
        Error::Validation(_) => 40,
    }
}

/// One value of every variant of [`Error`], as the core makes them, in a fixed order: a short
/// name for each (for snapshot names) and the error. Repositories are `team/app` in the
/// registry of account `111122223333` (region `us-east-1`).
///
/// # Panics
/// When a variant has no example, or two examples share a variant: the list must be updated
/// with the enum.
#[doc(hidden)]
#[must_use]
pub fn every_error_example() -> Vec<(&'static str, Error)> {
    let account = AccountId::parse("111122223333").unwrap_or_else(|_| unreachable!());
    let name = RepositoryName::parse("team/app").unwrap_or_else(|_| unreachable!());
    let repo = RepositoryKey::new(account.clone(), name.clone());
    let d = Digest::of(Algorithm::Sha256, b"layer");
    let d2 = Digest::of(Algorithm::Sha256, b"config");
    let policy = |kind, repository| Error::PolicyNotFound { kind, registry: account.clone(), repository };
    let all = vec![
        ("name_invalid", Error::NameInvalid("Team/App: repository names are lower case".into())),
        ("tag_invalid", Error::TagInvalid("-v1: a tag starts with a letter, digit or _".into())),
        ("digest_invalid", Error::DigestInvalid(format!("content digest is {d2}, not {d}"))),
        ("repository_not_found", Error::RepositoryNotFound(repo.clone())),
        ("repository_already_exists", Error::RepositoryAlreadyExists(repo.clone())),
        ("repository_not_empty", Error::RepositoryNotEmpty(repo.clone())),
        ("image_not_found", Error::ImageNotFound { repository: repo.clone(), reference: "v1".into() }),
        ("blob_not_found", Error::BlobNotFound(d.clone())),
        ("manifest_blob_unknown", Error::ManifestBlobUnknown(vec![d.clone(), d2.clone()])),
        ("manifest_invalid", Error::ManifestInvalid("schemaVersion must be 2".into())),
        ("too_many_tags", Error::TooManyTags(crate::MAX_RESOURCE_TAGS)),
        ("tag_immutable", Error::TagImmutable { repository: repo.clone(), tag: "v1".into() }),
        (
            "image_already_exists",
            Error::ImageAlreadyExists { repository: repo.clone(), digest: d.clone(), tag: "v1".into() },
        ),
        ("image_digest_mismatch", Error::ImageDigestMismatch { expected: d2.to_string(), actual: d.clone() }),
        ("manifest_too_large", Error::ManifestTooLarge(4 * 1024 * 1024)),
        ("upload_not_found", Error::UploadNotFound),
        ("upload_empty", Error::UploadEmpty),
        ("layer_already_exists", Error::LayerAlreadyExists(d.clone())),
        ("upload_range_invalid", Error::UploadRangeInvalid { offset: 1024 }),
        ("layer_part_invalid", Error::LayerPartInvalid("partFirstByte must not be negative".into())),
        ("range_not_satisfiable", Error::RangeNotSatisfiable { size: 1024 }),
        ("size_invalid", Error::SizeInvalid("received 10 bytes, expected 12".into())),
        ("unsupported", Error::Unsupported("cross-registry mounts are not supported".into())),
        ("invalid_parameter", Error::InvalidParameter("Invalid parameter at 'nextToken'".into())),
        ("entity_not_found", Error::EntityNotFound("user arn:aws:iam::111122223333:user/bob".into())),
        ("entity_already_exists", Error::EntityAlreadyExists("account 111122223333".into())),
        ("repository_policy_not_found", policy(PolicyKindName::Repository, Some(name.clone()))),
        ("registry_policy_not_found", policy(PolicyKindName::Registry, None)),
        ("lifecycle_policy_not_found", policy(PolicyKindName::Lifecycle, Some(name.clone()))),
        ("lifecycle_preview_not_found", policy(PolicyKindName::LifecyclePreview, Some(name.clone()))),
        ("unauthenticated", Error::Unauthenticated),
        (
            "access_denied",
            Error::AccessDenied {
                action: Action::PutImage,
                resource: "arn:aws:ecr:us-east-1:111122223333:repository/team/app".into(),
                principal: "arn:aws:iam::444455556666:user/bob".into(),
                reason: "because no resource-based policy allows the ecr:PutImage action".into(),
            },
        ),
        ("body_failed", Error::BodyFailed("connection reset".into())),
        ("limit_exceeded", Error::LimitExceeded("too many upload sessions are open".into())),
        ("storage_full", Error::StorageFull),
        ("blob_damaged", Error::BlobDamaged(d.clone())),
        ("internal", Error::Internal("disk on fire".into())),
        ("unavailable", Error::Unavailable),
        ("scan_not_found", Error::ScanNotFound { repository: repo.clone(), digest: d.clone() }),
        (
            "unsupported_image_type",
            Error::UnsupportedImageType(
                "The image of media type application/vnd.oci.artifact cannot be scanned".into(),
            ),
        ),
        ("validation", Error::Validation("scan frequency CONTINUOUS_SCAN is not allowed with scan type BASIC".into())),
    ];
    let mut seen = [false; SHAPES];
    for (name, e) in &all {
        let i = ordinal(e);
        assert!(i < seen.len(), "{name}: ordinal {i} is not below SHAPES; raise it");
        assert!(!seen[i], "{name}: two examples of one variant");
        seen[i] = true;
    }
    if let Some(i) = seen.iter().position(|s| !s) {
        panic!("the variant of ordinal {i} has no example in every_error_example");
    }
    all
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_variant_has_one_example() {
        let all = super::every_error_example();
        assert_eq!(all.len(), super::SHAPES);
        let mut names: Vec<_> = all.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len(), "example names are distinct");
    }
}
