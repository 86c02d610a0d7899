//! SQLite metadata store for the embedded mode.
//!
//! One writer connection on its own thread with group commit (`writer.rs`), a small pool of
//! read-only connections used from the blocking pool, WAL journal, `synchronous = FULL` so a
//! commit survives power loss. All SQL of this backend lives in this crate; `rusqlite` never
//! appears in a public signature.

mod gc;
mod identity;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use berth_meta::{
    BlobIndex, CreateRepo, DeleteRepository, Error, ImageMeta, ImageRecord, ManifestRecord, NewManifest, PutOutcome,
    Referrer, RepoMeta, RepositoryRecord, RepositorySettings, RepositorySettingsChange, Result, TagStatus, UploadMeta,
    UploadSession,
};
use berth_types::{Digest, Page, PageRequest, Reference, RepositoryName, Tag, UploadId, now_ms};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("schema.sql"),
    include_str!("schema2.sql"),
    include_str!("schema3.sql"),
    include_str!("schema4.sql"),
    include_str!("schema5.sql"),
];

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

fn backend(e: rusqlite::Error) -> Error {
    match &e {
        rusqlite::Error::QueryReturnedNoRows => Error::NotFound,
        rusqlite::Error::SqliteFailure(f, msg)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            Error::Conflict(msg.clone().unwrap_or_else(|| e.to_string()))
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

impl SqliteMeta {
    /// Opens (creating and migrating if needed) the database file at `path`.
    ///
    /// # Errors
    /// When the file cannot be opened or migrated.
    pub async fn open(path: &Path) -> Result<Self> {
        let path = path.to_owned();
        let conn = tokio::task::spawn_blocking({
            let path = path.clone();
            move || -> Result<Connection> {
                let conn =
                    open(&path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE).map_err(backend)?;
                let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(backend)?;
                if !mode.eq_ignore_ascii_case("wal") {
                    return Err(Error::Backend(format!("cannot use WAL journal (got {mode})").into()));
                }
                migrate(&conn)?;
                Ok(conn)
            }
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

    /// Runs a `DELETE` whose parameters are a key (`?1`) and a repository name (`?2`); `true`
    /// when it removed something.
    async fn delete_in_repository(&self, sql: &'static str, key: &str, repo: &RepositoryName) -> Result<bool> {
        let (key, repo) = (key.to_owned(), repo.clone());
        self.writer
            .write(move |c| {
                c.prepare_cached(sql)
                    .and_then(|mut s| s.execute([key.as_str(), repo.as_str()]))
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

fn migrate(conn: &Connection) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(backend)?;
    let done = usize::try_from(version).unwrap_or(0);
    if done > MIGRATIONS.len() {
        return Err(Error::Backend("database schema is newer than this berth".into()));
    }
    if done == MIGRATIONS.len() {
        return Ok(());
    }
    let mut script = String::from("BEGIN IMMEDIATE;\n");
    for sql in &MIGRATIONS[done..] {
        script.push_str(sql);
        script.push('\n');
    }
    script.push_str(&format!("PRAGMA user_version = {};\nCOMMIT;", MIGRATIONS.len()));
    conn.execute_batch(&script).map_err(backend)
}

fn repo_id(conn: &Connection, name: &RepositoryName) -> Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM repositories WHERE name = ?1")
        .and_then(|mut s| s.query_row([name.as_str()], |r| r.get(0)).optional())
        .map_err(backend)
}

/// The repository's id, creating it when allowed; `NotFound` otherwise.
fn ensure_repo(conn: &Connection, name: &RepositoryName, create: CreateRepo) -> Result<i64> {
    if let Some(id) = repo_id(conn, name)? {
        return Ok(id);
    }
    if create == CreateRepo::No {
        return Err(Error::NotFound);
    }
    conn.prepare_cached("INSERT INTO repositories (name, created_at) VALUES (?1, ?2) RETURNING id")
        .and_then(|mut s| s.query_row(params![name.as_str(), now_ms()], |r| r.get(0)))
        .map_err(backend)
}

const REPOSITORY_COLUMNS: &str =
    "name, created_at, tag_mutability, scan_on_push, encryption_type, kms_key, owner, tag_mutability_exclusions";

fn repository_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, i64, RepositorySettings)> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        RepositorySettings {
            tag_mutability: r.get(2)?,
            scan_on_push: r.get(3)?,
            encryption_type: r.get(4)?,
            kms_key: r.get(5)?,
            owner: r.get(6)?,
            tag_mutability_exclusions: split_lines(&r.get::<_, String>(7)?),
        },
    ))
}

fn to_record((name, created_at, settings): (String, i64, RepositorySettings)) -> Result<RepositoryRecord> {
    Ok(RepositoryRecord {
        name: RepositoryName::parse(&name).map_err(|_| corrupt("repository name"))?,
        created_at,
        settings,
    })
}

fn get_repository(conn: &Connection, name: &RepositoryName) -> Result<Option<RepositoryRecord>> {
    conn.prepare_cached(&format!("SELECT {REPOSITORY_COLUMNS} FROM repositories WHERE name = ?1"))
        .and_then(|mut s| s.query_row([name.as_str()], repository_record).optional())
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

fn blob_size(conn: &Connection, repo: &RepositoryName, digest: &Digest) -> Result<Option<u64>> {
    conn.prepare_cached(
        "SELECT b.size FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
         JOIN blobs b ON b.digest = rb.digest WHERE r.name = ?1 AND rb.digest = ?2",
    )
    .and_then(|mut s| s.query_row([repo.as_str(), digest.as_str()], |r| r.get::<_, i64>(0)).optional())
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

#[async_trait]
impl RepoMeta for SqliteMeta {
    async fn create_repository(&self, name: &RepositoryName) -> Result<bool> {
        let name = name.clone();
        self.writer
            .write(move |c| {
                c.prepare_cached(
                    "INSERT INTO repositories (name, created_at) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                )
                .and_then(|mut s| s.execute(params![name.as_str(), now_ms()]))
                .map(|n| n == 1)
                .map_err(backend)
            })
            .await
    }

    async fn create_repository_with(
        &self,
        name: &RepositoryName,
        settings: &RepositorySettings,
    ) -> Result<RepositoryRecord> {
        let (name, settings) = (name.clone(), settings.clone());
        self.writer
            .write(move |c| {
                c.prepare_cached(
                    "INSERT INTO repositories
                     (name, created_at, tag_mutability, scan_on_push, encryption_type, kms_key, owner,
                      tag_mutability_exclusions)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        name.as_str(),
                        now_ms(),
                        settings.tag_mutability,
                        settings.scan_on_push,
                        settings.encryption_type,
                        settings.kms_key,
                        settings.owner,
                        settings.tag_mutability_exclusions.join("\n")
                    ])
                })
                .map_err(backend)?;
                get_repository(c, &name)?.ok_or(Error::NotFound)
            })
            .await
    }

    async fn get_repository(&self, name: &RepositoryName) -> Result<Option<RepositoryRecord>> {
        let name = name.clone();
        self.readers.read(move |c| get_repository(c, &name)).await
    }

    async fn list_repository_records(&self, page: &PageRequest) -> Result<Page<RepositoryRecord>> {
        let page = page.clone();
        self.readers
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(&format!(
                        "SELECT {REPOSITORY_COLUMNS} FROM repositories WHERE name > ?1 ORDER BY name LIMIT ?2"
                    ))
                    .map_err(backend)?;
                let rows = stmt
                    .query_map(params![page.after.as_deref().unwrap_or(""), sql_limit(page.limit)], repository_record)
                    .map_err(backend)?;
                let items = rows.map(|r| to_record(r.map_err(backend)?)).collect::<Result<Vec<_>>>()?;
                Ok(page_of(items, page.limit, |r| r.name.to_string()))
            })
            .await
    }

    async fn update_repository(
        &self,
        name: &RepositoryName,
        change: &RepositorySettingsChange,
    ) -> Result<Option<RepositoryRecord>> {
        let (name, change) = (name.clone(), change.clone());
        self.writer
            .write(move |c| {
                let n = c
                    .prepare_cached(
                        "UPDATE repositories SET tag_mutability = coalesce(?2, tag_mutability),
                         scan_on_push = coalesce(?3, scan_on_push),
                         tag_mutability_exclusions = coalesce(?4, tag_mutability_exclusions) WHERE name = ?1",
                    )
                    .and_then(|mut s| {
                        let exclusions = change.tag_mutability_exclusions.as_ref().map(|e| e.join("\n"));
                        s.execute(params![name.as_str(), change.tag_mutability, change.scan_on_push, exclusions])
                    })
                    .map_err(backend)?;
                if n == 0 { Ok(None) } else { get_repository(c, &name) }
            })
            .await
    }

    async fn update_repository_tags(
        &self,
        name: &RepositoryName,
        set: &[(String, String)],
        remove: &[String],
    ) -> Result<Option<Vec<(String, String)>>> {
        let read_only = set.is_empty() && remove.is_empty();
        let (name, set, remove) = (name.clone(), set.to_vec(), remove.to_vec());
        let work = move |c: &Connection| -> Result<Option<Vec<(String, String)>>> {
            let Some(id) = repo_id(c, &name)? else { return Ok(None) };
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

    async fn delete_repository(&self, name: &RepositoryName, force: bool) -> Result<DeleteRepository> {
        let name = name.clone();
        self.writer
            .write(move |c| {
                let Some(record) = get_repository(c, &name)? else { return Ok(DeleteRepository::NotFound) };
                let images: i64 = c
                    .prepare_cached(
                        "SELECT count(*) FROM manifests WHERE repository_id = (SELECT id FROM repositories WHERE name = ?1)",
                    )
                    .and_then(|mut s| s.query_row([name.as_str()], |r| r.get(0)))
                    .map_err(backend)?;
                if images > 0 && !force {
                    return Ok(DeleteRepository::NotEmpty);
                }
                // Tags, references, manifests, blob links and uploads go with it (ON DELETE CASCADE).
                c.prepare_cached("DELETE FROM repositories WHERE name = ?1")
                    .and_then(|mut s| s.execute([name.as_str()]))
                    .map_err(backend)?;
                Ok(DeleteRepository::Deleted(record))
            })
            .await
    }

    async fn repository_exists(&self, name: &RepositoryName) -> Result<bool> {
        let name = name.clone();
        self.readers.read(move |c| Ok(repo_id(c, &name)?.is_some())).await
    }

    async fn list_repositories(&self, page: &PageRequest) -> Result<Page<RepositoryName>> {
        let page = page.clone();
        self.readers
            .read(move |c| {
                names(
                    c,
                    "SELECT name FROM repositories WHERE name > ?1 ORDER BY name LIMIT ?2",
                    &[],
                    &page,
                    |n| RepositoryName::parse(n).ok(),
                    "repository name",
                )
            })
            .await
    }
}

#[async_trait]
impl BlobIndex for SqliteMeta {
    async fn blob_in_repository(&self, repo: &RepositoryName, digest: &Digest) -> Result<Option<u64>> {
        let (repo, digest) = (repo.clone(), digest.clone());
        self.readers.read(move |c| blob_size(c, &repo, &digest)).await
    }

    async fn link_blob(&self, repo: &RepositoryName, digest: &Digest, size: u64, create: CreateRepo) -> Result<()> {
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
        from: &RepositoryName,
        to: &RepositoryName,
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

    async fn unlink_blob(&self, repo: &RepositoryName, digest: &Digest) -> Result<bool> {
        self.delete_in_repository(
            "DELETE FROM repository_blobs WHERE digest = ?1
             AND repository_id = (SELECT id FROM repositories WHERE name = ?2)",
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
        let id = id.clone();
        self.readers
            .read(move |c| {
                let row = c
                    .prepare_cached(
                        r#"SELECT r.name, u."offset", u.hash_state, u.created_at FROM uploads u
                           JOIN repositories r ON r.id = u.repository_id WHERE u.id = ?1"#,
                    )
                    .and_then(|mut s| {
                        s.query_row([id.as_str()], |r| {
                            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, Vec<u8>>(2)?, r.get(3)?))
                        })
                        .optional()
                    })
                    .map_err(backend)?;
                row.map(|(name, offset, hash_state, created_at)| {
                    Ok(UploadSession {
                        id: id.clone(),
                        repository: RepositoryName::parse(&name).map_err(|_| corrupt("repository name"))?,
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
                if n == 1 { Ok(()) } else { Err(Error::Conflict("upload moved concurrently".into())) }
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
                let repo: i64 = c
                    .prepare_cached("SELECT repository_id FROM uploads WHERE id = ?1")
                    .and_then(|mut s| s.query_row([id.as_str()], |r| r.get(0)))
                    .map_err(backend)?;
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
        if let Some((tag_mutability, exclusions, existing)) = row
            && existing != m.digest.as_str()
            && (RepositorySettings {
                tag_mutability,
                tag_mutability_exclusions: split_lines(&exclusions),
                ..RepositorySettings::default()
            })
            .tag_is_immutable(tag.as_str())
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

/// Images of repository `?1` after digest `?2`, with `?3` choosing tagged (1), untagged (2) or
/// any (0), at most `?4`; or, with `?5` set, only that digest.
const IMAGES_SQL: &str = "
    SELECT m.digest, m.media_type, m.artifact_type, m.created_at, m.last_pulled_at,
        (SELECT group_concat(t.name, char(10) ORDER BY t.name) FROM tags t
           WHERE t.repository_id = m.repository_id AND t.digest = m.digest),
        (SELECT coalesce(sum(b.size), 0) FROM manifest_references r JOIN blobs b ON b.digest = r.target
           WHERE r.repository_id = m.repository_id AND r.manifest_digest = m.digest AND r.kind = 0)
    FROM manifests m
    WHERE m.repository_id = ?1 AND m.digest > ?2 AND (?5 IS NULL OR m.digest = ?5)
      AND (?3 = 0
           OR (?3 = 1 AND EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = m.repository_id AND t.digest = m.digest))
           OR (?3 = 2 AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = m.repository_id AND t.digest = m.digest)))
    ORDER BY m.digest LIMIT ?4";

fn images(
    c: &Connection,
    repo: i64,
    status: TagStatus,
    after: &str,
    limit: i64,
    only: Option<&str>,
) -> Result<Vec<ImageRecord>> {
    let status = match status {
        TagStatus::Any => 0,
        TagStatus::Tagged => 1,
        TagStatus::Untagged => 2,
    };
    let mut stmt = c.prepare_cached(IMAGES_SQL).map_err(backend)?;
    let rows = stmt
        .query_map(params![repo, after, status, limit, only], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, i64>(6)?,
            ))
        })
        .map_err(backend)?;
    rows.map(|row| {
        let (digest, media_type, artifact_type, pushed_at, last_pulled_at, tags, size) = row.map_err(backend)?;
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
    })
    .collect()
}

#[async_trait]
impl ImageMeta for SqliteMeta {
    async fn record_pulls(&self, pulls: &[(RepositoryName, Digest, i64)]) -> Result<()> {
        let pulls = pulls.to_vec();
        self.writer
            .write_lazy(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "UPDATE manifests SET last_pulled_at = max(coalesce(last_pulled_at, 0), ?3)
                         WHERE repository_id = (SELECT id FROM repositories WHERE name = ?1) AND digest = ?2",
                    )
                    .map_err(backend)?;
                for (repo, digest, at) in &pulls {
                    stmt.execute(params![repo.as_str(), digest.as_str(), at]).map_err(backend)?;
                }
                Ok(())
            })
            .await
    }

    async fn list_images(
        &self,
        repo: &RepositoryName,
        status: TagStatus,
        page: &PageRequest,
    ) -> Result<Page<ImageRecord>> {
        let (repo, page) = (repo.clone(), page.clone());
        self.readers
            .read(move |c| {
                let id = repo_id(c, &repo)?.ok_or(Error::NotFound)?;
                let items = images(c, id, status, page.after.as_deref().unwrap_or(""), sql_limit(page.limit), None)?;
                Ok(page_of(items, page.limit, |i| i.digest.to_string()))
            })
            .await
    }

    async fn get_image(&self, repo: &RepositoryName, digest: &Digest) -> Result<Option<ImageRecord>> {
        let (repo, digest) = (repo.clone(), digest.clone());
        self.readers
            .read(move |c| {
                let Some(id) = repo_id(c, &repo)? else { return Ok(None) };
                Ok(images(c, id, TagStatus::Any, "", 1, Some(digest.as_str()))?.pop())
            })
            .await
    }

    async fn put_manifest(&self, m: &NewManifest, create: CreateRepo) -> Result<PutOutcome> {
        let m = m.clone();
        self.writer.write(move |c| put_manifest(c, &m, create)).await
    }

    async fn resolve(&self, repo: &RepositoryName, reference: &Reference) -> Result<Option<ManifestRecord>> {
        let (repo, reference) = (repo.clone(), reference.clone());
        self.readers
            .read(move |c| {
                let (sql, key) = match &reference {
                    Reference::Tag(t) => (
                        "SELECT m.digest, m.media_type, m.payload FROM tags t
                         JOIN repositories r ON r.id = t.repository_id
                         JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.digest
                         WHERE r.name = ?1 AND t.name = ?2",
                        t.as_str(),
                    ),
                    Reference::Digest(d) => (
                        "SELECT m.digest, m.media_type, m.payload FROM manifests m
                         JOIN repositories r ON r.id = m.repository_id WHERE r.name = ?1 AND m.digest = ?2",
                        d.as_str(),
                    ),
                };
                let row = c
                    .prepare_cached(sql)
                    .and_then(|mut s| {
                        s.query_row([repo.as_str(), key], |r| {
                            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Vec<u8>>(2)?))
                        })
                        .optional()
                    })
                    .map_err(backend)?;
                row.map(|(digest, media_type, payload)| {
                    Ok(ManifestRecord {
                        digest: Digest::parse(&digest).map_err(|_| corrupt("digest"))?,
                        media_type,
                        payload,
                    })
                })
                .transpose()
            })
            .await
    }

    async fn delete_manifest(&self, repo: &RepositoryName, digest: &Digest) -> Result<bool> {
        self.delete_in_repository(
            "DELETE FROM manifests WHERE digest = ?1
             AND repository_id = (SELECT id FROM repositories WHERE name = ?2)",
            digest.as_str(),
            repo,
        )
        .await
    }

    async fn delete_tag(&self, repo: &RepositoryName, tag: &Tag, drop_untagged: bool) -> Result<Option<Digest>> {
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

    async fn list_tags(&self, repo: &RepositoryName, page: &PageRequest) -> Result<Page<Tag>> {
        let (repo, page) = (repo.clone(), page.clone());
        self.readers
            .read(move |c| {
                let id = repo_id(c, &repo)?.ok_or(Error::NotFound)?;
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
        repo: &RepositoryName,
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
                         WHERE r.name = ?1 AND m.subject = ?2 AND (?3 IS NULL OR m.artifact_type = ?3)
                         ORDER BY m.digest",
                    )
                    .map_err(backend)?;
                let rows = stmt
                    .query_map(params![repo.as_str(), subject.as_str(), artifact_type], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, Option<String>>(3)?,
                            r.get::<_, Option<String>>(4)?,
                        ))
                    })
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

#[cfg(test)]
mod tests {
    use berth_meta::RepoMeta;

    #[tokio::test(flavor = "multi_thread")]
    async fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::SqliteMeta::open(&dir.path().join("meta.db")).await.unwrap();
        berth_meta::testsuite::run(&store).await;
        store.close().await;
        // Reopening runs no migration twice and keeps the data.
        let store = super::SqliteMeta::open(&dir.path().join("meta.db")).await.unwrap();
        assert!(store.repository_exists(&berth_types::RepositoryName::parse("team/app").unwrap()).await.unwrap());
    }

    /// Many concurrent writers share commits, and every one gets its own answer.
    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_writes_each_get_their_result() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(super::SqliteMeta::open(&dir.path().join("meta.db")).await.unwrap());
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let store = std::sync::Arc::clone(&store);
                tokio::spawn(async move {
                    let name = berth_types::RepositoryName::parse(&format!("r/{}", i % 50)).unwrap();
                    store.create_repository(&name).await.unwrap()
                })
            })
            .collect();
        let mut created = 0;
        for t in tasks {
            created += usize::from(t.await.unwrap());
        }
        assert_eq!(created, 50, "exactly one creator per name");
        let page = berth_types::PageRequest { limit: None, after: None };
        assert_eq!(store.list_repositories(&page).await.unwrap().items.len(), 50);
    }
}
