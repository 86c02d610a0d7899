//! The vulnerability database: imported by `berth admin`, stored as a blob, published through
//! the metadata store, and opened by every node from its own cache directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_blobstore::file_stream;
use berth_meta::{NewJob, VulnDbGeneration};
use berth_types::{Algorithm, Digest, Hasher, UploadId, now_ms};
use serde::Serialize;

use super::{REMATCH_JOB, Scanning};
use crate::core::{Core, hashing, take};
use crate::{Error, Result};

/// What an import did, as `berth admin vulndb import` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct ImportSummary {
    pub digest: String,
    pub size: u64,
    pub advisories: u64,
    pub affected: u64,
    pub withdrawn_skipped: u64,
    pub duplicates_replaced: u64,
    pub files: u64,
    pub ecosystems: Vec<(String, u64)>,
    pub source_updated_at: Option<String>,
    pub previous: Option<String>,
}

/// What `berth admin vulndb status` prints.
#[derive(Debug, Clone, Serialize)]
pub struct VulnDbStatus {
    pub loaded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imported_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_updated_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advisories: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affected: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ecosystems: Option<Vec<(String, u64)>>,
}

pub(crate) fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map(|t| t.to_string()).unwrap_or_default()
}

fn parse_time(s: &str) -> Option<i64> {
    s.parse::<jiff::Timestamp>().ok().map(|t| t.as_millisecond())
}

impl Scanning {
    /// Imports OSV data from `sources` into a new database, stores it and makes it the one
    /// serving (on every node). A failed import changes nothing: the previous data keeps serving.
    ///
    /// # Errors
    /// `Validation` naming the file and record that are not valid OSV; storage failures.
    pub async fn import_vulndb(&self, sources: Vec<PathBuf>) -> Result<ImportSummary> {
        let dir = self.scan_dir()?;
        let tmp = dir.join(format!("import-{}.tmp", uuid::Uuid::new_v4()));
        let out = tmp.clone();
        let report = tokio::task::spawn_blocking(move || berth_vulndb::import(&sources, &out))
            .await
            .map_err(|e| Error::Internal(e.into()))?;
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(Error::Validation(e.to_string()));
            }
        };
        let stored = self.store_file(&tmp).await;
        let (digest, size) = match stored {
            Ok(v) => v,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let cached = dir.join(file_name(&digest));
        std::fs::rename(&tmp, &cached).map_err(|e| Error::Internal(e.into()))?;
        let summary = serde_json::json!({
            "advisories": report.advisories,
            "affected": report.affected,
            "ecosystems": report.ecosystems,
        });
        let generation = VulnDbGeneration {
            digest: digest.clone(),
            size,
            imported_at: now_ms(),
            source_updated_at: report.source_updated_at.as_deref().and_then(parse_time),
            summary: summary.to_string(),
        };
        let job = NewJob { kind: REMATCH_JOB.into(), key: "all".into(), payload: Vec::new(), delay_ms: 0 };
        let previous = self.meta.publish_vulndb(&generation, &job).await?;
        Ok(ImportSummary {
            digest: digest.to_string(),
            size,
            advisories: report.advisories,
            affected: report.affected,
            withdrawn_skipped: report.withdrawn_skipped,
            duplicates_replaced: report.duplicates_replaced,
            files: report.files,
            ecosystems: report.ecosystems,
            source_updated_at: report.source_updated_at,
            previous: previous.map(|p| p.digest.to_string()),
        })
    }

    /// The database serving now, if any.
    ///
    /// # Errors
    /// Storage failures, or a database file that cannot be read.
    pub async fn vulndb_status(&self) -> Result<VulnDbStatus> {
        let Some((generation, db)) = self.current_db().await? else {
            return Ok(VulnDbStatus {
                loaded: false,
                digest: None,
                size: None,
                imported_at: None,
                source_updated_at: None,
                advisories: None,
                affected: None,
                ecosystems: None,
            });
        };
        let status = tokio::task::spawn_blocking(move || db.status())
            .await
            .map_err(|e| Error::Internal(e.into()))?
            .map_err(|e| Error::Internal(e.into()))?;
        Ok(VulnDbStatus {
            loaded: true,
            digest: Some(generation.digest.to_string()),
            size: Some(generation.size),
            imported_at: Some(rfc3339(generation.imported_at)),
            source_updated_at: status.source_updated_at,
            advisories: Some(status.advisories),
            affected: Some(status.affected),
            ecosystems: Some(status.ecosystems),
        })
    }
}

fn file_name(d: &Digest) -> String {
    format!("{}-{}.sqlite", d.algorithm().as_str(), d.hex())
}

impl Core {
    /// Where this node keeps vulnerability database files.
    pub(crate) fn scan_dir(&self) -> Result<PathBuf> {
        let dir = self.opts.scan_dir.clone().ok_or_else(|| {
            Error::Validation("scanning has no directory for its vulnerability database (scanning.dir)".into())
        })?;
        std::fs::create_dir_all(&dir).map_err(|e| Error::Internal(e.into()))?;
        Ok(dir)
    }

    /// Streams a file into the blob store under its digest.
    async fn store_file(&self, path: &Path) -> Result<(Digest, u64)> {
        let file = std::fs::File::open(path).map_err(|e| Error::Internal(e.into()))?;
        let len = file.metadata().map_err(|e| Error::Internal(e.into()))?.len();
        let id = UploadId::generate();
        let (body, state) = hashing(file_stream(file, 0, len), Hasher::new(Algorithm::Sha256));
        let appended = self.blobs.upload_append(&id, 0, body).await;
        let (hasher, _) = take(state);
        let appended = match appended {
            Ok(a) => a,
            Err(e) => {
                self.discard_bytes(&id).await;
                return Err(e.into());
            }
        };
        let digest = hasher.finish();
        if let Err(e) = self.blobs.upload_commit(&id, &Vec::from_iter(appended.part), &digest).await {
            self.discard_bytes(&id).await;
            return Err(e.into());
        }
        Ok((digest, appended.len))
    }

    /// The published database, opened; fetched from the blob store into the cache directory
    /// the first time this node needs it. Older files in the directory are removed.
    pub(crate) async fn current_db(&self) -> Result<Option<(VulnDbGeneration, Arc<berth_vulndb::VulnDb>)>> {
        let Some(generation) = self.meta.vulndb_generation().await? else { return Ok(None) };
        let mut slot = self.local.scan.db.lock().await;
        if let Some((digest, db)) = slot.as_ref()
            && *digest == generation.digest
        {
            return Ok(Some((generation, Arc::clone(db))));
        }
        let dir = self.scan_dir()?;
        let path = dir.join(file_name(&generation.digest));
        if !path.exists() {
            self.fetch_db(&generation.digest, &path).await?;
        }
        let open_path = path.clone();
        let db = tokio::task::spawn_blocking(move || berth_vulndb::VulnDb::open(&open_path))
            .await
            .map_err(|e| Error::Internal(e.into()))?
            .map_err(|e| Error::Internal(format!("vulnerability database {}: {e}", path.display()).into()))?;
        let db = Arc::new(db);
        *slot = Some((generation.digest.clone(), Arc::clone(&db)));
        drop(slot);
        forget_others(&dir, &path);
        Ok(Some((generation, db)))
    }

    async fn fetch_db(&self, digest: &Digest, path: &Path) -> Result<()> {
        use futures_util::StreamExt;
        use std::io::Write;
        let read = self.blobs.read(digest, None).await?;
        let tmp = path.with_extension(format!("fetch-{}", uuid::Uuid::new_v4()));
        let mut file = std::fs::File::create(&tmp).map_err(|e| Error::Internal(e.into()))?;
        let mut body = read.body.into_stream();
        let mut hasher = Hasher::new(digest.algorithm());
        let result: Result<()> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(Error::Internal)?;
                hasher.update(&chunk);
                file.write_all(&chunk).map_err(|e| Error::Internal(e.into()))?;
            }
            file.sync_all().map_err(|e| Error::Internal(e.into()))?;
            if hasher.finish() != *digest {
                return Err(Error::BlobDamaged(digest.clone()));
            }
            std::fs::rename(&tmp, path).map_err(|e| Error::Internal(e.into()))
        }
        .await;
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

/// Removes cached database files other than `keep` (scans still holding one open keep reading it).
fn forget_others(dir: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        let stale = p != keep && p.extension().is_some_and(|x| x == "sqlite");
        if stale && let Err(err) = std::fs::remove_file(&p) {
            tracing::debug!(path = %p.display(), error = %err, "could not remove an old vulnerability database");
        }
    }
}
