//! The distribution-spec error codes as a table, and the one mapping from `registry::Error`.

use axum::response::{IntoResponse, Response};
use berth_registry::Error;
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

/// One registered error code: its wire value and its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode {
    pub value: &'static str,
    pub status: StatusCode,
}

macro_rules! codes {
    ($($name:ident = $value:literal, $status:ident;)*) => {
        $(pub const $name: ErrorCode = ErrorCode { value: $value, status: StatusCode::$status };)*
        /// Every code, for tests and documentation.
        pub const ALL: &[ErrorCode] = &[$($name),*];
    };
}

codes! {
    BLOB_UNKNOWN = "BLOB_UNKNOWN", NOT_FOUND;
    BLOB_UPLOAD_INVALID = "BLOB_UPLOAD_INVALID", BAD_REQUEST;
    BLOB_UPLOAD_UNKNOWN = "BLOB_UPLOAD_UNKNOWN", NOT_FOUND;
    DIGEST_INVALID = "DIGEST_INVALID", BAD_REQUEST;
    MANIFEST_BLOB_UNKNOWN = "MANIFEST_BLOB_UNKNOWN", BAD_REQUEST;
    MANIFEST_INVALID = "MANIFEST_INVALID", BAD_REQUEST;
    MANIFEST_UNKNOWN = "MANIFEST_UNKNOWN", NOT_FOUND;
    NAME_INVALID = "NAME_INVALID", BAD_REQUEST;
    NAME_UNKNOWN = "NAME_UNKNOWN", NOT_FOUND;
    SIZE_INVALID = "SIZE_INVALID", BAD_REQUEST;
    UNAUTHORIZED = "UNAUTHORIZED", UNAUTHORIZED;
    DENIED = "DENIED", FORBIDDEN;
    UNSUPPORTED = "UNSUPPORTED", METHOD_NOT_ALLOWED;
    TOOMANYREQUESTS = "TOOMANYREQUESTS", TOO_MANY_REQUESTS;
}

/// The codes the distribution spec lists (its error code table, code-1 to code-14): the only
/// ones `/v2` answers with.
pub const SPEC: &[&str] = &[
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
];

/// An error response in the spec's shape, plus any headers the code needs.
#[derive(Debug)]
pub struct OciError {
    pub code: ErrorCode,
    /// The status, when it is not the code's own (a range error is 416, a full disk 507).
    pub status: Option<StatusCode>,
    pub message: String,
    pub detail: Option<serde_json::Value>,
    pub headers: Vec<(header::HeaderName, String)>,
}

impl OciError {
    #[must_use]
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        OciError { code, status: None, message: message.into(), detail: None, headers: Vec::new() }
    }
    #[must_use]
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }
    #[must_use]
    pub fn with_header(mut self, name: header::HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

impl From<Error> for OciError {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        let plain = |code| OciError::new(code, message.clone());
        match e {
            Error::NameInvalid(_) => plain(NAME_INVALID),
            // The spec has no code for a malformed tag: nothing can be stored under it.
            Error::TagInvalid(_) => plain(MANIFEST_INVALID),
            Error::DigestInvalid(_) => plain(DIGEST_INVALID),
            Error::RepositoryNotFound(_) => plain(NAME_UNKNOWN),
            // Only the ECR API creates and deletes repositories; /v2 never meets these.
            Error::RepositoryAlreadyExists(_) | Error::RepositoryNotEmpty(_) => plain(DENIED),
            Error::ImageNotFound { .. } => plain(MANIFEST_UNKNOWN),
            Error::BlobNotFound(d) => OciError { detail: Some(json!({ "digest": d.as_str() })), ..plain(BLOB_UNKNOWN) },
            Error::ManifestBlobUnknown(ds) => {
                let digests: Vec<&str> = ds.iter().map(berth_types::Digest::as_str).collect();
                OciError { detail: Some(json!({ "digests": digests })), ..plain(MANIFEST_BLOB_UNKNOWN) }
            }
            Error::ManifestInvalid(_) => plain(MANIFEST_INVALID),
            Error::TagImmutable { .. } => plain(MANIFEST_INVALID),
            // Resource tags are only reachable through the ECR API.
            Error::TooManyTags(_) => plain(DENIED),
            Error::ImageDigestMismatch { .. } => plain(DIGEST_INVALID),
            // Only ECR's PutImage refuses a repeated put; /v2 pushes are idempotent.
            Error::ImageAlreadyExists { .. } => plain(MANIFEST_INVALID),
            Error::ManifestTooLarge(_) => plain(SIZE_INVALID).with_status(StatusCode::PAYLOAD_TOO_LARGE),
            Error::UploadNotFound => plain(BLOB_UPLOAD_UNKNOWN),
            // Only ECR's CompleteLayerUpload refuses these; /v2 completes any upload.
            Error::UploadEmpty | Error::LayerAlreadyExists(_) => plain(BLOB_UPLOAD_INVALID),
            // The spec's answer to an out-of-order chunk: 416 with where the upload stands.
            Error::UploadRangeInvalid { offset } => plain(BLOB_UPLOAD_INVALID)
                .with_status(StatusCode::RANGE_NOT_SATISFIABLE)
                .with_header(header::RANGE, format!("0-{}", offset.saturating_sub(1))),
            Error::LayerPartInvalid(_) => plain(BLOB_UPLOAD_INVALID).with_status(StatusCode::RANGE_NOT_SATISFIABLE),
            Error::RangeNotSatisfiable { size } => plain(SIZE_INVALID)
                .with_status(StatusCode::RANGE_NOT_SATISFIABLE)
                .with_header(header::CONTENT_RANGE, format!("bytes */{size}")),
            Error::SizeInvalid(_) => plain(SIZE_INVALID),
            Error::Unsupported(_) => plain(UNSUPPORTED),
            // Policy and identity administration is not reachable through /v2.
            Error::InvalidParameter(_)
            | Error::Validation(_)
            | Error::ScanNotFound { .. }
            | Error::UnsupportedImageType(_)
            | Error::EntityNotFound(_)
            | Error::EntityAlreadyExists(_)
            | Error::PolicyNotFound { .. } => plain(DENIED),
            Error::Unauthenticated => {
                plain(UNAUTHORIZED).with_header(header::WWW_AUTHENTICATE, r#"Basic realm="berth""#)
            }
            Error::AccessDenied { .. } => plain(DENIED),
            Error::BodyFailed(_) => plain(BLOB_UPLOAD_INVALID),
            Error::LimitExceeded(_) => plain(TOOMANYREQUESTS),
            // The spec has no code for a server fault; the status says what happened.
            Error::StorageFull => plain(UNSUPPORTED).with_status(StatusCode::INSUFFICIENT_STORAGE),
            Error::Unavailable => {
                plain(UNSUPPORTED).with_status(StatusCode::SERVICE_UNAVAILABLE).with_header(header::RETRY_AFTER, "1")
            }
            Error::BlobDamaged(d) => OciError { detail: Some(json!({ "digest": d.as_str() })), ..plain(BLOB_UNKNOWN) },
            Error::Internal(source) => {
                tracing::error!(error = %source, source = ?source, "internal error");
                OciError::new(UNSUPPORTED, "internal error").with_status(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

impl IntoResponse for OciError {
    fn into_response(self) -> Response {
        let mut err = json!({ "code": self.code.value, "message": self.message });
        if let Some(d) = self.detail {
            err["detail"] = d;
        }
        let body = json!({ "errors": [err] }).to_string();
        let status = self.status.unwrap_or(self.code.status);
        let mut resp = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().insert(name, v);
            }
        }
        resp
    }
}
