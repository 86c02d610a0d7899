//! Parsing of the four manifest formats the registry stores, down to what the registry must know:
//! which blobs and child manifests a manifest references, its subject, and its artifact type.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

pub mod media_types {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
    pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
    pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    pub const OCI_NONDISTRIBUTABLE_PREFIX: &str = "application/vnd.oci.image.layer.nondistributable.";

    /// The manifest media types the registry accepts.
    pub const ALL: [&str; 4] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

    #[must_use]
    pub fn is_index(mt: &str) -> bool {
        mt == OCI_INDEX || mt == DOCKER_LIST
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid JSON: {0}")]
    Json(String),
    #[error("manifest media type {0:?} is not supported")]
    UnsupportedMediaType(String),
    #[error("mediaType {body:?} in the manifest does not match Content-Type {header:?}")]
    MediaTypeMismatch { header: String, body: String },
    #[error("schemaVersion must be 2")]
    SchemaVersion,
    #[error("manifest is missing required field {0}")]
    Missing(&'static str),
    #[error("descriptor has an invalid digest {0:?}")]
    BadDigest(String),
    #[error("descriptor size must not be negative")]
    BadSize,
}

/// A content descriptor as it appears in manifests and in the referrers index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<serde_json::Value>,
}

impl Descriptor {
    fn checked_digest(&self) -> Result<Digest, ManifestError> {
        if self.size < 0 {
            return Err(ManifestError::BadSize);
        }
        Digest::parse(&self.digest).map_err(|_| ManifestError::BadDigest(self.digest.clone()))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

/// What the registry needs to know about a manifest it stores.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedManifest {
    pub media_type: String,
    /// The artifact type a referrers listing shows: `artifactType`, else the config media type
    /// of an image manifest.
    pub artifact_type: Option<String>,
    pub subject: Option<Digest>,
    /// Blobs (config and layers) that must exist in the repository.
    pub blobs: Vec<Digest>,
    /// Manifests an index references, which must exist in the repository.
    pub children: Vec<Digest>,
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

impl ParsedManifest {
    /// Parses `bytes` as the manifest type named by `content_type` (parameters ignored), or, if
    /// the header is absent or generic, by the body's `mediaType` or its shape.
    ///
    /// # Errors
    /// When the body is not a well-formed manifest of a supported type.
    pub fn parse(content_type: Option<&str>, bytes: &[u8]) -> Result<Self, ManifestError> {
        let raw: Raw = serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
        let header = content_type
            .map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
            .filter(|c| !c.is_empty() && c != "application/json" && c != "application/octet-stream");
        let media_type = match (&header, &raw.media_type) {
            (Some(h), Some(b)) if h != b => {
                return Err(ManifestError::MediaTypeMismatch { header: h.clone(), body: b.clone() });
            }
            (Some(h), _) => h.clone(),
            (None, Some(b)) => b.clone(),
            (None, None) if raw.manifests.is_some() => media_types::OCI_INDEX.to_owned(),
            (None, None) => media_types::OCI_MANIFEST.to_owned(),
        };
        if !media_types::ALL.contains(&media_type.as_str()) {
            return Err(ManifestError::UnsupportedMediaType(media_type));
        }
        if raw.schema_version != Some(2) {
            return Err(ManifestError::SchemaVersion);
        }
        let subject = raw.subject.as_ref().map(Descriptor::checked_digest).transpose()?;
        let mut blobs = Vec::new();
        let mut children = Vec::new();
        let artifact_type = if media_types::is_index(&media_type) {
            let manifests = raw.manifests.ok_or(ManifestError::Missing("manifests"))?;
            for m in &manifests {
                children.push(m.checked_digest()?);
            }
            raw.artifact_type
        } else {
            let config = raw.config.ok_or(ManifestError::Missing("config"))?;
            let layers = raw.layers.ok_or(ManifestError::Missing("layers"))?;
            blobs.push(config.checked_digest()?);
            for l in &layers {
                let d = l.checked_digest()?;
                // Foreign / non-distributable layers live elsewhere and are not pushed.
                let foreign = l.media_type == media_types::DOCKER_FOREIGN_LAYER
                    || l.media_type.starts_with(media_types::OCI_NONDISTRIBUTABLE_PREFIX);
                if !foreign {
                    blobs.push(d);
                }
            }
            raw.artifact_type.or(Some(config.media_type))
        };
        blobs.sort();
        blobs.dedup();
        children.sort();
        children.dedup();
        Ok(ParsedManifest { media_type, artifact_type, subject, blobs, children, annotations: raw.annotations })
    }
}

#[cfg(test)]
mod tests {
    use super::media_types::*;
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn image(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,{extra}"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D1}","size":2}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{D2}","size":3}},
                      {{"mediaType":"{DOCKER_FOREIGN_LAYER}","digest":"{D1}","size":3,"urls":["https://x"]}}]}}"#
        )
    }

    #[test]
    fn image_manifest() {
        let m = ParsedManifest::parse(Some(OCI_MANIFEST), image("").as_bytes()).unwrap();
        assert_eq!(m.media_type, OCI_MANIFEST);
        assert_eq!(m.blobs.len(), 2);
        assert_eq!(m.artifact_type.as_deref(), Some("application/vnd.oci.image.config.v1+json"));
        let m = ParsedManifest::parse(None, image(&format!(r#""mediaType":"{DOCKER_MANIFEST}","#)).as_bytes()).unwrap();
        assert_eq!(m.media_type, DOCKER_MANIFEST);
        let with_subject = image(&format!(
            r#""artifactType":"application/x.sig","subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{D2}","size":9}},"#
        ));
        let m = ParsedManifest::parse(Some(OCI_MANIFEST), with_subject.as_bytes()).unwrap();
        assert_eq!(m.subject.unwrap().as_str(), D2);
        assert_eq!(m.artifact_type.as_deref(), Some("application/x.sig"));
    }

    #[test]
    fn index_manifest() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{D1}","size":5,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#
        );
        let m = ParsedManifest::parse(Some(OCI_INDEX), body.as_bytes()).unwrap();
        assert_eq!(m.children.len(), 1);
        assert!(m.blobs.is_empty());
        assert_eq!(ParsedManifest::parse(None, body.as_bytes()).unwrap().media_type, OCI_INDEX);
    }

    #[test]
    fn rejects() {
        let img = image("");
        assert!(matches!(ParsedManifest::parse(Some(OCI_MANIFEST), b"{"), Err(ManifestError::Json(_))));
        assert!(matches!(
            ParsedManifest::parse(Some(DOCKER_SCHEMA1_SIGNED), img.as_bytes()),
            Err(ManifestError::UnsupportedMediaType(_))
        ));
        assert_eq!(
            ParsedManifest::parse(
                Some(OCI_MANIFEST),
                img.replace("\"schemaVersion\":2", "\"schemaVersion\":1").as_bytes()
            ),
            Err(ManifestError::SchemaVersion)
        );
        assert!(matches!(
            ParsedManifest::parse(Some(OCI_INDEX), image(&format!(r#""mediaType":"{OCI_MANIFEST}","#)).as_bytes()),
            Err(ManifestError::MediaTypeMismatch { .. })
        ));
        assert_eq!(
            ParsedManifest::parse(Some(OCI_MANIFEST), br#"{"schemaVersion":2,"layers":[]}"#),
            Err(ManifestError::Missing("config"))
        );
        assert!(matches!(
            ParsedManifest::parse(Some(OCI_MANIFEST), img.replace(D2, "sha256:zz").as_bytes()),
            Err(ManifestError::BadDigest(_))
        ));
    }
}
