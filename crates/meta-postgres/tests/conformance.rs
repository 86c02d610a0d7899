//! The metadata conformance suites, and opening a database: migrations, the default account and
//! what an open that fails says.

mod common;

use berth_meta::RepoMeta;
use berth_meta_postgres::{OpenError, PgMeta};
use berth_types::{AccountId, RepositoryKey, RepositoryName};
use common::{TestDb, default_account, options};

#[tokio::test(flavor = "multi_thread")]
async fn conformance() {
    let Some(db) = TestDb::create("conformance").await else { return };
    let store = db.open().await;
    berth_meta::testsuite::run(&store).await;
    store.close();
    // Reopening runs no migration twice and keeps the data.
    let store = db.open().await;
    let key = RepositoryKey::new(
        AccountId::parse(berth_meta::testsuite::REGISTRY).unwrap(),
        RepositoryName::parse("team/app").unwrap(),
    );
    assert!(store.repository_exists(&key).await.unwrap());
    let client = db.client().await;
    let versions: Vec<i32> = client
        .query("SELECT version FROM berth_schema_migrations ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1, 2], "each migration recorded once");
    store.close();
}

#[tokio::test(flavor = "multi_thread")]
async fn gc_conformance() {
    let Some(db) = TestDb::create("gc_conformance").await else { return };
    let store = db.open().await;
    berth_meta::testsuite::run_gc(&store).await;
    store.close();
    let store = db.open().await;
    assert!(berth_meta::GcMeta::tombstones(&store, 10).await.unwrap().is_empty());
    store.close();
}

#[tokio::test(flavor = "multi_thread")]
async fn scan_conformance() {
    let Some(db) = TestDb::create("scan_conformance").await else { return };
    let store = db.open().await;
    berth_meta::testsuite::run_scan(&store).await;
    store.close();
}

#[tokio::test(flavor = "multi_thread")]
async fn job_conformance() {
    let Some(db) = TestDb::create("job_conformance").await else { return };
    let store = db.open().await;
    berth_meta::testsuite::run_jobs(&store).await;
    store.close();
}

/// Nodes that start at once on a fresh database race to migrate it: one does, the others wait
/// for it and find nothing to do.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_opens_migrate_once() {
    let Some(db) = TestDb::create("concurrent_opens_migrate_once").await else { return };
    let opens = (0..3).map(|_| {
        let url = db.url.clone();
        tokio::spawn(async move { PgMeta::open(&url, &default_account(), options()).await })
    });
    let mut stores = Vec::new();
    for open in opens {
        stores.push(open.await.unwrap().expect("every node opens"));
    }
    let key = RepositoryKey::new(default_account(), RepositoryName::parse("raced").unwrap());
    assert!(stores[0].create_repository(&key).await.unwrap());
    assert!(stores[2].repository_exists(&key).await.unwrap());
    let client = db.client().await;
    let n: i64 = client.query_one("SELECT count(*) FROM berth_schema_migrations", &[]).await.unwrap().get(0);
    assert_eq!(n, 2);
    for s in &stores {
        s.close();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn another_default_account_is_refused() {
    let Some(db) = TestDb::create("another_default_account_is_refused").await else { return };
    db.open().await.close();
    let other = AccountId::parse("123412341234").unwrap();
    let err = PgMeta::open(&db.url, &other, options()).await.unwrap_err();
    assert!(matches!(err, OpenError::AccountMismatch { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "this database serves default account 999988887777, but this node is configured with 123412341234"
    );
    // The configured one still opens.
    db.open().await.close();
}

/// Needs no server: nothing listens on port 1.
#[tokio::test]
async fn an_unreachable_server_is_named() {
    let started = std::time::Instant::now();
    let err = PgMeta::open("postgres://berth@127.0.0.1:1/berth", &default_account(), options()).await.unwrap_err();
    assert!(matches!(err, OpenError::Unreachable { .. }), "{err:?}");
    let line = err.to_string();
    eprintln!("{line}");
    assert!(line.starts_with("PostgreSQL at 127.0.0.1:1 is unreachable: "), "{line}");
    assert!(line.contains("os error"), "the OS error is given: {line}");
    assert!(!line.contains('\n'));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let err = PgMeta::open("mysql://x", &default_account(), options()).await.unwrap_err();
    assert!(matches!(err, OpenError::InvalidUrl(_)), "{err:?}");
}

#[tokio::test]
async fn a_missing_database_or_role_is_named() {
    let Ok(server) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("skipped a_missing_database_or_role_is_named: TEST_DATABASE_URL is not set");
        return;
    };
    let url = common::with_database(&server, "berth_no_such_database");
    let err = PgMeta::open(&url, &default_account(), options()).await.unwrap_err();
    assert!(matches!(err, OpenError::NoDatabase { .. }), "{err:?}");
    eprintln!("{err}");
    assert!(err.to_string().contains("has no database \"berth_no_such_database\""), "{err}");

    let (scheme, rest) = server.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let url = format!("{scheme}://berth_no_such_role@{host}");
    let err = PgMeta::open(&url, &default_account(), options()).await.unwrap_err();
    assert!(matches!(err, OpenError::AuthenticationFailed { .. }), "{err:?}");
    eprintln!("{err}");
    assert!(err.to_string().contains("authentication failed"), "{err}");
}
