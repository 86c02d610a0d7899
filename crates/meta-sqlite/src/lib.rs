//! SQLite metadata store for the embedded mode.
//!
//! One writer connection on its own thread with group commit (`writer.rs`), a small pool of
//! read-only connections used from the blocking pool, WAL journal, `synchronous = FULL` so a
//! commit survives power loss, incremental auto-vacuum so deleted rows give their pages back
//! (`reclaim`). All SQL of this backend lives in this crate; `rusqlite` never appears in a
//! public signature.
//!
//! Every query a point operation runs (one repository, image, tag, blob, upload or policy) is
//! answered through an index or primary key; `tests::point_queries_search_an_index` holds each
//! to that with `EXPLAIN QUERY PLAN`.

mod gc;
mod identity;
mod jobs;
mod migrate;
mod preview;
mod scan;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use berth_meta::{
    BlobIndex, Conflict, CreateRepo, DeleteRepository, Error, ImageMeta, ImageRecord, MaintenanceMeta, ManifestRecord,
    Missing, NewManifest, PutOutcome, Referrer, RepoMeta, RepositoryRecord, RepositorySettings,
    RepositorySettingsChange, Result, TagStatus, UploadMeta, UploadSession,
};
use berth_types::{
    AccountId, Digest, Page, PageRequest, Reference, RepositoryKey, RepositoryName, Tag, TagMutability, UploadId,
    now_ms,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

/// Most sessions without bytes held in memory at once.
const MAX_FRESH_SESSIONS: usize = 100_000;

/// Idle read-only connections kept for reuse.
const MAX_IDLE_READERS: usize = 8;

type Fresh = HashMap<UploadId, (UploadSession, CreateRepo)>;

pub struct SqliteMeta {
    /// Sessions without bytes, kept in memory until their first append or completion: a crash
    /// only makes their clients start over, and a push skips one database write.
    fresh: Mutex<Fresh>,
    writer: Arc<writer::Writer>,
    readers: Arc<Readers>,
}

/// A backend error as `meta::Error`. A miss is never inferred here: each command says what it
/// looked for and did not find.
fn backend(e: rusqlite::Error) -> Error {
    match &e {
        rusqlite::Error::SqliteFailure(f, msg)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            Error::Conflict(Conflict::Other(msg.clone().unwrap_or_else(|| e.to_string())))
        }
        _ if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) => Error::StorageFull(e.to_string()),
        _ => Error::Backend(Box::new(e)),
    }
}

fn split_lines(s: &str) -> Vec<String> {
    s.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect()
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

fn open(path: &Path, flags: OpenFlags) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;")?;
    Ok(conn)
}

/// Read-only connections, each used by one blocking task at a time.
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let taken = pool.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let conn = match taken {
                Some(c) => c,
                None => open(&pool.path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(backend)?,
            };
            let result = f(&conn);
            let mut idle = pool.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(|e| Error::Backend(Box::new(e)))?
    }
}

/// Opens the writer connection: incremental auto-vacuum, WAL, migrations.
fn open_writer(path: &Path, default_account: &AccountId, migrate_to: Option<usize>) -> Result<Connection> {
    let conn = open(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE).map_err(backend)?;
    // Before the first table exists (or, for an old file, a one-time rewrite).
    migrate::incremental_vacuum(&conn)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(backend)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Backend(format!("cannot use WAL journal (got {mode})").into()));
    }
    match migrate_to {
        Some(n) => migrate::migrate_to(&conn, default_account, n)?,
        None => migrate::migrate(&conn, default_account)?,
    }
    Ok(conn)
}

impl SqliteMeta {
    /// Opens (creating and migrating if needed) the database file at `path`.
    ///
    /// `default_account` is the account the server serves by default: a database written
    /// before each account had its own registry places its repositories without an owner in
    /// that account's registry when it is migrated (and it is not used otherwise).
    ///
    /// # Errors
    /// When the file cannot be opened or migrated.
    pub async fn open(path: &Path, default_account: &AccountId) -> Result<Self> {
        let path = path.to_owned();
        let conn = tokio::task::spawn_blocking({
            let (path, account) = (path.clone(), default_account.clone());
            move || open_writer(&path, &account, None)
        })
        .await
        .map_err(|e| Error::Backend(Box::new(e)))??;
        Ok(SqliteMeta {
            fresh: Mutex::default(),
            writer: Arc::new(writer::Writer::start(conn)),
            readers: Arc::new(Readers { path, idle: Mutex::default() }),
        })
    }

    fn fresh(&self) -> MutexGuard<'_, Fresh> {
        self.fresh.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a `DELETE` whose parameters are a key (`?1`) and a repository's registry and name
    /// (`?2`, `?3`); `true` when it removed something.
    async fn delete_in_repository(&self, sql: &'static str, key: &str, repo: &RepositoryKey) -> Result<bool> {
        let (key, repo) = (key.to_owned(), repo.clone());
        self.writer
            .write(move |c| {
                c.prepare_cached(sql)
                    .and_then(|mut s| s.execute([key.as_str(), repo.registry.as_str(), repo.name.as_str()]))
                    .map(|n| n > 0)
                    .map_err(backend)
            })
            .await
    }

    /// Finishes queued writes and closes the database.
    pub async fn close(&self) {
        self.readers.idle.lock().unwrap_or_else(PoisonError::into_inner).clear();
        let writer = Arc::clone(&self.writer);
        let _ = tokio::task::spawn_blocking(move || writer.close()).await;
    }
}

/// The id of a repository (a point query on `UNIQUE (registry, name)`).
const REPO_ID_SQL: &str = "SELECT id FROM repositories WHERE registry = ?1 AND name = ?2";

fn repo_id(conn: &Connection, key: &RepositoryKey) -> Result<Option<i64>> {
    conn.prepare_cached(REPO_ID_SQL)
        .and_then(|mut s| s.query_row([key.registry.as_str(), key.name.as_str()], |r| r.get(0)).optional())
        .map_err(backend)
}

/// The repository's id, creating it when allowed; `NotFound(Repository)` otherwise.
fn ensure_repo(conn: &Connection, key: &RepositoryKey, create: CreateRepo) -> Result<i64> {
    if let Some(id) = repo_id(conn, key)? {
        return Ok(id);
    }
    if create == CreateRepo::No {
        return Err(Error::no_repository(key));
    }
    conn.prepare_cached("INSERT INTO repositories (registry, name, created_at) VALUES (?1, ?2, ?3) RETURNING id")
        .and_then(|mut s| s.query_row(params![key.registry.as_str(), key.name.as_str(), now_ms()], |r| r.get(0)))
        .map_err(backend)
}

/// A repository row with its policy and its resource tags (a JSON array of `[key, value]`).
const REPOSITORY_COLUMNS: &str = "registry, name, created_at, tag_mutability, scan_on_push, encryption_type, kms_key, \
     tag_mutability_exclusions, policy, (SELECT json_group_array(json_array(t.key, t.value)) FROM \
     (SELECT key, value FROM repository_tags WHERE repository_id = repositories.id ORDER BY key) t)";

/// A repository row as stored: registry, name, creation time, the tag mutability mode and its
/// exclusion filters (one per line), the other settings, the policy and the tags (JSON).
type RawRepository = (String, String, i64, (String, String), RepositorySettings, Option<String>, String);

fn repository_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRepository> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        (r.get(3)?, r.get(7)?),
        RepositorySettings {
            tag_mutability: TagMutability::Mutable,
            scan_on_push: r.get(4)?,
            encryption_type: r.get(5)?,
            kms_key: r.get(6)?,
        },
        r.get(8)?,
        r.get(9)?,
    ))
}

/// Tag mutability as stored: its mode and its exclusion filters, one per line.
fn tag_mutability(mode: &str, exclusions: &str) -> Result<TagMutability> {
    TagMutability::parse(mode, split_lines(exclusions)).map_err(|_| corrupt("tag mutability"))
}

fn repository_key(registry: &str, name: &str) -> Result<RepositoryKey> {
    Ok(RepositoryKey::new(
        AccountId::parse(registry).map_err(|_| corrupt("registry"))?,
        RepositoryName::parse(name).map_err(|_| corrupt("repository name"))?,
    ))
}

fn to_record(
    (registry, name, created_at, (mode, exclusions), mut settings, policy, tags): RawRepository,
) -> Result<RepositoryRecord> {
    settings.tag_mutability = tag_mutability(&mode, &exclusions)?;
    let tags: Vec<(String, String)> = serde_json::from_str(&tags).map_err(|_| corrupt("repository tags"))?;
    Ok(RepositoryRecord { key: repository_key(&registry, &name)?, created_at, settings, policy, tags })
}

fn get_repository(conn: &Connection, key: &RepositoryKey) -> Result<Option<RepositoryRecord>> {
    conn.prepare_cached(&format!("SELECT {REPOSITORY_COLUMNS} FROM repositories WHERE registry = ?1 AND name = ?2"))
        .and_then(|mut s| s.query_row([key.registry.as_str(), key.name.as_str()], repository_record).optional())
        .map_err(backend)?
        .map(to_record)
        .transpose()
}

fn link(conn: &Connection, repo: i64, digest: &Digest, size: u64) -> Result<()> {
    let now = now_ms();
    conn.prepare_cached(
        "INSERT INTO blobs (digest, size, created_at) VALUES (?1, ?2, ?3) ON CONFLICT (digest) DO NOTHING",
    )
    .and_then(|mut s| s.execute(params![digest.as_str(), to_i64(size), now]))
    .map_err(backend)?;
    conn.prepare_cached(
        "INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (repository_id, digest) DO NOTHING",
    )
    .and_then(|mut s| s.execute(params![repo, digest.as_str(), now]))
    .map_err(backend)?;
    Ok(())
}

/// The size of a blob a repository holds.
const BLOB_SIZE_SQL: &str = "SELECT b.size FROM repositories r
    JOIN repository_blobs rb ON rb.repository_id = r.id JOIN blobs b ON b.digest = rb.digest
    WHERE r.registry = ?1 AND r.name = ?2 AND rb.digest = ?3";

fn blob_size(conn: &Connection, repo: &RepositoryKey, digest: &Digest) -> Result<Option<u64>> {
    conn.prepare_cached(BLOB_SIZE_SQL)
        .and_then(|mut s| {
            s.query_row([repo.registry.as_str(), repo.name.as_str(), digest.as_str()], |r| r.get::<_, i64>(0))
                .optional()
        })
        .map(|o| o.map(to_u64))
        .map_err(backend)
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

/// One page of the text column of `sql`, whose parameters are `params` followed by the page's
/// `after` key and row limit.
fn names<T: ToString>(
    conn: &Connection,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
    page: &PageRequest,
    parse: impl Fn(&str) -> Option<T>,
    what: &str,
) -> Result<Page<T>> {
    let after = page.after.as_deref().unwrap_or("");
    let limit = sql_limit(page.limit);
    let all: Vec<&dyn rusqlite::ToSql> =
        params.iter().copied().chain([&after as &dyn rusqlite::ToSql, &limit]).collect();
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let mut rows = stmt.query(all.as_slice()).map_err(backend)?;
    let mut items = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        let name = row.get_ref(0).map_err(backend)?.as_str().map_err(|_| corrupt(what))?;
        items.push(parse(name).ok_or_else(|| corrupt(what))?);
    }
    Ok(page_of(items, page.limit, ToString::to_string))
}

/// A page of one registry's repository names: a range of `UNIQUE (registry, name)`.
const LIST_NAMES_SQL: &str = "SELECT name FROM repositories WHERE registry = ?1 AND name > ?2 ORDER BY name LIMIT ?3";

/// A page of every registry's repositories, in key order: a range of the same index.
const LIST_ALL_SQL: &str = "SELECT registry, name FROM repositories WHERE (registry, name) > (?1, ?2)
    ORDER BY registry, name LIMIT ?3";

#[async_trait]
impl RepoMeta for SqliteMeta {
    async fn create_repository(&self, key: &RepositoryKey) -> Result<bool> {
        let key = key.clone();
        self.writer
            .write(move |c| {
                c.prepare_cached(
                    "INSERT INTO repositories (registry, name, created_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (registry, name) DO NOTHING",
                )
                .and_then(|mut s| s.execute(params![key.registry.as_str(), key.name.as_str(), now_ms()]))
                .map(|n| n == 1)
                .map_err(backend)
            })
            .await
    }

    async fn create_repository_with(
        &self,
        key: &RepositoryKey,
        settings: &RepositorySettings,
    ) -> Result<RepositoryRecord> {
        let (key, settings) = (key.clone(), settings.clone());
        self.writer
            .write(move |c| {
                if repo_id(c, &key)?.is_some() {
                    return Err(Error::Conflict(Conflict::RepositoryExists(key)));
                }
                c.prepare_cached(
                    "INSERT INTO repositories
                     (registry, name, created_at, tag_mutability, scan_on_push, encryption_type, kms_key,
                      tag_mutability_exclusions)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        key.registry.as_str(),
                        key.name.as_str(),
                        now_ms(),
                        settings.tag_mutability.as_str(),
                        settings.scan_on_push,
                        settings.encryption_type,
                        settings.kms_key,
                        settings.tag_mutability.exclusions().join("\n")
                    ])
                })
                .map_err(backend)?;
                get_repository(c, &key)?.ok_or_else(|| Error::no_repository(&key))
            })
            .await
    }

    async fn get_repository(&self, key: &RepositoryKey) -> Result<Option<RepositoryRecord>> {
        let key = key.clone();
        self.readers.read(move |c| get_repository(c, &key)).await
    }

    async fn list_repository_records(
        &self,
        registry: &AccountId,
        page: &PageRequest,
    ) -> Result<Page<RepositoryRecord>> {
        let (registry, page) = (registry.clone(), page.clone());
        self.readers
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(&format!(
                        "SELECT {REPOSITORY_COLUMNS} FROM repositories WHERE registry = ?1 AND name > ?2
                         ORDER BY name LIMIT ?3"
                    ))
                    .map_err(backend)?;
                let rows = stmt
                    .query_map(
                        params![registry.as_str(), page.after.as_deref().unwrap_or(""), sql_limit(page.limit)],
                        repository_record,
                    )
                    .map_err(backend)?;
                let items = rows.map(|r| to_record(r.map_err(backend)?)).collect::<Result<Vec<_>>>()?;
                Ok(page_of(items, page.limit, |r| r.key.name.to_string()))
            })
            .await
    }

    async fn update_repository(
        &self,
        key: &RepositoryKey,
        change: &RepositorySettingsChange,
    ) -> Result<Option<RepositoryRecord>> {
        let (key, change) = (key.clone(), change.clone());
        self.writer
            .write(move |c| {
                let n = c
                    .prepare_cached(
                        "UPDATE repositories SET tag_mutability = coalesce(?3, tag_mutability),
                         scan_on_push = coalesce(?4, scan_on_push),
                         tag_mutability_exclusions = coalesce(?5, tag_mutability_exclusions)
                         WHERE registry = ?1 AND name = ?2",
                    )
                    .and_then(|mut s| {
                        let mode = change.tag_mutability.as_ref().map(TagMutability::as_str);
                        let exclusions = change.tag_mutability.as_ref().map(|m| m.exclusions().join("\n"));
                        s.execute(params![
                            key.registry.as_str(),
                            key.name.as_str(),
                            mode,
                            change.scan_on_push,
                            exclusions
                        ])
                    })
                    .map_err(backend)?;
                if n == 0 { Ok(None) } else { get_repository(c, &key) }
            })
            .await
    }

    async fn update_repository_tags(
        &self,
        key: &RepositoryKey,
        set: &[(String, String)],
        remove: &[String],
    ) -> Result<Option<Vec<(String, String)>>> {
        let read_only = set.is_empty() && remove.is_empty();
        let (key, set, remove) = (key.clone(), set.to_vec(), remove.to_vec());
        let work = move |c: &Connection| -> Result<Option<Vec<(String, String)>>> {
            let Some(id) = repo_id(c, &key)? else { return Ok(None) };
            for (k, v) in &set {
                c.prepare_cached(
                    "INSERT INTO repository_tags (repository_id, key, value) VALUES (?1, ?2, ?3)
                     ON CONFLICT (repository_id, key) DO UPDATE SET value = excluded.value",
                )
                .and_then(|mut s| s.execute(params![id, k, v]))
                .map_err(backend)?;
            }
            for k in &remove {
                c.prepare_cached("DELETE FROM repository_tags WHERE repository_id = ?1 AND key = ?2")
                    .and_then(|mut s| s.execute(params![id, k]))
                    .map_err(backend)?;
            }
            let mut stmt = c
                .prepare_cached("SELECT key, value FROM repository_tags WHERE repository_id = ?1 ORDER BY key")
                .map_err(backend)?;
            let rows = stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?))).map_err(backend)?;
            rows.map(|r| r.map_err(backend)).collect::<Result<Vec<_>>>().map(Some)
        };
        if read_only { self.readers.read(work).await } else { self.writer.write(work).await }
    }

    async fn delete_repository(&self, key: &RepositoryKey, force: bool) -> Result<DeleteRepository> {
        let key = key.clone();
        self.writer
            .write(move |c| {
                let Some(record) = get_repository(c, &key)? else { return Ok(DeleteRepository::NotFound) };
                let id = repo_id(c, &key)?.ok_or_else(|| Error::no_repository(&key))?;
                let any: bool = c
                    .prepare_cached("SELECT 1 FROM manifests WHERE repository_id = ?1 LIMIT 1")
                    .and_then(|mut s| s.exists([id]))
                    .map_err(backend)?;
                if any && !force {
                    return Ok(DeleteRepository::NotEmpty);
                }
                // Tags, references, manifests, blob links, uploads and the preview go with it
                // (ON DELETE CASCADE).
                c.prepare_cached("DELETE FROM repositories WHERE id = ?1")
                    .and_then(|mut s| s.execute([id]))
                    .map_err(backend)?;
                Ok(DeleteRepository::Deleted(record))
            })
            .await
    }

    async fn repository_exists(&self, key: &RepositoryKey) -> Result<bool> {
        let key = key.clone();
        self.readers.read(move |c| Ok(repo_id(c, &key)?.is_some())).await
    }

    async fn list_repositories(&self, registry: &AccountId, page: &PageRequest) -> Result<Page<RepositoryName>> {
        let (registry, page) = (registry.clone(), page.clone());
        self.readers
            .read(move |c| {
                names(
                    c,
                    LIST_NAMES_SQL,
                    &[&registry.as_str()],
                    &page,
                    |n| RepositoryName::parse(n).ok(),
                    "repository name",
                )
            })
            .await
    }

    async fn list_all_repositories(&self, after: Option<&RepositoryKey>, limit: usize) -> Result<Vec<RepositoryKey>> {
        let after =
            after.map_or_else(|| (String::new(), String::new()), |k| (k.registry.to_string(), k.name.to_string()));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.readers
            .read(move |c| {
                let mut stmt = c.prepare_cached(LIST_ALL_SQL).map_err(backend)?;
                let rows = stmt
                    .query_map(params![after.0, after.1, limit], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                    })
                    .map_err(backend)?;
                rows.map(|row| {
                    let (registry, name) = row.map_err(backend)?;
                    repository_key(&registry, &name)
                })
                .collect()
            })
            .await
    }
}

#[async_trait]
impl BlobIndex for SqliteMeta {
    async fn blob_in_repository(&self, repo: &RepositoryKey, digest: &Digest) -> Result<Option<u64>> {
        let (repo, digest) = (repo.clone(), digest.clone());
        self.readers.read(move |c| blob_size(c, &repo, &digest)).await
    }

    async fn link_blob(&self, repo: &RepositoryKey, digest: &Digest, size: u64, create: CreateRepo) -> Result<()> {
        let (repo, digest) = (repo.clone(), digest.clone());
        self.writer
            .write(move |c| {
                let id = ensure_repo(c, &repo, create)?;
                link(c, id, &digest, size)
            })
            .await
    }

    async fn mount_blob(
        &self,
        from: &RepositoryKey,
        to: &RepositoryKey,
        digest: &Digest,
        create: CreateRepo,
    ) -> Result<bool> {
        let (from, to, digest) = (from.clone(), to.clone(), digest.clone());
        self.writer
            .write(move |c| {
                let Some(size) = blob_size(c, &from, &digest)? else { return Ok(false) };
                let id = ensure_repo(c, &to, create)?;
                link(c, id, &digest, size)?;
                Ok(true)
            })
            .await
    }

    async fn unlink_blob(&self, repo: &RepositoryKey, digest: &Digest) -> Result<bool> {
        self.delete_in_repository(
            "DELETE FROM repository_blobs WHERE digest = ?1
             AND repository_id = (SELECT id FROM repositories WHERE registry = ?2 AND name = ?3)",
            digest.as_str(),
            repo,
        )
        .await
    }

    async fn recorded_blobs(&self, after: Option<&Digest>, limit: usize) -> Result<Vec<(Digest, u64)>> {
        let after = after.map_or_else(String::new, |d| d.as_str().to_owned());
        self.readers
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached("SELECT digest, size FROM blobs WHERE digest > ?1 ORDER BY digest LIMIT ?2")
                    .map_err(backend)?;
                let rows = stmt
                    .query_map(params![after, i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                    })
                    .map_err(backend)?;
                rows.map(|row| {
                    let (d, size) = row.map_err(backend)?;
                    Ok((Digest::parse(&d).map_err(|_| corrupt("blob digest"))?, to_u64(size)))
                })
                .collect()
            })
            .await
    }
}

fn insert_upload(c: &Connection, s: &UploadSession, create: CreateRepo) -> Result<()> {
    let id = ensure_repo(c, &s.repository, create)?;
    c.prepare_cached(
        r#"INSERT INTO uploads (id, repository_id, "offset", hash_state, created_at, updated_at)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6)"#,
    )
    .and_then(|mut st| st.execute(params![s.id.as_str(), id, to_i64(s.offset), s.hash_state, s.created_at, now_ms()]))
    .map_err(backend)?;
    Ok(())
}

#[async_trait]
impl UploadMeta for SqliteMeta {
    async fn create_upload(&self, s: &UploadSession, create: CreateRepo) -> Result<()> {
        if create == CreateRepo::No && !self.repository_exists(&s.repository).await? {
            return Err(Error::no_repository(&s.repository));
        }
        let mut fresh = self.fresh();
        if fresh.len() >= MAX_FRESH_SESSIONS {
            return Err(Error::Conflict(Conflict::TooManyUploads));
        }
        fresh.insert(s.id.clone(), (s.clone(), create));
        Ok(())
    }

    async fn get_upload(&self, id: &UploadId) -> Result<Option<UploadSession>> {
        if let Some((s, _)) = self.fresh().get(id) {
            return Ok(Some(s.clone()));
        }
        let id = id.clone();
        self.readers
            .read(move |c| {
                let row = c
                    .prepare_cached(UPLOAD_SQL)
                    .and_then(|mut s| {
                        s.query_row([id.as_str()], |r| {
                            Ok((
                                r.get::<_, String>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, i64>(2)?,
                                r.get::<_, Vec<u8>>(3)?,
                                r.get(4)?,
                            ))
                        })
                        .optional()
                    })
                    .map_err(backend)?;
                row.map(|(registry, name, offset, hash_state, created_at)| {
                    Ok(UploadSession {
                        id: id.clone(),
                        repository: repository_key(&registry, &name)?,
                        offset: to_u64(offset),
                        hash_state,
                        created_at,
                    })
                })
                .transpose()
            })
            .await
    }

    async fn advance_upload(&self, id: &UploadId, from: u64, to: u64, hash_state: &[u8]) -> Result<()> {
        let fresh = if from == 0 { self.fresh().remove(id) } else { None };
        if let Some((mut s, create)) = fresh {
            s.offset = to;
            s.hash_state = hash_state.to_vec();
            return self.writer.write_lazy(move |c| insert_upload(c, &s, create)).await;
        }
        let (id, hash_state) = (id.clone(), hash_state.to_vec());
        // A session's progress need not survive a crash: an older offset makes the client's next
        // chunk answer 416 with the true range, and the core re-checks bytes after a restart.
        self.writer
            .write_lazy(move |c| {
                let n = c
                    .prepare_cached(
                        r#"UPDATE uploads SET "offset" = ?1, hash_state = ?2, updated_at = ?3
                           WHERE id = ?4 AND "offset" = ?5"#,
                    )
                    .and_then(|mut s| s.execute(params![to_i64(to), hash_state, now_ms(), id.as_str(), to_i64(from)]))
                    .map_err(backend)?;
                if n == 1 {
                    Ok(())
                } else if upload_repository(c, &id)?.is_some() {
                    Err(Error::Conflict(Conflict::UploadMoved(id)))
                } else {
                    Err(Error::NotFound(Missing::Upload(id)))
                }
            })
            .await
    }

    async fn complete_upload(&self, id: &UploadId, digest: &Digest, size: u64) -> Result<()> {
        let fresh = self.fresh().remove(id);
        let (id, digest) = (id.clone(), digest.clone());
        self.writer
            .write(move |c| {
                if let Some((s, create)) = fresh {
                    let repo = ensure_repo(c, &s.repository, create)?;
                    return link(c, repo, &digest, size);
                }
                let repo = upload_repository(c, &id)?.ok_or_else(|| Error::NotFound(Missing::Upload(id.clone())))?;
                link(c, repo, &digest, size)?;
                c.prepare_cached("DELETE FROM uploads WHERE id = ?1")
                    .and_then(|mut s| s.execute([id.as_str()]))
                    .map_err(backend)?;
                Ok(())
            })
            .await
    }

    async fn delete_upload(&self, id: &UploadId) -> Result<bool> {
        if self.fresh().remove(id).is_some() {
            return Ok(true);
        }
        let id = id.clone();
        self.writer
            .write(move |c| {
                c.prepare_cached("DELETE FROM uploads WHERE id = ?1")
                    .and_then(|mut s| s.execute([id.as_str()]))
                    .map(|n| n > 0)
                    .map_err(backend)
            })
            .await
    }

    async fn stale_uploads(&self, before_ms: i64, limit: usize) -> Result<Vec<UploadId>> {
        self.fresh().retain(|_, (s, _)| s.created_at >= before_ms);
        self.readers
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached("SELECT id FROM uploads WHERE updated_at < ?1 ORDER BY updated_at LIMIT ?2")
                    .map_err(backend)?;
                let ids = stmt
                    .query_map(params![before_ms, i64::try_from(limit).unwrap_or(i64::MAX)], |r| r.get::<_, String>(0))
                    .map_err(backend)?;
                ids.map(|id| UploadId::parse(&id.map_err(backend)?).map_err(|_| corrupt("upload id"))).collect()
            })
            .await
    }
}

/// An upload session with its repository's key.
const UPLOAD_SQL: &str = r#"SELECT r.registry, r.name, u."offset", u.hash_state, u.created_at FROM uploads u
    JOIN repositories r ON r.id = u.repository_id WHERE u.id = ?1"#;

/// The repository id of a stored upload session.
pub(crate) fn upload_repository(c: &Connection, id: &UploadId) -> Result<Option<i64>> {
    c.prepare_cached("SELECT repository_id FROM uploads WHERE id = ?1")
        .and_then(|mut s| s.query_row([id.as_str()], |r| r.get(0)).optional())
        .map_err(backend)
}

fn put_manifest(c: &Connection, m: &NewManifest, create: CreateRepo) -> Result<PutOutcome> {
    let Some(repo) = repo_id(c, &m.repository)? else {
        // A new repository holds nothing, so every reference is missing; only a manifest that
        // references nothing may create it.
        let missing: Vec<Digest> = m.blobs.iter().chain(&m.children).cloned().collect();
        if !missing.is_empty() {
            return Ok(PutOutcome::MissingReferences(missing));
        }
        ensure_repo(c, &m.repository, create)?;
        return put_manifest(c, m, create);
    };
    let mut missing = Vec::new();
    for (targets, sql) in [
        (&m.blobs, "SELECT 1 FROM repository_blobs WHERE repository_id = ?1 AND digest = ?2"),
        (&m.children, "SELECT 1 FROM manifests WHERE repository_id = ?1 AND digest = ?2"),
    ] {
        let mut stmt = c.prepare_cached(sql).map_err(backend)?;
        for d in targets {
            if !stmt.exists(params![repo, d.as_str()]).map_err(backend)? {
                missing.push(d.clone());
            }
        }
    }
    if !missing.is_empty() {
        return Ok(PutOutcome::MissingReferences(missing));
    }
    if let Some(tag) = &m.tag {
        // Decided inside the write transaction, so concurrent pushes cannot both move the tag.
        let row: Option<(String, String, String)> = c
            .prepare_cached(
                "SELECT r.tag_mutability, r.tag_mutability_exclusions, t.digest FROM repositories r
                 JOIN tags t ON t.repository_id = r.id AND t.name = ?2 WHERE r.id = ?1",
            )
            .and_then(|mut s| {
                s.query_row(params![repo, tag.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional()
            })
            .map_err(backend)?;
        if let Some((mode, exclusions, existing)) = row
            && existing != m.digest.as_str()
            && tag_mutability(&mode, &exclusions)?.is_immutable(tag.as_str())
        {
            return Ok(PutOutcome::TagImmutable { existing: Digest::parse(&existing).map_err(|_| corrupt("digest"))? });
        }
    }
    let now = now_ms();
    let inserted = c
        .prepare_cached(
            "INSERT INTO manifests (repository_id, digest, media_type, artifact_type, subject, annotations, size, payload, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (repository_id, digest) DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                repo,
                m.digest.as_str(),
                m.media_type,
                m.artifact_type,
                m.subject.as_ref().map(Digest::as_str),
                m.annotations,
                i64::try_from(m.payload.len()).unwrap_or(i64::MAX),
                m.payload,
                now
            ])
        })
        .map_err(backend)?
        == 1;
    if inserted {
        let mut stmt = c
            .prepare_cached(
                "INSERT INTO manifest_references (repository_id, manifest_digest, target, kind)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            )
            .map_err(backend)?;
        for (targets, kind) in [(&m.blobs, 0i64), (&m.children, 1)] {
            for d in targets {
                stmt.execute(params![repo, m.digest.as_str(), d.as_str(), kind]).map_err(backend)?;
            }
        }
    }
    if let Some(tag) = &m.tag {
        c.prepare_cached(
            "INSERT INTO tags (repository_id, name, digest, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (repository_id, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at",
        )
        .and_then(|mut s| s.execute(params![repo, tag.as_str(), m.digest.as_str(), now]))
        .map_err(backend)?;
    }
    Ok(PutOutcome::Stored)
}

/// An image as ECR lists it: the manifest with its tags and the bytes of its blobs.
macro_rules! image_select {
    () => {
        "SELECT m.digest, m.media_type, m.artifact_type, m.created_at, m.last_pulled_at,
            (SELECT group_concat(t.name, char(10) ORDER BY t.name) FROM tags t
               WHERE t.repository_id = m.repository_id AND t.digest = m.digest),
            (SELECT coalesce(sum(b.size), 0) FROM manifest_references r JOIN blobs b ON b.digest = r.target
               WHERE r.repository_id = m.repository_id AND r.manifest_digest = m.digest AND r.kind = 0)
        FROM manifests m"
    };
}

/// One image of repository `?1` by digest `?2`: an equality on the primary key, so it costs
/// the same in a repository of ten images as in one of a hundred thousand.
const IMAGE_SQL: &str = concat!(image_select!(), " WHERE m.repository_id = ?1 AND m.digest = ?2");

/// Images of repository `?1` after digest `?2`, with `?3` choosing tagged (1), untagged (2) or
/// any (0), at most `?4`: a range of the primary key.
const IMAGES_SQL: &str = concat!(
    image_select!(),
    " WHERE m.repository_id = ?1 AND m.digest > ?2
      AND (?3 = 0
           OR (?3 = 1 AND EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = m.repository_id AND t.digest = m.digest))
           OR (?3 = 2 AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = m.repository_id AND t.digest = m.digest)))
    ORDER BY m.digest LIMIT ?4"
);

type RawImage = (String, String, Option<String>, i64, Option<i64>, Option<String>, i64);

fn raw_image(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawImage> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
}

fn image_record(
    (digest, media_type, artifact_type, pushed_at, last_pulled_at, tags, size): RawImage,
) -> Result<ImageRecord> {
    let tags = tags
        .as_deref()
        .map(|t| t.split('\n').map(|x| Tag::parse(x).map_err(|_| corrupt("tag"))).collect::<Result<Vec<_>>>())
        .transpose()?
        .unwrap_or_default();
    Ok(ImageRecord {
        digest: Digest::parse(&digest).map_err(|_| corrupt("digest"))?,
        media_type,
        artifact_type,
        size: to_u64(size),
        pushed_at,
        last_pulled_at,
        tags,
    })
}

fn image(c: &Connection, repo: i64, digest: &Digest) -> Result<Option<ImageRecord>> {
    c.prepare_cached(IMAGE_SQL)
        .and_then(|mut s| s.query_row(params![repo, digest.as_str()], raw_image).optional())
        .map_err(backend)?
        .map(image_record)
        .transpose()
}

fn images(c: &Connection, repo: i64, status: TagStatus, after: &str, limit: i64) -> Result<Vec<ImageRecord>> {
    let status = match status {
        TagStatus::Any => 0,
        TagStatus::Tagged => 1,
        TagStatus::Untagged => 2,
    };
    let mut stmt = c.prepare_cached(IMAGES_SQL).map_err(backend)?;
    let rows = stmt.query_map(params![repo, after, status, limit], raw_image).map_err(backend)?;
    rows.map(|row| image_record(row.map_err(backend)?)).collect()
}

/// A manifest by tag.
/// A manifest by tag or digest, in one read.
fn resolve(c: &Connection, repo: &RepositoryKey, reference: &Reference) -> Result<Option<ManifestRecord>> {
    let (sql, key) = match reference {
        Reference::Tag(t) => (RESOLVE_TAG_SQL, t.as_str()),
        Reference::Digest(d) => (RESOLVE_DIGEST_SQL, d.as_str()),
    };
    let row = c
        .prepare_cached(sql)
        .and_then(|mut s| {
            s.query_row([repo.registry.as_str(), repo.name.as_str(), key], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Vec<u8>>(2)?))
            })
            .optional()
        })
        .map_err(backend)?;
    row.map(|(digest, media_type, payload)| {
        Ok(ManifestRecord { digest: Digest::parse(&digest).map_err(|_| corrupt("digest"))?, media_type, payload })
    })
    .transpose()
}

const RESOLVE_TAG_SQL: &str = "SELECT m.digest, m.media_type, m.payload FROM repositories r
    JOIN tags t ON t.repository_id = r.id
    JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.digest
    WHERE r.registry = ?1 AND r.name = ?2 AND t.name = ?3";

/// A manifest by digest.
const RESOLVE_DIGEST_SQL: &str = "SELECT m.digest, m.media_type, m.payload FROM repositories r
    JOIN manifests m ON m.repository_id = r.id WHERE r.registry = ?1 AND r.name = ?2 AND m.digest = ?3";

#[async_trait]
impl ImageMeta for SqliteMeta {
    async fn record_pulls(&self, pulls: &[(RepositoryKey, Digest, i64)]) -> Result<()> {
        let pulls = pulls.to_vec();
        self.writer
            .write_lazy(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "UPDATE manifests SET last_pulled_at = max(coalesce(last_pulled_at, 0), ?3)
                         WHERE repository_id = (SELECT id FROM repositories WHERE registry = ?1 AND name = ?2)
                         AND digest = ?4",
                    )
                    .map_err(backend)?;
                for (repo, digest, at) in &pulls {
                    stmt.execute(params![repo.registry.as_str(), repo.name.as_str(), at, digest.as_str()])
                        .map_err(backend)?;
                }
                Ok(())
            })
            .await
    }

    async fn list_images(
        &self,
        repo: &RepositoryKey,
        status: TagStatus,
        page: &PageRequest,
    ) -> Result<Page<ImageRecord>> {
        let (repo, page) = (repo.clone(), page.clone());
        self.readers
            .read(move |c| {
                let id = repo_id(c, &repo)?.ok_or_else(|| Error::no_repository(&repo))?;
                let items = images(c, id, status, page.after.as_deref().unwrap_or(""), sql_limit(page.limit))?;
                Ok(page_of(items, page.limit, |i| i.digest.to_string()))
            })
            .await
    }

    async fn get_image(&self, repo: &RepositoryKey, digest: &Digest) -> Result<Option<ImageRecord>> {
        let (repo, digest) = (repo.clone(), digest.clone());
        self.readers
            .read(move |c| {
                let Some(id) = repo_id(c, &repo)? else { return Ok(None) };
                image(c, id, &digest)
            })
            .await
    }

    async fn put_manifest(&self, m: &NewManifest, create: CreateRepo) -> Result<PutOutcome> {
        let m = m.clone();
        self.writer.write(move |c| put_manifest(c, &m, create)).await
    }

    async fn resolve(&self, repo: &RepositoryKey, reference: &Reference) -> Result<Option<ManifestRecord>> {
        let (repo, reference) = (repo.clone(), reference.clone());
        self.readers.read(move |c| resolve(c, &repo, &reference)).await
    }

    async fn resolve_many(
        &self,
        repo: &RepositoryKey,
        references: &[Reference],
    ) -> Result<Vec<Option<ManifestRecord>>> {
        let (repo, references) = (repo.clone(), references.to_vec());
        self.readers.read(move |c| references.iter().map(|r| resolve(c, &repo, r)).collect()).await
    }

    async fn delete_manifest(&self, repo: &RepositoryKey, digest: &Digest) -> Result<bool> {
        self.delete_in_repository(
            "DELETE FROM manifests WHERE digest = ?1
             AND repository_id = (SELECT id FROM repositories WHERE registry = ?2 AND name = ?3)",
            digest.as_str(),
            repo,
        )
        .await
    }

    async fn delete_tag(&self, repo: &RepositoryKey, tag: &Tag, drop_untagged: bool) -> Result<Option<Digest>> {
        let (repo, tag) = (repo.clone(), tag.clone());
        self.writer
            .write(move |c| {
                let Some(id) = repo_id(c, &repo)? else { return Ok(None) };
                let digest: Option<String> = c
                    .prepare_cached("DELETE FROM tags WHERE repository_id = ?1 AND name = ?2 RETURNING digest")
                    .and_then(|mut s| s.query_row(params![id, tag.as_str()], |r| r.get(0)).optional())
                    .map_err(backend)?;
                let Some(digest) = digest else { return Ok(None) };
                if drop_untagged {
                    c.prepare_cached(
                        "DELETE FROM manifests WHERE repository_id = ?1 AND digest = ?2
                         AND NOT EXISTS (SELECT 1 FROM tags WHERE repository_id = ?1 AND digest = ?2)",
                    )
                    .and_then(|mut s| s.execute(params![id, digest]))
                    .map_err(backend)?;
                }
                Digest::parse(&digest).map(Some).map_err(|_| corrupt("digest"))
            })
            .await
    }

    async fn list_tags(&self, repo: &RepositoryKey, page: &PageRequest) -> Result<Page<Tag>> {
        let (repo, page) = (repo.clone(), page.clone());
        self.readers
            .read(move |c| {
                let id = repo_id(c, &repo)?.ok_or_else(|| Error::no_repository(&repo))?;
                names(
                    c,
                    "SELECT name FROM tags WHERE repository_id = ?1 AND name > ?2 ORDER BY name LIMIT ?3",
                    &[&id],
                    &page,
                    |t| Tag::parse(t).ok(),
                    "tag",
                )
            })
            .await
    }

    async fn referrers(
        &self,
        repo: &RepositoryKey,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>> {
        let (repo, subject, artifact_type) = (repo.clone(), subject.clone(), artifact_type.map(str::to_owned));
        self.readers
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations FROM manifests m
                         JOIN repositories r ON r.id = m.repository_id
                         WHERE r.registry = ?1 AND r.name = ?2 AND m.subject = ?3
                           AND (?4 IS NULL OR m.artifact_type = ?4)
                         ORDER BY m.digest",
                    )
                    .map_err(backend)?;
                let rows = stmt
                    .query_map(
                        params![repo.registry.as_str(), repo.name.as_str(), subject.as_str(), artifact_type],
                        |r| {
                            Ok((
                                r.get::<_, String>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, i64>(2)?,
                                r.get::<_, Option<String>>(3)?,
                                r.get::<_, Option<String>>(4)?,
                            ))
                        },
                    )
                    .map_err(backend)?;
                rows.map(|row| {
                    let (digest, media_type, size, artifact_type, annotations) = row.map_err(backend)?;
                    Ok(Referrer {
                        digest: Digest::parse(&digest).map_err(|_| corrupt("digest"))?,
                        media_type,
                        size: to_u64(size),
                        artifact_type,
                        annotations,
                    })
                })
                .collect()
            })
            .await
    }
}

#[async_trait]
impl MaintenanceMeta for SqliteMeta {
    async fn reclaim(&self, max_pages: u32) -> Result<u64> {
        self.writer
            .bare(move |c| {
                let free = |c: &Connection| -> Result<i64> {
                    c.query_row("PRAGMA freelist_count", [], |r| r.get(0)).map_err(backend)
                };
                let before = free(c)?;
                // `incremental_vacuum(0)` would take the whole free list: 0 asks for nothing.
                if before > 0 && max_pages > 0 {
                    // Moves pages from the end of the file into free ones and cuts the end off.
                    let mut stmt = c.prepare(&format!("PRAGMA incremental_vacuum({max_pages})")).map_err(backend)?;
                    let mut rows = stmt.query([]).map_err(backend)?;
                    while rows.next().map_err(backend)?.is_some() {}
                }
                let after = free(c)?;
                // In WAL mode the main file shrinks when the log is checkpointed; a reader still
                // on an old snapshot only postpones that to a later call.
                c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).map_err(backend)?;
                Ok(to_u64(before - after))
            })
            .await
    }

    async fn restore_pushed_at(&self, repo: &RepositoryKey, digest: &Digest, pushed_at_ms: i64) -> Result<bool> {
        let (repo, digest) = (repo.clone(), digest.clone());
        self.writer
            .write(move |c| {
                c.prepare_cached(RESTORE_PUSHED_AT_SQL)
                    .and_then(|mut s| {
                        s.execute(params![pushed_at_ms, repo.registry.as_str(), repo.name.as_str(), digest.as_str()])
                    })
                    .map(|n| n > 0)
                    .map_err(backend)
            })
            .await
    }

    async fn restore_repository_created_at(&self, repo: &RepositoryKey, created_at_ms: i64) -> Result<bool> {
        let repo = repo.clone();
        self.writer
            .write(move |c| {
                c.prepare_cached("UPDATE repositories SET created_at = ?1 WHERE registry = ?2 AND name = ?3")
                    .and_then(|mut s| s.execute(params![created_at_ms, repo.registry.as_str(), repo.name.as_str()]))
                    .map(|n| n > 0)
                    .map_err(backend)
            })
            .await
    }
}

/// Sets an image's push time (the manifest's `created_at`).
const RESTORE_PUSHED_AT_SQL: &str = "UPDATE manifests SET created_at = ?1
    WHERE repository_id = (SELECT id FROM repositories WHERE registry = ?2 AND name = ?3) AND digest = ?4";

/// One process serves a data directory, so every lease is its own.
#[async_trait]
impl berth_meta::LeaseMeta for SqliteMeta {
    async fn acquire_lease(&self, _name: &str, _holder: &str, _ttl_ms: i64) -> Result<bool> {
        Ok(true)
    }

    async fn release_lease(&self, _name: &str, _holder: &str) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
