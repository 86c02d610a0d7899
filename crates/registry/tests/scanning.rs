//! Scanning through the core on the embedded stores: scan on push, findings, the daily limit of
//! basic scans, re-matching after an import without reading layers, and an image deleted with
//! its scan.

mod common;

use std::io::Write as _;
use std::sync::Arc;

use berth_blobstore_fs::FsBlobStore;
use berth_registry::scanning::{Frequency, ScanKind, ScanRule, ScanStatus, ScanningConfiguration};
use berth_registry::{Caller, Error, ImageId, Options, Registry, RepositorySettings};
use berth_types::{Algorithm, Digest, PageRequest, Reference, RepositoryKey, Tag};
use bytes::Bytes;
use futures_util::StreamExt;

use common::key;

struct Env {
    dir: tempfile::TempDir,
    reg: Registry,
}

async fn setup() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Arc::new(FsBlobStore::open(dir.path()).unwrap());
    let meta = common::meta(dir.path()).await;
    let opts = Options { scan_dir: Some(dir.path().join("vulndb")), scan_lease_ms: 500, ..Options::default() };
    let reg = Registry::new(blobs, meta, common::authz(true), opts);
    Env { dir, reg }
}

fn body(data: &[u8]) -> berth_registry::ByteStream {
    futures_util::stream::iter([Ok(Bytes::copy_from_slice(data))]).boxed()
}

/// A tar layer holding `files` (path, content).
fn layer(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, path, content.as_bytes()).unwrap();
    }
    let tar = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

const OS_RELEASE: &str =
    "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n";

fn dpkg_status(packages: &[(&str, &str, &str)]) -> String {
    packages
        .iter()
        .map(|(name, version, source)| {
            format!("Package: {name}\nStatus: install ok installed\nArchitecture: amd64\nSource: {source}\nVersion: {version}\n\n")
        })
        .collect()
}

async fn push(reg: &Registry, repo: &RepositoryKey, tag: &str, layers: &[Vec<u8>]) -> Digest {
    let who = Caller::Anonymous;
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let mut descs = Vec::new();
    for blob in std::iter::once(config.to_vec()).chain(layers.iter().cloned()) {
        let d = Digest::of(Algorithm::Sha256, &blob);
        reg.uploads.monolithic(&who, repo, &d, Some(blob.len() as u64), body(&blob)).await.unwrap();
        descs.push((d, blob.len()));
    }
    let desc =
        |(d, n): &(Digest, usize), mt: &str| serde_json::json!({"mediaType": mt, "digest": d.as_str(), "size": n});
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": desc(&descs[0], "application/vnd.oci.image.config.v1+json"),
        "layers": descs[1..].iter().map(|d| desc(d, "application/vnd.oci.image.layer.v1.tar+gzip")).collect::<Vec<_>>(),
    })
    .to_string();
    let reference = Reference::Tag(Tag::parse(tag).unwrap());
    let ct = Some("application/vnd.oci.image.manifest.v1+json");
    reg.images.put(&who, repo, &reference, ct, body(m.as_bytes())).await.unwrap().digest
}

fn osv(dir: &std::path::Path, name: &str, records: &[serde_json::Value]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec(records).unwrap()).unwrap();
    p
}

fn debian_record(id: &str, cve: &str, source: &str, fixed: Option<&str>, urgency: &str) -> serde_json::Value {
    let mut events = vec![serde_json::json!({"introduced": "0"})];
    if let Some(f) = fixed {
        events.push(serde_json::json!({"fixed": f}));
    }
    serde_json::json!({
        "id": id, "modified": "2026-11-01T00:00:00Z", "upstream": [cve],
        "summary": format!("{cve} in {source}"),
        "affected": [{
            "package": {"ecosystem": "Debian:12", "name": source},
            "ranges": [{"type": "ECOSYSTEM", "events": events}],
            "ecosystem_specific": {"urgency": urgency}
        }]
    })
}

/// Runs queued jobs until none is left.
async fn drain(reg: &Registry) {
    for _ in 0..100 {
        if reg.scanning.run_jobs("test", 8).await.unwrap() == 0 {
            return;
        }
    }
    panic!("jobs kept coming");
}

async fn finding_ids(reg: &Registry, repo: &RepositoryKey, digest: &Digest) -> Vec<(String, String)> {
    let page = PageRequest { limit: Some(1000), after: None };
    let p = reg.scanning.findings(&Caller::Anonymous, repo, &ImageId::Digest(digest.clone()), &page).await.unwrap();
    let mut ids: Vec<_> =
        p.findings.iter().map(|f| (f.finding.vulnerability_id.clone(), f.status.as_str().to_owned())).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_is_scanned_and_its_findings_follow_the_data() {
    let env = setup().await;
    let reg = &env.reg;
    let repo = key("team/app");
    let settings = RepositorySettings { scan_on_push: true, ..RepositorySettings::default() };
    reg.repositories.create(&Caller::Anonymous, &repo, &settings, &[]).await.unwrap();

    // No data yet: the scan says so rather than reporting a clean image.
    let status = dpkg_status(&[("libssl3", "3.0.11-1~deb12u2", "openssl"), ("bash", "5.2.15-2+b2", "bash (5.2.15-2)")]);
    let l = layer(&[("etc/os-release", OS_RELEASE), ("var/lib/dpkg/status", &status)]);
    let digest = push(reg, &repo, "v1", std::slice::from_ref(&l)).await;
    drain(reg).await;
    let s = reg.scanning.summaries(&repo, std::slice::from_ref(&digest)).await.unwrap()[0].clone().unwrap();
    assert_eq!(s.status, ScanStatus::FindingsUnavailable, "{s:?}");

    let data = osv(
        env.dir.path(),
        "v1.json",
        &[
            debian_record("DEBIAN-CVE-2026-0001", "CVE-2026-0001", "openssl", Some("3.0.13-1~deb12u1"), "high"),
            debian_record("DEBIAN-CVE-2026-0002", "CVE-2026-0002", "openssl", Some("3.0.9-1"), "low"),
            debian_record("DEBIAN-CVE-2026-0003", "CVE-2026-0003", "bash", None, "unimportant"),
        ],
    );
    let summary = reg.scanning.import_vulndb(vec![data]).await.unwrap();
    assert_eq!(summary.advisories, 3);
    // A second push of the image (a push scan is never refused) is matched against the data.
    push(reg, &repo, "v1-again", &[l]).await;
    drain(reg).await;
    let stats = reg.scanning.stats();
    assert_eq!(stats.layer_reads, 1, "the layer was read once and its inventory kept: {stats:?}");
    assert_eq!(
        finding_ids(reg, &repo, &digest).await,
        vec![("CVE-2026-0001".into(), "ACTIVE".into()), ("CVE-2026-0003".into(), "ACTIVE".into())]
    );
    let s = reg.scanning.summaries(&repo, std::slice::from_ref(&digest)).await.unwrap()[0].clone().unwrap();
    assert_eq!(s.status, ScanStatus::Complete);
    assert_eq!(s.severity_counts.as_deref(), Some(r#"{"HIGH":1,"INFORMATIONAL":1}"#));

    // A basic scan may be asked for once a day (the push scan counts).
    let err = reg.scanning.start(&Caller::Anonymous, &repo, &ImageId::Digest(digest.clone())).await.unwrap_err();
    assert!(matches!(err, Error::LimitExceeded(_)), "{err:?}");

    // The SBOM is attached as a referrer.
    let refs = reg.images.referrers(&Caller::Anonymous, &repo, &digest, Some("application/vnd.cyclonedx+json")).await;
    assert_eq!(refs.unwrap().len(), 1);

    // Deleting the image deletes its scan.
    reg.images.delete(&Caller::Anonymous, &repo, &Reference::Digest(digest.clone())).await.unwrap();
    let page = PageRequest { limit: None, after: None };
    let err = reg.scanning.findings(&Caller::Anonymous, &repo, &ImageId::Digest(digest), &page).await.unwrap_err();
    assert!(matches!(err, Error::ImageNotFound { .. } | Error::ScanNotFound { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn continuous_scanning_rematches_without_reading_layers() {
    let env = setup().await;
    let reg = &env.reg;
    let repo = key("prod-api");
    reg.repositories.create(&Caller::Anonymous, &repo, &RepositorySettings::default(), &[]).await.unwrap();
    let config = ScanningConfiguration {
        kind: ScanKind::Enhanced,
        rules: vec![ScanRule { frequency: Frequency::ContinuousScan, filters: vec!["prod-*".into()] }],
    };
    reg.scanning.put_configuration(&Caller::Anonymous, config).await.unwrap();
    let v1 = osv(
        env.dir.path(),
        "v1.json",
        &[debian_record("DEBIAN-CVE-2026-0001", "CVE-2026-0001", "openssl", None, "medium")],
    );
    reg.scanning.import_vulndb(vec![v1]).await.unwrap();
    let status = dpkg_status(&[("libssl3", "3.0.11-1~deb12u2", "openssl")]);
    let digest =
        push(reg, &repo, "v1", &[layer(&[("etc/os-release", OS_RELEASE), ("var/lib/dpkg/status", &status)])]).await;
    drain(reg).await;
    assert_eq!(finding_ids(reg, &repo, &digest).await, vec![("CVE-2026-0001".into(), "ACTIVE".into())]);
    let reads = reg.scanning.stats().layer_reads;

    // The new data fixes the first and adds a second: the finding closes, the new one opens.
    let v2 = osv(
        env.dir.path(),
        "v2.json",
        &[
            debian_record("DEBIAN-CVE-2026-0001", "CVE-2026-0001", "openssl", Some("3.0.11-1~deb12u1"), "medium"),
            debian_record("DEBIAN-CVE-2026-0009", "CVE-2026-0009", "openssl", None, "high"),
        ],
    );
    reg.scanning.import_vulndb(vec![v2]).await.unwrap();
    drain(reg).await;
    assert_eq!(
        finding_ids(reg, &repo, &digest).await,
        vec![("CVE-2026-0001".into(), "CLOSED".into()), ("CVE-2026-0009".into(), "ACTIVE".into())]
    );
    let stats = reg.scanning.stats();
    assert_eq!(stats.layer_reads, reads, "a re-match reads no layer: {stats:?}");
    assert_eq!(stats.rematched, 1);
}
