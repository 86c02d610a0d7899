//! Answers sent before a request's body was read.
//!
//! A door may refuse a request from its headers alone (no such upload, a chunk at the wrong
//! offset, no credentials) without reading the body the client is sending. On HTTP/1.x the
//! connection then cannot carry another request, and the server closes it after the answer; a
//! client that reuses it meanwhile sees its next request fail. An error answer to a request that
//! carries a body therefore says `Connection: close` (RFC 9112 §9.6), so clients open a new
//! connection instead. HTTP/2 streams need nothing of the kind.

use http::{HeaderMap, HeaderValue, Response, Version, header};

/// Whether a request carries a body: a declared length above 0, or a transfer coding.
#[must_use]
pub fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() != "0")
}

/// Marks an error answer to an HTTP/1.x request that carried a body as closing the connection.
pub fn close_after_error<B>(version: Version, had_body: bool, resp: &mut Response<B>) {
    let error = resp.status().is_client_error() || resp.status().is_server_error();
    if error && had_body && version <= Version::HTTP_11 {
        resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_errors_to_http1_requests_with_a_body_close() {
        let mut h = HeaderMap::new();
        assert!(!has_body(&h));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        assert!(!has_body(&h));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("10"));
        assert!(has_body(&h));
        let mut chunked = HeaderMap::new();
        chunked.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        assert!(has_body(&chunked));

        let answer = |status: u16, version, body| {
            let mut r = Response::builder().status(status).body(()).unwrap();
            close_after_error(version, body, &mut r);
            r.headers().get(header::CONNECTION).is_some()
        };
        assert!(answer(416, Version::HTTP_11, true));
        assert!(answer(500, Version::HTTP_10, true));
        assert!(!answer(202, Version::HTTP_11, true));
        assert!(!answer(416, Version::HTTP_11, false));
        assert!(!answer(416, Version::HTTP_2, true));
    }
}
