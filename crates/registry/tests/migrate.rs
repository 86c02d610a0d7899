//! `berth admin migrate`'s copy, from one embedded data directory to another: everything comes
//! across, verified; a second run writes nothing; an interrupted run resumes; a damaged source
//! blob is reported and not copied.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use berth_blobstore::{Appended, BlobRead, BlobStore, ByteRange, ByteStream};
use berth_blobstore_fs::FsBlobStore;
use berth_meta::{
    BlobIndex, ImageMeta, MaintenanceMeta, MetaStore, PolicyMeta, RepoMeta, RepositoryPolicyKind, RepositorySettings,
    TagStatus,
};
use berth_meta_sqlite::SqliteMeta;
use berth_registry::migrate::{MigrateReport, Stores, migrate};
use berth_registry::{Caller, Options, Registry};
use berth_types::{
    AccountId, Algorithm, Digest, PageRequest, Reference, RepositoryKey, RepositoryName, Tag, TagMutability, UploadId,
    media_types,
};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, stream};
use serde_json::json;

use common::{acct, authz, key};

/// A data directory's stores.
struct Side {
    dir: tempfile::TempDir,
    blobs: Arc<FsBlobStore>,
    meta: Arc<SqliteMeta>,
}

impl Side {
    async fn new() -> Side {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Arc::new(FsBlobStore::open(dir.path()).unwrap());
        let meta = common::meta(dir.path()).await;
        Side { dir, blobs, meta }
    }

    fn stores(&self) -> Stores {
        Stores { blobs: self.blobs.clone(), meta: self.meta.clone() }
    }

    fn registry(&self) -> Registry {
        Registry::new(self.blobs.clone(), self.meta.clone(), authz(true), Options::default())
    }

    /// The file holding a blob's bytes.
    fn blob_file(&self, d: &Digest) -> std::path::PathBuf {
        let hex = d.hex();
        self.dir.path().join("blobs").join(d.algorithm().as_str()).join(&hex[..2]).join(hex)
    }
}

fn body(data: &[u8]) -> ByteStream {
    stream::iter(vec![Ok(Bytes::copy_from_slice(data))]).boxed()
}

fn sha(data: &[u8]) -> Digest {
    Digest::of(Algorithm::Sha256, data)
}

fn other_acct() -> AccountId {
    AccountId::parse("444455556666").unwrap()
}

async fn push_blob(reg: &Registry, repo: &RepositoryKey, data: &[u8]) -> serde_json::Value {
    let d = sha(data);
    reg.uploads.monolithic(&Caller::Anonymous, repo, &d, Some(data.len() as u64), body(data)).await.unwrap();
    json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d.as_str(), "size": data.len()})
}

async fn put(reg: &Registry, repo: &RepositoryKey, reference: &str, manifest: &serde_json::Value) -> Digest {
    let bytes = serde_json::to_vec(manifest).unwrap();
    let media_type = manifest["mediaType"].as_str().unwrap().to_owned();
    let r = Reference::parse(reference).unwrap();
    reg.images.put(&Caller::Anonymous, repo, &r, Some(&media_type), body(&bytes)).await.unwrap().digest
}

/// Pushes an image of `layers` (each a byte pattern and a length) under `tags` (by digest
/// when none); returns its digest and its manifest.
async fn image(
    reg: &Registry,
    repo: &RepositoryKey,
    seed: &str,
    layers: &[usize],
    tags: &[&str],
) -> (Digest, serde_json::Value) {
    let config = json!({"architecture": "amd64", "os": "linux", "seed": seed}).to_string();
    let mut config_desc = push_blob(reg, repo, config.as_bytes()).await;
    config_desc["mediaType"] = json!("application/vnd.oci.image.config.v1+json");
    let mut descs = Vec::new();
    for (i, len) in layers.iter().enumerate() {
        let data: Vec<u8> = format!("{seed}/{i}/").bytes().cycle().take(*len).collect();
        descs.push(push_blob(reg, repo, &data).await);
    }
    let m = json!({"schemaVersion": 2, "mediaType": media_types::OCI_MANIFEST, "config": config_desc, "layers": descs});
    let d = sha(&serde_json::to_vec(&m).unwrap());
    for t in tags {
        put(reg, repo, t, &m).await;
    }
    if tags.is_empty() {
        put(reg, repo, d.as_str(), &m).await;
    }
    (d, m)
}

fn descriptor(d: &Digest, m: &serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
    let mut desc =
        json!({"mediaType": m["mediaType"], "digest": d.as_str(), "size": serde_json::to_vec(m).unwrap().len()});
    if let (Some(o), Some(e)) = (desc.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    desc
}

const LIFECYCLE: &str = r#"{"rules":[{"rulePriority":1,"description":"keep one untagged","selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#;
const ACCESS_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"pull","Effect":"Allow","Principal":"*","Action":["ecr:BatchGetImage"]}]}"#;
const REGISTRY_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"replicate","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":["ecr:CreateRepository","ecr:ReplicateImage"],"Resource":"arn:aws:ecr:us-east-1:111122223333:repository/*"}]}"#;

/// What the source holds besides what `compare` reads back: the access key to check.
struct Populated {
    key_id: String,
    secret: String,
    /// The image whose layer the damage test breaks, and that layer.
    app_v1: Digest,
    app_v1_layer: Digest,
}

/// Fills a source with a bit of everything: images with several tags, an untagged one, a
/// multi-arch index with a referrer, an immutable repository with exclusion filters, resource
/// tags, policies of every kind, lifecycle history and a preview, another registry, users,
/// keys and identity policies, restored push times and pull times.
async fn populate(side: &Side) -> Populated {
    let reg = side.registry();
    let meta = &side.meta;
    reg.identity.bootstrap(None).await.unwrap();
    let who = Caller::Anonymous;

    // Images, one with a layer large enough to be streamed (more than 1 MiB).
    let app = key("team/app");
    let (app_v1, m1) = image(&reg, &app, "app-1", &[3 << 20, 1000], &["v1", "latest"]).await;
    let app_v1_layer = Digest::parse(m1["layers"][0]["digest"].as_str().unwrap()).unwrap();
    let (app_v2, _) = image(&reg, &app, "app-2", &[2000], &["v2"]).await;
    let (untagged, _) = image(&reg, &app, "app-3", &[100], &[]).await;
    meta.update_repository_tags(&app, &[("team".into(), "platform".into()), ("cost".into(), "42".into())], &[])
        .await
        .unwrap();
    meta.set_repository_policy(&app, RepositoryPolicyKind::Access, Some(ACCESS_POLICY)).await.unwrap();
    meta.restore_pushed_at(&app, &app_v1, 1_600_000_000_000).await.unwrap();
    meta.restore_pushed_at(&app, &untagged, 1_600_000_100_000).await.unwrap();
    meta.record_pulls(&[(app.clone(), app_v2.clone(), 1_700_000_000_000)]).await.unwrap();
    meta.restore_repository_created_at(&app, 1_500_000_000_000).await.unwrap();

    // A multi-arch index of two images that share a layer, and a signature referring to it.
    let multi = key("team/multi");
    let (amd, am) = image(&reg, &multi, "amd64", &[5000, 700], &[]).await;
    let (arm, armm) = image(&reg, &multi, "arm64", &[6000], &[]).await;
    let index = json!({"schemaVersion": 2, "mediaType": media_types::OCI_INDEX, "manifests": [
        descriptor(&amd, &am, json!({"platform": {"os": "linux", "architecture": "amd64"}})),
        descriptor(&arm, &armm, json!({"platform": {"os": "linux", "architecture": "arm64"}})),
    ]});
    let idx = put(&reg, &multi, "1.0", &index).await;
    put(&reg, &multi, "stable", &index).await;
    // An index of that index (nested), tagged.
    let outer = json!({"schemaVersion": 2, "mediaType": media_types::OCI_INDEX, "manifests": [descriptor(&idx, &index, json!({}))]});
    put(&reg, &multi, "nested", &outer).await;
    let sig_config = push_blob(&reg, &multi, b"{}").await;
    let sig = json!({"schemaVersion": 2, "mediaType": media_types::OCI_MANIFEST, "artifactType": "application/vnd.example.sig",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sig_config["digest"], "size": 2},
        "layers": [push_blob(&reg, &multi, b"signature bytes").await],
        "subject": descriptor(&idx, &index, json!({})),
        "annotations": {"org.example.signed-by": "ci"}});
    let sig_digest = sha(&serde_json::to_vec(&sig).unwrap());
    put(&reg, &multi, sig_digest.as_str(), &sig).await;

    // An immutable repository with exclusion filters, scan on push, created with its settings.
    let frozen = key("team/frozen");
    let settings = RepositorySettings {
        tag_mutability: TagMutability::parse("IMMUTABLE_WITH_EXCLUSION", vec!["latest*".into(), "dev-*".into()])
            .unwrap(),
        scan_on_push: true,
        ..RepositorySettings::default()
    };
    meta.create_repository_with(&frozen, &settings).await.unwrap();
    image(&reg, &frozen, "frozen-1", &[1234], &["v1", "latest"]).await;
    image(&reg, &frozen, "frozen-2", &[4321], &["latest", "dev-7"]).await;

    // Lifecycle: a run that expired an image (history), then a preview.
    let old = key("team/old");
    for seed in ["old-1", "old-2", "old-3"] {
        image(&reg, &old, seed, &[10], &[]).await;
    }
    reg.lifecycle.put(&who, &old, LIFECYCLE).await.unwrap();
    let expired = reg.lifecycle.run(&old).await.unwrap();
    assert_eq!(expired.len(), 2);
    image(&reg, &old, "old-4", &[10], &[]).await;
    reg.lifecycle.preview_start(&who, &old, None).await.unwrap();

    // Another registry, with a repository of the same name as one of ours.
    reg.identity.create_account(Some(other_acct().as_str()), "second").await.unwrap();
    let theirs = RepositoryKey::new(other_acct(), RepositoryName::parse("team/app").unwrap());
    meta.create_repository(&theirs).await.unwrap();
    let data = b"their layer";
    side.blobs.put_small(&sha(data), Bytes::from_static(data)).await.unwrap();
    meta.link_blob(&theirs, &sha(data), data.len() as u64, berth_meta::CreateRepo::No).await.unwrap();
    let cfg = b"{\"theirs\":true}";
    side.blobs.put_small(&sha(cfg), Bytes::from_static(cfg)).await.unwrap();
    meta.link_blob(&theirs, &sha(cfg), cfg.len() as u64, berth_meta::CreateRepo::No).await.unwrap();
    let m = json!({"schemaVersion": 2, "mediaType": media_types::DOCKER_MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": sha(cfg).as_str(), "size": cfg.len()},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": sha(data).as_str(), "size": data.len()}]});
    let payload = serde_json::to_vec(&m).unwrap();
    let nm = berth_meta::NewManifest {
        repository: theirs.clone(),
        digest: sha(&payload),
        media_type: media_types::DOCKER_MANIFEST.into(),
        payload,
        artifact_type: Some("application/vnd.docker.container.image.v1+json".into()),
        subject: None,
        annotations: None,
        blobs: vec![sha(cfg), sha(data)],
        children: vec![],
        tag: Some(Tag::parse("prod").unwrap()),
    };
    meta.put_manifest(&nm, berth_meta::CreateRepo::No).await.unwrap();

    // Identity: users, a key, policies; registry policies.
    reg.identity.create_user(acct().as_str(), "alice").await.unwrap();
    reg.identity.create_user(other_acct().as_str(), "bob").await.unwrap();
    let (key_id, secret) = reg.identity.create_access_key(acct().as_str(), "alice").await.unwrap();
    reg.identity.create_access_key(other_acct().as_str(), "bob").await.unwrap();
    reg.identity
        .attach_user_policy(acct().as_str(), "alice", "AmazonEC2ContainerRegistryReadOnly", None)
        .await
        .unwrap();
    reg.identity
        .attach_user_policy(other_acct().as_str(), "bob", "AmazonEC2ContainerRegistryPowerUser", None)
        .await
        .unwrap();
    meta.set_registry_policy(&acct(), Some(REGISTRY_POLICY)).await.unwrap();
    Populated { key_id, secret, app_v1, app_v1_layer }
}

async fn all_repositories(meta: &dyn MetaStore) -> Vec<RepositoryKey> {
    meta.list_all_repositories(None, 10_000).await.unwrap()
}

async fn all_images(meta: &dyn MetaStore, repo: &RepositoryKey) -> Vec<berth_meta::ImageRecord> {
    meta.list_images(repo, TagStatus::Any, &PageRequest::default()).await.unwrap().items
}

async fn bytes_of(blobs: &dyn BlobStore, d: &Digest) -> Vec<u8> {
    let mut s = blobs.read(d, None).await.unwrap().body.into_stream();
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

/// Everything the source holds, the destination holds the same (blobs byte for byte).
async fn compare(from: &Side, to: &Side) {
    let (a, b): (&dyn MetaStore, &dyn MetaStore) = (from.meta.as_ref(), to.meta.as_ref());
    let accounts = a.list_accounts().await.unwrap();
    assert_eq!(accounts, b.list_accounts().await.unwrap());
    for acc in &accounts {
        let users = a.list_users(&acc.id).await.unwrap();
        assert_eq!(users, b.list_users(&acc.id).await.unwrap());
        for u in &users {
            assert_eq!(
                a.list_access_keys(&acc.id, &u.name).await.unwrap(),
                b.list_access_keys(&acc.id, &u.name).await.unwrap()
            );
            assert_eq!(
                a.user_policies(&acc.id, &u.name).await.unwrap(),
                b.user_policies(&acc.id, &u.name).await.unwrap()
            );
        }
        let id = AccountId::parse(&acc.id).unwrap();
        assert_eq!(a.registry_policy(&id).await.unwrap(), b.registry_policy(&id).await.unwrap());
    }
    let repos = all_repositories(a).await;
    assert_eq!(repos, all_repositories(b).await);
    for r in &repos {
        assert_eq!(a.get_repository(r).await.unwrap(), b.get_repository(r).await.unwrap(), "{r}");
        for kind in [RepositoryPolicyKind::Access, RepositoryPolicyKind::Lifecycle] {
            assert_eq!(a.repository_policy(r, kind).await.unwrap(), b.repository_policy(r, kind).await.unwrap());
        }
        assert_eq!(a.lifecycle_evaluated_at(r).await.unwrap(), b.lifecycle_evaluated_at(r).await.unwrap());
        let images = all_images(a, r).await;
        assert_eq!(images, all_images(b, r).await, "{r}");
        let tags = a.list_tags(r, &PageRequest::default()).await.unwrap();
        assert_eq!(tags, b.list_tags(r, &PageRequest::default()).await.unwrap());
        for i in &images {
            let reference = Reference::Digest(i.digest.clone());
            let manifest = a.resolve(r, &reference).await.unwrap().unwrap();
            assert_eq!(Some(&manifest), b.resolve(r, &reference).await.unwrap().as_ref());
            assert_eq!(a.referrers(r, &i.digest, None).await.unwrap(), b.referrers(r, &i.digest, None).await.unwrap());
            let parsed = berth_types::ParsedManifest::parse(Some(&manifest.media_type), &manifest.payload).unwrap();
            for d in &parsed.blobs {
                let size = a.blob_in_repository(r, d).await.unwrap();
                assert_eq!(size, b.blob_in_repository(r, d).await.unwrap());
                assert_eq!(bytes_of(from.blobs.as_ref(), d).await, bytes_of(to.blobs.as_ref(), d).await);
            }
        }
        let pa = a.get_preview_page(r, TagStatus::Any, None, 1000).await.ok();
        let pb = b.get_preview_page(r, TagStatus::Any, None, 1000).await.ok();
        assert_eq!(pa, pb, "preview of {r}");
    }
    assert_eq!(a.lifecycle_history(None, 1000).await.unwrap(), b.lifecycle_history(None, 1000).await.unwrap());
}

fn quiet(_: &str) {}

fn assert_clean(r: &MigrateReport) {
    assert!(r.failures.is_empty(), "{:?}", r.failures);
}

#[tokio::test(flavor = "multi_thread")]
async fn copies_everything_and_a_second_run_changes_nothing() {
    let (src, dst) = (Side::new().await, Side::new().await);
    let p = populate(&src).await;
    let report = migrate(&src.stores(), &dst.stores(), &quiet).await.unwrap();
    assert_clean(&report);
    assert!(report.changed());
    assert_eq!((report.accounts.copied, report.users.copied, report.access_keys.copied), (2, 2, 2));
    assert_eq!((report.user_policies.copied, report.registry_policies.copied), (2, 1));
    assert_eq!(report.repositories.copied, 5);
    assert_eq!(report.tags.copied, 10);
    assert_eq!(report.lifecycle_history.copied, 2);
    assert_eq!(report.previews.copied, 1);
    assert_eq!(report.blobs.present, 0);
    assert!(report.blobs.copied >= 20 && report.bytes_copied > 3 << 20, "{report:?}");
    // The blobs of the two expired images are recorded but referenced by no manifest.
    assert_eq!(report.unreferenced_blobs, 4);
    compare(&src, &dst).await;

    // The key still signs: its secret opens under the same server key in the destination.
    let reg = dst.registry();
    let cred = reg.tokens.credential(&p.key_id).await.unwrap().expect("the key opens in the destination");
    assert_eq!(cred.secret.expose_secret(), p.secret);
    let pushed = dst.meta.get_image(&key("team/app"), &p.app_v1).await.unwrap().unwrap().pushed_at;
    assert_eq!(pushed, 1_600_000_000_000, "push times are kept");

    let again = migrate(&src.stores(), &dst.stores(), &quiet).await.unwrap();
    assert_clean(&again);
    assert!(!again.changed(), "{again:?}");
    assert_eq!(again.images.present, report.images.copied);
    assert_eq!(again.tags.present, report.tags.copied);
    assert_eq!(again.blobs.present, report.blobs.copied);
    assert_eq!(again.access_keys.present, 2);
    assert_eq!(again.bytes_copied, 0);

    // Immutability holds in the destination, and its exclusions: `v1` may not move, `latest` may.
    let frozen = key("team/frozen");
    let (_, other) = image(&reg, &frozen, "frozen-3", &[5], &[]).await;
    let payload = serde_json::to_vec(&other).unwrap();
    let put = |tag: &str| {
        let r = Reference::parse(tag).unwrap();
        let b = body(&payload);
        let reg = &reg;
        let frozen = &frozen;
        async move { reg.images.put(&Caller::Anonymous, frozen, &r, Some(media_types::OCI_MANIFEST), b).await }
    };
    assert!(matches!(put("v1").await, Err(berth_registry::Error::TagImmutable { .. })));
    put("latest").await.unwrap();
}

/// A blob store that fails every write after a budget of stored blobs (a crash midway).
struct FailingAfter {
    inner: Arc<FsBlobStore>,
    budget: AtomicUsize,
}

impl FailingAfter {
    fn spend(&self) -> berth_blobstore::Result<()> {
        let left = self.budget.load(Ordering::SeqCst);
        if left == 0 {
            return Err(berth_blobstore::Error::Backend("injected failure".into()));
        }
        self.budget.store(left - 1, Ordering::SeqCst);
        Ok(())
    }
}

#[async_trait]
impl BlobStore for FailingAfter {
    async fn stat(&self, d: &Digest) -> berth_blobstore::Result<Option<u64>> {
        self.inner.stat(d).await
    }
    async fn read(&self, d: &Digest, r: Option<ByteRange>) -> berth_blobstore::Result<BlobRead> {
        self.inner.read(d, r).await
    }
    async fn upload_append(&self, id: &UploadId, at: u64, body: ByteStream) -> berth_blobstore::Result<Appended> {
        self.inner.upload_append(id, at, body).await
    }
    async fn upload_read(&self, id: &UploadId, parts: &[String]) -> berth_blobstore::Result<ByteStream> {
        self.inner.upload_read(id, parts).await
    }
    async fn upload_commit(&self, id: &UploadId, parts: &[String], d: &Digest) -> berth_blobstore::Result<u64> {
        self.spend()?;
        self.inner.upload_commit(id, parts, d).await
    }
    async fn put_small(&self, d: &Digest, data: Bytes) -> berth_blobstore::Result<u64> {
        self.spend()?;
        self.inner.put_small(d, data).await
    }
    async fn upload_abort(&self, id: &UploadId) -> berth_blobstore::Result<()> {
        self.inner.upload_abort(id).await
    }
    async fn uploads(&self) -> berth_blobstore::Result<Vec<(UploadId, i64)>> {
        self.inner.uploads().await
    }
    async fn delete(&self, d: &Digest) -> berth_blobstore::Result<()> {
        self.inner.delete(d).await
    }
    async fn quarantine(&self, d: &Digest) -> berth_blobstore::Result<()> {
        self.inner.quarantine(d).await
    }
    fn list(&self) -> BoxStream<'_, berth_blobstore::Result<Digest>> {
        self.inner.list()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_run_resumes_where_it_stopped() {
    let (src, dst) = (Side::new().await, Side::new().await);
    populate(&src).await;
    let failing = Arc::new(FailingAfter { inner: dst.blobs.clone(), budget: AtomicUsize::new(7) });
    let cut = Stores { blobs: failing, meta: dst.meta.clone() };
    let lines = std::sync::Mutex::new(Vec::new());
    let err = migrate(&src.stores(), &cut, &|l: &str| lines.lock().unwrap().push(l.to_owned())).await.unwrap_err();
    assert!(err.to_string().contains("injected") || format!("{err:?}").contains("injected"), "{err:?}");
    let first_blobs = dst.meta.recorded_blobs(None, 1000).await.unwrap().len();
    assert_eq!(first_blobs, 7, "seven blobs were placed and linked before the failure");

    let resumed = migrate(&src.stores(), &dst.stores(), &quiet).await.unwrap();
    assert_clean(&resumed);
    assert!(resumed.changed());
    assert_eq!(resumed.blobs.present, 7, "the blobs the first run placed are not copied again");
    assert!(resumed.accounts.present == 2 && resumed.accounts.copied == 0);
    compare(&src, &dst).await;
    let again = migrate(&src.stores(), &dst.stores(), &quiet).await.unwrap();
    assert!(!again.changed(), "{again:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_source_blob_is_reported_and_not_copied() {
    let (src, dst) = (Side::new().await, Side::new().await);
    let p = populate(&src).await;
    // Same size, other bytes: found only by hashing.
    let file = src.blob_file(&p.app_v1_layer);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();
    // And a small blob moved aside (as the scrubber does with damaged bytes): missing.
    let frozen = key("team/frozen");
    let frozen_v1 = dst_blob_of(&src, &frozen, "v1").await;
    src.blobs.quarantine(&frozen_v1).await.unwrap();

    let report = migrate(&src.stores(), &dst.stores(), &quiet).await.unwrap();
    let items: Vec<&str> = report.failures.iter().map(|f| f.item.as_str()).collect();
    let layer = format!("blob {}", p.app_v1_layer);
    let image = format!("image {}@{}", key("team/app"), p.app_v1);
    assert!(items.contains(&layer.as_str()) && items.contains(&image.as_str()), "{items:?}");
    let why = &report.failures.iter().find(|f| f.item == layer).unwrap().reason;
    assert!(why.contains("hash to") && why.contains("not copied"), "{why}");
    let missing = format!("blob {frozen_v1}");
    assert!(
        report.failures.iter().any(|f| f.item == missing && f.reason.contains("no bytes")),
        "{:?}",
        report.failures
    );
    assert!(dst.blobs.stat(&p.app_v1_layer).await.unwrap().is_none(), "nothing was written under its digest");
    assert!(dst.blobs.stat(&frozen_v1).await.unwrap().is_none());
    assert!(dst.blobs.uploads().await.unwrap().is_empty(), "no upload bytes are left behind");
    let app = key("team/app");
    assert!(dst.meta.resolve(&app, &Reference::Digest(p.app_v1.clone())).await.unwrap().is_none());
    assert!(dst.meta.resolve(&app, &Reference::parse("v2").unwrap()).await.unwrap().is_some(), "the rest came");
    assert!(dst.meta.resolve(&key("team/multi"), &Reference::parse("nested").unwrap()).await.unwrap().is_some());
    // A second run reports the same and writes nothing more.
    let again = migrate(&src.stores(), &dst.stores(), &quiet).await.unwrap();
    assert_eq!(again.failures, report.failures);
    assert!(!again.changed(), "{again:?}");
}

/// The layer of the image a tag names (its first layer).
async fn dst_blob_of(side: &Side, repo: &RepositoryKey, tag: &str) -> Digest {
    let m = side.meta.resolve(repo, &Reference::parse(tag).unwrap()).await.unwrap().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
    Digest::parse(v["layers"][0]["digest"].as_str().unwrap()).unwrap()
}
