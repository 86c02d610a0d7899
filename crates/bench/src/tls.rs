//! `--tls`: what TLS costs. Two Berths on loopback, one plain and one with a self-signed
//! certificate made here with rcgen, driven by the same reqwest client (HTTP/1.1, rustls with
//! ring on both sides) through the same pushes, pulls and manifest GETs; each figure is printed
//! with the ratio TLS over plain.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use berth_types::{Algorithm, Digest};
use bytes::Bytes;
use futures_util::StreamExt;

use crate::{Server, manifest, random_bytes, resolve, with_param};

struct Tls {
    http: reqwest::Client,
    base: String,
}

impl Tls {
    fn client(base: &str, ca_der: Option<&[u8]>) -> anyhow::Result<Tls> {
        let builder = reqwest::Client::builder().pool_max_idle_per_host(64).no_proxy().http1_only();
        let builder = match ca_der {
            None => builder,
            Some(der) => {
                let mut roots = rustls::RootCertStore::empty();
                roots.add(rustls::pki_types::CertificateDer::from(der.to_vec()))?;
                let mut config =
                    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                        .with_safe_default_protocol_versions()?
                        .with_root_certificates(roots)
                        .with_no_client_auth();
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                builder.tls_backend_preconfigured(config)
            }
        };
        Ok(Tls { http: builder.build()?, base: base.to_owned() })
    }

    async fn push(&self, repo: &str, data: Bytes, digest: &Digest) -> anyhow::Result<()> {
        let r = self.http.post(format!("{}/v2/{repo}/blobs/uploads/", self.base)).send().await?;
        if r.status() != 202 {
            bail!("POST upload: {}", r.status());
        }
        let loc = resolve(&self.base, r.headers().get("location").context("no Location")?.to_str()?);
        let r = self.http.put(with_param(&loc, &format!("digest={digest}"))).body(data).send().await?;
        if r.status() != 201 {
            bail!("PUT blob: {}", r.status());
        }
        Ok(())
    }

    async fn pull(&self, repo: &str, digest: &Digest) -> anyhow::Result<u64> {
        let r = self.http.get(format!("{}/v2/{repo}/blobs/{digest}", self.base)).send().await?;
        if r.status() != 200 {
            bail!("GET blob: {}", r.status());
        }
        let mut n = 0u64;
        let mut s = r.bytes_stream();
        while let Some(c) = s.next().await {
            n += c?.len() as u64;
        }
        Ok(n)
    }
}

/// One server's figures: push 1 and 8 streams, pull 1 and 8 streams (MB/s), manifest GETs/s.
async fn figures(
    c: Arc<Tls>,
    name: &str,
    big: &Bytes,
    parts: &[(Bytes, Digest)],
    gets: usize,
) -> anyhow::Result<[f64; 5]> {
    let mb = big.len() as f64 / 1e6;
    let digest = Digest::of(Algorithm::Sha256, big);
    eprintln!("[{name}] push, 1 stream");
    let t = Instant::now();
    c.push("tls/big", big.clone(), &digest).await?;
    let push1 = mb / t.elapsed().as_secs_f64();
    eprintln!("[{name}] push, 8 streams");
    let t = Instant::now();
    let tasks: Vec<_> = parts
        .iter()
        .enumerate()
        .map(|(i, (data, d))| {
            let (c, data, d) = (Arc::clone(&c), data.clone(), d.clone());
            tokio::spawn(async move { c.push(&format!("tls/part{i}"), data, &d).await })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let push8 = mb / t.elapsed().as_secs_f64();
    eprintln!("[{name}] pull, 1 stream");
    let t = Instant::now();
    let n = c.pull("tls/big", &digest).await?;
    let pull1 = n as f64 / 1e6 / t.elapsed().as_secs_f64();
    eprintln!("[{name}] pull, 8 streams");
    let t = Instant::now();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (c, d) = (Arc::clone(&c), digest.clone());
            tokio::spawn(async move { c.pull("tls/big", &d).await })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    let pull8 = total as f64 / 1e6 / t.elapsed().as_secs_f64();

    let config = Bytes::from_static(
        b"{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
    );
    let config_digest = Digest::of(Algorithm::Sha256, &config);
    c.push("tls/big", config, &config_digest).await?;
    let m = manifest(&config_digest, &digest, big.len(), "tls");
    let r = c
        .http
        .put(format!("{}/v2/tls/big/manifests/v1", c.base))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(m)
        .send()
        .await?;
    if r.status() != 201 {
        bail!("PUT manifest: {}", r.status());
    }
    eprintln!("[{name}] {gets} manifest GETs, 8 at a time");
    let t = Instant::now();
    let per = gets / 8;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let c = Arc::clone(&c);
            tokio::spawn(async move {
                for _ in 0..per {
                    let r = c
                        .http
                        .get(format!("{}/v2/tls/big/manifests/v1", c.base))
                        .header("accept", "application/vnd.oci.image.manifest.v1+json")
                        .send()
                        .await?;
                    if r.status() != 200 {
                        bail!("GET manifest: {}", r.status());
                    }
                    r.bytes().await?;
                }
                Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let gets_s = (per * 8) as f64 / t.elapsed().as_secs_f64();
    Ok([push1, push8, pull1, pull8, gets_s])
}

pub async fn run(bin: &std::path::Path, size_mib: usize, gets: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir_in(".")?;
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem())?;
    std::fs::write(&key_path, cert.signing_key.serialize_pem())?;
    let big = random_bytes(size_mib << 20, 11);
    let eighth = big.len() / 8;
    let parts: Vec<(Bytes, Digest)> = (0..8)
        .map(|i| {
            let mut p = big.slice(i * eighth..(i + 1) * eighth).to_vec();
            p[0] ^= 0x5a;
            let p = Bytes::from(p);
            let d = Digest::of(Algorithm::Sha256, &p);
            (p, d)
        })
        .collect();

    let plain = Server::berth(bin)?;
    let p = figures(Arc::new(Tls::client(&plain.url, None)?), "plain", &big, &parts, gets).await?;
    drop(plain);
    let cert_s = cert_path.to_str().context("path")?;
    let key_s = key_path.to_str().context("path")?;
    let secure = Server::spawn_berth(
        bin,
        tempfile::tempdir_in(".")?,
        "berth (TLS)",
        &["--anonymous", "--tls-cert", cert_s, "--tls-key", key_s],
        &[("BERTH_CREATE_ON_PUSH", "true")],
    )?;
    let url = secure.url.replace("127.0.0.1", "localhost");
    let t = figures(Arc::new(Tls::client(&url, Some(cert.cert.der()))?), "tls", &big, &parts, gets).await?;
    drop(secure);

    println!("\nTLS cost, {size_mib} MiB blobs (ratio: TLS over plain)");
    println!("{:<28} {:>9} {:>10} {:>10} {:>8}", "metric", "unit", "plain", "tls", "ratio");
    let names = [
        ("push, 1 stream", "MB/s"),
        ("push, 8 streams", "MB/s"),
        ("pull, 1 stream", "MB/s"),
        ("pull, 8 streams (total)", "MB/s"),
        ("manifest GET, 8 at a time", "req/s"),
    ];
    for (i, (name, unit)) in names.iter().enumerate() {
        println!("{name:<28} {unit:>9} {:>10.1} {:>10.1} {:>7.2}x", p[i], t[i], t[i] / p[i]);
    }
    println!("(plain pulls use sendfile; TLS pulls stream through rustls)");
    Ok(())
}
