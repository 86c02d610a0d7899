//! Requests exactly as botocore 1.43 (the aws CLI's engine) signs them for
//! `aws ecr describe-repositories --endpoint-url http://127.0.0.1:5000 --region us-east-1`,
//! captured in `tests/fixtures/botocore-ecr.json` by `tests/fixtures/capture_botocore.py` (a
//! `before-send` hook on a real botocore ECR client; the `Host` header is the one the HTTP layer
//! adds). botocore sends no `X-Amz-Content-SHA256` for ECR, so the verifier hashes the body itself.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_auth::{Credential, Error, SecretKey, Verifier, canonical::sha256_hex};
use serde_json::Value;

mod common;

type Captured = common::OwnedRequest;

impl Captured {
    fn load(name: &str) -> Captured {
        let fx = fixture();
        let r = &fx[name];
        Captured {
            method: r["method"].as_str().unwrap().to_owned(),
            path: r["path"].as_str().unwrap().to_owned(),
            query: r["query"].as_str().unwrap().to_owned(),
            headers: r["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| (h[0].as_str().unwrap().to_owned(), h[1].as_str().unwrap().as_bytes().to_vec()))
                .collect(),
            body: r["body"].as_str().unwrap().as_bytes().to_vec(),
        }
    }

    fn header(&self, name: &str) -> &[u8] {
        &self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).unwrap().1
    }

    fn set_header(&mut self, name: &str, value: &[u8]) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_vec()));
    }

    fn signed_at(&self) -> SystemTime {
        let d = std::str::from_utf8(self.header("x-amz-date")).unwrap();
        // yyyymmddThhmmssZ; all captures are from 2026-11-23.
        assert_eq!(&d[..8], "20261123");
        let secs: u64 = d[9..11].parse::<u64>().unwrap() * 3600
            + d[11..13].parse::<u64>().unwrap() * 60
            + d[13..15].parse::<u64>().unwrap();
        UNIX_EPOCH + Duration::from_secs(1_795_392_000 + secs)
    }

    fn verify(&self, now: SystemTime) -> berth_auth::Result<berth_auth::Verified> {
        self.verify_with(&Verifier::default(), &store(), now)
    }
}

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/botocore-ecr.json")).unwrap()
}

fn store() -> HashMap<String, Credential> {
    let fx = fixture();
    HashMap::from([(
        fx["access_key_id"].as_str().unwrap().to_owned(),
        Credential::new(fx["secret"].as_str().unwrap(), "user/ci"),
    )])
}

fn token_store() -> HashMap<String, Credential> {
    let fx = fixture();
    HashMap::from([(
        fx["access_key_id"].as_str().unwrap().to_owned(),
        Credential::new(fx["secret"].as_str().unwrap(), "role/ci-session")
            .with_session_token(fx["session_token"].as_str().unwrap()),
    )])
}

#[test]
fn botocore_requests_verify() {
    for name in ["describe_repositories", "describe_images"] {
        let req = Captured::load(name);
        let now = req.signed_at() + Duration::from_secs(30);
        let v = req.verify(now).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(v.access_key_id, "AKIABERTHTEST0000001");
        assert_eq!(v.principal, "user/ci");
        assert_eq!(v.region, "us-east-1");
        assert_eq!(v.service, "ecr");
        assert_eq!(v.signed_at, req.signed_at());
        assert!(!v.presigned);
    }
}

#[test]
fn no_content_sha256_header_is_sent() {
    let req = Captured::load("describe_repositories");
    assert!(!req.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("x-amz-content-sha256")));
}

#[test]
fn wrong_secret_is_signature_mismatch() {
    let req = Captured::load("describe_repositories");
    let store = HashMap::from([("AKIABERTHTEST0000001".to_owned(), Credential::new("not-the-secret", "user/ci"))]);
    let err = req.verify_with(&Verifier::default(), &store, req.signed_at()).unwrap_err();
    assert_eq!(err, Error::SignatureMismatch);
    assert_eq!(err.aws_code(), "InvalidSignatureException");
    assert_eq!(err.http_status(), 403);
    assert_eq!(
        err.to_string(),
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret \
         Access Key and signing method. Consult the service documentation for details."
    );
}

#[test]
fn tampered_body_or_header_is_signature_mismatch() {
    let mut req = Captured::load("describe_repositories");
    let now = req.signed_at();
    req.body = br#"{"repositoryNames":["x"]}"#.to_vec();
    assert_eq!(req.verify(now).unwrap_err(), Error::SignatureMismatch);

    let mut req = Captured::load("describe_repositories");
    req.set_header("X-Amz-Target", b"AmazonEC2ContainerRegistry_V20150921.DeleteRepository");
    assert_eq!(req.verify(now).unwrap_err(), Error::SignatureMismatch);

    // An unsigned header may change freely.
    let mut req = Captured::load("describe_repositories");
    req.set_header("User-Agent", b"something else");
    req.verify(now).unwrap();
}

#[test]
fn unknown_key_is_unrecognized_client() {
    let req = Captured::load("describe_repositories");
    let err = req.verify_with(&Verifier::default(), &HashMap::new(), req.signed_at()).unwrap_err();
    assert_eq!(err, Error::UnknownKey);
    assert_eq!(err.aws_code(), "UnrecognizedClientException");
    assert_eq!(err.http_status(), 403);
    assert_eq!(err.to_string(), "The security token included in the request is invalid.");
}

#[test]
fn six_minutes_late_is_expired() {
    let req = Captured::load("describe_repositories");
    let err = req.verify(req.signed_at() + Duration::from_secs(6 * 60)).unwrap_err();
    assert_eq!(err.aws_code(), "InvalidSignatureException");
    let d = std::str::from_utf8(req.header("x-amz-date")).unwrap().to_owned();
    // now = signed + 6 min; now - 5 min = signed + 1 min.
    let plus = |m: u64| {
        let t = req.signed_at() + Duration::from_secs(m * 60);
        let s = t.duration_since(UNIX_EPOCH).unwrap().as_secs() - 1_795_392_000;
        format!("20261123T{:02}{:02}{:02}Z", s / 3600, s / 60 % 60, s % 60)
    };
    assert_eq!(
        err.to_string(),
        format!("Signature expired: {d} is now earlier than {} ({} - 5 min.)", plus(1), plus(6))
    );

    // Exactly at the limit still verifies; a wider window (ECR's 15 min) accepts 6 minutes.
    req.verify(req.signed_at() + Duration::from_secs(5 * 60)).unwrap();
    let wide = Verifier::default().with_max_skew(Duration::from_secs(15 * 60));
    req.verify_with(&wide, &store(), req.signed_at() + Duration::from_secs(6 * 60)).unwrap();
}

#[test]
fn six_minutes_early_is_not_yet_current() {
    let req = Captured::load("describe_repositories");
    let err = req.verify(req.signed_at() - Duration::from_secs(6 * 60)).unwrap_err();
    assert!(matches!(err, Error::NotYetValid { skew_minutes: 5, .. }), "{err:?}");
    assert!(err.to_string().starts_with("Signature not yet current: "), "{err}");
    assert_eq!(err.aws_code(), "InvalidSignatureException");
}

#[test]
fn wrong_region_and_service() {
    let req = Captured::load("describe_repositories");
    let now = req.signed_at();
    let err = req.verify_with(&Verifier::new("eu-west-1", "ecr"), &store(), now).unwrap_err();
    assert_eq!(err.to_string(), "Credential should be scoped to a valid region, not 'us-east-1'. ");
    assert_eq!(err.aws_code(), "InvalidSignatureException");
    let err = req.verify_with(&Verifier::new("us-east-1", "ecr-public"), &store(), now).unwrap_err();
    assert_eq!(err.to_string(), "Credential should be scoped to correct service: 'ecr-public'. ");
    assert_eq!(err.aws_code(), "InvalidSignatureException");
}

#[test]
fn content_sha256_header_must_match_body() {
    let mut req = Captured::load("describe_repositories");
    let now = req.signed_at();
    req.set_header("X-Amz-Content-SHA256", sha256_hex(b"other").as_bytes());
    assert_eq!(req.verify(now).unwrap_err(), Error::BodyHashMismatch);
    assert_eq!(Error::BodyHashMismatch.aws_code(), "InvalidSignatureException");
    // A correct but unsigned header changes nothing.
    let body_hash = sha256_hex(&req.body);
    req.set_header("X-Amz-Content-SHA256", body_hash.as_bytes());
    req.verify(now).unwrap();
    // UNSIGNED-PAYLOAD is refused in the header form unless allowed.
    req.set_header("X-Amz-Content-SHA256", b"UNSIGNED-PAYLOAD");
    assert_eq!(req.verify(now).unwrap_err(), Error::BodyHashMismatch);
}

#[test]
fn session_tokens() {
    let req = Captured::load("describe_repositories_with_token");
    let now = req.signed_at();
    let v = req.verify_with(&Verifier::default(), &token_store(), now).unwrap();
    assert_eq!(v.principal, "role/ci-session");
    // A long-term key does not accept a token, and a temporary one requires its own.
    assert_eq!(req.verify_with(&Verifier::default(), &store(), now).unwrap_err(), Error::UnknownKey);
    let plain = Captured::load("describe_repositories");
    assert_eq!(
        plain.verify_with(&Verifier::default(), &token_store(), plain.signed_at()).unwrap_err(),
        Error::UnknownKey
    );
    let mut wrong = req;
    wrong.set_header("X-Amz-Security-Token", b"FwoGZXIvYXdzEBerthExampleSessionToken+/!");
    assert_eq!(wrong.verify_with(&Verifier::default(), &token_store(), now).unwrap_err(), Error::UnknownKey);
}

#[test]
fn missing_and_malformed_authorization() {
    let mut req = Captured::load("describe_repositories");
    let now = req.signed_at();
    let auth = String::from_utf8(req.header("authorization").to_vec()).unwrap();
    req.headers.retain(|(n, _)| n != "Authorization");
    let err = req.verify(now).unwrap_err();
    assert_eq!(err, Error::MissingAuth);
    assert_eq!((err.aws_code(), err.http_status()), ("MissingAuthenticationTokenException", 403));

    let cases: &[(&str, &str)] = &[
        (
            "AWS4-HMAC-SHA256 Credential=AKIABERTHTEST0000001/20261123/us-east-1/ecr/aws4_request, SignedHeaders=host;x-amz-date",
            "Authorization header requires 'Signature' parameter.",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKIABERTHTEST0000001/20261123/us-east-1/ecr, SignedHeaders=host;x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000",
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'AKIABERTHTEST0000001/20261123/us-east-1/ecr'",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKIABERTHTEST0000001/20261123/us-east-1/ecr/aws4_request, SignedHeaders=x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000",
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKIABERTHTEST0000001/20261123/us-east-1/ecr/aws4_request, SignedHeaders=host, Signature=0000000000000000000000000000000000000000000000000000000000000000",
            "'x-amz-date' must be a 'SignedHeader' in the AWS Authorization.",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKIABERTHTEST0000001/20261123/us-east-1/ecr/aws4_request, SignedHeaders=host;x-amz-date, Signature=XYZ",
            "Signature must be 64 lower-case hexadecimal characters.",
        ),
        (
            "AWS4-HMAC-SHA1 Credential=a/b/c/d/e",
            "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA1'; only 'AWS4-HMAC-SHA256' is supported.",
        ),
        ("Basic dXNlcjpwYXNz", "Unsupported AWS 'algorithm': 'Basic'; only 'AWS4-HMAC-SHA256' is supported."),
    ];
    for (value, message) in cases {
        let mut r = Captured::load("describe_repositories");
        r.set_header("Authorization", value.as_bytes());
        let err = r.verify(now).unwrap_err();
        assert_eq!(err.to_string(), *message, "{value}");
        assert_eq!((err.aws_code(), err.http_status()), ("IncompleteSignatureException", 400), "{value}");
    }

    // X-Amz-Target selects the operation, so it must be signed when present.
    let mut r = Captured::load("describe_repositories");
    r.set_header("Authorization", auth.replace("x-amz-date;x-amz-target", "x-amz-date").as_bytes());
    let err = r.verify(now).unwrap_err();
    assert_eq!(err.to_string(), "'x-amz-target' must be a 'SignedHeader' in the AWS Authorization.");
    assert_eq!(err.aws_code(), "IncompleteSignatureException");

    // No date header at all.
    let mut r = Captured::load("describe_repositories");
    r.headers.retain(|(n, _)| n != "X-Amz-Date");
    assert_eq!(
        r.verify(now).unwrap_err().to_string(),
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
    );

    // Scope date and terminator.
    for (from, to, msg) in [
        (
            "/20261123/",
            "/20261122/",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20261122' != '20261123', from '",
        ),
        (
            "/aws4_request",
            "/aws5_request",
            "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. ",
        ),
    ] {
        let mut r = Captured::load("describe_repositories");
        r.set_header("Authorization", auth.replace(from, to).as_bytes());
        let err = r.verify(now).unwrap_err();
        assert!(err.to_string().starts_with(msg), "{err}");
        assert_eq!(err.aws_code(), "InvalidSignatureException");
    }
}

#[test]
fn secrets_are_not_debug_printed() {
    let fx = fixture();
    let secret = fx["secret"].as_str().unwrap();
    let cred = Credential::new(secret, "p").with_session_token("tok-secret");
    let dbg = format!("{cred:?} {:?}", SecretKey::new(secret));
    assert!(!dbg.contains(secret) && !dbg.contains("tok-secret"), "{dbg}");
    assert!(dbg.contains("***"));
}
