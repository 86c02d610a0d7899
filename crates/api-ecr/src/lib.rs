//! The Amazon ECR API front door (AWS JSON 1.1): `POST /` with
//! `X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.<Operation>`, signed with SigV4.
//!
//! Each request is verified, decoded into the generated model type, turned into one core call
//! and answered in the model's output shape. Errors use AWS's shape: a JSON body
//! `{"__type": ..., "message": ...}` with `x-amzn-ErrorType` and `x-amzn-RequestId`.

mod error;
pub mod intake;
mod scanning;

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
    Action, Caller, DownloadLink, ImageId, ImageMiss, ImageRecord, LayerPart, Origin, PreviewQuery, Principal,
    Registry, RepositoryListing, RepositoryRecord, RepositorySettings, TagStatus,
};
use berth_types::{AccountId, Digest, PageRequest, RepositoryKey, RepositoryName, Tag, TagMutability, UploadId};
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
    /// `host:port` clients reach this server at, for `repositoryUri`.
    pub registry_host: String,
    /// With it, each account's registry is also reached at `<account>.<registry_domain>`, and
    /// that is the host `repositoryUri` and `proxyEndpoint` name.
    pub registry_domain: Option<String>,
    /// Whether clients reach this server over TLS (`https://` endpoints).
    pub tls: bool,
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
    let (version, had_body) = (req.version(), berth_http_util::early::has_body(req.headers()));
    let mut resp = match serve(&api, req).await {
        Ok(body) => {
            let mut r = Response::new(Body::from(body));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-amz-json-1.1"));
            r
        }
        Err(e) => e.into_response(),
    };
    // A refusal from the headers alone leaves the body unread.
    berth_http_util::early::close_after_error(version, had_body, &mut resp);
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
    match api.registry.tokens.credential(signature.access_key_id()).await.map_err(EcrError::from)? {
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

fn invalid(message: impl Into<String>) -> EcrError {
    EcrError::new("InvalidParameterException", message)
}

fn repo_name(s: &str) -> Result<RepositoryName, EcrError> {
    RepositoryName::parse(s)
        .map_err(|e| invalid(format!("Invalid parameter at 'repositoryName' failed to satisfy constraint: '{e}'")))
}

fn account(s: &str, field: &str) -> Result<AccountId, EcrError> {
    AccountId::parse(s)
        .map_err(|e| invalid(format!("Invalid parameter at '{field}' failed to satisfy constraint: '{e}'")))
}

/// The registry a request names (`registryId`), by default the caller's own.
fn registry(api: &EcrApi, caller: &Caller, id: Option<&String>) -> Result<AccountId, EcrError> {
    match id {
        Some(id) => account(id, "registryId"),
        None => Ok(api.registry.account_of(caller).clone()),
    }
}

/// The repository a request names: `repositoryName` in the registry `registryId` names.
fn key(api: &EcrApi, caller: &Caller, id: Option<&String>, name: &str) -> Result<RepositoryKey, EcrError> {
    Ok(RepositoryKey::new(registry(api, caller, id)?, repo_name(name)?))
}

impl EcrApi {
    fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }

    /// The host (and port) of an account's registry: `<account>.<registry_domain>` when a
    /// registry domain is configured, otherwise the one address this server answers at.
    #[must_use]
    pub fn host_of(&self, account: &AccountId) -> String {
        match &self.registry_domain {
            Some(domain) => {
                let port = self.registry_host.rsplit_once(':').map(|(_, p)| p).filter(|p| p.parse::<u16>().is_ok());
                match port {
                    Some(p) if !domain.contains(':') => format!("{account}.{domain}:{p}"),
                    _ => format!("{account}.{domain}"),
                }
            }
            None => self.registry_host.clone(),
        }
    }

    fn repository(&self, r: &RepositoryRecord) -> ecr::Repository {
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
            registry_id: Some(r.key.registry.to_string()),
            repository_arn: Some(self.registry.repository_arn(&r.key)),
            repository_name: Some(r.key.name.to_string()),
            repository_uri: Some(format!("{}/{}", self.host_of(&r.key.registry), r.key.name)),
        }
    }
}

/// The tag mutability a request sets: its mode and exclusion filters, under ECR's rules.
fn tag_mutability(
    mode: Option<&ecr::ImageTagMutability>,
    filters: Option<&[ecr::ImageTagMutabilityExclusionFilter]>,
) -> Result<TagMutability, EcrError> {
    let filters = filters.unwrap_or_default().iter().map(|f| f.filter.clone()).collect();
    TagMutability::parse(mode.map_or("MUTABLE", ecr::ImageTagMutability::as_str), filters)
        .map_err(|e| invalid(format!("Invalid parameter at 'imageTagMutability': {}", e.0)))
}

fn exclusion_filters_out(s: &RepositorySettings) -> Option<Vec<ecr::ImageTagMutabilityExclusionFilter>> {
    let filters = s.tag_mutability.exclusions();
    (!filters.is_empty()).then(|| {
        filters
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

/// The core's image id for a wire one, or ECR's failure for it.
fn image_id(i: &ecr::ImageIdentifier) -> Result<ImageId, ecr::ImageFailure> {
    let digest = |d: &str| {
        Digest::parse(d).map_err(|_| {
            failure(
                i,
                ecr::ImageFailureCode::InvalidImageDigest,
                "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'",
            )
        })
    };
    let tag = |t: &str| {
        Tag::parse(t).map_err(|_| {
            failure(i, ecr::ImageFailureCode::InvalidImageTag, "Invalid request parameters: image tag is not valid")
        })
    };
    match (&i.image_digest, &i.image_tag) {
        (Some(d), Some(t)) => Ok(ImageId::Both(digest(d)?, tag(t)?)),
        (Some(d), None) => Ok(ImageId::Digest(digest(d)?)),
        (None, Some(t)) => Ok(ImageId::Tag(tag(t)?)),
        (None, None) => Err(failure(
            i,
            ecr::ImageFailureCode::MissingDigestAndTag,
            "Invalid request parameters: both tag and digest cannot be null",
        )),
    }
}

/// Wire image ids split into the ones the core is asked about (with their wire form) and the
/// failures of those that are malformed.
fn image_ids(ids: &[ecr::ImageIdentifier]) -> (Vec<(&ecr::ImageIdentifier, ImageId)>, Vec<ecr::ImageFailure>) {
    let (mut ok, mut failures) = (Vec::with_capacity(ids.len()), Vec::new());
    for i in ids {
        match image_id(i) {
            Ok(id) => ok.push((i, id)),
            Err(f) => failures.push(f),
        }
    }
    (ok, failures)
}

/// Image ids where one malformed id fails the whole request (`DescribeImages`, previews).
fn image_ids_strict(ids: &[ecr::ImageIdentifier]) -> Result<Vec<ImageId>, EcrError> {
    ids.iter().map(image_id_strict).collect()
}

/// One image id, a malformed one failing the request.
fn image_id_strict(i: &ecr::ImageIdentifier) -> Result<ImageId, EcrError> {
    image_id(i).map_err(|f| invalid(f.failure_reason.unwrap_or_default()))
}

fn image_detail(repo: &RepositoryKey, i: &ImageRecord) -> ecr::ImageDetail {
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
        registry_id: Some(repo.registry.to_string()),
        repository_name: Some(repo.name.to_string()),
        subject_manifest_digest: None,
    }
}

/// The part size ECR tells clients to upload in.
const PART_SIZE: i64 = 20 * 1024 * 1024;

fn upload_id(s: &str) -> Result<UploadId, EcrError> {
    UploadId::parse(s).map_err(|_| EcrError::new("UploadNotFoundException", format!("upload {s} does not exist")))
}

fn layer_digest(s: &str) -> Result<Digest, EcrError> {
    Digest::parse(s).map_err(|e| invalid(format!("Invalid parameter at 'layerDigest': {e}")))
}

/// The repository a repository ARN of this region names.
fn repository_arn(api: &EcrApi, arn: &str) -> Result<RepositoryKey, EcrError> {
    let bad =
        || invalid(format!("Invalid parameter at 'resourceArn': {arn:?} is not a repository ARN of this registry"));
    let parsed = berth_types::Arn::parse(arn).map_err(|_| bad())?;
    if parsed.partition() != berth_types::PARTITION || parsed.region() != api.region {
        return Err(bad());
    }
    parsed.ecr_repository_key().ok_or_else(bad)
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

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Each operation is a translation: decode (done by the caller), one core call, encode.
async fn dispatch(api: &EcrApi, caller: &Caller, request: EcrRequest) -> Result<Vec<u8>, EcrError> {
    match request {
        EcrRequest::CreateRepository(i) => create_repository(api, caller, i).await,
        EcrRequest::DescribeRepositories(i) => describe_repositories(api, caller, i).await,
        EcrRequest::DeleteRepository(i) => delete_repository(api, caller, i).await,
        EcrRequest::GetAuthorizationToken(i) => get_authorization_token(api, caller, i).await,
        EcrRequest::ListImages(i) => list_images(api, caller, i).await,
        EcrRequest::DescribeImages(i) => describe_images(api, caller, i).await,
        EcrRequest::BatchGetImage(i) => batch_get_image(api, caller, i).await,
        EcrRequest::BatchDeleteImage(i) => batch_delete_image(api, caller, i).await,
        EcrRequest::PutImage(i) => put_image(api, caller, i).await,
        EcrRequest::PutImageTagMutability(i) => put_image_tag_mutability(api, caller, i).await,
        EcrRequest::BatchCheckLayerAvailability(i) => batch_check_layer_availability(api, caller, i).await,
        EcrRequest::InitiateLayerUpload(i) => initiate_layer_upload(api, caller, i).await,
        EcrRequest::UploadLayerPart(i) => upload_layer_part(api, caller, i).await,
        EcrRequest::CompleteLayerUpload(i) => complete_layer_upload(api, caller, i).await,
        EcrRequest::GetDownloadUrlForLayer(i) => get_download_url_for_layer(api, caller, i).await,
        EcrRequest::TagResource(i) => tag_resource(api, caller, i).await,
        EcrRequest::UntagResource(i) => untag_resource(api, caller, i).await,
        EcrRequest::ListTagsForResource(i) => list_tags_for_resource(api, caller, i).await,
        EcrRequest::PutImageScanningConfiguration(i) => put_image_scanning_configuration(api, caller, i).await,
        EcrRequest::DescribeRegistry(i) => describe_registry(api, caller, i).await,
        EcrRequest::SetRepositoryPolicy(i) => set_repository_policy(api, caller, i).await,
        EcrRequest::GetRepositoryPolicy(i) => get_repository_policy(api, caller, i).await,
        EcrRequest::DeleteRepositoryPolicy(i) => delete_repository_policy(api, caller, i).await,
        EcrRequest::PutRegistryPolicy(i) => put_registry_policy(api, caller, i).await,
        EcrRequest::GetRegistryPolicy(i) => get_registry_policy(api, caller, i).await,
        EcrRequest::DeleteRegistryPolicy(i) => delete_registry_policy(api, caller, i).await,
        EcrRequest::PutLifecyclePolicy(i) => put_lifecycle_policy(api, caller, i).await,
        EcrRequest::GetLifecyclePolicy(i) => get_lifecycle_policy(api, caller, i).await,
        EcrRequest::DeleteLifecyclePolicy(i) => delete_lifecycle_policy(api, caller, i).await,
        EcrRequest::StartLifecyclePolicyPreview(i) => start_lifecycle_policy_preview(api, caller, i).await,
        EcrRequest::GetLifecyclePolicyPreview(i) => get_lifecycle_policy_preview(api, caller, i).await,
        EcrRequest::StartImageScan(i) => scanning::start_image_scan(api, caller, i).await,
        EcrRequest::DescribeImageScanFindings(i) => scanning::describe_image_scan_findings(api, caller, i).await,
        EcrRequest::PutRegistryScanningConfiguration(i) => {
            scanning::put_registry_scanning_configuration(api, caller, i).await
        }
        EcrRequest::GetRegistryScanningConfiguration(i) => {
            scanning::get_registry_scanning_configuration(api, caller, i).await
        }
        EcrRequest::BatchGetRepositoryScanningConfiguration(i) => {
            scanning::batch_get_repository_scanning_configuration(api, caller, i).await
        }
        other => Err(EcrError::new(
            "UnknownOperationException",
            format!("Berth does not implement {} yet", other.op().name()),
        )),
    }
}

async fn create_repository(
    api: &EcrApi,
    caller: &Caller,
    i: ecr::CreateRepositoryRequest,
) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let repo = key(api, caller, i.registry_id.as_ref(), &i.repository_name)?;
    let defaults = RepositorySettings::default();
    let settings = RepositorySettings {
        tag_mutability: tag_mutability(
            i.image_tag_mutability.as_ref(),
            i.image_tag_mutability_exclusion_filters.as_deref(),
        )?,
        scan_on_push: i.image_scanning_configuration.and_then(|c| c.scan_on_push).unwrap_or(false),
        encryption_type: i
            .encryption_configuration
            .as_ref()
            .map_or(defaults.encryption_type, |e| e.encryption_type.as_str().to_owned()),
        kms_key: i.encryption_configuration.and_then(|e| e.kms_key),
    };
    let tags = resource_tags(i.tags.as_deref().unwrap_or_default())?;
    let record = reg.repositories.create(caller, &repo, &settings, &tags).await?;
    json(&ecr::CreateRepositoryResponse { repository: Some(api.repository(&record)) })
}

async fn describe_repositories(
    api: &EcrApi,
    caller: &Caller,
    i: ecr::DescribeRepositoriesRequest,
) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let registry = registry(api, caller, i.registry_id.as_ref())?;
    let names = i
        .repository_names
        .as_ref()
        .map(|n| n.iter().map(|s| repo_name(s)).collect::<Result<Vec<_>, _>>())
        .transpose()?;
    let page = PageRequest {
        limit: Some(usize::try_from(i.max_results.unwrap_or(100)).unwrap_or(100)),
        after: i.next_token.clone(),
    };
    let which = match &names {
        Some(_) if i.next_token.is_some() || i.max_results.is_some() => {
            return Err(invalid("Invalid parameter: maxResults and nextToken cannot be used with repositoryNames"));
        }
        Some(names) => RepositoryListing::Named(names),
        None => RepositoryListing::Page(&page),
    };
    let result = reg.repositories.describe(caller, &registry, which).await?;
    json(&ecr::DescribeRepositoriesResponse {
        next_token: result.next,
        repositories: Some(result.items.iter().map(|r| api.repository(r)).collect()),
    })
}

async fn delete_repository(
    api: &EcrApi,
    caller: &Caller,
    i: ecr::DeleteRepositoryRequest,
) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let repo = key(api, caller, i.registry_id.as_ref(), &i.repository_name)?;
    let record = reg.repositories.delete(caller, &repo, i.force.unwrap_or(false)).await?;
    json(&ecr::DeleteRepositoryResponse { repository: Some(api.repository(&record)) })
}

async fn get_authorization_token(
    api: &EcrApi,
    caller: &Caller,
    i: ecr::GetAuthorizationTokenRequest,
) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let token = reg.tokens.authorization_token(caller).await?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{}", token.password));
    let ms = token.expires.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let expires_at = EpochSeconds::from_unix_millis(i64::try_from(ms).unwrap_or(i64::MAX));
    // One entry per registry asked for (by default the caller's), each naming its host.
    let registries = match i.registry_ids {
        Some(ids) if !ids.is_empty() => {
            ids.iter().map(|id| account(id, "registryIds")).collect::<Result<Vec<_>, _>>()?
        }
        _ => vec![reg.account_of(caller).clone()],
    };
    json(&ecr::GetAuthorizationTokenResponse {
        authorization_data: Some(
            registries
                .iter()
                .map(|r| ecr::AuthorizationData {
                    authorization_token: Some(encoded.clone()),
                    expires_at: Some(expires_at),
                    proxy_endpoint: Some(format!("{}://{}", api.scheme(), api.host_of(r))),
                })
                .collect(),
        ),
    })
}

async fn list_images(api: &EcrApi, caller: &Caller, i: ecr::ListImagesRequest) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let repo = key(api, caller, i.registry_id.as_ref(), &i.repository_name)?;
    let status = tag_status(i.filter.as_ref().and_then(|f| f.tag_status.as_ref()));
    let page = page_request(i.max_results, i.next_token);
    let page = reg.images.list(caller, Action::ListImages, &repo, status, &page).await?;
    let mut ids = Vec::new();
    for image in &page.items {
        if image.tags.is_empty() {
            ids.push(id(&image.digest, None));
        }
        ids.extend(image.tags.iter().map(|t| id(&image.digest, Some(t.as_str()))));
    }
    json(&ecr::ListImagesResponse { image_ids: Some(ids), next_token: page.next })
}

async fn describe_images(api: &EcrApi, caller: &Caller, i: ecr::DescribeImagesRequest) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let repo = key(api, caller, i.registry_id.as_ref(), &i.repository_name)?;
    let (images, next) = match &i.image_ids {
        Some(ids) => (reg.images.describe(caller, &repo, &image_ids_strict(ids)?).await?, None),
        None => {
            let status = tag_status(i.filter.as_ref().and_then(|f| f.tag_status.as_ref()));
            let page = page_request(i.max_results, i.next_token.clone());
            let page = reg.images.list(caller, Action::DescribeImages, &repo, status, &page).await?;
            (page.items, page.next)
        }
    };
    let digests: Vec<Digest> = images.iter().map(|im| im.digest.clone()).collect();
    let scans = reg.scanning.summaries(&repo, &digests).await?;
    let details = images
        .iter()
        .zip(scans)
        .map(|(im, scan)| {
            let mut d = image_detail(&repo, im);
            if let Some(s) = scan {
                d.image_scan_status = Some(scanning::status(&s));
                d.image_scan_findings_summary = scanning::summary(&s);
            }
            d
        })
        .collect();
    json(&ecr::DescribeImagesResponse { image_details: Some(details), next_token: next })
}

async fn batch_get_image(api: &EcrApi, caller: &Caller, i: ecr::BatchGetImageRequest) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let repo = key(api, caller, i.registry_id.as_ref(), &i.repository_name)?;
    let (asked, mut failures) = image_ids(&i.image_ids);
    let ids: Vec<ImageId> = asked.iter().map(|(_, id)| id.clone()).collect();
    let found = reg.images.get_many(caller, &repo, &ids, i.accepted_media_types.as_deref()).await?;
    let mut images = Vec::with_capacity(found.len());
    for ((wire, _), result) in asked.iter().zip(found) {
        match result {
            Ok(m) => images.push(ecr::Image {
                image_id: Some(id(&m.digest, wire.image_tag.as_deref())),
                image_manifest: Some(String::from_utf8_lossy(&m.payload).into_owned()),
                image_manifest_media_type: Some(m.media_type.clone()),
                registry_id: Some(repo.registry.to_string()),
                repository_name: Some(repo.name.to_string()),
            }),
            Err(ImageMiss::NotFound) => {
                failures.push(failure(wire, ecr::ImageFailureCode::ImageNotFound, "Requested image not found"));
            }
            Err(ImageMiss::TagDoesNotMatchDigest) => failures.push(failure(
                wire,
                ecr::ImageFailureCode::ImageTagDoesNotMatchDigest,
                "Invalid request parameters: given tag and digest do not match",
            )),
            Err(ImageMiss::UnsupportedType(t)) => failures.push(failure(
                wire,
                ecr::ImageFailureCode::Unknown("UnsupportedImageType".into()),
                &format!("The image is {t}, which acceptedMediaTypes does not include"),
            )),
        }
    }
    json(&ecr::BatchGetImageResponse { failures: Some(failures), images: Some(images) })
}

async fn batch_delete_image(
    api: &EcrApi,
    caller: &Caller,
    i: ecr::BatchDeleteImageRequest,
) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let repo = key(api, caller, i.registry_id.as_ref(), &i.repository_name)?;
    let (asked, mut failures) = image_ids(&i.image_ids);
    let ids: Vec<ImageId> = asked.iter().map(|(_, id)| id.clone()).collect();
    let results = reg.images.delete_many(caller, &repo, &ids).await?;
    let mut deleted = Vec::with_capacity(results.len());
    for ((wire, _), result) in asked.iter().zip(results) {
        match result {
            Ok(digest) => deleted.push(id(&digest, wire.image_tag.as_deref())),
            Err(_) => {
                failures.push(failure(wire, ecr::ImageFailureCode::ImageNotFound, "Requested image not found"));
            }
        }
    }
    json(&ecr::BatchDeleteImageResponse { failures: Some(failures), image_ids: Some(deleted) })
}

async fn put_image(api: &EcrApi, caller: &Caller, i: ecr::PutImageRequest) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let repo = key(api, caller, i.registry_id.as_ref(), &i.repository_name)?;
    let tag = i
        .image_tag
        .as_deref()
        .map(Tag::parse)
        .transpose()
        .map_err(|e| invalid(format!("Invalid parameter at 'imageTag': {e}")))?;
    let manifest = bytes::Bytes::from(i.image_manifest.into_bytes());
    let stored = reg
        .images
        .put_image(
            caller,
            &repo,
            manifest.clone(),
            i.image_manifest_media_type.as_deref(),
            tag.as_ref(),
            i.image_digest.as_deref(),
        )
        .await?;
    json(&ecr::PutImageResponse {
        image: Some(ecr::Image {
            image_id: Some(id(&stored.digest, tag.as_ref().map(Tag::as_str))),
            image_manifest: Some(String::from_utf8_lossy(&manifest).into_owned()),
            image_manifest_media_type: Some(stored.media_type),
            registry_id: Some(repo.registry.to_string()),
            repository_name: Some(repo.name.to_string()),
        }),
    })
}

async fn put_image_tag_mutability(
    api: &EcrApi,
    caller: &Caller,
    i: ecr::PutImageTagMutabilityRequest,
) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let repo = key(api, caller, i.registry_id.as_ref(), &i.repository_name)?;
    let mutability =
        tag_mutability(Some(&i.image_tag_mutability), i.image_tag_mutability_exclusion_filters.as_deref())?;
    let record = reg.repositories.set_tag_mutability(caller, &repo, mutability).await?;
    json(&ecr::PutImageTagMutabilityResponse {
        image_tag_mutability: Some(record.settings.tag_mutability.as_str().into()),
        image_tag_mutability_exclusion_filters: exclusion_filters_out(&record.settings),
        registry_id: Some(repo.registry.to_string()),
        repository_name: Some(repo.name.to_string()),
    })
}

async fn batch_check_layer_availability(
    api: &EcrApi,
    caller: &Caller,
    i: ecr::BatchCheckLayerAvailabilityRequest,
) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let repo = key(api, caller, i.registry_id.as_ref(), &i.repository_name)?;
    let fail = |d: &str, code, reason: &str| ecr::LayerFailure {
        failure_code: Some(code),
        failure_reason: Some(reason.to_owned()),
        layer_digest: Some(d.to_owned()),
    };
    let mut failures = Vec::new();
    let mut asked = Vec::with_capacity(i.layer_digests.len());
    for d in &i.layer_digests {
        match Digest::parse(d) {
            Ok(digest) => asked.push((d, digest)),
            Err(_) => failures.push(fail(d, ecr::LayerFailureCode::InvalidLayerDigest, "Invalid layer digest")),
        }
    }
    let digests: Vec<Digest> = asked.iter().map(|(_, d)| d.clone()).collect();
    let sizes = reg.blobs.check_many(caller, &repo, &digests).await?;
    let mut layers = Vec::with_capacity(sizes.len());
    for ((wire, _), size) in asked.iter().zip(sizes) {
        match size {
            Some(size) => layers.push(ecr::Layer {
                layer_availability: Some(ecr::LayerAvailability::Available),
                layer_digest: Some((*wire).clone()),
                layer_size: Some(i64::try_from(size).unwrap_or(i64::MAX)),
                media_type: None,
            }),
            None => failures.push(fail(wire, ecr::LayerFailureCode::MissingLayerDigest, "Could not find layer")),
        }
    }
    json(&ecr::BatchCheckLayerAvailabilityResponse { failures: Some(failures), layers: Some(layers) })
}

async fn initiate_layer_upload(
    api: &EcrApi,
    caller: &Caller,
    i: ecr::InitiateLayerUploadRequest,
) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let repo = key(api, caller, i.registry_id.as_ref(), &i.repository_name)?;
    let st = reg.uploads.start(caller, &repo).await?;
    json(&ecr::InitiateLayerUploadResponse { part_size: Some(PART_SIZE), upload_id: Some(st.id.to_string()) })
}

async fn upload_layer_part(api: &EcrApi, caller: &Caller, i: ecr::UploadLayerPartRequest) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let repo = key(api, caller, i.registry_id.as_ref(), &i.repository_name)?;
    let id = upload_id(&i.upload_id)?;
    let part = LayerPart { first: i.part_first_byte, last: i.part_last_byte, data: i.layer_part_blob.0 };
    let st = reg.uploads.append_part(caller, &repo, &id, part).await?;
    json(&ecr::UploadLayerPartResponse {
        last_byte_received: Some(i64::try_from(st.offset).unwrap_or(i64::MAX) - 1),
        registry_id: Some(repo.registry.to_string()),
        repository_name: Some(repo.name.to_string()),
        upload_id: Some(id.to_string()),
    })
}

async fn complete_layer_upload(
    api: &EcrApi,
    caller: &Caller,
    i: ecr::CompleteLayerUploadRequest,
) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let repo = key(api, caller, i.registry_id.as_ref(), &i.repository_name)?;
    let id = upload_id(&i.upload_id)?;
    let [d] = i.layer_digests.as_slice() else {
        return Err(invalid("layerDigests must hold exactly one digest"));
    };
    let stored = reg.uploads.complete_layer(caller, &repo, &id, &layer_digest(d)?).await?;
    json(&ecr::CompleteLayerUploadResponse {
        layer_digest: Some(stored.to_string()),
        registry_id: Some(repo.registry.to_string()),
        repository_name: Some(repo.name.to_string()),
        upload_id: Some(id.to_string()),
    })
}

async fn get_download_url_for_layer(
    api: &EcrApi,
    caller: &Caller,
    i: ecr::GetDownloadUrlForLayerRequest,
) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let repo = key(api, caller, i.registry_id.as_ref(), &i.repository_name)?;
    let digest = layer_digest(&i.layer_digest)?;
    let url = match reg.blobs.download_link(caller, &repo, &digest).await? {
        DownloadLink::Registry { path, query } => {
            format!("{}://{}{path}?{query}", api.scheme(), api.host_of(&repo.registry))
        }
        DownloadLink::Store(url) => url,
    };
    json(&ecr::GetDownloadUrlForLayerResponse { download_url: Some(url), layer_digest: Some(digest.to_string()) })
}

async fn tag_resource(api: &EcrApi, caller: &Caller, i: ecr::TagResourceRequest) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let repo = repository_arn(api, &i.resource_arn)?;
    reg.repositories.tags(caller, &repo, &resource_tags(&i.tags)?, &[]).await?;
    json(&ecr::TagResourceResponse {})
}

async fn untag_resource(api: &EcrApi, caller: &Caller, i: ecr::UntagResourceRequest) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let repo = repository_arn(api, &i.resource_arn)?;
    reg.repositories.tags(caller, &repo, &[], &i.tag_keys).await?;
    json(&ecr::UntagResourceResponse {})
}

async fn list_tags_for_resource(
    api: &EcrApi,
    caller: &Caller,
    i: ecr::ListTagsForResourceRequest,
) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let repo = repository_arn(api, &i.resource_arn)?;
    let tags = reg.repositories.tags(caller, &repo, &[], &[]).await?;
    json(&ecr::ListTagsForResourceResponse { tags: Some(tag_list(tags)) })
}

async fn put_image_scanning_configuration(
    api: &EcrApi,
    caller: &Caller,
    i: ecr::PutImageScanningConfigurationRequest,
) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let repo = key(api, caller, i.registry_id.as_ref(), &i.repository_name)?;
    let on = i.image_scanning_configuration.scan_on_push.unwrap_or(false);
    let record = reg.repositories.set_scan_on_push(caller, &repo, on).await?;
    json(&ecr::PutImageScanningConfigurationResponse {
        image_scanning_configuration: Some(ecr::ImageScanningConfiguration {
            scan_on_push: Some(record.settings.scan_on_push),
        }),
        registry_id: Some(repo.registry.to_string()),
        repository_name: Some(repo.name.to_string()),
    })
}

async fn describe_registry(
    api: &EcrApi,
    caller: &Caller,
    _i: ecr::DescribeRegistryRequest,
) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let registry = reg.repositories.describe_registry(caller).await?;
    json(&ecr::DescribeRegistryResponse {
        registry_id: Some(registry.to_string()),
        replication_configuration: Some(ecr::ReplicationConfiguration { rules: Vec::new() }),
    })
}

async fn set_repository_policy(
    api: &EcrApi,
    caller: &Caller,
    i: ecr::SetRepositoryPolicyRequest,
) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let repo = key(api, caller, i.registry_id.as_ref(), &i.repository_name)?;
    reg.policies.set_repository(caller, &repo, &i.policy_text).await?;
    json(&ecr::SetRepositoryPolicyResponse {
        policy_text: Some(i.policy_text),
        registry_id: Some(repo.registry.to_string()),
        repository_name: Some(repo.name.to_string()),
    })
}

async fn get_repository_policy(
    api: &EcrApi,
    caller: &Caller,
    i: ecr::GetRepositoryPolicyRequest,
) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let repo = key(api, caller, i.registry_id.as_ref(), &i.repository_name)?;
    let text = reg.policies.repository(caller, &repo).await?;
    json(&ecr::GetRepositoryPolicyResponse {
        policy_text: Some(text),
        registry_id: Some(repo.registry.to_string()),
        repository_name: Some(repo.name.to_string()),
    })
}

async fn delete_repository_policy(
    api: &EcrApi,
    caller: &Caller,
    i: ecr::DeleteRepositoryPolicyRequest,
) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let repo = key(api, caller, i.registry_id.as_ref(), &i.repository_name)?;
    let text = reg.policies.delete_repository(caller, &repo).await?;
    json(&ecr::DeleteRepositoryPolicyResponse {
        policy_text: Some(text),
        registry_id: Some(repo.registry.to_string()),
        repository_name: Some(repo.name.to_string()),
    })
}

async fn put_registry_policy(
    api: &EcrApi,
    caller: &Caller,
    i: ecr::PutRegistryPolicyRequest,
) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let account = reg.policies.put_registry(caller, &i.policy_text).await?;
    json(&ecr::PutRegistryPolicyResponse { policy_text: Some(i.policy_text), registry_id: Some(account.to_string()) })
}

async fn get_registry_policy(
    api: &EcrApi,
    caller: &Caller,
    _i: ecr::GetRegistryPolicyRequest,
) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let (text, account) = reg.policies.registry(caller).await?;
    json(&ecr::GetRegistryPolicyResponse { policy_text: Some(text), registry_id: Some(account.to_string()) })
}

async fn delete_registry_policy(
    api: &EcrApi,
    caller: &Caller,
    _i: ecr::DeleteRegistryPolicyRequest,
) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let (text, account) = reg.policies.delete_registry(caller).await?;
    json(&ecr::DeleteRegistryPolicyResponse { policy_text: Some(text), registry_id: Some(account.to_string()) })
}

async fn put_lifecycle_policy(
    api: &EcrApi,
    caller: &Caller,
    i: ecr::PutLifecyclePolicyRequest,
) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let repo = key(api, caller, i.registry_id.as_ref(), &i.repository_name)?;
    reg.lifecycle.put(caller, &repo, &i.lifecycle_policy_text).await?;
    json(&ecr::PutLifecyclePolicyResponse {
        lifecycle_policy_text: Some(i.lifecycle_policy_text),
        registry_id: Some(repo.registry.to_string()),
        repository_name: Some(repo.name.to_string()),
    })
}

async fn get_lifecycle_policy(
    api: &EcrApi,
    caller: &Caller,
    i: ecr::GetLifecyclePolicyRequest,
) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let repo = key(api, caller, i.registry_id.as_ref(), &i.repository_name)?;
    let (text, evaluated) = reg.lifecycle.get(caller, &repo).await?;
    json(&ecr::GetLifecyclePolicyResponse {
        last_evaluated_at: Some(EpochSeconds::from_unix_millis(evaluated)),
        lifecycle_policy_text: Some(text),
        registry_id: Some(repo.registry.to_string()),
        repository_name: Some(repo.name.to_string()),
    })
}

async fn delete_lifecycle_policy(
    api: &EcrApi,
    caller: &Caller,
    i: ecr::DeleteLifecyclePolicyRequest,
) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let repo = key(api, caller, i.registry_id.as_ref(), &i.repository_name)?;
    let (text, evaluated) = reg.lifecycle.delete(caller, &repo).await?;
    json(&ecr::DeleteLifecyclePolicyResponse {
        last_evaluated_at: Some(EpochSeconds::from_unix_millis(evaluated)),
        lifecycle_policy_text: Some(text),
        registry_id: Some(repo.registry.to_string()),
        repository_name: Some(repo.name.to_string()),
    })
}

async fn start_lifecycle_policy_preview(
    api: &EcrApi,
    caller: &Caller,
    i: ecr::StartLifecyclePolicyPreviewRequest,
) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let repo = key(api, caller, i.registry_id.as_ref(), &i.repository_name)?;
    let text = reg.lifecycle.preview_start(caller, &repo, i.lifecycle_policy_text.as_deref()).await?;
    json(&ecr::StartLifecyclePolicyPreviewResponse {
        lifecycle_policy_text: Some(text),
        registry_id: Some(repo.registry.to_string()),
        repository_name: Some(repo.name.to_string()),
        status: Some(ecr::LifecyclePolicyPreviewStatus::InProgress),
    })
}

async fn get_lifecycle_policy_preview(
    api: &EcrApi,
    caller: &Caller,
    i: ecr::GetLifecyclePolicyPreviewRequest,
) -> Result<Vec<u8>, EcrError> {
    let reg = &*api.registry;
    let repo = key(api, caller, i.registry_id.as_ref(), &i.repository_name)?;
    if i.image_ids.is_some() && (i.next_token.is_some() || i.max_results.is_some()) {
        return Err(invalid("Invalid parameter: maxResults and nextToken cannot be used with imageIds"));
    }
    let query = PreviewQuery {
        status: tag_status(i.filter.as_ref().and_then(|f| f.tag_status.as_ref())),
        ids: i.image_ids.as_deref().map(image_ids_strict).transpose()?,
        page: page_request(i.max_results, i.next_token.clone()),
    };
    let page = reg.lifecycle.preview_page(caller, &repo, &query).await?;
    json(&ecr::GetLifecyclePolicyPreviewResponse {
        lifecycle_policy_text: Some(page.policy_text),
        next_token: page.next,
        preview_results: Some(
            page.items
                .iter()
                .map(|e| ecr::LifecyclePolicyPreviewResult {
                    action: Some(ecr::LifecyclePolicyRuleAction {
                        target_storage_class: None,
                        r#type: Some(ecr::ImageActionType::Expire),
                    }),
                    applied_rule_priority: Some(i32::try_from(e.rule_priority).unwrap_or(i32::MAX)),
                    image_digest: Some(e.digest.to_string()),
                    image_pushed_at: Some(EpochSeconds::from_unix_millis(e.pushed_at)),
                    image_tags: Some(e.tags.iter().map(ToString::to_string).collect()),
                    storage_class: None,
                })
                .collect(),
        ),
        registry_id: Some(repo.registry.to_string()),
        repository_name: Some(repo.name.to_string()),
        status: Some(ecr::LifecyclePolicyPreviewStatus::Complete),
        summary: Some(ecr::LifecyclePolicyPreviewSummary {
            expiring_image_total_count: Some(count(page.total)),
            transitioning_image_total_counts: None,
        }),
    })
}
