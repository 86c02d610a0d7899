//! `berth-bench scaleout` (issue 11): Berth on PostgreSQL and S3, one node and several behind
//! HAProxy, beside CNCF distribution on the same S3 server, embedded Berth (files and SQLite),
//! and a plain S3 client (boto3) moving the same bytes: the ceiling.
//!
//! Everything runs in one process run, on loopback, against one PostgreSQL server and one S3
//! endpoint that the caller names (`bench/scaleout.sh` starts them). Each target gets its own
//! database and bucket, made for the run and removed after it (`--keep` keeps them). The
//! measures run in rounds; in each round every target takes its turn at each measure, in an
//! order rotated from round to round, so that a spell of load on the shared machine falls on
//! all of them. Figures are the medians of the rounds; ratios are the medians of the ratios of
//! each round.
//!
//! Each 1 GiB push is of bytes no server has seen (the base bytes with a tail of their own),
//! every pulled blob is first read whole and its digest checked, then timed over a minimal
//! HTTP/1.1 client; after its turn a target's big blobs are deleted from its bucket (or data
//! directory), so that a memory-backed S3 server (Ceph memstore) holds little at a time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use berth_types::{Algorithm, Digest, Hasher};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};

use crate::{Client, Server, manifest, random_bytes};

#[derive(clap::Args, Clone)]
pub struct ScaleoutArgs {
    /// The berth binary.
    #[arg(long, default_value = "target/release/berth")]
    berth: PathBuf,
    /// CNCF distribution 2.8 (Debian package docker-registry).
    #[arg(long, default_value = "/usr/bin/docker-registry")]
    distribution: PathBuf,
    #[arg(long, default_value = "haproxy")]
    haproxy: PathBuf,
    #[arg(long, default_value = "psql")]
    psql: PathBuf,
    #[arg(long, default_value = "python3")]
    python: PathBuf,
    /// The S3 helper (buckets, deletes, the boto3 ceiling).
    #[arg(long, default_value = "bench/s3tool.py")]
    s3tool: PathBuf,
    /// The PostgreSQL server, without a database (`postgres://postgres@127.0.0.1:5432`); the
    /// run makes its own databases there.
    #[arg(long, env = "BERTH_TEST_PG_URL")]
    pg_url: String,
    /// The S3 endpoint (`http://127.0.0.1:7480`); the run makes its own buckets there.
    #[arg(long, env = "BERTH_TEST_S3_ENDPOINT")]
    s3_endpoint: String,
    #[arg(long, env = "BERTH_TEST_S3_ACCESS_KEY_ID")]
    s3_key: String,
    #[arg(long, env = "BERTH_TEST_S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    s3_secret: String,
    #[arg(long, env = "BERTH_TEST_S3_REGION", default_value = "us-east-1")]
    s3_region: String,
    /// Nodes of the cluster behind HAProxy.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Size of the big blob, MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: usize,
    /// Concurrent pushes and pulls of the multi-stream runs; each moves a blob of
    /// `size_mib / streams`.
    #[arg(long, default_value_t = 4)]
    streams: usize,
    /// 4 KiB blobs pushed per target and round, 16 at a time.
    #[arg(long, default_value_t = 2000)]
    small_blobs: usize,
    /// Manifest PUTs per target and round, 16 at a time.
    #[arg(long, default_value_t = 500)]
    manifests: usize,
    /// Manifest GETs by tag per target and round, 32 at a time.
    #[arg(long, default_value_t = 20000)]
    manifest_gets: usize,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Leave the databases and buckets of the run in place.
    #[arg(long)]
    keep: bool,
}

/// The longest one measure of one target may take before the run gives up.
const PHASE_LIMIT: Duration = Duration::from_secs(900);
/// The longest a helper command (psql, the S3 tool) may take.
const TOOL_LIMIT: Duration = Duration::from_secs(600);

/// Runs a helper command to its end within `limit`; its stdout.
fn run_tool(cmd: &mut Command, limit: Duration) -> anyhow::Result<String> {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {shown}"))?;
    let (mut out, mut err) = (child.stdout.take().context("stdout")?, child.stderr.take().context("stderr")?);
    let reader = std::thread::spawn(move || {
        use std::io::Read as _;
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        use std::io::Read as _;
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{shown}: not done within {} s", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (reader.join().unwrap_or_default(), err_reader.join().unwrap_or_default());
    if !status.success() {
        bail!("{shown}: {status}: {}", err.trim());
    }
    Ok(out)
}

/// The databases and buckets of the run; removed on drop (unless kept). Only those it made.
struct Resources {
    a: ScaleoutArgs,
    databases: Vec<String>,
    buckets: Vec<String>,
}

impl Resources {
    fn psql(&self, sql: &str) -> anyhow::Result<String> {
        let url = format!("{}/postgres", self.a.pg_url.trim_end_matches('/'));
        run_tool(
            Command::new(&self.a.psql)
                .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", &url, "-c", sql])
                .env("PGCONNECT_TIMEOUT", "10"),
            Duration::from_secs(120),
        )
    }

    fn s3tool(&self, args: &[&str], limit: Duration) -> anyhow::Result<String> {
        run_tool(
            Command::new(&self.a.python)
                .arg(&self.a.s3tool)
                .args(["--endpoint", &self.a.s3_endpoint, "--region", &self.a.s3_region])
                .args(args)
                .env("BERTH_TEST_S3_ACCESS_KEY_ID", &self.a.s3_key)
                .env("BERTH_TEST_S3_SECRET_ACCESS_KEY", &self.a.s3_secret),
            limit,
        )
    }

    /// A new database; its URL.
    fn database(&mut self, name: &str) -> anyhow::Result<String> {
        self.psql(&format!("CREATE DATABASE \"{name}\""))?;
        self.databases.push(name.to_owned());
        Ok(format!("{}/{name}", self.a.pg_url.trim_end_matches('/')))
    }

    fn bucket(&mut self, name: &str) -> anyhow::Result<()> {
        self.s3tool(&["mkbucket", name], Duration::from_secs(120))?;
        self.buckets.push(name.to_owned());
        Ok(())
    }

    fn delete_objects(&self, bucket: &str, keys: &[String]) -> anyhow::Result<()> {
        let mut args = vec!["delete", bucket];
        args.extend(keys.iter().map(String::as_str));
        self.s3tool(&args, Duration::from_secs(120)).map(drop)
    }
}

impl Drop for Resources {
    fn drop(&mut self) {
        if self.a.keep {
            if !self.databases.is_empty() || !self.buckets.is_empty() {
                eprintln!("kept: databases {:?}, buckets {:?}", self.databases, self.buckets);
            }
            return;
        }
        for db in std::mem::take(&mut self.databases) {
            if let Err(e) = self.psql(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)")) {
                eprintln!("could not drop database {db}: {e:#}");
            }
        }
        let buckets = std::mem::take(&mut self.buckets);
        if !buckets.is_empty() {
            let mut args = vec!["rmbucket"];
            args.extend(buckets.iter().map(String::as_str));
            if let Err(e) = self.s3tool(&args, TOOL_LIMIT) {
                eprintln!("could not remove buckets {buckets:?}: {e:#}");
            }
        }
    }
}

/// A child process ended on drop (the proxy).
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where a target keeps a blob's bytes, so that the run can drop them after its turn.
enum Stored {
    /// In a bucket, under the key this gives for a digest.
    S3 { bucket: String, key: fn(&Digest) -> String },
    /// In a data directory, `blobs/<alg>/<2 hex>/<hex>`.
    Fs(PathBuf),
}

fn berth_key(d: &Digest) -> String {
    format!("blobs/{}/{}/{}", d.algorithm().as_str(), &d.hex()[..2], d.hex())
}

fn distribution_key(d: &Digest) -> String {
    format!("docker/registry/v2/blobs/{}/{}/{}/data", d.algorithm().as_str(), &d.hex()[..2], d.hex())
}

/// A registry under test: its address and its processes.
struct Target {
    name: String,
    url: String,
    servers: Vec<Server>,
    /// Another server on the same storage that answers blob GETs with a redirect to a
    /// presigned URL of the bucket, for the pulls by redirect.
    redirect: Option<Server>,
    proxy: Option<Proc>,
    stored: Stored,
    /// The data directory the nodes of a cluster share.
    _dir: Option<tempfile::TempDir>,
}

impl Target {
    /// Drops the bytes of these blobs from the target's storage, behind its back (the run
    /// reads them no more).
    fn forget(&self, res: &Resources, digests: &[Digest]) -> anyhow::Result<()> {
        match &self.stored {
            Stored::S3 { bucket, key } => {
                let keys: Vec<String> = digests.iter().map(key).collect();
                res.delete_objects(bucket, &keys)
            }
            Stored::Fs(root) => {
                for d in digests {
                    let _ = std::fs::remove_file(root.join(berth_key(d)));
                }
                Ok(())
            }
        }
    }

    /// Peak RSS of each process, MiB.
    fn peak_rss(&self) -> Vec<f64> {
        self.servers.iter().map(|s| s.status_kib("VmHWM:") as f64 / 1024.0).collect()
    }
}

fn berth_s3_env(a: &ScaleoutArgs, db_url: &str, bucket: &str) -> Vec<(String, String)> {
    [
        ("BERTH_METADATA__URL", db_url),
        ("BERTH_STORAGE__KIND", "s3"),
        ("BERTH_STORAGE__S3__BUCKET", bucket),
        ("BERTH_STORAGE__S3__ENDPOINT", &a.s3_endpoint),
        ("BERTH_STORAGE__S3__REGION", &a.s3_region),
        ("BERTH_STORAGE__S3__PATH_STYLE", "true"),
        ("BERTH_STORAGE__S3__ACCESS_KEY_ID", &a.s3_key),
        ("BERTH_STORAGE__S3__SECRET_ACCESS_KEY", &a.s3_secret),
        ("BERTH_REGISTRY__CREATE_ON_PUSH", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn start_berth(
    a: &ScaleoutArgs,
    data: &Path,
    own: Option<tempfile::TempDir>,
    name: &'static str,
    env: &[(String, String)],
) -> anyhow::Result<Server> {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Server::spawn_berth_at(&a.berth, data, own, name, &["--anonymous"], &env)
}

/// One node on PostgreSQL and S3; and, for the pulls by redirect only, a second node on the
/// same database and bucket with `storage.s3.redirect = true`.
fn berth_one(a: &ScaleoutArgs, res: &mut Resources, tag: &str) -> anyhow::Result<Target> {
    let db = res.database(&format!("berth_bench_{tag}_one"))?;
    let bucket = format!("berth-bench-{tag}-one");
    res.bucket(&bucket)?;
    let dir = tempfile::tempdir_in(".")?;
    let mut env = berth_s3_env(a, &db, &bucket);
    let server = start_berth(a, dir.path(), None, "berth-1", &env)?;
    env.push(("BERTH_STORAGE__S3__REDIRECT".into(), "true".into()));
    let redirect = start_berth(a, dir.path(), None, "berth-1-redirect", &env)?;
    Ok(Target {
        name: "Berth 1 node".into(),
        url: server.url.clone(),
        servers: vec![server],
        redirect: Some(redirect),
        proxy: None,
        stored: Stored::S3 { bucket, key: berth_key },
        _dir: Some(dir),
    })
}

const HAPROXY: &str = "global
  tune.bufsize 131072
  tune.maxrewrite 1024
  log stderr format short local0 warning
defaults
  mode http
  log global
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-request 300s
  timeout http-keep-alive 300s
  retries 0
  option http-server-close
frontend fe
  bind 127.0.0.1:{port}
  default_backend nodes
backend nodes
  balance roundrobin
";

/// `a.nodes` nodes on one database, bucket and data directory, behind HAProxy sending each
/// request to the next node (tests/blackbox/tools/cluster.py's configuration).
fn berth_cluster(a: &ScaleoutArgs, res: &mut Resources, tag: &str) -> anyhow::Result<Target> {
    let db = res.database(&format!("berth_bench_{tag}_cluster"))?;
    let bucket = format!("berth-bench-{tag}-cluster");
    res.bucket(&bucket)?;
    let dir = tempfile::tempdir_in(".")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut env = berth_s3_env(a, &db, &bucket);
    env.push(("BERTH_SERVER__PUBLIC_ADDRESS".into(), format!("127.0.0.1:{port}")));
    // A node counts the sessions opened through it until they end there; one completed on
    // another node stays counted until its empty-session expiry (10 min), so with requests
    // spread over the nodes the default of 1,000 open sessions per principal is reached after
    // about 1,500 pushes in ten minutes (429). Raised here so that the run measures speed.
    env.push(("BERTH_UPLOADS__SESSIONS_PER_PRINCIPAL".into(), "1000000".into()));
    env.push(("BERTH_UPLOADS__SESSIONS_PER_ACCOUNT".into(), "1000000".into()));
    // Node 1 first: it makes the identity files the others read.
    let mut servers = Vec::new();
    for _ in 0..a.nodes.max(1) {
        servers.push(start_berth(a, dir.path(), None, "berth-node", &env)?);
    }
    let mut cfg = HAPROXY.replace("{port}", &port.to_string());
    for (i, s) in servers.iter().enumerate() {
        cfg.push_str(&format!("  server n{} {}\n", i + 1, s.url.trim_start_matches("http://")));
    }
    let cfg_path = dir.path().join("haproxy.cfg");
    std::fs::write(&cfg_path, cfg)?;
    let log = dir.path().join("haproxy.log");
    let proxy = Proc(
        Command::new(&a.haproxy)
            .arg("-db")
            .arg("-f")
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {}", a.haproxy.display()))?,
    );
    let mut proxy = Some(proxy);
    for i in 0..=200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        let exited = proxy.as_mut().is_some_and(|p| matches!(p.0.try_wait(), Ok(Some(_))));
        if exited || i == 200 {
            bail!("haproxy did not listen on {port}: {}", std::fs::read_to_string(&log).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(Target {
        name: format!("Berth {} nodes", servers.len()),
        url: format!("http://127.0.0.1:{port}"),
        servers,
        redirect: None,
        proxy,
        stored: Stored::S3 { bucket, key: berth_key },
        _dir: Some(dir),
    })
}

/// Distribution with its S3 driver on the same endpoint. Blob GETs are served through it, not
/// redirected to the bucket (Berth's default too); the blob descriptor cache is in memory, as
/// in Debian's sample configuration. A second instance on the same bucket redirects blob GETs
/// to presigned URLs (distribution's own default), for the pulls by redirect.
async fn distribution(a: &ScaleoutArgs, res: &mut Resources, tag: &str) -> anyhow::Result<Target> {
    let bucket = format!("berth-bench-{tag}-dist");
    res.bucket(&bucket)?;
    let storage = |redirect: bool| {
        format!(
            "storage:
  s3:
    accesskey: {key}
    secretkey: {secret}
    region: {region}
    regionendpoint: {endpoint}
    bucket: {bucket}
    secure: false
    v4auth: true
    chunksize: 10485760
  cache:
    blobdescriptor: inmemory
  redirect:
    disable: {disable}
  delete:
    enabled: true
",
            key = a.s3_key,
            secret = a.s3_secret,
            region = a.s3_region,
            endpoint = a.s3_endpoint,
            disable = !redirect,
        )
    };
    let server = Server::distribution_with(&a.distribution, tempfile::tempdir_in(".")?, &storage(false)).await?;
    let redirect = Server::distribution_with(&a.distribution, tempfile::tempdir_in(".")?, &storage(true)).await?;
    Ok(Target {
        name: "distribution".into(),
        url: server.url.clone(),
        servers: vec![server],
        redirect: Some(redirect),
        proxy: None,
        stored: Stored::S3 { bucket, key: distribution_key },
        _dir: None,
    })
}

/// Berth on its data directory (files and SQLite).
fn embedded(a: &ScaleoutArgs) -> anyhow::Result<Target> {
    let dir = tempfile::tempdir_in(".")?;
    let data = dir.path().to_owned();
    let server = start_berth(
        a,
        &data,
        Some(dir),
        "berth-embedded",
        &[("BERTH_REGISTRY__CREATE_ON_PUSH".into(), "true".into())],
    )?;
    Ok(Target {
        name: "Berth embedded".into(),
        url: server.url.clone(),
        servers: vec![server],
        redirect: None,
        proxy: None,
        stored: Stored::Fs(data),
        _dir: None,
    })
}

/// The measures of each round, in order.
const ROWS: usize = 9;
const PUSH1: usize = 0;
const PUSHN: usize = 1;
const PULL1: usize = 2;
const PULLN: usize = 3;
const PULL1R: usize = 4;
const PULLNR: usize = 5;
const SMALL: usize = 6;
const MPUT: usize = 7;
const MGET: usize = 8;

/// A blob of bytes no server has seen: the base bytes up to `len - 8`, then `tag`.
struct Blob {
    data: Bytes,
    digest: Digest,
}

/// Bytes `..len - 8` of the base, and the hash state over them.
struct Prefix {
    base: Bytes,
    len: usize,
    hashed: Hasher,
}

impl Prefix {
    fn new(base: &Bytes, len: usize) -> Prefix {
        let mut hashed = Hasher::new(Algorithm::Sha256);
        hashed.update(&base[..len - 8]);
        Prefix { base: base.clone(), len, hashed }
    }

    fn blob(&self, tag: u64) -> Blob {
        let mut v = Vec::with_capacity(self.len);
        v.extend_from_slice(&self.base[..self.len - 8]);
        v.extend_from_slice(&tag.to_le_bytes());
        let mut h = self.hashed.clone();
        h.update(&tag.to_le_bytes());
        Blob { data: Bytes::from(v), digest: h.finish() }
    }
}

async fn limited<T>(what: &str, fut: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    match tokio::time::timeout(PHASE_LIMIT, fut).await {
        Ok(r) => r.with_context(|| what.to_owned()),
        Err(_) => bail!("{what}: not done within {} s", PHASE_LIMIT.as_secs()),
    }
}

fn rate_mb(bytes: usize, t: Instant) -> f64 {
    bytes as f64 / 1e6 / t.elapsed().as_secs_f64()
}

/// The big pushes and pulls of one target in one round: push 1 stream, push n streams, pull 1
/// stream, pull n streams, and both pulls again through the target's redirecting twin (NaN
/// without one), in MB/s. The blobs' bytes are dropped from its storage afterwards.
async fn big(
    t: &Target,
    res: &Resources,
    whole: &Prefix,
    part: &Prefix,
    streams: usize,
    tag: u64,
) -> anyhow::Result<[f64; 6]> {
    let c = Arc::new(Client::new(&t.url));
    let repo = "bench/big";
    eprintln!("[{}] push {} MiB", t.name, whole.len >> 20);
    let blob = whole.blob(tag);
    let time = Instant::now();
    c.push_whole(repo, reqwest::Body::from(blob.data.clone()), &blob.digest).await?;
    let push1 = rate_mb(whole.len, time);
    let digest = blob.digest;
    drop(blob.data);

    eprintln!("[{}] push {streams} x {} MiB at once", t.name, part.len >> 20);
    let parts: Vec<Blob> = (0..streams).map(|k| part.blob(tag + 1 + k as u64)).collect();
    let digests: Vec<Digest> = parts.iter().map(|b| b.digest.clone()).collect();
    let time = Instant::now();
    let pushes = parts.into_iter().map(|b| {
        let c = Arc::clone(&c);
        tokio::spawn(async move { c.push_whole(repo, reqwest::Body::from(b.data), &b.digest).await })
    });
    for p in futures_util::future::join_all(pushes).await {
        p??;
    }
    let pushn = rate_mb(part.len * streams, time);

    eprintln!("[{}] pulls (each blob read and checked first)", t.name);
    c.pull(repo, &digest, true).await?;
    for d in &digests {
        c.pull(repo, d, true).await?;
    }
    let time = Instant::now();
    let n = c.pull_raw(repo, &digest).await?;
    let pull1 = rate_mb(usize::try_from(n)?, time);
    let time = Instant::now();
    let pulls = digests.iter().map(|d| {
        let c = Arc::clone(&c);
        let d = d.clone();
        tokio::spawn(async move { c.pull_raw(repo, &d).await })
    });
    let mut total = 0;
    for p in futures_util::future::join_all(pulls).await {
        total += p??;
    }
    let pulln = rate_mb(usize::try_from(total)?, time);

    let (mut pull1r, mut pullnr) = (f64::NAN, f64::NAN);
    if let Some(twin) = &t.redirect {
        eprintln!("[{}] pulls by redirect (the big blob read and checked first)", t.name);
        let c = Arc::new(Client::new(&twin.url));
        c.pull(repo, &digest, true).await?;
        let time = Instant::now();
        let n = c.pull_raw_following(repo, &digest).await?;
        pull1r = rate_mb(usize::try_from(n)?, time);
        let time = Instant::now();
        let pulls = digests.iter().map(|d| {
            let c = Arc::clone(&c);
            let d = d.clone();
            tokio::spawn(async move { c.pull_raw_following(repo, &d).await })
        });
        let mut total = 0;
        for p in futures_util::future::join_all(pulls).await {
            total += p??;
        }
        pullnr = rate_mb(usize::try_from(total)?, time);
    }

    let mut all = digests;
    all.push(digest);
    t.forget(res, &all)?;
    Ok([push1, pushn, pull1, pulln, pull1r, pullnr])
}

/// `n` distinct 4 KiB blobs pushed 16 at a time (POST, then PUT with the body): blobs/s.
async fn small(t: &Target, n: usize, seed: u64) -> anyhow::Result<f64> {
    eprintln!("[{}] {n} small blobs", t.name);
    let c = Arc::new(Client::new(&t.url));
    let blobs: Vec<(Bytes, Digest)> = (0..n)
        .map(|i| {
            let b = random_bytes(4096, seed + i as u64);
            let d = Digest::of(Algorithm::Sha256, &b);
            (b, d)
        })
        .collect();
    let time = Instant::now();
    stream::iter(blobs)
        .map(|(b, d)| {
            let c = Arc::clone(&c);
            async move { c.push_whole("bench/small", reqwest::Body::from(b), &d).await }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(n as f64 / time.elapsed().as_secs_f64())
}

/// `n` distinct manifests PUT 16 at a time under new tags, then `gets` GETs of them by tag, 32
/// at a time: (PUT req/s, GET req/s).
async fn manifests(t: &Target, n: usize, gets: usize, round: usize, seed: u64) -> anyhow::Result<(f64, f64)> {
    eprintln!("[{}] {n} manifest PUTs, {gets} GETs", t.name);
    let c = Arc::new(Client::new(&t.url));
    let repo = "bench/m";
    let config = Bytes::from_static(b"{}");
    let config_digest = Digest::of(Algorithm::Sha256, &config);
    let layer = random_bytes(4096, seed);
    let layer_digest = Digest::of(Algorithm::Sha256, &layer);
    c.push_whole(repo, reqwest::Body::from(config), &config_digest).await?;
    c.push_whole(repo, reqwest::Body::from(layer.clone()), &layer_digest).await?;
    let time = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let c = Arc::clone(&c);
            let body = manifest(&config_digest, &layer_digest, layer.len(), &format!("{round}-{i}"));
            async move { c.put_manifest(repo, &format!("r{round}-t{i}"), body).await }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    let put = n as f64 / time.elapsed().as_secs_f64();
    let accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json";
    let time = Instant::now();
    stream::iter(0..gets)
        .map(|i| {
            let c = Arc::clone(&c);
            async move {
                let r = c
                    .http
                    .get(format!("{}/v2/{repo}/manifests/r{round}-t{}", c.base, i % n.max(1)))
                    .header("accept", accept)
                    .send()
                    .await?;
                if r.status() != 200 {
                    bail!("GET manifest: {}", r.status());
                }
                r.bytes().await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await?;
    Ok((put, gets as f64 / time.elapsed().as_secs_f64()))
}

/// The boto3 ceiling of one round: (managed up, managed down, single up, single down), MB/s.
async fn ceiling(
    res: &Resources,
    bucket: &str,
    file: &Path,
    digest: &Digest,
    round: usize,
) -> anyhow::Result<[f64; 4]> {
    eprintln!("[boto3] upload and download of the same bytes");
    let args = [
        "ceiling".to_owned(),
        "--bucket".into(),
        bucket.to_owned(),
        "--file".into(),
        file.display().to_string(),
        "--sha256".into(),
        digest.hex().to_owned(),
        "--object".into(),
        format!("ceiling/{round}"),
    ];
    let out = tokio::task::block_in_place(|| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        res.s3tool(&args, TOOL_LIMIT)
    })?;
    let v: serde_json::Value = serde_json::from_str(out.trim()).with_context(|| format!("s3tool said {out:?}"))?;
    let get = |k: &str| v[k].as_f64().with_context(|| format!("no {k} in {v}"));
    Ok([get("multipart_up")?, get("multipart_down")?, get("single_up")?, get("single_down")?])
}

fn median(v: &[f64]) -> f64 {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

fn fmt(x: f64) -> String {
    if !x.is_finite() {
        "-".into()
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// Median ratio over the rounds, and its range.
fn ratio(a: &[f64], b: &[f64]) -> (f64, f64, f64) {
    let r: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).filter(|x| x.is_finite()).collect();
    if r.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let lo = r.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = r.iter().copied().fold(0.0, f64::max);
    (median(&r), lo, hi)
}

fn fmt_ratio((m, lo, hi): (f64, f64, f64), rounds: usize) -> String {
    if !m.is_finite() {
        "-".into()
    } else if rounds > 1 {
        format!("{m:.2}x ({lo:.2}-{hi:.2})")
    } else {
        format!("{m:.2}x")
    }
}

pub async fn run(a: &ScaleoutArgs) -> anyhow::Result<()> {
    tokio::select! {
        r = run_inner(a) => r,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        _ = terminated() => bail!("terminated"),
    }
}

async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

async fn run_inner(a: &ScaleoutArgs) -> anyhow::Result<()> {
    let size = a.size_mib << 20;
    let streams = a.streams.max(1);
    if size < streams * 64 {
        bail!("--size-mib is too small for {streams} streams");
    }
    let started = Instant::now();
    let tag = format!(
        "{:x}",
        (u64::from(std::process::id()) << 20)
            ^ (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() & 0xfffff)
    );
    let base = random_bytes(size, 7);
    let whole = Prefix::new(&base, size);
    let part = Prefix::new(&base, size / streams);
    let base_digest = Digest::of(Algorithm::Sha256, &base);
    let work = tempfile::tempdir()?;
    let file = work.path().join("blob");
    std::fs::write(&file, &base)?;

    let mut res = Resources { a: a.clone(), databases: Vec::new(), buckets: Vec::new() };
    let ceiling_bucket = format!("berth-bench-{tag}-boto3");
    res.bucket(&ceiling_bucket)?;
    eprintln!("starting the registries (run {tag})");
    let targets = vec![
        berth_one(a, &mut res, &tag)?,
        berth_cluster(a, &mut res, &tag)?,
        distribution(a, &mut res, &tag).await?,
        embedded(a)?,
    ];
    let nt = targets.len();
    // figures[target][row][round]; the ceiling's [managed up, managed down, single up, single
    // down][round].
    let mut figures = vec![vec![Vec::new(); ROWS]; nt];
    let mut boto: [Vec<f64>; 4] = Default::default();
    for round in 0..a.rounds {
        eprintln!("--- round {} of {}", round + 1, a.rounds);
        // Each round in another order; the ceiling (index nt) takes its turn among them.
        let order: Vec<usize> = (0..=nt).map(|k| (k + round) % (nt + 1)).collect();
        for &i in &order {
            if i == nt {
                let c = ceiling(&res, &ceiling_bucket, &file, &base_digest, round).await?;
                for (v, x) in boto.iter_mut().zip(c) {
                    v.push(x);
                }
                continue;
            }
            let t = &targets[i];
            let tag = (0xb16 << 32) | ((i as u64) << 24) | ((round as u64) << 16);
            let f = limited(&t.name, big(t, &res, &whole, &part, streams, tag)).await?;
            for (row, x) in [PUSH1, PUSHN, PULL1, PULLN, PULL1R, PULLNR].into_iter().zip(f) {
                if x.is_finite() {
                    figures[i][row].push(x);
                }
            }
        }
        for &i in order.iter().filter(|&&i| i < nt) {
            let seed = ((i as u64 + 1) << 40) | ((round as u64) << 32);
            let f = limited(&targets[i].name, small(&targets[i], a.small_blobs, seed)).await?;
            figures[i][SMALL].push(f);
        }
        for &i in order.iter().filter(|&&i| i < nt) {
            let seed = ((i as u64 + 1) << 40) | ((round as u64) << 32) | 0xffff_ffff;
            let (put, get) =
                limited(&targets[i].name, manifests(&targets[i], a.manifests, a.manifest_gets, round, seed)).await?;
            figures[i][MPUT].push(put);
            figures[i][MGET].push(get);
        }
        // The round's figures, in case a later round fails.
        for (t, f) in targets.iter().zip(&figures) {
            let row: Vec<String> = f.iter().map(|v| v.last().map_or("-".into(), |x| fmt(*x))).collect();
            eprintln!("round {}: {}: {}", round + 1, t.name, row.join(" "));
        }
        let b: Vec<String> = boto.iter().map(|v| v.last().map_or("-".into(), |x| fmt(*x))).collect();
        eprintln!("round {}: boto3: {}", round + 1, b.join(" "));
    }
    let rss: Vec<Vec<f64>> = targets.iter().map(Target::peak_rss).collect();
    let proxy_rss = targets[1].proxy.as_ref().map(|p| {
        let s = std::fs::read_to_string(format!("/proc/{}/status", p.0.id())).unwrap_or_default();
        s.lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    });
    let twins: Vec<String> = targets
        .iter()
        .filter_map(|t| {
            let r = t.redirect.as_ref()?;
            Some(format!("{} {:.1} MiB", t.name, r.status_kib("VmHWM:") as f64 / 1024.0))
        })
        .collect();
    let names: Vec<String> = targets.iter().map(|t| t.name.clone()).collect();
    drop(targets);
    drop(res);
    report(a, &figures, &boto, &rss, proxy_rss, &names);
    println!("(peak RSS of the redirecting twins, which served only the pulls by redirect: {})", twins.join(", "));
    println!("(run took {:.0} s)", started.elapsed().as_secs_f64());
    Ok(())
}

const B1: usize = 0;
const B3: usize = 1;
const DIST: usize = 2;
const EMB: usize = 3;

fn report(
    a: &ScaleoutArgs,
    figures: &[Vec<Vec<f64>>],
    boto: &[Vec<f64>; 4],
    rss: &[Vec<f64>],
    proxy_rss: Option<f64>,
    names: &[String],
) {
    let streams = a.streams.max(1);
    let part_mib = a.size_mib / streams;
    let labels: [(String, &str); ROWS] = [
        (format!("push {} MiB, 1 stream", a.size_mib), "MB/s"),
        (format!("push {streams} x {part_mib} MiB at once"), "MB/s"),
        (format!("pull {} MiB, 1 stream", a.size_mib), "MB/s"),
        (format!("pull {streams} x {part_mib} MiB at once"), "MB/s"),
        (format!("pull {} MiB, 1 stream, by redirect", a.size_mib), "MB/s"),
        (format!("pull {streams} x {part_mib} MiB at once, by redirect"), "MB/s"),
        ("4 KiB blob pushes, c16".into(), "blobs/s"),
        ("manifest PUT, c16".into(), "req/s"),
        ("manifest GET by tag, c32".into(), "req/s"),
    ];
    // The ceiling of a big row: boto3's best of its two ways, per round.
    let ceiling_of = |row: usize| -> Option<Vec<f64>> {
        let (managed, single) = match row {
            PUSH1 | PUSHN => (&boto[0], &boto[2]),
            PULL1 | PULLN | PULL1R | PULLNR => (&boto[1], &boto[3]),
            _ => return None,
        };
        Some(managed.iter().zip(single).map(|(m, s)| m.max(*s)).collect())
    };
    let rounds = a.rounds;
    println!("\nScale-out on PostgreSQL and S3: medians of {rounds} rounds\n");
    print!("| metric | unit |");
    for n in names {
        print!(" {n} |");
    }
    println!(" boto3 managed | boto3 one request |");
    println!("|---|---|{}---:|---:|", "---:|".repeat(names.len()));
    for (row, (label, unit)) in labels.iter().enumerate() {
        print!("| {label} | {unit} |");
        for f in figures {
            print!(" {} |", fmt(median(&f[row])));
        }
        let (m, s) = match row {
            PUSH1 | PUSHN => (median(&boto[0]), median(&boto[2])),
            PULL1 | PULLN | PULL1R | PULLNR => (median(&boto[1]), median(&boto[3])),
            _ => (f64::NAN, f64::NAN),
        };
        println!(" {} | {} |", fmt(m), fmt(s));
    }
    print!("| peak RSS | MiB |");
    for (i, r) in rss.iter().enumerate() {
        let max = r.iter().copied().fold(0.0, f64::max);
        if i == B3 {
            let each: Vec<String> = r.iter().map(|x| format!("{x:.0}")).collect();
            print!(" {max:.1} (each node: {}) |", each.join(", "));
        } else {
            print!(" {max:.1} |");
        }
    }
    println!(" - | - |");
    if let Some(p) = proxy_rss {
        println!("(HAProxy's own peak RSS: {p:.1} MiB)");
    }

    println!("\nRatios: median of the rounds' ratios (lowest-highest)\n");
    println!(
        "| metric | 1 node / distribution | cluster / distribution | 1 node / ceiling | cluster / 1 node | 1 node / embedded |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (row, (label, _)) in labels.iter().enumerate() {
        let ceil = ceiling_of(row).map_or_else(|| "-".to_owned(), |c| fmt_ratio(ratio(&figures[B1][row], &c), rounds));
        println!(
            "| {label} | {} | {} | {ceil} | {} | {} |",
            fmt_ratio(ratio(&figures[B1][row], &figures[DIST][row]), rounds),
            fmt_ratio(ratio(&figures[B3][row], &figures[DIST][row]), rounds),
            fmt_ratio(ratio(&figures[B3][row], &figures[B1][row]), rounds),
            fmt_ratio(ratio(&figures[B1][row], &figures[EMB][row]), rounds),
        );
    }
    let peak = |i: usize| rss[i].iter().copied().fold(0.0, f64::max);
    println!(
        "| peak RSS (distribution / Berth) | {:.2}x | {:.2}x (largest node) | - | - | - |",
        peak(DIST) / peak(B1),
        peak(DIST) / peak(B3)
    );

    println!("\nIssue 11's targets, one node (met in how many rounds; on the medians)\n");
    for (row, (label, _)) in labels.iter().enumerate() {
        let b = &figures[B1][row];
        let d = &figures[DIST][row];
        let (want_dist, what) = if row == MGET { (10.0, "10x distribution") } else { (2.0, "2x distribution") };
        let ceil = if row == MGET { None } else { ceiling_of(row) };
        let met_in = |k: usize| {
            let by_dist = b[k] >= want_dist * d[k];
            let by_ceil = ceil.as_ref().is_some_and(|c| b[k] >= 0.9 * c[k]);
            by_dist || by_ceil
        };
        let n = (0..b.len().min(d.len())).filter(|&k| met_in(k)).count();
        let needed = match &ceil {
            Some(c) => (want_dist * median(d)).min(0.9 * median(c)),
            None => want_dist * median(d),
        };
        let rule =
            if ceil.is_some() { format!("{what} or 0.9x the boto3 ceiling, the lower") } else { what.to_owned() };
        println!(
            "- {label}: {rule}: needs {}, got {} -> {} ({n} of {} rounds)",
            fmt(needed),
            fmt(median(b)),
            if median(b) >= needed { "met" } else { "MISSED" },
            b.len()
        );
    }
    let rss_ratio = peak(DIST) / peak(B1);
    println!(
        "- peak RSS: 2x below distribution: {:.1} vs {:.1} MiB ({rss_ratio:.2}x) -> {}",
        peak(B1),
        peak(DIST),
        if rss_ratio >= 2.0 { "met" } else { "MISSED" }
    );
    let (m, lo, hi) = ratio(&figures[B1][MPUT], &figures[EMB][MPUT]);
    println!(
        "- manifest PUT on PostgreSQL >= 0.3x embedded: {m:.2}x ({lo:.2}-{hi:.2}) -> {}",
        if m >= 0.3 { "met" } else { "MISSED" }
    );
    let (m3, lo3, hi3) = ratio(&figures[B3][MPUT], &figures[EMB][MPUT]);
    println!("  (three nodes: {m3:.2}x, {lo3:.2}-{hi3:.2})");
}
