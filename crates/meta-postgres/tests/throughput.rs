//! `put_manifest` throughput on PostgreSQL against SQLite, on this machine. Ignored by default:
//! `cargo test --release -p berth-meta-postgres --test throughput -- --ignored --nocapture`
//! with `TEST_DATABASE_URL` set. It prints manifests per second for one writer and for 16 at
//! once, for each store, and the ratio.

mod common;

use std::sync::Arc;
use std::time::Instant;

use berth_meta::{CreateRepo, MetaStore, NewManifest, PutOutcome};
use berth_meta_sqlite::SqliteMeta;
use berth_types::{AccountId, Algorithm, Digest, RepositoryKey, RepositoryName, Tag};
use common::{TestDb, default_account};

const MANIFESTS: usize = 2_000;
const LAYERS: usize = 3;

fn repo() -> RepositoryKey {
    RepositoryKey::new(AccountId::parse("111111111111").unwrap(), RepositoryName::parse("bench/app").unwrap())
}

fn layer(i: usize) -> Digest {
    Digest::of(Algorithm::Sha256, format!("bench layer {i}").as_bytes())
}

fn manifest(run: &str, i: usize) -> NewManifest {
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","run":"{run}","n":{i},"pad":"{}"}}"#,
        "x".repeat(600)
    );
    NewManifest {
        repository: repo(),
        digest: Digest::of(Algorithm::Sha256, body.as_bytes()),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        payload: body.into_bytes(),
        artifact_type: None,
        subject: None,
        annotations: None,
        blobs: (0..LAYERS).map(|l| layer(i * LAYERS + l)).collect(),
        children: vec![],
        tag: Some(Tag::parse(&format!("{run}-{i}")).unwrap()),
    }
}

/// Links every layer the manifests of a run name.
async fn prepare(store: &dyn MetaStore) {
    store.create_repository(&repo()).await.unwrap();
    for i in 0..MANIFESTS * LAYERS {
        store.link_blob(&repo(), &layer(i), 1000, CreateRepo::No).await.unwrap();
    }
}

/// Chunks each run is cut into, the two stores taking turns, so that other load on the machine
/// weighs on both alike.
const CHUNKS: usize = 4;

/// Seconds to store chunk `chunk` of a run's manifests with `writers` concurrent writers.
async fn chunk(store: Arc<dyn MetaStore>, run: &'static str, writers: usize, chunk: usize) -> f64 {
    let per = MANIFESTS / CHUNKS;
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for i in (chunk * per + w..(chunk + 1) * per).step_by(writers) {
                    assert_eq!(
                        store.put_manifest(&manifest(run, i), CreateRepo::No).await.unwrap(),
                        PutOutcome::Stored
                    );
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    started.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement, not a check: run it by hand"]
async fn put_manifest_throughput() {
    let Some(db) = TestDb::create("put_manifest_throughput").await else { return };
    let dir = tempfile::tempdir().unwrap();
    let sqlite: Arc<dyn MetaStore> =
        Arc::new(SqliteMeta::open(&dir.path().join("meta.db"), &default_account()).await.unwrap());
    let opts = berth_meta_postgres::PgOptions { max_connections: 16, ..Default::default() };
    let pg = Arc::new(berth_meta_postgres::PgMeta::open(&db.url, &default_account(), opts).await.unwrap());
    let postgres: Arc<dyn MetaStore> = pg.clone();
    prepare(&*sqlite).await;
    prepare(&*postgres).await;
    for (run, writers) in [("serial", 1), ("parallel", 16)] {
        let (mut s, mut p) = (0.0, 0.0);
        for c in 0..CHUNKS {
            s += chunk(Arc::clone(&sqlite), run, writers, c).await;
            p += chunk(Arc::clone(&postgres), run, writers, c).await;
        }
        let (s, p) = (MANIFESTS as f64 / s, MANIFESTS as f64 / p);
        eprintln!(
            "put_manifest, {MANIFESTS} manifests of {LAYERS} layers, {writers} writer(s): \
             SQLite {s:.0}/s, PostgreSQL {p:.0}/s, ratio {:.2}",
            p / s
        );
    }
    eprintln!("PostgreSQL transactions retried: {}", pg.retried_transactions());
}
