//! `--authz-gets N`: what authorization costs on the hottest read path. Berth runs secured (no
//! `--anonymous`); a read-only user made with `berth admin` pulls one manifest by tag with its
//! registry token at concurrency 32, first with no repository policy, then with a 20-statement
//! one (nineteen statements that do not match, several with conditions, and one Allow last).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use berth_types::{Algorithm, Digest};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};

use crate::{BENCH_KEY, BENCH_SECRET, Client, Server, manifest, random_bytes};

const REPO: &str = "bench/authz";
const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
/// Rounds of (no policy, policy); each figure is the best of its rounds.
const ROUNDS: usize = 5;

/// Signs an ECR API request with SigV4 for any access key (`sign_ecr` is the bootstrap
/// administrator's).
fn sign_as(key: &str, secret: &str, host: &str, target: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    use berth_auth::canonical::{
        canonical_headers, canonical_request, sha256_hex, signature, signing_key, string_to_sign,
    };
    let amz = berth_auth::amz_date(std::time::SystemTime::now());
    let date = &amz[..8];
    let headers = [
        ("content-type", "application/x-amz-json-1.1".to_owned()),
        ("host", host.to_owned()),
        ("x-amz-date", amz.clone()),
        ("x-amz-target", format!("AmazonEC2ContainerRegistry_V20150921.{target}")),
    ];
    let names = ["content-type", "host", "x-amz-date", "x-amz-target"];
    let canonical =
        canonical_request("POST", "/", "", &canonical_headers(&headers, &names), &names.join(";"), &sha256_hex(body));
    let scope = format!("{date}/us-east-1/ecr/aws4_request");
    let sig = signature(&signing_key(secret, date, "us-east-1", "ecr"), &string_to_sign(&amz, &scope, &canonical));
    let mut out: Vec<(&'static str, String)> = headers.into_iter().filter(|(n, _)| *n != "host").collect();
    out.push((
        "authorization",
        format!("AWS4-HMAC-SHA256 Credential={key}/{scope}, SignedHeaders={}, Signature={sig}", names.join(";")),
    ));
    out
}

/// One signed ECR API call; its JSON answer.
pub(crate) async fn ecr(
    http: &reqwest::Client,
    base: &str,
    (key, secret): (&str, &str),
    target: &str,
    body: &serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let body = body.to_string();
    let mut req = http.post(format!("{base}/")).body(body.clone());
    for (k, v) in sign_as(key, secret, base.trim_start_matches("http://"), target, body.as_bytes()) {
        req = req.header(k, v);
    }
    let r = req.send().await?;
    let status = r.status();
    let text = r.text().await?;
    if status != 200 {
        bail!("{target}: {status} {text}");
    }
    Ok(serde_json::from_str(&text)?)
}

/// A /v2 client that sends `Authorization: Basic <token>`. ECR's `authorizationToken` is
/// already base64("AWS:<password>"), the Basic credential itself.
pub(crate) async fn registry_client(base: &str, creds: (&str, &str)) -> anyhow::Result<Client> {
    let plain = reqwest::Client::builder().no_proxy().build()?;
    let out = ecr(&plain, base, creds, "GetAuthorizationToken", &serde_json::json!({})).await?;
    let token = out["authorizationData"][0]["authorizationToken"].as_str().context("no authorizationToken")?;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Basic {token}").parse()?);
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).no_proxy().default_headers(headers).build()?;
    Ok(Client { http, base: base.to_owned() })
}

fn admin(bin: &Path, data: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(bin)
        .args(["admin", "--data"])
        .arg(data)
        .args(args)
        .env("BERTH_ADMIN_ACCESS_KEY_ID", BENCH_KEY)
        .env("BERTH_ADMIN_SECRET_ACCESS_KEY", BENCH_SECRET)
        .output()
        .with_context(|| format!("running {} admin", bin.display()))?;
    if !out.status.success() {
        bail!("berth admin {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// Nineteen statements that do not match the reader's pulls (other principals, conditions that
/// are false, other actions), then the Allow that does.
fn twenty_statements(account: &str) -> String {
    let mut statements: Vec<serde_json::Value> = (0..19)
        .map(|i| match i % 4 {
            0 => serde_json::json!({
                "Sid": format!("OtherAccount{i}"), "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{:012}:root", 900_000_000_000_u64 + i)},
                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}),
            1 => serde_json::json!({
                "Sid": format!("DenyFromNet{i}"), "Effect": "Deny", "Principal": "*", "Action": "ecr:*",
                "Condition": {"IpAddress": {"aws:SourceIp": format!("10.{i}.0.0/16")}}}),
            2 => serde_json::json!({
                "Sid": format!("DenyUser{i}"), "Effect": "Deny", "Principal": "*",
                "Action": ["ecr:BatchGetImage", "ecr:PutImage"],
                "Condition": {"StringEquals": {"aws:PrincipalArn": format!("arn:aws:iam::{account}:user/gone-{i}")}}}),
            _ => serde_json::json!({
                "Sid": format!("CiPush{i}"), "Effect": "Allow", "Principal": "*",
                "Action": ["ecr:PutImage", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload"],
                "Condition": {"StringLike": {"aws:PrincipalArn": format!("arn:aws:iam::{account}:user/ci-*")},
                              "Bool": {"aws:SecureTransport": "true"}}}),
        })
        .collect();
    statements.push(serde_json::json!({
        "Sid": "Readers", "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{account}:user/reader")},
        "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]}));
    serde_json::json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

/// `n` manifest GETs by tag at concurrency 32; requests per second. `want` is the status every
/// answer must have.
async fn gets(c: &Arc<Client>, n: usize, want: u16) -> anyhow::Result<f64> {
    let t = Instant::now();
    stream::iter(0..n)
        .map(|_| {
            let c = Arc::clone(c);
            async move {
                let r =
                    c.http.get(format!("{}/v2/{REPO}/manifests/v1", c.base)).header("accept", ACCEPT).send().await?;
                if r.status() != want {
                    bail!("GET manifest: {} (expected {want}) {}", r.status(), r.text().await.unwrap_or_default());
                }
                r.bytes().await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

/// Runs the authorization benchmark and prints its figures.
pub async fn run(bin: &Path, n: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir_in(".")?;
    let data = dir.path().to_owned();
    admin(bin, &data, &["create-user", "--user", "reader"])?;
    admin(bin, &data, &["attach-policy", "--user", "reader", "--name", "AmazonEC2ContainerRegistryReadOnly"])?;
    let creds = admin(bin, &data, &["create-access-key", "--user", "reader"])?;
    let field = |name: &str| {
        creds
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim_start().strip_prefix('=')).map(str::trim))
            .map(str::to_owned)
            .with_context(|| format!("no {name} in {creds}"))
    };
    let (reader_key, reader_secret) = (field("aws_access_key_id")?, field("aws_secret_access_key")?);
    let account = std::fs::read_to_string(data.join("account-id"))?.trim().to_owned();

    let server = Server::spawn_berth(bin, dir, "berth (secured)", &[], &[])?;
    let base = server.url.clone();
    let admin_creds = (BENCH_KEY, BENCH_SECRET);
    let plain = reqwest::Client::builder().no_proxy().build()?;
    ecr(&plain, &base, admin_creds, "CreateRepository", &serde_json::json!({"repositoryName": REPO})).await?;

    eprintln!("[{}] pushing one small image as the administrator", server.name);
    let pusher = registry_client(&base, admin_creds).await?;
    let config = Bytes::from_static(b"{}");
    let config_digest = Digest::of(Algorithm::Sha256, &config);
    let layer = random_bytes(4096, 77);
    let layer_digest = Digest::of(Algorithm::Sha256, &layer);
    pusher.push_whole(REPO, reqwest::Body::from(config), &config_digest).await?;
    pusher.push_whole(REPO, reqwest::Body::from(layer.clone()), &layer_digest).await?;
    pusher.put_manifest(REPO, "v1", manifest(&config_digest, &layer_digest, layer.len(), "authz")).await?;

    let reader = Arc::new(registry_client(&base, (&reader_key, &reader_secret)).await?);
    let set_policy = |text: String| {
        let (plain, base) = (plain.clone(), base.clone());
        async move {
            let body = serde_json::json!({"repositoryName": REPO, "policyText": text});
            ecr(&plain, &base, admin_creds, "SetRepositoryPolicy", &body).await
        }
    };
    let delete_policy = || {
        let (plain, base) = (plain.clone(), base.clone());
        async move {
            ecr(&plain, &base, admin_creds, "DeleteRepositoryPolicy", &serde_json::json!({"repositoryName": REPO}))
                .await
        }
    };
    // The repository policy is on the path: a Deny in it refuses the reader at once.
    set_policy(
        serde_json::json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": "ecr:BatchGetImage"}]})
        .to_string(),
    )
    .await?;
    gets(&reader, 1, 403).await?;
    delete_policy().await?;
    gets(&reader, n.min(2000), 200).await?; // warm-up

    let policy = twenty_statements(&account);
    let (mut bare, mut with) = (0f64, 0f64);
    for round in 0..ROUNDS {
        eprintln!("[{}] round {}: {n} manifest GETs without, then with, the repository policy", server.name, round + 1);
        bare = bare.max(gets(&reader, n, 200).await?);
        set_policy(policy.clone()).await?;
        with = with.max(gets(&reader, n, 200).await?);
        delete_policy().await?;
    }

    let mut out = format!(
        "\n{:<44} {:>9} {:>12} {:>8} {:>8}\n",
        "authorization, read-only user", "unit", "berth", "ratio", "target"
    );
    let _ = writeln!(
        out,
        "{:<44} {:>9} {bare:>12.1} {:>8} {:>8}",
        "manifest GET c32, no repository policy", "req/s", "-", "-"
    );
    let _ = writeln!(
        out,
        "{:<44} {:>9} {with:>12.1} {:>7.2}x {:>8}",
        "manifest GET c32, 20-statement policy",
        "req/s",
        with / bare,
        ">=0.90x"
    );
    let _ = writeln!(
        out,
        "(registry token of a user with AmazonEC2ContainerRegistryReadOnly; best of {ROUNDS} rounds of {n})"
    );
    print!("{out}");
    Ok(())
}
