//! ECR errors on the wire, and the one mapping from the core's errors and authentication errors.

use axum::response::{IntoResponse, Response};
use berth_registry::{Error, PolicyKindName};
use http::{HeaderValue, StatusCode, header};

/// An error answer: its `__type` code and message. The status is 400 for client faults and 500
/// for `ServerException`, unless the code needs another (authentication).
#[derive(Debug)]
pub struct EcrError {
    pub code: &'static str,
    pub message: String,
    pub status: StatusCode,
}

impl EcrError {
    #[must_use]
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        let status =
            if code == "ServerException" { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::BAD_REQUEST };
        EcrError { code, message: message.into(), status }
    }
}

/// The message ECR gives for an error, in ECR's words where scripts match on them.
fn message(e: &Error) -> String {
    match e {
        Error::RepositoryNotFound(r) => {
            format!("The repository with name '{}' does not exist in the registry with id '{}'", r.name, r.registry)
        }
        Error::RepositoryAlreadyExists(r) => {
            format!("The repository with name '{}' already exists in the registry with id '{}'", r.name, r.registry)
        }
        Error::RepositoryNotEmpty(r) => format!(
            "The repository with name '{}' in registry with id '{}' cannot be deleted because it still contains images",
            r.name, r.registry
        ),
        Error::ImageAlreadyExists { repository: r, digest, tag } => format!(
            "Image with digest '{digest}' and tag '{tag}' already exists in the repository with name '{}' in registry \
             with id '{}'",
            r.name, r.registry
        ),
        Error::ImageNotFound { repository: r, reference } => {
            let (digest, tag) = image_id_parts(reference);
            format!(
                "The image with imageId {{imageDigest:'{digest}', imageTag:'{tag}'}} does not exist within the \
                 repository with name '{}' in the registry with id '{}'",
                r.name, r.registry
            )
        }
        Error::TagImmutable { repository: r, tag } => format!(
            "The image tag '{tag}' already exists in the '{}' repository and cannot be overwritten because the \
             repository is immutable.",
            r.name
        ),
        Error::PolicyNotFound { kind, registry, repository } => match (kind, repository) {
            (PolicyKindName::Registry, _) | (_, None) => {
                format!("Registry policy does not exist in the registry with id '{registry}'")
            }
            (PolicyKindName::Repository, Some(name)) => format!(
                "Repository policy does not exist for the repository with name '{name}' in the registry with id \
                 '{registry}'"
            ),
            (PolicyKindName::Lifecycle, Some(name)) => format!(
                "Lifecycle policy does not exist for the repository with name '{name}' in the registry with id \
                 '{registry}'"
            ),
            (PolicyKindName::LifecyclePreview, Some(name)) => format!(
                "There is no dry run for the repository with name '{name}' in the registry with id '{registry}'"
            ),
        },
        other => other.to_string(),
    }
}

/// The digest and tag of the image id a core miss names (`tag@digest`, a digest or a tag; no tag
/// or digest holds an `@`), each `null` when absent, as ECR writes an image id in messages.
fn image_id_parts(reference: &str) -> (&str, &str) {
    match reference.split_once('@') {
        Some((tag, digest)) => (digest, tag),
        None if berth_types::Digest::parse(reference).is_ok() => (reference, "null"),
        None => ("null", reference),
    }
}

impl From<Error> for EcrError {
    fn from(e: Error) -> Self {
        let message = message(&e);
        let code = match e {
            Error::RepositoryNotFound(_) => "RepositoryNotFoundException",
            Error::RepositoryAlreadyExists(_) => "RepositoryAlreadyExistsException",
            Error::RepositoryNotEmpty(_) => "RepositoryNotEmptyException",
            Error::ImageNotFound { .. } => "ImageNotFoundException",
            Error::TagImmutable { .. } => "ImageTagAlreadyExistsException",
            Error::TooManyTags(_) => "TooManyTagsException",
            Error::ImageAlreadyExists { .. } => "ImageAlreadyExistsException",
            Error::ImageDigestMismatch { .. } => "ImageDigestDoesNotMatchException",
            Error::BlobNotFound(_) | Error::ManifestBlobUnknown(_) => "LayersNotFoundException",
            Error::DigestInvalid(_) => "InvalidLayerException",
            Error::UploadNotFound => "UploadNotFoundException",
            Error::UploadEmpty => "EmptyUploadException",
            Error::LayerAlreadyExists(_) => "LayerAlreadyExistsException",
            Error::UploadRangeInvalid { .. } | Error::RangeNotSatisfiable { .. } | Error::LayerPartInvalid(_) => {
                "InvalidLayerPartException"
            }
            Error::NameInvalid(_)
            | Error::TagInvalid(_)
            | Error::ManifestInvalid(_)
            | Error::ManifestTooLarge(_)
            | Error::SizeInvalid(_)
            | Error::BodyFailed(_) => "InvalidParameterException",
            Error::Unsupported(_) | Error::Validation(_) => "ValidationException",
            Error::ScanNotFound { .. } => "ScanNotFoundException",
            Error::UnsupportedImageType(_) => "UnsupportedImageTypeException",
            Error::InvalidParameter(_) | Error::EntityNotFound(_) | Error::EntityAlreadyExists(_) => {
                "InvalidParameterException"
            }
            Error::PolicyNotFound { kind, .. } => match kind {
                PolicyKindName::Repository => "RepositoryPolicyNotFoundException",
                PolicyKindName::Registry => "RegistryPolicyNotFoundException",
                PolicyKindName::Lifecycle => "LifecyclePolicyNotFoundException",
                PolicyKindName::LifecyclePreview => "LifecyclePolicyPreviewNotFoundException",
            },
            Error::Unauthenticated => "UnrecognizedClientException",
            Error::AccessDenied { .. } => "AccessDeniedException",
            Error::LimitExceeded(_) => "LimitExceededException",
            Error::BlobDamaged(_) => "LayerInaccessibleException",
            Error::StorageFull => {
                return EcrError { code: "ServerException", message, status: StatusCode::INSUFFICIENT_STORAGE };
            }
            // SDKs retry a 503 with backoff.
            Error::Unavailable => {
                return EcrError { code: "ServerException", message, status: StatusCode::SERVICE_UNAVAILABLE };
            }
            Error::Internal(source) => {
                tracing::error!(error = %source, source = ?source, "internal error");
                return EcrError::new("ServerException", "internal error");
            }
        };
        EcrError::new(code, message)
    }
}

/// A refused request: `ThrottlingException`, the code AWS SDKs retry with backoff.
impl From<berth_registry::Throttled> for EcrError {
    fn from(t: berth_registry::Throttled) -> Self {
        EcrError::new("ThrottlingException", t.to_string())
    }
}

impl From<berth_auth::Error> for EcrError {
    fn from(e: berth_auth::Error) -> Self {
        EcrError {
            code: e.aws_code(),
            message: e.to_string(),
            status: StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::FORBIDDEN),
        }
    }
}

impl IntoResponse for EcrError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "__type": self.code, "message": self.message }).to_string();
        let mut resp = (self.status, [(header::CONTENT_TYPE, "application/x-amz-json-1.1")], body).into_response();
        resp.headers_mut().insert("x-amzn-ErrorType", HeaderValue::from_static(self.code));
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::EcrError;

    /// Codes every AWS JSON service answers with, outside any one service's model.
    const COMMON: &[&str] = &["AccessDeniedException", "UnrecognizedClientException", "ValidationException"];

    #[test]
    fn a_refusal_is_a_throttling_exception() {
        let t =
            berth_registry::Throttled { operation: "PutImage".into(), retry_after: std::time::Duration::from_secs(3) };
        let w = EcrError::from(t);
        assert_eq!((w.code, w.status), ("ThrottlingException", http::StatusCode::BAD_REQUEST));
        assert_eq!(w.message, "Rate exceeded for PutImage; retry in 3 s");
    }

    #[test]
    fn every_core_error_has_a_code_of_the_model_and_a_status() {
        // Every variant, so a new one cannot go untested.
        for (name, e) in berth_registry::every_error_example() {
            let shown = format!("{name}: {e:?}");
            let w = EcrError::from(e);
            let modelled = berth_ecr_model::ecr::ERRORS.iter().any(|i| i.code == w.code);
            assert!(modelled || COMMON.contains(&w.code), "{shown}: {} is not an ECR error code", w.code);
            assert!(!w.message.is_empty(), "{shown}");
            if name == "storage_full" {
                // A full disk is a server fault whose status says so.
                assert_eq!((w.code, w.status.as_u16()), ("ServerException", 507));
            } else if name == "unavailable" {
                // Storage out of reach: a status SDKs retry.
                assert_eq!((w.code, w.status.as_u16()), ("ServerException", 503));
            } else if w.code == "ServerException" {
                assert_eq!(w.status, 500);
                assert!(!w.message.contains("fire"), "internal detail leaked: {}", w.message);
            } else {
                assert_eq!(w.status, 400, "{shown}");
            }
        }
    }
}
