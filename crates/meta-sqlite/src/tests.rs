use std::path::Path;

use berth_meta::{
    BlobIndex, ImageMeta, MaintenanceMeta, PolicyMeta, PreviewMeta, PreviewRow, RepoMeta, RepositoryPolicyKind,
    UploadMeta,
};
use berth_types::{AccountId, PageRequest, Reference, RepositoryKey, RepositoryName, Tag, UploadId};
use rusqlite::Connection;

use super::SqliteMeta;

/// The account a test server serves by default.
pub(crate) fn default_account() -> AccountId {
    AccountId::parse("999988887777").unwrap()
}

fn key(registry: &str, name: &str) -> RepositoryKey {
    RepositoryKey::new(AccountId::parse(registry).unwrap(), RepositoryName::parse(name).unwrap())
}

fn all() -> PageRequest {
    PageRequest { limit: None, after: None }
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteMeta::open(&dir.path().join("meta.db"), &default_account()).await.unwrap();
    berth_meta::testsuite::run(&store).await;
    store.close().await;
    // Reopening runs no migration twice and keeps the data.
    let store = SqliteMeta::open(&dir.path().join("meta.db"), &default_account()).await.unwrap();
    assert!(store.repository_exists(&key(berth_meta::testsuite::REGISTRY, "team/app")).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn scan_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteMeta::open(&dir.path().join("meta.db"), &default_account()).await.unwrap();
    berth_meta::testsuite::run_scan(&store).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn job_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteMeta::open(&dir.path().join("meta.db"), &default_account()).await.unwrap();
    berth_meta::testsuite::run_jobs(&store).await;
    store.close().await;
}

/// Many concurrent writers share commits, and every one gets its own answer.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_writes_each_get_their_result() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SqliteMeta::open(&dir.path().join("meta.db"), &default_account()).await.unwrap());
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = std::sync::Arc::clone(&store);
            tokio::spawn(async move {
                store.create_repository(&key("111111111111", &format!("r/{}", i % 50))).await.unwrap()
            })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        created += usize::from(t.await.unwrap());
    }
    assert_eq!(created, 50, "exactly one creator per name");
    let registry = AccountId::parse("111111111111").unwrap();
    assert_eq!(store.list_repositories(&registry, &all()).await.unwrap().items.len(), 50);
}

/// Writes a database as the release before registries per account left it: schema 1 to 5,
/// repositories with and without an owner, and something of every kind in them.
fn old_database(path: &Path) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;").unwrap();
    super::migrate::migrate_to(&conn, &default_account(), 5).unwrap();
    assert_eq!(conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)).unwrap(), 5);
    let d = |s: &str| berth_types::Digest::of(berth_types::Algorithm::Sha256, s.as_bytes()).to_string();
    conn.execute_batch(&format!(
        "INSERT INTO repositories (id, name, created_at, owner, policy, lifecycle_policy, tag_mutability,
             tag_mutability_exclusions, lifecycle_evaluated_at)
         VALUES (7, 'team/app', 1, NULL, 'policy-default', 'lifecycle-default', 'IMMUTABLE_WITH_EXCLUSION', 'latest*', 40),
                (3, 'team/owned', 2, '333333333333', 'policy-owned', NULL, 'MUTABLE', '', NULL);
         INSERT INTO blobs (digest, size, created_at) VALUES ('{l1}', 11, 1), ('{l2}', 22, 1);
         INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES (7, '{l1}', 1), (3, '{l2}', 1);
         INSERT INTO manifests (repository_id, digest, media_type, size, payload, created_at)
         VALUES (7, '{m1}', 'application/vnd.oci.image.manifest.v1+json', 2, X'6D31', 5),
                (3, '{m2}', 'application/vnd.oci.image.manifest.v1+json', 2, X'6D32', 6);
         INSERT INTO manifest_references (repository_id, manifest_digest, target, kind)
         VALUES (7, '{m1}', '{l1}', 0), (3, '{m2}', '{l2}', 0);
         INSERT INTO tags (repository_id, name, digest, updated_at) VALUES (7, 'v1', '{m1}', 5), (3, 'v2', '{m2}', 6);
         INSERT INTO uploads (id, repository_id, \"offset\", hash_state, created_at, updated_at)
         VALUES ('{u}', 3, 4, X'01', 1, 1);
         INSERT INTO repository_tags (repository_id, key, value) VALUES (7, 'team', 'x');
         INSERT INTO lifecycle_expirations (repository, digest, tags, pushed_at, rule_priority, expired_at)
         VALUES ('team/app', '{m3}', 'old', 1, 1, 30), ('team/owned', '{m3}', '', 1, 1, 31),
                ('gone/app', '{m3}', '', 1, 1, 32);",
        l1 = d("l1"),
        l2 = d("l2"),
        m1 = berth_types::Digest::of(berth_types::Algorithm::Sha256, b"m1"),
        m2 = berth_types::Digest::of(berth_types::Algorithm::Sha256, b"m2"),
        m3 = d("m3"),
        u = upload_id(),
    ))
    .unwrap();
}

fn upload_id() -> UploadId {
    UploadId::parse("0190c1d2-7a3b-7c4d-8e5f-0123456789ab").unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_of_the_previous_release_migrates_into_registries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.db");
    old_database(&path);
    let store = SqliteMeta::open(&path, &default_account()).await.unwrap();

    // Without an owner: the default account's registry. With one: the owner's.
    let mine = key("999988887777", "team/app");
    let owned = key("333333333333", "team/owned");
    let default = default_account();
    let owner = AccountId::parse("333333333333").unwrap();
    assert_eq!(store.list_repositories(&default, &all()).await.unwrap().items, vec![mine.name.clone()]);
    assert_eq!(store.list_repositories(&owner, &all()).await.unwrap().items, vec![owned.name.clone()]);
    assert_eq!(store.list_all_repositories(None, 10).await.unwrap(), vec![owned.clone(), mine.clone()]);

    let record = store.get_repository(&mine).await.unwrap().unwrap();
    assert_eq!((record.created_at, record.settings.tag_mutability.as_str()), (1, "IMMUTABLE_WITH_EXCLUSION"));
    assert_eq!(record.settings.tag_mutability.exclusions(), ["latest*"]);
    let m1 = berth_types::Digest::of(berth_types::Algorithm::Sha256, b"m1");
    let m2 = berth_types::Digest::of(berth_types::Algorithm::Sha256, b"m2");
    assert_eq!(store.resolve(&mine, &Reference::parse("v1").unwrap()).await.unwrap().unwrap().payload, b"m1");
    assert_eq!(store.resolve(&owned, &Reference::Digest(m2.clone())).await.unwrap().unwrap().payload, b"m2");
    let image = store.get_image(&owned, &m2).await.unwrap().unwrap();
    assert_eq!((image.size, image.tags), (22, vec![Tag::parse("v2").unwrap()]));
    let l1 = berth_types::Digest::of(berth_types::Algorithm::Sha256, b"l1");
    assert_eq!(store.blob_in_repository(&mine, &l1).await.unwrap(), Some(11));
    assert_eq!(store.blob_in_repository(&owned, &l1).await.unwrap(), None);
    use RepositoryPolicyKind::{Access, Lifecycle};
    assert_eq!(store.repository_policy(&mine, Access).await.unwrap().as_deref(), Some("policy-default"));
    assert_eq!(store.repository_policy(&mine, Lifecycle).await.unwrap().as_deref(), Some("lifecycle-default"));
    assert_eq!(store.repository_policy(&owned, Access).await.unwrap().as_deref(), Some("policy-owned"));
    assert_eq!(store.lifecycle_evaluated_at(&mine).await.unwrap(), Some(40));
    let upload = store.get_upload(&upload_id()).await.unwrap().unwrap();
    assert_eq!((upload.repository, upload.offset), (owned.clone(), 4));
    assert_eq!(store.update_repository_tags(&mine, &[], &[]).await.unwrap(), Some(vec![("team".into(), "x".into())]));
    let history = store.lifecycle_history(None, 10).await.unwrap();
    let places: Vec<_> = history.iter().map(|e| e.repository.to_string()).collect();
    assert_eq!(places, ["999988887777/gone/app", "333333333333/team/owned", "999988887777/team/app"]);
    assert_eq!(store.lifecycle_history(Some(&mine), 10).await.unwrap().len(), 1);

    // The name is now free in another registry, and the rebuilt table still cascades.
    assert!(store.create_repository(&key("333333333333", "team/app")).await.unwrap());
    assert!(matches!(store.delete_repository(&owned, true).await.unwrap(), berth_meta::DeleteRepository::Deleted(_)));
    assert!(store.get_upload(&upload_id()).await.unwrap().is_none(), "its upload went with it");
    assert!(store.get_image(&mine, &m1).await.unwrap().is_some());
    store.close().await;

    let conn = Connection::open(&path).unwrap();
    let dangling: Option<String> = conn.query_row("PRAGMA foreign_key_check", [], |r| r.get(0)).ok();
    assert_eq!(dangling, None);
    let left: i64 = conn.query_row("SELECT count(*) FROM manifests WHERE repository_id = 3", [], |r| r.get(0)).unwrap();
    assert_eq!(left, 0);
    assert_eq!(conn.query_row("PRAGMA auto_vacuum", [], |r| r.get::<_, i64>(0)).unwrap(), 2, "converted on open");
    assert_eq!(conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)).unwrap(), 7);
}

fn query_plan(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    // Parameters left unbound are NULL; the plan does not depend on their values.
    let mut rows = stmt.raw_query();
    let mut plan = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        plan.push(row.get(3).unwrap());
    }
    plan
}

/// Whether a plan reads each table it touches through an index, by equality alone: the rows
/// it reads do not depend on how many the table holds.
fn is_point_plan(plan: &[String]) -> bool {
    plan.iter().any(|p| p.starts_with("SEARCH"))
        && !plan.iter().any(|p| p.starts_with("SCAN"))
        && !plan.iter().any(|p| p.starts_with("SEARCH") && (p.contains('>') || p.contains('<')))
}

/// Every query a point operation runs reads through an index or primary key by equality: a
/// `SEARCH` on `=` only, never a `SCAN` nor a range; a page reads a range of an index.
#[test]
fn point_queries_search_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let conn = super::open_writer(&dir.path().join("meta.db"), &default_account(), None).unwrap();
    let policy = super::identity::repository_policy_sql(RepositoryPolicyKind::Access);
    let points: &[(&str, &str)] = &[
        ("repository id", super::REPO_ID_SQL),
        ("resolve by tag", super::RESOLVE_TAG_SQL),
        ("resolve by digest", super::RESOLVE_DIGEST_SQL),
        ("get_image", super::IMAGE_SQL),
        ("blob_in_repository", super::BLOB_SIZE_SQL),
        ("get_upload", super::UPLOAD_SQL),
        ("repository policy", &policy),
        ("registry policy", super::identity::REGISTRY_POLICY_SQL),
        ("preview header", super::preview::PREVIEW_SQL),
        ("preview row by digest", super::preview::PREVIEW_DIGEST_SQL),
        (
            "record a pull",
            "UPDATE manifests SET last_pulled_at = max(coalesce(last_pulled_at, 0), ?3)
             WHERE repository_id = (SELECT id FROM repositories WHERE registry = ?1 AND name = ?2) AND digest = ?4",
        ),
        ("access key", "SELECT id FROM access_keys WHERE id = ?1"),
        ("restore a push time", super::RESTORE_PUSHED_AT_SQL),
        ("an image's scan", super::scan::SCAN_SQL),
        ("a scan's result", super::scan::FINISH_SQL),
        ("an image's inventory", super::scan::IMAGE_INVENTORY_SQL),
        ("a layer's inventory", super::scan::LAYER_INVENTORY_SQL),
        ("a generation's digest", super::scan::IS_GENERATION_SQL),
        ("a job by key", super::jobs::JOB_BY_KEY_SQL),
    ];
    for (what, sql) in points {
        let plan = query_plan(&conn, sql);
        assert!(is_point_plan(&plan), "{what}: {plan:?}");
    }
    for (what, sql) in [
        ("preview page", super::preview::PREVIEW_PAGE_SQL),
        ("filtered preview page", super::preview::PREVIEW_FILTERED_PAGE_SQL),
        ("image listing", super::IMAGES_SQL),
        ("one registry's repositories", super::LIST_NAMES_SQL),
        ("every registry's repositories", super::LIST_ALL_SQL),
        ("scanned images", super::scan::SCANNED_SQL),
        ("due jobs", super::jobs::DUE_SQL),
    ] {
        let plan = query_plan(&conn, sql);
        assert!(
            plan.iter().any(|p| p.starts_with("SEARCH")) && !plan.iter().any(|p| p.starts_with("SCAN")),
            "{what}: {plan:?}"
        );
    }
    // The lookup this replaced: one digest found by a range over the whole repository.
    let old = "SELECT m.digest FROM manifests m
               WHERE m.repository_id = ?1 AND m.digest > ?2 AND (?5 IS NULL OR m.digest = ?5)";
    assert!(!is_point_plan(&query_plan(&conn, old)), "the check tells the two apart");
}

/// Virtual-machine steps one run of `sql` takes: a measure of its work that, unlike time, does
/// not vary from run to run.
fn vm_steps(conn: &Connection, sql: &str, params: &[&dyn rusqlite::ToSql]) -> i32 {
    let mut stmt = conn.prepare(sql).unwrap();
    let mut rows = stmt.query(params).unwrap();
    while rows.next().unwrap().is_some() {}
    drop(rows);
    stmt.get_status(rusqlite::StatementStatus::VmStep)
}

/// A point read does the same work in a repository of ten images as in one of thousands.
#[test]
fn point_reads_cost_the_same_at_any_size() {
    let dir = tempfile::tempdir().unwrap();
    let conn = super::open_writer(&dir.path().join("meta.db"), &default_account(), None).unwrap();
    conn.execute_batch("INSERT INTO repositories (id, registry, name, created_at) VALUES (1, '111111111111', 'r', 0)")
        .unwrap();
    let d = |i: usize| berth_types::Digest::of(berth_types::Algorithm::Sha256, format!("m{i}").as_bytes()).to_string();
    let add = |range: std::ops::Range<usize>| {
        conn.execute_batch("BEGIN").unwrap();
        for i in range {
            conn.execute(
                "INSERT INTO manifests (repository_id, digest, media_type, size, payload, created_at)
                 VALUES (1, ?1, 'x', 1, X'00', 0)",
                [d(i)],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO tags (repository_id, name, digest, updated_at) VALUES (1, ?1, ?2, 0)",
                [format!("t{i}"), d(i)],
            )
            .unwrap();
        }
        conn.execute_batch("COMMIT").unwrap();
    };
    let old = "SELECT m.digest FROM manifests m WHERE m.repository_id = ?1 AND m.digest > ?2
               AND (?3 IS NULL OR m.digest = ?3) ORDER BY m.digest LIMIT 1";
    let (one, reg, name, tag, digest) = (1i64, "111111111111", "r", "t5", d(5));
    let measure = || {
        (
            vm_steps(&conn, super::IMAGE_SQL, &[&one, &digest]),
            vm_steps(&conn, super::RESOLVE_TAG_SQL, &[&reg, &name, &tag]),
            vm_steps(&conn, super::RESOLVE_DIGEST_SQL, &[&reg, &name, &digest]),
        )
    };
    // The digest sorts last of its repository or near it; the old lookup's cost is the rows
    // before it.
    let last = (0..5000).map(d).max().unwrap();
    let old_steps = || vm_steps(&conn, old, &[&one, &"", &last]);
    add(0..10);
    let (small, old_small) = (measure(), old_steps());
    add(10..5000);
    let (large, old_large) = (measure(), old_steps());
    assert_eq!(small, large, "point reads at 10 and 5,000 images");
    assert!(old_large > 50 * old_small.max(1), "the lookup this replaced grows: {old_small} -> {old_large}");
}

/// Deleted rows give their pages back to the filesystem.
#[tokio::test(flavor = "multi_thread")]
async fn reclaim_shrinks_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.db");
    let store = SqliteMeta::open(&path, &default_account()).await.unwrap();
    let r = key("111111111111", "big/app");
    store.create_repository(&r).await.unwrap();
    let tags: Vec<Tag> = (0..20).map(|i| Tag::parse(&format!("a-rather-long-tag-name-{i:04}")).unwrap()).collect();
    let rows: Vec<PreviewRow> = (0..20_000)
        .map(|i| PreviewRow {
            digest: berth_types::Digest::of(berth_types::Algorithm::Sha256, format!("{i}").as_bytes()),
            tags: tags.clone(),
            pushed_at: i,
            rule_priority: 1,
        })
        .collect();
    store.put_preview(&r, "{}", &rows, 1).await.unwrap();
    assert_eq!(store.reclaim(100).await.unwrap(), 0, "nothing free yet");
    let full = std::fs::metadata(&path).unwrap().len();
    assert!(full > 8 << 20, "{full}");

    assert!(store.delete_preview(&r).await.unwrap());
    assert_eq!(store.reclaim(0).await.unwrap(), 0, "0 asks for nothing");
    assert_eq!(store.reclaim(10).await.unwrap(), 10, "at most what was asked");
    assert!(store.reclaim(u32::MAX).await.unwrap() > 1000);
    let shrunk = std::fs::metadata(&path).unwrap().len();
    assert!(shrunk < full / 4, "{full} -> {shrunk}");
    assert_eq!(store.reclaim(u32::MAX).await.unwrap(), 0);
    store.close().await;
}
