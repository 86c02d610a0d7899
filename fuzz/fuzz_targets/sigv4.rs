//! SigV4 requests, header-signed or presigned, as lines: method, path, query, then headers
//! `name:value` until an empty line. Verified against one known key at a fixed time (the seeds
//! are requests botocore signed at that time), so valid signatures are in reach of mutation.
#![no_main]

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_auth::canonical::{canonical_query, percent_decode, uri_encode};
use berth_auth::{Credential, Request, Verifier};
use libfuzzer_sys::fuzz_target;

/// The seeds' signing time, 2024-01-01T00:00:00Z, plus a minute.
const NOW: u64 = 1_704_067_260;
const KEY_ID: &str = "AKIAFUZZFUZZFUZZFUZZ";
const SECRET: &str = "fuzz-secret-access-key";
/// SHA-256 of the empty body (the seeds carry none).
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.split('\n');
    let (Some(method), Some(path), Some(query)) = (lines.next(), lines.next(), lines.next()) else { return };
    let headers: Vec<(&str, &[u8])> = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k, v.trim().as_bytes()))
        .collect();
    let store = HashMap::from([(KEY_ID.to_owned(), Credential::new(SECRET, "arn:aws:iam::111122223333:user/fuzz"))]);
    let request = Request { method, path, query, headers: &headers, body_sha256: EMPTY_SHA256 };
    let now = UNIX_EPOCH + Duration::from_secs(NOW);
    let verifier = Verifier::new("us-east-1", "ecr").with_max_skew(Duration::from_secs(900));
    let first = verifier.verify(&store, &request, now);
    if let Ok(v) = &first {
        assert_eq!(v.access_key_id, KEY_ID);
        assert_eq!((v.region.as_str(), v.service.as_str()), ("us-east-1", "ecr"));
        let skew = v.signed_at.duration_since(now).or_else(|_| now.duration_since(v.signed_at)).unwrap_or_default();
        assert!(skew <= Duration::from_secs(900), "signed {skew:?} away from now");
        // Another key id or secret never verifies the same request.
        let other = HashMap::from([(KEY_ID.to_owned(), Credential::new("another secret", "arn:aws:iam::1:user/x"))]);
        assert!(verifier.verify(&other, &request, now).is_err(), "verified under another secret");
    }
    assert_eq!(verifier.verify(&store, &request, now).is_ok(), first.is_ok(), "verification is deterministic");
    let _ = verifier.verify(&store, &request, SystemTime::UNIX_EPOCH);
    // The canonical forms: encoding is undone by decoding, and a canonical query is stable.
    for part in [path, query] {
        assert_eq!(percent_decode(uri_encode(part.as_bytes(), false).as_bytes()), part.as_bytes());
        assert_eq!(percent_decode(uri_encode(part.as_bytes(), true).as_bytes()), part.as_bytes());
    }
    let q = canonical_query(query, &[]);
    assert_eq!(canonical_query(&q, &[]), q, "canonicalising {query:?} twice changed it");
});
