//! The AWS SigV4 test suite (tests/vectors/, from awslabs/aws-c-auth): every step of signing must
//! reproduce the vector files byte for byte, and the signed requests must verify.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_auth::{Credential, Verifier, canonical as c};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// 2015-08-30T12:36:00Z
const SIGNED_AT: u64 = 1_440_938_160;

mod common;

type HttpRequest = common::OwnedRequest;

impl HttpRequest {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
    }

    fn verify(
        &self,
        verifier: &Verifier,
        store: &HashMap<String, Credential>,
        now: SystemTime,
    ) -> berth_auth::Result<()> {
        self.verify_with(verifier, store, now).map(|_| ())
    }
}

/// Parses the vectors' HTTP/1.1 text: request line, headers (a line starting with whitespace
/// continues the previous value, as obs-fold; a server hands it over joined with a space), blank
/// line, body.
fn parse_request(text: &str) -> HttpRequest {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let request_line = lines.next().unwrap();
    let (method, rest) = request_line.split_once(' ').unwrap();
    let target = rest.strip_suffix(" HTTP/1.1").unwrap();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            let last = headers.last_mut().unwrap();
            last.1.push(b' ');
            last.1.extend_from_slice(line.as_bytes());
        } else {
            let (n, v) = line.split_once(':').unwrap();
            headers.push((n.to_owned(), v.as_bytes().to_vec()));
        }
    }
    HttpRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: body.as_bytes().to_vec(),
    }
}

struct Case {
    name: String,
    dir: PathBuf,
    normalize: bool,
    token: Option<String>,
}

impl Case {
    fn read(&self, file: &str) -> Option<String> {
        fs::read_to_string(self.dir.join(file)).ok()
    }

    fn store(&self) -> HashMap<String, Credential> {
        let mut cred = Credential::new(SECRET, "example-principal");
        if let Some(t) = &self.token {
            cred = cred.with_session_token(t.clone());
        }
        HashMap::from([("AKIDEXAMPLE".to_owned(), cred)])
    }

    fn verifier(&self) -> Verifier {
        Verifier::new("us-east-1", "service").with_path_normalization(self.normalize)
    }
}

fn cases() -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let mut out: Vec<Case> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|dir| {
            let ctx: serde_json::Value =
                serde_json::from_str(&fs::read_to_string(dir.join("context.json")).unwrap()).unwrap();
            assert_eq!(ctx["region"], "us-east-1");
            assert_eq!(ctx["service"], "service");
            assert_eq!(ctx["timestamp"], "2015-08-30T12:36:00Z");
            Case {
                name: dir.file_name().unwrap().to_string_lossy().into_owned(),
                normalize: ctx["normalize"].as_bool().unwrap(),
                token: ctx["credentials"]["token"].as_str().map(str::to_owned),
                dir,
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(out.len() >= 15, "vectors missing");
    out
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Recomputes canonical request, string to sign and signature of the header form.
#[test]
fn header_form_steps_match_vectors() {
    for case in cases() {
        let signed = parse_request(&case.read("header-signed-request.txt").unwrap());
        let auth = signed.header("authorization").unwrap();
        let signed_headers = auth.split("SignedHeaders=").nth(1).unwrap().split(',').next().unwrap().to_owned();
        let names: Vec<&str> = signed_headers.split(';').collect();
        let headers = signed.borrowed_headers();
        let payload = signed.header("x-amz-content-sha256").unwrap_or_else(|| c::sha256_hex(&signed.body));
        let creq = c::canonical_request(
            &signed.method,
            &c::canonical_uri(&signed.path, case.normalize),
            &c::canonical_query(&signed.query, &[]),
            &c::canonical_headers(&headers, &names),
            &signed_headers,
            &payload,
        );
        assert_eq!(
            String::from_utf8(creq.clone()).unwrap(),
            case.read("header-canonical-request.txt").unwrap(),
            "{}: canonical request",
            case.name
        );
        let sts = c::string_to_sign("20150830T123600Z", "20150830/us-east-1/service/aws4_request", &creq);
        assert_eq!(sts, case.read("header-string-to-sign.txt").unwrap(), "{}: string to sign", case.name);
        let key = c::signing_key(SECRET, "20150830", "us-east-1", "service");
        let sig = c::signature(&key, &sts);
        assert_eq!(sig, case.read("header-signature.txt").unwrap().trim(), "{}: signature", case.name);
        assert!(auth.ends_with(&format!("Signature={sig}")), "{}", case.name);
    }
}

/// The same for the presigned (query) form, where the vectors have the intermediate files.
#[test]
fn query_form_steps_match_vectors() {
    let mut checked = 0;
    for case in cases() {
        let (Some(creq_file), Some(sts_file), Some(sig_file)) = (
            case.read("query-canonical-request.txt"),
            case.read("query-string-to-sign.txt"),
            case.read("query-signature.txt"),
        ) else {
            continue;
        };
        let signed = parse_request(&case.read("query-signed-request.txt").unwrap());
        let sh_raw = signed.query.split('&').find_map(|p| p.strip_prefix("X-Amz-SignedHeaders=")).unwrap();
        let signed_headers = String::from_utf8(c::percent_decode(sh_raw.as_bytes())).unwrap();
        let names: Vec<&str> = signed_headers.split(';').collect();
        let headers = signed.borrowed_headers();
        // post-sts-header-after appends the session token after signing.
        let exclude: &[&str] = if case.name == "post-sts-header-after" {
            &["X-Amz-Signature", "X-Amz-Security-Token"]
        } else {
            &["X-Amz-Signature"]
        };
        let creq = c::canonical_request(
            &signed.method,
            &c::canonical_uri(&signed.path, case.normalize),
            &c::canonical_query(&signed.query, exclude),
            &c::canonical_headers(&headers, &names),
            &signed_headers,
            &c::sha256_hex(&signed.body),
        );
        assert_eq!(String::from_utf8(creq.clone()).unwrap(), creq_file, "{}: canonical request", case.name);
        let sts = c::string_to_sign("20150830T123600Z", "20150830/us-east-1/service/aws4_request", &creq);
        assert_eq!(sts, sts_file, "{}: string to sign", case.name);
        let sig = c::signature(&c::signing_key(SECRET, "20150830", "us-east-1", "service"), &sts);
        assert_eq!(sig, sig_file.trim(), "{}: signature", case.name);
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} query vectors checked");
}

/// Every signed request of the suite verifies, in both forms; tampering breaks it.
#[test]
fn signed_requests_verify() {
    for case in cases() {
        let store = case.store();
        let verifier = case.verifier();
        for (file, presigned) in [("header-signed-request.txt", false), ("query-signed-request.txt", true)] {
            let signed = parse_request(&case.read(file).unwrap());
            signed
                .verify(&verifier, &store, at(SIGNED_AT + 60))
                .unwrap_or_else(|e| panic!("{} {file}: {e}", case.name));

            let mut tampered = signed;
            tampered.method = if tampered.method == "GET" { "PUT".into() } else { "GET".into() };
            let err = tampered.verify(&verifier, &store, at(SIGNED_AT)).unwrap_err();
            assert_eq!(err.aws_code(), "InvalidSignatureException", "{} {file}", case.name);

            let wrong = HashMap::from([("AKIDEXAMPLE".to_owned(), {
                let mut c = Credential::new("wrong-secret", "x");
                c.session_token = case.store()["AKIDEXAMPLE"].session_token.clone();
                c
            })]);
            let signed = parse_request(&case.read(file).unwrap());
            assert_eq!(signed.verify(&verifier, &wrong, at(SIGNED_AT)), Err(berth_auth::Error::SignatureMismatch));

            // Presigned URLs live for X-Amz-Expires (3600 s); the header form for the skew (5 min).
            let late = if presigned { SIGNED_AT + 3601 } else { SIGNED_AT + 301 };
            assert!(matches!(
                signed.verify(&verifier, &store, at(late)),
                Err(berth_auth::Error::Expired { .. } | berth_auth::Error::PresignExpired { .. })
            ));
        }
    }
}
