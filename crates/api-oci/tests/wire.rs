//! The `/v2` door in process: a request in, a response out, no socket (tower `oneshot` on the
//! router over a core on the filesystem and SQLite in a tempdir). Wire bodies whose shape
//! clients depend on are snapshotted with insta; the committed snapshots are the expectation
//! (a plain `cargo test` fails on any difference and writes nothing under `CI=true`).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::response::IntoResponse;
use base64::Engine as _;
use berth_api_oci::{OciApi, OciError, error, router};
use berth_blobstore_fs::FsBlobStore;
use berth_meta_sqlite::SqliteMeta;
use berth_registry::{Authorizer, Caller, Options, Origin, Principal, Registry};
use berth_types::{AccountId, Algorithm, Digest, media_types};
use http::{HeaderMap, Method, Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt as _;

const A: &str = "111122223333";
const B: &str = "444455556666";
const ADMIN_KEY: (&str, &str) = ("AKIDBERTHWIRE", "wire-secret");

fn token_key() -> berth_auth::TokenKey {
    berth_auth::TokenKey::from_bytes([7; 32])
}

/// A core and the `/v2` router over it.
struct Door {
    _dir: tempfile::TempDir,
    registry: Arc<Registry>,
    app: Router,
}

async fn door(anonymous: bool, registry_domain: Option<&str>) -> Door {
    let dir = tempfile::tempdir().unwrap();
    let account = AccountId::parse(A).unwrap();
    let blobs = Arc::new(FsBlobStore::open(dir.path()).unwrap());
    let meta = Arc::new(SqliteMeta::open(&dir.path().join("meta.db"), &account).await.unwrap());
    let authz = Authorizer::new(anonymous, &berth_types::Region::parse("us-east-1").unwrap(), &account, &token_key());
    let registry = Arc::new(Registry::new(blobs, meta, authz, Options::default()));
    registry.identity.bootstrap(Some(ADMIN_KEY)).await.unwrap();
    let api = OciApi {
        registry: Arc::clone(&registry),
        token_key: token_key(),
        registry_domain: registry_domain.map(str::to_owned),
    };
    Door { _dir: dir, registry, app: router(Arc::new(api)) }
}

/// A response, read whole.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: bytes::Bytes,
}

impl Answer {
    fn header(&self, name: impl header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }
    /// The one error code of a spec error body.
    fn code(&self) -> String {
        self.json()["errors"][0]["code"].as_str().unwrap().to_owned()
    }
}

async fn answer(resp: axum::response::Response) -> Answer {
    let (parts, body) = resp.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    Answer { status: parts.status, headers: parts.headers, body }
}

/// A request to build; `send` runs it through the router.
struct Call {
    req: http::request::Builder,
    body: Vec<u8>,
}

fn call(method: Method, uri: &str) -> Call {
    Call { req: Request::builder().method(method).uri(uri), body: Vec::new() }
}

impl Call {
    fn header(mut self, name: &str, value: &str) -> Self {
        self.req = self.req.header(name, value);
        self
    }
    fn body(mut self, body: &[u8]) -> Self {
        self.body = body.to_vec();
        self.req = self.req.header(header::CONTENT_LENGTH, body.len().to_string());
        self
    }
    async fn send(self, app: &Router) -> Answer {
        let req = self.req.body(Body::from(self.body)).unwrap();
        answer(app.clone().oneshot(req).await.unwrap()).await
    }
}

fn sha256(data: &[u8]) -> Digest {
    Digest::of(Algorithm::Sha256, data)
}

/// Pushes a blob with POST then a monolithic PUT; its digest.
async fn push_blob(app: &Router, host: &str, repo: &str, data: &[u8]) -> Digest {
    let d = sha256(data);
    let start = call(Method::POST, &format!("/v2/{repo}/blobs/uploads/")).header("host", host).send(app).await;
    assert_eq!(start.status, StatusCode::ACCEPTED);
    let location = start.header(header::LOCATION).unwrap().to_owned();
    let done = call(Method::PUT, &format!("{location}?digest={d}")).header("host", host).body(data).send(app).await;
    assert_eq!(done.status, StatusCode::CREATED, "{:?}", done.body);
    d
}

/// An OCI image manifest over a config and one layer.
fn image_manifest(config: &Digest, config_len: usize, layer: &Digest, layer_len: usize) -> Vec<u8> {
    json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_MANIFEST,
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.as_str(), "size": config_len },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer.as_str(), "size": layer_len }],
    })
    .to_string()
    .into_bytes()
}

/// Pushes an image (config, layer and manifest) whose layer holds `layer`; the manifest bytes.
async fn push_image(app: &Router, host: &str, repo: &str, tag: &str, layer: &[u8]) -> Vec<u8> {
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let c = push_blob(app, host, repo, config).await;
    let l = push_blob(app, host, repo, layer).await;
    let manifest = image_manifest(&c, config.len(), &l, layer.len());
    let put = call(Method::PUT, &format!("/v2/{repo}/manifests/{tag}"))
        .header("host", host)
        .header("content-type", media_types::OCI_MANIFEST)
        .body(&manifest)
        .send(app)
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{:?}", put.body);
    manifest
}

// --- every core error on the wire ---------------------------------------------------------

#[tokio::test]
async fn every_core_error_on_the_wire() {
    let mut shown = Vec::new();
    for (name, e) in berth_registry::every_error_example() {
        let a = answer(OciError::from(e).into_response()).await;
        let code = a.code();
        assert!(error::SPEC.contains(&code.as_str()), "{name}: {code} is not a code the distribution spec lists");
        assert_eq!(a.header(header::CONTENT_TYPE), Some("application/json"), "{name}");
        let spec_status = error::ALL.iter().find(|c| c.value == code).unwrap().status;
        // A status other than the code's own is one the spec (or HTTP) names for the case.
        let allowed = [
            spec_status,
            StatusCode::RANGE_NOT_SATISFIABLE,
            StatusCode::PAYLOAD_TOO_LARGE,
            StatusCode::INSUFFICIENT_STORAGE,
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::SERVICE_UNAVAILABLE,
        ];
        assert!(allowed.contains(&a.status), "{name}: {code} answered {}", a.status);
        let mut headers: Vec<(String, String)> = a
            .headers
            .iter()
            .filter(|(k, _)| *k != header::CONTENT_TYPE && *k != header::CONTENT_LENGTH)
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
            .collect();
        headers.sort();
        shown.push(json!({ "error": name, "status": a.status.as_u16(), "headers": headers, "body": a.json() }));
    }
    // What clients act on, asserted outright as well as in the snapshot.
    let find = |n: &str| shown.iter().find(|s| s["error"] == n).unwrap().clone();
    let unauthenticated = find("unauthenticated");
    assert_eq!(unauthenticated["status"], 401);
    assert_eq!(unauthenticated["headers"], json!([["www-authenticate", "Basic realm=\"berth\""]]));
    let range = find("upload_range_invalid");
    assert_eq!((range["status"].clone(), range["headers"].clone()), (json!(416), json!([["range", "0-1023"]])));
    assert_eq!(find("range_not_satisfiable")["headers"], json!([["content-range", "bytes */1024"]]));
    assert_eq!(find("repository_not_found")["body"]["errors"][0]["code"], "NAME_UNKNOWN");
    assert_eq!(find("image_not_found")["body"]["errors"][0]["code"], "MANIFEST_UNKNOWN");
    let internal = find("internal");
    assert_eq!(internal["status"], 500);
    assert!(!internal.to_string().contains("fire"), "an internal detail leaked: {internal}");
    insta::assert_json_snapshot!("oci_errors", shown);
}

// --- blobs ----------------------------------------------------------------------------------

#[tokio::test]
async fn blobs_pushed_monolithic_and_in_chunks_read_back_with_their_headers() {
    let d = door(true, None).await;
    let app = &d.app;

    // POST then one PUT carrying the whole blob.
    let whole = b"monolithic blob bytes";
    let digest = push_blob(app, "localhost", "team/app", whole).await;

    // POST with ?digest=: the whole blob in one request.
    let single = b"single request blob";
    let sd = sha256(single);
    let r = call(Method::POST, &format!("/v2/team/app/blobs/uploads/?digest={sd}")).body(single).send(app).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.header(header::LOCATION), Some(format!("/v2/team/app/blobs/{sd}").as_str()));
    assert_eq!(r.header("docker-content-digest"), Some(sd.as_str()));

    // POST, PATCH, PATCH, GET status, PUT with no body.
    let chunks: [&[u8]; 2] = [b"first|", b"second"];
    let cd = sha256(b"first|second");
    let start = call(Method::POST, "/v2/team/app/blobs/uploads/").send(app).await;
    assert_eq!(start.status, StatusCode::ACCEPTED);
    assert_eq!(start.header(header::RANGE), Some("0-0"));
    let uuid = start.header("docker-upload-uuid").unwrap().to_owned();
    let location = start.header(header::LOCATION).unwrap().to_owned();
    assert_eq!(location, format!("/v2/team/app/blobs/uploads/{uuid}"));
    let first = call(Method::PATCH, &location).header("content-range", "0-5").body(chunks[0]).send(app).await;
    assert_eq!((first.status, first.header(header::RANGE)), (StatusCode::ACCEPTED, Some("0-5")));
    let second = call(Method::PATCH, &location).header("content-range", "6-11").body(chunks[1]).send(app).await;
    assert_eq!((second.status, second.header(header::RANGE)), (StatusCode::ACCEPTED, Some("0-11")));
    let status = call(Method::GET, &location).send(app).await;
    assert_eq!((status.status, status.header(header::RANGE)), (StatusCode::NO_CONTENT, Some("0-11")));
    assert_eq!(status.header("docker-upload-uuid"), Some(uuid.as_str()));
    let done = call(Method::PUT, &format!("{location}?digest={cd}")).body(b"").send(app).await;
    assert_eq!(done.status, StatusCode::CREATED, "{:?}", done.body);
    assert_eq!(done.header("docker-content-digest"), Some(cd.as_str()));
    // The session is gone once completed.
    let gone = call(Method::GET, &location).send(app).await;
    assert_eq!((gone.status, gone.code().as_str()), (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN"));

    for (d, bytes) in [(&digest, &whole[..]), (&sd, &single[..]), (&cd, &b"first|second"[..])] {
        let uri = format!("/v2/team/app/blobs/{d}");
        let head = call(Method::HEAD, &uri).send(app).await;
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(head.header(header::CONTENT_LENGTH), Some(bytes.len().to_string().as_str()));
        assert_eq!(head.header("docker-content-digest"), Some(d.as_str()));
        assert!(head.body.is_empty());
        let get = call(Method::GET, &uri).send(app).await;
        assert_eq!((get.status, &get.body[..]), (StatusCode::OK, bytes));
        assert_eq!(get.header("docker-content-digest"), Some(d.as_str()));
        assert_eq!(get.header(header::CONTENT_TYPE), Some("application/octet-stream"));
    }

    let part = call(Method::GET, &format!("/v2/team/app/blobs/{cd}")).header("range", "bytes=6-").send(app).await;
    assert_eq!((part.status, &part.body[..]), (StatusCode::PARTIAL_CONTENT, &b"second"[..]));
    assert_eq!(part.header(header::CONTENT_RANGE), Some("bytes 6-11/12"));
    let past = call(Method::GET, &format!("/v2/team/app/blobs/{cd}")).header("range", "bytes=12-").send(app).await;
    assert_eq!(past.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(past.header(header::CONTENT_RANGE), Some("bytes */12"));

    let unknown = sha256(b"never pushed");
    let miss = call(Method::GET, &format!("/v2/team/app/blobs/{unknown}")).send(app).await;
    assert_eq!(miss.status, StatusCode::NOT_FOUND);
    insta::assert_json_snapshot!("blob_unknown", miss.json());
}

#[tokio::test]
async fn an_out_of_order_patch_is_416_with_where_the_upload_stands() {
    let d = door(true, None).await;
    let app = &d.app;
    let start = call(Method::POST, "/v2/team/app/blobs/uploads/").send(app).await;
    let location = start.header(header::LOCATION).unwrap().to_owned();
    let first = call(Method::PATCH, &location).header("content-range", "0-4").body(b"01234").send(app).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    assert_eq!(first.header(header::CONNECTION), None);
    let skip = call(Method::PATCH, &location)
        .header("content-range", "10-14")
        .header("content-length", "5")
        .body(b"abcde")
        .send(app)
        .await;
    assert_eq!(skip.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(skip.header(header::RANGE), Some("0-4"));
    // Refused from the headers, its body unread: the connection is not reused (RFC 9112 9.6).
    assert_eq!(skip.header(header::CONNECTION), Some("close"));
    insta::assert_json_snapshot!("patch_out_of_order", skip.json());
    // The upload is where it was: the next chunk in order still goes on.
    let next = call(Method::PATCH, &location).header("content-range", "5-9").body(b"56789").send(app).await;
    assert_eq!((next.status, next.header(header::RANGE)), (StatusCode::ACCEPTED, Some("0-9")));
}

// --- manifests, tags, catalog, referrers ------------------------------------------------------

#[tokio::test]
async fn a_manifest_pushed_reads_back_by_tag_and_digest_with_its_headers() {
    let d = door(true, None).await;
    let app = &d.app;
    let manifest = push_image(app, "localhost", "team/app", "v1", b"layer bytes").await;
    let digest = sha256(&manifest);
    for reference in ["v1".to_owned(), digest.to_string()] {
        let uri = format!("/v2/team/app/manifests/{reference}");
        for method in [Method::GET, Method::HEAD] {
            let a = call(method.clone(), &uri).header("accept", media_types::OCI_MANIFEST).send(app).await;
            assert_eq!(a.status, StatusCode::OK, "{method} {uri}");
            assert_eq!(a.header("docker-content-digest"), Some(digest.as_str()));
            assert_eq!(a.header(header::CONTENT_TYPE), Some(media_types::OCI_MANIFEST));
            assert_eq!(a.header(header::CONTENT_LENGTH), Some(manifest.len().to_string().as_str()));
            assert_eq!(a.header("docker-distribution-api-version"), Some("registry/2.0"));
            let want: &[u8] = if method == Method::HEAD { b"" } else { &manifest };
            assert_eq!(&a.body[..], want, "{method} {uri}");
        }
    }
    // HEAD without Accept reports what GET does.
    let head = call(Method::HEAD, "/v2/team/app/manifests/v1").send(app).await;
    assert_eq!((head.status, head.header("docker-content-digest")), (StatusCode::OK, Some(digest.as_str())));
    // An Accept that rules the stored type out.
    let refused =
        call(Method::GET, "/v2/team/app/manifests/v1").header("accept", media_types::DOCKER_MANIFEST).send(app).await;
    assert_eq!((refused.status, refused.code().as_str()), (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN"));

    // A manifest naming a blob the repository does not hold.
    let missing = sha256(b"missing layer");
    let config = sha256(br#"{"architecture":"amd64","os":"linux"}"#);
    let bad = image_manifest(&config, 37, &missing, 13);
    let put = call(Method::PUT, "/v2/team/app/manifests/v2")
        .header("content-type", media_types::OCI_MANIFEST)
        .body(&bad)
        .send(app)
        .await;
    assert_eq!(put.status, StatusCode::BAD_REQUEST);
    insta::assert_json_snapshot!("manifest_blob_unknown", put.json());
}

#[tokio::test]
async fn a_tag_outside_the_grammar_is_manifest_unknown() {
    let d = door(true, None).await;
    let app = &d.app;
    push_image(app, "localhost", "team/app", "v1", b"layer").await;
    for method in [Method::GET, Method::HEAD] {
        let a = call(method.clone(), "/v2/team/app/manifests/.INVALID_MANIFEST_NAME").send(app).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{method}");
        // A HEAD answer carries no body.
        if method == Method::GET {
            assert_eq!(a.code(), "MANIFEST_UNKNOWN");
            insta::assert_json_snapshot!("manifest_unknown_bad_tag", a.json());
        }
    }
    // A PUT under it is refused as invalid, not stored.
    let put = call(Method::PUT, "/v2/team/app/manifests/.INVALID_MANIFEST_NAME")
        .header("content-type", media_types::OCI_MANIFEST)
        .body(b"{}")
        .send(app)
        .await;
    assert_eq!((put.status, put.code().as_str()), (StatusCode::BAD_REQUEST, "MANIFEST_INVALID"));
}

#[tokio::test]
async fn tags_list_pages_with_link() {
    let d = door(true, None).await;
    let app = &d.app;
    let manifest = push_image(app, "localhost", "team/app", "c", b"layer").await;
    for tag in ["a", "b"] {
        let put = call(Method::PUT, &format!("/v2/team/app/manifests/{tag}"))
            .header("content-type", media_types::OCI_MANIFEST)
            .body(&manifest)
            .send(app)
            .await;
        assert_eq!(put.status, StatusCode::CREATED);
    }
    let all = call(Method::GET, "/v2/team/app/tags/list").send(app).await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.header(header::LINK), None);
    insta::assert_json_snapshot!("tags_list", all.json());

    let first = call(Method::GET, "/v2/team/app/tags/list?n=2").send(app).await;
    assert_eq!(first.json(), json!({ "name": "team/app", "tags": ["a", "b"] }));
    let link = first.header(header::LINK).unwrap();
    assert_eq!(link, r#"</v2/team/app/tags/list?n=2&last=b>; rel="next""#);
    let next = link.trim_start_matches('<').split('>').next().unwrap();
    let second = call(Method::GET, next).send(app).await;
    assert_eq!(second.json(), json!({ "name": "team/app", "tags": ["c"] }));
    assert_eq!(second.header(header::LINK), None);

    let none = call(Method::GET, "/v2/team/none/tags/list").send(app).await;
    assert_eq!((none.status, none.code().as_str()), (StatusCode::NOT_FOUND, "NAME_UNKNOWN"));
}

#[tokio::test]
async fn catalog_lists_and_pages() {
    let d = door(true, None).await;
    let app = &d.app;
    for repo in ["team/web", "team/app", "base"] {
        push_blob(app, "localhost", repo, repo.as_bytes()).await;
    }
    let all = call(Method::GET, "/v2/_catalog").send(app).await;
    assert_eq!(all.status, StatusCode::OK);
    insta::assert_json_snapshot!("catalog", all.json());

    // Pages of one, following each Link (its `last` is opaque) to the end.
    let (mut names, mut uri, mut pages) = (Vec::new(), "/v2/_catalog?n=1".to_owned(), 0);
    loop {
        let page = call(Method::GET, &uri).send(app).await;
        assert_eq!(page.status, StatusCode::OK);
        for n in page.json()["repositories"].as_array().unwrap() {
            names.push(n.as_str().unwrap().to_owned());
        }
        pages += 1;
        let Some(link) = page.header(header::LINK) else { break };
        assert!(link.starts_with("</v2/_catalog?n=1&last=") && link.ends_with(r#">; rel="next""#), "{link}");
        uri = link.trim_start_matches('<').split('>').next().unwrap().to_owned();
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(names, ["base", "team/app", "team/web"]);
}

#[tokio::test]
async fn referrers_index_lists_manifests_by_subject() {
    let d = door(true, None).await;
    let app = &d.app;
    let subject = push_image(app, "localhost", "team/app", "v1", b"layer").await;
    let subject_digest = sha256(&subject);
    let empty = push_blob(app, "localhost", "team/app", b"{}").await;
    let signature = json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_MANIFEST,
        "artifactType": "application/vnd.example.signature",
        "config": { "mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.as_str(), "size": 2 },
        "layers": [],
        "subject": { "mediaType": media_types::OCI_MANIFEST, "digest": subject_digest.as_str(), "size": subject.len() },
        "annotations": { "org.example.signed-by": "wire-test" },
    })
    .to_string();
    let sig_digest = sha256(signature.as_bytes());
    let put = call(Method::PUT, &format!("/v2/team/app/manifests/{sig_digest}"))
        .header("content-type", media_types::OCI_MANIFEST)
        .body(signature.as_bytes())
        .send(app)
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{:?}", put.body);
    assert_eq!(put.header("oci-subject"), Some(subject_digest.as_str()));

    let index = call(Method::GET, &format!("/v2/team/app/referrers/{subject_digest}")).send(app).await;
    assert_eq!(index.status, StatusCode::OK);
    assert_eq!(index.header(header::CONTENT_TYPE), Some(media_types::OCI_INDEX));
    assert_eq!(index.header("oci-filters-applied"), None);
    insta::assert_json_snapshot!("referrers", index.json());

    let filtered =
        call(Method::GET, &format!("/v2/team/app/referrers/{subject_digest}?artifactType=application/x-other"))
            .send(app)
            .await;
    assert_eq!(filtered.header("oci-filters-applied"), Some("artifactType"));
    assert_eq!(filtered.json()["manifests"], json!([]));
}

// --- a registry per account --------------------------------------------------------------------

#[tokio::test]
async fn each_account_host_addresses_its_own_registry() {
    let d = door(true, Some("reg.test")).await;
    let app = &d.app;
    let (host_a, host_b) = (format!("{A}.reg.test"), format!("{B}.reg.test:5000"));
    let ma = push_image(app, &host_a, "team/app", "v1", b"bytes of A").await;
    let mb = push_image(app, &host_b, "team/app", "v1", b"bytes of B").await;
    assert_ne!(ma, mb);
    for (host, manifest) in [(&host_a, &ma), (&host_b, &mb)] {
        let a = call(Method::GET, "/v2/team/app/manifests/v1").header("host", host).send(app).await;
        assert_eq!(a.status, StatusCode::OK, "{host}");
        assert_eq!(&a.body[..], &manifest[..], "{host} serves its own image");
        let catalog = call(Method::GET, "/v2/_catalog").header("host", host).send(app).await;
        assert_eq!(catalog.json(), json!({ "repositories": ["team/app"] }), "{host}");
    }
    // A's layer is not in B's repository of the same name.
    let layer_a = sha256(b"bytes of A");
    let cross = call(Method::HEAD, &format!("/v2/team/app/blobs/{layer_a}")).header("host", &host_b).send(app).await;
    assert_eq!(cross.status, StatusCode::NOT_FOUND);
    let own = call(Method::HEAD, &format!("/v2/team/app/blobs/{layer_a}")).header("host", &host_a).send(app).await;
    assert_eq!(own.status, StatusCode::OK);
    // Any other host is the default account's registry (an anonymous caller's own).
    let bare = call(Method::GET, "/v2/team/app/manifests/v1").header("host", "reg.test").send(app).await;
    assert_eq!(&bare.body[..], &ma[..]);
    // The core agrees on whose repository is whose.
    let caller = Caller::Anonymous;
    let key_b = berth_types::RepositoryKey::new(
        AccountId::parse(B).unwrap(),
        berth_types::RepositoryName::parse("team/app").unwrap(),
    );
    let m = d.registry.images.get(&caller, &key_b, &berth_types::Reference::parse("v1").unwrap()).await.unwrap();
    assert_eq!(m.digest, sha256(&mb));
    // A host whose first label is no account id.
    let bad = call(Method::GET, "/v2/_catalog").header("host", "12345.reg.test").send(app).await;
    assert_eq!((bad.status, bad.code().as_str()), (StatusCode::NOT_FOUND, "NAME_UNKNOWN"));
}

#[tokio::test]
async fn a_registry_token_from_get_authorization_token_is_a_basic_credential() {
    let d = door(false, Some("reg.test")).await;
    let app = &d.app;
    let admin = berth_registry::identity::user_arn(A, berth_registry::identity::ADMIN_USER);
    let caller = Caller::Principal(Principal::from_arn(&admin, Origin::default()).unwrap());
    let token = d.registry.tokens.authorization_token(&caller).await.unwrap();
    let basic =
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("AWS:{}", token.password)));
    let host = format!("{A}.reg.test");

    // Without credentials: 401 with the challenge.
    let anon = call(Method::GET, "/v2/").header("host", &host).send(app).await;
    assert_eq!((anon.status, anon.code().as_str()), (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"));
    assert_eq!(anon.header(header::WWW_AUTHENTICATE), Some(r#"Basic realm="berth""#));
    let anon_pull = call(Method::GET, "/v2/team/app/tags/list").header("host", &host).send(app).await;
    assert_eq!(anon_pull.status, StatusCode::UNAUTHORIZED);

    // With the token: the root, a push and a pull.
    let root = call(Method::GET, "/v2/").header("host", &host).header("authorization", &basic).send(app).await;
    assert_eq!(root.status, StatusCode::OK);
    let data = b"pushed with a token";
    let digest = sha256(data);
    let up = call(Method::POST, &format!("/v2/team/app/blobs/uploads/?digest={digest}"))
        .header("host", &host)
        .header("authorization", &basic)
        .body(data)
        .send(app)
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{:?}", up.body);
    let get = call(Method::GET, &format!("/v2/team/app/blobs/{digest}"))
        .header("host", &host)
        .header("authorization", &basic)
        .send(app)
        .await;
    assert_eq!((get.status, &get.body[..]), (StatusCode::OK, &data[..]));

    // A token that does not verify, and a user name other than AWS, are refused, never anonymous.
    let forged = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("AWS:forged"));
    let wrong_user =
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("admin:{}", token.password)));
    for bad in [forged, wrong_user] {
        let a = call(Method::GET, "/v2/").header("host", &host).header("authorization", &bad).send(app).await;
        assert_eq!((a.status, a.code().as_str()), (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"), "{bad}");
        assert!(a.header(header::WWW_AUTHENTICATE).is_some());
    }
}
