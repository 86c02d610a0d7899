//! `berth-bench`: runs Berth and CNCF distribution side by side on loopback, drives both with
//! the same client, and prints each figure with its ratio.
//!
//! Not a test: it asserts nothing about speed. It prints, and a person reads.

mod authz;
mod growth;
mod scaleout;
mod tls;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use berth_types::{Algorithm, Digest, Hasher};
use bytes::Bytes;
use clap::Parser;
use futures_util::{StreamExt, TryStreamExt, stream};

#[derive(Parser, Clone)]
#[command(about = "Benchmark Berth against CNCF distribution on loopback")]
struct Args {
    /// The berth binary.
    #[arg(long, default_value = "target/release/berth")]
    berth: PathBuf,
    /// The CNCF distribution binary (Debian package docker-registry).
    #[arg(long, default_value = "/usr/bin/docker-registry")]
    distribution: PathBuf,
    /// Size of the large blob, MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: usize,
    /// Chunk size of the chunked push, MiB.
    #[arg(long, default_value_t = 16)]
    chunk_mib: usize,
    /// Number of small blobs.
    #[arg(long, default_value_t = 2000)]
    small_blobs: usize,
    /// Number of manifest PUTs.
    #[arg(long, default_value_t = 500)]
    manifests: usize,
    /// Manifest GETs in the throughput run.
    #[arg(long, default_value_t = 20000)]
    manifest_gets: usize,
    /// Tags in the tags-list run.
    #[arg(long, default_value_t = 10000)]
    tags: usize,
    /// Also push and pull one blob of this many GiB through Berth alone, reporting peak RSS.
    #[arg(long)]
    big_gib: Option<u64>,
    /// Skip distribution (Berth figures only).
    #[arg(long)]
    berth_only: bool,
    /// Signed ECR API requests per operation in the control-plane run (0 skips it).
    #[arg(long, default_value_t = 20000)]
    ecr_requests: usize,
    /// Only the authorization run: this many manifest GETs by a read-only user on a secured
    /// Berth, without and with a 20-statement repository policy (0: the default run).
    #[arg(long, default_value_t = 0)]
    authz_gets: usize,
    /// Images pushed and pulled through Berth with garbage collection running continuously,
    /// and again without it, reporting the ratio (0 skips this run).
    #[arg(long, default_value_t = 0)]
    gc_images: usize,
    /// `gc_interval_secs` of the run with garbage collection (0: back to back, 10 ms apart).
    #[arg(long, default_value_t = 0)]
    gc_interval_secs: u64,
    /// Only the chunked-push comparison of two Berth builds: `--berth` against this binary
    /// (for example the previous commit's), alternating pushes of `--size-mib` in
    /// `--chunk-mib` chunks, `--chunked-rounds` each; prints the medians and their ratio.
    #[arg(long)]
    chunked_vs: Option<PathBuf>,
    /// Pushes per build in the chunked-push comparison.
    #[arg(long, default_value_t = 7)]
    chunked_rounds: usize,
    /// Only the TLS run: plain and TLS Berth side by side (pushes and pulls of --size-mib, one
    /// and eight streams, and --manifest-gets manifest GETs).
    #[arg(long)]
    tls: bool,
    /// Requests per build in the control-plane run's 100-id BatchGetImage and its PutImages.
    #[arg(long, default_value_t = 1000)]
    ecr_batch_requests: usize,
    #[command(subcommand)]
    mode: Option<Mode>,
}

#[derive(clap::Subcommand, Clone)]
enum Mode {
    /// How cost grows with the data: fills fresh servers with N images and N repositories for
    /// each size and measures point operations, listings, previews and space (issue 10).
    Growth(growth::GrowthArgs),
    /// Only the ECR control-plane run, on `--berth` and, side by side, on `--baseline-bin`.
    Ecr(EcrArgs),
    /// Scale-out on PostgreSQL and S3 (issue 11): one Berth node and three behind HAProxy on
    /// the given engines, distribution on the same S3 server, embedded Berth, and a plain
    /// boto3 client as the ceiling, side by side in one run.
    Scaleout(scaleout::ScaleoutArgs),
}

#[derive(clap::Args, Clone)]
struct EcrArgs {
    /// The berth binary measured.
    #[arg(long, default_value = "target/release/berth")]
    berth: PathBuf,
    /// A second berth binary (for example the previous commit's) measured in the same run.
    #[arg(long)]
    baseline_bin: Option<PathBuf>,
    /// Images in `bench/m` before the run (pushed with /v2 manifest PUTs).
    #[arg(long, default_value_t = 500)]
    images: usize,
    /// Signed requests per operation.
    #[arg(long, default_value_t = 20000)]
    requests: usize,
    /// Requests per operation for the 100-id BatchGetImage and the PutImages.
    #[arg(long, default_value_t = 1000)]
    batch_requests: usize,
}

/// `berth-bench ecr`: the control plane alone, on one build or two side by side.
async fn ecr_only(a: &EcrArgs) -> anyhow::Result<()> {
    let mut servers = vec![Server::berth_named(&a.berth, "berth")?];
    if let Some(old) = &a.baseline_bin {
        servers.push(Server::berth_named(old, "baseline")?);
    }
    for s in &servers {
        eprintln!("[{}] {} images into bench/m", s.name, a.images);
        let c = Arc::new(Client::new(&s.url));
        let config = Bytes::from_static(b"{}");
        let config_digest = Digest::of(Algorithm::Sha256, &config);
        let layer = random_bytes(4096, 1000);
        let layer_digest = Digest::of(Algorithm::Sha256, &layer);
        c.push_whole("bench/m", reqwest::Body::from(config), &config_digest).await?;
        c.push_whole("bench/m", reqwest::Body::from(layer.clone()), &layer_digest).await?;
        stream::iter(0..a.images)
            .map(|i| {
                let c = Arc::clone(&c);
                let body = manifest(&config_digest, &layer_digest, layer.len(), &i.to_string());
                async move { c.put_manifest("bench/m", &format!("t{i}"), body).await }
            })
            .buffer_unordered(16)
            .try_collect::<Vec<()>>()
            .await?;
    }
    let refs: Vec<&Server> = servers.iter().collect();
    print!("{}", control_plane(&refs, a.requests, a.batch_requests).await?);
    for s in &servers {
        println!("{}: {}", s.name, s.binary.display());
    }
    Ok(())
}

/// Chunked pushes through two Berth builds, alternating so that both see the same machine.
async fn chunked_compare(args: &Args, other: &std::path::Path) -> anyhow::Result<()> {
    let servers = [Server::berth(&args.berth)?, Server::berth(other)?];
    let clients: Vec<Client> = servers.iter().map(|s| Client::new(&s.url)).collect();
    let mut base = random_bytes(args.size_mib << 20, 11).to_vec();
    let mut rates = [Vec::new(), Vec::new()];
    for round in 0..args.chunked_rounds {
        for (i, c) in clients.iter().enumerate() {
            // A new blob each push, so that neither build can skip the work.
            base[round * 2 + i] ^= 0xff;
            let data = Bytes::from(base.clone());
            let digest = Digest::of(Algorithm::Sha256, &data);
            let t = Instant::now();
            c.push_chunked("bench/chunked", &data, args.chunk_mib << 20, &digest).await?;
            rates[i].push(data.len() as f64 / 1e6 / t.elapsed().as_secs_f64());
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (a, b) = (median(&mut rates[0]), median(&mut rates[1]));
    println!(
        "chunked push, {} MiB in {} MiB chunks, median of {}:",
        args.size_mib, args.chunk_mib, args.chunked_rounds
    );
    println!("  {:<48} {a:>8.1} MB/s", args.berth.display());
    println!("  {:<48} {b:>8.1} MB/s", other.display());
    println!("  ratio {:.3}x", a / b);
    Ok(())
}

const BENCH_KEY: &str = "AKIABERTHBENCH000001";
const BENCH_SECRET: &str = "berth-bench-secret";

/// Signs an ECR API request (AWS JSON 1.1) with SigV4 as an SDK would.
fn sign_ecr(host: &str, target: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    use berth_auth::canonical::{
        canonical_headers, canonical_request, sha256_hex, signature, signing_key, string_to_sign,
    };
    let amz = berth_auth::amz_date(std::time::SystemTime::now());
    let date = &amz[..8];
    let target = format!("AmazonEC2ContainerRegistry_V20150921.{target}");
    let headers = [
        ("content-type", "application/x-amz-json-1.1".to_owned()),
        ("host", host.to_owned()),
        ("x-amz-date", amz.clone()),
        ("x-amz-target", target),
    ];
    let names = ["content-type", "host", "x-amz-date", "x-amz-target"];
    let canonical =
        canonical_request("POST", "/", "", &canonical_headers(&headers, &names), &names.join(";"), &sha256_hex(body));
    let scope = format!("{date}/us-east-1/ecr/aws4_request");
    let sig =
        signature(&signing_key(BENCH_SECRET, date, "us-east-1", "ecr"), &string_to_sign(&amz, &scope, &canonical));
    let mut out: Vec<(&'static str, String)> = headers.into_iter().filter(|(n, _)| *n != "host").collect();
    out.push((
        "authorization",
        format!("AWS4-HMAC-SHA256 Credential={BENCH_KEY}/{scope}, SignedHeaders={}, Signature={sig}", names.join(";")),
    ));
    out
}

/// Throughput and latencies of `n` requests run `concurrency` at a time.
pub(crate) struct Timed {
    /// Requests per second over the whole run.
    pub rate: f64,
    /// Each request's latency, sorted.
    pub latencies: Vec<Duration>,
}

impl Timed {
    /// The `p`-th percentile latency (0 to 100), in milliseconds.
    pub fn ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let i = ((p / 100.0) * (self.latencies.len() - 1) as f64).round() as usize;
        self.latencies[i.min(self.latencies.len() - 1)].as_secs_f64() * 1e3
    }
}

impl Timed {
    /// One figure of several runs: the requests of all over the time of all.
    fn merge(parts: Vec<Timed>) -> Timed {
        let (mut n, mut secs, mut latencies) = (0, 0.0, Vec::new());
        for p in parts {
            n += p.latencies.len();
            if p.rate > 0.0 {
                secs += p.latencies.len() as f64 / p.rate;
            }
            latencies.extend(p.latencies);
        }
        latencies.sort();
        Timed { rate: if secs > 0.0 { n as f64 / secs } else { 0.0 }, latencies }
    }
}

/// Parts each operation of a side-by-side control-plane run is cut into.
const SLICES: usize = 4;

/// Runs `request(i)` for `i` in `0..n`, `concurrency` at a time, timing each.
pub(crate) async fn timed<F, Fut>(n: usize, concurrency: usize, request: F) -> anyhow::Result<Timed>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let t = Instant::now();
    let mut latencies: Vec<Duration> = stream::iter(0..n)
        .map(|i| {
            let fut = request(i);
            async move {
                let started = Instant::now();
                fut.await?;
                anyhow::Ok(started.elapsed())
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    let rate = n as f64 / t.elapsed().as_secs_f64();
    latencies.sort();
    Ok(Timed { rate, latencies })
}

/// One signed ECR request by the bench administrator; its JSON answer. With `want_images`, a
/// BatchGetImage answer must hold that many images (at least one when 0) and no failure, so
/// that a build cannot look fast by failing.
async fn ecr_call(c: &Client, target: &str, body: String, want_images: Option<usize>) -> anyhow::Result<()> {
    let host = c.base.trim_start_matches("http://");
    let mut req = c.http.post(format!("{}/", c.base));
    for (k, v) in sign_ecr(host, target, body.as_bytes()) {
        req = req.header(k, v);
    }
    let r = req.body(body).send().await?;
    if r.status() != 200 {
        bail!("{target}: {} {}", r.status(), r.text().await.unwrap_or_default());
    }
    let bytes = r.bytes().await?;
    if let Some(want) = want_images {
        let v: serde_json::Value = serde_json::from_slice(&bytes)?;
        let images = v["images"].as_array().map_or(0, Vec::len);
        let failures = v["failures"].as_array().map_or(0, Vec::len);
        if failures > 0 || images == 0 || (want > 0 && images != want) {
            bail!("{target}: {images} images (expected {want}) and {failures} failures: {v}");
        }
    }
    Ok(())
}

/// One operation of the control-plane run: its request bodies, numbered from 0.
struct EcrOp {
    name: &'static str,
    target: &'static str,
    /// ECR's default quota for the operation, requests per second per account and region.
    quota: f64,
    requests: usize,
    body: Box<dyn Fn(usize) -> String + Send + Sync>,
    want_images: Option<usize>,
}

/// The operations of the control-plane run on `bench/m`, which already holds images tagged
/// t0.. (the manifest runs pushed them): `n` requests each, `batch_n` for the 100-id batches
/// and the PutImages.
async fn ecr_ops(c: &Client, n: usize, batch_n: usize) -> anyhow::Result<Vec<EcrOp>> {
    let plain = reqwest::Client::builder().no_proxy().build()?;
    let listed = authz::ecr(
        &plain,
        &c.base,
        (BENCH_KEY, BENCH_SECRET),
        "ListImages",
        &serde_json::json!({"repositoryName": "bench/m", "maxResults": 1000}),
    )
    .await?;
    let pairs: Vec<(String, String)> = listed["imageIds"]
        .as_array()
        .context("ListImages: no imageIds")?
        .iter()
        .filter_map(|id| Some((id["imageTag"].as_str()?.to_owned(), id["imageDigest"].as_str()?.to_owned())))
        .collect();
    if pairs.is_empty() {
        bail!("bench/m holds no tagged image");
    }
    // 100 ids spread over the repository: by tag, by digest, and by both, in turn (repeated
    // when it holds fewer than 100 images).
    let hundred: Vec<serde_json::Value> = (0..100)
        .map(|k| {
            let (tag, digest) = &pairs[if pairs.len() < 100 { k % pairs.len() } else { k * pairs.len() / 100 }];
            match k % 3 {
                0 => serde_json::json!({"imageTag": tag}),
                1 => serde_json::json!({"imageDigest": digest}),
                _ => serde_json::json!({"imageTag": tag, "imageDigest": digest}),
            }
        })
        .collect();
    let ids_body = serde_json::json!({"repositoryName": "bench/m", "imageIds": hundred}).to_string();
    // The manifests of those images, for the PutImages.
    let got =
        authz::ecr(&plain, &c.base, (BENCH_KEY, BENCH_SECRET), "BatchGetImage", &serde_json::from_str(&ids_body)?)
            .await?;
    let manifests: Arc<Vec<String>> = Arc::new(
        got["images"]
            .as_array()
            .context("BatchGetImage: no images")?
            .iter()
            .filter_map(|im| im["imageManifest"].as_str().map(str::to_owned))
            .collect(),
    );
    if manifests.is_empty() {
        bail!("BatchGetImage returned no manifest");
    }
    let retag = Arc::clone(&manifests);
    let fresh = Arc::clone(&manifests);
    Ok(vec![
        EcrOp {
            name: "DescribeImages (20 images a page)",
            target: "DescribeImages",
            quota: 1000.0,
            requests: n,
            body: Box::new(|_| r#"{"repositoryName":"bench/m","maxResults":20}"#.to_owned()),
            want_images: None,
        },
        EcrOp {
            name: "BatchGetImage (one image)",
            target: "BatchGetImage",
            quota: 2000.0,
            requests: n,
            body: Box::new(|_| r#"{"repositoryName":"bench/m","imageIds":[{"imageTag":"t0"}]}"#.to_owned()),
            want_images: Some(1),
        },
        EcrOp {
            name: "BatchGetImage (100 image ids)",
            target: "BatchGetImage",
            quota: 2000.0,
            requests: batch_n,
            body: Box::new(move |_| ids_body.clone()),
            want_images: Some(0),
        },
        EcrOp {
            name: "PutImage (new tag, existing manifest)",
            target: "PutImage",
            quota: 10.0,
            requests: batch_n,
            body: Box::new(move |i| {
                serde_json::json!({"repositoryName": "bench/m", "imageTag": format!("retag-{i}"),
                    "imageManifest": retag[i % retag.len()]})
                .to_string()
            }),
            want_images: None,
        },
        EcrOp {
            name: "PutImage (new manifest)",
            target: "PutImage",
            quota: 10.0,
            requests: batch_n,
            body: Box::new(move |i| {
                let mut m: serde_json::Value = serde_json::from_str(&fresh[i % fresh.len()]).unwrap_or_default();
                m["annotations"] = serde_json::json!({"note": format!("put-{i}")});
                serde_json::json!({"repositoryName": "bench/m", "imageTag": format!("put-{i}"),
                    "imageManifest": m.to_string()})
                .to_string()
            }),
            want_images: None,
        },
        EcrOp {
            name: "GetAuthorizationToken",
            target: "GetAuthorizationToken",
            quota: 500.0,
            requests: n,
            body: Box::new(|_| "{}".to_owned()),
            want_images: None,
        },
    ])
}

/// The ECR control plane at concurrency 32: requests per second and latencies of each
/// operation on each server (one Berth, or two builds side by side, alternating operation by
/// operation so that both see the same machine), against ECR's default per-account quotas.
async fn control_plane(servers: &[&Server], n: usize, batch_n: usize) -> anyhow::Result<String> {
    use std::fmt::Write as _;
    let clients: Vec<Arc<Client>> = servers.iter().map(|s| Arc::new(Client::new(&s.url))).collect();
    let mut ops = Vec::new();
    for c in &clients {
        ops.push(ecr_ops(c, n, batch_n).await?);
    }
    let mut figures: Vec<Vec<Timed>> = servers.iter().map(|_| Vec::new()).collect();
    // With two builds, each operation runs in SLICES parts, the builds taking turns, so that
    // a spell of load on the machine falls on both.
    let slices = if servers.len() > 1 { SLICES } else { 1 };
    for k in 0..ops[0].len() {
        let mut parts: Vec<Vec<Timed>> = servers.iter().map(|_| Vec::new()).collect();
        for slice in 0..slices {
            for (((server_ops, server), c), part) in ops.iter().zip(servers).zip(&clients).zip(&mut parts) {
                let op = &server_ops[k];
                let (from, to) = (op.requests * slice / slices, op.requests * (slice + 1) / slices);
                if slice == 0 {
                    eprintln!("[{}] {} signed {} requests", server.name, op.requests, op.name);
                }
                let c = Arc::clone(c);
                let t = timed(to - from, 32, |i| {
                    let c = Arc::clone(&c);
                    let body = (op.body)(from + i);
                    async move { ecr_call(&c, op.target, body, op.want_images).await }
                })
                .await?;
                part.push(t);
            }
        }
        for (f, part) in figures.iter_mut().zip(parts) {
            f.push(Timed::merge(part));
        }
    }
    let mut out = String::from("\n");
    if let [one] = servers {
        let _ = writeln!(
            out,
            "{:<40} {:>10} {:>8} {:>8} {:>10} {:>8}",
            "ECR operation, c32", "req/s", "p50 ms", "p99 ms", "quota/s", "ratio"
        );
        for (op, t) in ops[0].iter().zip(&figures[0]) {
            let _ = writeln!(
                out,
                "{:<40} {:>10.0} {:>8.2} {:>8.2} {:>10.0} {:>7.1}x",
                op.name,
                t.rate,
                t.ms(50.0),
                t.ms(99.0),
                op.quota,
                t.rate / op.quota
            );
        }
        let _ = writeln!(
            out,
            "({}; ECR's default quotas per account and region; each request SigV4-signed and verified)",
            one.name
        );
        return Ok(out);
    }
    let _ = write!(out, "| ECR operation, c32 |");
    for s in servers {
        let _ = write!(out, " {0} req/s | {0} p50 ms | {0} p99 ms |", s.name);
    }
    let _ = writeln!(out, " req/s {} / {} |", servers[0].name, servers[1].name);
    let _ = writeln!(out, "|---|{}---:|", "---:|---:|---:|".repeat(servers.len()));
    for (k, op) in ops[0].iter().enumerate() {
        let _ = write!(out, "| {} |", op.name);
        for f in &figures {
            let _ = write!(out, " {:.0} | {:.2} | {:.2} |", f[k].rate, f[k].ms(50.0), f[k].ms(99.0));
        }
        let _ = writeln!(out, " {:.2}x |", figures[0][k].rate / figures[1][k].rate);
    }
    let _ = writeln!(
        out,
        "({} requests per operation, {} for the 100-id batches and the PutImages; each SigV4-signed and verified)",
        n, batch_n
    );
    Ok(out)
}

struct Server {
    name: &'static str,
    url: String,
    child: Child,
    binary: PathBuf,
    /// The data directory, when this server owns it (the nodes of a cluster share one).
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    fn berth(bin: &std::path::Path) -> anyhow::Result<Server> {
        Self::berth_with(bin, &[])
    }

    /// An anonymous Berth that creates repositories on push, as `berth`, reporting as `name`.
    fn berth_named(bin: &std::path::Path, name: &'static str) -> anyhow::Result<Server> {
        let env = [("BERTH_CREATE_ON_PUSH", "true")];
        Self::spawn_berth(bin, tempfile::tempdir_in(".")?, name, &["--anonymous"], &env)
    }

    fn berth_with(bin: &std::path::Path, env: &[(&str, &str)]) -> anyhow::Result<Server> {
        // Distribution creates repositories on push and asks for no credentials; let Berth do
        // the same for the comparison.
        let env: Vec<_> = [("BERTH_CREATE_ON_PUSH", "true")].into_iter().chain(env.iter().copied()).collect();
        Self::spawn_berth(bin, tempfile::tempdir_in(".")?, "berth", &["--anonymous"], &env)
    }

    /// Starts `berth serve` on `dir` with the bench's administrator, extra flags and environment.
    fn spawn_berth(
        bin: &std::path::Path,
        dir: tempfile::TempDir,
        name: &'static str,
        flags: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Server> {
        let data = dir.path().to_owned();
        Self::spawn_berth_at(bin, &data, Some(dir), name, flags, env)
    }

    /// Starts `berth serve` on the data directory `data` (owned by the server when `dir` is
    /// given), as `spawn_berth`.
    fn spawn_berth_at(
        bin: &std::path::Path,
        data: &std::path::Path,
        dir: Option<tempfile::TempDir>,
        name: &'static str,
        flags: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Server> {
        let mut cmd = Command::new(bin);
        // The harness's variables (tests/with-engines.sh) are no settings of a server.
        for (k, _) in std::env::vars_os() {
            if k.to_str().is_some_and(|k| k.starts_with("BERTH_TEST_")) {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(flags)
            .arg("--data")
            .arg(data)
            .env("RUST_LOG", "warn")
            .env("BERTH_ADMIN_ACCESS_KEY_ID", BENCH_KEY)
            .env("BERTH_ADMIN_SECRET_ACCESS_KEY", BENCH_SECRET)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let out = child.stdout.take().context("stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("berth: listening on ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let url = rx.recv_timeout(Duration::from_secs(20)).context("berth did not report its address")?;
        Ok(Server { name, url, child, binary: bin.to_owned(), _dir: dir })
    }

    async fn distribution(bin: &PathBuf) -> anyhow::Result<Server> {
        let dir = tempfile::tempdir_in(".")?;
        let storage = format!(
            "storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n",
            dir.path().join("data").display()
        );
        Self::distribution_with(bin, dir, &storage).await
    }

    /// Starts distribution on loopback with `storage` (the `storage:` section of its
    /// configuration, YAML) and its configuration file in `dir`.
    async fn distribution_with(bin: &PathBuf, dir: tempfile::TempDir, storage: &str) -> anyhow::Result<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let cfg = dir.path().join("config.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n{storage}http:\n  addr: 127.0.0.1:{port}\n"
            ),
        )?;
        // Its log (errors only) goes to a file beside the configuration, shown if it fails.
        let log = dir.path().join("registry.log");
        let child = Command::new(bin)
            .arg("serve")
            .arg(&cfg)
            // A CA bundle in the environment makes its AWS SDK (S3 driver) panic at start
            // ("HTTPClient's transport unsupported type"); loopback needs none.
            .env_remove("AWS_CA_BUNDLE")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let url = format!("http://127.0.0.1:{port}");
        // Dropped on failure, which ends the process.
        let server = Server { name: "distribution", url, child, binary: bin.clone(), _dir: Some(dir) };
        let client = reqwest::Client::builder().no_proxy().build()?;
        for _ in 0..200 {
            if client.get(format!("{}/v2/", server.url)).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let tail = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(10).collect::<Vec<_>>().into_iter().rev().collect();
        bail!("distribution did not start within 10 s:\n{}", tail.join("\n"))
    }

    fn status_kib(&self, field: &str) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        s.lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn random_bytes(len: usize, seed: u64) -> Bytes {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    Bytes::from(v)
}

fn resolve(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_owned()
    } else {
        format!("{base}{location}")
    }
}

fn with_param(url: &str, kv: &str) -> String {
    if url.contains('?') { format!("{url}&{kv}") } else { format!("{url}?{kv}") }
}

/// GET `path` from `host` (`addr:port`) over a raw HTTP/1.1 connection, reading a 200 answer's
/// body into one reusable buffer: its length, or the `Location` of a redirect.
async fn raw_get(host: &str, path: &str) -> anyhow::Result<Result<u64, String>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(host).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes()).await?;
    let mut buf = vec![0u8; 1 << 20];
    let mut head = Vec::new();
    let (len, mut got) = loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            bail!("connection closed in the response head");
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&head[..end]).into_owned();
            let status = text.lines().next().unwrap_or("").to_owned();
            let header = |name: &str| {
                text.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                })
            };
            if ["307", "302", "303"].iter().any(|c| status.split(' ').nth(1) == Some(*c)) {
                return Ok(Err(header("location").context("a redirect without Location")?));
            }
            if !status.to_ascii_lowercase().starts_with("http/1.1 200") {
                bail!("GET {path}: {status}");
            }
            let len: u64 = header("content-length").and_then(|v| v.parse().ok()).context("no Content-Length")?;
            break (len, (head.len() - end - 4) as u64);
        }
    };
    while got < len {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            bail!("connection closed after {got} of {len} bytes");
        }
        got += n as u64;
    }
    Ok(Ok(got))
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(base: &str) -> Self {
        let http = reqwest::Client::builder().pool_max_idle_per_host(64).no_proxy().build().expect("client");
        Client { http, base: base.to_owned() }
    }

    async fn start_upload(&self, repo: &str) -> anyhow::Result<String> {
        let r = self.http.post(format!("{}/v2/{repo}/blobs/uploads/", self.base)).send().await?;
        if r.status() != 202 {
            bail!("POST upload: {}", r.status());
        }
        let loc = r.headers().get("location").context("no Location")?.to_str()?;
        Ok(resolve(&self.base, loc))
    }

    /// POST, then one PUT with the whole body (the spec's monolithic POST-PUT form, which both
    /// registries serve).
    async fn push_whole(&self, repo: &str, body: reqwest::Body, digest: &Digest) -> anyhow::Result<()> {
        let loc = self.start_upload(repo).await?;
        let r = self
            .http
            .put(with_param(&loc, &format!("digest={digest}")))
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
            .await?;
        if r.status() != 201 {
            bail!("PUT blob: {} {}", r.status(), r.text().await.unwrap_or_default());
        }
        Ok(())
    }

    async fn push_chunked(&self, repo: &str, data: &Bytes, chunk: usize, digest: &Digest) -> anyhow::Result<()> {
        let mut loc = self.start_upload(repo).await?;
        let mut at = 0;
        while at < data.len() {
            let end = (at + chunk).min(data.len());
            let r = self
                .http
                .patch(&loc)
                .header("content-type", "application/octet-stream")
                .header("content-range", format!("{at}-{}", end - 1))
                .body(data.slice(at..end))
                .send()
                .await?;
            if r.status() != 202 {
                bail!("PATCH: {}", r.status());
            }
            loc = resolve(&self.base, r.headers().get("location").context("no Location")?.to_str()?);
            at = end;
        }
        let r = self.http.put(with_param(&loc, &format!("digest={digest}"))).send().await?;
        if r.status() != 201 {
            bail!("PUT: {}", r.status());
        }
        Ok(())
    }

    async fn pull(&self, repo: &str, digest: &Digest, verify: bool) -> anyhow::Result<u64> {
        let r = self.http.get(format!("{}/v2/{repo}/blobs/{digest}", self.base)).send().await?;
        if r.status() != 200 {
            bail!("GET blob: {}", r.status());
        }
        let mut n = 0u64;
        let mut h = verify.then(|| Hasher::new(Algorithm::Sha256));
        let mut s = r.bytes_stream();
        while let Some(c) = s.next().await {
            let c = c?;
            n += c.len() as u64;
            if let Some(h) = h.as_mut() {
                h.update(&c);
            }
        }
        if let Some(h) = h
            && &h.finish() != digest
        {
            bail!("pulled bytes do not match {digest}");
        }
        Ok(n)
    }

    /// Pulls a blob over a raw HTTP/1.1 connection into one reusable buffer, so the client
    /// costs as little as possible and the figure reflects the server.
    async fn pull_raw(&self, repo: &str, digest: &Digest) -> anyhow::Result<u64> {
        let host = self.base.trim_start_matches("http://");
        match raw_get(host, &format!("/v2/{repo}/blobs/{digest}")).await? {
            Ok(n) => Ok(n),
            Err(location) => bail!("GET blob: redirected to {location}"),
        }
    }

    /// As `pull_raw`, following one redirect (to a presigned URL of the bucket) as a client does.
    async fn pull_raw_following(&self, repo: &str, digest: &Digest) -> anyhow::Result<u64> {
        let host = self.base.trim_start_matches("http://");
        match raw_get(host, &format!("/v2/{repo}/blobs/{digest}")).await? {
            Ok(n) => Ok(n),
            Err(location) => {
                let url = resolve(&self.base, &location);
                let rest = url.strip_prefix("http://").with_context(|| format!("redirected to {url}"))?;
                let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                match raw_get(host, if path.is_empty() { "/" } else { path }).await? {
                    Ok(n) => Ok(n),
                    Err(again) => bail!("GET blob: redirected twice, to {again}"),
                }
            }
        }
    }

    async fn put_manifest(&self, repo: &str, reference: &str, body: Bytes) -> anyhow::Result<()> {
        let r = self
            .http
            .put(format!("{}/v2/{repo}/manifests/{reference}", self.base))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(body)
            .send()
            .await?;
        if r.status() != 201 {
            bail!("PUT manifest: {} {}", r.status(), r.text().await.unwrap_or_default());
        }
        Ok(())
    }
}

fn manifest(config: &Digest, layer: &Digest, layer_size: usize, note: &str) -> Bytes {
    Bytes::from(
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.as_str(), "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.as_str(), "size": layer_size}],
            "annotations": {"note": note}
        })
        .to_string(),
    )
}

/// Figures of one server, in the order of `METRICS`.
type Figures = Vec<f64>;

const METRICS: &[(&str, &str, bool, f64)] = &[
    // name, unit, higher is better, target ratio (berth / distribution, or the inverse for RSS)
    ("push monolithic", "MB/s", true, 4.0),
    ("push chunked", "MB/s", true, 4.0),
    ("pull 1 stream", "MB/s", true, 1.5),
    ("pull 8 streams", "MB/s", true, 1.5),
    ("small blob push c16", "blobs/s", true, 20.0),
    ("manifest PUT c16", "req/s", true, 20.0),
    ("manifest GET tag c32", "req/s", true, 20.0),
    ("tags list 10k", "lists/s", true, 0.0),
    ("peak RSS", "MiB", false, 2.0),
];

async fn measure(server: &Server, args: &Args, big: &Bytes, big_digest: &Digest) -> anyhow::Result<Figures> {
    let c = Arc::new(Client::new(&server.url));
    let mb = big.len() as f64 / 1e6;
    let mut f = Vec::new();
    eprintln!("[{}] pushes of {} MiB", server.name, big.len() >> 20);

    let t = Instant::now();
    c.push_whole("bench/big", reqwest::Body::from(big.clone()), big_digest).await?;
    f.push(mb / t.elapsed().as_secs_f64());

    // A different blob for the chunked push, so the registry cannot skip the work.
    let mut other = big.to_vec();
    other[0] ^= 0xff;
    let other = Bytes::from(other);
    let other_digest = Digest::of(Algorithm::Sha256, &other);
    let t = Instant::now();
    c.push_chunked("bench/chunked", &other, args.chunk_mib << 20, &other_digest).await?;
    f.push(mb / t.elapsed().as_secs_f64());

    eprintln!("[{}] pulls", server.name);
    // Both registries must serve the exact bytes before their speed means anything.
    c.pull("bench/big", big_digest, true).await?;
    let t = Instant::now();
    let n = c.pull_raw("bench/big", big_digest).await?;
    f.push(n as f64 / 1e6 / t.elapsed().as_secs_f64());
    let t = Instant::now();
    let pulls = (0..8).map(|_| {
        let c = Arc::clone(&c);
        let d = big_digest.clone();
        tokio::spawn(async move { c.pull_raw("bench/big", &d).await })
    });
    let mut total = 0;
    for p in futures_util::future::join_all(pulls).await {
        total += p??;
    }
    f.push(total as f64 / 1e6 / t.elapsed().as_secs_f64());

    eprintln!("[{}] {} small blobs", server.name, args.small_blobs);
    let smalls: Vec<(Bytes, Digest)> = (0..args.small_blobs)
        .map(|i| {
            let b = random_bytes(4096, 1000 + i as u64);
            let d = Digest::of(Algorithm::Sha256, &b);
            (b, d)
        })
        .collect();
    let t = Instant::now();
    stream::iter(smalls.iter().cloned())
        .map(|(b, d)| {
            let c = Arc::clone(&c);
            async move { c.push_whole("bench/small", reqwest::Body::from(b), &d).await }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    f.push(args.small_blobs as f64 / t.elapsed().as_secs_f64());

    eprintln!("[{}] {} manifest PUTs", server.name, args.manifests);
    let config = Bytes::from_static(b"{}");
    let config_digest = Digest::of(Algorithm::Sha256, &config);
    c.push_whole("bench/m", reqwest::Body::from(config), &config_digest).await?;
    let (layer, layer_digest) = &smalls[0];
    c.push_whole("bench/m", reqwest::Body::from(layer.clone()), layer_digest).await?;
    let t = Instant::now();
    stream::iter(0..args.manifests)
        .map(|i| {
            let c = Arc::clone(&c);
            let body = manifest(&config_digest, layer_digest, layer.len(), &i.to_string());
            async move { c.put_manifest("bench/m", &format!("t{i}"), body).await }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    f.push(args.manifests as f64 / t.elapsed().as_secs_f64());

    eprintln!("[{}] {} manifest GETs by tag", server.name, args.manifest_gets);
    let accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json";
    let t = Instant::now();
    stream::iter(0..args.manifest_gets)
        .map(|i| {
            let c = Arc::clone(&c);
            async move {
                let tag = i % args.manifests.max(1);
                let r = c
                    .http
                    .get(format!("{}/v2/bench/m/manifests/t{tag}", c.base))
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
    f.push(args.manifest_gets as f64 / t.elapsed().as_secs_f64());

    eprintln!("[{}] tagging {} tags", server.name, args.tags);
    c.push_whole("bench/tags", reqwest::Body::from(Bytes::from_static(b"{}")), &config_digest).await?;
    c.push_whole("bench/tags", reqwest::Body::from(layer.clone()), layer_digest).await?;
    let body = manifest(&config_digest, layer_digest, layer.len(), "tags");
    stream::iter(0..args.tags)
        .map(|i| {
            let c = Arc::clone(&c);
            let body = body.clone();
            async move { c.put_manifest("bench/tags", &format!("tag-{i:05}"), body).await }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    let lists = 20;
    let t = Instant::now();
    for _ in 0..lists {
        let r = c.http.get(format!("{}/v2/bench/tags/tags/list", c.base)).send().await?;
        let v: serde_json::Value = r.json().await?;
        let n = v["tags"].as_array().map_or(0, Vec::len);
        if n != args.tags {
            bail!("tags list returned {n} tags, expected {}", args.tags);
        }
    }
    f.push(f64::from(lists) / t.elapsed().as_secs_f64());

    f.push(server.status_kib("VmHWM:") as f64 / 1024.0);
    Ok(f)
}

async fn big_blob(server: &Server, gib: u64) -> anyhow::Result<()> {
    const CHUNK: usize = 1 << 20;
    let block = random_bytes(64 * CHUNK, 42);
    let chunks = gib * 1024;
    let make = move |i: u64| {
        let off = (i as usize % 64) * CHUNK;
        let mut v = block.slice(off..off + CHUNK).to_vec();
        v[..8].copy_from_slice(&i.to_le_bytes());
        Bytes::from(v)
    };
    let mut h = Hasher::new(Algorithm::Sha256);
    for i in 0..chunks {
        h.update(&make(i));
    }
    let digest = h.finish();
    let c = Client::new(&server.url);
    let rss_before = server.status_kib("VmHWM:");
    let body = stream::iter((0..chunks).map(move |i| Ok::<_, std::io::Error>(make(i))));
    let t = Instant::now();
    c.push_whole("bench/huge", reqwest::Body::wrap_stream(body), &digest).await?;
    let push = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let n = c.pull("bench/huge", &digest, true).await?;
    let pull = t.elapsed().as_secs_f64();
    let mb = (gib << 30) as f64 / 1e6;
    println!(
        "big blob {gib} GiB through berth: push {:.0} MB/s, pull {:.0} MB/s (digest verified, {n} bytes); peak RSS before {:.1} MiB, after {:.1} MiB",
        mb / push,
        mb / pull,
        rss_before as f64 / 1024.0,
        server.status_kib("VmHWM:") as f64 / 1024.0
    );
    Ok(())
}

/// Push and pull throughput of whole images (a 64 KiB layer of their own, a shared config,
/// a manifest), c16: images pushed per second, images pulled per second. Before the timed
/// part, a quarter as many images are pushed and deleted, so that a collector has work.
async fn image_throughput(server: &Server, n: usize) -> anyhow::Result<(f64, f64)> {
    let c = Arc::new(Client::new(&server.url));
    let config = Bytes::from_static(b"{}");
    let config_digest = Digest::of(Algorithm::Sha256, &config);
    let push = |repo: &'static str, i: usize| {
        let c = Arc::clone(&c);
        let (config, config_digest) = (config.clone(), config_digest.clone());
        async move {
            let layer = random_bytes(64 * 1024, 50_000 + i as u64 + if repo == "bench/churn" { 1 << 32 } else { 0 });
            let layer_digest = Digest::of(Algorithm::Sha256, &layer);
            c.push_whole(repo, reqwest::Body::from(config), &config_digest).await?;
            c.push_whole(repo, reqwest::Body::from(layer.clone()), &layer_digest).await?;
            let body = manifest(&config_digest, &layer_digest, layer.len(), "gc");
            c.put_manifest(repo, &format!("i{i}"), body).await?;
            anyhow::Ok(())
        }
    };
    eprintln!("[{}] {} images pushed and deleted", server.name, n / 4);
    stream::iter(0..n / 4).map(|i| push("bench/churn", i)).buffer_unordered(16).try_collect::<Vec<()>>().await?;
    for i in 0..n / 4 {
        let r = c.http.delete(format!("{}/v2/bench/churn/manifests/i{i}", c.base)).send().await?;
        if r.status() != 202 {
            bail!("DELETE manifest: {}", r.status());
        }
    }
    eprintln!("[{}] {n} images pushed, then pulled", server.name);
    let t = Instant::now();
    stream::iter(0..n).map(|i| push("bench/gc", i)).buffer_unordered(16).try_collect::<Vec<()>>().await?;
    let pushed = n as f64 / t.elapsed().as_secs_f64();
    let accept = "application/vnd.oci.image.manifest.v1+json";
    let t = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let c = Arc::clone(&c);
            async move {
                let r = c
                    .http
                    .get(format!("{}/v2/bench/gc/manifests/i{i}", c.base))
                    .header("accept", accept)
                    .send()
                    .await?;
                if r.status() != 200 {
                    bail!("GET manifest: {}", r.status());
                }
                let m: serde_json::Value = r.json().await?;
                for d in [&m["config"]["digest"], &m["layers"][0]["digest"]] {
                    let d = Digest::parse(d.as_str().unwrap_or_default())?;
                    c.pull("bench/gc", &d, false).await?;
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    Ok((pushed, n as f64 / t.elapsed().as_secs_f64()))
}

/// Image push and pull throughput with garbage collection running continuously (a run every
/// 10 ms, 1 s grace), as a ratio to the same run without it.
async fn gc_overhead(bin: &std::path::Path, n: usize, interval_secs: u64) -> anyhow::Result<String> {
    use std::fmt::Write as _;
    let mut figures = Vec::new();
    let interval = interval_secs.to_string();
    for (name, env) in [
        ("without gc", [("BERTH_GC_INTERVAL_SECS", "1000000"), ("BERTH_GC_GRACE_SECS", "1")]),
        ("with gc", [("BERTH_GC_INTERVAL_SECS", interval.as_str()), ("BERTH_GC_GRACE_SECS", "1")]),
    ] {
        let server = Server::berth_with(bin, &env)?;
        eprintln!("[berth, {name}]");
        figures.push(image_throughput(&server, n).await?);
    }
    let (off, on) = (figures[0], figures[1]);
    let mut out = format!(
        "\n{:<28} {:>12} {:>12} {:>8} {:>8}\n",
        "berth images c16 (64 KiB)", "without gc", "with gc", "ratio", "target"
    );
    let _ =
        writeln!(out, "{:<28} {:>12.1} {:>12.1} {:>7.2}x {:>8}", "push images/s", off.0, on.0, on.0 / off.0, ">=0.9x");
    let _ =
        writeln!(out, "{:<28} {:>12.1} {:>12.1} {:>7.2}x {:>8}", "pull images/s", off.1, on.1, on.1 / off.1, ">=0.9x");
    let every = if interval_secs == 0 {
        "back to back (10 ms apart, throttled to a tenth of a core)".to_owned()
    } else {
        format!("every {interval_secs} s")
    };
    let _ = writeln!(out, "(with gc: collection runs {every}, grace 1 s, garbage from deleted images present)");
    Ok(out)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // reqwest is built with rustls and no provider of its own (the TLS run needs rustls with
    // ring): every client, plain or not, takes the process-wide one installed here.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    match &args.mode {
        Some(Mode::Growth(g)) => return growth::run(g).await,
        Some(Mode::Ecr(e)) => return ecr_only(e).await,
        Some(Mode::Scaleout(s)) => return scaleout::run(s).await,
        None => {}
    }
    if args.authz_gets > 0 {
        return authz::run(&args.berth, args.authz_gets).await;
    }
    if let Some(other) = &args.chunked_vs {
        return chunked_compare(&args, other).await;
    }
    if args.tls {
        return tls::run(&args.berth, args.size_mib, args.manifest_gets).await;
    }
    let big = random_bytes(args.size_mib << 20, 7);
    let big_digest = Digest::of(Algorithm::Sha256, &big);

    let berth = Server::berth(&args.berth)?;
    let b = measure(&berth, &args, &big, &big_digest).await?;
    if let Some(gib) = args.big_gib {
        big_blob(&berth, gib).await?;
    }
    let control = if args.ecr_requests > 0 {
        Some(control_plane(&[&berth], args.ecr_requests, args.ecr_batch_requests).await?)
    } else {
        None
    };
    drop(berth);
    let d = if args.berth_only {
        None
    } else {
        let dist = Server::distribution(&args.distribution).await?;
        Some(measure(&dist, &args, &big, &big_digest).await?)
    };

    println!("\n{:<24} {:>9} {:>12} {:>14} {:>8} {:>8}", "metric", "unit", "berth", "distribution", "ratio", "target");
    for (i, (name, unit, higher, target)) in METRICS.iter().enumerate() {
        let bv = b[i];
        let (dv, ratio) = match &d {
            Some(d) => {
                let r = if *higher { bv / d[i] } else { d[i] / bv };
                (format!("{:.1}", d[i]), format!("{r:.2}x"))
            }
            None => ("-".into(), "-".into()),
        };
        let target = if *target > 0.0 { format!(">={target}x") } else { "-".into() };
        println!("{name:<24} {unit:>9} {bv:>12.1} {dv:>14} {ratio:>8} {target:>8}");
    }
    println!("(ratio: berth over distribution; for peak RSS, distribution over berth)");
    if let Some(lines) = control {
        print!("{lines}");
    }
    if args.gc_images > 0 {
        print!("{}", gc_overhead(&args.berth, args.gc_images, args.gc_interval_secs).await?);
    }
    Ok(())
}
