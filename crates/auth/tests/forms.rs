//! Less common forms: the HTTP `Date` header instead of `X-Amz-Date`, presigned URLs signed over
//! `UNSIGNED-PAYLOAD`, presigned expiry, and requests that carry both auth mechanisms.

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use berth_auth::{Credential, Error, Request, RequestHead, Verifier, canonical as c};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const T: u64 = 1_440_938_160; // 2015-08-30T12:36:00Z

fn store() -> HashMap<String, Credential> {
    HashMap::from([("AKIDEXAMPLE".to_owned(), Credential::new(SECRET, "p"))])
}

fn sign(creq: &[u8]) -> String {
    let sts = c::string_to_sign("20150830T123600Z", "20150830/us-east-1/ecr/aws4_request", creq);
    c::signature(&c::signing_key(SECRET, "20150830", "us-east-1", "ecr"), &sts)
}

#[test]
fn date_header_instead_of_x_amz_date() {
    let date: &[u8] = b"Sun, 30 Aug 2015 12:36:00 GMT";
    let hdrs: Vec<(&str, &[u8])> = vec![("Host", b"h"), ("Date", date)];
    let body = c::sha256_hex(b"{}");
    let creq =
        c::canonical_request("POST", "/", "", &c::canonical_headers(&hdrs, &["date", "host"]), "date;host", &body);
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/ecr/aws4_request, SignedHeaders=date;host, Signature={}",
        sign(&creq)
    );
    let mut headers = hdrs.clone();
    headers.push(("Authorization", auth.as_bytes()));
    let req = Request { method: "POST", path: "/", query: "", headers: &headers, body_sha256: &body };
    let v = Verifier::default().verify(&store(), &req, UNIX_EPOCH + Duration::from_secs(T)).unwrap();
    assert_eq!(v.signed_at, UNIX_EPOCH + Duration::from_secs(T));
}

fn presigned_query(expires: u64, payload: &str) -> String {
    let q = format!(
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fecr%2Faws4_request\
         &X-Amz-Date=20150830T123600Z&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host"
    );
    let hdrs: [(&str, &[u8]); 1] = [("host", b"h")];
    let creq = c::canonical_request(
        "GET",
        "/",
        &c::canonical_query(&q, &[]),
        &c::canonical_headers(&hdrs, &["host"]),
        "host",
        payload,
    );
    format!("{q}&X-Amz-Signature={}", sign(&creq))
}

#[test]
fn presigned_unsigned_payload_and_expiry() {
    let body = c::sha256_hex(b"");
    let headers: [(&str, &[u8]); 1] = [("Host", b"h")];
    let q = presigned_query(60, "UNSIGNED-PAYLOAD");
    let req = Request { method: "GET", path: "/", query: &q, headers: &headers, body_sha256: &body };
    let v = Verifier::default().verify(&store(), &req, UNIX_EPOCH + Duration::from_secs(T + 60)).unwrap();
    assert!(v.presigned);
    let err = Verifier::default().verify(&store(), &req, UNIX_EPOCH + Duration::from_secs(T + 61)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z (20150830T123701Z - 60 sec.)"
    );
    assert_eq!(err.aws_code(), "InvalidSignatureException");

    // Signed over the body hash works too.
    let q = presigned_query(60, &body);
    let req = Request { query: &q, ..req };
    Verifier::default().verify(&store(), &req, UNIX_EPOCH + Duration::from_secs(T)).unwrap();

    // Expires out of range.
    let q = presigned_query(604_801, &body);
    let req = Request { query: &q, ..req };
    let err = Verifier::default().verify(&store(), &req, UNIX_EPOCH + Duration::from_secs(T)).unwrap_err();
    assert_eq!(err.aws_code(), "IncompleteSignatureException");
}

#[test]
fn both_mechanisms_is_incomplete() {
    let body = c::sha256_hex(b"");
    let q = presigned_query(60, &body);
    let headers: [(&str, &[u8]); 3] = [
        ("Host", b"h"),
        ("X-Amz-Date", b"20150830T123600Z"),
        ("Authorization", b"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/ecr/aws4_request"),
    ];
    let req = Request { method: "GET", path: "/", query: &q, headers: &headers, body_sha256: &body };
    let err = Verifier::default().verify(&store(), &req, UNIX_EPOCH + Duration::from_secs(T)).unwrap_err();
    assert!(matches!(err, Error::Incomplete(ref m) if m.starts_with("Only one auth mechanism allowed")), "{err}");
}

#[test]
fn duplicate_authorization_or_date_is_incomplete() {
    let body = c::sha256_hex(b"");
    let headers: [(&str, &[u8]); 4] = [
        ("Host", b"h"),
        ("X-Amz-Date", b"20150830T123600Z"),
        ("authorization", b"AWS4-HMAC-SHA256 x"),
        ("Authorization", b"AWS4-HMAC-SHA256 y"),
    ];
    let req = Request { method: "GET", path: "/", query: "", headers: &headers, body_sha256: &body };
    let err = Verifier::default().verify(&store(), &req, UNIX_EPOCH + Duration::from_secs(T)).unwrap_err();
    assert_eq!(err.to_string(), "Only one 'authorization' header is allowed.");
}

/// The two steps an async server takes: the head is checked and names its key before the body
/// is read; the one signature computation comes after the key lookup and the body.
#[test]
fn parse_then_verify_once_the_key_and_body_are_in() {
    let body = c::sha256_hex(b"{\"a\":1}");
    let hdrs: Vec<(&str, &[u8])> =
        vec![("Host", b"h"), ("X-Amz-Date", b"20150830T123600Z"), ("X-Amz-Content-Sha256", body.as_bytes())];
    let creq = c::canonical_request(
        "POST",
        "/",
        "",
        &c::canonical_headers(&hdrs, &["host", "x-amz-content-sha256", "x-amz-date"]),
        "host;x-amz-content-sha256;x-amz-date",
        &body,
    );
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/ecr/aws4_request, \
         SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={}",
        sign(&creq)
    );
    let mut headers = hdrs.clone();
    headers.push(("Authorization", auth.as_bytes()));
    let head = RequestHead { method: "POST", path: "/", query: "", headers: &headers };
    let now = UNIX_EPOCH + Duration::from_secs(T);

    let presented = Verifier::default().parse(&head, now).unwrap();
    assert_eq!(
        (presented.access_key_id(), presented.region(), presented.service(), presented.presigned()),
        ("AKIDEXAMPLE", "us-east-1", "ecr", false)
    );
    assert_eq!(presented.signed_at(), now);
    assert!(!format!("{presented:?}").contains(SECRET));
    let credential = &store()["AKIDEXAMPLE"];
    let v = presented.verify(credential, &body).unwrap();
    assert_eq!((v.access_key_id.as_str(), v.principal.as_str()), ("AKIDEXAMPLE", "p"));

    // The body is checked against the signed hash, and the secret against the signature.
    assert_eq!(presented.verify(credential, &c::sha256_hex(b"{}")).unwrap_err(), Error::BodyHashMismatch);
    assert_eq!(presented.verify(&Credential::new("other", "p"), &body).unwrap_err(), Error::SignatureMismatch);
    let with_token = Credential::new(SECRET, "p").with_session_token("t");
    assert_eq!(presented.verify(&with_token, &body).unwrap_err(), Error::UnknownKey);

    // Time and scope fail in the first step, before any key is looked up.
    let late = UNIX_EPOCH + Duration::from_secs(T + 301);
    assert!(matches!(Verifier::default().parse(&head, late).unwrap_err(), Error::Expired { .. }));
    let err = Verifier::new("eu-west-1", "ecr").parse(&head, now).unwrap_err();
    assert_eq!(err, Error::WrongRegion("us-east-1".into()));

    // The one-shot form agrees.
    let req = Request { method: "POST", path: "/", query: "", headers: &headers, body_sha256: &body };
    assert_eq!(Verifier::default().verify(&store(), &req, now).unwrap(), v);
    assert_eq!(req.head().headers.len(), headers.len());
}
