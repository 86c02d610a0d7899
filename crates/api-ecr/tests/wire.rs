//! The ECR door in process: SigV4-signed requests in, responses out, no socket (tower
//! `oneshot` on the router over a core on the filesystem and SQLite in a tempdir). Response
//! bodies whose shape SDKs and scripts depend on are snapshotted with insta, with times and
//! secrets redacted; the committed snapshots are the expectation (a plain `cargo test` fails on
//! any difference and writes nothing under `CI=true`).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::IntoResponse;
use base64::Engine as _;
use berth_api_ecr::{EcrApi, EcrError, router};
use berth_blobstore_fs::FsBlobStore;
use berth_meta_sqlite::SqliteMeta;
use berth_registry::Registry;
use berth_types::{AccountId, Algorithm, Digest, RepositoryKey, RepositoryName};
use http::{HeaderMap, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt as _;

const A: &str = "111122223333";
const B: &str = "444455556666";
const REGION: &str = "us-east-1";
const HOST: &str = "localhost:5000";
const ADMIN: (&str, &str) = ("AKIDBERTHWIRE", "wire-secret");

fn token_key() -> berth_auth::TokenKey {
    berth_auth::TokenKey::from_bytes([9; 32])
}

/// A core, the ECR router over it, and an access key in each of two accounts (both users with
/// `AdministratorAccess` in their own account).
struct Door {
    _dir: tempfile::TempDir,
    registry: Arc<Registry>,
    app: Router,
    a: Key,
    b: Key,
}

#[derive(Clone)]
struct Key {
    id: String,
    secret: String,
}

async fn door() -> Door {
    let dir = tempfile::tempdir().unwrap();
    let account = AccountId::parse(A).unwrap();
    let blobs = Arc::new(FsBlobStore::open(dir.path()).unwrap());
    let meta = Arc::new(SqliteMeta::open(&dir.path().join("meta.db"), &account).await.unwrap());
    let authz =
        berth_registry::Authorizer::new(false, &berth_types::Region::parse(REGION).unwrap(), &account, &token_key());
    let registry = Arc::new(Registry::new(blobs, meta, authz, berth_registry::Options::default()));
    registry.identity.bootstrap(Some(ADMIN)).await.unwrap();
    registry.identity.create_account(Some(B), "b").await.unwrap();
    registry.identity.create_user(B, "bob").await.unwrap();
    registry.identity.attach_user_policy(B, "bob", "AdministratorAccess", None).await.unwrap();
    let (id, secret) = registry.identity.create_access_key(B, "bob").await.unwrap();
    let api = EcrApi {
        registry: Arc::clone(&registry),
        region: REGION.into(),
        registry_host: HOST.into(),
        registry_domain: Some("reg.test".into()),
        tls: false,
        token_key: token_key(),
        intake: berth_api_ecr::intake::Intake::new(0, Duration::from_secs(30)),
    };
    Door {
        _dir: dir,
        registry,
        app: router(Arc::new(api)),
        a: Key { id: ADMIN.0.into(), secret: ADMIN.1.into() },
        b: Key { id, secret },
    }
}

/// The SigV4 headers of an ECR call, signed with `berth_auth`'s canonicalization helpers the
/// way an AWS SDK signs one (host, date, target and content type signed; the body hashed).
fn signed_headers(key: &Key, target: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    use berth_auth::canonical::{
        canonical_headers, canonical_request, sha256_hex, signature, signing_key, string_to_sign,
    };
    let amz = berth_auth::amz_date(std::time::SystemTime::now());
    let date = &amz[..8];
    let headers = [
        ("content-type", "application/x-amz-json-1.1".to_owned()),
        ("host", HOST.to_owned()),
        ("x-amz-date", amz.clone()),
        ("x-amz-target", format!("AmazonEC2ContainerRegistry_V20150921.{target}")),
    ];
    let names = ["content-type", "host", "x-amz-date", "x-amz-target"];
    let canonical =
        canonical_request("POST", "/", "", &canonical_headers(&headers, &names), &names.join(";"), &sha256_hex(body));
    let scope = format!("{date}/{REGION}/ecr/aws4_request");
    let sig = signature(&signing_key(&key.secret, date, REGION, "ecr"), &string_to_sign(&amz, &scope, &canonical));
    let mut out = headers.to_vec();
    out.push((
        "authorization",
        format!("AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={}, Signature={sig}", key.id, names.join(";")),
    ));
    out.push(("content-length", body.len().to_string()));
    out
}

/// An answer, read whole.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// The body of a successful call.
    fn ok(self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        self.body
    }
    /// `(__type, message)` of a refused call, after checking the error's headers agree.
    fn err(&self) -> (&str, &str) {
        assert_ne!(self.status, StatusCode::OK, "{}", self.body);
        let code = self.body["__type"].as_str().unwrap();
        assert_eq!(self.header("x-amzn-errortype"), Some(code));
        (code, self.body["message"].as_str().unwrap())
    }
}

async fn read(resp: axum::response::Response) -> Answer {
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
    Answer { status: parts.status, headers: parts.headers, body }
}

/// One signed ECR call through the router.
async fn ecr(d: &Door, key: &Key, target: &str, input: &Value) -> Answer {
    let body = input.to_string().into_bytes();
    let mut req = Request::builder().method("POST").uri("/");
    for (k, v) in signed_headers(key, target, &body) {
        req = req.header(k, v);
    }
    let resp = d.app.clone().oneshot(req.body(Body::from(body)).unwrap()).await.unwrap();
    let a = read(resp).await;
    assert!(a.header("x-amzn-requestid").is_some(), "every answer carries a request id");
    if a.status == StatusCode::OK {
        assert_eq!(a.header("content-type"), Some("application/x-amz-json-1.1"));
    }
    a
}

fn sha256(data: &[u8]) -> Digest {
    Digest::of(Algorithm::Sha256, data)
}

/// Uploads a layer with InitiateLayerUpload, UploadLayerPart and CompleteLayerUpload (which
/// refuses a layer the repository already holds).
async fn upload_layer(d: &Door, key: &Key, repo: &str, data: &[u8]) -> Digest {
    let digest = sha256(data);
    let started = ecr(d, key, "InitiateLayerUpload", &json!({ "repositoryName": repo })).await.ok();
    let upload_id = started["uploadId"].as_str().unwrap();
    let part = json!({
        "repositoryName": repo,
        "uploadId": upload_id,
        "partFirstByte": 0,
        "partLastByte": data.len() - 1,
        "layerPartBlob": base64::engine::general_purpose::STANDARD.encode(data),
    });
    let sent = ecr(d, key, "UploadLayerPart", &part).await.ok();
    assert_eq!(sent["lastByteReceived"], json!(data.len() - 1));
    let done = json!({ "repositoryName": repo, "uploadId": upload_id, "layerDigests": [digest.as_str()] });
    let done = ecr(d, key, "CompleteLayerUpload", &done).await;
    if done.status == StatusCode::OK {
        assert_eq!(done.body["layerDigest"], digest.as_str());
    } else {
        // As ECR does; a client goes on with the layer the repository holds.
        assert_eq!(done.err().0, "LayerAlreadyExistsException");
    }
    digest
}

/// An OCI image manifest whose layer holds `layer`, with its config and layer uploaded.
async fn image(d: &Door, key: &Key, repo: &str, layer: &[u8]) -> String {
    let config = br#"{"architecture":"arm64","os":"linux"}"#;
    let c = upload_layer(d, key, repo, config).await;
    let l = upload_layer(d, key, repo, layer).await;
    json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": c.as_str(), "size": config.len() },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": l.as_str(), "size": layer.len() }],
    })
    .to_string()
}

async fn put_image(d: &Door, key: &Key, repo: &str, manifest: &str, tag: &str) -> Value {
    ecr(d, key, "PutImage", &json!({ "repositoryName": repo, "imageManifest": manifest, "imageTag": tag })).await.ok()
}

// --- every core error on the wire ---------------------------------------------------------

#[tokio::test]
async fn every_core_error_on_the_wire() {
    let mut shown = Vec::new();
    for (name, e) in berth_registry::every_error_example() {
        let a = read(EcrError::from(e).into_response()).await;
        let (code, message) = a.err();
        assert_eq!(a.header("content-type"), Some("application/x-amz-json-1.1"), "{name}");
        shown.push(json!({ "error": name, "status": a.status.as_u16(), "__type": code, "message": message }));
    }
    let find = |n: &str| shown.iter().find(|s| s["error"] == n).unwrap().clone();
    let said =
        |n: &str| (find(n)["__type"].as_str().unwrap().to_owned(), find(n)["message"].as_str().unwrap().to_owned());
    let d = sha256(b"layer");
    // The texts ECR gives, which scripts match on.
    let ecr_texts = [
        (
            "repository_not_found",
            "RepositoryNotFoundException",
            format!("The repository with name 'team/app' does not exist in the registry with id '{A}'"),
        ),
        (
            "repository_already_exists",
            "RepositoryAlreadyExistsException",
            format!("The repository with name 'team/app' already exists in the registry with id '{A}'"),
        ),
        (
            "repository_not_empty",
            "RepositoryNotEmptyException",
            format!(
                "The repository with name 'team/app' in registry with id '{A}' cannot be deleted because it still \
                 contains images"
            ),
        ),
        (
            "image_already_exists",
            "ImageAlreadyExistsException",
            format!(
                "Image with digest '{d}' and tag 'v1' already exists in the repository with name 'team/app' in \
                 registry with id '{A}'"
            ),
        ),
        (
            "image_not_found",
            "ImageNotFoundException",
            format!(
                "The image with imageId {{imageDigest:'null', imageTag:'v1'}} does not exist within the repository \
                 with name 'team/app' in the registry with id '{A}'"
            ),
        ),
        (
            "repository_policy_not_found",
            "RepositoryPolicyNotFoundException",
            format!(
                "Repository policy does not exist for the repository with name 'team/app' in the registry with id \
                 '{A}'"
            ),
        ),
        (
            "lifecycle_policy_not_found",
            "LifecyclePolicyNotFoundException",
            format!(
                "Lifecycle policy does not exist for the repository with name 'team/app' in the registry with id \
                 '{A}'"
            ),
        ),
        (
            "registry_policy_not_found",
            "RegistryPolicyNotFoundException",
            format!("Registry policy does not exist in the registry with id '{A}'"),
        ),
    ];
    for (name, code, message) in ecr_texts {
        assert_eq!(said(name), (code.to_owned(), message), "{name}");
    }
    let internal = find("internal");
    assert_eq!((internal["status"].clone(), internal["__type"].clone()), (json!(500), json!("ServerException")));
    assert!(!internal.to_string().contains("fire"), "an internal detail leaked: {internal}");
    insta::assert_json_snapshot!("ecr_errors", shown);
}

// --- repositories ------------------------------------------------------------------------------

#[tokio::test]
async fn repositories_are_created_and_described_in_each_registry() {
    let d = door().await;
    let created = ecr(&d, &d.a, "CreateRepository", &json!({ "repositoryName": "team/app" })).await.ok();
    insta::assert_json_snapshot!("create_repository", created, { ".repository.createdAt" => "[createdAt]" });
    // B has a registry of its own, which can hold a repository of the same name.
    let in_b = ecr(&d, &d.b, "CreateRepository", &json!({ "repositoryName": "team/app" })).await.ok();
    assert_eq!(in_b["repository"]["registryId"], B);
    assert_eq!(in_b["repository"]["repositoryUri"], format!("{B}.reg.test:5000/team/app"));
    assert_eq!(in_b["repository"]["repositoryArn"], format!("arn:aws:ecr:{REGION}:{B}:repository/team/app"));

    // registryId by default is the caller's, and may be given explicitly.
    let default = ecr(&d, &d.a, "DescribeRepositories", &json!({})).await.ok();
    let explicit = ecr(&d, &d.a, "DescribeRepositories", &json!({ "registryId": A })).await.ok();
    assert_eq!(default, explicit);
    insta::assert_json_snapshot!("describe_repositories", default, { ".repositories[].createdAt" => "[createdAt]" });
    let of_b = ecr(&d, &d.b, "DescribeRepositories", &json!({ "registryId": B })).await.ok();
    assert_eq!(of_b["repositories"][0]["repositoryUri"], format!("{B}.reg.test:5000/team/app"));
    // Another account's registry shows nothing its policies do not allow: refused.
    let foreign = ecr(&d, &d.a, "DescribeRepositories", &json!({ "registryId": B })).await;
    assert_eq!(foreign.err().0, "AccessDeniedException");

    // Named repositories must exist, in ECR's words.
    let missing = ecr(&d, &d.a, "DescribeRepositories", &json!({ "repositoryNames": ["team/none"] })).await;
    assert_eq!(
        missing.err(),
        (
            "RepositoryNotFoundException",
            format!("The repository with name 'team/none' does not exist in the registry with id '{A}'").as_str()
        )
    );
    let again = ecr(&d, &d.a, "CreateRepository", &json!({ "repositoryName": "team/app" })).await;
    assert_eq!(again.err().0, "RepositoryAlreadyExistsException");
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn kms_without_a_key_reports_the_aws_managed_key() {
    let d = door().await;
    for (key, account) in [(&d.a, A), (&d.b, B)] {
        let input = json!({ "repositoryName": "secure/app", "encryptionConfiguration": { "encryptionType": "KMS" } });
        let created = ecr(&d, key, "CreateRepository", &input).await.ok();
        assert_eq!(
            created["repository"]["encryptionConfiguration"],
            json!({ "encryptionType": "KMS", "kmsKey": format!("arn:aws:kms:{REGION}:{account}:alias/aws/ecr") })
        );
        let described = ecr(&d, key, "DescribeRepositories", &json!({ "repositoryNames": ["secure/app"] })).await.ok();
        assert_eq!(
            described["repositories"][0]["encryptionConfiguration"],
            created["repository"]["encryptionConfiguration"]
        );
    }
    let named = json!({
        "repositoryName": "secure/named",
        "encryptionConfiguration": { "encryptionType": "KMS", "kmsKey": "arn:aws:kms:us-east-1:111122223333:key/abc" },
    });
    let created = ecr(&d, &d.a, "CreateRepository", &named).await.ok();
    assert_eq!(
        created["repository"]["encryptionConfiguration"]["kmsKey"],
        "arn:aws:kms:us-east-1:111122223333:key/abc"
    );
    let plain = ecr(&d, &d.a, "CreateRepository", &json!({ "repositoryName": "plain/app" })).await.ok();
    assert_eq!(plain["repository"]["encryptionConfiguration"], json!({ "encryptionType": "AES256" }));
}

// --- images ----------------------------------------------------------------------------------

#[tokio::test]
async fn put_image_then_batch_get_image_with_per_item_failures() {
    let d = door().await;
    ecr(&d, &d.a, "CreateRepository", &json!({ "repositoryName": "team/app" })).await.ok();
    let m1 = image(&d, &d.a, "team/app", b"first layer").await;
    let m2 = image(&d, &d.a, "team/app", b"second layer").await;
    let put = put_image(&d, &d.a, "team/app", &m1, "v1").await;
    insta::assert_json_snapshot!("put_image", put);
    put_image(&d, &d.a, "team/app", &m2, "v2").await;
    let (d1, d2) = (sha256(m1.as_bytes()), sha256(m2.as_bytes()));

    // The same image under the same tag again: refused, in ECR's words.
    let again =
        ecr(&d, &d.a, "PutImage", &json!({ "repositoryName": "team/app", "imageManifest": m1, "imageTag": "v1" }))
            .await;
    assert_eq!(
        again.err(),
        (
            "ImageAlreadyExistsException",
            format!(
                "Image with digest '{d1}' and tag 'v1' already exists in the repository with name 'team/app' in \
                 registry with id '{A}'"
            )
            .as_str()
        )
    );

    let ids = json!([
        { "imageTag": "v1" },
        { "imageDigest": d2.as_str() },
        { "imageDigest": "sha256:not-hex" },
        { "imageDigest": d1.as_str(), "imageTag": "v2" },
        { "imageTag": "v9" },
    ]);
    let got = ecr(&d, &d.a, "BatchGetImage", &json!({ "repositoryName": "team/app", "imageIds": ids })).await.ok();
    let images = got["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    assert_eq!(images[0]["imageManifest"], m1.as_str());
    assert_eq!(images[1]["imageId"]["imageDigest"], d2.as_str());
    let codes: Vec<&str> =
        got["failures"].as_array().unwrap().iter().map(|f| f["failureCode"].as_str().unwrap()).collect();
    assert_eq!(codes, ["InvalidImageDigest", "ImageTagDoesNotMatchDigest", "ImageNotFound"]);
    insta::assert_json_snapshot!("batch_get_image", got);

    // DescribeImages and ListImages see both images.
    let described = ecr(&d, &d.a, "DescribeImages", &json!({ "repositoryName": "team/app" })).await.ok();
    insta::assert_json_snapshot!("describe_images", described, { ".imageDetails[].imagePushedAt" => "[pushedAt]" });
    let listed = ecr(&d, &d.a, "ListImages", &json!({ "repositoryName": "team/app" })).await.ok();
    insta::assert_json_snapshot!("list_images", listed);

    // In a repository that does not exist, the repository is what is missing.
    let none =
        ecr(&d, &d.a, "BatchGetImage", &json!({ "repositoryName": "team/none", "imageIds": [{ "imageTag": "v1" }] }))
            .await;
    assert_eq!(none.err().0, "RepositoryNotFoundException");
    let none =
        ecr(&d, &d.a, "DescribeImages", &json!({ "repositoryName": "team/none", "imageIds": [{ "imageTag": "v1" }] }))
            .await;
    assert_eq!(none.err().0, "RepositoryNotFoundException");
}

#[tokio::test]
async fn batch_delete_image_with_a_tag_of_another_image_deletes_nothing() {
    let d = door().await;
    ecr(&d, &d.a, "CreateRepository", &json!({ "repositoryName": "team/app" })).await.ok();
    let m1 = image(&d, &d.a, "team/app", b"first layer").await;
    let m2 = image(&d, &d.a, "team/app", b"second layer").await;
    put_image(&d, &d.a, "team/app", &m1, "v1").await;
    put_image(&d, &d.a, "team/app", &m2, "v2").await;
    let (d1, d2) = (sha256(m1.as_bytes()), sha256(m2.as_bytes()));

    let pair = json!({ "repositoryName": "team/app", "imageIds": [{ "imageDigest": d1.as_str(), "imageTag": "v2" }] });
    let deleted = ecr(&d, &d.a, "BatchDeleteImage", &pair).await.ok();
    assert_eq!(deleted["imageIds"], json!([]));
    insta::assert_json_snapshot!("batch_delete_image_mismatch", deleted);

    // Both images and both tags are still there.
    let ids = json!([{ "imageDigest": d1.as_str() }, { "imageDigest": d2.as_str() }]);
    let both = ecr(&d, &d.a, "DescribeImages", &json!({ "repositoryName": "team/app", "imageIds": ids })).await.ok();
    let tags: Vec<&Value> = both["imageDetails"].as_array().unwrap().iter().map(|i| &i["imageTags"]).collect();
    assert_eq!(tags, [&json!(["v1"]), &json!(["v2"])]);
    // DescribeImages of the pair finds nothing either.
    let pair_ids = json!([{ "imageDigest": d1.as_str(), "imageTag": "v2" }]);
    let described =
        ecr(&d, &d.a, "DescribeImages", &json!({ "repositoryName": "team/app", "imageIds": pair_ids })).await;
    assert_eq!(
        described.err(),
        (
            "ImageNotFoundException",
            format!(
                "The image with imageId {{imageDigest:'{d1}', imageTag:'v2'}} does not exist within the repository \
                 with name 'team/app' in the registry with id '{A}'"
            )
            .as_str()
        )
    );
    // By a tag or a digest alone, ECR's text names the other as null.
    for (id, shown) in [
        (json!({ "imageTag": "v9" }), "imageDigest:'null', imageTag:'v9'".to_owned()),
        (
            json!({ "imageDigest": sha256(b"none").as_str() }),
            format!("imageDigest:'{}', imageTag:'null'", sha256(b"none")),
        ),
    ] {
        let input = json!({ "repositoryName": "team/app", "imageIds": [id] });
        let missing = ecr(&d, &d.a, "DescribeImages", &input).await;
        assert_eq!(missing.err().0, "ImageNotFoundException");
        assert!(
            missing.err().1.starts_with(&format!("The image with imageId {{{shown}}} does not exist")),
            "{}",
            missing.body
        );
    }

    // A pair that matches deletes the image.
    let good = json!({ "repositoryName": "team/app", "imageIds": [{ "imageDigest": d1.as_str(), "imageTag": "v1" }] });
    let deleted = ecr(&d, &d.a, "BatchDeleteImage", &good).await.ok();
    assert_eq!(deleted["imageIds"], json!([{ "imageDigest": d1.as_str(), "imageTag": "v1" }]));
    assert_eq!(deleted["failures"], json!([]));

    // A repository that still holds an image is not deleted without force, in ECR's words.
    let refused = ecr(&d, &d.a, "DeleteRepository", &json!({ "repositoryName": "team/app" })).await;
    assert_eq!(
        refused.err(),
        (
            "RepositoryNotEmptyException",
            format!(
                "The repository with name 'team/app' in registry with id '{A}' cannot be deleted because it still \
                 contains images"
            )
            .as_str()
        )
    );
}

// --- tokens ----------------------------------------------------------------------------------

#[tokio::test]
async fn get_authorization_token_names_each_registry_host() {
    let d = door().await;
    let got = ecr(&d, &d.a, "GetAuthorizationToken", &json!({ "registryIds": [A, B] })).await.ok();
    let data = got["authorizationData"].as_array().unwrap();
    let endpoints: Vec<&str> = data.iter().map(|e| e["proxyEndpoint"].as_str().unwrap()).collect();
    assert_eq!(endpoints, [format!("http://{A}.reg.test:5000"), format!("http://{B}.reg.test:5000")]);
    // The token is the Basic credential AWS:<registry token>, made for the caller.
    let token = data[0]["authorizationToken"].as_str().unwrap();
    let plain = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(token).unwrap()).unwrap();
    let password = plain.strip_prefix("AWS:").unwrap();
    let claims = token_key().verify(password, std::time::SystemTime::now()).unwrap();
    assert_eq!((claims.account.as_str(), claims.principal.as_str()), (A, "arn:aws:iam::111122223333:user/berth-admin"));
    insta::assert_json_snapshot!("get_authorization_token", got, {
        ".authorizationData[].authorizationToken" => "[token]",
        ".authorizationData[].expiresAt" => "[expiresAt]",
    });

    let own = ecr(&d, &d.b, "GetAuthorizationToken", &json!({})).await.ok();
    assert_eq!(own["authorizationData"].as_array().unwrap().len(), 1);
    assert_eq!(own["authorizationData"][0]["proxyEndpoint"], format!("http://{B}.reg.test:5000"));
    let bad = ecr(&d, &d.a, "GetAuthorizationToken", &json!({ "registryIds": ["12345"] })).await;
    assert_eq!(bad.err().0, "InvalidParameterException");
}

// --- policies ----------------------------------------------------------------------------------

#[tokio::test]
async fn lifecycle_policy_answers_always_carry_last_evaluated_at() {
    let d = door().await;
    ecr(&d, &d.a, "CreateRepository", &json!({ "repositoryName": "team/app" })).await.ok();
    let none = ecr(&d, &d.a, "GetLifecyclePolicy", &json!({ "repositoryName": "team/app" })).await;
    assert_eq!(
        none.err(),
        (
            "LifecyclePolicyNotFoundException",
            format!(
                "Lifecycle policy does not exist for the repository with name 'team/app' in the registry with id '{A}'"
            )
            .as_str()
        )
    );
    let text = json!({ "rules": [{
        "rulePriority": 1,
        "description": "expire untagged",
        "selection": { "tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1 },
        "action": { "type": "expire" },
    }] })
    .to_string();
    let put = json!({ "repositoryName": "team/app", "lifecyclePolicyText": text });
    ecr(&d, &d.a, "PutLifecyclePolicy", &put).await.ok();
    // Never evaluated yet: ECR gives the epoch.
    let got = ecr(&d, &d.a, "GetLifecyclePolicy", &json!({ "repositoryName": "team/app" })).await.ok();
    assert_eq!(got["lastEvaluatedAt"], json!(0.0));
    insta::assert_json_snapshot!("get_lifecycle_policy", got);

    let repo = RepositoryKey::new(AccountId::parse(A).unwrap(), RepositoryName::parse("team/app").unwrap());
    d.registry.lifecycle.run(&repo).await.unwrap();
    let after = ecr(&d, &d.a, "GetLifecyclePolicy", &json!({ "repositoryName": "team/app" })).await.ok();
    assert!(after["lastEvaluatedAt"].as_f64().unwrap() > 0.0, "{after}");
    let deleted = ecr(&d, &d.a, "DeleteLifecyclePolicy", &json!({ "repositoryName": "team/app" })).await.ok();
    assert_eq!(deleted["lastEvaluatedAt"], after["lastEvaluatedAt"]);
    assert_eq!(deleted["lifecyclePolicyText"], text.as_str());
}

#[tokio::test]
async fn missing_policies_are_named_in_ecr_words() {
    let d = door().await;
    ecr(&d, &d.a, "CreateRepository", &json!({ "repositoryName": "team/app" })).await.ok();
    let repo_policy = ecr(&d, &d.a, "GetRepositoryPolicy", &json!({ "repositoryName": "team/app" })).await;
    assert_eq!(
        repo_policy.err(),
        (
            "RepositoryPolicyNotFoundException",
            format!(
                "Repository policy does not exist for the repository with name 'team/app' in the registry with id \
                 '{A}'"
            )
            .as_str()
        )
    );
    let registry_policy = ecr(&d, &d.b, "GetRegistryPolicy", &json!({})).await;
    assert_eq!(
        registry_policy.err(),
        (
            "RegistryPolicyNotFoundException",
            format!("Registry policy does not exist in the registry with id '{B}'").as_str()
        )
    );
}

// --- the envelope -------------------------------------------------------------------------------

#[tokio::test]
async fn unsigned_badly_signed_and_unknown_calls_are_refused_in_aws_shape() {
    let d = door().await;
    let unsigned = Request::builder()
        .method("POST")
        .uri("/")
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories")
        .header("content-length", "2")
        .body(Body::from("{}"))
        .unwrap();
    let a = read(d.app.clone().oneshot(unsigned).await.unwrap()).await;
    assert_eq!((a.status, a.err().0), (StatusCode::FORBIDDEN, "MissingAuthenticationTokenException"));

    let wrong = Key { id: d.a.id.clone(), secret: "not the secret".into() };
    let a = ecr(&d, &wrong, "DescribeRepositories", &json!({})).await;
    assert_eq!((a.status, a.err().0), (StatusCode::FORBIDDEN, "InvalidSignatureException"));

    let a = ecr(&d, &d.a, "NoSuchOperation", &json!({})).await;
    assert_eq!(a.err().0, "UnknownOperationException");
}
