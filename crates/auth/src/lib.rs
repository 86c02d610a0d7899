//! AWS Signature Version 4 request verification for Berth's ECR API.
//!
//! [`Verifier::verify`] takes a request as plain parts ([`Request`]: method, raw path, raw query,
//! headers as received with byte values, and the SHA-256 of the body that the server computed
//! itself) plus the current time and a [`CredentialStore`], and returns who signed it
//! ([`Verified`]) or an [`Error`] that maps to the AWS error code SDKs expect
//! ([`Error::aws_code`], [`Error::http_status`]). It is pure and synchronous and knows no HTTP
//! framework.
//!
//! A server whose keys live behind an async store verifies in two steps instead, computing the
//! signature once: [`Verifier::parse`] checks the request head ([`RequestHead`]) before the body
//! is read and returns a [`Presented`] signature naming its access key; the server looks the key
//! up and reads the body; [`Presented::verify`] then takes the key's [`Credential`] and the body's
//! hash. [`Verifier::verify`] is exactly these steps with a synchronous [`CredentialStore`].
//!
//! Supported: the `Authorization: AWS4-HMAC-SHA256 …` header form and the presigned query form
//! (`X-Amz-Algorithm`, `X-Amz-Credential`, …). The canonical URI is built as for every service
//! other than S3: the received (already percent-encoded) path, normalized, and encoded again.
//! Not supported: chunked `STREAMING-*` payloads, SigV4a, S3's single-encoding rules.
//!
//! Checks, in order: auth present and well-formed (`IncompleteSignatureException`), credential
//! scope (terminator, date, region, service), clock skew, access key and session token
//! (`UnrecognizedClientException`), `X-Amz-Content-SHA256` against the body hash, signature
//! (constant-time compare).
//!
//! Clock skew: AWS allows 5 minutes on most JSON services ("Signature expired: … (… - 5 min.)"),
//! but public reports of ECR's own `GetAuthorizationToken` errors show "- 15 min." (for instance
//! upmc-enterprises/registry-creds issues 24 and 47). The default here is the stricter 5 minutes;
//! [`Verifier::with_max_skew`] changes it.
//!
//! Secrets never reach `Debug` output: [`SecretKey`] prints `***`.
//!
//! ```
//! use std::collections::HashMap;
//! use std::time::{Duration, UNIX_EPOCH};
//! use berth_auth::{Credential, Request, Verifier, canonical::sha256_hex};
//!
//! // The AWS test suite's `get-vanilla` request (service `service`, 2015-08-30T12:36:00Z).
//! let headers: &[(&str, &[u8])] = &[
//!     ("Host", b"example.amazonaws.com"),
//!     ("X-Amz-Date", b"20150830T123600Z"),
//!     ("Authorization", b"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
//!         SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
//! ];
//! let body_sha256 = sha256_hex(b"");
//! let req = Request { method: "GET", path: "/", query: "", headers, body_sha256: &body_sha256 };
//! let store = HashMap::from([(
//!     "AKIDEXAMPLE".to_owned(),
//!     Credential::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "user/example"),
//! )]);
//! let now = UNIX_EPOCH + Duration::from_secs(1_440_938_160 + 60);
//! let who = Verifier::new("us-east-1", "service").verify(&store, &req, now)?;
//! assert_eq!(who.principal, "user/example");
//! # Ok::<(), berth_auth::Error>(())
//! ```

pub mod canonical;
mod error;
pub mod seal;
mod time;
pub mod token;

use std::fmt;
use std::time::{Duration, SystemTime};

use subtle::ConstantTimeEq;

use canonical as c;
pub use error::{Error, Result};

/// `t` as SigV4's `X-Amz-Date` (`YYYYMMDDTHHMMSSZ`), for clients such as benchmarks and tests.
#[must_use]
pub fn amz_date(t: std::time::SystemTime) -> String {
    time::format_amz_date(time::unix(t))
}

/// `t` as ISO 8601 (`YYYY-MM-DDTHH:MM:SSZ`), the form of IAM's `aws:CurrentTime`.
#[must_use]
pub fn iso8601(t: std::time::SystemTime) -> String {
    time::format_iso8601(time::unix(t))
}

pub use seal::{SealKey, random_bytes};
pub use token::{TOKEN_TTL, TokenClaims, TokenError, TokenKey, URL_CREDENTIAL, URL_EXPIRES, URL_SIGNATURE, URL_TTL};

/// Largest `Authorization` header accepted (bytes); longer ones are refused before parsing.
pub const MAX_AUTHORIZATION_LEN: usize = 8 * 1024;
/// Largest number of entries in `SignedHeaders`.
pub const MAX_SIGNED_HEADERS: usize = 64;
/// Largest raw path plus raw query accepted (bytes).
pub const MAX_TARGET_LEN: usize = 16 * 1024;
/// Largest sum of header name and value lengths accepted (bytes).
pub const MAX_HEADERS_LEN: usize = 64 * 1024;
/// Longest lifetime of a presigned request, in seconds (7 days, as at AWS).
pub const MAX_PRESIGN_EXPIRES: u64 = 604_800;

const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// A secret access key (or session token). Its `Debug` prints `***`; it has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(String);

impl SecretKey {
    /// Wraps a secret.
    #[must_use]
    pub fn new(secret: impl Into<String>) -> Self {
        SecretKey(secret.into())
    }

    /// The secret itself. Only signing code should call this.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// What a [`CredentialStore`] knows about one access key.
#[derive(Debug, Clone)]
pub struct Credential {
    /// The secret access key.
    pub secret: SecretKey,
    /// An opaque id the caller maps to an identity (user, role session, …).
    pub principal: String,
    /// For temporary credentials: the session token the request must carry in
    /// `X-Amz-Security-Token`. For long-term keys `None`, and a request that carries a token is refused.
    pub session_token: Option<SecretKey>,
}

impl Credential {
    /// A long-term credential without a session token.
    #[must_use]
    pub fn new(secret: impl Into<String>, principal: impl Into<String>) -> Self {
        Credential { secret: SecretKey::new(secret), principal: principal.into(), session_token: None }
    }

    /// Requires `token` in `X-Amz-Security-Token`.
    #[must_use]
    pub fn with_session_token(mut self, token: impl Into<String>) -> Self {
        self.session_token = Some(SecretKey::new(token));
        self
    }
}

/// Looks up the secret of an access key, for [`Verifier::verify`]. Synchronous; a server whose
/// keys are behind an async store uses [`Verifier::parse`] and [`Presented::verify`] instead.
pub trait CredentialStore {
    /// The credential for `access_key_id`, or `None` if the key is unknown or disabled.
    fn secret_for(&self, access_key_id: &str) -> Option<Credential>;
}

impl<T: CredentialStore + ?Sized> CredentialStore for &T {
    fn secret_for(&self, access_key_id: &str) -> Option<Credential> {
        (**self).secret_for(access_key_id)
    }
}

impl<T: CredentialStore + ?Sized> CredentialStore for std::sync::Arc<T> {
    fn secret_for(&self, access_key_id: &str) -> Option<Credential> {
        (**self).secret_for(access_key_id)
    }
}

impl CredentialStore for std::collections::HashMap<String, Credential> {
    fn secret_for(&self, access_key_id: &str) -> Option<Credential> {
        self.get(access_key_id).cloned()
    }
}

/// A request as received, in plain parts.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The HTTP method, as received (`POST`).
    pub method: &'a str,
    /// The raw request path as on the wire, still percent-encoded, without the query (`/`).
    pub path: &'a str,
    /// The raw query string as on the wire, without the `?` (empty if none).
    pub query: &'a str,
    /// Every header as received, in order, duplicates included. `Host` must be among them
    /// (for HTTP/2, pass `:authority` as `host`).
    pub headers: &'a [(&'a str, &'a [u8])],
    /// Lower- or upper-case hex SHA-256 of the body the server received.
    pub body_sha256: &'a str,
}

impl<'a> Request<'a> {
    /// The request without its body hash, for [`Verifier::parse`].
    #[must_use]
    pub fn head(&self) -> RequestHead<'a> {
        RequestHead { method: self.method, path: self.path, query: self.query, headers: self.headers }
    }
}

/// A request's method, target and headers: what [`Verifier::parse`] checks before the body is
/// read.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    /// The HTTP method, as received (`POST`).
    pub method: &'a str,
    /// The raw request path as on the wire, still percent-encoded, without the query (`/`).
    pub path: &'a str,
    /// The raw query string as on the wire, without the `?` (empty if none).
    pub query: &'a str,
    /// Every header as received, in order, duplicates included, `Host` among them.
    pub headers: &'a [(&'a str, &'a [u8])],
}

/// Who signed a request that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The access key id from the credential scope.
    pub access_key_id: String,
    /// The [`Credential::principal`] of that key.
    pub principal: String,
    /// The region of the credential scope.
    pub region: String,
    /// The service of the credential scope.
    pub service: String,
    /// The signing time (`X-Amz-Date`).
    pub signed_at: SystemTime,
    /// Whether the request used the presigned query form.
    pub presigned: bool,
}

/// Verifies SigV4 signatures for one region and service.
#[derive(Debug, Clone)]
pub struct Verifier {
    region: String,
    service: String,
    max_skew: Duration,
    normalize_path: bool,
    allow_unsigned_payload: bool,
    must_sign_if_present: Vec<String>,
}

impl Default for Verifier {
    /// `us-east-1`, `ecr`, 5 minutes of skew, path normalization on, `UNSIGNED-PAYLOAD` refused
    /// in the header form, `X-Amz-Target` must be signed when present.
    fn default() -> Self {
        Verifier::new("us-east-1", "ecr")
    }
}

impl Verifier {
    /// A verifier for `region` and `service` (`ecr`; ECR Public signs as `ecr-public`).
    #[must_use]
    pub fn new(region: impl Into<String>, service: impl Into<String>) -> Self {
        Verifier {
            region: region.into(),
            service: service.into(),
            max_skew: Duration::from_secs(300),
            normalize_path: true,
            allow_unsigned_payload: false,
            must_sign_if_present: vec!["x-amz-target".to_owned()],
        }
    }

    /// Headers that, when the request carries them, must be listed in `SignedHeaders` (names are
    /// matched case-insensitively). Default: `x-amz-target`, which selects the ECR operation, so an
    /// unsigned one could be swapped for another operation.
    #[must_use]
    pub fn with_headers_signed_if_present(mut self, names: &[&str]) -> Self {
        self.must_sign_if_present = names.iter().map(|n| n.to_ascii_lowercase()).collect();
        self
    }

    /// The largest difference allowed between the signing time and `now` (default 5 minutes).
    #[must_use]
    pub fn with_max_skew(mut self, skew: Duration) -> Self {
        self.max_skew = skew;
        self
    }

    /// Whether to remove `.`/`..`/empty path segments before encoding (default on, as every
    /// non-S3 AWS SDK signs).
    #[must_use]
    pub fn with_path_normalization(mut self, on: bool) -> Self {
        self.normalize_path = on;
        self
    }

    /// Whether the header form may carry `X-Amz-Content-SHA256: UNSIGNED-PAYLOAD` (default off:
    /// the body is then not covered by the signature). The presigned form always may.
    #[must_use]
    pub fn with_unsigned_payload(mut self, allow: bool) -> Self {
        self.allow_unsigned_payload = allow;
        self
    }

    /// Verifies `req` at time `now`, looking the access key up in `store`: [`Verifier::parse`],
    /// the lookup, then [`Presented::verify`].
    ///
    /// # Errors
    /// Any [`Error`]; see the crate docs for the order of checks.
    pub fn verify<S: CredentialStore + ?Sized>(
        &self,
        store: &S,
        req: &Request<'_>,
        now: SystemTime,
    ) -> Result<Verified> {
        let presented = self.parse(&req.head(), now)?;
        let credential = store.secret_for(presented.access_key_id()).ok_or(Error::UnknownKey)?;
        presented.verify(&credential, req.body_sha256)
    }

    /// Checks everything about a signature that needs neither the key's secret nor the body:
    /// its form, the headers it must sign, its credential scope and its time. The result names
    /// the access key to look up, and holds the canonical request's parts for
    /// [`Presented::verify`], which computes the signature once the secret and the body's hash are
    /// known. Nothing here depends on whether the key exists.
    ///
    /// # Errors
    /// `MissingAuth`, `Incomplete`, `WrongTerminator`, `ScopeDateMismatch`, `WrongRegion`,
    /// `WrongService`, `Expired`, `PresignExpired`, `NotYetValid`, in the order of the crate docs.
    pub fn parse(&self, req: &RequestHead<'_>, now: SystemTime) -> Result<Presented> {
        check_sizes(req)?;
        let auth = find_single(req.headers, "authorization")?;
        let presigned = has_query_param(req.query, "X-Amz-Algorithm");
        let p = match (auth, presigned) {
            (Some(_), true) => {
                return Err(Error::Incomplete(
                    "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the \
                     Authorization header should be specified"
                        .into(),
                ));
            }
            (Some(value), false) => parse_header_form(value, req.headers)?,
            (None, true) => parse_query_form(req.query)?,
            (None, false) => return Err(Error::MissingAuth),
        };

        for name in &self.must_sign_if_present {
            let present = req.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
            if present && !p.signed_headers.split(';').any(|s| s == name) {
                return Err(incomplete(format!("'{name}' must be a 'SignedHeader' in the AWS Authorization.")));
            }
        }

        // Credential scope.
        let scope = p.scope;
        if scope.terminator != "aws4_request" {
            return Err(Error::WrongTerminator(scope.terminator));
        }
        let amz_date = time::format_amz_date(p.signed_at);
        if scope.date != amz_date[..8] {
            return Err(Error::ScopeDateMismatch {
                scope: scope.date,
                date: amz_date[..8].to_owned(),
                timestamp: amz_date,
            });
        }
        if scope.region != self.region {
            return Err(Error::WrongRegion(scope.region));
        }
        if scope.service != self.service {
            return Err(Error::WrongService(self.service.clone()));
        }

        // Time.
        let now_s = time::unix(now);
        let skew = i64::try_from(self.max_skew.as_secs()).unwrap_or(i64::MAX);
        let skew_minutes = self.max_skew.as_secs() / 60;
        if let Some(expires) = p.expires {
            let expires_i = i64::try_from(expires).unwrap_or(i64::MAX);
            if now_s.saturating_sub(expires_i) > p.signed_at {
                return Err(Error::PresignExpired {
                    signed: amz_date,
                    earliest: time::format_amz_date(now_s.saturating_sub(expires_i)),
                    now: time::format_amz_date(now_s),
                    expires,
                });
            }
        } else if p.signed_at < now_s.saturating_sub(skew) {
            return Err(Error::Expired {
                signed: amz_date,
                earliest: time::format_amz_date(now_s.saturating_sub(skew)),
                now: time::format_amz_date(now_s),
                skew_minutes,
            });
        }
        if p.signed_at > now_s.saturating_add(skew) {
            return Err(Error::NotYetValid {
                signed: amz_date,
                latest: time::format_amz_date(now_s.saturating_add(skew)),
                now: time::format_amz_date(now_s),
                skew_minutes,
            });
        }

        // The canonical request, but for the payload hash.
        let canonical_queries = if p.expires.is_none() {
            vec![c::canonical_query(req.query, &[])]
        } else if p.session_token.is_some() {
            // Some presigners (the STS "token after signing" style) append the token unsigned.
            vec![
                c::canonical_query(req.query, &["X-Amz-Signature"]),
                c::canonical_query(req.query, &["X-Amz-Signature", "X-Amz-Security-Token"]),
            ]
        } else {
            vec![c::canonical_query(req.query, &["X-Amz-Signature"])]
        };
        let signed: Vec<&str> = p.signed_headers.split(';').collect();
        Ok(Presented {
            credential_scope: format!("{}/{}/{}/aws4_request", scope.date, scope.region, scope.service),
            access_key_id: scope.access_key_id,
            date: scope.date,
            region: scope.region,
            service: scope.service,
            signed_at: p.signed_at,
            amz_date,
            signature: p.signature,
            session_token: p.session_token,
            expires: p.expires,
            allow_unsigned_payload: self.allow_unsigned_payload,
            content_sha256: find_single(req.headers, "x-amz-content-sha256").map(|v| v.map(<[u8]>::to_vec)),
            method: req.method.to_owned(),
            canonical_uri: c::canonical_uri(req.path, self.normalize_path),
            canonical_queries,
            canonical_headers: c::canonical_headers(req.headers, &signed),
            signed_headers: p.signed_headers,
        })
    }
}

/// A signature whose form, scope and time [`Verifier::parse`] has checked, waiting for the
/// secret of its access key and the hash of the body. It borrows nothing from the request, so it
/// can be held across the key lookup and the reading of the body.
#[derive(Clone)]
pub struct Presented {
    access_key_id: String,
    date: String,
    region: String,
    service: String,
    credential_scope: String,
    signed_at: i64,
    amz_date: String,
    signature: String,
    session_token: Option<Vec<u8>>,
    expires: Option<u64>,
    allow_unsigned_payload: bool,
    /// `X-Amz-Content-SHA256` as received, or why it could not be read; checked in `verify`.
    content_sha256: Result<Option<Vec<u8>>>,
    method: String,
    canonical_uri: String,
    canonical_queries: Vec<String>,
    canonical_headers: Vec<u8>,
    signed_headers: String,
}

impl fmt::Debug for Presented {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Presented")
            .field("access_key_id", &self.access_key_id)
            .field("credential_scope", &self.credential_scope)
            .field("amz_date", &self.amz_date)
            .field("presigned", &self.expires.is_some())
            .finish_non_exhaustive()
    }
}

impl Presented {
    /// The access key id of the credential scope: the key whose secret [`Presented::verify`]
    /// needs.
    #[must_use]
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The region of the credential scope.
    #[must_use]
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The service of the credential scope.
    #[must_use]
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The signing time (`X-Amz-Date`).
    #[must_use]
    pub fn signed_at(&self) -> SystemTime {
        time::system_time(self.signed_at)
    }

    /// Whether the request used the presigned query form.
    #[must_use]
    pub fn presigned(&self) -> bool {
        self.expires.is_some()
    }

    /// Finishes the verification with the `credential` of [`Presented::access_key_id`] and the
    /// hex SHA-256 of the body the server received: the session token, the
    /// `X-Amz-Content-SHA256` header, then the signature (one HMAC key derivation, compared in
    /// constant time).
    ///
    /// # Errors
    /// `UnknownKey` when the session token is not the one the credential requires;
    /// `BodyHashMismatch`, `Incomplete` (a streaming payload) or `SignatureMismatch`.
    pub fn verify(&self, credential: &Credential, body_sha256: &str) -> Result<Verified> {
        let token_ok = match (&credential.session_token, &self.session_token) {
            (None, None) => true,
            (Some(want), Some(got)) => bool::from(want.expose_secret().as_bytes().ct_eq(got.as_slice())),
            _ => false,
        };
        if !token_ok {
            return Err(Error::UnknownKey);
        }

        // Payload hash.
        let body_hash = body_sha256.to_ascii_lowercase();
        let payload_candidates: Vec<String> = match self.content_sha256.clone()? {
            Some(v) => {
                let v = String::from_utf8(v).map_err(|_| Error::BodyHashMismatch)?;
                if v == UNSIGNED_PAYLOAD {
                    if self.expires.is_none() && !self.allow_unsigned_payload {
                        return Err(Error::BodyHashMismatch);
                    }
                } else if v.starts_with("STREAMING-") {
                    return Err(incomplete(format!("Unsupported payload signing mode '{}'.", truncate(&v, 64))));
                } else if !v.eq_ignore_ascii_case(&body_hash) {
                    return Err(Error::BodyHashMismatch);
                }
                vec![v]
            }
            // A presigned URL carries no header; signers use the body hash (the AWS test suite)
            // or UNSIGNED-PAYLOAD (S3-style presigners), so accept either.
            None if self.expires.is_some() => vec![body_hash, UNSIGNED_PAYLOAD.to_owned()],
            None => vec![body_hash],
        };

        // Signature.
        let key = c::signing_key(credential.secret.expose_secret(), &self.date, &self.region, &self.service);
        let mut ok = subtle::Choice::from(0u8);
        for query in &self.canonical_queries {
            for payload in &payload_candidates {
                let creq = c::canonical_request(
                    &self.method,
                    &self.canonical_uri,
                    query,
                    &self.canonical_headers,
                    &self.signed_headers,
                    payload,
                );
                let sts = c::string_to_sign(&self.amz_date, &self.credential_scope, &creq);
                let sig = c::signature(&key, &sts);
                ok |= sig.as_bytes().ct_eq(self.signature.as_bytes());
            }
        }
        if !bool::from(ok) {
            return Err(Error::SignatureMismatch);
        }
        Ok(Verified {
            access_key_id: self.access_key_id.clone(),
            principal: credential.principal.clone(),
            region: self.region.clone(),
            service: self.service.clone(),
            signed_at: self.signed_at(),
            presigned: self.presigned(),
        })
    }
}

/// The credential scope `AKID/yyyymmdd/region/service/aws4_request`.
#[derive(Debug)]
struct Scope {
    access_key_id: String,
    date: String,
    region: String,
    service: String,
    terminator: String,
}

/// What either auth form carries.
#[derive(Debug)]
struct AuthParts {
    scope: Scope,
    signed_headers: String,
    signature: String,
    signed_at: i64,
    session_token: Option<Vec<u8>>,
    /// `X-Amz-Expires` of the presigned form; `None` for the header form.
    expires: Option<u64>,
}

fn incomplete(msg: impl Into<String>) -> Error {
    Error::Incomplete(msg.into())
}

fn check_sizes(req: &RequestHead<'_>) -> Result<()> {
    if req.path.len().saturating_add(req.query.len()) > MAX_TARGET_LEN {
        return Err(incomplete("Request target is too long to verify."));
    }
    let total = req.headers.iter().fold(0usize, |acc, (n, v)| acc.saturating_add(n.len()).saturating_add(v.len()));
    if total > MAX_HEADERS_LEN {
        return Err(incomplete("Request headers are too large to verify."));
    }
    Ok(())
}

/// The value of header `name` (case-insensitive); an error if it appears more than once.
fn find_single<'a>(headers: &[(&str, &'a [u8])], name: &str) -> Result<Option<&'a [u8]>> {
    let mut found = None;
    for (n, v) in headers {
        if n.eq_ignore_ascii_case(name) {
            if found.is_some() {
                return Err(incomplete(format!("Only one '{name}' header is allowed.")));
            }
            found = Some(*v);
        }
    }
    Ok(found)
}

fn has_query_param(query: &str, name: &str) -> bool {
    query.split('&').any(|p| c::percent_decode(p.split_once('=').map_or(p, |(k, _)| k).as_bytes()) == name.as_bytes())
}

fn parse_scope(credential: &str) -> Result<Scope> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [akid, date, region, service, terminator] = parts.as_slice() else {
        return Err(incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got \
             '{}'",
            truncate(credential, 256)
        )));
    };
    if akid.is_empty() {
        return Err(incomplete("Credential must name an access key id."));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(incomplete(format!("Credential date must be yyyyMMdd, got '{}'", truncate(date, 64))));
    }
    Ok(Scope {
        access_key_id: (*akid).to_owned(),
        date: (*date).to_owned(),
        region: (*region).to_owned(),
        service: (*service).to_owned(),
        terminator: (*terminator).to_owned(),
    })
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn check_signed_headers(list: &str, date_header: &str) -> Result<()> {
    if list.is_empty() {
        return Err(incomplete("SignedHeaders must not be empty."));
    }
    let names: Vec<&str> = list.split(';').collect();
    if names.len() > MAX_SIGNED_HEADERS {
        return Err(incomplete(format!("SignedHeaders must list at most {MAX_SIGNED_HEADERS} headers.")));
    }
    for n in &names {
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase() && b != b':') {
            return Err(incomplete(format!("SignedHeaders contains an invalid header name '{}'.", truncate(n, 64))));
        }
    }
    if !names.contains(&"host") {
        return Err(incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."));
    }
    if !names.contains(&date_header) {
        return Err(incomplete(format!("'{date_header}' must be a 'SignedHeader' in the AWS Authorization.")));
    }
    Ok(())
}

fn is_signature(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Parses `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` and the date headers.
fn parse_header_form(value: &[u8], headers: &[(&str, &[u8])]) -> Result<AuthParts> {
    if value.len() > MAX_AUTHORIZATION_LEN {
        return Err(incomplete("Authorization header is too long."));
    }
    let value = std::str::from_utf8(value).map_err(|_| incomplete("Authorization header is not valid UTF-8."))?;
    let value = value.trim();
    let (algorithm, rest) = value.split_once(' ').unwrap_or((value, ""));
    if algorithm != c::ALGORITHM {
        return Err(incomplete(format!(
            "Unsupported AWS 'algorithm': '{}'; only '{}' is supported.",
            truncate(algorithm, 64),
            c::ALGORITHM
        )));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for component in rest.split(',') {
        let component = component.trim();
        if component.is_empty() {
            continue;
        }
        let Some((k, v)) = component.split_once('=') else {
            return Err(incomplete(format!(
                "Authorization header requires each component to be of the form key=value, got '{}'.",
                truncate(component, 64)
            )));
        };
        let slot = match k.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            other => {
                return Err(incomplete(format!(
                    "Authorization header has an unknown component '{}'.",
                    truncate(other, 64)
                )));
            }
        };
        if slot.replace(v.trim()).is_some() {
            return Err(incomplete(format!("Authorization header has a duplicate '{}' component.", k.trim())));
        }
    }

    let (signed_at, date_header) = match find_single(headers, "x-amz-date")? {
        Some(v) => (
            time::parse_amz_date(v)
                .ok_or_else(|| incomplete("X-Amz-Date must be in ISO 8601 basic format 'yyyyMMddTHHmmssZ'."))?,
            "x-amz-date",
        ),
        None => match find_single(headers, "date")? {
            Some(v) => (
                time::parse_http_date(v)
                    .ok_or_else(|| incomplete("Date must be in IMF-fixdate format 'Sun, 06 Nov 1994 08:49:37 GMT'."))?,
                "date",
            ),
            None => (0, ""),
        },
    };

    let mut missing = Vec::new();
    if credential.is_none() {
        missing.push("Authorization header requires 'Credential' parameter.");
    }
    if signature.is_none() {
        missing.push("Authorization header requires 'Signature' parameter.");
    }
    if signed_headers.is_none() {
        missing.push("Authorization header requires 'SignedHeaders' parameter.");
    }
    if date_header.is_empty() {
        missing.push("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.");
    }
    let (Some(credential), Some(signed_headers), Some(signature), false) =
        (credential, signed_headers, signature, date_header.is_empty())
    else {
        return Err(incomplete(missing.join(" ")));
    };
    if !is_signature(signature) {
        return Err(incomplete("Signature must be 64 lower-case hexadecimal characters."));
    }
    check_signed_headers(signed_headers, date_header)?;
    Ok(AuthParts {
        scope: parse_scope(credential)?,
        signed_headers: signed_headers.to_owned(),
        signature: signature.to_owned(),
        signed_at,
        session_token: find_single(headers, "x-amz-security-token")?.map(<[u8]>::to_vec),
        expires: None,
    })
}

/// Parses the `X-Amz-*` parameters of a presigned request.
fn parse_query_form(query: &str) -> Result<AuthParts> {
    let mut params: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = c::percent_decode(k.as_bytes());
        if k.starts_with(b"X-Amz-") {
            if params.iter().any(|(pk, _)| *pk == k) {
                return Err(incomplete(format!(
                    "Only one '{}' query parameter is allowed.",
                    String::from_utf8_lossy(&k)
                )));
            }
            params.push((k, c::percent_decode(v.as_bytes())));
        }
    }
    let get = |name: &str| params.iter().find(|(k, _)| k == name.as_bytes()).map(|(_, v)| v.as_slice());
    let text = |name: &str| -> Result<Option<&str>> {
        get(name)
            .map(|v| std::str::from_utf8(v).map_err(|_| incomplete(format!("{name} is not valid UTF-8."))))
            .transpose()
    };

    let algorithm = text("X-Amz-Algorithm")?.unwrap_or_default();
    if algorithm != c::ALGORITHM {
        return Err(incomplete(format!(
            "Unsupported X-Amz-Algorithm '{}'; only '{}' is supported.",
            truncate(algorithm, 64),
            c::ALGORITHM
        )));
    }
    let mut missing = Vec::new();
    for name in ["X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"] {
        if get(name).is_none() {
            missing.push(format!("Query-string authentication requires the {name} parameter."));
        }
    }
    if !missing.is_empty() {
        return Err(incomplete(missing.join(" ")));
    }
    let credential = text("X-Amz-Credential")?.unwrap_or_default();
    let signed_headers = text("X-Amz-SignedHeaders")?.unwrap_or_default();
    let signature = text("X-Amz-Signature")?.unwrap_or_default();
    let signed_at = time::parse_amz_date(get("X-Amz-Date").unwrap_or_default())
        .ok_or_else(|| incomplete("X-Amz-Date must be in ISO 8601 basic format 'yyyyMMddTHHmmssZ'."))?;
    let expires = text("X-Amz-Expires")?
        .unwrap_or_default()
        .parse::<u64>()
        .ok()
        .filter(|e| (1..=MAX_PRESIGN_EXPIRES).contains(e))
        .ok_or_else(|| incomplete(format!("X-Amz-Expires must be an integer from 1 to {MAX_PRESIGN_EXPIRES}.")))?;
    if !is_signature(signature) {
        return Err(incomplete("X-Amz-Signature must be 64 lower-case hexadecimal characters."));
    }
    if signed_headers.len() > MAX_AUTHORIZATION_LEN {
        return Err(incomplete("X-Amz-SignedHeaders is too long."));
    }
    // The signing time travels in the query, so only `host` must be signed.
    check_signed_headers(signed_headers, "host")?;
    Ok(AuthParts {
        scope: parse_scope(credential)?,
        signed_headers: signed_headers.to_owned(),
        signature: signature.to_owned(),
        signed_at,
        session_token: get("X-Amz-Security-Token").map(<[u8]>::to_vec),
        expires: Some(expires),
    })
}
