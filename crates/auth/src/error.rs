//! The one error type of the auth layer.
//!
//! Every variant maps to the AWS error code (`__type`) and HTTP status that AWS SDKs expect from
//! an AWS JSON 1.1 service such as ECR. Messages follow the wording AWS services return, as seen in
//! public SDK issue reports (see the crate docs for sources); they never contain secrets.

/// `Result` of the auth layer.
pub type Result<T> = std::result::Result<T, Error>;

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Neither an `Authorization` header nor presigned query parameters were present.
    #[error("Missing Authentication Token")]
    MissingAuth,

    /// The `Authorization` header, presigned parameters or credential scope are malformed.
    /// The message names what is wrong.
    #[error("{0}")]
    Incomplete(String),

    /// The access key is unknown, or the session token does not match the one the key requires.
    #[error("The security token included in the request is invalid.")]
    UnknownKey,

    /// The recomputed signature differs from the one the client sent.
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret \
         Access Key and signing method. Consult the service documentation for details."
    )]
    SignatureMismatch,

    /// The signing time is older than `now - max_skew` (or a presigned URL is past its expiry).
    #[error("Signature expired: {signed} is now earlier than {earliest} ({now} - {skew_minutes} min.)")]
    Expired {
        /// `X-Amz-Date` of the request (ISO 8601 basic).
        signed: String,
        /// `now - max_skew`.
        earliest: String,
        /// The server's clock.
        now: String,
        /// The allowed skew in minutes.
        skew_minutes: u64,
    },

    /// A presigned URL is past `X-Amz-Date + X-Amz-Expires`.
    #[error("Signature expired: {signed} is now earlier than {earliest} ({now} - {expires} sec.)")]
    PresignExpired {
        /// `X-Amz-Date` of the request (ISO 8601 basic).
        signed: String,
        /// `now - X-Amz-Expires`.
        earliest: String,
        /// The server's clock.
        now: String,
        /// `X-Amz-Expires` in seconds.
        expires: u64,
    },

    /// The signing time is later than `now + max_skew`.
    #[error("Signature not yet current: {signed} is still later than {latest} ({now} + {skew_minutes} min.)")]
    NotYetValid {
        /// `X-Amz-Date` of the request (ISO 8601 basic).
        signed: String,
        /// `now + max_skew`.
        latest: String,
        /// The server's clock.
        now: String,
        /// The allowed skew in minutes.
        skew_minutes: u64,
    },

    /// The credential scope names another region than the server's.
    #[error("Credential should be scoped to a valid region, not '{0}'. ")]
    WrongRegion(String),

    /// The credential scope names another service than the expected one.
    #[error("Credential should be scoped to correct service: '{0}'. ")]
    WrongService(String),

    /// The credential scope's terminator is not `aws4_request`.
    #[error("Credential should be scoped with a valid terminator: 'aws4_request', not '{0}'. ")]
    WrongTerminator(String),

    /// The date in the credential scope is not the date of `X-Amz-Date`.
    #[error(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
         '{scope}' != '{date}', from '{timestamp}'."
    )]
    ScopeDateMismatch {
        /// The scope's `yyyymmdd`.
        scope: String,
        /// The first eight characters of `timestamp`.
        date: String,
        /// The request's signing time (ISO 8601 basic).
        timestamp: String,
    },

    /// `X-Amz-Content-SHA256` is present and differs from the hash of the body the server received.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    BodyHashMismatch,
}

impl Error {
    /// The AWS error code (`__type` of an AWS JSON error body, `x-amzn-ErrorType` header).
    #[must_use]
    pub fn aws_code(&self) -> &'static str {
        match self {
            Error::MissingAuth => "MissingAuthenticationTokenException",
            Error::Incomplete(_) => "IncompleteSignatureException",
            Error::UnknownKey => "UnrecognizedClientException",
            Error::SignatureMismatch
            | Error::Expired { .. }
            | Error::PresignExpired { .. }
            | Error::NotYetValid { .. }
            | Error::WrongRegion(_)
            | Error::WrongService(_)
            | Error::WrongTerminator(_)
            | Error::ScopeDateMismatch { .. }
            | Error::BodyHashMismatch => "InvalidSignatureException",
        }
    }

    /// The HTTP status to answer with.
    ///
    /// `IncompleteSignatureException` is a 400; the other authentication failures are 403, as AWS
    /// JSON services answer them. (Public reports show ECR answering `Signature expired` with 400
    /// at times; SDKs key on `__type`, not on the status, so we keep one status per code.)
    #[must_use]
    pub fn http_status(&self) -> u16 {
        match self {
            Error::Incomplete(_) => 400,
            _ => 403,
        }
    }
}
