//! Several nodes (several `PgMeta`, each with its own pool) on one database, racing the writes
//! whose invariants SQLite's single writer gives for free. Each race runs `ROUNDS` times; the
//! outcomes of both orders are counted and printed, so a run shows the race was really run.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use berth_meta::{
    BlobIndex, Conflict, CreateRepo, Error, GcMeta, ImageMeta, JobQueue, LeaseMeta, LinkTarget, MetaStore, NewJob,
    NewManifest, PutOutcome, RepoMeta, RepositorySettings, Reservation, ScanKind, ScanMeta, ScanRequest, ScanRequested,
    UploadMeta, UploadSession,
};
use berth_meta_postgres::PgMeta;
use berth_types::{
    AccountId, Algorithm, Digest, Reference, RepositoryKey, RepositoryName, Tag, TagMutability, UploadId, now_ms,
};
use common::TestDb;

/// Rounds of each race.
const ROUNDS: usize = 60;

fn repo(name: &str) -> RepositoryKey {
    RepositoryKey::new(AccountId::parse("111111111111").unwrap(), RepositoryName::parse(name).unwrap())
}

fn digest(s: &str) -> Digest {
    Digest::of(Algorithm::Sha256, s.as_bytes())
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

fn tag(t: &str) -> Reference {
    Reference::Tag(Tag::parse(t).unwrap())
}

/// A random pause of up to `max_us`, so the racers start in both orders.
async fn jitter(max_us: u64) {
    tokio::time::sleep(Duration::from_micros(fastrand::u64(0..=max_us))).await;
}

/// Counts outcomes by name.
#[derive(Default)]
struct Tally(BTreeMap<&'static str, usize>);

impl Tally {
    fn add(&mut self, what: &'static str) {
        *self.0.entry(what).or_default() += 1;
    }
    fn show(&self, race: &str, nodes: &[&PgMeta]) {
        let retried: u64 = nodes.iter().map(|n| n.retried_transactions()).sum();
        eprintln!("{race}: {ROUNDS} rounds, {:?}, {retried} transactions retried", self.0);
    }
}

/// Links a blob the way the core does: reservation, then the link if the token still holds.
async fn store_blob(node: &PgMeta, r: &RepositoryKey, d: &Digest, size: u64) -> bool {
    let Reservation::Granted(token) = node.reserve_blob(d, now_ms()).await.unwrap() else { return false };
    node.link_reserved(&LinkTarget::Repository(r.clone(), CreateRepo::No), d, size, token).await.unwrap()
}

/// What must hold in the database whatever the interleaving: every blob a manifest references
/// is linked in its repository and recorded, and no recorded blob has a tombstone.
async fn assert_consistent(db: &TestDb) {
    let c = db.client().await;
    let dangling: i64 = c
        .query_one(
            "SELECT count(*) FROM manifest_references x WHERE x.kind = 0 AND NOT EXISTS (
                 SELECT 1 FROM repository_blobs b JOIN blobs r ON r.digest = b.digest
                 WHERE b.repository_id = x.repository_id AND b.digest = x.target)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(dangling, 0, "a manifest references a blob that is not recorded in its repository");
    let buried: i64 = c
        .query_one("SELECT count(*) FROM blobs b JOIN gc_tombstones t ON t.digest = b.digest", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(buried, 0, "a recorded blob has a tombstone");
}

/// (a) A collection on one node while another reserves, links and pushes a manifest naming the
/// blob: never a manifest that references a collected blob.
#[tokio::test(flavor = "multi_thread")]
async fn gc_racing_a_push_never_strands_a_manifest() {
    let Some(db) = TestDb::create("gc_racing_a_push").await else { return };
    let (pusher, collector) = (db.open().await, db.open().await);
    let r = repo("race/gc");
    pusher.create_repository(&r).await.unwrap();
    let mut tally = Tally::default();
    for i in 0..ROUNDS {
        let d = digest(&format!("gc race layer {i}"));
        let m = manifest(&r, &format!("gc race manifest {i}"), vec![d.clone()], Some(&format!("t{i}")));
        let push = async {
            if !store_blob(&pusher, &r, &d, 10).await {
                return "link refused";
            }
            jitter(2_000).await;
            match pusher.put_manifest(&m, CreateRepo::No).await.unwrap() {
                PutOutcome::Stored => "manifest stored",
                PutOutcome::MissingReferences(_) => "blob collected first",
                other => panic!("{other:?}"),
            }
        };
        let collect = async {
            let mut taken = Vec::new();
            // Every blob is past the grace for this collector: only references protect them.
            for _ in 0..4 {
                jitter(1_500).await;
                let far = now_ms() + 1_000_000_000;
                taken.extend(collector.collect_blobs(far, now_ms(), None, 100, &[], None).await.unwrap());
            }
            taken
        };
        let (outcome, taken) = tokio::join!(push, collect);
        tally.add(outcome);
        let collected = taken.iter().any(|c| c.digest == d);
        let stored = pusher.resolve(&r, &Reference::Digest(m.digest.clone())).await.unwrap().is_some();
        if stored {
            assert!(!collected, "round {i}: a stored manifest's blob was collected");
            assert_eq!(collector.blob_in_repository(&r, &d).await.unwrap(), Some(10), "round {i}");
        }
        if collected {
            tally.add("blob collected");
            collector.finish_tombstones(std::slice::from_ref(&d)).await.unwrap();
        }
        assert_consistent(&db).await;
    }
    tally.show("gc vs push", &[&pusher, &collector]);
    assert!(tally.0.get("manifest stored").copied().unwrap_or(0) > 0, "the push never won");
    pusher.close();
    collector.close();
}

/// (b) Two nodes push different manifests to one immutable tag: one wins, the other is told the
/// tag is immutable; a tag the exclusion filters name moves for both.
#[tokio::test(flavor = "multi_thread")]
async fn one_push_wins_an_immutable_tag() {
    let Some(db) = TestDb::create("one_push_wins_an_immutable_tag").await else { return };
    let (one, two) = (db.open().await, db.open().await);
    let r = repo("race/immutable");
    let mutability = TagMutability::parse("IMMUTABLE_WITH_EXCLUSION", vec!["latest*".into()]).unwrap();
    one.create_repository_with(&r, &RepositorySettings { tag_mutability: mutability, ..Default::default() })
        .await
        .unwrap();
    let layer = digest("immutable layer");
    one.link_blob(&r, &layer, 1, CreateRepo::No).await.unwrap();
    let mut tally = Tally::default();
    for i in 0..ROUNDS {
        for (name, excluded) in [(format!("v{i}"), false), (format!("latest-{i}"), true)] {
            let m1 = manifest(&r, &format!("immutable one {name}"), vec![layer.clone()], Some(&name));
            let m2 = manifest(&r, &format!("immutable two {name}"), vec![layer.clone()], Some(&name));
            let (a, b) = tokio::join!(
                async {
                    jitter(500).await;
                    one.put_manifest(&m1, CreateRepo::No).await.unwrap()
                },
                async {
                    jitter(500).await;
                    two.put_manifest(&m2, CreateRepo::No).await.unwrap()
                }
            );
            let now = one.resolve(&r, &tag(&name)).await.unwrap().unwrap().digest;
            if excluded {
                assert_eq!((&a, &b), (&PutOutcome::Stored, &PutOutcome::Stored), "{name} is excluded, so it moves");
                assert!(now == m1.digest || now == m2.digest);
                continue;
            }
            match (a, b) {
                (PutOutcome::Stored, PutOutcome::TagImmutable { existing }) => {
                    assert_eq!((&existing, &now), (&m1.digest, &m1.digest), "{name}");
                    assert!(two.resolve(&r, &Reference::Digest(m2.digest.clone())).await.unwrap().is_none());
                    tally.add("first won");
                }
                (PutOutcome::TagImmutable { existing }, PutOutcome::Stored) => {
                    assert_eq!((&existing, &now), (&m2.digest, &m2.digest), "{name}");
                    assert!(one.resolve(&r, &Reference::Digest(m1.digest.clone())).await.unwrap().is_none());
                    tally.add("second won");
                }
                other => panic!("{name}: exactly one push must win, got {other:?}"),
            }
        }
    }
    tally.show("immutable tag", &[&one, &two]);
    one.close();
    two.close();
}

/// (c) ECR's last-tag rule: two nodes delete the two tags of one image at once, each with
/// `drop_untagged`: the image goes exactly when its last tag goes.
#[tokio::test(flavor = "multi_thread")]
async fn the_last_tag_takes_the_image() {
    let Some(db) = TestDb::create("the_last_tag_takes_the_image").await else { return };
    let (one, two) = (db.open().await, db.open().await);
    let r = repo("race/lasttag");
    one.create_repository(&r).await.unwrap();
    let mut tally = Tally::default();
    for i in 0..ROUNDS {
        // With a third tag kept, the image must stay; without, it must go.
        let keep_third = i % 2 == 1;
        let body = format!("last tag image {i}");
        let names = [format!("x{i}"), format!("y{i}"), format!("z{i}")];
        for n in &names[..if keep_third { 3 } else { 2 }] {
            one.put_manifest(&manifest(&r, &body, vec![], Some(n)), CreateRepo::No).await.unwrap();
        }
        let (x, y) = (Tag::parse(&names[0]).unwrap(), Tag::parse(&names[1]).unwrap());
        let (a, b) = tokio::join!(
            async {
                jitter(500).await;
                one.delete_tag(&r, &x, true).await.unwrap()
            },
            async {
                jitter(500).await;
                two.delete_tag(&r, &y, true).await.unwrap()
            }
        );
        assert_eq!((a, b), (Some(digest(&body)), Some(digest(&body))));
        let image = one.get_image(&r, &digest(&body)).await.unwrap();
        if keep_third {
            assert_eq!(image.unwrap().tags, vec![Tag::parse(&names[2]).unwrap()], "round {i}: another tag keeps it");
            tally.add("kept by a third tag");
        } else {
            assert!(image.is_none(), "round {i}: the last tag's deletion must take the image");
            tally.add("dropped with its last tag");
        }
    }
    tally.show("last tag", &[&one, &two]);
    one.close();
    two.close();
}

/// (d) A lifecycle expiry (deleting an image) on one node while another pushes a tag onto that
/// same image: the tag ends naming a stored manifest, or is gone with it.
#[tokio::test(flavor = "multi_thread")]
async fn expiry_racing_a_retag_leaves_no_dangling_tag() {
    let Some(db) = TestDb::create("expiry_racing_a_retag").await else { return };
    let (expirer, pusher) = (db.open().await, db.open().await);
    let r = repo("race/expiry");
    pusher.create_repository(&r).await.unwrap();
    let layer = digest("expiry layer");
    pusher.link_blob(&r, &layer, 1, CreateRepo::No).await.unwrap();
    let mut tally = Tally::default();
    for i in 0..ROUNDS {
        let old = manifest(&r, &format!("expiring {i}"), vec![layer.clone()], Some(&format!("old{i}")));
        pusher.put_manifest(&old, CreateRepo::No).await.unwrap();
        let retag = NewManifest { tag: Some(Tag::parse(&format!("keep{i}")).unwrap()), ..old.clone() };
        let (deleted, pushed) = tokio::join!(
            async {
                jitter(800).await;
                expirer.delete_manifest(&r, &old.digest).await.unwrap()
            },
            async {
                jitter(800).await;
                pusher.put_manifest(&retag, CreateRepo::No).await.unwrap()
            }
        );
        assert!(deleted, "round {i}: the image existed when the expiry started");
        assert_eq!(pushed, PutOutcome::Stored, "round {i}");
        let by_tag = pusher.resolve(&r, &tag(&format!("keep{i}"))).await.unwrap();
        let by_digest = pusher.resolve(&r, &Reference::Digest(old.digest.clone())).await.unwrap();
        match (by_tag, by_digest) {
            (Some(t), Some(d)) => {
                assert_eq!(t, d);
                tally.add("push after expiry: stored again");
            }
            (None, None) => tally.add("expiry after push: both gone"),
            other => panic!("round {i}: the tag must name a stored manifest: {other:?}"),
        }
        assert!(pusher.resolve(&r, &tag(&format!("old{i}"))).await.unwrap().is_none(), "round {i}");
        assert_consistent(&db).await;
    }
    tally.show("expiry vs retag", &[&expirer, &pusher]);
    expirer.close();
    pusher.close();
}

/// (e) Two nodes push different manifests to one mutable tag: both are stored, and the tag names
/// one of them.
#[tokio::test(flavor = "multi_thread")]
async fn two_pushes_to_one_tag_keep_both_manifests() {
    let Some(db) = TestDb::create("two_pushes_to_one_tag").await else { return };
    let (one, two) = (db.open().await, db.open().await);
    let r = repo("race/mutable");
    // The first pushes of a round may create the repository: create-if-absent races too.
    let mut tally = Tally::default();
    for i in 0..ROUNDS {
        let name = format!("t{i}");
        let m1 = manifest(&r, &format!("mutable one {i}"), vec![], Some(&name));
        let m2 = manifest(&r, &format!("mutable two {i}"), vec![], Some(&name));
        let (a, b) = tokio::join!(
            async {
                jitter(500).await;
                one.put_manifest(&m1, CreateRepo::IfMissing).await.unwrap()
            },
            async {
                jitter(500).await;
                two.put_manifest(&m2, CreateRepo::IfMissing).await.unwrap()
            }
        );
        assert_eq!((a, b), (PutOutcome::Stored, PutOutcome::Stored), "round {i}");
        for m in [&m1, &m2] {
            assert!(one.resolve(&r, &Reference::Digest(m.digest.clone())).await.unwrap().is_some(), "round {i}");
        }
        let now = two.resolve(&r, &tag(&name)).await.unwrap().unwrap().digest;
        tally.add(if now == m1.digest { "first named" } else { "second named" });
        assert!(now == m1.digest || now == m2.digest);
    }
    tally.show("mutable tag", &[&one, &two]);
    one.close();
    two.close();
}

/// (f) Two appends to one upload session from the same offset: exactly one moves it.
#[tokio::test(flavor = "multi_thread")]
async fn one_append_moves_an_upload() {
    let Some(db) = TestDb::create("one_append_moves_an_upload").await else { return };
    let (one, two) = (db.open().await, db.open().await);
    let r = repo("race/upload");
    one.create_repository(&r).await.unwrap();
    let id = UploadId::generate();
    let session = UploadSession { id: id.clone(), repository: r.clone(), offset: 0, hash_state: vec![], created_at: 1 };
    one.create_upload(&session, CreateRepo::No).await.unwrap();
    let mut tally = Tally::default();
    let mut offset = 0u64;
    for i in 0..ROUNDS {
        let (a, b) = tokio::join!(
            async {
                jitter(300).await;
                one.advance_upload(&id, offset, offset + 10, &[1]).await
            },
            async {
                jitter(300).await;
                two.advance_upload(&id, offset, offset + 20, &[2]).await
            }
        );
        let moved =
            |r: &berth_meta::Result<()>| matches!(r, Err(Error::Conflict(Conflict::UploadMoved(u))) if *u == id);
        let got = one.get_upload(&id).await.unwrap().unwrap();
        match (&a, &b) {
            (Ok(()), b) if moved(b) => {
                assert_eq!((got.offset, got.hash_state), (offset + 10, vec![1]), "round {i}");
                tally.add("first moved it");
            }
            (a, Ok(())) if moved(a) => {
                assert_eq!((got.offset, got.hash_state), (offset + 20, vec![2]), "round {i}");
                tally.add("second moved it");
            }
            other => panic!("round {i}: exactly one append must win, got {other:?}"),
        }
        offset = got.offset;
    }
    tally.show("upload append", &[&one, &two]);
    one.close();
    two.close();
}

/// (g) Two holders take one lease at once: one gets it; the other gets it only once it expires
/// (on the database's clock) or is released. Long leases where the test needs them held, so a
/// slow machine cannot make one expire early; waits only longer than a short lease.
#[tokio::test(flavor = "multi_thread")]
async fn one_holder_takes_a_lease() {
    const HELD_MS: i64 = 10_000;
    let Some(db) = TestDb::create("one_holder_takes_a_lease").await else { return };
    let (one, two) = (db.open().await, db.open().await);
    let mut tally = Tally::default();
    for i in 0..ROUNDS {
        let name = format!("lease-{i}");
        let (a, b) = tokio::join!(
            async {
                jitter(300).await;
                one.acquire_lease(&name, "node-a", HELD_MS).await.unwrap()
            },
            async {
                jitter(300).await;
                two.acquire_lease(&name, "node-b", HELD_MS).await.unwrap()
            }
        );
        assert!(a ^ b, "round {i}: exactly one holder, got {a} and {b}");
        let (winner, loser, loser_name, winner_name) =
            if a { (&one, &two, "node-b", "node-a") } else { (&two, &one, "node-a", "node-b") };
        tally.add(if a { "a took it" } else { "b took it" });
        assert!(winner.acquire_lease(&name, winner_name, HELD_MS).await.unwrap(), "the holder renews");
        assert!(!loser.acquire_lease(&name, loser_name, HELD_MS).await.unwrap(), "held and unexpired");
        loser.release_lease(&name, loser_name).await.unwrap();
        assert!(winner.acquire_lease(&name, winner_name, HELD_MS).await.unwrap(), "another's release is a no-op");
        if i % 2 == 0 {
            // The holder renews for a moment only, then stops (a dead node).
            assert!(winner.acquire_lease(&name, winner_name, 100).await.unwrap());
            tokio::time::sleep(Duration::from_millis(200)).await;
            tally.add("taken over after expiry");
        } else {
            winner.release_lease(&name, winner_name).await.unwrap();
            tally.add("taken over after release");
        }
        assert!(loser.acquire_lease(&name, loser_name, HELD_MS).await.unwrap(), "round {i}: expired or released");
        assert!(!winner.acquire_lease(&name, winner_name, HELD_MS).await.unwrap(), "round {i}: now the other's");
    }
    tally.show("lease", &[&one, &two]);
    one.close();
    two.close();
}

/// (g, repositories) Three nodes create one repository at once: exactly one creates it.
#[tokio::test(flavor = "multi_thread")]
async fn one_node_creates_a_repository() {
    let Some(db) = TestDb::create("one_node_creates_a_repository").await else { return };
    let nodes = [db.open().await, db.open().await, db.open().await];
    for i in 0..ROUNDS {
        let r = repo(&format!("race/created/{i}"));
        let (a, b, c) = tokio::join!(
            nodes[0].create_repository(&r),
            nodes[1].create_repository(&r),
            nodes[2].create_repository(&r)
        );
        let created = [a.unwrap(), b.unwrap(), c.unwrap()].iter().filter(|x| **x).count();
        assert_eq!(created, 1, "round {i}");
    }
    let names = nodes[0]
        .list_repositories(&AccountId::parse("111111111111").unwrap(), &berth_types::PageRequest::default())
        .await
        .unwrap();
    assert_eq!(names.items.len(), ROUNDS);
    for n in &nodes {
        n.close();
    }
}

/// Many writers on several nodes at once: every write gets its own answer and the store stays
/// consistent (serialization failures are retried inside, never surfaced).
#[tokio::test(flavor = "multi_thread")]
async fn many_concurrent_writers_all_succeed() {
    let Some(db) = TestDb::create("many_concurrent_writers").await else { return };
    let nodes = std::sync::Arc::new([db.open().await, db.open().await, db.open().await]);
    let r = repo("race/many");
    nodes[0].create_repository(&r).await.unwrap();
    let tasks: Vec<_> = (0..150)
        .map(|i| {
            let (nodes, r) = (std::sync::Arc::clone(&nodes), r.clone());
            tokio::spawn(async move {
                let node: &dyn MetaStore = &nodes[i % 3];
                let d = digest(&format!("many layer {}", i % 10));
                node.link_blob(&r, &d, 5, CreateRepo::No).await.unwrap();
                let m = manifest(&r, &format!("many {i}"), vec![d], Some(&format!("t{}", i % 7)));
                assert_eq!(node.put_manifest(&m, CreateRepo::No).await.unwrap(), PutOutcome::Stored);
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_consistent(&db).await;
    for n in nodes.iter() {
        n.close();
    }
}

/// Small blobs pushed through upload sessions by many clients at once, as a registry client
/// pushes layers (POST, then PUT with the whole body): each push opens a session, reserves the
/// digest and links it through the session. All of them to one repository, on one node with a
/// server's pool and on three nodes: every push succeeds (issue 11's benchmark saw such pushes
/// answer 503 after their transaction lost every retry).
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_blob_pushes_through_uploads_all_succeed() {
    let Some(db) = TestDb::create("concurrent_blob_pushes").await else { return };
    let options = berth_meta_postgres::PgOptions { max_connections: 16, ..common::options() };
    for nodes in [1usize, 3] {
        let mut open = Vec::new();
        for _ in 0..nodes {
            open.push(PgMeta::open(&db.url, &common::default_account(), options.clone()).await.unwrap());
        }
        let open = std::sync::Arc::new(open);
        let r = repo(&format!("race/uploads{nodes}"));
        open[0].create_repository(&r).await.unwrap();
        let pushes_per_client = 40;
        let tasks: Vec<_> = (0..16)
            .map(|client| {
                let (open, r) = (std::sync::Arc::clone(&open), r.clone());
                tokio::spawn(async move {
                    for k in 0..pushes_per_client {
                        // Each request of a push may reach another node.
                        let node = |step: usize| &open[(client + k + step) % open.len()];
                        let d = digest(&format!("upload blob {nodes} {client} {k}"));
                        let s = UploadSession {
                            id: UploadId::generate(),
                            repository: r.clone(),
                            offset: 0,
                            hash_state: vec![1, 2, 3],
                            created_at: now_ms(),
                        };
                        node(0).create_upload(&s, CreateRepo::No).await.unwrap();
                        let Reservation::Granted(token) = node(1).reserve_blob(&d, now_ms()).await.unwrap() else {
                            panic!("no collection runs here")
                        };
                        assert!(
                            node(1).link_reserved(&LinkTarget::Upload(s.id.clone()), &d, 4096, token).await.unwrap()
                        );
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let refs: Vec<&PgMeta> = open.iter().collect();
        let retried: u64 = refs.iter().map(|n| n.retried_transactions()).sum();
        eprintln!("{nodes} node(s): {} pushes, {retried} transactions retried", 16 * pushes_per_client);
        for n in open.iter() {
            n.close();
        }
    }
    assert_consistent(&db).await;
}

fn new_job(kind: &str, key: &str) -> NewJob {
    NewJob { kind: kind.into(), key: key.into(), payload: key.as_bytes().to_vec(), delay_ms: 0 }
}

/// (j1) Three nodes claim from one queue at once, in small batches: every job is claimed by
/// exactly one of them, and each finishes only its own.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_claimers_never_share_a_job() {
    let Some(db) = TestDb::create("concurrent_claimers_never_share_a_job").await else { return };
    let nodes = [db.open().await, db.open().await, db.open().await];
    let mut tally = Tally::default();
    for round in 0..ROUNDS {
        let keys: Vec<String> = (0..20).map(|i| format!("r{round}-j{i}")).collect();
        for k in &keys {
            assert!(nodes[0].enqueue(&new_job("race", k)).await.unwrap());
        }
        let claimer = async |node: &PgMeta, holder: &'static str| {
            let mut mine = Vec::new();
            loop {
                jitter(300).await;
                let got = node.claim_jobs(&["race"], holder, 60_000, 3).await.unwrap();
                if got.is_empty() {
                    return mine;
                }
                for j in got {
                    assert_eq!(j.attempts, 1, "claimed once");
                    mine.push(j);
                }
            }
        };
        let (a, b, c) = tokio::join!(claimer(&nodes[0], "a"), claimer(&nodes[1], "b"), claimer(&nodes[2], "c"));
        let mut claimed: Vec<String> = a.iter().chain(&b).chain(&c).map(|j| j.key.clone()).collect();
        claimed.sort();
        let mut want = keys.clone();
        want.sort();
        assert_eq!(claimed, want, "round {round}: every job claimed exactly once");
        for (node, holder, jobs) in [(&nodes[0], "a", &a), (&nodes[1], "b", &b), (&nodes[2], "c", &c)] {
            tally.add(if jobs.is_empty() { "a claimer got none" } else { "a claimer got some" });
            for j in jobs {
                let other = if holder == "a" { "b" } else { "a" };
                assert!(!node.finish_job(j.id, other).await.unwrap(), "not {other}'s");
                assert!(node.finish_job(j.id, holder).await.unwrap());
            }
        }
        assert_eq!(nodes[0].queued_jobs("race").await.unwrap(), 0);
    }
    tally.show("claimers", &[&nodes[0], &nodes[1], &nodes[2]]);
    for n in &nodes {
        n.close();
    }
}

/// (j2) A job is queued again on one node while its holder finishes it on another: the request
/// is never lost (either it marked the running job to run again, or it queued a new one after
/// the finish), and the job waits exactly once afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn an_enqueue_racing_a_finish_is_not_lost() {
    let Some(db) = TestDb::create("an_enqueue_racing_a_finish_is_not_lost").await else { return };
    let (worker, client) = (db.open().await, db.open().await);
    let mut tally = Tally::default();
    for i in 0..ROUNDS {
        let job = new_job("again", &format!("k{i}"));
        assert!(worker.enqueue(&job).await.unwrap());
        let held = worker.claim_jobs(&["again"], "w", 60_000, 10).await.unwrap();
        assert_eq!(held.len(), 1);
        let (finished, queued) = tokio::join!(
            async {
                jitter(1_000).await;
                worker.finish_job(held[0].id, "w").await.unwrap()
            },
            async {
                jitter(1_000).await;
                client.enqueue(&job).await.unwrap()
            }
        );
        assert!(finished);
        assert!(queued, "round {i}: the job was running or gone, so the request is new work");
        let next = worker.claim_jobs(&["again"], "w", 60_000, 10).await.unwrap();
        assert_eq!(next.len(), 1, "round {i}: the request waits once");
        tally.add(if next[0].id == held[0].id { "ran again" } else { "queued anew" });
        assert!(worker.finish_job(next[0].id, "w").await.unwrap());
        assert_eq!(worker.queued_jobs("again").await.unwrap(), 0, "round {i}");
    }
    tally.show("enqueue vs finish", &[&worker, &client]);
    worker.close();
    client.close();
}

/// (s1) Two nodes ask for a basic scan of one image at once, with the one-a-day limit: exactly
/// one starts (and queues the job), the other is refused with the started one on record.
#[tokio::test(flavor = "multi_thread")]
async fn one_of_two_scan_requests_starts() {
    let Some(db) = TestDb::create("one_of_two_scan_requests_starts").await else { return };
    let (one, two) = (db.open().await, db.open().await);
    let r = repo("race/scan");
    one.create_repository(&r).await.unwrap();
    let mut tally = Tally::default();
    for i in 0..ROUNDS {
        let m = manifest(&r, &format!("scan race image {i}"), vec![], Some(&format!("t{i}")));
        one.put_manifest(&m, CreateRepo::No).await.unwrap();
        let request = |now: i64| ScanRequest {
            repository: r.clone(),
            digest: m.digest.clone(),
            kind: ScanKind::Basic,
            now_ms: now,
            min_interval_ms: Some(86_400_000),
            job: new_job("scan", &format!("{r}@{}", m.digest)),
        };
        let (a, b) = tokio::join!(
            async {
                jitter(500).await;
                one.request_scan(&request(1_000)).await.unwrap()
            },
            async {
                jitter(500).await;
                two.request_scan(&request(1_001)).await.unwrap()
            }
        );
        let on_record = one.scan_summaries(&r, std::slice::from_ref(&m.digest)).await.unwrap().remove(0).unwrap();
        match (a, b) {
            (ScanRequested::Started(s), ScanRequested::TooSoon(t)) => {
                assert_eq!((&s, &t, &on_record), (&s, &s, &s), "round {i}");
                tally.add("first started");
            }
            (ScanRequested::TooSoon(t), ScanRequested::Started(s)) => {
                assert_eq!((&t, &on_record), (&s, &s), "round {i}");
                tally.add("second started");
            }
            other => panic!("round {i}: exactly one request must start, got {other:?}"),
        }
        assert_eq!(one.queued_jobs("scan").await.unwrap(), u64::try_from(i + 1).unwrap(), "one job per image");
    }
    tally.show("scan requests", &[&one, &two]);
    one.close();
    two.close();
}

/// (s2) A scan is asked for on one node while another deletes the image: never a scan record
/// without its image.
#[tokio::test(flavor = "multi_thread")]
async fn a_scan_request_racing_a_deletion_leaves_no_record() {
    let Some(db) = TestDb::create("a_scan_request_racing_a_deletion").await else { return };
    let (one, two) = (db.open().await, db.open().await);
    let r = repo("race/scandelete");
    one.create_repository(&r).await.unwrap();
    let mut tally = Tally::default();
    for i in 0..ROUNDS {
        let m = manifest(&r, &format!("scan delete image {i}"), vec![], None);
        one.put_manifest(&m, CreateRepo::No).await.unwrap();
        let req = ScanRequest {
            repository: r.clone(),
            digest: m.digest.clone(),
            kind: ScanKind::Enhanced,
            now_ms: 1,
            min_interval_ms: None,
            job: new_job("scan", &format!("{i}")),
        };
        let (asked, deleted) = tokio::join!(
            async {
                jitter(500).await;
                one.request_scan(&req).await
            },
            async {
                jitter(500).await;
                two.delete_manifest(&r, &m.digest).await.unwrap()
            }
        );
        assert!(deleted);
        match asked {
            Ok(ScanRequested::Started(_)) => tally.add("request first"),
            Err(berth_meta::Error::NotFound(_)) => tally.add("deletion first"),
            other => panic!("round {i}: {other:?}"),
        }
        let c = db.client().await;
        let left: i64 = c.query_one("SELECT count(*) FROM image_scans", &[]).await.unwrap().get(0);
        assert_eq!(left, 0, "round {i}: a scan record outlived its image");
    }
    tally.show("scan request vs deletion", &[&one, &two]);
    one.close();
    two.close();
}
