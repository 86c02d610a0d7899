//! The stores the configuration names, opened and checked at start: the embedded pair (a data
//! directory and SQLite) or the scale-out pair (S3-compatible storage and PostgreSQL), or a mix.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use berth_blobstore::BlobStore;
use berth_blobstore_fs::FsBlobStore;
use berth_blobstore_s3::{S3BlobStore, S3Config};
use berth_meta::MetaStore;
use berth_meta_postgres::{PgMeta, PgOptions};
use berth_meta_sqlite::SqliteMeta;
use berth_types::AccountId;

use crate::config::{Config, StorageKind};

/// How long a node trusts identities, policies and repository settings it looked up, when
/// several nodes share the metadata: a change made through one node applies on all within it.
pub const CLUSTER_CACHE_TTL: Duration = Duration::from_millis(500);

/// A blob store error's own words, without the wrapper's ("storage backend failed: ").
fn bare(e: &berth_blobstore::Error) -> String {
    match e {
        berth_blobstore::Error::Backend(inner) | berth_blobstore::Error::Unavailable(inner) => inner.to_string(),
        other => other.to_string(),
    }
}

/// The open stores.
pub struct Backends {
    pub blobs: Arc<dyn BlobStore>,
    pub meta: Arc<dyn MetaStore>,
    /// Whether other nodes may share the metadata (PostgreSQL): node-local caches of what they
    /// may change are then off or short.
    pub shared: bool,
    sqlite: Option<Arc<SqliteMeta>>,
    pg: Option<Arc<PgMeta>>,
}

impl Backends {
    /// Opens and checks the configured stores. Each failure is one line saying what is wrong.
    ///
    /// # Errors
    /// A store that cannot be reached or used.
    pub async fn open(cfg: &Config, account: &AccountId) -> anyhow::Result<Self> {
        let blobs: Arc<dyn BlobStore> = match cfg.storage.kind {
            StorageKind::Fs => Arc::new(FsBlobStore::open(&cfg.storage.path).context("opening blob store")?),
            StorageKind::S3 => {
                let c = &cfg.storage.s3;
                let s3 = S3Config {
                    bucket: c.bucket.clone().unwrap_or_default(),
                    prefix: c.prefix.clone(),
                    endpoint: c.endpoint.clone(),
                    region: c.region.clone(),
                    path_style: c.path_style,
                    access_key_id: c.access_key_id.clone(),
                    secret_access_key: c.secret_access_key.as_ref().map(|s| s.expose().to_owned()),
                    session_token: None,
                };
                Arc::new(S3BlobStore::open(s3).map_err(|e| anyhow::anyhow!("storage.s3: {}", bare(&e)))?)
            }
        };
        // One line saying what is wrong: the bucket missing, the credentials refused, the
        // server out of reach.
        blobs.check().await.map_err(|e| anyhow::anyhow!("storage: {}", bare(&e)))?;
        if let Some(url) = cfg.postgres_url() {
            let opts = PgOptions { max_connections: cfg.metadata.max_connections, ..PgOptions::default() };
            // The error says in one line what is wrong (unreachable, refused, no database,
            // another account's database); it never shows the URL's password.
            let pg = PgMeta::open(url, account, opts).await.map_err(|e| anyhow::anyhow!("metadata.url: {e}"))?;
            let pg = Arc::new(pg);
            return Ok(Backends { blobs, meta: pg.clone(), shared: true, sqlite: None, pg: Some(pg) });
        }
        let sqlite =
            Arc::new(SqliteMeta::open(&cfg.sqlite_path(), account).await.context("opening metadata database")?);
        Ok(Backends { blobs, meta: sqlite.clone(), shared: false, sqlite: Some(sqlite), pg: None })
    }

    /// Closes the metadata store (SQLite checkpoints its log; PostgreSQL's pool is shut).
    pub async fn close(&self) {
        if let Some(s) = &self.sqlite {
            s.close().await;
        }
        if let Some(p) = &self.pg {
            p.close();
        }
    }
}
