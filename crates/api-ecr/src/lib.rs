//! The Amazon ECR API front door (AWS JSON 1.1): `POST /` with
//! `X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.<Operation>`, signed with SigV4.
//!
//! Each request is verified, decoded into the generated model type, turned into one core call
//! and answered in the model's output shape. Errors use AWS's shape: a JSON body
//! `{"__type": ..., "message": ...}` with `x-amzn-ErrorType` and `x-amzn-RequestId`.

mod error;
pub mod intake;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use berth_auth::{Credential, Verifier};
use berth_ecr_model::ecr::{self, EcrOp, EcrRequest};
use berth_ecr_model::{DecodeError, EpochSeconds};
use berth_registry::{
    Action, Caller, ImageRecord, Origin, Principal, Registry, RepositoryRecord, RepositorySettings, TagStatus,
};
use berth_types::{Digest, PageRequest, Reference, RepositoryName, Tag, UploadId};
use http::{HeaderValue, header};
use sha2::{Digest as _, Sha256};
use tracing::Instrument;

pub use error::EcrError;

/// Clock skew allowed between a signature's date and the server (ECR's own limit).
const MAX_SKEW: Duration = Duration::from_secs(15 * 60);
const REQUEST_ID: &str = "x-amzn-RequestId";

/// What the ECR API needs besides the core.
pub struct EcrApi {
    pub registry: Arc<Registry>,
    /// The region this server answers as (`us-east-1` by default).
    pub region: String,
    /// The 12-digit account id of the registry (`registryId`).
    pub account: String,
    /// `host:port` clients reach this server at, for `repositoryUri`.
    pub registry_host: String,
    /// The key registry tokens are made with (`GetAuthorizationToken`).
    pub token_key: berth_auth::TokenKey,
    /// How request bodies are let in (size, memory budget, time).
    pub intake: intake::Intake,
}

/// Whether `name` is an operation of the ECR API (the names request rates are configured by).
#[must_use]
pub fn is_operation(name: &str) -> bool {
    EcrOp::ALL.iter().any(|op| op.name() == name)
}

/// The `POST /` route.
pub fn router(api: Arc<EcrApi>) -> Router {
    Router::new().route("/", post(handle).fallback(other_method)).with_state(api)
}

/// Any method but POST on the ECR endpoint: refused in AWS's error shape.
async fn other_method() -> Response {
    let e = EcrError {
        code: "UnknownOperationException",
        message: "the ECR API takes POST / with an X-Amz-Target header".into(),
        status: http::StatusCode::METHOD_NOT_ALLOWED,
    };
    with_request_id(e.into_response())
}

async fn handle(State(api): State<Arc<EcrApi>>, req: Request) -> Response {
    let resp = match serve(&api, req).await {
        Ok(body) => {
            let mut r = Response::new(Body::from(body));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-amz-json-1.1"));
            r
        }
        Err(e) => e.into_response(),
    };
    with_request_id(resp)
}

fn with_request_id(mut resp: Response) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}

async fn serve(api: &EcrApi, req: Request) -> Result<Vec<u8>, EcrError> {
    let (parts, body) = req.into_parts();
    // Everything the headers can tell is checked before a byte of the body is read.
    let len = intake::Intake::declared_length(&parts.headers)?;
    let key = preauthenticate(api, &parts).await?;
    let admitted = api.intake.admit(len, body).await?;
    let body = &admitted.bytes;
    let caller = authenticate(&parts, &key, body)?;
    let target = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
    let op = EcrOp::from_target(target)
        .ok_or_else(|| EcrError::new("UnknownOperationException", format!("unknown operation {target:?}")))?;
    api.registry.throttle(&caller, op.name()).map_err(EcrError::from)?;
    let request = EcrRequest::decode(op, body).map_err(|e| match e {
        DecodeError::Serialization(m) => EcrError::new("SerializationException", m),
        DecodeError::Validation(v) => EcrError::new("InvalidParameterException", v.invalid_parameter_message()),
    })?;
    dispatch(api, &caller, request).instrument(tracing::debug_span!("ecr", op = op.name())).await
}

/// What the headers alone prove: a well-formed signature in the right scope and time, by an
/// access key that exists (its credential, for the one signature check once the body is in).
struct Presented {
    signature: berth_auth::Presented,
    credential: Credential,
}

fn verifier(api: &EcrApi) -> Verifier {
    Verifier::new(api.region.clone(), "ecr").with_max_skew(MAX_SKEW)
}

async fn preauthenticate(api: &EcrApi, parts: &http::request::Parts) -> Result<Presented, EcrError> {
    let headers: Vec<(&str, &[u8])> = parts.headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())).collect();
    let head = berth_auth::RequestHead {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
    };
    let signature = verifier(api).parse(&head, SystemTime::now()).map_err(EcrError::from)?;
    match api.registry.credential(signature.access_key_id()).await.map_err(EcrError::from)? {
        Some(credential) => Ok(Presented { signature, credential }),
        None => Err(EcrError::from(berth_auth::Error::UnknownKey)),
    }
}

fn authenticate(parts: &http::request::Parts, key: &Presented, body: &[u8]) -> Result<Caller, EcrError> {
    let body_sha256 = hex::encode(Sha256::digest(body));
    let verified = key.signature.verify(&key.credential, &body_sha256).map_err(EcrError::from)?;
    let origin = Origin {
        ip: parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip()),
        secure: parts.extensions.get::<berth_http_util::Tls>().is_some(),
    };
    Principal::from_arn(&verified.principal, origin)
        .map(Caller::Principal)
        .ok_or_else(|| EcrError::from(berth_registry::Error::Internal("credential names no IAM principal".into())))
}

fn json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, EcrError> {
    serde_json::to_vec(v).map_err(|e| EcrError::from(berth_registry::Error::Internal(Box::new(e))))
}

fn repo_name(s: &str) -> Result<RepositoryName, EcrError> {
    RepositoryName::parse(s).map_err(|e| {
        EcrError::new(
            "InvalidParameterException",
            format!("Invalid parameter at 'repositoryName' failed to satisfy constraint: '{e}'"),
        )
    })
}

/// The registry (account) a repository operation acts in: the repository's owner. A
/// `registryId` naming another account finds no such repository, as in ECR where each account
/// has its own registry.
async fn scope(
    reg: &Registry,
    caller: &Caller,
    id: Option<&String>,
    repo: &RepositoryName,
) -> Result<String, EcrError> {
    let owner = reg.registry_of(caller, repo).await?;
    match id {
        Some(id) if id != &owner => Err(berth_registry::Error::RepositoryNotFound(repo.clone()).into()),
        _ => Ok(owner),
    }
}

/// The registry id a registry-level request names must be the caller's own.
fn own_registry(reg: &Registry, caller: &Caller, id: Option<&String>) -> Result<String, EcrError> {
    let own = reg.account_of(caller);
    match id {
        Some(id) if id != own => Err(EcrError::new(
            "InvalidParameterException",
            format!("Invalid parameter at 'registryId': a caller of account {own} may not act on registry {id}"),
        )),
        _ => Ok(own.to_owned()),
    }
}

fn repository(api: &EcrApi, r: &RepositoryRecord) -> ecr::Repository {
    let owner = r.settings.owner.as_deref().unwrap_or(&api.account);
    ecr::Repository {
        created_at: Some(EpochSeconds::from_unix_millis(r.created_at)),
        encryption_configuration: Some(ecr::EncryptionConfiguration {
            encryption_type: r.settings.encryption_type.as_str().into(),
            kms_key: r.settings.kms_key.clone(),
        }),
        image_scanning_configuration: Some(ecr::ImageScanningConfiguration {
            scan_on_push: Some(r.settings.scan_on_push),
        }),
        image_tag_mutability: Some(r.settings.tag_mutability.as_str().into()),
        image_tag_mutability_exclusion_filters: exclusion_filters_out(&r.settings),
        registry_id: Some(owner.to_owned()),
        repository_arn: Some(format!("arn:aws:ecr:{}:{owner}:repository/{}", api.region, r.name)),
        repository_name: Some(r.name.to_string()),
        repository_uri: Some(format!("{}/{}", api.registry_host, r.name)),
    }
}

fn exclusion_filters(filters: Option<&[ecr::ImageTagMutabilityExclusionFilter]>) -> Vec<String> {
    filters.unwrap_or_default().iter().map(|f| f.filter.clone()).collect()
}

fn exclusion_filters_out(s: &RepositorySettings) -> Option<Vec<ecr::ImageTagMutabilityExclusionFilter>> {
    (!s.tag_mutability_exclusions.is_empty()).then(|| {
        s.tag_mutability_exclusions
            .iter()
            .map(|f| ecr::ImageTagMutabilityExclusionFilter {
                filter: f.clone(),
                filter_type: ecr::ImageTagMutabilityExclusionFilterType::Wildcard,
            })
            .collect()
    })
}

fn tag_status(s: Option<&ecr::TagStatus>) -> TagStatus {
    match s {
        Some(ecr::TagStatus::Tagged) => TagStatus::Tagged,
        Some(ecr::TagStatus::Untagged) => TagStatus::Untagged,
        _ => TagStatus::Any,
    }
}

fn page_request(max_results: Option<i32>, next_token: Option<String>) -> PageRequest {
    let limit = usize::try_from(max_results.unwrap_or(100)).unwrap_or(100).max(1);
    PageRequest { limit: Some(limit), after: next_token }
}

fn id(digest: &Digest, tag: Option<&str>) -> ecr::ImageIdentifier {
    ecr::ImageIdentifier { image_digest: Some(digest.to_string()), image_tag: tag.map(str::to_owned) }
}

fn failure(image_id: &ecr::ImageIdentifier, code: ecr::ImageFailureCode, reason: &str) -> ecr::ImageFailure {
    ecr::ImageFailure {
        failure_code: Some(code),
        failure_reason: Some(reason.to_owned()),
        image_id: Some(image_id.clone()),
    }
}

/// The reference an `ImageIdentifier` names (its digest when it has one), or ECR's failure.
/// The tag of an image id that names a digest too (the digest's image must carry it).
fn paired_tag(i: &ecr::ImageIdentifier) -> Result<Option<Tag>, ecr::ImageFailure> {
    match (&i.image_digest, &i.image_tag) {
        (Some(_), Some(t)) => Tag::parse(t).map(Some).map_err(|_| {
            failure(i, ecr::ImageFailureCode::InvalidImageTag, "Invalid request parameters: image tag is not valid")
        }),
        _ => Ok(None),
    }
}

fn reference(i: &ecr::ImageIdentifier) -> Result<Reference, ecr::ImageFailure> {
    match (&i.image_digest, &i.image_tag) {
        (Some(d), _) => Digest::parse(d).map(Reference::Digest).map_err(|_| {
            failure(
                i,
                ecr::ImageFailureCode::InvalidImageDigest,
                "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'",
            )
        }),
        (None, Some(t)) => Tag::parse(t).map(Reference::Tag).map_err(|_| {
            failure(i, ecr::ImageFailureCode::InvalidImageTag, "Invalid request parameters: image tag is not valid")
        }),
        (None, None) => Err(failure(
            i,
            ecr::ImageFailureCode::MissingDigestAndTag,
            "Invalid request parameters: both tag and digest cannot be null",
        )),
    }
}

fn image_detail(registry: &str, repo: &RepositoryName, i: &ImageRecord) -> ecr::ImageDetail {
    ecr::ImageDetail {
        artifact_media_type: i.artifact_type.clone(),
        image_digest: Some(i.digest.to_string()),
        image_manifest_media_type: Some(i.media_type.clone()),
        image_pushed_at: Some(EpochSeconds::from_unix_millis(i.pushed_at)),
        image_scan_findings_summary: None,
        image_scan_status: None,
        image_size_in_bytes: Some(i64::try_from(i.size).unwrap_or(i64::MAX)),
        image_status: None,
        image_tags: (!i.tags.is_empty()).then(|| i.tags.iter().map(ToString::to_string).collect()),
        last_activated_at: None,
        last_archived_at: None,
        last_recorded_pull_time: i.last_pulled_at.map(EpochSeconds::from_unix_millis),
        registry_id: Some(registry.to_owned()),
        repository_name: Some(repo.to_string()),
        subject_manifest_digest: None,
    }
}

/// The part size ECR tells clients to upload in.
const PART_SIZE: i64 = 20 * 1024 * 1024;

fn upload_id(s: &str) -> Result<UploadId, EcrError> {
    UploadId::parse(s).map_err(|_| EcrError::new("UploadNotFoundException", format!("upload {s} does not exist")))
}

fn layer_digest(s: &str) -> Result<Digest, EcrError> {
    Digest::parse(s)
        .map_err(|e| EcrError::new("InvalidParameterException", format!("Invalid parameter at 'layerDigest': {e}")))
}

/// The account and repository a repository ARN of this region names.
fn repository_arn(api: &EcrApi, arn: &str) -> Result<(String, RepositoryName), EcrError> {
    let bad = || {
        EcrError::new(
            "InvalidParameterException",
            format!("Invalid parameter at 'resourceArn': {arn:?} is not a repository ARN of this registry"),
        )
    };
    let rest = arn.strip_prefix("arn:aws:ecr:").ok_or_else(bad)?;
    let mut parts = rest.splitn(3, ':');
    let (Some(region), Some(account), Some(resource)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    if region != api.region || account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let name = resource.strip_prefix("repository/").ok_or_else(bad)?;
    Ok((account.to_owned(), repo_name(name)?))
}

fn resource_tags(tags: &[ecr::Tag]) -> Result<Vec<(String, String)>, EcrError> {
    tags.iter()
        .map(|t| {
            if t.key.starts_with("aws:") {
                Err(EcrError::new(
                    "InvalidTagParameterException",
                    format!("tag keys may not start with 'aws:' ({})", t.key),
                ))
            } else {
                Ok((t.key.clone(), t.value.clone()))
            }
        })
        .collect()
}

fn tag_list(tags: Vec<(String, String)>) -> Vec<ecr::Tag> {
    tags.into_iter().map(|(key, value)| ecr::Tag { key, value }).collect()
}

async fn dispatch(api: &EcrApi, caller: &Caller, request: EcrRequest) -> Result<Vec<u8>, EcrError> {
    let reg = &api.registry;
    match request {
        EcrRequest::CreateRepository(i) => {
            let name = repo_name(&i.repository_name)?;
            own_registry(reg, caller, i.registry_id.as_ref())?;
            let defaults = RepositorySettings::default();
            let settings = RepositorySettings {
                tag_mutability: i.image_tag_mutability.map_or(defaults.tag_mutability, |m| m.as_str().to_owned()),
                tag_mutability_exclusions: exclusion_filters(i.image_tag_mutability_exclusion_filters.as_deref()),
                scan_on_push: i.image_scanning_configuration.and_then(|c| c.scan_on_push).unwrap_or(false),
                encryption_type: i
                    .encryption_configuration
                    .as_ref()
                    .map_or(defaults.encryption_type, |e| e.encryption_type.as_str().to_owned()),
                kms_key: i.encryption_configuration.and_then(|e| e.kms_key),
                owner: None,
            };
            let tags = resource_tags(i.tags.as_deref().unwrap_or_default())?;
            let record = reg.repository_create(caller, &name, &settings, &tags).await?;
            json(&ecr::CreateRepositoryResponse { repository: Some(repository(api, &record)) })
        }
        EcrRequest::DescribeRepositories(i) => {
            let names = i
                .repository_names
                .as_ref()
                .map(|n| n.iter().map(|s| repo_name(s)).collect::<Result<Vec<_>, _>>())
                .transpose()?;
            if names.is_some() && (i.next_token.is_some() || i.max_results.is_some()) {
                return Err(EcrError::new(
                    "InvalidParameterException",
                    "Invalid parameter: maxResults and nextToken cannot be used with repositoryNames",
                ));
            }
            let limit = usize::try_from(i.max_results.unwrap_or(100)).unwrap_or(100);
            let page = PageRequest { limit: Some(limit), after: i.next_token.clone() };
            let result = reg.repository_describe(caller, i.registry_id.as_deref(), names.as_deref(), &page).await?;
            json(&ecr::DescribeRepositoriesResponse {
                next_token: result.next,
                repositories: Some(result.items.iter().map(|r| repository(api, r)).collect()),
            })
        }
        EcrRequest::DeleteRepository(i) => {
            let name = repo_name(&i.repository_name)?;
            scope(reg, caller, i.registry_id.as_ref(), &name).await?;
            let record = reg.repository_delete(caller, &name, i.force.unwrap_or(false)).await?;
            json(&ecr::DeleteRepositoryResponse { repository: Some(repository(api, &record)) })
        }
        EcrRequest::GetAuthorizationToken(_) => {
            // The token speaks for the caller and carries its rights, no more.
            reg.authorize(caller, Action::GetAuthorizationToken, berth_registry::Target::Registry, &[]).await?;
            let Caller::Principal(p) = caller else {
                return Err(EcrError::new("UnrecognizedClientException", "registry tokens need a signed request"));
            };
            let expires = SystemTime::now() + berth_auth::TOKEN_TTL;
            let password = api.token_key.mint(&p.account, &p.arn, expires);
            let token = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{password}"));
            let ms = expires.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
            json(&ecr::GetAuthorizationTokenResponse {
                authorization_data: Some(vec![ecr::AuthorizationData {
                    authorization_token: Some(token),
                    expires_at: Some(EpochSeconds::from_unix_millis(i64::try_from(ms).unwrap_or(i64::MAX))),
                    proxy_endpoint: Some(format!("http://{}", api.registry_host)),
                }]),
            })
        }
        EcrRequest::ListImages(i) => {
            let repo = repo_name(&i.repository_name)?;
            scope(reg, caller, i.registry_id.as_ref(), &repo).await?;
            let status = tag_status(i.filter.as_ref().and_then(|f| f.tag_status.as_ref()));
            let page = reg
                .images(caller, Action::ListImages, &repo, status, &page_request(i.max_results, i.next_token))
                .await?;
            let mut ids = Vec::new();
            for image in &page.items {
                if image.tags.is_empty() {
                    ids.push(id(&image.digest, None));
                }
                ids.extend(image.tags.iter().map(|t| id(&image.digest, Some(t.as_str()))));
            }
            json(&ecr::ListImagesResponse { image_ids: Some(ids), next_token: page.next })
        }
        EcrRequest::DescribeImages(i) => {
            let repo = repo_name(&i.repository_name)?;
            let registry = scope(reg, caller, i.registry_id.as_ref(), &repo).await?;
            let (details, next) = match &i.image_ids {
                Some(ids) => {
                    let mut details = Vec::with_capacity(ids.len());
                    for image_id in ids {
                        let invalid = |f: ecr::ImageFailure| {
                            EcrError::new("InvalidParameterException", f.failure_reason.unwrap_or_default())
                        };
                        let r = reference(image_id).map_err(invalid)?;
                        let tag = paired_tag(image_id).map_err(invalid)?;
                        details.push(image_detail(
                            &registry,
                            &repo,
                            &reg.image(caller, Action::DescribeImages, &repo, &r, tag.as_ref()).await?,
                        ));
                    }
                    (details, None)
                }
                None => {
                    let status = tag_status(i.filter.as_ref().and_then(|f| f.tag_status.as_ref()));
                    let page = reg
                        .images(
                            caller,
                            Action::DescribeImages,
                            &repo,
                            status,
                            &page_request(i.max_results, i.next_token.clone()),
                        )
                        .await?;
                    (page.items.iter().map(|im| image_detail(&registry, &repo, im)).collect(), page.next)
                }
            };
            json(&ecr::DescribeImagesResponse { image_details: Some(details), next_token: next })
        }
        EcrRequest::BatchGetImage(i) => {
            let repo = repo_name(&i.repository_name)?;
            let registry = scope(reg, caller, i.registry_id.as_ref(), &repo).await?;
            reg.repository_check(caller, &repo, Action::BatchGetImage).await?;
            let (mut images, mut failures) = (Vec::new(), Vec::new());
            for image_id in &i.image_ids {
                let r = match reference(image_id) {
                    Ok(r) => r,
                    Err(f) => {
                        failures.push(f);
                        continue;
                    }
                };
                let m = match reg.manifest_get(caller, &repo, &r).await {
                    Ok(m) => m,
                    Err(berth_registry::Error::ImageNotFound { .. }) => {
                        failures.push(failure(
                            image_id,
                            ecr::ImageFailureCode::ImageNotFound,
                            "Requested image not found",
                        ));
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                if let (Some(tag), Reference::Digest(_)) = (&image_id.image_tag, &r) {
                    let tagged = reg
                        .image(caller, Action::BatchGetImage, &repo, &Reference::Digest(m.digest.clone()), None)
                        .await?;
                    if !tagged.tags.iter().any(|t| t.as_str() == tag) {
                        failures.push(failure(
                            image_id,
                            ecr::ImageFailureCode::ImageTagDoesNotMatchDigest,
                            "Invalid request parameters: given tag and digest do not match",
                        ));
                        continue;
                    }
                }
                if let Some(accepted) = &i.accepted_media_types
                    && !accepted.iter().any(|a| a == &m.media_type)
                {
                    failures.push(failure(
                        image_id,
                        ecr::ImageFailureCode::Unknown("UnsupportedImageType".into()),
                        &format!("The image is {}, which acceptedMediaTypes does not include", m.media_type),
                    ));
                    continue;
                }
                images.push(ecr::Image {
                    image_id: Some(id(&m.digest, image_id.image_tag.as_deref())),
                    image_manifest: Some(String::from_utf8_lossy(&m.payload).into_owned()),
                    image_manifest_media_type: Some(m.media_type.clone()),
                    registry_id: Some(registry.clone()),
                    repository_name: Some(repo.to_string()),
                });
            }
            json(&ecr::BatchGetImageResponse { failures: Some(failures), images: Some(images) })
        }
        EcrRequest::BatchDeleteImage(i) => {
            let repo = repo_name(&i.repository_name)?;
            scope(reg, caller, i.registry_id.as_ref(), &repo).await?;
            reg.repository_check(caller, &repo, Action::BatchDeleteImage).await?;
            let (mut deleted, mut failures) = (Vec::new(), Vec::new());
            for image_id in &i.image_ids {
                let (r, tag) = match reference(image_id).and_then(|r| Ok((r, paired_tag(image_id)?))) {
                    Ok(pair) => pair,
                    Err(f) => {
                        failures.push(f);
                        continue;
                    }
                };
                match reg.image_delete(caller, &repo, &r, tag.as_ref()).await {
                    Ok(digest) => deleted.push(id(&digest, image_id.image_tag.as_deref())),
                    Err(berth_registry::Error::ImageNotFound { .. }) => {
                        failures.push(failure(
                            image_id,
                            ecr::ImageFailureCode::ImageNotFound,
                            "Requested image not found",
                        ));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            json(&ecr::BatchDeleteImageResponse { failures: Some(failures), image_ids: Some(deleted) })
        }
        EcrRequest::PutImage(i) => {
            let repo = repo_name(&i.repository_name)?;
            let registry = scope(reg, caller, i.registry_id.as_ref(), &repo).await?;
            let tag = i.image_tag.as_deref().map(Tag::parse).transpose().map_err(|e| {
                EcrError::new("InvalidParameterException", format!("Invalid parameter at 'imageTag': {e}"))
            })?;
            let manifest = i.image_manifest.into_bytes();
            let put = reg
                .image_put(
                    caller,
                    &repo,
                    manifest.clone().into(),
                    i.image_manifest_media_type.as_deref(),
                    tag.as_ref(),
                    i.image_digest.as_deref(),
                )
                .await?;
            let stored =
                reg.image(caller, Action::PutImage, &repo, &Reference::Digest(put.digest.clone()), None).await?;
            json(&ecr::PutImageResponse {
                image: Some(ecr::Image {
                    image_id: Some(id(&put.digest, tag.as_ref().map(Tag::as_str))),
                    image_manifest: Some(String::from_utf8_lossy(&manifest).into_owned()),
                    image_manifest_media_type: Some(stored.media_type.clone()),
                    registry_id: Some(registry.clone()),
                    repository_name: Some(repo.to_string()),
                }),
            })
        }
        EcrRequest::PutImageTagMutability(i) => {
            let repo = repo_name(&i.repository_name)?;
            let registry = scope(reg, caller, i.registry_id.as_ref(), &repo).await?;
            let filters = exclusion_filters(i.image_tag_mutability_exclusion_filters.as_deref());
            let record =
                reg.repository_set_tag_mutability(caller, &repo, i.image_tag_mutability.as_str(), &filters).await?;
            json(&ecr::PutImageTagMutabilityResponse {
                image_tag_mutability: Some(record.settings.tag_mutability.as_str().into()),
                image_tag_mutability_exclusion_filters: exclusion_filters_out(&record.settings),
                registry_id: Some(registry.clone()),
                repository_name: Some(repo.to_string()),
            })
        }
        EcrRequest::BatchCheckLayerAvailability(i) => {
            let repo = repo_name(&i.repository_name)?;
            scope(reg, caller, i.registry_id.as_ref(), &repo).await?;
            reg.repository_check(caller, &repo, Action::BatchCheckLayerAvailability).await?;
            let (mut layers, mut failures) = (Vec::new(), Vec::new());
            for d in &i.layer_digests {
                let fail = |code, reason: &str| ecr::LayerFailure {
                    failure_code: Some(code),
                    failure_reason: Some(reason.to_owned()),
                    layer_digest: Some(d.clone()),
                };
                let Ok(digest) = Digest::parse(d) else {
                    failures.push(fail(ecr::LayerFailureCode::InvalidLayerDigest, "Invalid layer digest"));
                    continue;
                };
                match reg.blob_stat(caller, &repo, &digest).await {
                    Ok(size) => layers.push(ecr::Layer {
                        layer_availability: Some(ecr::LayerAvailability::Available),
                        layer_digest: Some(d.clone()),
                        layer_size: Some(i64::try_from(size).unwrap_or(i64::MAX)),
                        media_type: None,
                    }),
                    Err(berth_registry::Error::BlobNotFound(_) | berth_registry::Error::BlobDamaged(_)) => {
                        failures.push(fail(ecr::LayerFailureCode::MissingLayerDigest, "Could not find layer"));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            json(&ecr::BatchCheckLayerAvailabilityResponse { failures: Some(failures), layers: Some(layers) })
        }
        EcrRequest::InitiateLayerUpload(i) => {
            let repo = repo_name(&i.repository_name)?;
            scope(reg, caller, i.registry_id.as_ref(), &repo).await?;
            let st = reg.upload_start(caller, &repo).await?;
            json(&ecr::InitiateLayerUploadResponse { part_size: Some(PART_SIZE), upload_id: Some(st.id.to_string()) })
        }
        EcrRequest::UploadLayerPart(i) => {
            let repo = repo_name(&i.repository_name)?;
            let registry = scope(reg, caller, i.registry_id.as_ref(), &repo).await?;
            let id = upload_id(&i.upload_id)?;
            let data = i.layer_part_blob.0;
            let (first, last) = (i.part_first_byte, i.part_last_byte);
            let expected_last = first + i64::try_from(data.len()).unwrap_or(i64::MAX) - 1;
            if data.is_empty() || last != expected_last {
                return Err(EcrError::new(
                    "InvalidLayerPartException",
                    format!("the part holds {} bytes, so partLastByte must be {expected_last}, not {last}", data.len()),
                ));
            }
            let start = u64::try_from(first)
                .map_err(|_| EcrError::new("InvalidLayerPartException", "partFirstByte must not be negative"))?;
            let body = berth_registry::single_chunk(data);
            let st = reg.upload_append(caller, &repo, &id, Some(start), body).await?;
            json(&ecr::UploadLayerPartResponse {
                last_byte_received: Some(i64::try_from(st.offset).unwrap_or(i64::MAX) - 1),
                registry_id: Some(registry.clone()),
                repository_name: Some(repo.to_string()),
                upload_id: Some(id.to_string()),
            })
        }
        EcrRequest::CompleteLayerUpload(i) => {
            let repo = repo_name(&i.repository_name)?;
            let registry = scope(reg, caller, i.registry_id.as_ref(), &repo).await?;
            let id = upload_id(&i.upload_id)?;
            let [d] = i.layer_digests.as_slice() else {
                return Err(EcrError::new("InvalidParameterException", "layerDigests must hold exactly one digest"));
            };
            let digest = layer_digest(d)?;
            let stored = reg.upload_complete_layer(caller, &repo, &id, &digest).await?;
            json(&ecr::CompleteLayerUploadResponse {
                layer_digest: Some(stored.to_string()),
                registry_id: Some(registry.clone()),
                repository_name: Some(repo.to_string()),
                upload_id: Some(id.to_string()),
            })
        }
        EcrRequest::GetDownloadUrlForLayer(i) => {
            let repo = repo_name(&i.repository_name)?;
            scope(reg, caller, i.registry_id.as_ref(), &repo).await?;
            let digest = layer_digest(&i.layer_digest)?;
            reg.repository_check(caller, &repo, Action::GetDownloadUrlForLayer).await?;
            reg.blob_read_check(caller, &repo, &digest).await?;
            let Caller::Principal(p) = caller else {
                return Err(EcrError::new("UnrecognizedClientException", "download URLs need a signed request"));
            };
            let path = format!("/v2/{repo}/blobs/{digest}");
            let query = api.token_key.sign_url(&path, &p.account, &p.arn, SystemTime::now() + berth_auth::URL_TTL);
            json(&ecr::GetDownloadUrlForLayerResponse {
                download_url: Some(format!("http://{}{path}?{query}", api.registry_host)),
                layer_digest: Some(digest.to_string()),
            })
        }
        EcrRequest::TagResource(i) => {
            let (account, repo) = repository_arn(api, &i.resource_arn)?;
            scope(reg, caller, Some(&account), &repo).await?;
            reg.repository_tags(caller, &repo, &resource_tags(&i.tags)?, &[]).await?;
            json(&ecr::TagResourceResponse {})
        }
        EcrRequest::UntagResource(i) => {
            let (account, repo) = repository_arn(api, &i.resource_arn)?;
            scope(reg, caller, Some(&account), &repo).await?;
            reg.repository_tags(caller, &repo, &[], &i.tag_keys).await?;
            json(&ecr::UntagResourceResponse {})
        }
        EcrRequest::ListTagsForResource(i) => {
            let (account, repo) = repository_arn(api, &i.resource_arn)?;
            scope(reg, caller, Some(&account), &repo).await?;
            let tags = reg.repository_tags(caller, &repo, &[], &[]).await?;
            json(&ecr::ListTagsForResourceResponse { tags: Some(tag_list(tags)) })
        }
        EcrRequest::PutImageScanningConfiguration(i) => {
            let repo = repo_name(&i.repository_name)?;
            let registry = scope(reg, caller, i.registry_id.as_ref(), &repo).await?;
            let on = i.image_scanning_configuration.scan_on_push.unwrap_or(false);
            let record = reg.repository_set_scan_on_push(caller, &repo, on).await?;
            json(&ecr::PutImageScanningConfigurationResponse {
                image_scanning_configuration: Some(ecr::ImageScanningConfiguration {
                    scan_on_push: Some(record.settings.scan_on_push),
                }),
                registry_id: Some(registry.clone()),
                repository_name: Some(repo.to_string()),
            })
        }
        EcrRequest::DescribeRegistry(_) => {
            reg.registry_describe(caller).await?;
            json(&ecr::DescribeRegistryResponse {
                registry_id: Some(reg.account_of(caller).to_owned()),
                replication_configuration: Some(ecr::ReplicationConfiguration { rules: Vec::new() }),
            })
        }
        EcrRequest::SetRepositoryPolicy(i) => {
            let repo = repo_name(&i.repository_name)?;
            let registry = scope(reg, caller, i.registry_id.as_ref(), &repo).await?;
            reg.repository_policy_set(caller, &repo, &i.policy_text).await?;
            json(&ecr::SetRepositoryPolicyResponse {
                policy_text: Some(i.policy_text),
                registry_id: Some(registry),
                repository_name: Some(repo.to_string()),
            })
        }
        EcrRequest::GetRepositoryPolicy(i) => {
            let repo = repo_name(&i.repository_name)?;
            let registry = scope(reg, caller, i.registry_id.as_ref(), &repo).await?;
            let text = reg.repository_policy_get(caller, &repo).await?;
            json(&ecr::GetRepositoryPolicyResponse {
                policy_text: Some(text),
                registry_id: Some(registry),
                repository_name: Some(repo.to_string()),
            })
        }
        EcrRequest::DeleteRepositoryPolicy(i) => {
            let repo = repo_name(&i.repository_name)?;
            let registry = scope(reg, caller, i.registry_id.as_ref(), &repo).await?;
            let text = reg.repository_policy_delete(caller, &repo).await?;
            json(&ecr::DeleteRepositoryPolicyResponse {
                policy_text: Some(text),
                registry_id: Some(registry),
                repository_name: Some(repo.to_string()),
            })
        }
        EcrRequest::PutRegistryPolicy(i) => {
            let account = reg.registry_policy_put(caller, &i.policy_text).await?;
            json(&ecr::PutRegistryPolicyResponse { policy_text: Some(i.policy_text), registry_id: Some(account) })
        }
        EcrRequest::GetRegistryPolicy(_) => {
            let (text, account) = reg.registry_policy_get(caller).await?;
            json(&ecr::GetRegistryPolicyResponse { policy_text: Some(text), registry_id: Some(account) })
        }
        EcrRequest::DeleteRegistryPolicy(_) => {
            let (text, account) = reg.registry_policy_delete(caller).await?;
            json(&ecr::DeleteRegistryPolicyResponse { policy_text: Some(text), registry_id: Some(account) })
        }
        EcrRequest::PutLifecyclePolicy(i) => {
            let repo = repo_name(&i.repository_name)?;
            let registry = scope(reg, caller, i.registry_id.as_ref(), &repo).await?;
            reg.lifecycle_policy_put(caller, &repo, &i.lifecycle_policy_text).await?;
            json(&ecr::PutLifecyclePolicyResponse {
                lifecycle_policy_text: Some(i.lifecycle_policy_text),
                registry_id: Some(registry),
                repository_name: Some(repo.to_string()),
            })
        }
        EcrRequest::GetLifecyclePolicy(i) => {
            let repo = repo_name(&i.repository_name)?;
            let registry = scope(reg, caller, i.registry_id.as_ref(), &repo).await?;
            let (text, evaluated) = reg.lifecycle_policy_get(caller, &repo).await?;
            json(&ecr::GetLifecyclePolicyResponse {
                last_evaluated_at: evaluated.map(EpochSeconds::from_unix_millis),
                lifecycle_policy_text: Some(text),
                registry_id: Some(registry),
                repository_name: Some(repo.to_string()),
            })
        }
        EcrRequest::DeleteLifecyclePolicy(i) => {
            let repo = repo_name(&i.repository_name)?;
            let registry = scope(reg, caller, i.registry_id.as_ref(), &repo).await?;
            let (text, evaluated) = reg.lifecycle_policy_delete(caller, &repo).await?;
            json(&ecr::DeleteLifecyclePolicyResponse {
                last_evaluated_at: evaluated.map(EpochSeconds::from_unix_millis),
                lifecycle_policy_text: Some(text),
                registry_id: Some(registry),
                repository_name: Some(repo.to_string()),
            })
        }
        EcrRequest::StartLifecyclePolicyPreview(i) => {
            let repo = repo_name(&i.repository_name)?;
            let registry = scope(reg, caller, i.registry_id.as_ref(), &repo).await?;
            let text = reg.lifecycle_preview_start(caller, &repo, i.lifecycle_policy_text.as_deref()).await?;
            json(&ecr::StartLifecyclePolicyPreviewResponse {
                lifecycle_policy_text: Some(text),
                registry_id: Some(registry),
                repository_name: Some(repo.to_string()),
                status: Some(ecr::LifecyclePolicyPreviewStatus::InProgress),
            })
        }
        EcrRequest::GetLifecyclePolicyPreview(i) => {
            let repo = repo_name(&i.repository_name)?;
            let registry = scope(reg, caller, i.registry_id.as_ref(), &repo).await?;
            if i.image_ids.is_some() && (i.next_token.is_some() || i.max_results.is_some()) {
                return Err(EcrError::new(
                    "InvalidParameterException",
                    "Invalid parameter: maxResults and nextToken cannot be used with imageIds",
                ));
            }
            let preview = reg.lifecycle_preview_get(caller, &repo).await?;
            let status = tag_status(i.filter.as_ref().and_then(|f| f.tag_status.as_ref()));
            let wanted: Option<Vec<Reference>> =
                i.image_ids.as_ref().map(|ids| ids.iter().filter_map(|id| reference(id).ok()).collect());
            let mut results: Vec<_> = preview
                .expiring
                .iter()
                .filter(|e| match status {
                    TagStatus::Any => true,
                    TagStatus::Tagged => !e.image.tags.is_empty(),
                    TagStatus::Untagged => e.image.tags.is_empty(),
                })
                .filter(|e| {
                    wanted.as_ref().is_none_or(|w| {
                        w.iter().any(|r| match r {
                            Reference::Digest(d) => d == &e.image.digest,
                            Reference::Tag(t) => e.image.tags.contains(t),
                        })
                    })
                })
                .collect();
            // Pages by position in the preview's order; the token is the index to resume at.
            let start = match &i.next_token {
                Some(t) => t
                    .parse::<usize>()
                    .map_err(|_| EcrError::new("InvalidParameterException", "Invalid parameter at 'nextToken'"))?,
                None => 0,
            };
            let limit = usize::try_from(i.max_results.unwrap_or(100)).unwrap_or(100).max(1);
            let total = preview.expiring.len();
            let end = results.len().min(start.saturating_add(limit));
            let next_token = (end < results.len()).then(|| end.to_string());
            let page: Vec<_> = results.drain(start.min(end)..end).collect();
            json(&ecr::GetLifecyclePolicyPreviewResponse {
                lifecycle_policy_text: Some(preview.policy_text.clone()),
                next_token,
                preview_results: Some(
                    page.iter()
                        .map(|e| ecr::LifecyclePolicyPreviewResult {
                            action: Some(ecr::LifecyclePolicyRuleAction {
                                target_storage_class: None,
                                r#type: Some(ecr::ImageActionType::Expire),
                            }),
                            applied_rule_priority: Some(i32::try_from(e.rule_priority).unwrap_or(i32::MAX)),
                            image_digest: Some(e.image.digest.to_string()),
                            image_pushed_at: Some(EpochSeconds::from_unix_millis(e.image.pushed_at)),
                            image_tags: Some(e.image.tags.iter().map(ToString::to_string).collect()),
                            storage_class: None,
                        })
                        .collect(),
                ),
                registry_id: Some(registry),
                repository_name: Some(repo.to_string()),
                status: Some(ecr::LifecyclePolicyPreviewStatus::Complete),
                summary: Some(ecr::LifecyclePolicyPreviewSummary {
                    expiring_image_total_count: Some(i32::try_from(total).unwrap_or(i32::MAX)),
                    transitioning_image_total_counts: None,
                }),
            })
        }
        other => Err(EcrError::new(
            "UnknownOperationException",
            format!("Berth does not implement {} yet", other.op().name()),
        )),
    }
}
