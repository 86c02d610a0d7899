//! The OCI Distribution API front door: parses `/v2/...` requests into core calls and formats
//! the results and errors as the distribution-spec says.

mod endpoint;
pub mod error;
mod throttle;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use base64::Engine as _;
use berth_auth::TokenKey;
use berth_http_util::SendfileSlot;
use berth_registry::{BlobBody, BoxError, ByteRange, ByteStream, Caller, Origin, Principal, Registry, UploadStatus};
use berth_types::{
    AccountId, Digest, NameError, PageRequest, Reference, RepositoryKey, RepositoryName, UploadId, media_types,
};
use futures_util::{StreamExt, TryStreamExt};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header};
use serde_json::json;
use tracing::Instrument;

pub use endpoint::{OciEndpoint, RouteError};
pub use error::OciError;

const API_VERSION: &str = "Docker-Distribution-API-Version";
const CONTENT_DIGEST: &str = "Docker-Content-Digest";
const UPLOAD_UUID: &str = "Docker-Upload-UUID";
const OCI_SUBJECT: &str = "OCI-Subject";
const OCI_FILTERS: &str = "OCI-Filters-Applied";
/// Page size of `_catalog` when the client gives none.
const CATALOG_DEFAULT_PAGE: usize = 1000;

type HandlerResult = Result<Response, OciError>;

/// What the `/v2` routes need: the core, the key registry tokens are checked with, and the
/// domain under which each account's registry has its own host.
pub struct OciApi {
    pub registry: Arc<Registry>,
    pub token_key: TokenKey,
    /// With it, `<account>.<registry_domain>` addresses that account's registry; any other host
    /// addresses the caller's own registry (an anonymous caller's: the default account's).
    pub registry_domain: Option<String>,
}

impl OciApi {
    /// The registry a request addresses, by its host.
    fn registry_of(&self, req: &Request, who: &Caller) -> Result<AccountId, OciError> {
        if let Some(domain) = &self.registry_domain {
            let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| req.uri().host());
            if let Some(account) = host.and_then(|h| account_of_host(h, domain)) {
                return AccountId::parse(account).map_err(|_| {
                    OciError::new(error::NAME_UNKNOWN, format!("{account}.{domain} names no account's registry"))
                });
            }
        }
        Ok(self.registry.account_of(who).clone())
    }
}

/// The first label of `host` (without its port) when the rest is `domain` (itself compared
/// without a port, case-insensitively).
#[doc(hidden)] // public for the fuzz targets (fuzz/)
pub fn account_of_host<'a>(host: &'a str, domain: &str) -> Option<&'a str> {
    let host = strip_port(host);
    let domain = strip_port(domain);
    let (first, rest) = host.split_once('.')?;
    rest.eq_ignore_ascii_case(domain).then_some(first)
}

fn strip_port(h: &str) -> &str {
    match h.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(']') && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => h,
    }
}

/// The `/v2` routes over a registry core.
pub fn router(api: Arc<OciApi>) -> Router {
    Router::new().route("/v2", any(root)).route("/v2/", any(root)).route("/v2/{*rest}", any(dispatch)).with_state(api)
}

fn unauthorized(message: &str) -> OciError {
    OciError::new(error::UNAUTHORIZED, message).with_header(header::WWW_AUTHENTICATE, r#"Basic realm="berth""#)
}

/// The caller of a request: anonymous without credentials (the core decides whether that is
/// allowed), the token's principal with `Basic AWS:<registry token>`, and refused with
/// credentials that do not verify (never silently anonymous).
fn caller(api: &OciApi, req: &Request) -> Result<Caller, OciError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else { return signed_url_caller(api, req) };
    let basic = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| unauthorized("credentials must be Basic AWS:<token from GetAuthorizationToken>"))?;
    let Some(("AWS", token)) = basic.split_once(':') else {
        return Err(unauthorized("the user name must be AWS"));
    };
    let claims = api.token_key.verify(token, std::time::SystemTime::now()).map_err(|e| unauthorized(&e.to_string()))?;
    let issued_at_ms = issued_at(claims.expires, berth_auth::TOKEN_TTL);
    let account = AccountId::parse(&claims.account).map_err(|_| unauthorized("the token names no account"))?;
    Ok(Caller::Principal(Principal { account, arn: claims.principal, origin: origin(req), issued_at_ms }))
}

/// A GET or HEAD of a URL signed by `GetDownloadUrlForLayer` acts as the principal that asked
/// for it; the signature covers the exact path, the expiry and the principal.
fn signed_url_caller(api: &OciApi, req: &Request) -> Result<Caller, OciError> {
    let q = query(req);
    let Some(signature) = param(&q, berth_auth::URL_SIGNATURE) else { return Ok(Caller::Anonymous) };
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return Err(unauthorized("a signed URL only allows GET"));
    }
    let credential = param(&q, berth_auth::URL_CREDENTIAL).unwrap_or_default();
    let expires = param(&q, berth_auth::URL_EXPIRES).unwrap_or_default();
    let claims = api
        .token_key
        .verify_url(req.uri().path(), credential, expires, signature, std::time::SystemTime::now())
        .map_err(|e| unauthorized(&format!("signed URL: {e}")))?;
    let issued_at_ms = issued_at(claims.expires, berth_auth::URL_TTL);
    let account = AccountId::parse(&claims.account).map_err(|_| unauthorized("the token names no account"))?;
    Ok(Caller::Principal(Principal { account, arn: claims.principal, origin: origin(req), issued_at_ms }))
}

/// When a token or URL valid for `ttl` until `expires` was made, in ms since the epoch.
fn issued_at(expires: std::time::SystemTime, ttl: std::time::Duration) -> Option<i64> {
    let issued = expires.checked_sub(ttl)?.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(issued.as_millis()).ok()
}

/// Where the request came from (the listener records the peer address).
fn origin(req: &Request) -> Origin {
    Origin {
        ip: req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip()),
        secure: req.extensions().get::<berth_http_util::Tls>().is_some(),
    }
}

fn with_version(mut resp: Response) -> Response {
    resp.headers_mut().insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
    resp
}

async fn root(State(api): State<Arc<OciApi>>, req: Request) -> Response {
    let result = match *req.method() {
        Method::GET | Method::HEAD => match caller(&api, &req) {
            Ok(who) => api
                .registry
                .check_access(&who)
                .await
                .map(|()| ([(header::CONTENT_TYPE, "application/json")], "{}").into_response())
                .map_err(OciError::from),
            Err(e) => Err(e),
        },
        _ => Err(OciError::new(error::UNSUPPORTED, "method not allowed")),
    };
    with_version(result.unwrap_or_else(IntoResponse::into_response))
}

async fn dispatch(State(api): State<Arc<OciApi>>, req: Request) -> Response {
    let (version, had_body) = (req.version(), berth_http_util::early::has_body(req.headers()));
    let rest = req.uri().path().strip_prefix("/v2/").unwrap_or_default().to_owned();
    let resp = match OciEndpoint::parse(req.method(), &rest) {
        Ok(ep) => {
            let span = tracing::debug_span!("oci", endpoint = ep.name(), method = %req.method());
            handle(&api, ep, req).instrument(span).await.unwrap_or_else(IntoResponse::into_response)
        }
        Err(RouteError::NotFound) => OciError::new(error::NAME_UNKNOWN, "no such endpoint").into_response(),
        Err(RouteError::MethodNotAllowed) => {
            OciError::new(error::UNSUPPORTED, "method not allowed for this endpoint").into_response()
        }
    };
    let mut resp = with_version(resp);
    // The body may be unread (a refusal from the headers alone).
    berth_http_util::early::close_after_error(version, had_body, &mut resp);
    resp
}

fn repo_name(s: &str) -> Result<RepositoryName, OciError> {
    RepositoryName::parse(s).map_err(|e| OciError::new(error::NAME_INVALID, e.to_string()))
}

fn digest_param(s: &str) -> Result<Digest, OciError> {
    Digest::parse(s).map_err(|e| OciError::new(error::DIGEST_INVALID, e.to_string()))
}

fn reference(s: &str) -> Result<Reference, OciError> {
    Reference::parse(s).map_err(|e| match e {
        NameError::Digest(d) => OciError::new(error::DIGEST_INVALID, d.to_string()),
        other => OciError::new(error::MANIFEST_INVALID, other.to_string()),
    })
}

fn upload_id(s: &str) -> Result<UploadId, OciError> {
    UploadId::parse(s).map_err(|_| OciError::new(error::BLOB_UPLOAD_UNKNOWN, "upload session not found"))
}

fn query(req: &Request) -> Vec<(String, String)> {
    req.uri().query().map(form_decode).unwrap_or_default()
}

#[doc(hidden)] // public for the fuzz targets (fuzz/)
pub fn form_decode(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn param<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn page_request(q: &[(String, String)], default: Option<usize>) -> Result<PageRequest, OciError> {
    let limit = match param(q, "n") {
        Some(n) => Some(n.parse::<usize>().map_err(|_| OciError::new(error::UNSUPPORTED, "n must be a number"))?),
        None => default,
    };
    Ok(PageRequest { limit, after: param(q, "last").filter(|l| !l.is_empty()).map(str::to_owned) })
}

fn link_header(path: &str, limit: Option<usize>, next: Option<&str>) -> Option<String> {
    let (n, last) = (limit?, next?);
    Some(format!("<{path}?n={n}&last={}>; rel=\"next\"", percent_encode(last)))
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn body_stream(body: Body) -> ByteStream {
    body.into_data_stream().map_err(|e| Box::new(e) as BoxError).boxed()
}

fn header_str(h: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn content_length(h: &HeaderMap) -> Option<u64> {
    header_str(h, header::CONTENT_LENGTH).and_then(|v| v.parse().ok())
}

fn upload_location(repo: &RepositoryKey, id: &UploadId) -> String {
    let repo = &repo.name;
    format!("/v2/{repo}/blobs/uploads/{id}")
}

/// A 202 describing an upload in progress.
fn upload_accepted(repo: &RepositoryKey, st: &UploadStatus, status: StatusCode) -> Response {
    let mut resp = status.into_response();
    let h = resp.headers_mut();
    insert(h, header::LOCATION, &upload_location(repo, &st.id));
    insert(h, header::RANGE, &format!("0-{}", st.offset.saturating_sub(1)));
    insert(h, UPLOAD_UUID, st.id.as_str());
    insert(h, header::CONTENT_LENGTH, "0");
    resp
}

fn blob_created(repo: &RepositoryKey, digest: &Digest) -> Response {
    let repo = &repo.name;
    let mut resp = StatusCode::CREATED.into_response();
    let h = resp.headers_mut();
    insert(h, header::LOCATION, &format!("/v2/{repo}/blobs/{digest}"));
    insert(h, CONTENT_DIGEST, digest.as_str());
    insert(h, header::CONTENT_LENGTH, "0");
    resp
}

fn insert<K: header::IntoHeaderName>(h: &mut HeaderMap, name: K, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

/// `Content-Range: <start>-<end>` of a PATCH (the spec's form, or with a `bytes ` prefix).
#[doc(hidden)] // public for the fuzz targets (fuzz/)
pub fn chunk_range(h: &HeaderMap) -> Result<Option<(u64, u64)>, OciError> {
    let Some(v) = header_str(h, header::CONTENT_RANGE) else { return Ok(None) };
    let v = v.trim().strip_prefix("bytes ").unwrap_or(v.trim());
    let v = v.split('/').next().unwrap_or(v);
    let bad = || {
        OciError::new(error::BLOB_UPLOAD_INVALID, "Content-Range must be <start>-<end>")
            .with_status(StatusCode::RANGE_NOT_SATISFIABLE)
    };
    let (a, b) = v.split_once('-').ok_or_else(bad)?;
    let (a, b) = (a.trim().parse::<u64>().map_err(|_| bad())?, b.trim().parse::<u64>().map_err(|_| bad())?);
    if b < a {
        return Err(bad());
    }
    Ok(Some((a, b)))
}

/// A single `Range: bytes=...` request; anything else is ignored and the whole blob served.
#[doc(hidden)] // public for the fuzz targets (fuzz/)
pub fn byte_range(range: Option<&str>, size: u64) -> Option<Result<ByteRange, u64>> {
    let spec = range?.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let range = match (a.trim(), b.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            if n == 0 || size == 0 {
                return Some(Err(size));
            }
            ByteRange { start: size.saturating_sub(n), end: size - 1 }
        }
        (start, "") => ByteRange { start: start.parse().ok()?, end: size.saturating_sub(1) },
        (start, end) => {
            let (s, e): (u64, u64) = (start.parse().ok()?, end.parse().ok()?);
            if e < s {
                return None;
            }
            ByteRange { start: s, end: e.min(size.saturating_sub(1)) }
        }
    };
    if range.start >= size { Some(Err(size)) } else { Some(Ok(range)) }
}

/// Whether the client's `Accept` rules out `media_type`: only when it names manifest types and
/// not this one (clients that send no manifest type at all get what is stored).
fn accept_excludes(h: &HeaderMap, media_type: &str) -> bool {
    let accepted: Vec<&str> = h
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.split(';').next().unwrap_or("").trim())
        .collect();
    let names_manifests = accepted.iter().any(|t| media_types::ALL.contains(t));
    names_manifests && !accepted.iter().any(|t| *t == media_type || *t == "*/*")
}

async fn handle(api: &OciApi, ep: OciEndpoint, req: Request) -> HandlerResult {
    let reg = &api.registry;
    let who = caller(api, &req)?;
    let method = req.method().clone();
    throttle::admit(reg, &who, &ep, &method)?;
    let registry = api.registry_of(&req, &who)?;
    let key = |name: &str| repo_name(name).map(|n| RepositoryKey::new(registry.clone(), n));
    match ep {
        OciEndpoint::Catalog => {
            let q = query(&req);
            let page = page_request(&q, Some(CATALOG_DEFAULT_PAGE))?;
            let result = reg.repositories.catalog(&who, &registry, &page).await?;
            let names: Vec<&str> = result.items.iter().map(RepositoryName::as_str).collect();
            let mut resp = json_response(&json!({ "repositories": names }));
            if let Some(l) = link_header("/v2/_catalog", page.limit, result.next.as_deref()) {
                insert(resp.headers_mut(), header::LINK, &l);
            }
            Ok(resp)
        }
        OciEndpoint::TagsList { repo } => {
            let repo = key(&repo)?;
            let q = query(&req);
            let page = page_request(&q, None)?;
            let result = reg.images.tags(&who, &repo, &page).await?;
            #[derive(serde::Serialize)]
            struct TagList<'a> {
                name: &'a str,
                tags: Vec<&'a str>,
            }
            let list =
                TagList { name: repo.name.as_str(), tags: result.items.iter().map(berth_types::Tag::as_str).collect() };
            let body = serde_json::to_vec(&list).map_err(|e| berth_registry::Error::Internal(Box::new(e)))?;
            let mut resp = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
            if let Some(l) = link_header(&format!("/v2/{}/tags/list", repo.name), page.limit, result.next.as_deref()) {
                insert(resp.headers_mut(), header::LINK, &l);
            }
            Ok(resp)
        }
        OciEndpoint::Manifest { repo, reference: raw } => {
            let repo = key(&repo)?;
            let r = match reference(&raw) {
                Ok(r) => r,
                // No manifest can be stored under a tag outside the grammar: the core answers
                // a read of one (the distribution-spec conformance suite requires 404).
                Err(e) if e.code == error::MANIFEST_INVALID && matches!(method, Method::GET | Method::HEAD) => {
                    reg.images.get_unnamed(&who, &repo, &raw).await?;
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            match method {
                Method::GET | Method::HEAD => {
                    let m = reg.images.get(&who, &repo, &r).await?;
                    if accept_excludes(req.headers(), &m.media_type) {
                        return Err(OciError::new(
                            error::MANIFEST_UNKNOWN,
                            format!("manifest is {}, which the request's Accept does not allow", m.media_type),
                        ));
                    }
                    let len = m.payload.len().to_string();
                    let body = if method == Method::HEAD { Body::empty() } else { Body::from(m.payload.clone()) };
                    let mut resp = Response::new(body);
                    let h = resp.headers_mut();
                    insert(h, header::CONTENT_TYPE, &m.media_type);
                    insert(h, header::CONTENT_LENGTH, &len);
                    insert(h, CONTENT_DIGEST, m.digest.as_str());
                    insert(h, header::ETAG, &format!("\"{}\"", m.digest));
                    Ok(resp)
                }
                Method::PUT => {
                    let ct = header_str(req.headers(), header::CONTENT_TYPE).map(str::to_owned);
                    let put = reg.images.put(&who, &repo, &r, ct.as_deref(), body_stream(req.into_body())).await?;
                    let mut resp = StatusCode::CREATED.into_response();
                    let h = resp.headers_mut();
                    insert(h, header::LOCATION, &format!("/v2/{}/manifests/{}", repo.name, put.digest));
                    insert(h, CONTENT_DIGEST, put.digest.as_str());
                    insert(h, header::CONTENT_LENGTH, "0");
                    if let Some(s) = &put.subject {
                        insert(h, OCI_SUBJECT, s.as_str());
                    }
                    Ok(resp)
                }
                _ => {
                    reg.images.delete(&who, &repo, &r).await?;
                    Ok(StatusCode::ACCEPTED.into_response())
                }
            }
        }
        OciEndpoint::Blob { repo, digest } => {
            let repo = key(&repo)?;
            let digest = digest_param(&digest)?;
            match method {
                Method::HEAD => {
                    let size = reg.blobs.stat(&who, &repo, &digest).await?;
                    let mut resp = Response::new(Body::empty());
                    blob_headers(resp.headers_mut(), &digest, size);
                    Ok(resp)
                }
                Method::GET => {
                    // Zero-copy where the connection allows it: HTTP/1.x on Berth's own listener.
                    let slot = if req.version() <= Version::HTTP_11 {
                        req.extensions().get::<SendfileSlot>().cloned()
                    } else {
                        None
                    };
                    let range_header = header_str(req.headers(), header::RANGE).map(str::to_owned);
                    let range = |size| match byte_range(range_header.as_deref(), size) {
                        None => Ok(None),
                        Some(Ok(r)) => Ok(Some(r)),
                        Some(Err(size)) => Err(berth_registry::Error::RangeNotSatisfiable { size }),
                    };
                    let read = reg.blobs.read(&who, &repo, &digest, range).await?;
                    let body = match (read.body, slot) {
                        (BlobBody::Redirect(url), _) => {
                            let mut resp = StatusCode::TEMPORARY_REDIRECT.into_response();
                            insert(resp.headers_mut(), header::LOCATION, &url);
                            insert(resp.headers_mut(), CONTENT_DIGEST, digest.as_str());
                            return Ok(resp);
                        }
                        (BlobBody::File { file, offset, len }, Some(slot)) => {
                            Body::from_stream(slot.body(file, offset, len))
                        }
                        (body, _) => Body::from_stream(body.into_stream()),
                    };
                    let mut resp = Response::new(body);
                    let h = resp.headers_mut();
                    match read.range {
                        Some(r) => {
                            blob_headers(h, &digest, r.len());
                            insert(h, header::CONTENT_RANGE, &format!("bytes {}-{}/{}", r.start, r.end, read.size));
                            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
                        }
                        None => blob_headers(h, &digest, read.size),
                    }
                    Ok(resp)
                }
                _ => {
                    reg.blobs.delete(&who, &repo, &digest).await?;
                    Ok(StatusCode::ACCEPTED.into_response())
                }
            }
        }
        OciEndpoint::UploadStart { repo } => {
            let repo = key(&repo)?;
            let q = query(&req);
            if let (Some(mount), Some(from)) = (param(&q, "mount"), param(&q, "from")) {
                let digest = digest_param(mount)?;
                // A bad `from` cannot be mounted from; fall back to a normal upload.
                if let Ok(from) = RepositoryName::parse(from)
                    && let Some(d) =
                        reg.blobs.mount(&who, &repo, &RepositoryKey::new(registry.clone(), from), &digest).await?
                {
                    return Ok(blob_created(&repo, &d));
                }
            } else if let Some(d) = param(&q, "digest") {
                let digest = digest_param(d)?;
                let len = content_length(req.headers());
                let d = reg.uploads.monolithic(&who, &repo, &digest, len, body_stream(req.into_body())).await?;
                return Ok(blob_created(&repo, &d));
            }
            let st = reg.uploads.start(&who, &repo).await?;
            Ok(upload_accepted(&repo, &st, StatusCode::ACCEPTED))
        }
        OciEndpoint::Upload { repo, id } => {
            let repo = key(&repo)?;
            let id = upload_id(&id)?;
            match method {
                Method::GET => {
                    let st = reg.uploads.status(&who, &repo, &id).await?;
                    Ok(upload_accepted(&repo, &st, StatusCode::NO_CONTENT))
                }
                Method::PATCH => {
                    let range = chunk_range(req.headers())?;
                    if let (Some((a, b)), Some(len)) = (range, content_length(req.headers()))
                        && b - a + 1 != len
                    {
                        return Err(OciError::new(
                            error::BLOB_UPLOAD_INVALID,
                            "Content-Range and Content-Length disagree",
                        )
                        .with_status(StatusCode::RANGE_NOT_SATISFIABLE));
                    }
                    let start = range.map(|(a, _)| a);
                    let st = reg.uploads.append(&who, &repo, &id, start, body_stream(req.into_body())).await?;
                    Ok(upload_accepted(&repo, &st, StatusCode::ACCEPTED))
                }
                Method::PUT => {
                    let q = query(&req);
                    let digest = digest_param(
                        param(&q, "digest")
                            .ok_or_else(|| OciError::new(error::DIGEST_INVALID, "digest is required"))?,
                    )?;
                    let len = content_length(req.headers());
                    let body = len.is_none_or(|n| n > 0).then(|| (body_stream(req.into_body()), len));
                    let d = reg.uploads.complete(&who, &repo, &id, &digest, body).await?;
                    Ok(blob_created(&repo, &d))
                }
                _ => {
                    reg.uploads.cancel(&who, &repo, &id).await?;
                    Ok(StatusCode::NO_CONTENT.into_response())
                }
            }
        }
        OciEndpoint::Referrers { repo, digest } => {
            let repo = key(&repo)?;
            let digest = digest_param(&digest)?;
            let q = query(&req);
            let filter = param(&q, "artifactType").filter(|s| !s.is_empty());
            let refs = reg.images.referrers(&who, &repo, &digest, filter).await?;
            let manifests: Vec<serde_json::Value> = refs
                .into_iter()
                .map(|r| {
                    let mut d = json!({ "mediaType": r.media_type, "digest": r.digest.as_str(), "size": r.size });
                    if let Some(a) = r.artifact_type {
                        d["artifactType"] = json!(a);
                    }
                    if let Some(ann) = r.annotations.and_then(|a| serde_json::from_str::<serde_json::Value>(&a).ok()) {
                        d["annotations"] = ann;
                    }
                    d
                })
                .collect();
            let index = json!({ "schemaVersion": 2, "mediaType": media_types::OCI_INDEX, "manifests": manifests });
            let mut resp = Response::new(Body::from(index.to_string()));
            insert(resp.headers_mut(), header::CONTENT_TYPE, media_types::OCI_INDEX);
            if filter.is_some() {
                insert(resp.headers_mut(), OCI_FILTERS, "artifactType");
            }
            Ok(resp)
        }
    }
}

fn json_response(v: &serde_json::Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

fn blob_headers(h: &mut HeaderMap, digest: &Digest, len: u64) {
    insert(h, header::CONTENT_TYPE, "application/octet-stream");
    insert(h, header::CONTENT_LENGTH, &len.to_string());
    insert(h, CONTENT_DIGEST, digest.as_str());
    insert(h, header::ETAG, &format!("\"{digest}\""));
    insert(h, header::ACCEPT_RANGES, "bytes");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_and_ranges() {
        assert_eq!(percent_decode("a%2Fb+c%zz%4"), "a/b c%zz%4");
        assert_eq!(
            form_decode("n=2&last=a%3Ab&x"),
            vec![("n".into(), "2".into()), ("last".into(), "a:b".into()), ("x".into(), String::new())]
        );
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_static("bytes=2-5"));
        assert_eq!(byte_range(header_str(&h, header::RANGE), 10), Some(Ok(ByteRange { start: 2, end: 5 })));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=-3"));
        assert_eq!(byte_range(header_str(&h, header::RANGE), 10), Some(Ok(ByteRange { start: 7, end: 9 })));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=4-"));
        assert_eq!(byte_range(header_str(&h, header::RANGE), 10), Some(Ok(ByteRange { start: 4, end: 9 })));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=10-12"));
        assert_eq!(byte_range(header_str(&h, header::RANGE), 10), Some(Err(10)));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=1-2,4-5"));
        assert_eq!(byte_range(header_str(&h, header::RANGE), 10), None);
        h.insert(header::CONTENT_RANGE, HeaderValue::from_static("0-99"));
        assert_eq!(chunk_range(&h).unwrap(), Some((0, 99)));
        h.insert(header::CONTENT_RANGE, HeaderValue::from_static("9-1"));
        assert!(chunk_range(&h).is_err());
    }

    #[test]
    fn accept_negotiation() {
        let mut h = HeaderMap::new();
        assert!(!accept_excludes(&h, media_types::OCI_INDEX));
        h.append(header::ACCEPT, HeaderValue::from_static("application/vnd.docker.distribution.manifest.v2+json"));
        assert!(accept_excludes(&h, media_types::OCI_INDEX));
        h.append(header::ACCEPT, HeaderValue::from_static("application/vnd.oci.image.index.v1+json;q=0.5"));
        assert!(!accept_excludes(&h, media_types::OCI_INDEX));
        let mut h = HeaderMap::new();
        h.append(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!accept_excludes(&h, media_types::OCI_MANIFEST));
    }

    #[test]
    fn every_error_code_is_distinct_and_in_the_spec() {
        for (i, a) in error::ALL.iter().enumerate() {
            assert!(error::SPEC.contains(&a.value), "{} is not a code the distribution spec lists", a.value);
            for b in &error::ALL[i + 1..] {
                assert_ne!(a.value, b.value, "two codes share a wire value");
            }
        }
        assert_eq!(error::ALL.len(), error::SPEC.len(), "every spec code has its entry");
    }

    #[test]
    fn hosts_name_registries() {
        assert_eq!(account_of_host("111122223333.reg.test:5000", "reg.test"), Some("111122223333"));
        assert_eq!(account_of_host("111122223333.REG.test", "reg.test:5000"), Some("111122223333"));
        assert_eq!(account_of_host("reg.test:5000", "reg.test"), None);
        assert_eq!(account_of_host("a.b.reg.test", "reg.test"), None);
        assert_eq!(account_of_host("127.0.0.1:5000", "reg.test"), None);
        assert_eq!(account_of_host("[::1]:5000", "reg.test"), None);
        assert_eq!(account_of_host("", "reg.test"), None);
    }
}
