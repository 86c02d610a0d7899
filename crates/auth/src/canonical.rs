//! The SigV4 building blocks: canonical request, string to sign, signing key and signature.
//!
//! These are pure functions over plain parts. [`crate::Verifier`] uses them; they are public so
//! tests can check each step against the AWS SigV4 test-suite vectors.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// The only algorithm SigV4 (not SigV4a) accepts.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Characters SigV4 leaves unescaped: `A-Z a-z 0-9 - . _ ~`.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn push_escaped(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0xf)]));
}

/// SigV4 `UriEncode`: every byte except the unreserved set becomes `%XX` (upper-case hex).
/// With `keep_slash`, `/` is kept as is (for paths).
#[must_use]
pub fn uri_encode(input: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(input.len());
    for &b in input {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            push_escaped(&mut out, b);
        }
    }
    out
}

/// Strict percent-decoding: `%XX` becomes the byte; a `%` not followed by two hex digits and every
/// other byte (including `+`) stay as they are.
#[must_use]
pub fn percent_decode(input: &[u8]) -> Vec<u8> {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%'
            && let (Some(h), Some(l)) =
                (input.get(i + 1).copied().and_then(hex), input.get(i + 2).copied().and_then(hex))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

/// Removes `.` and `..` segments and empty segments (`//`), keeping the leading `/` and a trailing
/// `/` (RFC 3986 §5.2.4 as the non-S3 AWS signers apply it).
#[must_use]
pub fn normalize_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    out.push('/');
    out.push_str(&segments.join("/"));
    let ends_with_slash = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    if ends_with_slash && !segments.is_empty() {
        out.push('/');
    }
    out
}

/// The canonical URI of a non-S3 service: the raw (already percent-encoded) request path,
/// optionally normalized, then `UriEncode`d again with `/` kept. That second encoding is the
/// "double encoding" every AWS SDK applies for services other than S3.
#[must_use]
pub fn canonical_uri(raw_path: &str, normalize: bool) -> String {
    let path = if raw_path.is_empty() { "/" } else { raw_path };
    if normalize { uri_encode(normalize_path(path).as_bytes(), true) } else { uri_encode(path.as_bytes(), true) }
}

/// The canonical query string: each `key=value` pair of the raw query (`&`-separated, a missing
/// `=` meaning an empty value) is percent-decoded and re-encoded with `UriEncode`, then the pairs
/// are sorted by key and then by value. Pairs whose decoded key is in `exclude` are left out (the
/// presigned form excludes `X-Amz-Signature`).
#[must_use]
pub fn canonical_query(raw_query: &str, exclude: &[&str]) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let key = percent_decode(k.as_bytes());
            if exclude.iter().any(|e| e.as_bytes() == key.as_slice()) {
                return None;
            }
            Some((uri_encode(&key, false), uri_encode(&percent_decode(v.as_bytes()), false)))
        })
        .collect();
    pairs.sort_unstable();
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Trims spaces at both ends and collapses runs of spaces into one (SigV4 `Trimall`; only the
/// space character, as aws-sigv4 and the Go and C SDKs do).
fn push_trimmed(out: &mut Vec<u8>, value: &[u8]) {
    let start = value.iter().position(|&b| b != b' ').unwrap_or(value.len());
    let end = value.iter().rposition(|&b| b != b' ').map_or(start, |i| i + 1);
    let mut prev_space = false;
    for &b in &value[start..end] {
        if b == b' ' {
            if !prev_space {
                out.push(b);
            }
            prev_space = true;
        } else {
            out.push(b);
            prev_space = false;
        }
    }
}

/// The canonical headers block: for each name in `signed` (lower-case, in that order) a line
/// `name:value\n`, where value is every received header of that name (case-insensitive), trimmed,
/// joined with `,` in the order received. A signed header absent from the request canonicalizes
/// with an empty value (and so fails the signature, as at AWS).
#[must_use]
pub fn canonical_headers<V: AsRef<[u8]>>(headers: &[(&str, V)], signed: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for name in signed {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        let mut first = true;
        for (n, v) in headers {
            if n.eq_ignore_ascii_case(name) {
                if !first {
                    out.push(b',');
                }
                push_trimmed(&mut out, v.as_ref());
                first = false;
            }
        }
        out.push(b'\n');
    }
    out
}

/// Assembles the canonical request:
/// `method \n uri \n query \n headers \n signed_headers \n payload_hash`.
#[must_use]
pub fn canonical_request(
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    canonical_headers: &[u8],
    signed_headers: &str,
    payload_hash: &str,
) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(method.len() + canonical_uri.len() + canonical_query.len() + canonical_headers.len() + 200);
    for part in [method.as_bytes(), canonical_uri.as_bytes(), canonical_query.as_bytes(), canonical_headers] {
        out.extend_from_slice(part);
        out.push(b'\n');
    }
    out.extend_from_slice(signed_headers.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    out
}

/// Lower-case hex SHA-256 of `data`.
#[must_use]
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The string to sign: `AWS4-HMAC-SHA256 \n amz_date \n scope \n hex(sha256(canonical_request))`,
/// where scope is `yyyymmdd/region/service/aws4_request`.
#[must_use]
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &[u8]) -> String {
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", sha256_hex(canonical_request))
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The signing key: `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
#[must_use]
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let mut k = Vec::with_capacity(4 + secret.len());
    k.extend_from_slice(b"AWS4");
    k.extend_from_slice(secret.as_bytes());
    let k_date = hmac(&k, date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// The signature: lower-case hex `HMAC(signing_key, string_to_sign)`.
#[must_use]
pub fn signature(signing_key: &[u8; 32], string_to_sign: &str) -> String {
    hex::encode(hmac(signing_key, string_to_sign.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        for (i, o) in [
            ("/", "/"),
            ("//", "/"),
            ("/./", "/"),
            ("/example/..", "/"),
            ("/example1/example2/../..", "/"),
            ("/./example", "/example"),
            ("//example//", "/example/"),
            ("/a/b/../c/", "/a/c/"),
            ("/..", "/"),
            ("/a/.", "/a/"),
        ] {
            assert_eq!(normalize_path(i), o, "{i}");
        }
    }

    #[test]
    fn encodes_twice() {
        assert_eq!(canonical_uri("/example%20space/", true), "/example%2520space/");
        assert_eq!(canonical_uri("/example space/", true), "/example%20space/");
        assert_eq!(canonical_uri("", true), "/");
    }

    #[test]
    fn query() {
        assert_eq!(canonical_query("b=2&a=2&a=1&c", &[]), "a=1&a=2&b=2&c=");
        assert_eq!(canonical_query("x=%7e%2f+&X-Amz-Signature=ab", &["X-Amz-Signature"]), "x=~%2F%2B");
        assert_eq!(canonical_query("", &[]), "");
        assert_eq!(canonical_query("%zz=%", &[]), "%25zz=%25");
    }

    #[test]
    fn trims() {
        let h = [("My-Header1", &b"  a   b  "[..]), ("my-header1", b"c"), ("other", b"x")];
        assert_eq!(canonical_headers(&h, &["my-header1"]), b"my-header1:a b,c\n");
    }
}
