//! `berth-bench growth`: how the cost of each operation grows with the data (issue 10).
//!
//! For each size N, a fresh secured Berth (its own data directory, the real binary on
//! 127.0.0.1:0) is filled through the ECR API with N images in one repository (small distinct
//! manifests over one shared config and layer, uploaded once) and N empty repositories. Then
//! it measures point operations (PutImage, DescribeImages and BatchGetImage with 100 ids,
//! manifest GET), listings (`_catalog`, DescribeRepositories), lifecycle previews with the
//! server's memory around them, and the metadata files before and after every image is
//! deleted. With `--baseline-bin`, a second build is filled and measured the same way in the
//! same run, phase by phase, so that both see the same machine.
//!
//! Every loop is bounded and every request goes to loopback.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use berth_types::{Algorithm, Digest};
use bytes::Bytes;

use crate::{BENCH_KEY, BENCH_SECRET, Client, Server, authz, manifest, random_bytes, resolve, timed};

/// The repository that holds the N images.
const REPO: &str = "growth/images";
const ADMIN: (&str, &str) = (BENCH_KEY, BENCH_SECRET);
/// Expires every image but the newest; ECR's smallest `countNumber` is 1.
const EXPIRE_ALL_BUT_ONE: &str = r#"{"rules":[{"rulePriority":1,"description":"expire all but one","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#;
const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json";
/// How long one lifecycle preview may take, start to last page, before the run gives up.
const PREVIEW_DEADLINE: Duration = Duration::from_secs(900);

#[derive(clap::Args, Clone)]
pub struct GrowthArgs {
    /// The berth binary measured.
    #[arg(long, default_value = "target/release/berth")]
    berth: PathBuf,
    /// A second berth binary (for example the previous commit's, see bench/side-by-side.sh),
    /// filled and measured the same way in the same run.
    #[arg(long)]
    baseline_bin: Option<PathBuf>,
    /// Numbers of images (in one repository) and of repositories, one fresh server each.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    sizes: Vec<usize>,
    /// Requests in flight while filling.
    #[arg(long, default_value_t = 64)]
    fill_concurrency: usize,
    /// The last this many images of the fill (at most half of N) are the timed PutImage run;
    /// as many PutImages then tag existing images.
    #[arg(long, default_value_t = 2000)]
    put_images: usize,
    /// Manifest GETs by tag at concurrency 32.
    #[arg(long, default_value_t = 20000)]
    gets: usize,
    /// Sequential DescribeImages and BatchGetImage requests with 100 ids each, the builds taking
    /// turns (the median is reported).
    #[arg(long, default_value_t = 20)]
    batch_rounds: usize,
    /// DescribeRepositories pages read (100 repositories each, the median is reported).
    #[arg(long, default_value_t = 20)]
    describe_pages: usize,
    /// Lifecycle previews run one after the other (RSS is read before the first and after the
    /// last; the median time is reported).
    #[arg(long, default_value_t = 3)]
    previews: usize,
    /// Seconds the servers are left alone after every image was deleted, before the metadata
    /// files are measured.
    #[arg(long, default_value_t = 60)]
    settle_secs: u64,
    /// Extra environment for the measured server, `KEY=VALUE` (repeatable).
    #[arg(long)]
    server_env: Vec<String>,
    /// Extra environment for the baseline server, `KEY=VALUE` (repeatable).
    #[arg(long)]
    baseline_env: Vec<String>,
}

/// Which way a figure is better.
#[derive(Clone, Copy, PartialEq)]
enum Better {
    Higher,
    Lower,
}

/// The rows of the table, in order.
const METRICS: &[(&str, &str, Better)] = &[
    ("fill: N repositories, N images but the timed PutImages", "s", Better::Lower),
    ("ECR PutImage, new manifest, c32", "req/s", Better::Higher),
    ("ECR PutImage, new tag on existing image, c32", "req/s", Better::Higher),
    ("ECR DescribeImages, 100 image ids", "ms", Better::Lower),
    ("ECR BatchGetImage, 100 image ids", "ms", Better::Lower),
    ("/v2 manifest GET by tag c32, p50", "ms", Better::Lower),
    ("/v2 manifest GET by tag c32", "req/s", Better::Higher),
    ("ECR DescribeRepositories, first page (100)", "ms", Better::Lower),
    ("ECR DescribeRepositories, page (100), median", "ms", Better::Lower),
    ("/v2/_catalog, registry token, first page", "ms", Better::Lower),
    ("/v2/_catalog, registry token, full listing", "ms", Better::Lower),
    ("lifecycle preview: start + all pages (100)", "ms", Better::Lower),
    ("server RSS before the previews", "MiB", Better::Lower),
    ("server RSS after the previews", "MiB", Better::Lower),
    ("ECR BatchDeleteImage of all N images (100 a request)", "images/s", Better::Higher),
    ("metadata files, N images", "MiB", Better::Lower),
    ("metadata files, all deleted + settle", "MiB", Better::Lower),
];

/// One filled server and what the bench knows of it.
struct Node {
    server: Server,
    dir: PathBuf,
    plain: reqwest::Client,
    oci: Arc<Client>,
    config: Digest,
    layer: Digest,
    layer_len: usize,
    n: usize,
    figures: Vec<f64>,
}

impl Node {
    /// Image `i`'s manifest, as PutImage sends it.
    fn manifest(&self, i: usize) -> Bytes {
        manifest(&self.config, &self.layer, self.layer_len, &format!("growth-{i}"))
    }

    fn digest(&self, i: usize) -> Digest {
        Digest::of(Algorithm::Sha256, &self.manifest(i))
    }

    async fn ecr(&self, target: &str, body: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
        authz::ecr(&self.plain, &self.server.url, ADMIN, target, body).await
    }

    async fn put_image(&self, i: usize, tag: &str) -> anyhow::Result<()> {
        let body = serde_json::json!({
            "repositoryName": REPO,
            "imageTag": tag,
            "imageManifest": String::from_utf8_lossy(&self.manifest(i)),
            "imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json",
        });
        self.ecr("PutImage", &body).await.map(drop)
    }

    fn rss_mib(&self) -> f64 {
        self.server.status_kib("VmRSS:") as f64 / 1024.0
    }

    /// Bytes of every file of the data directory but blobs and uploads: the metadata.
    fn metadata_mib(&self) -> f64 {
        fn walk(p: &Path) -> u64 {
            let Ok(entries) = std::fs::read_dir(p) else { return 0 };
            let mut total = 0;
            for e in entries.flatten() {
                let Ok(ty) = e.file_type() else { continue };
                let name = e.file_name();
                if ty.is_dir() {
                    if !matches!(name.to_str(), Some("blobs" | "uploads" | "quarantine")) {
                        total += walk(&e.path());
                    }
                } else if ty.is_file() {
                    total += e.metadata().map_or(0, |m| m.len());
                }
            }
            total
        }
        // The top-level files one by one, for the reader of the log (the WAL may dominate).
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            let mut files: Vec<String> = entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| {
                    let len = e.metadata().map_or(0, |m| m.len());
                    format!("{} {:.1} MiB", e.file_name().to_string_lossy(), len as f64 / (1024.0 * 1024.0))
                })
                .collect();
            files.sort();
            eprintln!("[{}] metadata files: {}", self.server.name, files.join(", "));
        }
        walk(&self.dir) as f64 / (1024.0 * 1024.0)
    }
}

fn tag(i: usize) -> String {
    format!("t{i:06}")
}

/// A pseudo-random number from `i` and `seed` (splitmix64).
fn mix(i: usize, seed: u64) -> u64 {
    let mut z = (i as u64).wrapping_add(seed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn env_pairs(list: &[String]) -> anyhow::Result<Vec<(&str, &str)>> {
    list.iter().map(|kv| kv.split_once('=').with_context(|| format!("--server-env {kv}: no '='"))).collect()
}

/// Starts a secured Berth for `n` images and fills it.
async fn fill(bin: &Path, name: &'static str, env: &[(&str, &str)], a: &GrowthArgs, n: usize) -> anyhow::Result<Node> {
    let dir = tempfile::tempdir_in(".")?;
    let path = dir.path().to_owned();
    let server = Server::spawn_berth(bin, dir, name, &[], env)?;
    let plain = reqwest::Client::builder().pool_max_idle_per_host(128).no_proxy().build()?;
    let started = Instant::now();
    authz::ecr(&plain, &server.url, ADMIN, "CreateRepository", &serde_json::json!({"repositoryName": REPO})).await?;
    let oci = Arc::new(authz::registry_client(&server.url, ADMIN).await?);
    let config = Bytes::from_static(br#"{"architecture":"amd64","os":"linux"}"#);
    let config_digest = Digest::of(Algorithm::Sha256, &config);
    let layer = random_bytes(4096, 4242);
    let layer_digest = Digest::of(Algorithm::Sha256, &layer);
    oci.push_whole(REPO, reqwest::Body::from(config), &config_digest).await?;
    oci.push_whole(REPO, reqwest::Body::from(layer.clone()), &layer_digest).await?;
    let node = Node {
        server,
        dir: path,
        plain,
        oci,
        config: config_digest,
        layer: layer_digest,
        layer_len: layer.len(),
        n,
        figures: Vec::new(),
    };
    let untimed = n - put_count(a, n);
    eprintln!("[{name} N={n}] filling: {untimed} images by PutImage, {n} repositories");
    let step = Instant::now();
    timed(untimed, a.fill_concurrency, |i| {
        let node = &node;
        async move { node.put_image(i, &tag(i)).await }
    })
    .await?;
    eprintln!("[{name} N={n}] {untimed} images in {:.1} s", step.elapsed().as_secs_f64());
    let step = Instant::now();
    timed(n, a.fill_concurrency, |i| {
        let node = &node;
        async move {
            let body = serde_json::json!({"repositoryName": format!("growth/r{i:06}")});
            node.ecr("CreateRepository", &body).await.map(drop)
        }
    })
    .await?;
    eprintln!("[{name} N={n}] {n} repositories in {:.1} s", step.elapsed().as_secs_f64());
    let mut node = node;
    node.figures.push(started.elapsed().as_secs_f64());
    Ok(node)
}

/// The timed PutImages: the last `put_count` images of the fill.
fn put_count(a: &GrowthArgs, n: usize) -> usize {
    a.put_images.min(n / 2)
}

/// 100 image ids spread over the repository (fewer when it holds fewer): by tag, by digest,
/// and by both, in turn. `round` moves the start.
fn hundred_ids(node: &Node, round: usize) -> Vec<serde_json::Value> {
    let n = node.n;
    let k = n.min(100);
    let step = n / k.max(1);
    let start = (mix(round, 7) % n as u64) as usize;
    (0..k)
        .map(|j| {
            let i = (start + j * step) % n;
            match j % 3 {
                0 => serde_json::json!({"imageTag": tag(i)}),
                1 => serde_json::json!({"imageDigest": node.digest(i).as_str()}),
                _ => serde_json::json!({"imageTag": tag(i), "imageDigest": node.digest(i).as_str()}),
            }
        })
        .collect()
}

/// A phase measures one node and appends its figures.
async fn phase(node: &mut Node, a: &GrowthArgs, which: usize) -> anyhow::Result<()> {
    let n = node.n;
    let name = node.server.name;
    match which {
        0 => {
            let p = put_count(a, n);
            eprintln!("[{name} N={n}] {p} PutImages of new manifests, then {p} of new tags");
            let node_ref = &*node;
            let fresh = timed(p, 32, |k| async move {
                let i = n - p + k;
                node_ref.put_image(i, &tag(i)).await
            })
            .await?;
            let retag = timed(p, 32, |k| async move {
                let i = (mix(k, 11) % n as u64) as usize;
                node_ref.put_image(i, &format!("x{k:06}")).await
            })
            .await?;
            node.figures.extend([fresh.rate, retag.rate]);
        }
        1 => unreachable!("the 100-id batches run on every build at once: batches_100"),
        2 => {
            eprintln!("[{name} N={n}] {} manifest GETs by tag at c32", a.gets);
            let c = Arc::clone(&node.oci);
            let t = timed(a.gets, 32, |k| {
                let c = Arc::clone(&c);
                async move {
                    let i = (mix(k, 23) % n as u64) as usize;
                    let r = c
                        .http
                        .get(format!("{}/v2/{REPO}/manifests/{}", c.base, tag(i)))
                        .header("accept", ACCEPT)
                        .send()
                        .await?;
                    if r.status() != 200 {
                        bail!("GET manifest: {}", r.status());
                    }
                    r.bytes().await?;
                    Ok(())
                }
            })
            .await?;
            node.figures.extend([t.ms(50.0), t.rate]);
        }
        3 => {
            eprintln!("[{name} N={n}] DescribeRepositories, {} pages", a.describe_pages);
            let (mut ms, mut token) = (Vec::new(), None::<String>);
            for _ in 0..a.describe_pages.max(1) {
                let mut body = serde_json::json!({"maxResults": 100});
                if let Some(t) = &token {
                    body["nextToken"] = serde_json::json!(t);
                }
                let t = Instant::now();
                let v = node.ecr("DescribeRepositories", &body).await?;
                ms.push(t.elapsed().as_secs_f64() * 1e3);
                if v["repositories"].as_array().is_none_or(Vec::is_empty) {
                    bail!("DescribeRepositories: an empty page");
                }
                token = v["nextToken"].as_str().map(str::to_owned);
                if token.is_none() {
                    break;
                }
            }
            let first = ms[0];
            node.figures.extend([first, median(ms)]);
        }
        4 => {
            eprintln!("[{name} N={n}] /v2/_catalog, first page and full listing");
            let c = &node.oci;
            let t = Instant::now();
            let r = c.http.get(format!("{}/v2/_catalog", c.base)).send().await?;
            if r.status() != 200 {
                bail!("_catalog: {}", r.status());
            }
            r.bytes().await?;
            let first = t.elapsed().as_secs_f64() * 1e3;
            let t = Instant::now();
            let (mut url, mut seen) = (Some(format!("{}/v2/_catalog", c.base)), 0);
            // A page of at least one name per request: at most N + 1 pages, and a few spare.
            for _ in 0..n + 10 {
                let Some(u) = url.take() else { break };
                let r = c.http.get(&u).send().await?;
                if r.status() != 200 {
                    bail!("_catalog: {}", r.status());
                }
                url = r
                    .headers()
                    .get("link")
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| l.split_once('<').and_then(|(_, rest)| rest.split_once('>')))
                    .map(|(target, _)| resolve(&c.base, target));
                let v: serde_json::Value = r.json().await?;
                seen += v["repositories"].as_array().map_or(0, Vec::len);
            }
            let full = t.elapsed().as_secs_f64() * 1e3;
            if url.is_some() || seen < n + 1 {
                bail!("_catalog listed {seen} of {} repositories", n + 1);
            }
            node.figures.extend([first, full]);
        }
        5 => {
            eprintln!("[{name} N={n}] {} lifecycle previews of {n} images", a.previews);
            let before = node.rss_mib();
            let mut ms = Vec::new();
            for _ in 0..a.previews.max(1) {
                let t = Instant::now();
                let listed = preview(node).await?;
                ms.push(t.elapsed().as_secs_f64() * 1e3);
                if listed + 1 != n {
                    bail!("the preview expires {listed} images, expected {}", n - 1);
                }
            }
            node.figures.extend([median(ms), before, node.rss_mib()]);
        }
        _ => unreachable!("no phase {which}"),
    }
    Ok(())
}

/// DescribeImages and BatchGetImage with 100 ids: `--batch-rounds` sequential requests each,
/// the builds taking turns request by request (the same ids for each), so that a spell of load
/// on the machine falls on all of them; the median of each build.
async fn batches_100(nodes: &mut [Node], a: &GrowthArgs) -> anyhow::Result<()> {
    let rounds = a.batch_rounds.max(1);
    for (target, field) in [("DescribeImages", "imageDetails"), ("BatchGetImage", "images")] {
        let mut ms: Vec<Vec<f64>> = nodes.iter().map(|_| Vec::new()).collect();
        for round in 0..rounds {
            for (node, ms) in nodes.iter().zip(&mut ms) {
                if round == 0 {
                    eprintln!("[{} N={}] {rounds} {target} with 100 ids", node.server.name, node.n);
                }
                let ids = hundred_ids(node, round);
                let want = ids.len();
                let body = serde_json::json!({"repositoryName": REPO, "imageIds": ids});
                let t = Instant::now();
                let v = node.ecr(target, &body).await?;
                ms.push(t.elapsed().as_secs_f64() * 1e3);
                let got = v[field].as_array().map_or(0, Vec::len);
                let failures = v["failures"].as_array().map_or(0, Vec::len);
                if got != want || failures > 0 {
                    bail!("{target}: {got} of {want} images, {failures} failures");
                }
            }
        }
        for (node, ms) in nodes.iter_mut().zip(ms) {
            node.figures.push(median(ms));
        }
    }
    Ok(())
}

/// Starts a preview that expires all images but one, then reads every page of it; the number
/// of images it lists.
async fn preview(node: &Node) -> anyhow::Result<usize> {
    let started = Instant::now();
    let body = serde_json::json!({"repositoryName": REPO, "lifecyclePolicyText": EXPIRE_ALL_BUT_ONE});
    node.ecr("StartLifecyclePolicyPreview", &body).await?;
    let (mut listed, mut token) = (0, None::<String>);
    while started.elapsed() < PREVIEW_DEADLINE {
        let mut body = serde_json::json!({"repositoryName": REPO, "maxResults": 100});
        if let Some(t) = &token {
            body["nextToken"] = serde_json::json!(t);
        }
        let v = node.ecr("GetLifecyclePolicyPreview", &body).await?;
        if v["status"] == "IN_PROGRESS" {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        if v["status"] != "COMPLETE" {
            bail!("GetLifecyclePolicyPreview: status {}", v["status"]);
        }
        listed += v["previewResults"].as_array().map_or(0, Vec::len);
        token = v["nextToken"].as_str().map(str::to_owned);
        if token.is_none() {
            return Ok(listed);
        }
    }
    bail!("the preview took longer than {PREVIEW_DEADLINE:?}")
}

/// Deletes every image with BatchDeleteImage (100 digests a request, 8 at a time); images per
/// second.
async fn delete_all(node: &Node) -> anyhow::Result<f64> {
    let n = node.n;
    let t = timed(n.div_ceil(100), 8, |r| async move {
        let ids: Vec<_> = (r * 100..((r + 1) * 100).min(n))
            .map(|i| serde_json::json!({"imageDigest": node.digest(i).as_str()}))
            .collect();
        let want = ids.len();
        let v = node.ecr("BatchDeleteImage", &serde_json::json!({"repositoryName": REPO, "imageIds": ids})).await?;
        let deleted = v["imageIds"].as_array().map_or(0, Vec::len);
        if deleted != want {
            bail!("BatchDeleteImage deleted {deleted} of {want}: {}", v["failures"]);
        }
        Ok(())
    })
    .await?;
    Ok(n as f64 * t.rate / n.div_ceil(100) as f64)
}

/// A build measured: its binary, its name in the tables, its extra environment.
type Build<'a> = (PathBuf, &'static str, Vec<(&'a str, &'a str)>);

/// One size: fill every build, measure phase by phase alternating builds, delete everything
/// on all, wait once, measure the metadata files.
async fn one_size(builds: &[Build<'_>], a: &GrowthArgs, n: usize) -> anyhow::Result<Vec<Vec<f64>>> {
    let mut nodes = Vec::new();
    for (bin, name, env) in builds {
        nodes.push(fill(bin, name, env, a, n).await?);
    }
    for which in 0..6 {
        if which == 1 {
            batches_100(&mut nodes, a).await?;
            continue;
        }
        for node in &mut nodes {
            phase(node, a, which).await?;
        }
    }
    for node in &mut nodes {
        let full = node.metadata_mib();
        eprintln!("[{} N={n}] deleting all {n} images", node.server.name);
        let rate = delete_all(node).await?;
        node.figures.extend([rate, full]);
    }
    eprintln!("[N={n}] leaving the servers alone for {} s", a.settle_secs);
    tokio::time::sleep(Duration::from_secs(a.settle_secs)).await;
    for node in &mut nodes {
        let after = node.metadata_mib();
        node.figures.push(after);
    }
    Ok(nodes.into_iter().map(|node| node.figures).collect())
}

fn size_label(n: usize) -> String {
    if n >= 1000 && n.is_multiple_of(1000) { format!("{}k", n / 1000) } else { n.to_string() }
}

fn fmt(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The growth table of one build: rows are metrics, columns sizes, then largest / smallest.
fn growth_table(title: &str, sizes: &[usize], figures: &[Vec<f64>]) -> String {
    let mut out = format!("\n{title}\n\n| metric | unit |");
    for n in sizes {
        let _ = write!(out, " {} |", size_label(*n));
    }
    let last = size_label(*sizes.last().unwrap_or(&0));
    let first = size_label(*sizes.first().unwrap_or(&0));
    let _ = writeln!(out, " {last} / {first} |");
    let _ = writeln!(out, "|---|---|{}---:|", "---:|".repeat(sizes.len()));
    for (m, (name, unit, _)) in METRICS.iter().enumerate() {
        let _ = write!(out, "| {name} | {unit} |");
        for f in figures {
            let _ = write!(out, " {} |", fmt(f[m]));
        }
        let ratio = figures.last().map_or(0.0, |f| f[m]) / figures.first().map_or(1.0, |f| f[m]);
        let _ = writeln!(out, " {ratio:.2}x |");
    }
    out
}

/// Before and after side by side: for each size, both figures and the gain (above 1: the
/// measured build does better).
fn compare_table(sizes: &[usize], after: &[Vec<f64>], before: &[Vec<f64>]) -> String {
    let mut out =
        String::from("\nside by side (gain: above 1.00x, berth does better than the baseline)\n\n| metric | unit |");
    for n in sizes {
        let l = size_label(*n);
        let _ = write!(out, " {l} baseline | {l} berth | {l} gain |");
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "|---|---|{}", "---:|---:|---:|".repeat(sizes.len()));
    for (m, (name, unit, better)) in METRICS.iter().enumerate() {
        let _ = write!(out, "| {name} | {unit} |");
        for (a, b) in after.iter().zip(before) {
            let gain = match better {
                Better::Higher => format!("{:.2}x", a[m] / b[m]),
                Better::Lower => format!("{:.2}x", b[m] / a[m]),
            };
            let _ = write!(out, " {} | {} | {gain} |", fmt(b[m]), fmt(a[m]));
        }
        let _ = writeln!(out);
    }
    out
}

/// Runs the growth benchmark and prints its tables.
pub async fn run(a: &GrowthArgs) -> anyhow::Result<()> {
    if a.sizes.is_empty() || a.sizes.iter().any(|n| *n < 2) {
        bail!("--sizes: each size must be at least 2");
    }
    let mut builds = vec![(a.berth.clone(), "berth", env_pairs(&a.server_env)?)];
    if let Some(old) = &a.baseline_bin {
        builds.push((old.clone(), "baseline", env_pairs(&a.baseline_env)?));
    }
    let started = Instant::now();
    let mut per_build: Vec<Vec<Vec<f64>>> = builds.iter().map(|_| Vec::new()).collect();
    for &n in &a.sizes {
        let t = Instant::now();
        for (b, figures) in one_size(&builds, a, n).await?.into_iter().enumerate() {
            per_build[b].push(figures);
        }
        eprintln!("[N={n}] done in {:.0} s", t.elapsed().as_secs_f64());
    }
    for ((bin, name, _), figures) in builds.iter().zip(&per_build) {
        print!("{}", growth_table(&format!("{name} ({})", bin.display()), &a.sizes, figures));
    }
    if let [after, before] = per_build.as_slice() {
        print!("{}", compare_table(&a.sizes, after, before));
    }
    println!(
        "\n(N images in {REPO} and N repositories per size; fresh secured server per size and build; \
         c32 unless said; {} s settle; whole run {:.0} s)",
        a.settle_secs,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
