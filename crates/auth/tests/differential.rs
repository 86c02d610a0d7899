//! Differential test against `aws-sigv4`, the official Rust signer: random requests it signs must
//! verify, and changing any signed part must not. Plus a no-panic property over arbitrary input.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::SignatureLocation;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use berth_auth::{Credential, Error, Request, Verifier, canonical::uri_encode};
use proptest::prelude::*;

const AKID: &str = "AKIDIFFERENTIAL00001";
const SECRET: &str = "differential/Secret+Key0123456789abcdefgh";
const HOST: &str = "ecr.example.test";

/// A request before signing: what a client wants to send.
#[derive(Debug, Clone)]
struct Plain {
    method: String,
    /// Raw segments; encoded by `encode_path`.
    segments: Vec<String>,
    trailing_slash: bool,
    /// Raw key/value pairs; encoded by `encode_component`.
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    token: Option<String>,
    /// Seconds since the epoch.
    time: u64,
    lowercase_hex: bool,
    /// Sign as a presigned URL (query form) instead of the `Authorization` header.
    presign: bool,
}

/// Encodes like a client: unreserved and some sub-delimiters stay, the rest becomes `%XX`.
fn encode_component(s: &str, keep: &[u8], lower: bool) -> String {
    let mut out = String::new();
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(char::from(b));
        } else if lower {
            out.push_str(&format!("%{b:02x}"));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Plain {
    fn path(&self) -> String {
        let mut p = String::new();
        for s in &self.segments {
            p.push('/');
            p.push_str(&encode_component(s, b"!$'()*,;=:@", self.lowercase_hex));
        }
        if p.is_empty() || self.trailing_slash {
            p.push('/');
        }
        p
    }

    fn query(&self) -> String {
        self.query
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    encode_component(k, b"!$'()*,;:@/?", self.lowercase_hex),
                    encode_component(v, b"!$'()*,;:@/?=", self.lowercase_hex)
                )
            })
            .collect::<Vec<_>>()
            .join("&")
    }
}

mod common;

/// A signed request as the server receives it.
type Signed = common::OwnedRequest;

impl Signed {
    fn verify(&self, store: &HashMap<String, Credential>, now: SystemTime) -> berth_auth::Result<berth_auth::Verified> {
        self.verify_with(&Verifier::new("us-east-1", "ecr"), store, now)
    }
}

fn settings(presign: bool) -> SigningSettings {
    let mut s = SigningSettings::default();
    if presign {
        s.signature_location = SignatureLocation::QueryParams;
        s.expires_in = Some(Duration::from_secs(900));
    }
    s
}

fn sign_with_aws_sigv4(p: &Plain) -> Signed {
    let creds = Credentials::new(AKID, SECRET, p.token.clone(), None, "differential");
    let identity = creds.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("ecr")
        .time(UNIX_EPOCH + Duration::from_secs(p.time))
        .settings(settings(p.presign))
        .build()
        .unwrap()
        .into();
    let path = p.path();
    let query = p.query();
    let uri = if query.is_empty() { format!("https://{HOST}{path}") } else { format!("https://{HOST}{path}?{query}") };
    let signable = SignableRequest::new(
        &p.method,
        uri.as_str(),
        p.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        SignableBody::Bytes(&p.body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut query = query;
    for (name, value) in instructions.params() {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(&format!("{name}={}", uri_encode(value.as_bytes(), false)));
    }
    let mut headers: Vec<(String, Vec<u8>)> = vec![("Host".to_owned(), HOST.as_bytes().to_vec())];
    headers.extend(p.headers.iter().map(|(n, v)| (n.clone(), v.as_bytes().to_vec())));
    headers.extend(instructions.headers().map(|(n, v)| (n.to_owned(), v.as_bytes().to_vec())));
    Signed { method: p.method.clone(), path, query, headers, body: p.body.clone() }
}

fn store(token: Option<&str>) -> HashMap<String, Credential> {
    let mut c = Credential::new(SECRET, "principal");
    if let Some(t) = token {
        c = c.with_session_token(t);
    }
    HashMap::from([(AKID.to_owned(), c)])
}

fn plain() -> impl Strategy<Value = Plain> {
    let segment = prop_oneof![
        4 => "[a-zA-Z0-9._~!$'()*,;=:@ %é/+-]{0,8}",
        1 => Just(".".to_owned()),
        1 => Just("..".to_owned()),
        1 => Just(String::new()),
    ];
    let qtext = "[a-zA-Z0-9._~!$'()*,;:@/?= &%é+Z-]{0,8}";
    let header_name = "[xX]-[a-zA-Z0-9-]{1,10}";
    // Visible ASCII and inner spaces; servers strip leading and trailing whitespace.
    let header_value = "[!-~]([ !-~]{0,16}[!-~])?";
    (
        prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"]),
        prop::collection::vec(segment, 0..5),
        any::<bool>(),
        prop::collection::vec((qtext, qtext), 0..5),
        prop::collection::vec((header_name, header_value), 0..4),
        prop::collection::vec(any::<u8>(), 0..64),
        prop::option::of("[A-Za-z0-9+/=]{8,40}"),
        946_684_800u64..4_102_444_800, // 2000..2100
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(method, segments, trailing_slash, query, headers, body, token, time, lowercase_hex, presign)| Plain {
                method: method.to_owned(),
                segments,
                trailing_slash,
                query,
                headers,
                body,
                token,
                time,
                lowercase_hex,
                presign,
            },
        )
}

/// One change to a signed part.
#[derive(Debug, Clone)]
enum Mutation {
    Method,
    PathAppend,
    QueryAppend,
    HeaderBit { header: usize, byte: usize, bit: u8 },
    BodyBit { byte: usize, bit: u8 },
    BodyAppend,
    SignatureDigit(usize),
    Date,
    Token,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        Just(Mutation::Method),
        Just(Mutation::PathAppend),
        Just(Mutation::QueryAppend),
        (any::<usize>(), any::<usize>(), 0u8..7).prop_map(|(header, byte, bit)| Mutation::HeaderBit {
            header,
            byte,
            bit
        }),
        (any::<usize>(), 0u8..8).prop_map(|(byte, bit)| Mutation::BodyBit { byte, bit }),
        Just(Mutation::BodyAppend),
        (0usize..64).prop_map(Mutation::SignatureDigit),
        Just(Mutation::Date),
        Just(Mutation::Token),
    ]
}

fn apply(s: &mut Signed, m: &Mutation) {
    match m {
        Mutation::Method => s.method = if s.method == "GET" { "POST".into() } else { "GET".into() },
        Mutation::PathAppend => s.path.push('z'),
        Mutation::QueryAppend => {
            if !s.query.is_empty() {
                s.query.push('&');
            }
            s.query.push_str("injected=1");
        }
        Mutation::HeaderBit { header, byte, bit } => {
            // Only headers the signer signed: the user-supplied x-* ones.
            let signed: Vec<usize> = (0..s.headers.len())
                .filter(|&i| {
                    s.headers[i].0.to_ascii_lowercase().starts_with("x-") && !s.headers[i].0.starts_with("x-amz")
                })
                .collect();
            if signed.is_empty() {
                s.body.push(0);
                return;
            }
            let v = &mut s.headers[signed[header % signed.len()]].1;
            let i = byte % v.len();
            v[i] ^= 1 << bit;
        }
        Mutation::BodyBit { byte, bit } => {
            if s.body.is_empty() {
                s.body.push(1 << bit);
            } else {
                let i = byte % s.body.len();
                s.body[i] ^= 1 << bit;
            }
        }
        Mutation::BodyAppend => s.body.push(b'x'),
        Mutation::SignatureDigit(i) if s.query.contains("X-Amz-Signature=") => {
            let start = s.query.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len() + i;
            let mut q = s.query.clone().into_bytes();
            q[start] = if q[start] == b'0' { b'1' } else { b'0' };
            s.query = String::from_utf8(q).unwrap();
        }
        Mutation::Date if s.query.contains("X-Amz-Date=") => {
            let pos = s.query.find("X-Amz-Date=").unwrap() + "X-Amz-Date=".len() + 14;
            let mut q = s.query.clone().into_bytes();
            q[pos] = if q[pos] == b'0' { b'1' } else { b'0' };
            s.query = String::from_utf8(q).unwrap();
        }
        Mutation::Token if s.query.contains("X-Amz-Signature=") => {
            if let Some(pos) = s.query.find("X-Amz-Security-Token=") {
                let pos = pos + "X-Amz-Security-Token=".len();
                let mut q = s.query.clone().into_bytes();
                q[pos] = if q[pos] == b'A' { b'B' } else { b'A' };
                s.query = String::from_utf8(q).unwrap();
            } else {
                s.query.push_str("&X-Amz-Security-Token=unexpected");
            }
        }
        Mutation::SignatureDigit(i) => {
            let auth = &mut s.headers.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case("authorization")).unwrap().1;
            let pos = auth.len() - 64 + i;
            auth[pos] = if auth[pos] == b'0' { b'1' } else { b'0' };
        }
        Mutation::Date => {
            let d = &mut s.headers.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case("x-amz-date")).unwrap().1;
            // Seconds digit: 0..9 → another digit in range, same day.
            d[14] = if d[14] == b'0' { b'1' } else { b'0' };
        }
        Mutation::Token => {
            if let Some((_, v)) = s.headers.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case("x-amz-security-token")) {
                v[0] ^= 1;
            } else {
                s.headers.push(("X-Amz-Security-Token".into(), b"unexpected".to_vec()));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn aws_sigv4_signed_requests_verify(p in plain(), m in mutation()) {
        let signed = sign_with_aws_sigv4(&p);
        let store = store(p.token.as_deref());
        let now = UNIX_EPOCH + Duration::from_secs(p.time + 10);
        let v = signed.verify(&store, now);
        prop_assert!(v.is_ok(), "{:?}\n{:?}\n{:?}", v, p, signed);
        let v = v.unwrap();
        prop_assert_eq!(v.presigned, p.presign);
        prop_assert_eq!(v.access_key_id, AKID);
        prop_assert_eq!(v.signed_at, UNIX_EPOCH + Duration::from_secs(p.time));

        let mut tampered = signed.clone();
        apply(&mut tampered, &m);
        let err = tampered.verify(&store, now);
        prop_assert!(
            matches!(err, Err(Error::SignatureMismatch | Error::UnknownKey)),
            "{:?} accepted or wrong error: {:?}\n{:?}", m, err, tampered
        );
    }
}

fn noisy_auth() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"AWS4-HMAC-SHA256 ".to_vec()),
        Just(b"Credential=".to_vec()),
        Just(b"AKID/20150830/us-east-1/ecr/aws4_request".to_vec()),
        Just(b", SignedHeaders=".to_vec()),
        Just(b"host;x-amz-date".to_vec()),
        Just(b", Signature=".to_vec()),
        Just(b"5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31".to_vec()),
        Just(b"=".to_vec()),
        Just(b",".to_vec()),
        Just(b"/".to_vec()),
        Just(b";".to_vec()),
        Just("\u{e9}\u{1F600}".as_bytes().to_vec()),
        prop::collection::vec(any::<u8>(), 0..12),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

fn noisy_query() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("X-Amz-Algorithm=AWS4-HMAC-SHA256".to_owned()),
        Just("X-Amz-Credential=AKID%2F20150830%2Fus-east-1%2Fecr%2Faws4_request".to_owned()),
        Just("X-Amz-Date=20150830T123600Z".to_owned()),
        Just("X-Amz-Expires=3600".to_owned()),
        Just("X-Amz-Expires=99999999999999999999999".to_owned()),
        Just("X-Amz-SignedHeaders=host".to_owned()),
        Just("X-Amz-Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31".to_owned()),
        Just("X-Amz-Security-Token=%ff%fe".to_owned()),
        Just("&".to_owned()),
        Just("=".to_owned()),
        Just("%".to_owned()),
        Just("%e".to_owned()),
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..10).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Nothing panics, whatever arrives; and nothing arbitrary verifies.
    #[test]
    fn arbitrary_input_never_panics(
        method in any::<String>(),
        path in any::<String>(),
        query in noisy_query(),
        auth in noisy_auth(),
        date in prop_oneof![Just(b"20150830T123600Z".to_vec()), prop::collection::vec(any::<u8>(), 0..20)],
        http_date in prop::option::of(prop_oneof![Just(b"Sun, 30 Aug 2015 12:36:00 GMT".to_vec()), prop::collection::vec(any::<u8>(), 0..32)]),
        extra in prop::collection::vec((any::<String>(), prop::collection::vec(any::<u8>(), 0..16)), 0..4),
        body_sha256 in any::<String>(),
        now in prop_oneof![Just(0u64), Just(1_440_938_160u64), any::<u64>()],
        content_sha in prop::option::of(prop_oneof![Just(b"UNSIGNED-PAYLOAD".to_vec()), Just(b"STREAMING-AWS4-HMAC-SHA256-PAYLOAD".to_vec()), prop::collection::vec(any::<u8>(), 0..70)]),
    ) {
        let mut headers: Vec<(&str, &[u8])> = vec![("host", b"example.amazonaws.com"), ("authorization", &auth), ("x-amz-date", &date)];
        if let Some(d) = &http_date {
            headers.push(("date", d));
        }
        if let Some(c) = &content_sha {
            headers.push(("x-amz-content-sha256", c));
        }
        for (n, v) in &extra {
            headers.push((n.as_str(), v.as_slice()));
        }
        let req = Request { method: &method, path: &path, query: &query, headers: &headers, body_sha256: &body_sha256 };
        let now = UNIX_EPOCH.checked_add(Duration::from_secs(now)).unwrap_or(UNIX_EPOCH);
        let store = HashMap::from([("AKID".to_owned(), Credential::new("secret", "p"))]);
        for v in [Verifier::default(), Verifier::new("us-east-1", "ecr").with_path_normalization(false).with_unsigned_payload(true)] {
            let r = v.verify(&store, &req, now);
            prop_assert!(r.is_err());
            let e = r.unwrap_err();
            let _ = (e.aws_code(), e.http_status(), e.to_string());
            // Also without the Authorization header (presigned or missing).
            let no_auth: Vec<(&str, &[u8])> = headers.iter().copied().filter(|(n, _)| *n != "authorization").collect();
            let req2 = Request { headers: &no_auth, ..req };
            prop_assert!(v.verify(&store, &req2, now).is_err());
        }
    }
}

#[test]
fn huge_inputs_are_refused_quickly() {
    let big = vec![b'a'; 1 << 20];
    let path = "/".repeat(1 << 20);
    let headers: Vec<(&str, &[u8])> = vec![("host", b"h"), ("authorization", &big)];
    let req = Request { method: "GET", path: "/", query: "", headers: &headers, body_sha256: "" };
    let e = Verifier::default().verify(&store(None), &req, SystemTime::now()).unwrap_err();
    assert_eq!(e.aws_code(), "IncompleteSignatureException");
    let req = Request { path: &path, headers: &[], ..req };
    assert_eq!(
        Verifier::default().verify(&store(None), &req, SystemTime::now()).unwrap_err().aws_code(),
        "IncompleteSignatureException"
    );
}
