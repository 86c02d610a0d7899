//! The package list of a scanned image as a CycloneDX 1.5 JSON document.
//!
//! CycloneDX rather than SPDX: its components carry a package URL and free properties (the
//! layer and file each package came from) directly, and a container image is a component type
//! of its own, so the document is the inventory with nothing invented; SPDX 2.3 would need a
//! relationship graph and document namespaces to say the same.

use berth_scanner::{ImagePackage, PackageManager};
use berth_types::{Digest, RepositoryKey};
use serde_json::{Value, json};

use super::Scanning;
use super::run::StoredInventory;
use super::vulndb::rfc3339;
use crate::{Error, Result};

/// The media type of the document, also the artifact type of its referrer.
pub const CYCLONEDX_MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";

impl Scanning {
    /// The SBOM of a scanned image (its merged package inventory). For operators (`berth
    /// admin sbom`); the image must have been scanned.
    ///
    /// # Errors
    /// `ScanNotFound` when no scan stored an inventory for the image.
    pub async fn sbom(&self, repo: &RepositoryKey, digest: &Digest) -> Result<Value> {
        let Some(bytes) = self.meta.image_inventory(repo, digest).await? else {
            return Err(Error::ScanNotFound { repository: repo.clone(), digest: digest.clone() });
        };
        let stored: StoredInventory = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Internal(format!("a stored inventory does not decode: {e}").into()))?;
        Ok(document(repo, digest, &stored, berth_types::now_ms()))
    }
}

pub(crate) fn document(repo: &RepositoryKey, digest: &Digest, stored: &StoredInventory, now_ms: i64) -> Value {
    let inv = &stored.inventory;
    let os = inv.os.as_ref();
    let distro = os.map(|o| format!("{}-{}", o.id, o.version_id.clone().unwrap_or_default()));
    let mut components: Vec<Value> = Vec::new();
    if let Some(o) = os {
        components.push(json!({
            "type": "operating-system",
            "bom-ref": format!("os:{}", o.id),
            "name": o.id,
            "version": o.version_id,
            "description": o.pretty_name,
        }));
    }
    for (i, p) in inv.packages.iter().enumerate() {
        let purl = purl(p, os.map(|o| o.id.as_str()), distro.as_deref());
        let mut properties = vec![json!({"name": "berth:package:path", "value": p.package.path})];
        if let Some(layer) = stored.layers.get(p.layer) {
            properties.push(json!({"name": "berth:layer:digest", "value": layer}));
        }
        properties.push(json!({"name": "berth:package:manager", "value": p.package.manager.as_str()}));
        if let Some(s) = &p.package.source_name {
            properties.push(json!({"name": "berth:package:source_name", "value": s}));
        }
        if let Some(s) = &p.package.source_version {
            properties.push(json!({"name": "berth:package:source_version", "value": s}));
        }
        components.push(json!({
            "type": "library",
            "bom-ref": format!("pkg:{i}:{purl}"),
            "name": p.package.name,
            "version": p.package.version,
            "purl": purl,
            "properties": properties,
        }));
    }
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        "version": 1,
        "metadata": {
            "timestamp": rfc3339(now_ms),
            "tools": { "components": [ { "type": "application", "name": "berth", "version": env!("CARGO_PKG_VERSION") } ] },
            "component": {
                "type": "container",
                "bom-ref": digest.to_string(),
                "name": format!("{}/{}", repo.registry, repo.name),
                "version": digest.to_string(),
            },
        },
        "components": components,
    })
}

/// A package URL (purl spec) for a package.
fn purl(p: &ImagePackage, os_id: Option<&str>, distro: Option<&str>) -> String {
    let pk = &p.package;
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~' | b'+') {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    let version = enc(&pk.version);
    let mut q = Vec::new();
    if let Some(a) = &pk.arch {
        q.push(format!("arch={}", enc(a)));
    }
    if let Some(d) = distro {
        q.push(format!("distro={}", enc(d)));
    }
    let qs = if q.is_empty() { String::new() } else { format!("?{}", q.join("&")) };
    match pk.manager {
        PackageManager::Os => {
            let id = os_id.unwrap_or("unknown");
            let ty = if pk.path.contains("apk") {
                "apk"
            } else if pk.path.contains("rpm") {
                "rpm"
            } else {
                "deb"
            };
            format!("pkg:{ty}/{}/{}@{version}{qs}", enc(id), enc(&pk.name))
        }
        PackageManager::Python => format!("pkg:pypi/{}@{version}", enc(&pk.name.to_ascii_lowercase())),
        PackageManager::Npm => match pk.name.split_once('/') {
            Some((scope, name)) => format!("pkg:npm/{}/{}@{version}", enc(scope), enc(name)),
            None => format!("pkg:npm/{}@{version}", enc(&pk.name)),
        },
        PackageManager::GoBinary => {
            let path: Vec<String> = pk.name.split('/').map(enc).collect();
            format!("pkg:golang/{}@{version}", path.join("/"))
        }
        PackageManager::Cargo => format!("pkg:cargo/{}@{version}", enc(&pk.name)),
        PackageManager::Jar => match pk.name.split_once(':') {
            Some((g, a)) => format!("pkg:maven/{}/{}@{version}", enc(g), enc(a)),
            None => format!("pkg:maven/{}@{version}", enc(&pk.name)),
        },
        PackageManager::Gemspec => format!("pkg:gem/{}@{version}", enc(&pk.name)),
    }
}

/// The OCI empty descriptor's content (`application/vnd.oci.empty.v1+json`).
const EMPTY_JSON: &[u8] = b"{}";

impl crate::core::Core {
    /// Attaches the image's SBOM as an OCI artifact whose subject is the image, so
    /// `GET /v2/<name>/referrers/<digest>` finds it. Once per image: an image that already has
    /// one keeps it (its packages do not change).
    pub(crate) async fn attach_sbom(
        &self,
        repo: &RepositoryKey,
        digest: &Digest,
        image_media_type: &str,
        image_size: usize,
        stored: &StoredInventory,
    ) -> Result<()> {
        use berth_meta::{CreateRepo, LinkTarget, PutOutcome};
        use berth_types::Algorithm;
        if !self.meta.referrers(repo, digest, Some(CYCLONEDX_MEDIA_TYPE)).await?.is_empty() {
            return Ok(());
        }
        let now = berth_types::now_ms();
        let doc = serde_json::to_vec(&document(repo, digest, stored, now)).map_err(|e| Error::Internal(e.into()))?;
        let mut blobs = Vec::new();
        for bytes in [EMPTY_JSON.to_vec(), doc] {
            let d = Digest::of(Algorithm::Sha256, &bytes);
            let len = bytes.len() as u64;
            let reserved = self.reserve(&d).await?;
            self.blobs.put_small(&d, bytes::Bytes::from(bytes)).await?;
            self.record_reserved(&LinkTarget::Repository(repo.clone(), CreateRepo::No), &d, len, reserved).await?;
            blobs.push((d, len));
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": CYCLONEDX_MEDIA_TYPE,
            "config": { "mediaType": "application/vnd.oci.empty.v1+json", "digest": blobs[0].0.as_str(), "size": blobs[0].1 },
            "layers": [ { "mediaType": CYCLONEDX_MEDIA_TYPE, "digest": blobs[1].0.as_str(), "size": blobs[1].1 } ],
            "subject": { "mediaType": image_media_type, "digest": digest.as_str(), "size": image_size },
            "annotations": { "org.opencontainers.image.created": rfc3339(now), "dev.berth.sbom.generator": "berth" },
        });
        let payload = serde_json::to_vec(&manifest).map_err(|e| Error::Internal(e.into()))?;
        let manifest_digest = Digest::of(Algorithm::Sha256, &payload);
        let m = crate::images::new_manifest(
            repo,
            manifest_digest,
            Some("application/vnd.oci.image.manifest.v1+json"),
            payload,
            None,
        )
        .map_err(|e| Error::Internal(e.to_string().into()))?;
        match self.meta.put_manifest(&m, CreateRepo::No).await? {
            PutOutcome::Stored => {
                self.local.manifests.invalidate(repo);
                Ok(())
            }
            other => Err(Error::Internal(format!("storing the SBOM of {digest} failed: {other:?}").into())),
        }
    }
}
