//! From `object_store` errors to the blob store's.
//!
//! object_store keeps the HTTP status and the S3 error body of a failed request in a private
//! type, reachable only through its `Display` ("… status code: 503 Service Unavailable: <?xml …
//! <Code>SlowDown</Code> …"). So the status and the S3 error code are read from that text; the
//! unit tests below pin the shapes, and the conformance tests against a real server check the
//! outcome (NotFound, InvalidRange, the start check's messages).

use std::error::Error as StdError;

use berth_blobstore::Error;
use object_store::client::{HttpError, HttpErrorKind};

/// The blob store error for an object_store error.
pub(crate) fn map(e: object_store::Error) -> Error {
    if matches!(e, object_store::Error::NotFound { .. }) {
        return Error::NotFound;
    }
    if code(&e).as_deref() == Some("QuotaExceeded") {
        return Error::StorageFull(Box::new(e));
    }
    if transient(&e) { Error::Unavailable(Box::new(e)) } else { Error::Backend(Box::new(e)) }
}

/// True for failures worth telling a client to retry later: the server could not be reached
/// or stalled (after object_store's bounded retries), or answered 5xx / 429 / 408 (SlowDown,
/// ServiceUnavailable, InternalError), also as an error inside a 200 answer.
pub(crate) fn transient(e: &(dyn StdError + 'static)) -> bool {
    if transport(e).is_some() {
        return true;
    }
    match status(e) {
        Some(s) => s >= 500 || s == 429 || s == 408,
        None => chain(e).any(|t| t.contains("Server returned error response")),
    }
}

/// The kind of the transport failure in `e`'s chain, if it is one.
pub(crate) fn transport(e: &(dyn StdError + 'static)) -> Option<HttpErrorKind> {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(h) = c.downcast_ref::<HttpError>() {
            return Some(h.kind());
        }
        cur = c.source();
    }
    None
}

/// The HTTP status of the failed request, if the server answered.
pub(crate) fn status(e: &(dyn StdError + 'static)) -> Option<u16> {
    chain(e).find_map(|t| status_in(&t))
}

/// The S3 error code (`<Code>…</Code>`) of the failed request, if the server sent one.
pub(crate) fn code(e: &(dyn StdError + 'static)) -> Option<String> {
    chain(e).find_map(|t| code_in(&t))
}

/// The innermost cause, e.g. "Connection refused (os error 111)".
pub(crate) fn root_cause(e: &(dyn StdError + 'static)) -> String {
    let mut cur = e;
    let mut io = None;
    loop {
        if let Some(i) = cur.downcast_ref::<std::io::Error>() {
            io = Some(i.to_string());
        }
        match cur.source() {
            Some(next) => cur = next,
            None => return io.unwrap_or_else(|| cur.to_string()),
        }
    }
}

fn chain<'a>(e: &'a (dyn StdError + 'static)) -> impl Iterator<Item = String> + 'a {
    std::iter::successors(Some(e), |c: &&'a (dyn StdError + 'static)| (*c).source()).map(ToString::to_string)
}

fn status_in(text: &str) -> Option<u16> {
    let (_, after) = text.split_once("status code: ")?;
    let digits = after.get(..3)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn code_in(text: &str) -> Option<String> {
    let (_, after) = text.split_once("<Code>")?;
    let (code, _) = after.split_once("</Code>")?;
    let code = code.trim();
    (!code.is_empty() && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')).then(|| code.to_owned())
}

/// Why the start check failed, in one line naming the bucket or endpoint.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CheckError {
    #[error("S3 bucket '{bucket}' does not exist at {endpoint}")]
    NoBucket { bucket: String, endpoint: String },
    #[error("S3 credentials were refused by {endpoint} ({code})")]
    Credentials { endpoint: String, code: String },
    #[error("S3 access to bucket '{bucket}' was denied at {endpoint} ({code})")]
    Denied { bucket: String, endpoint: String, code: String },
    #[error("cannot reach S3 at {endpoint}: {cause}")]
    Unreachable { endpoint: String, cause: String },
    #[error("S3 at {endpoint} failed a listing of bucket '{bucket}': {what}")]
    Other { bucket: String, endpoint: String, what: String },
}

const CREDENTIAL_CODES: &[&str] = &[
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "InvalidClientTokenId",
];

/// The start check's error for a failed listing of the bucket.
pub(crate) fn check_error(e: &object_store::Error, bucket: &str, endpoint: &str) -> Error {
    let (bucket, endpoint) = (bucket.to_owned(), endpoint.to_owned());
    let code = code(e);
    let status = status(e);
    let err = match (status, code) {
        (Some(404), Some(c)) if c == "NoSuchBucket" => CheckError::NoBucket { bucket, endpoint },
        (Some(401 | 403), Some(code)) if CREDENTIAL_CODES.contains(&code.as_str()) => {
            CheckError::Credentials { endpoint, code }
        }
        (Some(401), code) => CheckError::Credentials { endpoint, code: code.unwrap_or_else(|| "401".into()) },
        (Some(403), code) => CheckError::Denied { bucket, endpoint, code: code.unwrap_or_else(|| "403".into()) },
        (None, _) if transport(e).is_some() => CheckError::Unreachable { endpoint, cause: root_cause(e) },
        (Some(s), code) => {
            CheckError::Other { bucket, endpoint, what: format!("HTTP {s} {}", code.unwrap_or_default()) }
        }
        (None, _) => CheckError::Other { bucket, endpoint, what: root_cause(e) },
    };
    match err {
        CheckError::Unreachable { .. } => Error::Unavailable(Box::new(err)),
        CheckError::Other { .. } if transient(e) => Error::Unavailable(Box::new(err)),
        _ => Error::Backend(Box::new(err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Text(&'static str);
    impl std::fmt::Display for Text {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl StdError for Text {}

    fn generic(text: &'static str) -> object_store::Error {
        object_store::Error::Generic { store: "S3", source: Box::new(Text(text)) }
    }

    // The shapes object_store 0.14 prints (client/retry.rs `RequestError`).
    const SLOW_DOWN: &str = "Error performing PUT http://h/b/k in 3s, after 5 retries, max_retries: 5, \
        retry_timeout: 10s  - Server returned non-2xx status code: 503 Service Unavailable: \
        <?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message></Message></Error>";
    const NO_BUCKET: &str = "Error performing list request: Error performing GET http://h/nope?list-type=2 in 2ms \
        - Server returned non-2xx status code: 404 Not Found: <?xml version=\"1.0\" encoding=\"UTF-8\"?>\
        <Error><Code>NoSuchBucket</Code><BucketName>nope</BucketName><RequestId>tx0</RequestId></Error>";
    const BAD_KEY: &str = "Error performing GET http://h/b?list-type=2 in 2ms - Server returned non-2xx status \
        code: 403 Forbidden: <Error><Code>InvalidAccessKeyId</Code><RequestId>tx0</RequestId></Error>";
    const BAD_RANGE: &str = "Error performing GET http://h/b/k in 1ms - Server returned non-2xx status code: \
        416 Range Not Satisfiable: <Error><Code>InvalidRange</Code></Error>";

    #[test]
    fn statuses_and_codes_from_text() {
        assert_eq!(status(&generic(SLOW_DOWN)), Some(503));
        assert_eq!(code(&generic(SLOW_DOWN)).as_deref(), Some("SlowDown"));
        assert_eq!(status(&generic(BAD_RANGE)), Some(416));
        assert_eq!(status(&generic("status code: 5x")), None);
        assert_eq!(code(&generic("<Code></Code>")), None);
        assert_eq!(code(&generic("no code here")), None);
    }

    #[test]
    fn mapping() {
        assert!(matches!(map(generic(SLOW_DOWN)), Error::Unavailable(_)));
        assert!(matches!(map(generic(BAD_RANGE)), Error::Backend(_)));
        assert!(matches!(
            map(generic("Server returned error response: <Error><Code>InternalError</Code>")),
            Error::Unavailable(_)
        ));
        let not_found = object_store::Error::NotFound { path: "k".into(), source: Box::new(Text("404")) };
        assert!(matches!(map(not_found), Error::NotFound));
        let quota = generic("status code: 403 Forbidden: <Error><Code>QuotaExceeded</Code></Error>");
        assert!(matches!(map(quota), Error::StorageFull(_)));
    }

    #[test]
    fn check_messages() {
        let e = check_error(&generic(NO_BUCKET), "nope", "http://h");
        assert!(matches!(e, Error::Backend(_)));
        assert_eq!(std::error::Error::source(&e).unwrap().to_string(), "S3 bucket 'nope' does not exist at http://h");
        let e = check_error(&generic(BAD_KEY), "b", "http://h");
        assert_eq!(
            std::error::Error::source(&e).unwrap().to_string(),
            "S3 credentials were refused by http://h (InvalidAccessKeyId)"
        );
        let e = check_error(&generic(SLOW_DOWN), "b", "http://h");
        assert!(matches!(e, Error::Unavailable(_)));
    }
}
