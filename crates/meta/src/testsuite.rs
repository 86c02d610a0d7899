//! Conformance suite every `MetaStore` implementation runs from its own tests.

use berth_types::{AccountId, Algorithm, Digest, PageRequest, Reference, RepositoryKey, RepositoryName, Tag, UploadId};

use crate::{Conflict, CreateRepo, Error, MetaStore, Missing, NewManifest, PutOutcome, UploadSession};

/// The registry most checks use.
pub const REGISTRY: &str = "111111111111";
/// Another account's registry, holding repositories of the same names.
pub const OTHER_REGISTRY: &str = "222222222222";

fn account(s: &str) -> AccountId {
    AccountId::parse(s).unwrap()
}
fn name(s: &str) -> RepositoryName {
    RepositoryName::parse(s).unwrap()
}
/// A repository in `REGISTRY`.
fn repo(s: &str) -> RepositoryKey {
    repo_in(REGISTRY, s)
}
fn repo_in(registry: &str, s: &str) -> RepositoryKey {
    RepositoryKey::new(account(registry), name(s))
}
fn no_repo(k: &RepositoryKey) -> Missing {
    Missing::Repository(k.clone())
}
/// What a result missed, if it was a miss.
fn missed<T: std::fmt::Debug>(r: crate::Result<T>) -> Missing {
    match r {
        Err(Error::NotFound(m)) => m,
        other => panic!("expected NotFound, got {other:?}"),
    }
}
fn digest(s: &str) -> Digest {
    Digest::of(Algorithm::Sha256, s.as_bytes())
}
fn page(limit: Option<usize>, after: Option<&str>) -> PageRequest {
    PageRequest { limit, after: after.map(str::to_owned) }
}

fn manifest(r: &RepositoryKey, body: &str, blobs: Vec<Digest>, tag: Option<&str>) -> NewManifest {
    NewManifest {
        repository: r.clone(),
        digest: digest(body),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        payload: body.as_bytes().to_vec(),
        artifact_type: None,
        subject: None,
        annotations: None,
        blobs,
        children: vec![],
        tag: tag.map(|t| Tag::parse(t).unwrap()),
    }
}

/// Runs every check against a fresh, empty store.
///
/// # Panics
/// On the first behaviour that breaks the `MetaStore` contract.
pub async fn run(store: &dyn MetaStore) {
    let a = repo("team/app");
    let b = repo("other");

    // Repositories.
    assert!(store.create_repository(&a).await.unwrap());
    assert!(!store.create_repository(&a).await.unwrap());
    assert!(!store.repository_exists(&b).await.unwrap());
    for n in ["r1", "r2", "r3"] {
        store.create_repository(&repo(n)).await.unwrap();
    }
    let reg = account(REGISTRY);
    let p = store.list_repositories(&reg, &page(Some(2), None)).await.unwrap();
    assert_eq!(p.items, vec![name("r1"), name("r2")]);
    assert_eq!(p.next.as_deref(), Some("r2"));
    let p = store.list_repositories(&reg, &page(Some(2), Some("r2"))).await.unwrap();
    assert_eq!(p.items, vec![name("r3"), a.name.clone()]);
    assert_eq!(p.next, None);

    // Repository settings and deletion.
    let settings = crate::RepositorySettings {
        tag_mutability: berth_types::TagMutability::Immutable,
        scan_on_push: true,
        encryption_type: "KMS".into(),
        kms_key: Some("arn:aws:kms:us-east-1:111122223333:key/k".into()),
    };
    let s1 = repo("settings/one");
    let rec = store.create_repository_with(&s1, &settings).await.unwrap();
    assert_eq!(rec.settings, settings);
    assert_eq!(rec.key, s1);
    assert!(matches!(
        store.create_repository_with(&s1, &settings).await,
        Err(Error::Conflict(Conflict::RepositoryExists(k))) if k == s1
    ));
    assert_eq!(store.get_repository(&s1).await.unwrap().unwrap(), rec);
    assert_eq!(store.get_repository(&a).await.unwrap().unwrap().settings, crate::RepositorySettings::default());
    let listed = store.list_repository_records(&reg, &page(Some(10), Some("r3"))).await.unwrap();
    assert_eq!(listed.items.iter().map(|r| r.key.name.as_str()).collect::<Vec<_>>(), ["settings/one", "team/app"]);
    assert_eq!(store.delete_repository(&s1, false).await.unwrap(), crate::DeleteRepository::Deleted(rec));
    assert_eq!(store.delete_repository(&s1, false).await.unwrap(), crate::DeleteRepository::NotFound);

    // Blobs are scoped per repository.
    let d1 = digest("layer1");
    assert_eq!(missed(store.link_blob(&b, &d1, 6, CreateRepo::No).await), no_repo(&b));
    store.link_blob(&a, &d1, 6, CreateRepo::No).await.unwrap();
    store.link_blob(&a, &d1, 6, CreateRepo::No).await.unwrap();
    assert_eq!(store.blob_in_repository(&a, &d1).await.unwrap(), Some(6));
    assert_eq!(store.blob_in_repository(&b, &d1).await.unwrap(), None);
    assert!(!store.mount_blob(&b, &a, &digest("nothing"), CreateRepo::IfMissing).await.unwrap());
    assert!(store.mount_blob(&a, &b, &d1, CreateRepo::IfMissing).await.unwrap());
    assert_eq!(store.blob_in_repository(&b, &d1).await.unwrap(), Some(6));
    assert!(store.unlink_blob(&b, &d1).await.unwrap());
    assert!(!store.unlink_blob(&b, &d1).await.unwrap());
    // Recorded blobs are listed once each, in digest order, in pages.
    let d3 = digest("layer3");
    store.link_blob(&a, &d3, 9, CreateRepo::No).await.unwrap();
    let mut want = vec![(d1.clone(), 6), (d3.clone(), 9)];
    want.sort();
    assert_eq!(store.recorded_blobs(None, 10).await.unwrap(), want);
    assert_eq!(store.recorded_blobs(None, 1).await.unwrap(), want[..1]);
    assert_eq!(store.recorded_blobs(Some(&want[0].0), 10).await.unwrap(), want[1..]);
    assert!(store.recorded_blobs(Some(&want[1].0), 10).await.unwrap().is_empty());
    assert!(store.unlink_blob(&a, &d3).await.unwrap());

    // Upload sessions.
    let id = UploadId::generate();
    let s = UploadSession { id: id.clone(), repository: a.clone(), offset: 0, hash_state: vec![1], created_at: 1 };
    store.create_upload(&s, CreateRepo::No).await.unwrap();
    let missing = UploadSession { id: UploadId::generate(), repository: repo("nope"), ..s.clone() };
    assert_eq!(missed(store.create_upload(&missing, CreateRepo::No).await), no_repo(&repo("nope")));
    store.advance_upload(&id, 0, 10, &[2]).await.unwrap();
    assert!(matches!(
        store.advance_upload(&id, 0, 5, &[3]).await,
        Err(Error::Conflict(Conflict::UploadMoved(u))) if u == id
    ));
    let unknown = UploadId::generate();
    assert_eq!(missed(store.advance_upload(&unknown, 10, 20, &[3]).await), Missing::Upload(unknown.clone()));
    assert_eq!(missed(store.complete_upload(&unknown, &digest("x"), 1).await), Missing::Upload(unknown.clone()));
    let got = store.get_upload(&id).await.unwrap().unwrap();
    assert_eq!((got.offset, got.hash_state), (10, vec![2]));
    assert_eq!(store.stale_uploads(i64::MAX, 10).await.unwrap(), vec![id.clone()]);
    let d2 = digest("layer2");
    store.complete_upload(&id, &d2, 10).await.unwrap();
    assert!(store.get_upload(&id).await.unwrap().is_none());
    assert_eq!(store.blob_in_repository(&a, &d2).await.unwrap(), Some(10));
    assert!(!store.delete_upload(&id).await.unwrap());

    // Manifests, references, tags.
    let m1 = manifest(&a, "m1", vec![d1.clone(), digest("absent")], Some("v1"));
    assert_eq!(
        store.put_manifest(&m1, CreateRepo::No).await.unwrap(),
        PutOutcome::MissingReferences(vec![digest("absent")])
    );
    assert!(store.resolve(&a, &Reference::Tag(Tag::parse("v1").unwrap())).await.unwrap().is_none());
    let m1 = manifest(&a, "m1", vec![d1.clone(), d2.clone()], Some("v1"));
    assert_eq!(store.put_manifest(&m1, CreateRepo::No).await.unwrap(), PutOutcome::Stored);
    assert_eq!(store.put_manifest(&m1, CreateRepo::No).await.unwrap(), PutOutcome::Stored);
    let by_tag = store.resolve(&a, &Reference::parse("v1").unwrap()).await.unwrap().unwrap();
    assert_eq!(by_tag.payload, b"m1");
    assert_eq!(by_tag.digest, m1.digest);
    let by_digest = store.resolve(&a, &Reference::Digest(m1.digest.clone())).await.unwrap().unwrap();
    assert_eq!(by_digest, by_tag);
    assert!(store.resolve(&b, &Reference::Digest(m1.digest.clone())).await.unwrap().is_none());
    // A batch answers each reference as `resolve` does, in order.
    let batch =
        [Reference::parse("v1").unwrap(), Reference::parse("nope").unwrap(), Reference::Digest(m1.digest.clone())];
    let got = store.resolve_many(&a, &batch).await.unwrap();
    assert_eq!(got, vec![Some(by_tag.clone()), None, Some(by_digest.clone())]);
    assert_eq!(store.resolve_many(&b, &batch).await.unwrap(), vec![None, None, None]);

    // A refused manifest does not create its repository.
    let fresh = repo("fresh/repo");
    let refused = manifest(&fresh, "m1", vec![d1.clone()], Some("v1"));
    assert_eq!(
        store.put_manifest(&refused, CreateRepo::IfMissing).await.unwrap(),
        PutOutcome::MissingReferences(vec![d1.clone()])
    );
    assert!(!store.repository_exists(&fresh).await.unwrap());

    // Retagging moves the tag; an index needs its children.
    let m2 = manifest(&a, "m2", vec![d1.clone()], Some("v1"));
    store.put_manifest(&m2, CreateRepo::No).await.unwrap();
    assert_eq!(store.resolve(&a, &Reference::parse("v1").unwrap()).await.unwrap().unwrap().payload, b"m2");
    let mut idx = manifest(&a, "idx", vec![], Some("multi"));
    idx.children = vec![m1.digest.clone(), digest("nochild")];
    assert_eq!(
        store.put_manifest(&idx, CreateRepo::No).await.unwrap(),
        PutOutcome::MissingReferences(vec![digest("nochild")])
    );
    idx.children = vec![m1.digest.clone(), m2.digest.clone()];
    assert_eq!(store.put_manifest(&idx, CreateRepo::No).await.unwrap(), PutOutcome::Stored);

    // Referrers.
    let mut sig = manifest(&a, "sig", vec![d1.clone()], None);
    sig.subject = Some(m1.digest.clone());
    sig.artifact_type = Some("application/x.sig".into());
    sig.annotations = Some(r#"{"k":"v"}"#.into());
    store.put_manifest(&sig, CreateRepo::No).await.unwrap();
    let refs = store.referrers(&a, &m1.digest, None).await.unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].digest, sig.digest);
    assert_eq!(refs[0].size, 3);
    assert_eq!(refs[0].annotations.as_deref(), Some(r#"{"k":"v"}"#));
    assert!(store.referrers(&a, &m1.digest, Some("other")).await.unwrap().is_empty());
    assert_eq!(store.referrers(&a, &m1.digest, Some("application/x.sig")).await.unwrap().len(), 1);

    // Tag listing and deletion.
    for t in ["b", "a", "c"] {
        store.put_manifest(&manifest(&a, "m1", vec![d1.clone(), d2.clone()], Some(t)), CreateRepo::No).await.unwrap();
    }
    let tags = store.list_tags(&a, &page(None, None)).await.unwrap();
    let names: Vec<&str> = tags.items.iter().map(Tag::as_str).collect();
    assert_eq!(names, ["a", "b", "c", "multi", "v1"]);
    let p = store.list_tags(&a, &page(Some(2), Some("b"))).await.unwrap();
    assert_eq!(p.items.iter().map(Tag::as_str).collect::<Vec<_>>(), ["c", "multi"]);
    assert_eq!(p.next.as_deref(), Some("multi"));
    assert_eq!(missed(store.list_tags(&repo("nope"), &page(None, None)).await), no_repo(&repo("nope")));
    assert_eq!(store.delete_tag(&a, &Tag::parse("a").unwrap(), false).await.unwrap(), Some(m1.digest.clone()));
    assert_eq!(store.delete_tag(&a, &Tag::parse("a").unwrap(), false).await.unwrap(), None);
    assert!(store.resolve(&a, &Reference::Digest(m1.digest.clone())).await.unwrap().is_some());
    assert!(store.delete_manifest(&a, &m1.digest).await.unwrap());
    assert!(!store.delete_manifest(&a, &m1.digest).await.unwrap());
    assert!(store.resolve(&a, &Reference::parse("b").unwrap()).await.unwrap().is_none());
    let names: Vec<String> =
        store.list_tags(&a, &page(None, None)).await.unwrap().items.iter().map(ToString::to_string).collect();
    assert_eq!(names, ["multi", "v1"]);

    // Resource tags.
    let kv = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    assert_eq!(store.update_repository_tags(&a, &[], &[]).await.unwrap(), Some(vec![]));
    let tags = store.update_repository_tags(&a, &[kv("team", "x"), kv("env", "dev")], &[]).await.unwrap();
    assert_eq!(tags, Some(vec![kv("env", "dev"), kv("team", "x")]));
    let tags = store.update_repository_tags(&a, &[kv("env", "prod")], &["team".into(), "absent".into()]).await.unwrap();
    assert_eq!(tags, Some(vec![kv("env", "prod")]));
    assert_eq!(store.update_repository_tags(&repo("no/such"), &[], &[]).await.unwrap(), None);

    // Immutable tags: the same manifest again is fine, another one is refused and nothing changes.
    let imm = repo("immutable/app");
    let settings = crate::RepositorySettings {
        tag_mutability: berth_types::TagMutability::Immutable,
        ..crate::RepositorySettings::default()
    };
    store.create_repository_with(&imm, &settings).await.unwrap();
    store.link_blob(&imm, &d1, 6, CreateRepo::No).await.unwrap();
    let first = manifest(&imm, "i1", vec![d1.clone()], Some("v1"));
    assert_eq!(store.put_manifest(&first, CreateRepo::No).await.unwrap(), PutOutcome::Stored);
    assert_eq!(store.put_manifest(&first, CreateRepo::No).await.unwrap(), PutOutcome::Stored);
    let second = manifest(&imm, "i2", vec![d1.clone()], Some("v1"));
    assert_eq!(
        store.put_manifest(&second, CreateRepo::No).await.unwrap(),
        PutOutcome::TagImmutable { existing: first.digest.clone() }
    );
    assert!(store.resolve(&imm, &Reference::Digest(second.digest.clone())).await.unwrap().is_none());
    let mutable = crate::RepositorySettings::default();
    let to_mutable = crate::RepositorySettingsChange {
        tag_mutability: Some(berth_types::TagMutability::Mutable),
        ..Default::default()
    };
    assert_eq!(store.update_repository(&imm, &to_mutable).await.unwrap().unwrap().settings, mutable);
    assert_eq!(store.put_manifest(&second, CreateRepo::No).await.unwrap(), PutOutcome::Stored);
    assert!(store.update_repository(&repo("no/such"), &to_mutable).await.unwrap().is_none());
    let scan = crate::RepositorySettingsChange { scan_on_push: Some(true), ..Default::default() };
    let changed = store.update_repository(&imm, &scan).await.unwrap().unwrap().settings;
    assert_eq!(
        changed,
        crate::RepositorySettings { scan_on_push: true, ..mutable.clone() },
        "one change leaves the rest"
    );

    // Exclusion filters: immutable except tags matching `latest*` (and the reverse).
    let except = crate::RepositorySettingsChange {
        tag_mutability: Some(
            berth_types::TagMutability::parse("IMMUTABLE_WITH_EXCLUSION", vec!["latest*".into(), "dev".into()])
                .unwrap(),
        ),
        ..Default::default()
    };
    let settings = store.update_repository(&imm, &except).await.unwrap().unwrap().settings;
    assert_eq!(settings.tag_mutability.exclusions(), ["latest*", "dev"]);
    for (tag, first, second) in [("latest-x", "e1", "e2"), ("release", "e3", "e4")] {
        let one = manifest(&imm, first, vec![d1.clone()], Some(tag));
        assert_eq!(store.put_manifest(&one, CreateRepo::No).await.unwrap(), PutOutcome::Stored);
        let two = manifest(&imm, second, vec![d1.clone()], Some(tag));
        let outcome = store.put_manifest(&two, CreateRepo::No).await.unwrap();
        if tag == "release" {
            assert_eq!(outcome, PutOutcome::TagImmutable { existing: one.digest.clone() }, "{tag}");
        } else {
            assert_eq!(outcome, PutOutcome::Stored, "{tag} is excluded, so it moves");
        }
    }
    let reverse = crate::RepositorySettingsChange {
        tag_mutability: Some(
            berth_types::TagMutability::parse("MUTABLE_WITH_EXCLUSION", vec!["release".into()]).unwrap(),
        ),
        ..Default::default()
    };
    store.update_repository(&imm, &reverse).await.unwrap();
    let moved = manifest(&imm, "e5", vec![d1.clone()], Some("latest-x"));
    assert_eq!(store.put_manifest(&moved, CreateRepo::No).await.unwrap(), PutOutcome::Stored);
    let refused = manifest(&imm, "e6", vec![d1.clone()], Some("release"));
    assert!(matches!(store.put_manifest(&refused, CreateRepo::No).await.unwrap(), PutOutcome::TagImmutable { .. }));

    // Images as ECR lists them.
    let all = store.list_images(&a, crate::TagStatus::Any, &page(None, None)).await.unwrap();
    assert_eq!(all.items.len(), 3, "m2, idx and sig remain");
    let m2_rec = store.get_image(&a, &m2.digest).await.unwrap().unwrap();
    assert_eq!(m2_rec.tags.iter().map(Tag::as_str).collect::<Vec<_>>(), ["v1"]);
    assert_eq!(m2_rec.size, 6, "the bytes of its blobs");
    let untagged = store.list_images(&a, crate::TagStatus::Untagged, &page(None, None)).await.unwrap();
    assert_eq!(untagged.items.iter().map(|i| i.digest.clone()).collect::<Vec<_>>(), vec![sig.digest.clone()]);
    let tagged = store.list_images(&a, crate::TagStatus::Tagged, &page(Some(1), None)).await.unwrap();
    assert_eq!(tagged.items.len(), 1);
    let rest = store.list_images(&a, crate::TagStatus::Tagged, &page(Some(5), tagged.next.as_deref())).await.unwrap();
    assert_eq!(rest.items.len(), 1);
    assert!(store.get_image(&a, &digest("nope")).await.unwrap().is_none());
    assert_eq!(
        missed(store.list_images(&repo("nope"), crate::TagStatus::Any, &page(None, None)).await),
        no_repo(&repo("nope"))
    );

    // ECR's rule: removing an image's last tag removes the image, in one transaction.
    let drop = repo("drop/app");
    store.create_repository(&drop).await.unwrap();
    store.link_blob(&drop, &d1, 6, CreateRepo::No).await.unwrap();
    let img = manifest(&drop, "dropme", vec![d1.clone()], Some("x"));
    store.put_manifest(&img, CreateRepo::No).await.unwrap();
    store.put_manifest(&manifest(&drop, "dropme", vec![d1.clone()], Some("y")), CreateRepo::No).await.unwrap();
    assert_eq!(store.delete_tag(&drop, &Tag::parse("x").unwrap(), true).await.unwrap(), Some(img.digest.clone()));
    assert!(store.get_image(&drop, &img.digest).await.unwrap().is_some(), "another tag keeps it");
    assert_eq!(store.delete_tag(&drop, &Tag::parse("y").unwrap(), true).await.unwrap(), Some(img.digest.clone()));
    assert!(store.get_image(&drop, &img.digest).await.unwrap().is_none(), "its last tag took it");

    // A repository with images is deleted only with force, and then entirely.
    assert_eq!(store.delete_repository(&a, false).await.unwrap(), crate::DeleteRepository::NotEmpty);
    assert!(store.resolve(&a, &Reference::parse("v1").unwrap()).await.unwrap().is_some());
    assert!(matches!(store.delete_repository(&a, true).await.unwrap(), crate::DeleteRepository::Deleted(_)));
    assert!(!store.repository_exists(&a).await.unwrap());
    assert!(store.blob_in_repository(&a, &d1).await.unwrap().is_none());
    store.create_repository(&a).await.unwrap();
    assert!(store.resolve(&a, &Reference::parse("v1").unwrap()).await.unwrap().is_none(), "nothing comes back");

    identity(store).await;
    policies(store).await;
    pulls(store).await;
    registries(store).await;
    previews(store).await;
    restored_times(store).await;
}

async fn pulls(store: &dyn MetaStore) {
    let r = repo("pulls/app");
    store.create_repository(&r).await.unwrap();
    let m = manifest(&r, "pulled", vec![], Some("v1"));
    store.put_manifest(&m, CreateRepo::No).await.unwrap();
    assert_eq!(store.get_image(&r, &m.digest).await.unwrap().unwrap().last_pulled_at, None);
    let gone = digest("never stored");
    store.record_pulls(&[(r.clone(), m.digest.clone(), 2000), (r.clone(), gone, 5)]).await.unwrap();
    store.record_pulls(&[(r.clone(), m.digest.clone(), 1000)]).await.unwrap();
    let image = store.get_image(&r, &m.digest).await.unwrap().unwrap();
    assert_eq!(image.last_pulled_at, Some(2000), "the latest time is kept");
}

/// Times another store recorded, carried over when records are copied (`berth admin migrate`).
async fn restored_times(store: &dyn MetaStore) {
    let r = repo("restored/app");
    let twin = repo_in(OTHER_REGISTRY, "restored/app");
    let gone = repo("restored/none");
    for k in [&r, &twin] {
        store.create_repository(k).await.unwrap();
        store.put_manifest(&manifest(k, "restored", vec![], Some("v1")), CreateRepo::No).await.unwrap();
    }
    let m = digest("restored");
    assert!(store.restore_pushed_at(&r, &m, 1234).await.unwrap());
    assert_eq!(store.get_image(&r, &m).await.unwrap().unwrap().pushed_at, 1234);
    assert_ne!(store.get_image(&twin, &m).await.unwrap().unwrap().pushed_at, 1234, "another registry's image");
    let listed = store.list_images(&r, crate::TagStatus::Any, &page(None, None)).await.unwrap();
    assert_eq!(listed.items[0].pushed_at, 1234);
    assert!(!store.restore_pushed_at(&r, &digest("absent"), 1).await.unwrap());
    assert!(!store.restore_pushed_at(&gone, &m, 1).await.unwrap());

    assert!(store.restore_repository_created_at(&r, 99).await.unwrap());
    assert_eq!(store.get_repository(&r).await.unwrap().unwrap().created_at, 99);
    assert_ne!(store.get_repository(&twin).await.unwrap().unwrap().created_at, 99);
    assert!(!store.restore_repository_created_at(&gone, 1).await.unwrap());
}

/// Each account has its own registry: the same name in two registries is two repositories,
/// apart in everything, and a listing of one registry never shows another's.
async fn registries(store: &dyn MetaStore) {
    use crate::RepositoryPolicyKind::Access;
    let one = repo_in(REGISTRY, "shared/app");
    let two = repo_in(OTHER_REGISTRY, "shared/app");
    assert!(store.create_repository(&one).await.unwrap());
    assert!(!store.repository_exists(&two).await.unwrap());
    assert!(store.create_repository(&two).await.unwrap(), "the same name in another registry is another repository");
    assert_eq!(store.get_repository(&two).await.unwrap().unwrap().key, two);

    // Settings.
    let immutable = crate::RepositorySettingsChange {
        tag_mutability: Some(berth_types::TagMutability::Immutable),
        ..Default::default()
    };
    store.update_repository(&two, &immutable).await.unwrap().unwrap();
    assert_eq!(
        store.get_repository(&one).await.unwrap().unwrap().settings.tag_mutability,
        berth_types::TagMutability::Mutable
    );
    let kv = ("k".to_owned(), "v".to_owned());
    store.update_repository_tags(&two, std::slice::from_ref(&kv), &[]).await.unwrap();
    assert_eq!(store.update_repository_tags(&one, &[], &[]).await.unwrap(), Some(vec![]));

    // Blobs, and a mount from one registry into another.
    let layer = digest("registries layer");
    store.link_blob(&one, &layer, 5, CreateRepo::No).await.unwrap();
    assert_eq!(store.blob_in_repository(&two, &layer).await.unwrap(), None);
    assert!(store.mount_blob(&one, &two, &layer, CreateRepo::No).await.unwrap());
    assert_eq!(store.blob_in_repository(&two, &layer).await.unwrap(), Some(5));

    // Images and tags.
    let m_one = manifest(&one, "registries one", vec![layer.clone()], Some("v1"));
    let m_two = manifest(&two, "registries two", vec![layer.clone()], Some("v1"));
    assert_eq!(store.put_manifest(&m_one, CreateRepo::No).await.unwrap(), PutOutcome::Stored);
    assert_eq!(store.put_manifest(&m_two, CreateRepo::No).await.unwrap(), PutOutcome::Stored);
    let v1 = Reference::parse("v1").unwrap();
    assert_eq!(store.resolve(&one, &v1).await.unwrap().unwrap().payload, b"registries one");
    assert_eq!(store.resolve(&two, &v1).await.unwrap().unwrap().payload, b"registries two");
    assert!(store.resolve(&one, &Reference::Digest(m_two.digest.clone())).await.unwrap().is_none());
    assert!(store.get_image(&one, &m_two.digest).await.unwrap().is_none());
    let listed = store.list_images(&one, crate::TagStatus::Any, &page(None, None)).await.unwrap();
    assert_eq!(listed.items.iter().map(|i| &i.digest).collect::<Vec<_>>(), vec![&m_one.digest]);
    let other_tag = manifest(&two, "registries two", vec![layer.clone()], Some("only-two"));
    store.put_manifest(&other_tag, CreateRepo::No).await.unwrap();
    let tags = store.list_tags(&one, &page(None, None)).await.unwrap();
    assert_eq!(tags.items.iter().map(Tag::as_str).collect::<Vec<_>>(), ["v1"]);
    store
        .record_pulls(&[(two.clone(), m_one.digest.clone(), 7), (one.clone(), m_one.digest.clone(), 9)])
        .await
        .unwrap();
    assert_eq!(store.get_image(&one, &m_one.digest).await.unwrap().unwrap().last_pulled_at, Some(9));
    assert_eq!(store.get_image(&two, &m_two.digest).await.unwrap().unwrap().last_pulled_at, None);

    // Uploads.
    let up = UploadSession {
        id: UploadId::generate(),
        repository: two.clone(),
        offset: 0,
        hash_state: vec![],
        created_at: 1,
    };
    store.create_upload(&up, CreateRepo::No).await.unwrap();
    store.advance_upload(&up.id, 0, 3, &[1]).await.unwrap();
    assert_eq!(store.get_upload(&up.id).await.unwrap().unwrap().repository, two);

    // Policies and lifecycle runs.
    store.set_repository_policy(&one, Access, Some("p-one")).await.unwrap();
    assert_eq!(store.repository_policy(&two, Access).await.unwrap(), None);
    let expired = crate::Expiration {
        repository: two.clone(),
        digest: digest("registries expired"),
        tags: vec![],
        pushed_at: 1,
        rule_priority: 1,
        expired_at: 5,
    };
    store.record_lifecycle_run(&two, 5, std::slice::from_ref(&expired)).await.unwrap();
    assert_eq!(store.lifecycle_evaluated_at(&one).await.unwrap(), None);
    assert!(store.lifecycle_history(Some(&one), 10).await.unwrap().is_empty());
    assert_eq!(store.lifecycle_history(Some(&two), 10).await.unwrap(), vec![expired]);

    // Listings of one registry.
    let other_registry = account(OTHER_REGISTRY);
    let listed = store.list_repositories(&other_registry, &page(None, None)).await.unwrap();
    assert_eq!(listed.items, vec![name("shared/app")]);
    let records = store.list_repository_records(&other_registry, &page(None, None)).await.unwrap();
    assert_eq!(records.items.iter().map(|r| &r.key).collect::<Vec<_>>(), vec![&two]);
    let mine = store.list_repositories(&account(REGISTRY), &page(None, None)).await.unwrap().items;
    assert!(mine.contains(&name("shared/app")) && mine.len() > 1);
    assert!(store.list_repositories(&account("333333333333"), &page(None, None)).await.unwrap().items.is_empty());

    // The walk over every registry, in pages, in (registry, name) order.
    let mut all = Vec::new();
    let mut after: Option<RepositoryKey> = None;
    loop {
        let batch = store.list_all_repositories(after.as_ref(), 2).await.unwrap();
        assert!(batch.len() <= 2);
        let Some(last) = batch.last().cloned() else { break };
        all.extend(batch);
        after = Some(last);
    }
    let mut want: Vec<RepositoryKey> = mine.iter().map(|n| repo_in(REGISTRY, n.as_str())).collect();
    want.push(two.clone());
    assert_eq!(all, want);

    // Deleting one leaves the other whole.
    assert!(matches!(store.delete_repository(&one, true).await.unwrap(), crate::DeleteRepository::Deleted(_)));
    assert!(store.repository_exists(&two).await.unwrap());
    assert_eq!(store.resolve(&two, &v1).await.unwrap().unwrap().payload, b"registries two");
    assert_eq!(store.blob_in_repository(&two, &layer).await.unwrap(), Some(5));
    assert_eq!(store.get_upload(&up.id).await.unwrap().unwrap().offset, 3);
    assert_eq!(store.update_repository_tags(&two, &[], &[]).await.unwrap(), Some(vec![kv]));
    assert_eq!(
        store.get_repository(&two).await.unwrap().unwrap().settings.tag_mutability,
        berth_types::TagMutability::Immutable
    );
    assert_eq!(store.lifecycle_evaluated_at(&two).await.unwrap(), Some(5));
    assert_eq!(missed(store.list_tags(&one, &page(None, None)).await), no_repo(&one));
    assert!(store.delete_upload(&up.id).await.unwrap());
    assert!(matches!(store.delete_repository(&two, true).await.unwrap(), crate::DeleteRepository::Deleted(_)));
}

/// Every row of a preview that passes `filter`, read `limit` at a time.
async fn read_preview(
    store: &dyn MetaStore,
    r: &RepositoryKey,
    filter: crate::TagStatus,
    limit: usize,
) -> Vec<(u64, crate::PreviewRow)> {
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let p = store.get_preview_page(r, filter, after, limit).await.unwrap();
        assert_eq!(p.summary.expiring_total, 10, "the total counts every row, whatever the filter");
        assert_eq!((p.summary.policy_text.as_str(), p.summary.created_at), ("policy one", 100));
        assert!(p.rows.len() <= limit);
        seen.extend(p.rows);
        match p.next {
            Some(n) => after = Some(n),
            None => return seen,
        }
    }
}

/// Lifecycle previews: stored whole, read a page at a time, filtered, replaced, deleted, gone
/// with their repository.
async fn previews(store: &dyn MetaStore) {
    use crate::{PreviewRow, TagStatus};
    let r = repo("preview/app");
    let twin = repo_in(OTHER_REGISTRY, "preview/app");
    assert_eq!(missed(store.get_preview_page(&r, TagStatus::Any, None, 10).await), no_repo(&r));
    assert_eq!(missed(store.put_preview(&r, "p", &[], 1).await), no_repo(&r));
    store.create_repository(&r).await.unwrap();
    store.create_repository(&twin).await.unwrap();
    assert_eq!(missed(store.get_preview_page(&r, TagStatus::Any, None, 10).await), Missing::Preview(r.clone()));

    // Untagged: every third row.
    let row = |i: u32| PreviewRow {
        digest: digest(&format!("preview {i}")),
        tags: if i.is_multiple_of(3) {
            vec![]
        } else {
            vec![Tag::parse(&format!("t{i}")).unwrap(), Tag::parse("z").unwrap()]
        },
        pushed_at: i64::from(i) * 1000,
        rule_priority: 1 + i % 2,
    };
    let rows: Vec<PreviewRow> = (0..10).map(row).collect();
    store.put_preview(&r, "policy one", &rows, 100).await.unwrap();

    let all = read_preview(store, &r, TagStatus::Any, 4).await;
    assert_eq!(all.iter().map(|(p, _)| *p).collect::<Vec<_>>(), (0..10).collect::<Vec<u64>>());
    assert_eq!(all.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(), rows, "rows come back as stored");
    let untagged = read_preview(store, &r, TagStatus::Untagged, 3).await;
    assert_eq!(untagged.iter().map(|(p, _)| *p).collect::<Vec<_>>(), [0, 3, 6, 9]);
    let tagged = read_preview(store, &r, TagStatus::Tagged, 10).await;
    assert_eq!(tagged.iter().map(|(p, _)| *p).collect::<Vec<_>>(), [1, 2, 4, 5, 7, 8]);
    let first = store.get_preview_page(&r, TagStatus::Any, None, 4).await.unwrap();
    assert_eq!(first.next, Some(3));
    let last = store.get_preview_page(&r, TagStatus::Any, Some(7), 2).await.unwrap();
    assert_eq!((last.rows.len(), last.next), (2, None));

    // By digest (ECR's imageIds), in position order; a digest the preview does not hold is left out.
    let picked =
        store.get_preview_rows(&r, &[rows[5].digest.clone(), digest("absent"), rows[2].digest.clone()]).await.unwrap();
    assert_eq!(picked.rows.iter().map(|(p, _)| *p).collect::<Vec<_>>(), [2, 5]);
    assert_eq!(picked.next, None);

    // The same name in another registry has no preview.
    assert_eq!(missed(store.get_preview_page(&twin, TagStatus::Any, None, 10).await), Missing::Preview(twin.clone()));

    // A new preview replaces the old one.
    store.put_preview(&r, "policy two", &rows[..2], 200).await.unwrap();
    let p = store.get_preview_page(&r, TagStatus::Any, None, 10).await.unwrap();
    assert_eq!((p.summary.policy_text.as_str(), p.summary.expiring_total, p.rows.len()), ("policy two", 2, 2));
    assert!(store.get_preview_rows(&r, &[rows[5].digest.clone()]).await.unwrap().rows.is_empty());

    assert!(store.delete_preview(&r).await.unwrap());
    assert!(!store.delete_preview(&r).await.unwrap());
    assert_eq!(missed(store.get_preview_page(&r, TagStatus::Any, None, 10).await), Missing::Preview(r.clone()));

    // A preview goes with its repository.
    store.put_preview(&r, "policy three", &rows, 300).await.unwrap();
    assert!(matches!(store.delete_repository(&r, true).await.unwrap(), crate::DeleteRepository::Deleted(_)));
    store.create_repository(&r).await.unwrap();
    assert_eq!(missed(store.get_preview_page(&r, TagStatus::Any, None, 10).await), Missing::Preview(r.clone()));
    store.delete_repository(&r, true).await.unwrap();
    store.delete_repository(&twin, true).await.unwrap();
}

async fn identity(store: &dyn MetaStore) {
    use crate::{AccessKeyRecord, AccountRecord, UserRecord};
    let acct = AccountRecord { id: "111122223333".into(), name: "main".into(), created_at: 1 };
    store.create_account(&acct).await.unwrap();
    assert!(matches!(
        store.create_account(&acct).await,
        Err(Error::Conflict(Conflict::AccountExists(a))) if a == acct.id
    ));
    assert_eq!(store.list_accounts().await.unwrap(), vec![acct.clone()]);
    let user = |name: &str| UserRecord { account: acct.id.clone(), name: name.into(), created_at: 2 };
    assert_eq!(
        missed(store.create_user(&UserRecord { account: "999999999999".into(), ..user("x") }).await),
        Missing::Account("999999999999".into())
    );
    store.create_user(&user("bob")).await.unwrap();
    store.create_user(&user("alice")).await.unwrap();
    assert!(matches!(
        store.create_user(&user("bob")).await,
        Err(Error::Conflict(Conflict::UserExists { name, .. })) if name == "bob"
    ));
    assert_eq!(store.list_users(&acct.id).await.unwrap(), vec![user("alice"), user("bob")]);

    let key = |id: &str, user: &str| AccessKeyRecord {
        id: id.into(),
        account: acct.id.clone(),
        user: user.into(),
        sealed_secret: vec![1, 2, 3],
        created_at: 3,
    };
    store.put_access_key(&key("AKIA1", "bob"), false).await.unwrap();
    assert!(matches!(
        store.put_access_key(&key("AKIA1", "bob"), false).await,
        Err(Error::Conflict(Conflict::AccessKeyExists(k))) if k == "AKIA1"
    ));
    assert_eq!(
        missed(store.put_access_key(&key("AKIA2", "nobody"), false).await),
        Missing::User { account: acct.id.clone(), name: "nobody".into() }
    );
    let replaced = AccessKeyRecord { sealed_secret: vec![9], ..key("AKIA1", "bob") };
    store.put_access_key(&replaced, true).await.unwrap();
    assert_eq!(store.access_key("AKIA1").await.unwrap(), Some(replaced.clone()));
    store.put_access_key(&key("AKIA3", "bob"), false).await.unwrap();
    assert_eq!(store.list_access_keys(&acct.id, "bob").await.unwrap().len(), 2);
    assert!(store.delete_access_key("AKIA3").await.unwrap());
    assert!(!store.delete_access_key("AKIA3").await.unwrap());

    store.put_user_policy(&acct.id, "bob", "ro", "{}").await.unwrap();
    store.put_user_policy(&acct.id, "bob", "ro", "{\"v\":2}").await.unwrap();
    store.put_user_policy(&acct.id, "bob", "a", "{}").await.unwrap();
    assert!(matches!(
        store.put_user_policy(&acct.id, "nobody", "a", "{}").await,
        Err(Error::NotFound(Missing::User { .. }))
    ));
    assert_eq!(
        store.user_policies(&acct.id, "bob").await.unwrap(),
        vec![("a".into(), "{}".into()), ("ro".into(), "{\"v\":2}".into())]
    );
    assert!(store.delete_user_policy(&acct.id, "bob", "a").await.unwrap());
    assert!(!store.delete_user_policy(&acct.id, "bob", "a").await.unwrap());

    // Deleting a user takes its keys and policies.
    assert!(store.delete_user(&acct.id, "bob").await.unwrap());
    assert!(!store.delete_user(&acct.id, "bob").await.unwrap());
    assert_eq!(store.access_key("AKIA1").await.unwrap(), None);
    assert!(store.user_policies(&acct.id, "bob").await.unwrap().is_empty());
}

async fn policies(store: &dyn MetaStore) {
    use crate::RepositoryPolicyKind::{Access, Lifecycle};
    let r = repo("policy/app");
    assert_eq!(missed(store.repository_policy(&r, Access).await), no_repo(&r));
    assert_eq!(missed(store.set_repository_policy(&r, Access, Some("{}")).await), no_repo(&r));
    assert_eq!(missed(store.lifecycle_evaluated_at(&r).await), no_repo(&r));
    store.create_repository(&r).await.unwrap();
    assert_eq!(store.repository_policy(&r, Access).await.unwrap(), None);
    assert_eq!(store.set_repository_policy(&r, Access, Some("p1")).await.unwrap(), None);
    assert_eq!(store.set_repository_policy(&r, Lifecycle, Some("l1")).await.unwrap(), None);
    assert_eq!(store.set_repository_policy(&r, Access, Some("p2")).await.unwrap(), Some("p1".into()));
    assert_eq!(store.repository_policy(&r, Access).await.unwrap(), Some("p2".into()));
    assert_eq!(store.repository_policy(&r, Lifecycle).await.unwrap(), Some("l1".into()));
    assert_eq!(store.set_repository_policy(&r, Access, None).await.unwrap(), Some("p2".into()));
    assert_eq!(store.repository_policy(&r, Access).await.unwrap(), None);
    assert_eq!(store.repository_policy(&r, Lifecycle).await.unwrap(), Some("l1".into()), "kinds are apart");

    let (one, other) = (account("111122223333"), account("444455556666"));
    assert_eq!(store.registry_policy(&one).await.unwrap(), None);
    assert_eq!(store.set_registry_policy(&one, Some("r1")).await.unwrap(), None);
    assert_eq!(store.set_registry_policy(&one, Some("r2")).await.unwrap(), Some("r1".into()));
    assert_eq!(store.registry_policy(&one).await.unwrap(), Some("r2".into()));
    assert_eq!(store.registry_policy(&other).await.unwrap(), None);
    assert_eq!(store.set_registry_policy(&one, None).await.unwrap(), Some("r2".into()));
    assert_eq!(store.registry_policy(&one).await.unwrap(), None);

    assert_eq!(store.lifecycle_evaluated_at(&r).await.unwrap(), None);
    let e = |d: &str, at| crate::Expiration {
        repository: r.clone(),
        digest: digest(d),
        tags: vec!["a".into(), "b".into()],
        pushed_at: 1,
        rule_priority: 2,
        expired_at: at,
    };
    store.record_lifecycle_run(&r, 50, &[e("x", 50), e("y", 50)]).await.unwrap();
    store.record_lifecycle_run(&r, 60, &[]).await.unwrap();
    assert_eq!(store.lifecycle_evaluated_at(&r).await.unwrap(), Some(60));
    assert_eq!(store.lifecycle_history(Some(&r), 10).await.unwrap(), vec![e("y", 50), e("x", 50)]);
    assert_eq!(store.lifecycle_history(None, 1).await.unwrap(), vec![e("y", 50)]);
    assert!(store.lifecycle_history(Some(&repo("other/x")), 10).await.unwrap().is_empty());
}

/// Garbage-collection metadata (`GcMeta`), against a fresh, empty store. Each ordering of a
/// collection against a push is written out, as the rule in `berth_registry::gc` argues them.
///
/// # Panics
/// On the first behaviour that breaks the `GcMeta` contract.
pub async fn run_gc(store: &dyn MetaStore) {
    use crate::{LinkTarget, Reservation};
    let now = berth_types::now_ms();
    let later = now + 1_000_000_000;
    let a = repo("gc/one");
    let b = repo("gc/two");
    store.create_repository(&a).await.unwrap();
    store.create_repository(&b).await.unwrap();
    let granted = |r: Reservation| match r {
        Reservation::Granted(t) => t,
        Reservation::Collecting => panic!("reservation refused"),
    };

    // A reserved blob is linked while its reservation holds.
    let shared = digest("gc shared layer");
    let t = granted(store.reserve_blob(&shared, now).await.unwrap());
    let to_a = LinkTarget::Repository(a.clone(), CreateRepo::No);
    assert!(store.link_reserved(&to_a, &shared, 10, t).await.unwrap());
    assert_eq!(store.blob_in_repository(&a, &shared).await.unwrap(), Some(10));
    assert!(store.mount_blob(&a, &b, &shared, CreateRepo::No).await.unwrap());

    // Within the grace nothing goes; referenced blobs never go.
    assert!(store.collect_blobs(now - 1, now, None, 100, &[], None).await.unwrap().is_empty());
    let m = manifest(&a, "gc manifest", vec![shared.clone()], Some("v1"));
    assert_eq!(store.put_manifest(&m, CreateRepo::No).await.unwrap(), PutOutcome::Stored);
    assert!(store.collect_blobs(later, now, None, 100, &[], None).await.unwrap().is_empty());

    // Push first, then collection: the collection sees the reference (above). Collection
    // first, then push: the push finds the blob gone from the repository and stores nothing.
    let lone = digest("gc lone layer");
    let t = granted(store.reserve_blob(&lone, now).await.unwrap());
    assert!(store.link_reserved(&to_a, &lone, 4, t).await.unwrap());
    store.put_layer_inventory(&lone, 1, b"packages").await.unwrap();
    store.put_layer_inventory(&lone, 2, b"packages v2").await.unwrap();
    assert_eq!(store.layer_inventory(&lone, 1).await.unwrap(), Some(b"packages".to_vec()));
    // A digest the caller excludes (being stored right now) is left alone.
    assert!(store.collect_blobs(later, now, None, 100, std::slice::from_ref(&lone), None).await.unwrap().is_empty());
    // An incremental run reads only blobs touched since the last cutoff: `lone` was touched
    // before `later`, so a run looking from `later` on does not see it; one from before does.
    assert!(store.collect_blobs(later, now, None, 100, &[], Some(later)).await.unwrap().is_empty());
    let taken = store.collect_blobs(later, now, None, 100, &[], Some(now - 1)).await.unwrap();
    assert_eq!(taken, vec![crate::Collected { digest: lone.clone(), size: 4 }]);
    assert_eq!(store.blob_in_repository(&a, &lone).await.unwrap(), None);
    // Its layer inventories went with its record.
    assert_eq!(store.layer_inventory(&lone, 1).await.unwrap(), None);
    assert_eq!(store.layer_inventory(&lone, 2).await.unwrap(), None);
    // An inventory of a layer no blob record names is not kept (nothing would ever remove it).
    store.put_layer_inventory(&lone, 1, b"packages").await.unwrap();
    assert_eq!(store.layer_inventory(&lone, 1).await.unwrap(), None);
    let m2 = manifest(&a, "gc manifest 2", vec![lone.clone()], None);
    assert_eq!(
        store.put_manifest(&m2, CreateRepo::No).await.unwrap(),
        PutOutcome::MissingReferences(vec![lone.clone()])
    );

    // While the tombstone stands nothing may place the digest's bytes; an older reservation
    // is void for good, even after the tombstone goes.
    assert_eq!(store.reserve_blob(&lone, now).await.unwrap(), Reservation::Collecting);
    assert!(!store.link_reserved(&to_a, &lone, 4, t).await.unwrap());
    store.touch_blob(&lone, later, later).await.unwrap();
    assert_eq!(store.tombstones(10).await.unwrap(), vec![lone.clone()]);
    store.finish_tombstones(std::slice::from_ref(&lone)).await.unwrap();
    assert!(store.tombstones(10).await.unwrap().is_empty());
    let t2 = granted(store.reserve_blob(&lone, now).await.unwrap());
    assert_ne!(t2, t);
    assert!(!store.link_reserved(&to_a, &lone, 4, t).await.unwrap());

    // A reservation taken by a collection between reserve and link is refused.
    assert_eq!(store.forget_touches(later, std::slice::from_ref(&lone)).await.unwrap(), 0);
    assert_eq!(store.forget_touches(later, &[]).await.unwrap(), 1);
    assert!(!store.link_reserved(&to_a, &lone, 4, t2).await.unwrap());
    let t3 = granted(store.reserve_blob(&lone, now).await.unwrap());
    assert!(store.link_reserved(&to_a, &lone, 4, t3).await.unwrap());

    // A check by a client refreshes an old mark, so the blob outlives the check by the grace.
    store.touch_blob(&lone, later, later - 10).await.unwrap();
    assert!(store.collect_blobs(later, later, None, 100, &[], None).await.unwrap().is_empty());
    assert_eq!(store.collect_blobs(later + 1, later, None, 100, &[], None).await.unwrap().len(), 1);
    store.finish_tombstones(std::slice::from_ref(&lone)).await.unwrap();

    // Deleting the last manifest that references a blob touches it: it goes only after the
    // grace, counted from the deletion.
    let before_delete = berth_types::now_ms() - 1;
    assert!(store.delete_manifest(&a, &m.digest).await.unwrap());
    assert!(store.collect_blobs(before_delete, later, None, 100, &[], None).await.unwrap().is_empty());
    let taken = store.collect_blobs(later, later, None, 100, &[], None).await.unwrap();
    assert_eq!(taken.iter().map(|c| &c.digest).collect::<Vec<_>>(), vec![&shared]);
    assert_eq!(store.blob_in_repository(&b, &shared).await.unwrap(), None, "links in every repository go");
    store.finish_tombstones(std::slice::from_ref(&shared)).await.unwrap();

    // Bytes nobody recorded: first seen now, taken once the grace has passed since.
    let orphan = digest("gc orphan bytes");
    let recorded = digest("gc recorded");
    let t = granted(store.reserve_blob(&recorded, now).await.unwrap());
    assert!(store.link_reserved(&to_a, &recorded, 3, t).await.unwrap());
    let found = vec![orphan.clone(), recorded.clone()];
    assert!(store.claim_orphans(&found, now - 1, now).await.unwrap().is_empty());
    assert!(store.claim_orphans(&found, now, now).await.unwrap().is_empty());
    assert_eq!(store.claim_orphans(&found, now + 1, now + 1).await.unwrap(), vec![orphan.clone()]);
    assert_eq!(store.reserve_blob(&orphan, now).await.unwrap(), Reservation::Collecting);
    store.finish_tombstones(&[orphan]).await.unwrap();

    // Vulnerability-data generations are files of the blob store that no repository links:
    // the current and the previous one are never taken as orphans; an older one, forgotten by
    // the next publish, is.
    let gens: Vec<crate::VulnDbGeneration> =
        ["gc db one", "gc db two", "gc db three"].iter().map(|n| generation(n, now)).collect();
    let found: Vec<Digest> = gens.iter().map(|g| g.digest.clone()).collect();
    assert!(store.claim_orphans(&found, now - 1, now).await.unwrap().is_empty(), "first seen");
    for g in &gens {
        store.publish_vulndb(g, &job("rematch", "all", 0)).await.unwrap();
    }
    assert_eq!(store.claim_orphans(&found, later, later).await.unwrap(), vec![gens[0].digest.clone()]);
    assert!(store.claim_orphans(&found, later + 1, later + 1).await.unwrap().is_empty());
    assert!(store.tombstones(10).await.unwrap().contains(&gens[0].digest));
    store.finish_tombstones(&[gens[0].digest.clone()]).await.unwrap();
    assert_eq!(store.vulndb_generation().await.unwrap(), Some(gens[2].clone()));

    // Storage use: distinct referenced blobs plus manifests, per repository.
    let layer = digest("gc usage layer");
    for r in [&a, &b] {
        let t = granted(store.reserve_blob(&layer, now).await.unwrap());
        assert!(store.link_reserved(&LinkTarget::Repository(r.clone(), CreateRepo::No), &layer, 100, t).await.unwrap());
    }
    let m3 = manifest(&a, "gc usage", vec![layer.clone(), recorded.clone()], Some("u"));
    assert_eq!(store.put_manifest(&m3, CreateRepo::No).await.unwrap(), PutOutcome::Stored);
    let m4 = manifest(&b, "gc usage b", vec![layer.clone()], Some("u"));
    assert_eq!(store.put_manifest(&m4, CreateRepo::No).await.unwrap(), PutOutcome::Stored);
    let usage = store.storage_usage().await.unwrap();
    let ua = usage.repositories.iter().find(|u| u.repository == a).unwrap();
    assert_eq!((ua.manifests, ua.manifest_bytes, ua.blobs, ua.blob_bytes), (1, m3.payload.len() as u64, 2, 103));
    let ub = usage.repositories.iter().find(|u| u.repository == b).unwrap();
    assert_eq!((ub.manifests, ub.blobs, ub.blob_bytes), (1, 1, 100));
    assert_eq!((usage.blobs, usage.blob_bytes), (2, 103));
    assert_eq!(usage.manifest_bytes, (m3.payload.len() + m4.payload.len()) as u64);

    // Deleting a repository unreferences its blobs; shared ones stay referenced elsewhere.
    let record = store.get_repository(&a).await.unwrap().unwrap();
    assert_eq!(store.delete_repository(&a, true).await.unwrap(), crate::DeleteRepository::Deleted(record));
    let taken = store.collect_blobs(later, later, None, 100, &[], None).await.unwrap();
    assert_eq!(taken.iter().map(|c| &c.digest).collect::<Vec<_>>(), vec![&recorded]);
    assert_eq!(store.blob_in_repository(&b, &layer).await.unwrap(), Some(100));
    store.finish_tombstones(&[recorded]).await.unwrap();
}

fn job(kind: &str, key: &str, delay_ms: i64) -> crate::NewJob {
    crate::NewJob { kind: kind.into(), key: key.into(), payload: format!("payload of {key}").into_bytes(), delay_ms }
}

fn scan_request(
    r: &RepositoryKey,
    d: &Digest,
    kind: crate::ScanKind,
    now: i64,
    min: Option<i64>,
) -> crate::ScanRequest {
    crate::ScanRequest {
        repository: r.clone(),
        digest: d.clone(),
        kind,
        now_ms: now,
        min_interval_ms: min,
        job: job("scan", &format!("{r}@{d}"), 0),
    }
}

fn started(r: crate::ScanRequested) -> crate::ScanSummary {
    match r {
        crate::ScanRequested::Started(s) => s,
        crate::ScanRequested::TooSoon(s) => panic!("refused as too soon: {s:?}"),
    }
}

fn too_soon(r: crate::ScanRequested) -> crate::ScanSummary {
    match r {
        crate::ScanRequested::TooSoon(s) => s,
        crate::ScanRequested::Started(s) => panic!("started: {s:?}"),
    }
}

fn result_for(r: &RepositoryKey, d: &Digest, requested_at: Option<i64>, findings: &str) -> crate::ScanResult {
    crate::ScanResult {
        repository: r.clone(),
        digest: d.clone(),
        requested_at,
        status: crate::ScanStatus::Complete,
        description: Some("The scan was completed successfully.".into()),
        completed_at: 5_000,
        source_updated_at: Some(4_000),
        severity_counts: Some(r#"{"HIGH":1}"#.into()),
        inventory: Some(b"inventory one".to_vec()),
        findings: findings.as_bytes().to_vec(),
    }
}

/// Pushes a one-layer image (creating the repository), returning its digest.
async fn push_image(store: &dyn MetaStore, r: &RepositoryKey, body: &str, tag: Option<&str>) -> Digest {
    store.create_repository(r).await.unwrap();
    let layer = digest(&format!("layer of {body}"));
    store.link_blob(r, &layer, 7, CreateRepo::No).await.unwrap();
    let m = manifest(r, body, vec![layer], tag);
    assert_eq!(store.put_manifest(&m, CreateRepo::No).await.unwrap(), PutOutcome::Stored);
    m.digest
}

/// Scan records (`ScanMeta`), against a fresh, empty store: requests and their one-a-day
/// limit, results and the requests they answer, records gone with their images, layer
/// inventories, the walk over scanned images, scanning configuration, vulnerability-data
/// generations.
///
/// # Panics
/// On the first behaviour that breaks the `ScanMeta` contract.
pub async fn run_scan(store: &dyn MetaStore) {
    use crate::{ScanKind, ScanStatus};
    const DAY: i64 = 86_400_000;
    let r = repo("scan/app");
    let m = push_image(store, &r, "scan image", Some("v1")).await;
    let t0 = 1_000_000;

    // Only an image the repository holds is scanned.
    let absent = digest("scan absent");
    assert_eq!(
        missed(store.request_scan(&scan_request(&r, &absent, ScanKind::Basic, t0, Some(DAY))).await),
        Missing::Image(r.clone(), absent.clone())
    );
    let elsewhere = repo("scan/elsewhere");
    store.create_repository(&elsewhere).await.unwrap();
    assert_eq!(
        missed(store.request_scan(&scan_request(&elsewhere, &m, ScanKind::Basic, t0, None)).await),
        Missing::Image(elsewhere.clone(), m.clone())
    );
    assert_eq!(store.queued_jobs("scan").await.unwrap(), 0, "a refused request queues nothing");
    assert_eq!(store.scan_summaries(&r, std::slice::from_ref(&m)).await.unwrap(), vec![None]);
    assert!(store.scan_findings(&r, &m).await.unwrap().is_none());

    // A request records the scan IN_PROGRESS and queues its job, in one transaction.
    let first = started(store.request_scan(&scan_request(&r, &m, ScanKind::Basic, t0, Some(DAY))).await.unwrap());
    let want = crate::ScanSummary {
        repository: r.clone(),
        digest: m.clone(),
        kind: ScanKind::Basic,
        status: ScanStatus::InProgress,
        description: None,
        requested_at: t0,
        completed_at: None,
        source_updated_at: None,
        severity_counts: None,
    };
    assert_eq!(first, want);
    assert_eq!(store.queued_jobs("scan").await.unwrap(), 1);
    assert_eq!(
        store.scan_summaries(&r, &[absent.clone(), m.clone()]).await.unwrap(),
        vec![None, Some(want.clone())],
        "in the order asked"
    );
    assert_eq!(store.scan_findings(&r, &m).await.unwrap(), Some((want.clone(), vec![])));
    assert_eq!(store.image_inventory(&r, &m).await.unwrap(), None);

    // Within the interval a scan of the same kind is refused and nothing changes.
    let again = store.request_scan(&scan_request(&r, &m, ScanKind::Basic, t0 + DAY - 1, Some(DAY))).await.unwrap();
    assert_eq!(too_soon(again), want);
    assert_eq!(store.queued_jobs("scan").await.unwrap(), 1);
    assert_eq!(store.scan_summaries(&r, std::slice::from_ref(&m)).await.unwrap(), vec![Some(want.clone())]);

    // A result for another request is not written; the one for this request is.
    assert!(!store.finish_scan(&result_for(&r, &m, Some(t0 - 1), "stale")).await.unwrap());
    assert!(!store.finish_scan(&result_for(&r, &absent, Some(t0), "nothing")).await.unwrap());
    assert!(!store.finish_scan(&result_for(&elsewhere, &m, Some(t0), "nothing")).await.unwrap());
    assert!(store.finish_scan(&result_for(&r, &m, Some(t0), "findings one")).await.unwrap());
    let done = crate::ScanSummary {
        status: ScanStatus::Complete,
        description: Some("The scan was completed successfully.".into()),
        completed_at: Some(5_000),
        source_updated_at: Some(4_000),
        severity_counts: Some(r#"{"HIGH":1}"#.into()),
        ..want.clone()
    };
    assert_eq!(store.scan_findings(&r, &m).await.unwrap(), Some((done.clone(), b"findings one".to_vec())));
    assert_eq!(store.image_inventory(&r, &m).await.unwrap(), Some(b"inventory one".to_vec()));

    // Another kind may be asked for within the interval; the new request keeps the previous
    // findings and inventory until its result replaces them.
    let enhanced =
        started(store.request_scan(&scan_request(&r, &m, ScanKind::Enhanced, t0 + 10, Some(DAY))).await.unwrap());
    let pending = crate::ScanSummary {
        kind: ScanKind::Enhanced,
        status: ScanStatus::InProgress,
        description: None,
        requested_at: t0 + 10,
        ..done.clone()
    };
    assert_eq!(enhanced, pending);
    assert_eq!(store.scan_findings(&r, &m).await.unwrap(), Some((pending.clone(), b"findings one".to_vec())));
    assert_eq!(store.image_inventory(&r, &m).await.unwrap(), Some(b"inventory one".to_vec()));
    assert!(!store.finish_scan(&result_for(&r, &m, Some(t0), "late")).await.unwrap(), "the replaced request's result");
    assert_eq!(store.scan_findings(&r, &m).await.unwrap().unwrap().1, b"findings one");

    // A re-match (no request named) writes over whatever is on record; no inventory keeps the
    // stored one.
    let rematch = crate::ScanResult {
        status: ScanStatus::Failed,
        description: None,
        completed_at: 9_000,
        source_updated_at: None,
        severity_counts: None,
        inventory: None,
        ..result_for(&r, &m, None, "findings two")
    };
    assert!(store.finish_scan(&rematch).await.unwrap());
    let (summary, findings) = store.scan_findings(&r, &m).await.unwrap().unwrap();
    assert_eq!(
        (summary.status, summary.requested_at, summary.completed_at),
        (ScanStatus::Failed, t0 + 10, Some(9_000))
    );
    assert_eq!((summary.description, summary.source_updated_at, summary.severity_counts), (None, None, None));
    assert_eq!(findings, b"findings two");
    assert_eq!(store.image_inventory(&r, &m).await.unwrap(), Some(b"inventory one".to_vec()));

    // Past the interval, or without a limit, a request starts again.
    started(store.request_scan(&scan_request(&r, &m, ScanKind::Enhanced, t0 + 11, None)).await.unwrap());
    too_soon(store.request_scan(&scan_request(&r, &m, ScanKind::Enhanced, t0 + 12, Some(DAY))).await.unwrap());
    let later =
        started(store.request_scan(&scan_request(&r, &m, ScanKind::Enhanced, t0 + 11 + DAY, Some(DAY))).await.unwrap());
    assert_eq!(later.requested_at, t0 + 11 + DAY);
    // Each request queued the image's one job: it waits once.
    assert_eq!(store.queued_jobs("scan").await.unwrap(), 1);
    let claimed = store.claim_jobs(&["scan"], "scanner", 60_000, 10).await.unwrap();
    assert_eq!(claimed.iter().map(|j| j.key.as_str()).collect::<Vec<_>>(), [format!("{r}@{m}")]);
    assert!(store.finish_job(claimed[0].id, "scanner").await.unwrap());

    // Layer inventories, by (layer, detection version).
    let layer = digest("layer of scan image");
    assert_eq!(store.layer_inventory(&layer, 1).await.unwrap(), None);
    store.put_layer_inventory(&layer, 1, b"v1 packages").await.unwrap();
    store.put_layer_inventory(&layer, 2, b"v2 packages").await.unwrap();
    store.put_layer_inventory(&layer, 1, b"v1 packages again").await.unwrap();
    assert_eq!(store.layer_inventory(&layer, 1).await.unwrap(), Some(b"v1 packages again".to_vec()));
    assert_eq!(store.layer_inventory(&layer, 2).await.unwrap(), Some(b"v2 packages".to_vec()));
    assert_eq!(store.layer_inventory(&layer, 3).await.unwrap(), None);
    assert_eq!(store.layer_inventory(&digest("another layer"), 1).await.unwrap(), None);

    // Scanning configuration, per registry.
    let (one, two) = (account(REGISTRY), account(OTHER_REGISTRY));
    assert_eq!(store.scanning_configuration(&one).await.unwrap(), None);
    store.put_scanning_configuration(&one, r#"{"scanType":"BASIC"}"#).await.unwrap();
    store.put_scanning_configuration(&one, r#"{"scanType":"ENHANCED"}"#).await.unwrap();
    assert_eq!(store.scanning_configuration(&one).await.unwrap().as_deref(), Some(r#"{"scanType":"ENHANCED"}"#));
    assert_eq!(store.scanning_configuration(&two).await.unwrap(), None);

    scanned_walk(store, &r, &m).await;
    scans_go_with_their_images(store).await;
    vulndb_generations(store).await;
}

/// The walk over images with an inventory, in (registry, repository, digest) order, in pages.
async fn scanned_walk(store: &dyn MetaStore, r: &RepositoryKey, m: &Digest) {
    let mut want = vec![(r.clone(), m.clone())];
    for (registry, name, body) in [
        (OTHER_REGISTRY, "scan/app", "walk a"),
        (REGISTRY, "scan/zz", "walk b"),
        (REGISTRY, "scan/zz", "walk c"),
        (REGISTRY, "scan/aa", "walk d"),
    ] {
        let k = repo_in(registry, name);
        let d = push_image(store, &k, body, None).await;
        let at = started(store.request_scan(&scan_request(&k, &d, crate::ScanKind::Basic, 7, None)).await.unwrap());
        assert!(store.finish_scan(&result_for(&k, &d, Some(at.requested_at), "f")).await.unwrap());
        want.push((k, d));
    }
    // Scanned without an inventory, or asked for and not finished: not walked.
    let k = repo("scan/aa");
    let pending = push_image(store, &k, "walk pending", None).await;
    started(store.request_scan(&scan_request(&k, &pending, crate::ScanKind::Basic, 7, None)).await.unwrap());
    let bare = push_image(store, &k, "walk bare", None).await;
    let at = started(store.request_scan(&scan_request(&k, &bare, crate::ScanKind::Basic, 7, None)).await.unwrap());
    let no_inventory = crate::ScanResult { inventory: None, ..result_for(&k, &bare, Some(at.requested_at), "f") };
    assert!(store.finish_scan(&no_inventory).await.unwrap());

    want.sort_by(|a, b| {
        (a.0.registry.as_str(), a.0.name.as_str(), a.1.as_str()).cmp(&(
            b.0.registry.as_str(),
            b.0.name.as_str(),
            b.1.as_str(),
        ))
    });
    assert_eq!(store.scanned_images(None, 100).await.unwrap(), want);
    let mut walked = Vec::new();
    let mut after: Option<(RepositoryKey, Digest)> = None;
    loop {
        let batch = store.scanned_images(after.as_ref(), 2).await.unwrap();
        assert!(batch.len() <= 2);
        let Some(last) = batch.last().cloned() else { break };
        walked.extend(batch);
        after = Some(last);
    }
    assert_eq!(walked, want);
}

/// An image's scan record goes with the image, whichever way the image goes.
async fn scans_go_with_their_images(store: &dyn MetaStore) {
    let r = repo("scan/deleted");
    let scanned = async |body: &str, tag: Option<&str>| {
        let d = push_image(store, &r, body, tag).await;
        let at = started(store.request_scan(&scan_request(&r, &d, crate::ScanKind::Basic, 1, None)).await.unwrap());
        assert!(store.finish_scan(&result_for(&r, &d, Some(at.requested_at), "f")).await.unwrap());
        assert!(store.scan_summaries(&r, std::slice::from_ref(&d)).await.unwrap()[0].is_some());
        (d, at.requested_at)
    };
    let gone = async |d: &Digest, body: &str, requested_at: i64| {
        assert!(!store.finish_scan(&result_for(&r, d, Some(requested_at), "late")).await.unwrap(), "{body}");
        assert!(!store.finish_scan(&result_for(&r, d, None, "late")).await.unwrap(), "{body}");
        assert!(!store.scanned_images(None, 1000).await.unwrap().iter().any(|(k, x)| k == &r && x == d), "{body}");
        // The same image pushed again has no scan on record.
        push_image(store, &r, body, None).await;
        assert_eq!(store.scan_summaries(&r, std::slice::from_ref(d)).await.unwrap(), vec![None], "{body}");
        assert_eq!(store.image_inventory(&r, d).await.unwrap(), None, "{body}");
        assert!(store.scan_findings(&r, d).await.unwrap().is_none(), "{body}");
    };

    let (d, at) = scanned("deleted by digest", Some("a")).await;
    assert!(store.delete_manifest(&r, &d).await.unwrap());
    gone(&d, "deleted by digest", at).await;

    let (d, at) = scanned("deleted by its last tag", Some("b")).await;
    assert_eq!(store.delete_tag(&r, &Tag::parse("b").unwrap(), true).await.unwrap(), Some(d.clone()));
    gone(&d, "deleted by its last tag", at).await;

    // A tag deleted without dropping the image keeps the scan.
    let (d, _) = scanned("untagged", Some("c")).await;
    assert_eq!(store.delete_tag(&r, &Tag::parse("c").unwrap(), false).await.unwrap(), Some(d.clone()));
    assert!(store.scan_summaries(&r, std::slice::from_ref(&d)).await.unwrap()[0].is_some());

    let (d, at) = scanned("deleted with the repository", Some("d")).await;
    assert!(matches!(store.delete_repository(&r, true).await.unwrap(), crate::DeleteRepository::Deleted(_)));
    gone(&d, "deleted with the repository", at).await;
    assert_eq!(store.scan_summaries(&r, &[digest("untagged")]).await.unwrap(), vec![None]);
    store.delete_repository(&r, true).await.unwrap();
}

fn generation(name: &str, at: i64) -> crate::VulnDbGeneration {
    crate::VulnDbGeneration {
        digest: digest(name),
        size: 1234,
        imported_at: at,
        source_updated_at: Some(at - 1),
        summary: format!(r#"{{"name":"{name}"}}"#),
    }
}

/// Publishing vulnerability data: the new generation serves, the previous stays recorded,
/// and the re-match job is queued with it.
async fn vulndb_generations(store: &dyn MetaStore) {
    assert_eq!(store.vulndb_generation().await.unwrap(), None);
    let rematch = job("rematch", "all", 0);
    let (g1, g2, g3) = (generation("db one", 10), generation("db two", 20), generation("db three", 30));
    assert_eq!(store.publish_vulndb(&g1, &rematch).await.unwrap(), None);
    assert_eq!(store.vulndb_generation().await.unwrap(), Some(g1.clone()));
    assert_eq!(store.queued_jobs("rematch").await.unwrap(), 1);
    assert_eq!(store.publish_vulndb(&g2, &rematch).await.unwrap(), Some(g1.clone()));
    assert_eq!(store.publish_vulndb(&g3, &rematch).await.unwrap(), Some(g2.clone()));
    assert_eq!(store.vulndb_generation().await.unwrap(), Some(g3.clone()));
    assert_eq!(store.queued_jobs("rematch").await.unwrap(), 1, "one re-match waits");
    let g4 = crate::VulnDbGeneration { source_updated_at: None, ..generation("db four", 40) };
    assert_eq!(store.publish_vulndb(&g4, &rematch).await.unwrap(), Some(g3));
    assert_eq!(store.vulndb_generation().await.unwrap(), Some(g4));
}

/// The job queue (`JobQueue`), against a fresh, empty store: one waiting job per key, a job
/// queued while it runs runs once more, claims that expire pass to another claimer, a stale
/// holder can do nothing to a job, delays are honoured.
///
/// It waits out short leases and delays (about a second in all) with `std::thread::sleep`
/// (this crate has no runtime of its own): run it on a multi-threaded runtime.
///
/// # Panics
/// On the first behaviour that breaks the `JobQueue` contract.
pub async fn run_jobs(store: &dyn MetaStore) {
    let kinds = ["test"];
    let claim = async |holder: &str, lease_ms: i64, limit: usize| {
        store.claim_jobs(&kinds, holder, lease_ms, limit).await.unwrap()
    };
    let keys = |jobs: &[crate::Job]| jobs.iter().map(|j| j.key.clone()).collect::<Vec<_>>();

    // One waiting job per (kind, key); the earlier due time wins.
    assert!(store.enqueue(&job("test", "k1", 0)).await.unwrap());
    assert!(!store.enqueue(&job("test", "k1", 0)).await.unwrap());
    assert!(store.enqueue(&job("test", "k2", 600_000)).await.unwrap());
    assert!(store.enqueue(&job("other", "k1", 0)).await.unwrap(), "another kind, another job");
    assert_eq!(store.queued_jobs("test").await.unwrap(), 2);
    assert_eq!(store.queued_jobs("other").await.unwrap(), 1);
    assert_eq!(store.queued_jobs("none").await.unwrap(), 0);
    std::thread::sleep(std::time::Duration::from_millis(5));
    assert!(!store.enqueue(&job("test", "k2", 0)).await.unwrap());
    assert!(!store.enqueue(&job("test", "k2", 900_000)).await.unwrap(), "a later time does not postpone it");

    // Due jobs, oldest first, of the kinds asked for.
    let got = claim("h1", 60_000, 10).await;
    assert_eq!(keys(&got), ["k1", "k2"]);
    assert_eq!(got[0].payload, b"payload of k1");
    assert_eq!((got[0].kind.as_str(), got[0].attempts, got[1].attempts), ("test", 1, 1));
    let (k1, k2) = (got[0].id, got[1].id);
    assert!(claim("h2", 60_000, 10).await.is_empty(), "held jobs are not claimed again");
    assert_eq!(store.queued_jobs("test").await.unwrap(), 2, "running jobs count");

    // Queued again while it runs: it runs once more after it finishes.
    let mut changed = job("test", "k1", 0);
    changed.payload = b"newer payload".to_vec();
    assert!(store.enqueue(&changed).await.unwrap());
    assert!(store.enqueue(&changed).await.unwrap());
    assert_eq!(store.queued_jobs("test").await.unwrap(), 2);
    assert!(claim("h2", 60_000, 10).await.is_empty(), "still running");
    assert!(!store.finish_job(k1, "h2").await.unwrap(), "not its holder");
    assert!(store.finish_job(k1, "h1").await.unwrap());
    assert!(!store.finish_job(k1, "h1").await.unwrap(), "given back");
    let rerun = claim("h2", 60_000, 10).await;
    assert_eq!(keys(&rerun), ["k1"]);
    assert_eq!((rerun[0].attempts, rerun[0].payload.as_slice()), (1, b"newer payload".as_slice()));
    assert!(store.finish_job(rerun[0].id, "h2").await.unwrap());
    assert!(claim("h2", 60_000, 10).await.is_empty(), "finished without a new request: gone");
    assert_eq!(store.queued_jobs("test").await.unwrap(), 1);

    // A failed job is given back, due after its delay.
    assert!(!store.retry_job(k2, "h2", 0, "not mine").await.unwrap());
    assert!(store.retry_job(k2, "h1", 300, "boom").await.unwrap());
    assert!(!store.renew_job(k2, "h1", 60_000).await.unwrap(), "given back");
    assert!(claim("h2", 60_000, 10).await.is_empty(), "not due yet");
    std::thread::sleep(std::time::Duration::from_millis(400));
    let retried = claim("h2", 60_000, 10).await;
    assert_eq!((keys(&retried), retried[0].attempts), (vec!["k2".to_owned()], 2));
    assert!(store.finish_job(k2, "h2").await.unwrap());
    assert_eq!(store.queued_jobs("test").await.unwrap(), 0);

    // A claim its holder stops renewing expires, and another claimer takes the job; the old
    // holder can no longer renew, finish or give it back.
    assert!(store.enqueue(&job("test", "k3", 0)).await.unwrap());
    let first = claim("h1", 300, 10).await;
    assert_eq!(keys(&first), ["k3"]);
    assert!(store.renew_job(first[0].id, "h1", 300).await.unwrap());
    assert!(!store.renew_job(first[0].id, "h2", 300).await.unwrap());
    assert!(claim("h2", 60_000, 10).await.is_empty(), "the claim holds");
    assert!(store.enqueue(&job("test", "k3", 0)).await.unwrap(), "queued again while held");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(!store.enqueue(&job("test", "k3", 0)).await.unwrap(), "an expired claim: the job waits");
    let second = claim("h2", 60_000, 10).await;
    assert_eq!((keys(&second), second[0].id, second[0].attempts), (vec!["k3".to_owned()], first[0].id, 2));
    // The new claim covers the request made during the old one: finishing it ends the job.
    assert!(!store.renew_job(first[0].id, "h1", 60_000).await.unwrap());
    assert!(!store.finish_job(first[0].id, "h1").await.unwrap());
    assert!(!store.retry_job(first[0].id, "h1", 0, "stale").await.unwrap());
    assert!(store.renew_job(second[0].id, "h2", 60_000).await.unwrap());
    assert!(store.finish_job(second[0].id, "h2").await.unwrap());
    assert_eq!(store.queued_jobs("test").await.unwrap(), 0);

    // A claim takes at most `limit`; two claimers never share a job.
    for i in 0..5 {
        assert!(store.enqueue(&job("test", &format!("n{i}"), 0)).await.unwrap());
    }
    let a = claim("a", 60_000, 2).await;
    let b = claim("b", 60_000, 10).await;
    assert_eq!((a.len(), b.len()), (2, 3));
    let mut all: Vec<i64> = a.iter().chain(&b).map(|j| j.id).collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 5);
    for j in &a {
        assert!(store.finish_job(j.id, "a").await.unwrap());
    }
    for j in &b {
        assert!(!store.finish_job(j.id, "a").await.unwrap());
        assert!(store.finish_job(j.id, "b").await.unwrap());
    }
    assert!(store.claim_jobs(&[], "a", 60_000, 10).await.unwrap().is_empty());

    // Several kinds at once: the oldest due of them all, whichever kind.
    for (kind, key) in [("x", "1"), ("y", "2"), ("x", "3"), ("y", "4")] {
        assert!(store.enqueue(&job(kind, key, 0)).await.unwrap());
        std::thread::sleep(std::time::Duration::from_millis(3));
    }
    let mixed = store.claim_jobs(&["x", "y", "x"], "m", 60_000, 3).await.unwrap();
    assert_eq!(keys(&mixed), ["1", "2", "3"]);
    let rest = store.claim_jobs(&["y", "x"], "m", 60_000, 3).await.unwrap();
    assert_eq!(keys(&rest), ["4"]);
    for j in mixed.iter().chain(&rest) {
        assert!(store.finish_job(j.id, "m").await.unwrap());
    }
    let other = store.claim_jobs(&["other", "none"], "a", 60_000, 10).await.unwrap();
    assert_eq!(keys(&other), ["k1"]);
    assert!(store.finish_job(other[0].id, "a").await.unwrap());
    assert_eq!(store.queued_jobs("other").await.unwrap(), 0);
}
