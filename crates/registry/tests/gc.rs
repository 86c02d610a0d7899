//! Online garbage collection on the real embedded backends (filesystem blobs, SQLite metadata):
//! the rule of `berth_registry::gc` case by case, then a stress run with collection in a loop
//! while many clients push, pull and delete overlapping images.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use berth_blobstore::{BlobStore, ByteStream};
use berth_blobstore_fs::FsBlobStore;
use berth_meta::GcMeta;
use berth_meta_sqlite::SqliteMeta;
use berth_registry::{Caller, Error, ImageId, Options, Registry};
use berth_types::{Algorithm, Digest, Hasher, Reference, RepositoryKey, Tag, now_ms};
use bytes::Bytes;
use futures_util::{StreamExt, stream};

use common::key;

fn body(data: &[u8]) -> ByteStream {
    stream::iter(vec![Ok(Bytes::copy_from_slice(data))]).boxed()
}

fn repo(s: &str) -> RepositoryKey {
    key(s)
}

struct Env {
    _dir: tempfile::TempDir,
    blobs: Arc<FsBlobStore>,
    meta: Arc<SqliteMeta>,
    reg: Arc<Registry>,
}

async fn setup(grace_ms: i64) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Arc::new(FsBlobStore::open(dir.path()).unwrap());
    let meta = common::meta(dir.path()).await;
    let opts = Options { gc_grace_ms: grace_ms, ..Options::default() };
    let reg = Arc::new(Registry::new(blobs.clone(), meta.clone(), common::authz(true), opts));
    Env { _dir: dir, blobs, meta, reg }
}

/// Pushes a blob the way its size suggests: small ones in one request, others through a
/// session (bytes renamed into place on completion).
async fn push_blob(reg: &Registry, r: &RepositoryKey, data: &[u8]) -> Result<Digest, Error> {
    let who = Caller::Anonymous;
    let d = Digest::of(Algorithm::Sha256, data);
    if data.len() < 64 * 1024 {
        reg.uploads.monolithic(&who, r, &d, Some(data.len() as u64), body(data)).await
    } else {
        let st = reg.uploads.start(&who, r).await?;
        reg.uploads.append(&who, r, &st.id, Some(0), body(data)).await?;
        reg.uploads.complete(&who, r, &st.id, &d, None).await
    }
}

fn manifest_json(config: &[u8], layers: &[&[u8]]) -> Vec<u8> {
    let desc = |mt: &str, b: &[u8]| serde_json::json!({"mediaType": mt, "digest": Digest::of(Algorithm::Sha256, b).as_str(), "size": b.len()});
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": desc("application/vnd.oci.image.config.v1+json", config),
        "layers": layers.iter().map(|l| desc("application/vnd.oci.image.layer.v1.tar", l)).collect::<Vec<_>>(),
    })
    .to_string()
    .into_bytes()
}

async fn put_manifest(reg: &Registry, r: &RepositoryKey, tag: &str, m: &[u8]) -> Result<Digest, Error> {
    let reference = Reference::Tag(Tag::parse(tag).unwrap());
    let ct = Some("application/vnd.oci.image.manifest.v1+json");
    reg.images.put(&Caller::Anonymous, r, &reference, ct, body(m)).await.map(|p| p.digest)
}

/// Reads a blob through the core and checks its digest.
async fn pull_blob(reg: &Registry, r: &RepositoryKey, d: &Digest) -> Result<(), String> {
    let read = reg.blobs.read(&Caller::Anonymous, r, d, |_| Ok(None)).await.map_err(|e| format!("{d}: {e}"))?;
    let mut s = read.body.into_stream();
    let mut h = Hasher::new(d.algorithm());
    while let Some(c) = s.next().await {
        h.update(&c.map_err(|e| format!("{d}: {e}"))?);
    }
    if &h.finish() == d { Ok(()) } else { Err(format!("{d}: wrong bytes")) }
}

/// Pulls an image by tag: its manifest, then every blob it references.
async fn pull_image(reg: &Registry, r: &RepositoryKey, tag: &str) -> Result<Digest, String> {
    let reference = Reference::Tag(Tag::parse(tag).unwrap());
    let m = reg.images.get(&Caller::Anonymous, r, &reference).await.map_err(|e| format!("{r}:{tag}: {e}"))?;
    let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
    let mut digests = vec![v["config"]["digest"].as_str().unwrap().to_owned()];
    digests.extend(v["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_owned()));
    for d in digests {
        pull_blob(reg, r, &Digest::parse(&d).unwrap()).await?;
    }
    Ok(m.digest.clone())
}

async fn stored(blobs: &FsBlobStore) -> BTreeSet<String> {
    blobs.list().map(|d| d.unwrap().as_str().to_owned()).collect().await
}

fn d(data: &[u8]) -> Digest {
    Digest::of(Algorithm::Sha256, data)
}

#[tokio::test(flavor = "multi_thread")]
async fn unreferenced_blobs_go_after_the_grace_and_referenced_ones_stay() {
    let env = setup(60_000).await;
    let (reg, r) = (&env.reg, repo("gc/app"));
    let (config, layer, loose) = (b"{\"c\":1}".to_vec(), vec![1u8; 5000], vec![2u8; 100_000]);
    for b in [&config, &layer, &loose] {
        push_blob(reg, &r, b).await.unwrap();
    }
    put_manifest(reg, &r, "v1", &manifest_json(&config, &[&layer])).await.unwrap();

    let now = now_ms();
    assert_eq!(reg.maintenance.gc_run_once(now).await.unwrap().blobs_removed, 0, "within the grace");
    let report = reg.maintenance.gc_run_once(now + 60_001).await.unwrap();
    assert_eq!((report.blobs_removed, report.bytes_freed), (1, 100_000));
    assert_eq!(stored(&env.blobs).await, BTreeSet::from([d(&config).to_string(), d(&layer).to_string()]));
    assert!(matches!(reg.blobs.stat(&Caller::Anonymous, &r, &d(&loose)).await, Err(Error::BlobNotFound(_))));
    pull_image(reg, &r, "v1").await.unwrap();

    let usage = reg.maintenance.storage_usage().await.unwrap();
    assert_eq!((usage.blobs, usage.blob_bytes), (2, (config.len() + layer.len()) as u64));
    assert_eq!(usage.repositories.len(), 1);
    assert_eq!(usage.repositories[0].blob_bytes, (config.len() + layer.len()) as u64);
    assert_eq!(usage.repositories[0].manifests, 1);
}

/// Collection first, then the push: the push fails cleanly and succeeds once the blob is
/// uploaded again. Push first, then collection: the collection leaves the blob alone.
#[tokio::test(flavor = "multi_thread")]
async fn a_push_that_loses_the_race_fails_cleanly_and_a_push_that_wins_is_complete() {
    let env = setup(1_000).await;
    let (reg, r) = (&env.reg, repo("gc/race"));
    let (config, layer) = (b"{}".to_vec(), vec![7u8; 2 << 20]);
    push_blob(reg, &r, &config).await.unwrap();
    push_blob(reg, &r, &layer).await.unwrap();
    let report = reg.maintenance.gc_run_once(now_ms() + 10_000).await.unwrap();
    assert_eq!(report.blobs_removed, 2);
    let m = manifest_json(&config, &[&layer]);
    let err = put_manifest(reg, &r, "v1", &m).await.unwrap_err();
    assert!(matches!(&err, Error::ManifestBlobUnknown(missing) if missing.len() == 2), "{err:?}");
    assert!(stored(&env.blobs).await.is_empty());

    push_blob(reg, &r, &config).await.unwrap();
    push_blob(reg, &r, &layer).await.unwrap();
    put_manifest(reg, &r, "v1", &m).await.unwrap();
    assert_eq!(reg.maintenance.gc_run_once(now_ms() + 10_000).await.unwrap().blobs_removed, 0);
    pull_image(reg, &r, "v1").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_images_and_repositories_frees_their_blobs_after_the_grace() {
    let env = setup(60_000).await;
    let reg = &env.reg;
    let who = Caller::Anonymous;
    let (one, two) = (repo("gc/one"), repo("gc/two"));
    let shared = b"{\"shared\":true}".to_vec();
    let (a, b, c) = (vec![1u8; 3000], vec![2u8; 4000], vec![3u8; 5000]);
    for blob in [&shared, &a, &b] {
        push_blob(reg, &one, blob).await.unwrap();
    }
    for blob in [&shared, &c] {
        push_blob(reg, &two, blob).await.unwrap();
    }
    let m_a = put_manifest(reg, &one, "a", &manifest_json(&shared, &[&a])).await.unwrap();
    put_manifest(reg, &one, "b", &manifest_json(&shared, &[&b])).await.unwrap();
    put_manifest(reg, &two, "c", &manifest_json(&shared, &[&c])).await.unwrap();

    // /v2 DELETE by digest, and ECR BatchDeleteImage by the last tag.
    let deleted_at = now_ms();
    reg.images.delete(&who, &one, &Reference::Digest(m_a)).await.unwrap();
    reg.images.delete_many(&who, &one, &[ImageId::Tag(Tag::parse("b").unwrap())]).await.unwrap();
    // The deletion touched the blobs: the grace counts from it.
    assert_eq!(reg.maintenance.gc_run_once(deleted_at + 59_000).await.unwrap().blobs_removed, 0);
    let report = reg.maintenance.gc_run_once(now_ms() + 60_001).await.unwrap();
    assert_eq!(report.blobs_removed, 2);
    assert_eq!(stored(&env.blobs).await, BTreeSet::from([d(&shared).to_string(), d(&c).to_string()]));
    pull_image(reg, &two, "c").await.unwrap();

    reg.repositories.delete(&who, &two, true).await.unwrap();
    assert_eq!(reg.maintenance.gc_run_once(now_ms() + 60_001).await.unwrap().blobs_removed, 2);
    assert!(stored(&env.blobs).await.is_empty());
    assert_eq!(reg.maintenance.storage_usage().await.unwrap().blob_bytes, 0);
}

/// A crash between the collection's metadata step and the deletion of the bytes leaves a
/// tombstone. An upload of that digest meanwhile waits for it; the next run (here, after a
/// "restart": a new core on the same stores) finishes it, and then the upload stores its bytes.
#[tokio::test(flavor = "multi_thread")]
async fn tombstones_of_a_run_that_stopped_midway_are_finished_and_block_uploads_until_then() {
    let env = setup(1_000).await;
    let r = repo("gc/crash");
    let data = vec![9u8; 10_000];
    push_blob(&env.reg, &r, &data).await.unwrap();
    let later = now_ms() + 10_000;
    let taken = env.meta.collect_blobs(later - 1_000, later, None, 10, &[], None).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(env.blobs.stat(&d(&data)).await.unwrap(), Some(10_000), "the crash came before the bytes went");

    let upload = {
        let (reg, r, data) = (Arc::clone(&env.reg), r.clone(), data.clone());
        tokio::spawn(async move { push_blob(&reg, &r, &data).await })
    };
    let restarted = Registry::new(
        env.blobs.clone(),
        env.meta.clone(),
        common::authz(true),
        Options { gc_grace_ms: 1_000, ..Options::default() },
    );
    let report = restarted.maintenance.gc_run_once(now_ms()).await.unwrap();
    assert_eq!(report.tombstones_finished, 1);
    upload.await.unwrap().unwrap();
    assert!(env.meta.tombstones(10).await.unwrap().is_empty());
    pull_blob(&env.reg, &r, &d(&data)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn bytes_without_a_record_are_swept_once_the_grace_has_passed_since_first_seen() {
    let env = setup(1_000).await;
    let debris = Bytes::from_static(b"bytes of a push that crashed before its metadata");
    env.blobs.put_small(&d(&debris), debris.clone()).await.unwrap();
    let now = now_ms();
    assert_eq!(env.reg.maintenance.gc_run_once(now).await.unwrap().orphans_removed, 0, "first seen now");
    assert_eq!(env.reg.maintenance.gc_run_once(now + 999).await.unwrap().orphans_removed, 0, "within the grace");
    // Past the grace, but sweeps run at most every half grace: not in this run.
    assert_eq!(env.reg.maintenance.gc_run_once(now + 1_200).await.unwrap().orphans_removed, 0);
    assert_eq!(env.reg.maintenance.gc_run_once(now + 1_499).await.unwrap().orphans_removed, 1);
    assert!(stored(&env.blobs).await.is_empty());
}

/// A client that finds a blob with HEAD skips its upload; the check touches the blob when its
/// mark is older than half the grace, so it outlives the check by at least that.
#[tokio::test(flavor = "multi_thread")]
async fn a_blob_checked_by_a_client_outlives_the_check() {
    let env = setup(200).await;
    let r = repo("gc/head");
    let data = vec![5u8; 1000];
    push_blob(&env.reg, &r, &data).await.unwrap();
    let pushed = now_ms();
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let checked = now_ms();
    assert!(checked - pushed >= 150);
    env.reg.blobs.stat(&Caller::Anonymous, &r, &d(&data)).await.unwrap();
    // Without the check the mark would be older than this run's cutoff (checked - 1).
    assert_eq!(env.reg.maintenance.gc_run_once(checked + 199).await.unwrap().blobs_removed, 0);
    assert_eq!(env.reg.maintenance.gc_run_once(now_ms() + 201).await.unwrap().blobs_removed, 1);
}

/// A small deterministic generator, so the stress run needs no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

struct Image {
    repo: RepositoryKey,
    tag: String,
    digest: Digest,
    blobs: Vec<Digest>,
}

/// Collection in a loop with a tiny grace, while pushers push overlapping images (some by
/// uploading, some after finding the blob with HEAD, some by mounting from another
/// repository), deleters delete some of them and pullers pull the others. No pull of a kept
/// image ever fails, every acknowledged image stays complete, and at the end the store holds
/// exactly the blobs the kept images reference.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn collection_in_a_loop_never_breaks_concurrent_pushes_and_pulls() {
    const PUSHERS: usize = 8;
    const IMAGES_EACH: usize = 12;
    const PULLERS: usize = 6;
    const PULLS_EACH: usize = 60;
    // Tiny, yet longer than one image's push in a debug build on a loaded machine: a push slower
    // than the grace may lose its blobs (cleanly) again and again.
    const GRACE_MS: i64 = 250;
    let env = setup(GRACE_MS).await;
    let reg = &env.reg;
    let repos: Vec<RepositoryKey> = (0..3).map(|i| repo(&format!("stress/r{i}"))).collect();
    // Shared layers: mostly small, two large enough for the session path.
    let pool: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..16u8).map(|i| vec![i; if i < 2 { (1 << 20) + 4096 } else { 512 + usize::from(i) * 300 }]).collect(),
    );
    let kept: Arc<Mutex<Vec<Image>>> = Arc::default();
    let pushing = Arc::new(AtomicBool::new(true));
    let lost_races = Arc::new(AtomicU64::new(0));

    let pushers: Vec<_> = (0..PUSHERS)
        .map(|p| {
            let (reg, pool, kept, repos, lost) =
                (Arc::clone(reg), Arc::clone(&pool), Arc::clone(&kept), repos.clone(), Arc::clone(&lost_races));
            tokio::spawn(async move {
                let who = Caller::Anonymous;
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (p as u64 + 1));
                for i in 0..IMAGES_EACH {
                    let r = repos[rng.next(repos.len())].clone();
                    let config = format!("{{\"pusher\":{p},\"image\":{i}}}").into_bytes();
                    let mut layers: Vec<&[u8]> = Vec::new();
                    while layers.len() < 3 {
                        let l = &pool[rng.next(pool.len())][..];
                        if !layers.contains(&l) {
                            layers.push(l);
                        }
                    }
                    let manifest = manifest_json(&config, &layers);
                    let tag = format!("p{p}-i{i}");
                    let mut attempt = 0;
                    let digest = loop {
                        attempt += 1;
                        assert!(attempt <= 50, "{tag}: no push succeeded in 50 attempts");
                        for b in std::iter::once(&config[..]).chain(layers.iter().copied()) {
                            // Like docker: HEAD first, then mount from another repository or upload.
                            // After a lost race, upload everything again.
                            if attempt == 1 && reg.blobs.stat(&who, &r, &d(b)).await.is_ok() {
                                continue;
                            }
                            let from = &repos[rng.next(repos.len())];
                            if attempt == 1
                                && from != &r
                                && reg.blobs.mount(&who, &r, from, &d(b)).await.unwrap().is_some()
                            {
                                continue;
                            }
                            push_blob(&reg, &r, b).await.unwrap();
                        }
                        match put_manifest(&reg, &r, &tag, &manifest).await {
                            Ok(digest) => break digest,
                            // Collected between the check and the push: upload again.
                            Err(Error::ManifestBlobUnknown(_)) => {
                                lost.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => panic!("{tag}: {e}"),
                        }
                    };
                    // Every acknowledged image is complete right away.
                    pull_image(&reg, &r, &tag).await.unwrap();
                    let blobs = std::iter::once(&config[..]).chain(layers.iter().copied()).map(d).collect();
                    if i % 2 == 0 {
                        // Deleted again, through either API; nobody pulls it.
                        if i % 4 == 0 {
                            reg.images.delete(&who, &r, &Reference::Digest(digest)).await.unwrap();
                        } else {
                            reg.images.delete_many(&who, &r, &[ImageId::Tag(Tag::parse(&tag).unwrap())]).await.unwrap();
                        }
                    } else {
                        kept.lock().unwrap().push(Image { repo: r, tag, digest, blobs });
                    }
                }
            })
        })
        .collect();

    let pullers: Vec<_> = (0..PULLERS)
        .map(|q| {
            let (reg, kept) = (Arc::clone(reg), Arc::clone(&kept));
            tokio::spawn(async move {
                let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ (q as u64 + 1));
                let mut pulled = 0;
                for _ in 0..PULLS_EACH * 100 {
                    if pulled == PULLS_EACH {
                        break;
                    }
                    let pick = {
                        let k = kept.lock().unwrap();
                        (!k.is_empty()).then(|| {
                            let img = &k[rng.next(k.len())];
                            (img.repo.clone(), img.tag.clone(), img.digest.clone())
                        })
                    };
                    let Some((r, tag, digest)) = pick else {
                        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                        continue;
                    };
                    assert_eq!(pull_image(&reg, &r, &tag).await.unwrap(), digest);
                    pulled += 1;
                }
            })
        })
        .collect();

    let collector = {
        let (reg, pushing) = (Arc::clone(reg), Arc::clone(&pushing));
        tokio::spawn(async move {
            let (mut runs, mut removed) = (0u64, 0u64);
            while pushing.load(Ordering::Relaxed) && runs < 100_000 {
                let report = reg.maintenance.gc_run_once(now_ms()).await.unwrap();
                removed += report.blobs_removed + report.orphans_removed;
                runs += 1;
                tokio::task::yield_now().await;
            }
            (runs, removed)
        })
    };

    for t in pushers.into_iter().chain(pullers) {
        t.await.unwrap();
    }
    pushing.store(false, Ordering::Relaxed);
    let (runs, removed_during) = collector.await.unwrap();
    assert!(runs > 0);

    // Every acknowledged, kept image is complete.
    let kept = std::mem::take(&mut *kept.lock().unwrap());
    assert_eq!(kept.len(), PUSHERS * IMAGES_EACH / 2);
    for img in &kept {
        assert_eq!(pull_image(reg, &img.repo, &img.tag).await.unwrap(), img.digest);
    }
    // Once everything is past the grace, the store holds exactly the referenced blobs (a
    // second run takes bytes the first saw for the first time).
    let t = now_ms() + GRACE_MS + 1;
    let first = reg.maintenance.gc_run_once(t).await.unwrap();
    let second = reg.maintenance.gc_run_once(t + GRACE_MS + 1).await.unwrap();
    let referenced: BTreeSet<String> = kept.iter().flat_map(|i| i.blobs.iter().map(ToString::to_string)).collect();
    assert_eq!(stored(&env.blobs).await, referenced);
    assert!(env.meta.tombstones(10).await.unwrap().is_empty());
    let usage = reg.maintenance.storage_usage().await.unwrap();
    assert_eq!(usage.blobs, referenced.len() as u64);
    for img in &kept {
        assert_eq!(pull_image(reg, &img.repo, &img.tag).await.unwrap(), img.digest);
    }
    // The deleted images' own configs were collected, during the run or at the end.
    let total_removed = removed_during + first.blobs_removed + first.orphans_removed + second.blobs_removed;
    assert!(total_removed >= (PUSHERS * IMAGES_EACH / 2) as u64, "removed {total_removed}");
    eprintln!(
        "stress: {runs} collection runs, {total_removed} blobs removed, {} pushes lost a race and retried",
        lost_races.load(Ordering::Relaxed)
    );
}
