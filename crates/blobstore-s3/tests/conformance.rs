//! The S3 blob store against a real S3 server, when one is configured:
//! `TEST_S3_ENDPOINT`, `TEST_S3_BUCKET` (an existing bucket), `TEST_S3_ACCESS_KEY_ID`,
//! `TEST_S3_SECRET_ACCESS_KEY`. Without them these tests print "skipped" and pass. Each test
//! works below a fresh random prefix and removes what it stored.
//!
//! `TEST_S3_LARGE_MIB` sets the size of the large upload (256 MiB by default) and
//! `TEST_S3_LARGE_APPENDS` the number of appends it is sent in (1 by default: committed by a
//! server-side copy; more: their parts are streamed into the blob); the test prints its
//! throughput and the process's peak memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_blobstore::{BlobStore, ByteRange, ByteStream, Error};
use berth_blobstore_s3::{S3BlobStore, S3Config};
use berth_types::{Algorithm, Digest, UploadId};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
use object_store::{ObjectStore, ObjectStoreExt};

struct Server {
    endpoint: String,
    bucket: String,
    key: String,
    secret: String,
}

fn server(test: &str) -> Option<Server> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (
        var("TEST_S3_ENDPOINT"),
        var("TEST_S3_BUCKET"),
        var("TEST_S3_ACCESS_KEY_ID"),
        var("TEST_S3_SECRET_ACCESS_KEY"),
    ) {
        (Some(endpoint), Some(bucket), Some(key), Some(secret)) => Some(Server { endpoint, bucket, key, secret }),
        _ => {
            println!(
                "{test}: skipped (TEST_S3_ENDPOINT, TEST_S3_BUCKET, TEST_S3_ACCESS_KEY_ID, TEST_S3_SECRET_ACCESS_KEY unset)"
            );
            None
        }
    }
}

impl Server {
    fn config(&self) -> S3Config {
        S3Config {
            bucket: self.bucket.clone(),
            prefix: Some(format!("berth-test/{}", uuid())),
            endpoint: Some(self.endpoint.clone()),
            path_style: true,
            access_key_id: Some(self.key.clone()),
            secret_access_key: Some(self.secret.clone()),
            ..S3Config::default()
        }
    }

    /// A plain client of the bucket, to see what the store's API does not show.
    fn raw(&self) -> object_store::aws::AmazonS3 {
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_bucket_name(&self.bucket)
            .with_region("us-east-1")
            .with_access_key_id(&self.key)
            .with_secret_access_key(&self.secret)
            .build()
            .unwrap()
    }

    fn store(&self) -> S3BlobStore {
        S3BlobStore::open(self.config()).expect("open store")
    }
}

fn uuid() -> String {
    UploadId::generate().to_string()
}

/// Removes the blobs a test left (uploads are removed by the tests themselves).
async fn clean(store: &S3BlobStore) {
    let blobs: Vec<Digest> = store.list().try_collect().await.unwrap();
    for d in blobs {
        store.delete(&d).await.unwrap();
    }
    for (id, _) in store.uploads().await.unwrap() {
        store.upload_abort(&id).await.unwrap();
    }
}

fn body(chunks: Vec<Vec<u8>>) -> ByteStream {
    stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c)))).boxed()
}

async fn collect(s: ByteStream) -> Vec<u8> {
    s.try_fold(Vec::new(), |mut out, c| async move {
        out.extend_from_slice(&c);
        Ok(out)
    })
    .await
    .expect("read")
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32).map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8).collect()
}

#[tokio::test]
async fn conformance() {
    let Some(server) = server("conformance") else { return };
    let _serial = SERIAL.lock().await;
    let store = server.store();
    store.check().await.expect("check");
    berth_blobstore::testsuite::run(&store).await;
    clean(&store).await;
}

const CHUNK: u64 = 64 * 1024;

/// A long generated blob: its 64 KiB chunk `k` is the block's bytes from `start(k)` on (the
/// offset moves with each chunk, so parts differ).
struct Generated {
    block: Bytes,
}

impl Generated {
    fn new() -> Self {
        Generated { block: Bytes::from(pattern(2 * 1024 * 1024, 7)) }
    }

    /// The blob's bytes at `off..off + n`, within one chunk.
    fn at(&self, off: u64, n: usize) -> &[u8] {
        let start = ((off / CHUNK) * 4099 % (1024 * 1024) + off % CHUNK) as usize;
        &self.block[start..start + n]
    }

    /// Bytes `from..to` (`from` a multiple of 64 KiB) in 64 KiB chunks made as they are asked
    /// for, each an allocation of its own, as a request body's are.
    fn stream(self: &Arc<Self>, from: u64, to: u64) -> ByteStream {
        let g = Arc::clone(self);
        stream::unfold(from, move |sent| {
            let g = Arc::clone(&g);
            async move {
                let n = CHUNK.min(to.checked_sub(sent).filter(|&left| left > 0)?);
                Some((Ok(Bytes::copy_from_slice(g.at(sent, n as usize))), sent + n))
            }
        })
        .boxed()
    }

    /// Whether `chunk` holds the blob's bytes from `off` on.
    fn matches(&self, mut off: u64, chunk: &[u8]) -> bool {
        let mut rest = chunk;
        while !rest.is_empty() {
            let n = rest.len().min((CHUNK - off % CHUNK) as usize);
            if self.at(off, n) != &rest[..n] {
                return false;
            }
            rest = &rest[n..];
            off += n as u64;
        }
        true
    }
}

/// Resident memory of this process now (`VmRSS`) or at its peak (`VmHWM`), in MiB.
fn rss_mib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb =
        status.lines().find_map(|l| l.strip_prefix(field))?.trim().trim_end_matches("kB").trim().parse::<u64>().ok()?;
    Some(kb / 1024)
}

fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

/// Held by every test that talks to the server, so the large upload's memory is its own.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn large_append_streams_with_bounded_memory() {
    let Some(server) = server("large_append_streams_with_bounded_memory") else { return };
    let _serial = SERIAL.lock().await;
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let mib = env("TEST_S3_LARGE_MIB").unwrap_or(256);
    let appends = env("TEST_S3_LARGE_APPENDS").unwrap_or(1).max(1);
    let len = mib * 1024 * 1024;
    let store = server.store();
    let id = UploadId::generate();
    let blob = Arc::new(Generated::new());
    // Peak memory from here on: writing 5 to clear_refs resets VmHWM (Linux).
    let measured = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let base = rss_mib("VmRSS:").unwrap_or(0);

    let started = Instant::now();
    let mut parts = Vec::new();
    let mut at = 0;
    for i in 0..appends {
        // Equal shares of whole chunks, the last taking the rest.
        let to = if i + 1 == appends { len } else { (i + 1) * (len / appends / CHUNK) * CHUNK };
        let appended = store.upload_append(&id, at, blob.stream(at, to)).await.unwrap();
        at = appended.len;
        parts.extend(appended.part);
    }
    let append_time = started.elapsed();
    assert_eq!(at, len);
    // The store trusts the digest it is given (the core verifies it), so any name will do.
    let digest = Digest::of(Algorithm::Sha256, id.as_str().as_bytes());
    let committing = Instant::now();
    assert_eq!(store.upload_commit(&id, &parts, &digest).await.unwrap(), len);
    let commit_time = committing.elapsed();
    let written = started.elapsed();
    assert_eq!(store.stat(&digest).await.unwrap(), Some(len));
    assert!(store.uploads().await.unwrap().is_empty(), "commit removes the upload's parts");

    let reading = Instant::now();
    let r = store.read(&digest, None).await.unwrap();
    assert_eq!(r.size, len);
    let mut got = 0u64;
    let mut s = r.body.into_stream();
    while let Some(chunk) = s.next().await {
        let chunk = chunk.unwrap();
        assert!(blob.matches(got, &chunk), "read back differs at {got}");
        got += chunk.len() as u64;
    }
    let read_time = reading.elapsed();
    assert_eq!(got, len);
    let grew = rss_mib("VmHWM:").unwrap_or(0).saturating_sub(base);
    println!(
        "large upload: {mib} MiB in {appends} append(s) in {append_time:.2?} + commit {commit_time:.2?} = {:.0} MB/s; \
         read in {read_time:.2?} = {:.0} MB/s; peak RSS {base} MiB + {grew} MiB",
        mb_per_s(len, written),
        mb_per_s(len, read_time),
    );
    // Parts of 8 MiB, four in flight and one filling: about 40 MiB whatever the size.
    if measured {
        assert!(grew < 96, "memory grew by {grew} MiB while streaming {mib} MiB");
    }
    clean(&store).await;
}

#[tokio::test]
async fn several_appends_commit_byte_exact() {
    let Some(server) = server("several_appends_commit_byte_exact") else { return };
    let _serial = SERIAL.lock().await;
    let store = server.store();
    let sizes = [6 * 1024 * 1024, 1, 9 * 1024 * 1024];
    let data = pattern(sizes.iter().sum(), 3);
    let digest = Digest::of(Algorithm::Sha256, &data);
    let id = UploadId::generate();
    let mut parts = Vec::new();
    let mut at = 0;
    for n in sizes {
        let chunks = data[at..at + n].chunks(100_000).map(<[u8]>::to_vec).collect();
        let appended = store.upload_append(&id, at as u64, body(chunks)).await.unwrap();
        at += n;
        assert_eq!(appended.len, at as u64);
        parts.push(appended.part.expect("S3 names parts"));
    }
    assert_eq!(collect(store.upload_read(&id, &parts).await.unwrap()).await, data);

    // Parts out of order, or one missing, do not line up: commit refuses them.
    let swapped = vec![parts[1].clone(), parts[0].clone(), parts[2].clone()];
    assert!(store.upload_commit(&id, &swapped, &digest).await.is_err());
    let gap = vec![parts[0].clone(), parts[2].clone()];
    assert!(store.upload_commit(&id, &gap, &digest).await.is_err());
    let foreign = vec!["../../blobs/sha256/x".to_owned()];
    assert!(matches!(store.upload_commit(&id, &foreign, &digest).await, Err(Error::Backend(_))));
    assert!(store.stat(&digest).await.unwrap().is_none());

    assert_eq!(store.upload_commit(&id, &parts, &digest).await.unwrap(), data.len() as u64);
    assert_eq!(collect(store.read(&digest, None).await.unwrap().body.into_stream()).await, data);
    assert!(store.uploads().await.unwrap().is_empty());

    // No part at all is the empty blob.
    let empty = Digest::of(Algorithm::Sha256, b"");
    assert_eq!(store.upload_commit(&UploadId::generate(), &[], &empty).await.unwrap(), 0);
    assert_eq!(store.stat(&empty).await.unwrap(), Some(0));
    clean(&store).await;
}

#[tokio::test]
async fn failed_large_body_leaves_no_part() {
    let Some(server) = server("failed_large_body_leaves_no_part") else { return };
    let _serial = SERIAL.lock().await;
    let store = server.store();
    let id = UploadId::generate();
    // More than a part (so a multipart upload is under way), then the client fails.
    let chunks: Vec<Result<Bytes, berth_blobstore::BoxError>> = (0..20)
        .map(|_| Ok(Bytes::from(vec![5u8; 1024 * 1024])))
        .chain(std::iter::once(Err("client went away".into())))
        .collect();
    let failing = stream::iter(chunks).boxed();
    assert!(matches!(store.upload_append(&id, 0, failing).await, Err(Error::Body(_))));
    assert!(store.uploads().await.unwrap().is_empty());
}

#[tokio::test]
async fn copies_above_the_copy_limit_stream_and_quarantine_moves_aside() {
    let Some(server) = server("copies_above_the_copy_limit_stream_and_quarantine_moves_aside") else { return };
    let _serial = SERIAL.lock().await;
    for limit in [u64::MAX, 1024 * 1024] {
        let cfg = server.config();
        let prefix = cfg.prefix.clone().unwrap();
        let store = S3BlobStore::open(cfg).unwrap().with_copy_limit(limit);
        let data = pattern(3 * 1024 * 1024 + 17, 5);
        let digest = Digest::of(Algorithm::Sha256, &data);
        let id = UploadId::generate();
        let chunks = data.chunks(256 * 1024).map(<[u8]>::to_vec).collect();
        let parts = Vec::from_iter(store.upload_append(&id, 0, body(chunks)).await.unwrap().part);
        assert_eq!(store.upload_commit(&id, &parts, &digest).await.unwrap(), data.len() as u64);
        assert_eq!(collect(store.read(&digest, None).await.unwrap().body.into_stream()).await, data);

        store.quarantine(&digest).await.unwrap();
        assert!(store.stat(&digest).await.unwrap().is_none());
        assert!(store.list().try_collect::<Vec<_>>().await.unwrap().is_empty());
        store.quarantine(&digest).await.unwrap();

        // The bytes are kept aside, under quarantine/, whole; then this test removes them.
        let raw = server.raw();
        let aside = object_store::path::Path::from(format!("{prefix}/quarantine"));
        let kept: Vec<_> = raw.list(Some(&aside)).try_collect().await.unwrap();
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert!(kept[0].location.as_ref().contains(digest.hex()), "{:?}", kept[0].location);
        assert_eq!(raw.get(&kept[0].location).await.unwrap().bytes().await.unwrap(), data);
        raw.delete(&kept[0].location).await.unwrap();
    }
}

#[tokio::test]
async fn range_reads() {
    let Some(server) = server("range_reads") else { return };
    let _serial = SERIAL.lock().await;
    let store = server.store();
    let data = pattern(100_000, 9);
    let digest = Digest::of(Algorithm::Sha256, &data);
    store.put_small(&digest, Bytes::from(data.clone())).await.unwrap();
    let size = data.len() as u64;

    for (start, end) in [(0, 0), (0, size - 1), (size - 1, size - 1), (1000, 99_998), (4096, 8191)] {
        let r = store.read(&digest, Some(ByteRange { start, end })).await.unwrap();
        assert_eq!(r.size, size);
        assert_eq!(r.range, Some(ByteRange { start, end }));
        let got = collect(r.body.into_stream()).await;
        assert_eq!(got, data[start as usize..=end as usize], "{start}-{end}");
    }
    for (start, end) in [(0, size), (size - 1, size), (size, size), (size + 10, size + 20), (10, 5), (0, u64::MAX)] {
        let r = store.read(&digest, Some(ByteRange { start, end })).await;
        assert!(matches!(r, Err(Error::InvalidRange)), "{start}-{end}");
    }
    let missing = Digest::of(Algorithm::Sha256, b"missing");
    assert!(matches!(store.read(&missing, Some(ByteRange { start: 0, end: 0 })).await, Err(Error::NotFound)));

    let empty = Digest::of(Algorithm::Sha256, b"");
    store.put_small(&empty, Bytes::new()).await.unwrap();
    assert_eq!(store.read(&empty, None).await.unwrap().size, 0);
    assert!(matches!(store.read(&empty, Some(ByteRange { start: 0, end: 0 })).await, Err(Error::InvalidRange)));
    clean(&store).await;
}

#[tokio::test]
async fn presigned_url_serves_the_blob() {
    let Some(server) = server("presigned_url_serves_the_blob") else { return };
    let _serial = SERIAL.lock().await;
    let store = server.store();
    let data = pattern(70_000, 11);
    let digest = Digest::of(Algorithm::Sha256, &data);
    store.put_small(&digest, Bytes::from(data.clone())).await.unwrap();
    let url = store.presigned_url(&digest, Duration::from_secs(300)).await.unwrap().expect("a URL");
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let client = reqwest::Client::new();
    let got = client.get(&url).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap(), data);
    // A TTL past SigV4's 7 days is cut to 7 days rather than making a URL S3 refuses.
    let long = store.presigned_url(&digest, Duration::from_secs(30 * 24 * 3600)).await.unwrap().unwrap();
    assert!(long.contains("X-Amz-Expires=604800"), "{long}");
    assert_eq!(client.get(&long).send().await.unwrap().status(), 200);
    // The signature covers the key: another blob's key under the same signature is refused.
    let other = url.replace(digest.hex(), Digest::of(Algorithm::Sha256, b"other").hex());
    assert_eq!(client.get(&other).send().await.unwrap().status(), 403);
    clean(&store).await;
}

#[tokio::test]
async fn check_names_the_problem() {
    let Some(server) = server("check_names_the_problem") else { return };
    let _serial = SERIAL.lock().await;
    let endpoint = server.endpoint.trim_end_matches('/').to_owned();
    server.store().check().await.unwrap();

    let bucket = format!("berth-missing-{}", &uuid()[..8]);
    let missing = S3BlobStore::open(S3Config { bucket: bucket.clone(), ..server.config() }).unwrap();
    let e = missing.check().await.unwrap_err();
    assert!(e.to_string().contains(&format!("S3 bucket '{bucket}' does not exist at {endpoint}")), "{e}");

    let wrong_secret =
        S3BlobStore::open(S3Config { secret_access_key: Some("wrong".into()), ..server.config() }).unwrap();
    let e = wrong_secret.check().await.unwrap_err().to_string();
    assert!(e.contains(&format!("S3 credentials were refused by {endpoint} (SignatureDoesNotMatch)")), "{e}");

    let wrong_key = S3BlobStore::open(S3Config { access_key_id: Some("NOSUCHKEY".into()), ..server.config() }).unwrap();
    let e = wrong_key.check().await.unwrap_err().to_string();
    assert!(e.contains(&format!("S3 credentials were refused by {endpoint} (InvalidAccessKeyId)")), "{e}");
    assert!(!e.contains('\n'), "one line: {e}");
}

/// Needs no server: an endpoint where nothing listens.
#[tokio::test]
async fn closed_port_is_unavailable_within_bounded_time() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let store = S3BlobStore::open(S3Config {
        bucket: "berth".into(),
        endpoint: Some(endpoint.clone()),
        path_style: true,
        access_key_id: Some("k".into()),
        secret_access_key: Some("s".into()),
        ..S3Config::default()
    })
    .unwrap();
    let started = Instant::now();
    let e = store.check().await.unwrap_err();
    assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
    let line = e.to_string();
    assert!(line.contains(&format!("cannot reach S3 at {endpoint}: ")), "{line}");
    assert!(line.contains("refused"), "{line}");
    let d = Digest::of(Algorithm::Sha256, b"x");
    assert!(matches!(store.stat(&d).await, Err(Error::Unavailable(_))));
    assert!(matches!(store.read(&d, None).await, Err(Error::Unavailable(_))));
    let appended = store.upload_append(&UploadId::generate(), 0, body(vec![vec![1; 10]])).await;
    assert!(matches!(appended, Err(Error::Unavailable(_))), "{appended:?}");
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(60), "gave up after {elapsed:?}");
    println!("closed port: four requests gave up in {elapsed:.2?}");
}

/// Needs no server: a stand-in that answers every request 503 SlowDown.
#[tokio::test]
async fn overloaded_server_is_unavailable_after_bounded_retries() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = Arc::clone(&answered);
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else { return };
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let mut buf = vec![0; 64 * 1024];
                // One answer per connection, whatever came: enough for a client that closes
                // the connection after an error it did not read a body for.
                let _ = conn.read(&mut buf).await;
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let body = "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>slow</Message></Error>";
                let answer = format!(
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
            });
        }
    });
    let store = S3BlobStore::open(S3Config {
        bucket: "berth".into(),
        endpoint: Some(endpoint),
        path_style: true,
        access_key_id: Some("k".into()),
        secret_access_key: Some("s".into()),
        ..S3Config::default()
    })
    .unwrap();
    let started = Instant::now();
    let d = Digest::of(Algorithm::Sha256, b"x");
    let read = store.read(&d, None).await;
    assert!(matches!(read, Err(Error::Unavailable(_))), "{:?}", read.err());
    let put = store.put_small(&d, Bytes::from_static(b"x")).await;
    assert!(matches!(put, Err(Error::Unavailable(_))), "{put:?}");
    assert!(matches!(store.check().await, Err(Error::Unavailable(_))));
    let elapsed = started.elapsed();
    let answered = answered.load(std::sync::atomic::Ordering::Relaxed);
    assert!(answered >= 6, "retried: {answered} requests");
    assert!(elapsed < Duration::from_secs(45), "gave up after {elapsed:?}");
    println!("overloaded server: three calls, {answered} requests, gave up in {elapsed:.2?}");
    server.abort();
}
