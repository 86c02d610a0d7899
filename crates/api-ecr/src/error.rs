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

impl From<Error> for EcrError {
    fn from(e: Error) -> Self {
        let message = e.to_string();
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
            Error::UploadRangeInvalid { .. } | Error::RangeNotSatisfiable { .. } => "InvalidLayerPartException",
            Error::NameInvalid(_)
            | Error::TagInvalid(_)
            | Error::ManifestInvalid(_)
            | Error::ManifestTooLarge(_)
            | Error::SizeInvalid(_)
            | Error::BodyFailed(_) => "InvalidParameterException",
            Error::Unsupported(_) => "ValidationException",
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
            Error::Internal(source) => {
                tracing::error!(error = %source, source = ?source, "internal error");
                return EcrError::new("ServerException", "internal error");
            }
        };
        EcrError::new(code, message)
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
