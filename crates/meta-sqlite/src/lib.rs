//! SQLite metadata store for the embedded mode.
//!
//! One writer connection (SQLite allows one writer) and a pool of read-only connections, WAL
//! journal, `synchronous = FULL` so that a commit survives power loss. All SQL of this backend
//! lives in this file; `sqlx` never appears in a public signature.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

mod writer;

use async_trait::async_trait;
use berth_meta::{
    BlobIndex, CreateRepo, Error, ImageMeta, ManifestRecord, NewManifest, PutOutcome, Referrer, RepoMeta, Result,
    UploadMeta, UploadSession,
};
use berth_types::{Digest, Page, PageRequest, Reference, RepositoryName, Tag, UploadId, now_ms};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqliteConnection};

/// Most sessions without bytes held in memory at once.
const MAX_FRESH_SESSIONS: usize = 100_000;

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[include_str!("schema.sql")];

pub struct SqliteMeta {
    /// Sessions without bytes, kept in memory until their first append or completion: a crash
    /// only makes their clients start over, and a push skips one database write.
    fresh: std::sync::Mutex<std::collections::HashMap<UploadId, (UploadSession, CreateRepo)>>,
    writer_pool: SqlitePool,
    writer: writer::Writer,
    reader: SqlitePool,
}

fn backend(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::RowNotFound => Error::NotFound,
        sqlx::Error::Database(d) if d.is_unique_violation() => Error::Conflict(d.message().to_owned()),
        _ => Error::Backend(Box::new(e)),
    }
}

fn corrupt(what: &str) -> Error {
    Error::Backend(format!("stored {what} is invalid").into())
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl SqliteMeta {
    /// Opens (creating and migrating if needed) the database file at `path`.
    ///
    /// # Errors
    /// When the file cannot be opened or migrated.
    pub async fn open(path: &Path) -> Result<Self> {
        let base = SqliteConnectOptions::from_str("sqlite:")
            .map_err(backend)?
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(base.clone().create_if_missing(true))
            .await
            .map_err(backend)?;
        migrate(&writer).await?;
        let reader =
            SqlitePoolOptions::new().max_connections(4).connect_with(base.read_only(true)).await.map_err(backend)?;
        Ok(SqliteMeta {
            fresh: Default::default(),
            writer: writer::Writer::start(writer.clone()),
            writer_pool: writer,
            reader,
        })
    }

    fn fresh(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<UploadId, (UploadSession, CreateRepo)>> {
        self.fresh.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub async fn close(&self) {
        self.reader.close().await;
        self.writer_pool.close().await;
    }
}

async fn migrate(pool: &SqlitePool) -> Result<()> {
    let mut tx = pool.begin().await.map_err(backend)?;
    let version: i64 = sqlx::query("PRAGMA user_version").fetch_one(&mut *tx).await.map_err(backend)?.get(0);
    let done = usize::try_from(version).unwrap_or(0);
    if done > MIGRATIONS.len() {
        return Err(Error::Backend("database schema is newer than this berth".into()));
    }
    for sql in &MIGRATIONS[done..] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(*sql)).execute(&mut *tx).await.map_err(backend)?;
    }
    // The statement is built from a constant count only.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("PRAGMA user_version = {}", MIGRATIONS.len())))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    tx.commit().await.map_err(backend)
}

async fn repo_id(conn: &mut SqliteConnection, name: &RepositoryName) -> Result<Option<i64>> {
    sqlx::query("SELECT id FROM repositories WHERE name = ?")
        .bind(name.as_str())
        .fetch_optional(conn)
        .await
        .map_err(backend)
        .map(|r| r.map(|r| r.get(0)))
}

/// The repository's id, creating it when allowed; `NotFound` otherwise.
async fn ensure_repo(conn: &mut SqliteConnection, name: &RepositoryName, create: CreateRepo) -> Result<i64> {
    if let Some(id) = repo_id(&mut *conn, name).await? {
        return Ok(id);
    }
    if create == CreateRepo::No {
        return Err(Error::NotFound);
    }
    sqlx::query("INSERT INTO repositories (name, created_at) VALUES (?, ?) RETURNING id")
        .bind(name.as_str())
        .bind(now_ms())
        .fetch_one(conn)
        .await
        .map_err(backend)
        .map(|r| r.get(0))
}

async fn link(conn: &mut SqliteConnection, repo: i64, digest: &Digest, size: u64) -> Result<()> {
    let now = now_ms();
    sqlx::query("INSERT INTO blobs (digest, size, created_at) VALUES (?, ?, ?) ON CONFLICT (digest) DO NOTHING")
        .bind(digest.as_str())
        .bind(to_i64(size))
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    sqlx::query(
        "INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES (?, ?, ?)
         ON CONFLICT (repository_id, digest) DO NOTHING",
    )
    .bind(repo)
    .bind(digest.as_str())
    .bind(now)
    .execute(conn)
    .await
    .map_err(backend)?;
    Ok(())
}

fn page_of<T>(mut items: Vec<T>, limit: Option<usize>, key: impl Fn(&T) -> String) -> Page<T> {
    let next = match limit {
        Some(n) if items.len() > n => {
            items.truncate(n);
            items.last().map(key)
        }
        _ => None,
    };
    Page { items, next }
}

fn sql_limit(limit: Option<usize>) -> i64 {
    limit.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX - 1) + 1)
}

#[async_trait]
impl RepoMeta for SqliteMeta {
    async fn create_repository(&self, name: &RepositoryName) -> Result<bool> {
        let name = name.clone();
        self.writer
            .write(move |c: &mut SqliteConnection| {
                Box::pin(async move {
                    let r = sqlx::query(
                        "INSERT INTO repositories (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                    )
                    .bind(name.as_str())
                    .bind(now_ms())
                    .execute(c)
                    .await
                    .map_err(backend)?;
                    Ok(r.rows_affected() == 1)
                })
            })
            .await
    }

    async fn repository_exists(&self, name: &RepositoryName) -> Result<bool> {
        let mut c = self.reader.acquire().await.map_err(backend)?;
        Ok(repo_id(&mut c, name).await?.is_some())
    }

    async fn list_repositories(&self, page: &PageRequest) -> Result<Page<RepositoryName>> {
        let rows = sqlx::query("SELECT name FROM repositories WHERE name > ? ORDER BY name LIMIT ?")
            .bind(page.after.as_deref().unwrap_or(""))
            .bind(sql_limit(page.limit))
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?;
        let items = rows
            .iter()
            .map(|r| RepositoryName::parse(r.get::<&str, _>(0)).map_err(|_| corrupt("repository name")))
            .collect::<Result<Vec<_>>>()?;
        Ok(page_of(items, page.limit, ToString::to_string))
    }
}

#[async_trait]
impl BlobIndex for SqliteMeta {
    async fn blob_in_repository(&self, repo: &RepositoryName, digest: &Digest) -> Result<Option<u64>> {
        sqlx::query(
            "SELECT b.size FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
             JOIN blobs b ON b.digest = rb.digest WHERE r.name = ? AND rb.digest = ?",
        )
        .bind(repo.as_str())
        .bind(digest.as_str())
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)
        .map(|r| r.map(|r| to_u64(r.get(0))))
    }

    async fn link_blob(&self, repo: &RepositoryName, digest: &Digest, size: u64, create: CreateRepo) -> Result<()> {
        let (repo, digest) = (repo.clone(), digest.clone());
        self.writer
            .write(move |c: &mut SqliteConnection| {
                Box::pin(async move {
                    let id = ensure_repo(c, &repo, create).await?;
                    link(c, id, &digest, size).await
                })
            })
            .await
    }

    async fn mount_blob(
        &self,
        from: &RepositoryName,
        to: &RepositoryName,
        digest: &Digest,
        create: CreateRepo,
    ) -> Result<bool> {
        let (from, to, digest) = (from.clone(), to.clone(), digest.clone());
        self.writer
            .write(move |c: &mut SqliteConnection| {
                Box::pin(async move {
                    let size: Option<i64> = sqlx::query(
                        "SELECT b.size FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
                         JOIN blobs b ON b.digest = rb.digest WHERE r.name = ? AND rb.digest = ?",
                    )
                    .bind(from.as_str())
                    .bind(digest.as_str())
                    .fetch_optional(&mut *c)
                    .await
                    .map_err(backend)?
                    .map(|r| r.get(0));
                    let Some(size) = size else { return Ok(false) };
                    let id = ensure_repo(c, &to, create).await?;
                    link(c, id, &digest, to_u64(size)).await?;
                    Ok(true)
                })
            })
            .await
    }

    async fn unlink_blob(&self, repo: &RepositoryName, digest: &Digest) -> Result<bool> {
        let (repo, digest) = (repo.clone(), digest.clone());
        self.writer
            .write(move |c: &mut SqliteConnection| {
                Box::pin(async move {
                    let r = sqlx::query(
                        "DELETE FROM repository_blobs WHERE digest = ?
                         AND repository_id = (SELECT id FROM repositories WHERE name = ?)",
                    )
                    .bind(digest.as_str())
                    .bind(repo.as_str())
                    .execute(c)
                    .await
                    .map_err(backend)?;
                    Ok(r.rows_affected() > 0)
                })
            })
            .await
    }
}

#[async_trait]
impl UploadMeta for SqliteMeta {
    async fn create_upload(&self, s: &UploadSession, create: CreateRepo) -> Result<()> {
        if create == CreateRepo::No && !self.repository_exists(&s.repository).await? {
            return Err(Error::NotFound);
        }
        let mut fresh = self.fresh();
        if fresh.len() >= MAX_FRESH_SESSIONS {
            return Err(Error::Conflict("too many upload sessions in progress".into()));
        }
        fresh.insert(s.id.clone(), (s.clone(), create));
        Ok(())
    }

    async fn get_upload(&self, id: &UploadId) -> Result<Option<UploadSession>> {
        if let Some((s, _)) = self.fresh().get(id) {
            return Ok(Some(s.clone()));
        }
        let row = sqlx::query(
            r#"SELECT r.name, u."offset", u.hash_state, u.created_at FROM uploads u
               JOIN repositories r ON r.id = u.repository_id WHERE u.id = ?"#,
        )
        .bind(id.as_str())
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        row.map(|r| {
            Ok(UploadSession {
                id: id.clone(),
                repository: RepositoryName::parse(r.get::<&str, _>(0)).map_err(|_| corrupt("repository name"))?,
                offset: to_u64(r.get(1)),
                hash_state: r.get(2),
                created_at: r.get(3),
            })
        })
        .transpose()
    }

    async fn advance_upload(&self, id: &UploadId, from: u64, to: u64, hash_state: &[u8]) -> Result<()> {
        let fresh = if from == 0 { self.fresh().remove(id) } else { None };
        if let Some((mut s, create)) = fresh {
            s.offset = to;
            s.hash_state = hash_state.to_vec();
            return self
                .writer
                .write(move |c: &mut SqliteConnection| {
                    Box::pin(async move {
                        let id = ensure_repo(c, &s.repository, create).await?;
                        sqlx::query(
                            r#"INSERT INTO uploads (id, repository_id, "offset", hash_state, created_at, updated_at)
                               VALUES (?, ?, ?, ?, ?, ?)"#,
                        )
                        .bind(s.id.as_str())
                        .bind(id)
                        .bind(to_i64(s.offset))
                        .bind(&s.hash_state)
                        .bind(s.created_at)
                        .bind(now_ms())
                        .execute(c)
                        .await
                        .map_err(backend)?;
                        Ok(())
                    })
                })
                .await;
        }
        let (id, hash_state) = (id.clone(), hash_state.to_vec());
        self.writer
            .write(move |c: &mut SqliteConnection| {
                Box::pin(async move {
                    let r = sqlx::query(
                        r#"UPDATE uploads SET "offset" = ?, hash_state = ?, updated_at = ? WHERE id = ? AND "offset" = ?"#,
                    )
                    .bind(to_i64(to))
                    .bind(hash_state)
                    .bind(now_ms())
                    .bind(id.as_str())
                    .bind(to_i64(from))
                    .execute(c)
                    .await
                    .map_err(backend)?;
                    if r.rows_affected() == 1 {
                        Ok(())
                    } else {
                        Err(Error::Conflict("upload moved concurrently".into()))
                    }
                })
            })
            .await
    }

    async fn complete_upload(&self, id: &UploadId, digest: &Digest, size: u64) -> Result<()> {
        let fresh = self.fresh().remove(id);
        if let Some((s, create)) = fresh {
            let digest = digest.clone();
            return self
                .writer
                .write(move |c: &mut SqliteConnection| {
                    Box::pin(async move {
                        let repo = ensure_repo(c, &s.repository, create).await?;
                        link(c, repo, &digest, size).await
                    })
                })
                .await;
        }
        let (id, digest) = (id.clone(), digest.clone());
        self.writer
            .write(move |c: &mut SqliteConnection| {
                Box::pin(async move {
                    let repo: i64 = sqlx::query("SELECT repository_id FROM uploads WHERE id = ?")
                        .bind(id.as_str())
                        .fetch_optional(&mut *c)
                        .await
                        .map_err(backend)?
                        .ok_or(Error::NotFound)?
                        .get(0);
                    link(c, repo, &digest, size).await?;
                    sqlx::query("DELETE FROM uploads WHERE id = ?")
                        .bind(id.as_str())
                        .execute(c)
                        .await
                        .map_err(backend)?;
                    Ok(())
                })
            })
            .await
    }

    async fn delete_upload(&self, id: &UploadId) -> Result<bool> {
        if self.fresh().remove(id).is_some() {
            return Ok(true);
        }
        let id = id.clone();
        self.writer
            .write(move |c: &mut SqliteConnection| {
                Box::pin(async move {
                    let r = sqlx::query("DELETE FROM uploads WHERE id = ?")
                        .bind(id.as_str())
                        .execute(c)
                        .await
                        .map_err(backend)?;
                    Ok(r.rows_affected() > 0)
                })
            })
            .await
    }

    async fn stale_uploads(&self, before_ms: i64, limit: usize) -> Result<Vec<UploadId>> {
        self.fresh().retain(|_, (s, _)| s.created_at >= before_ms);
        let rows = sqlx::query("SELECT id FROM uploads WHERE updated_at < ? ORDER BY updated_at LIMIT ?")
            .bind(before_ms)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?;
        rows.iter().map(|r| UploadId::parse(r.get::<&str, _>(0)).map_err(|_| corrupt("upload id"))).collect()
    }
}

#[async_trait]
impl ImageMeta for SqliteMeta {
    async fn put_manifest(&self, m: &NewManifest, create: CreateRepo) -> Result<PutOutcome> {
        let m = m.clone();
        self.writer
            .write(move |c: &mut SqliteConnection| Box::pin(async move { put_manifest(c, &m, create).await }))
            .await
    }

    async fn resolve(&self, repo: &RepositoryName, reference: &Reference) -> Result<Option<ManifestRecord>> {
        let q = match reference {
            Reference::Tag(t) => sqlx::query(
                "SELECT m.digest, m.media_type, m.payload FROM tags t
                 JOIN repositories r ON r.id = t.repository_id
                 JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.digest
                 WHERE r.name = ? AND t.name = ?",
            )
            .bind(repo.as_str())
            .bind(t.as_str()),
            Reference::Digest(d) => sqlx::query(
                "SELECT m.digest, m.media_type, m.payload FROM manifests m
                 JOIN repositories r ON r.id = m.repository_id WHERE r.name = ? AND m.digest = ?",
            )
            .bind(repo.as_str())
            .bind(d.as_str()),
        };
        let row = q.fetch_optional(&self.reader).await.map_err(backend)?;
        row.map(|r| {
            Ok(ManifestRecord {
                digest: Digest::parse(r.get::<&str, _>(0)).map_err(|_| corrupt("digest"))?,
                media_type: r.get(1),
                payload: r.get(2),
            })
        })
        .transpose()
    }

    async fn delete_manifest(&self, repo: &RepositoryName, digest: &Digest) -> Result<bool> {
        let (repo, digest) = (repo.clone(), digest.clone());
        self.writer
            .write(move |c: &mut SqliteConnection| {
                Box::pin(async move {
                    let r = sqlx::query(
                        "DELETE FROM manifests WHERE digest = ?
                         AND repository_id = (SELECT id FROM repositories WHERE name = ?)",
                    )
                    .bind(digest.as_str())
                    .bind(repo.as_str())
                    .execute(c)
                    .await
                    .map_err(backend)?;
                    Ok(r.rows_affected() > 0)
                })
            })
            .await
    }

    async fn delete_tag(&self, repo: &RepositoryName, tag: &Tag) -> Result<bool> {
        let (repo, tag) = (repo.clone(), tag.clone());
        self.writer
            .write(move |c: &mut SqliteConnection| {
                Box::pin(async move {
                    let r = sqlx::query(
                        "DELETE FROM tags WHERE name = ? AND repository_id = (SELECT id FROM repositories WHERE name = ?)",
                    )
                    .bind(tag.as_str())
                    .bind(repo.as_str())
                    .execute(c)
                    .await
                    .map_err(backend)?;
                    Ok(r.rows_affected() > 0)
                })
            })
            .await
    }

    async fn list_tags(&self, repo: &RepositoryName, page: &PageRequest) -> Result<Page<Tag>> {
        let mut c = self.reader.acquire().await.map_err(backend)?;
        let id = repo_id(&mut c, repo).await?.ok_or(Error::NotFound)?;
        // One aggregated row instead of one row per tag: listing 10,000 tags is a single step.
        // Tags cannot contain a newline, so it separates them unambiguously.
        let joined: Option<String> = sqlx::query(
            "SELECT group_concat(name, char(10) ORDER BY name) FROM
               (SELECT name FROM tags WHERE repository_id = ? AND name > ? ORDER BY name LIMIT ?)",
        )
        .bind(id)
        .bind(page.after.as_deref().unwrap_or(""))
        .bind(sql_limit(page.limit))
        .fetch_one(&mut *c)
        .await
        .map_err(backend)?
        .get(0);
        let items = joined
            .as_deref()
            .map(|j| j.split('\n').map(|t| Tag::parse(t).map_err(|_| corrupt("tag"))).collect::<Result<Vec<_>>>())
            .transpose()?
            .unwrap_or_default();
        Ok(page_of(items, page.limit, ToString::to_string))
    }

    async fn referrers(
        &self,
        repo: &RepositoryName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>> {
        let rows = sqlx::query(
            "SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations FROM manifests m
             JOIN repositories r ON r.id = m.repository_id
             WHERE r.name = ? AND m.subject = ? AND (? IS NULL OR m.artifact_type = ?) ORDER BY m.digest",
        )
        .bind(repo.as_str())
        .bind(subject.as_str())
        .bind(artifact_type)
        .bind(artifact_type)
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|r| {
                Ok(Referrer {
                    digest: Digest::parse(r.get::<&str, _>(0)).map_err(|_| corrupt("digest"))?,
                    media_type: r.get(1),
                    size: to_u64(r.get(2)),
                    artifact_type: r.get(3),
                    annotations: r.get(4),
                })
            })
            .collect()
    }
}

async fn put_manifest(tx: &mut SqliteConnection, m: &NewManifest, create: CreateRepo) -> Result<PutOutcome> {
    let Some(repo) = repo_id(&mut *tx, &m.repository).await? else {
        // A new repository holds nothing, so every reference is missing; only a manifest that
        // references nothing may create it.
        let missing: Vec<Digest> = m.blobs.iter().chain(&m.children).cloned().collect();
        if !missing.is_empty() {
            return Ok(PutOutcome::MissingReferences(missing));
        }
        ensure_repo(&mut *tx, &m.repository, create).await?;
        return Box::pin(put_manifest(tx, m, create)).await;
    };
    let mut missing = Vec::new();
    for (targets, sql) in [
        (&m.blobs, "SELECT 1 FROM repository_blobs WHERE repository_id = ? AND digest = ?"),
        (&m.children, "SELECT 1 FROM manifests WHERE repository_id = ? AND digest = ?"),
    ] {
        for d in targets {
            let found = sqlx::query(sql).bind(repo).bind(d.as_str()).fetch_optional(&mut *tx).await.map_err(backend)?;
            if found.is_none() {
                missing.push(d.clone());
            }
        }
    }
    if !missing.is_empty() {
        return Ok(PutOutcome::MissingReferences(missing));
    }
    let now = now_ms();
    let inserted = sqlx::query(
        "INSERT INTO manifests (repository_id, digest, media_type, artifact_type, subject, annotations, size, payload, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (repository_id, digest) DO NOTHING",
    )
    .bind(repo)
    .bind(m.digest.as_str())
    .bind(&m.media_type)
    .bind(m.artifact_type.as_deref())
    .bind(m.subject.as_ref().map(Digest::as_str))
    .bind(m.annotations.as_deref())
    .bind(i64::try_from(m.payload.len()).unwrap_or(i64::MAX))
    .bind(&m.payload)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(backend)?
    .rows_affected()
        == 1;
    if inserted {
        for (targets, kind) in [(&m.blobs, 0i64), (&m.children, 1)] {
            for d in targets {
                sqlx::query(
                    "INSERT INTO manifest_references (repository_id, manifest_digest, target, kind)
                     VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                )
                .bind(repo)
                .bind(m.digest.as_str())
                .bind(d.as_str())
                .bind(kind)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            }
        }
    }
    if let Some(tag) = &m.tag {
        sqlx::query(
            "INSERT INTO tags (repository_id, name, digest, updated_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (repository_id, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at",
        )
        .bind(repo)
        .bind(tag.as_str())
        .bind(m.digest.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    }
    Ok(PutOutcome::Stored)
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::SqliteMeta::open(&dir.path().join("meta.db")).await.unwrap();
        berth_meta::testsuite::run(&store).await;
        store.close().await;
        // Reopening runs no migration twice and keeps the data.
        let store = super::SqliteMeta::open(&dir.path().join("meta.db")).await.unwrap();
        use berth_meta::RepoMeta;
        assert!(store.repository_exists(&berth_types::RepositoryName::parse("team/app").unwrap()).await.unwrap());
    }
}
