//! PostgreSQL metadata store for scale-out: several Berth nodes share one database.
//!
//! It implements every role trait of `berth_meta` with the behaviour of the SQLite store
//! (`berth_meta_sqlite`) and passes the same conformance suites. All SQL of this backend lives in
//! this crate; `tokio_postgres` never appears in a public signature.
//!
//! # Client library
//!
//! `tokio-postgres` with the `deadpool-postgres` pool, not `sqlx`: the dependency tree is
//! smaller (no macros, no compile-time database, no second SQLite binding beside the SQLite
//! store's `rusqlite`), every statement is prepared once per connection and then cached by the
//! pool's wrapper, and the pool waits a bounded time for a connection. Queries are plain SQL
//! strings; the conformance suites are what checks them.
//!
//! # Concurrency: why several nodes keep every invariant the single SQLite writer gives
//!
//! SQLite runs every write on one connection, one after another, so each write sees every
//! earlier one and decides on that. Here every write that reads before it writes runs in one
//! transaction at **SERIALIZABLE** isolation (`db::write`), and the whole transaction is run
//! again when the server reports a serialization failure (40001) or a deadlock (40P01), a
//! bounded number of times with random backoff. PostgreSQL's serializable snapshot isolation
//! guarantees that the serializable transactions that commit have the same effect as if they
//! had run one at a time in some order. Each argument made for the single writer ("the push and
//! the collection are serialized: whichever commits first, the other sees it") therefore holds
//! as written: for every pair of racing writes, the committed outcome is that of one of the two
//! serial orders, and a transaction whose reads a concurrent commit invalidated is aborted and
//! re-run on the new state instead of committing a decision made on the old one. The comments
//! at each write say which serial argument it relies on.
//!
//! Serializability covers only serializable transactions, so every write that takes part in a
//! decision is one. A few writes run at READ COMMITTED instead, each argued where it is:
//! `advance_upload` (a compare-and-swap on one row, one statement), `record_pulls` (a
//! monotonic maximum, one statement), the lease upserts (one statement each), and the job
//! queue's claims, renewals, retries and finishes (`jobs.rs`: one row lock each). No
//! serializable decision reads what they write, except the lease rows, which only the lease
//! statements touch, and the job rows, which a serializable enqueue reads only under a row
//! lock (`FOR UPDATE`), so it decides on their newest version or fails to serialize and runs
//! again.
//!
//! Reads that one statement answers run alone at READ COMMITTED: one statement sees one
//! snapshot, as a SQLite reader does.
//!
//! Serializable isolation aborts a transaction on a conflict it cannot rule out, and its locks
//! on index pages see conflicts between writes of different rows of one page. Two things keep
//! that rare where it would hurt. A push to a mutable tag does not read the tag (its old value
//! decides nothing), so concurrent pushes to one repository read nothing the others write. And
//! a write of a repository that is retried first queues behind the repository's other retries
//! on an advisory lock taken before its transaction starts (`db::Queue`), so contending writers
//! take turns instead of aborting each other again. Neither is needed for correctness.
//!
//! # Round trips
//!
//! Every statement is prepared once per connection. A push (`put_manifest`) is four round
//! trips: start, one statement that checks the repository, the references and the tag, one
//! statement that stores the manifest, its references (an `unnest` of arrays) and its tag,
//! commit. `resolve_many` and `record_pulls` are one statement whatever the batch's size, and
//! garbage collection checks and buries a whole batch of blobs in one statement.
//!
//! # Failures
//!
//! A lost connection, a pool or statement timeout, a cancelled statement, a server shutting
//! down, or a serialization failure that persists past the retries, is `Error::Unavailable`:
//! nothing was committed and the request may be retried (503 upstream). A command whose whole
//! run exceeds `PgOptions::operation_timeout` (a server that stopped answering) gives up the
//! same way and closes its connection. Unique violations are `Conflict`; what else fails is
//! `Backend`. A transaction commits whole or not at all.
//!
//! Connections are made without TLS: run the database on a network the nodes trust, or behind a
//! TLS-terminating proxy.

mod db;
mod error;
mod gc;
mod identity;
mod jobs;
mod migrate;
mod preview;
mod scan;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use berth_meta::{
    BlobIndex, CreateRepo, DeleteRepository, Error, ImageMeta, ImageRecord, LeaseMeta, MaintenanceMeta, ManifestRecord,
    Missing, NewManifest, PutOutcome, Referrer, RepoMeta, RepositoryRecord, RepositorySettings,
    RepositorySettingsChange, Result, TagStatus, UploadMeta, UploadSession,
};
use berth_types::{
    AccountId, Digest, Page, PageRequest, Reference, RepositoryKey, RepositoryName, Tag, TagMutability, UploadId,
    now_ms,
};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::Row;
use tokio_postgres::types::FromSql;

use crate::db::{Client, exec, one, row, rows};
pub use crate::error::OpenError;

/// Connection settings of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// Most connections this node holds open at once.
    pub max_connections: usize,
    /// How long connecting to the server may take.
    pub connect_timeout: Duration,
    /// The longest one statement may run on the server (set on every connection); a statement
    /// that runs longer is cancelled and its command answers `Unavailable`.
    pub statement_timeout: Duration,
    /// How long a command waits for a free connection when all are in use.
    pub pool_wait_timeout: Duration,
    /// The longest a whole command may take, waiting for a connection and its retries
    /// included; past it the command answers `Unavailable` and closes its connection.
    pub operation_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            max_connections: 16,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(15),
            pool_wait_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(30),
        }
    }
}

/// The metadata store on one PostgreSQL database, shared by every node of a cluster.
pub struct PgMeta {
    db: db::Db,
}

impl std::fmt::Debug for PgMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgMeta").field("pool", &self.db.pool.status()).finish_non_exhaustive()
    }
}

impl PgMeta {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`), runs
    /// the pending migrations and checks that the database serves `default_account`.
    ///
    /// The first node to open a database records its default account there; a node configured
    /// with another one is refused, since repositories without an owner belong to that account.
    /// Connections are made without TLS.
    ///
    /// # Errors
    /// One line that says what is wrong: the URL, an unreachable server, failed authentication,
    /// a missing database, another default account, a schema newer than this build, or a
    /// migration that failed.
    pub async fn open(url: &str, default_account: &AccountId, opts: PgOptions) -> Result<PgMeta, OpenError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| {
            OpenError::InvalidUrl(std::error::Error::source(&e).map_or_else(|| e.to_string(), ToString::to_string))
        })?;
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(OpenError::InvalidUrl(
                "sslmode=require: this berth connects without TLS (use a local network or a TLS-terminating proxy)"
                    .into(),
            ));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(opts.connect_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("berth");
        }
        // Every connection bounds its statements, and a session that sits in an open
        // transaction (a node that froze midway) is ended by the server, releasing its locks.
        let options = format!(
            "{} -c statement_timeout={} -c idle_in_transaction_session_timeout={}",
            config.get_options().unwrap_or(""),
            opts.statement_timeout.as_millis(),
            opts.operation_timeout.as_millis().max(opts.statement_timeout.as_millis()) * 2,
        );
        config.options(options.trim_start());
        // A server that vanished without closing its connections is noticed within about
        // this long instead of the system's default of hours.
        config.keepalives_idle(Duration::from_secs(30));
        config.tcp_user_timeout(opts.operation_timeout);
        let address = error::address(&config);

        let (mut client, connection) =
            config.connect(tokio_postgres::NoTls).await.map_err(|e| error::open_error(&e, &config))?;
        let task = tokio::spawn(connection);
        let migrated = migrate::migrate(&mut client, default_account, &address).await;
        drop(client);
        let _ = task.await;
        let applied = migrated?;
        if !applied.is_empty() {
            tracing::info!(%address, ?applied, "metadata schema migrated");
        }

        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(opts.max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(opts.pool_wait_timeout))
            .create_timeout(Some(opts.connect_timeout))
            .recycle_timeout(Some(opts.connect_timeout))
            .build()
            .map_err(|e| OpenError::Database { address, reason: e.to_string() })?;
        Ok(PgMeta { db: db::Db { pool, deadline: opts.operation_timeout, retries: AtomicU64::new(0) } })
    }

    /// Closes every connection; commands after this answer `Unavailable`.
    pub fn close(&self) {
        self.db.pool.close();
    }

    /// How many write transactions were run again since opening, after the server could not
    /// serialize them with concurrent ones (or chose them as a deadlock victim): a measure of
    /// write contention between nodes.
    pub fn retried_transactions(&self) -> u64 {
        self.db.retries.load(Ordering::Relaxed)
    }

    /// Runs reads (each statement alone, at READ COMMITTED).
    async fn read<T>(&self, f: impl AsyncFnOnce(&Client) -> Result<T>) -> Result<T> {
        db::read(&self.db, f).await
    }

    /// Runs a write that is one statement, alone, at READ COMMITTED: only those the crate
    /// documentation lists, each argued where it is.
    async fn single<T>(&self, f: impl AsyncFnOnce(&Client) -> Result<T>) -> Result<T> {
        db::read(&self.db, f).await
    }

    /// Runs a write transaction at SERIALIZABLE, retried on serialization failures.
    async fn write<T>(&self, f: impl AsyncFnOnce(&Client) -> Result<T> + Clone) -> Result<T> {
        db::write(&self.db, db::Isolation::Serializable, None, f).await
    }

    /// Runs a write transaction of one repository at SERIALIZABLE, retried on serialization
    /// failures; a retry queues behind the repository's other retried writes (`db::Queue`).
    async fn write_in<T>(&self, repo: &RepositoryKey, f: impl AsyncFnOnce(&Client) -> Result<T> + Clone) -> Result<T> {
        db::write(&self.db, db::Isolation::Serializable, Some(db::Queue::repository(repo)), f).await
    }

    /// Runs a write transaction that completes an upload session at SERIALIZABLE, as
    /// `write_in` on the session's repository: a retry queues behind the repository's other
    /// retried writes, the repository being looked up only then.
    async fn write_in_upload<T>(&self, id: &UploadId, f: impl AsyncFnOnce(&Client) -> Result<T> + Clone) -> Result<T> {
        let queue = async |c: &Client| {
            let found = row(
                c,
                "SELECT r.registry, r.name FROM uploads u JOIN repositories r ON r.id = u.repository_id WHERE u.id = $1",
                &[&id.as_str()],
            )
            .await?;
            found.map(|r| Ok(db::Queue::repository(&repository_key(get(&r, 0)?, get(&r, 1)?)?))).transpose()
        };
        db::write_queued_by(&self.db, db::Isolation::Serializable, queue, f).await
    }

    /// Runs a write transaction at READ COMMITTED, retried on deadlocks (see the crate
    /// documentation for which writes may).
    async fn write_read_committed<T>(&self, f: impl AsyncFnOnce(&Client) -> Result<T> + Clone) -> Result<T> {
        db::write(&self.db, db::Isolation::ReadCommitted, None, f).await
    }
}

fn corrupt(what: &str) -> Error {
    Error::Backend(format!("stored {what} is invalid").into())
}

/// Column `idx` of a row, as `T`.
fn get<'a, T: FromSql<'a>>(row: &'a Row, idx: usize) -> Result<T> {
    row.try_get(idx).map_err(|e| Error::Backend(Box::new(e)))
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
fn to_limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn digest(s: &str) -> Result<Digest> {
    Digest::parse(s).map_err(|_| corrupt("digest"))
}

fn repository_key(registry: &str, name: &str) -> Result<RepositoryKey> {
    Ok(RepositoryKey::new(
        AccountId::parse(registry).map_err(|_| corrupt("registry"))?,
        RepositoryName::parse(name).map_err(|_| corrupt("repository name"))?,
    ))
}

/// One more row than a page holds (to know whether another follows), or every row (`NULL`).
fn sql_limit(limit: Option<usize>) -> Option<i64> {
    limit.map(|n| i64::try_from(n).unwrap_or(i64::MAX - 1) + 1)
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

/// The id of a repository, creating it when allowed, in one statement; `NotFound(Repository)`
/// when it is missing and may not be created. Inside a serializable transaction a concurrent
/// creation of the same name that this transaction cannot see aborts it (and it runs again,
/// finding the repository), so exactly one creator inserts the row.
const ENSURE_REPO_SQL: &str = "
    WITH found AS (SELECT id FROM repositories WHERE registry = $1 AND name = $2),
    created AS (
        INSERT INTO repositories (registry, name, created_at)
        SELECT $1, $2, $3 WHERE $4 AND NOT EXISTS (SELECT 1 FROM found)
        ON CONFLICT (registry, name) DO NOTHING RETURNING id)
    SELECT id FROM found UNION ALL SELECT id FROM created";

async fn ensure_repo(c: &Client, key: &RepositoryKey, create: CreateRepo) -> Result<i64> {
    let may_create = create == CreateRepo::IfMissing;
    let found = row(c, ENSURE_REPO_SQL, &[&key.registry.as_str(), &key.name.as_str(), &now_ms(), &may_create]).await?;
    match found {
        Some(r) => get(&r, 0),
        None => Err(Error::no_repository(key)),
    }
}

const REPO_ID_SQL: &str = "SELECT id FROM repositories WHERE registry = $1 AND name = $2";

async fn repo_id(c: &Client, key: &RepositoryKey) -> Result<Option<i64>> {
    row(c, REPO_ID_SQL, &[&key.registry.as_str(), &key.name.as_str()]).await?.map(|r| get(&r, 0)).transpose()
}

/// A repository row with its policy and its resource tags (keys and values, in key order).
macro_rules! repository_columns {
    () => {
        "r.registry, r.name, r.created_at, r.tag_mutability, r.tag_mutability_exclusions, r.scan_on_push,
         r.encryption_type, r.kms_key, r.policy,
         ARRAY(SELECT t.key FROM repository_tags t WHERE t.repository_id = r.id ORDER BY t.key),
         ARRAY(SELECT t.value FROM repository_tags t WHERE t.repository_id = r.id ORDER BY t.key)"
    };
}

const GET_REPOSITORY_SQL: &str =
    concat!("SELECT ", repository_columns!(), " FROM repositories r WHERE r.registry = $1 AND r.name = $2");

/// A page of one registry's repositories: a range of `UNIQUE (registry, name)`.
const LIST_REPOSITORIES_SQL: &str = concat!(
    "SELECT ",
    repository_columns!(),
    " FROM repositories r WHERE r.registry = $1 AND r.name > $2 ORDER BY r.name LIMIT $3"
);

fn tag_mutability(mode: &str, exclusions: Vec<String>) -> Result<TagMutability> {
    TagMutability::parse(mode, exclusions).map_err(|_| corrupt("tag mutability"))
}

fn repository_record(r: &Row) -> Result<RepositoryRecord> {
    let keys: Vec<String> = get(r, 9)?;
    let values: Vec<String> = get(r, 10)?;
    Ok(RepositoryRecord {
        key: repository_key(get(r, 0)?, get(r, 1)?)?,
        created_at: get(r, 2)?,
        settings: RepositorySettings {
            tag_mutability: tag_mutability(get(r, 3)?, get(r, 4)?)?,
            scan_on_push: get(r, 5)?,
            encryption_type: get(r, 6)?,
            kms_key: get(r, 7)?,
        },
        policy: get(r, 8)?,
        tags: keys.into_iter().zip(values).collect(),
    })
}

async fn get_repository(c: &Client, key: &RepositoryKey) -> Result<Option<RepositoryRecord>> {
    row(c, GET_REPOSITORY_SQL, &[&key.registry.as_str(), &key.name.as_str()])
        .await?
        .map(|r| repository_record(&r))
        .transpose()
}

/// Records a blob and links it into repository `$1`, in one statement.
const LINK_SQL: &str = "
    WITH b AS (INSERT INTO blobs (digest, size, created_at) VALUES ($2, $3, $4) ON CONFLICT (digest) DO NOTHING)
    INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES ($1, $2, $4)
    ON CONFLICT (repository_id, digest) DO NOTHING";

async fn link(c: &Client, repo: i64, digest: &Digest, size: u64) -> Result<()> {
    exec(c, LINK_SQL, &[&repo, &digest.as_str(), &to_i64(size), &now_ms()]).await.map(drop)
}

/// The size of a blob a repository holds.
const BLOB_SIZE_SQL: &str = "SELECT b.size FROM repositories r
    JOIN repository_blobs rb ON rb.repository_id = r.id JOIN blobs b ON b.digest = rb.digest
    WHERE r.registry = $1 AND r.name = $2 AND rb.digest = $3";

async fn blob_size(c: &Client, repo: &RepositoryKey, digest: &Digest) -> Result<Option<u64>> {
    let found = row(c, BLOB_SIZE_SQL, &[&repo.registry.as_str(), &repo.name.as_str(), &digest.as_str()]).await?;
    found.map(|r| get::<i64>(&r, 0).map(to_u64)).transpose()
}

#[async_trait]
impl RepoMeta for PgMeta {
    async fn create_repository(&self, key: &RepositoryKey) -> Result<bool> {
        // (g) Create-if-absent: the unique index on (registry, name) admits one row. Of two
        // concurrent creators one inserts; the other, serialized after it, finds the row (or is
        // aborted and run again, and then finds it) and answers `false`.
        self.write(async move |c: &Client| {
            let n = exec(
                c,
                "INSERT INTO repositories (registry, name, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (registry, name) DO NOTHING",
                &[&key.registry.as_str(), &key.name.as_str(), &now_ms()],
            )
            .await?;
            Ok(n == 1)
        })
        .await
    }

    async fn create_repository_with(
        &self,
        key: &RepositoryKey,
        settings: &RepositorySettings,
    ) -> Result<RepositoryRecord> {
        let exclusions = settings.tag_mutability.exclusions().to_vec();
        self.write(async move |c: &Client| {
            let created = row(
                c,
                "INSERT INTO repositories
                 (registry, name, created_at, tag_mutability, scan_on_push, encryption_type, kms_key,
                  tag_mutability_exclusions)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (registry, name) DO NOTHING RETURNING id",
                &[
                    &key.registry.as_str(),
                    &key.name.as_str(),
                    &now_ms(),
                    &settings.tag_mutability.as_str(),
                    &settings.scan_on_push,
                    &settings.encryption_type,
                    &settings.kms_key,
                    &exclusions,
                ],
            )
            .await?;
            if created.is_none() {
                return Err(Error::Conflict(berth_meta::Conflict::RepositoryExists(key.clone())));
            }
            get_repository(c, key).await?.ok_or_else(|| Error::no_repository(key))
        })
        .await
    }

    async fn get_repository(&self, key: &RepositoryKey) -> Result<Option<RepositoryRecord>> {
        self.read(async |c: &Client| get_repository(c, key).await).await
    }

    async fn list_repository_records(
        &self,
        registry: &AccountId,
        page: &PageRequest,
    ) -> Result<Page<RepositoryRecord>> {
        let after = page.after.as_deref().unwrap_or("");
        let found = self
            .read(async |c: &Client| {
                rows(c, LIST_REPOSITORIES_SQL, &[&registry.as_str(), &after, &sql_limit(page.limit)]).await
            })
            .await?;
        let items = found.iter().map(repository_record).collect::<Result<Vec<_>>>()?;
        Ok(page_of(items, page.limit, |r| r.key.name.to_string()))
    }

    async fn update_repository(
        &self,
        key: &RepositoryKey,
        change: &RepositorySettingsChange,
    ) -> Result<Option<RepositoryRecord>> {
        let mode = change.tag_mutability.as_ref().map(TagMutability::as_str);
        let exclusions = change.tag_mutability.as_ref().map(|m| m.exclusions().to_vec());
        let scan = change.scan_on_push;
        // (b) A change of tag mutability is a write of the repository row, which every
        // `put_manifest` that checks a tag reads in its transaction: the two are serialized,
        // so a push is checked against the mode before or after the change, never a mix.
        self.write(async move |c: &Client| {
            let updated = row(
                c,
                concat!(
                    "UPDATE repositories r SET tag_mutability = coalesce($3, r.tag_mutability),
                     scan_on_push = coalesce($4, r.scan_on_push),
                     tag_mutability_exclusions = coalesce($5, r.tag_mutability_exclusions)
                     WHERE r.registry = $1 AND r.name = $2 RETURNING ",
                    repository_columns!()
                ),
                &[&key.registry.as_str(), &key.name.as_str(), &mode, &scan, &exclusions],
            )
            .await?;
            updated.map(|r| repository_record(&r)).transpose()
        })
        .await
    }

    async fn update_repository_tags(
        &self,
        key: &RepositoryKey,
        set: &[(String, String)],
        remove: &[String],
    ) -> Result<Option<Vec<(String, String)>>> {
        const TAGS_SQL: &str = "SELECT r.id,
            ARRAY(SELECT t.key FROM repository_tags t WHERE t.repository_id = r.id ORDER BY t.key),
            ARRAY(SELECT t.value FROM repository_tags t WHERE t.repository_id = r.id ORDER BY t.key)
            FROM repositories r WHERE r.registry = $1 AND r.name = $2";
        let tags = |r: &Row| -> Result<Vec<(String, String)>> {
            let (keys, values): (Vec<String>, Vec<String>) = (get(r, 1)?, get(r, 2)?);
            Ok(keys.into_iter().zip(values).collect())
        };
        let params = [key.registry.as_str(), key.name.as_str()];
        if set.is_empty() && remove.is_empty() {
            let found = self.read(async |c: &Client| row(c, TAGS_SQL, &[&params[0], &params[1]]).await).await?;
            return found.map(|r| tags(&r)).transpose();
        }
        // A key set twice takes its last value, as setting them one after another would.
        let mut latest: Vec<(&str, &str)> = Vec::new();
        for (k, v) in set {
            match latest.iter_mut().find(|(key, _)| key == k) {
                Some(slot) => slot.1 = v,
                None => latest.push((k, v)),
            }
        }
        let keys: Vec<&str> = latest.iter().map(|(k, _)| *k).collect();
        let values: Vec<&str> = latest.iter().map(|(_, v)| *v).collect();
        let remove: Vec<&str> = remove.iter().map(String::as_str).collect();
        let found = self
            .write(async move |c: &Client| {
                let Some(id) = repo_id(c, key).await? else { return Ok(None) };
                exec(
                    c,
                    "INSERT INTO repository_tags (repository_id, key, value)
                     SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS x(k, v)
                     ON CONFLICT (repository_id, key) DO UPDATE SET value = excluded.value",
                    &[&id, &keys, &values],
                )
                .await?;
                exec(c, "DELETE FROM repository_tags WHERE repository_id = $1 AND key = ANY($2)", &[&id, &remove])
                    .await?;
                row(c, TAGS_SQL, &[&params[0], &params[1]]).await
            })
            .await?;
        found.map(|r| tags(&r)).transpose()
    }

    async fn delete_repository(&self, key: &RepositoryKey, force: bool) -> Result<DeleteRepository> {
        self.write(async move |c: &Client| {
            let found = row(
                c,
                concat!(
                    "SELECT ",
                    repository_columns!(),
                    ", r.id, EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id)
                     FROM repositories r WHERE r.registry = $1 AND r.name = $2"
                ),
                &[&key.registry.as_str(), &key.name.as_str()],
            )
            .await?;
            let Some(found) = found else { return Ok(DeleteRepository::NotFound) };
            let record = repository_record(&found)?;
            let (id, any): (i64, bool) = (get(&found, 11)?, get(&found, 12)?);
            // Serialized with pushes: a manifest committed before this transaction is seen
            // here (and refuses the deletion without `force`); one after finds no repository.
            if any && !force {
                return Ok(DeleteRepository::NotEmpty);
            }
            // Tags, references, manifests, blob links, uploads and the preview go with it
            // (ON DELETE CASCADE); the references' trigger touches the blobs they named.
            exec(c, "DELETE FROM repositories WHERE id = $1", &[&id]).await?;
            Ok(DeleteRepository::Deleted(record))
        })
        .await
    }

    async fn repository_exists(&self, key: &RepositoryKey) -> Result<bool> {
        self.read(async |c: &Client| repo_id(c, key).await).await.map(|id| id.is_some())
    }

    async fn list_repositories(&self, registry: &AccountId, page: &PageRequest) -> Result<Page<RepositoryName>> {
        let after = page.after.as_deref().unwrap_or("");
        let found = self
            .read(async |c: &Client| {
                rows(
                    c,
                    "SELECT name FROM repositories WHERE registry = $1 AND name > $2 ORDER BY name LIMIT $3",
                    &[&registry.as_str(), &after, &sql_limit(page.limit)],
                )
                .await
            })
            .await?;
        let items = found
            .iter()
            .map(|r| RepositoryName::parse(get(r, 0)?).map_err(|_| corrupt("repository name")))
            .collect::<Result<Vec<_>>>()?;
        Ok(page_of(items, page.limit, ToString::to_string))
    }

    async fn list_all_repositories(&self, after: Option<&RepositoryKey>, limit: usize) -> Result<Vec<RepositoryKey>> {
        let (registry, name) = after.map_or(("", ""), |k| (k.registry.as_str(), k.name.as_str()));
        let found = self
            .read(async |c: &Client| {
                rows(
                    c,
                    "SELECT registry, name FROM repositories WHERE (registry, name) > ($1, $2)
                     ORDER BY registry, name LIMIT $3",
                    &[&registry, &name, &to_limit(limit)],
                )
                .await
            })
            .await?;
        found.iter().map(|r| repository_key(get(r, 0)?, get(r, 1)?)).collect()
    }
}

#[async_trait]
impl BlobIndex for PgMeta {
    async fn blob_in_repository(&self, repo: &RepositoryKey, digest: &Digest) -> Result<Option<u64>> {
        self.read(async |c: &Client| blob_size(c, repo, digest).await).await
    }

    async fn link_blob(&self, repo: &RepositoryKey, digest: &Digest, size: u64, create: CreateRepo) -> Result<()> {
        self.write_in(repo, async move |c: &Client| {
            let id = ensure_repo(c, repo, create).await?;
            link(c, id, digest, size).await
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
        // (a) A mount copies a record that exists in this transaction's view; a collection
        // that removes it is serialized before (no record: `false`) or after (it sees the new
        // link, and the blob is unreferenced or referenced just as before).
        self.write_in(to, async move |c: &Client| {
            let Some(size) = blob_size(c, from, digest).await? else { return Ok(false) };
            let id = ensure_repo(c, to, create).await?;
            link(c, id, digest, size).await?;
            Ok(true)
        })
        .await
    }

    async fn unlink_blob(&self, repo: &RepositoryKey, digest: &Digest) -> Result<bool> {
        self.write(async move |c: &Client| {
            let n = exec(
                c,
                "DELETE FROM repository_blobs WHERE digest = $1
                 AND repository_id = (SELECT id FROM repositories WHERE registry = $2 AND name = $3)",
                &[&digest.as_str(), &repo.registry.as_str(), &repo.name.as_str()],
            )
            .await?;
            Ok(n > 0)
        })
        .await
    }

    async fn recorded_blobs(&self, after: Option<&Digest>, limit: usize) -> Result<Vec<(Digest, u64)>> {
        let after = after.map_or("", Digest::as_str);
        let found = self
            .read(async |c: &Client| {
                rows(
                    c,
                    "SELECT digest, size FROM blobs WHERE digest > $1 ORDER BY digest LIMIT $2",
                    &[&after, &to_limit(limit)],
                )
                .await
            })
            .await?;
        found.iter().map(|r| Ok((digest(get(r, 0)?)?, to_u64(get(r, 1)?)))).collect()
    }
}

/// An upload session with its repository's key.
const UPLOAD_SQL: &str = r#"SELECT r.registry, r.name, u."offset", u.hash_state, u.created_at FROM uploads u
    JOIN repositories r ON r.id = u.repository_id WHERE u.id = $1"#;

/// The repository id of a stored upload session.
pub(crate) async fn upload_repository(c: &Client, id: &UploadId) -> Result<Option<i64>> {
    row(c, "SELECT repository_id FROM uploads WHERE id = $1", &[&id.as_str()]).await?.map(|r| get(&r, 0)).transpose()
}

/// Ends an upload session by recording its blob in the session's repository.
pub(crate) async fn complete_upload(c: &Client, id: &UploadId, digest: &Digest, size: u64) -> Result<()> {
    let repo = upload_repository(c, id).await?.ok_or_else(|| Error::NotFound(Missing::Upload(id.clone())))?;
    link(c, repo, digest, size).await?;
    exec(c, "DELETE FROM uploads WHERE id = $1", &[&id.as_str()]).await?;
    Ok(())
}

#[async_trait]
impl UploadMeta for PgMeta {
    /// Every session is stored at once (SQLite keeps one without bytes in memory): the next
    /// request of its client may reach another node.
    async fn create_upload(&self, s: &UploadSession, create: CreateRepo) -> Result<()> {
        self.write_in(&s.repository, async move |c: &Client| {
            let repo = ensure_repo(c, &s.repository, create).await?;
            exec(
                c,
                r#"INSERT INTO uploads (id, repository_id, "offset", hash_state, created_at, updated_at)
                   VALUES ($1, $2, $3, $4, $5, $6)"#,
                &[&s.id.as_str(), &repo, &to_i64(s.offset), &s.hash_state, &s.created_at, &now_ms()],
            )
            .await
            .map(drop)
        })
        .await
    }

    async fn get_upload(&self, id: &UploadId) -> Result<Option<UploadSession>> {
        let found = self.read(async |c: &Client| row(c, UPLOAD_SQL, &[&id.as_str()]).await).await?;
        found
            .map(|r| {
                Ok(UploadSession {
                    id: id.clone(),
                    repository: repository_key(get(&r, 0)?, get(&r, 1)?)?,
                    offset: to_u64(get(&r, 2)?),
                    hash_state: get(&r, 3)?,
                    created_at: get(&r, 4)?,
                })
            })
            .transpose()
    }

    async fn advance_upload(&self, id: &UploadId, from: u64, to: u64, hash_state: &[u8]) -> Result<()> {
        // (f) Compare-and-swap in one statement, at READ COMMITTED: the UPDATE locks the
        // session's row, and a second UPDATE that waited for the lock re-checks its WHERE on
        // the row the first one committed. Of two appends from one offset exactly one finds
        // `offset = from`; the other changes nothing and is told the session moved. The
        // existence check reads the statement's snapshot, in which the row existed if the
        // update could have matched it.
        let found = self
            .single(async |c: &Client| {
                one(
                    c,
                    r#"WITH moved AS (
                           UPDATE uploads SET "offset" = $3, hash_state = $4, updated_at = $5
                           WHERE id = $1 AND "offset" = $2 RETURNING 1)
                       SELECT EXISTS (SELECT 1 FROM moved), EXISTS (SELECT 1 FROM uploads WHERE id = $1)"#,
                    &[&id.as_str(), &to_i64(from), &to_i64(to), &hash_state, &now_ms()],
                )
                .await
            })
            .await?;
        let (advanced, exists): (bool, bool) = (get(&found, 0)?, get(&found, 1)?);
        if advanced {
            Ok(())
        } else if exists {
            Err(Error::Conflict(berth_meta::Conflict::UploadMoved(id.clone())))
        } else {
            Err(Error::NotFound(Missing::Upload(id.clone())))
        }
    }

    async fn complete_upload(&self, id: &UploadId, digest: &Digest, size: u64) -> Result<()> {
        self.write_in_upload(id, async move |c: &Client| complete_upload(c, id, digest, size).await).await
    }

    async fn delete_upload(&self, id: &UploadId) -> Result<bool> {
        self.write(async move |c: &Client| {
            exec(c, "DELETE FROM uploads WHERE id = $1", &[&id.as_str()]).await.map(|n| n > 0)
        })
        .await
    }

    async fn stale_uploads(&self, before_ms: i64, limit: usize) -> Result<Vec<UploadId>> {
        let found = self
            .read(async |c: &Client| {
                rows(
                    c,
                    "SELECT id FROM uploads WHERE updated_at < $1 ORDER BY updated_at LIMIT $2",
                    &[&before_ms, &to_limit(limit)],
                )
                .await
            })
            .await?;
        found.iter().map(|r| UploadId::parse(get(r, 0)?).map_err(|_| corrupt("upload id"))).collect()
    }
}

/// What `put_manifest` checks before it writes, in one statement: the repository's id and tag
/// mutability, the digest the tag names now (read only when some tag may be immutable: a read
/// of the tag's index page is what makes concurrent pushes to a repository conflict, and a
/// mutable tag's old value decides nothing), and the referenced blobs (`$4`) and child
/// manifests (`$5`) the repository does not hold, in the order given.
const PUT_CHECK_SQL: &str = "
    SELECT r.id, r.tag_mutability, r.tag_mutability_exclusions,
        CASE WHEN r.tag_mutability <> 'MUTABLE' THEN
            (SELECT t.digest FROM tags t WHERE t.repository_id = r.id AND t.name = $3) END,
        ARRAY(SELECT x.d FROM unnest($4::text[]) WITH ORDINALITY AS x(d, i)
              WHERE NOT EXISTS (SELECT 1 FROM repository_blobs b WHERE b.repository_id = r.id AND b.digest = x.d)
              ORDER BY x.i),
        ARRAY(SELECT x.d FROM unnest($5::text[]) WITH ORDINALITY AS x(d, i)
              WHERE NOT EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id AND m.digest = x.d)
              ORDER BY x.i)
    FROM repositories r WHERE r.registry = $1 AND r.name = $2";

/// Stores a manifest (unless stored already), its references (with it) and its tag, in one
/// statement.
const PUT_WRITE_SQL: &str = "
    WITH m AS (
        INSERT INTO manifests
            (repository_id, digest, media_type, artifact_type, subject, annotations, size, payload, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT (repository_id, digest) DO NOTHING RETURNING digest),
    refs AS (
        INSERT INTO manifest_references (repository_id, manifest_digest, target, kind)
        SELECT $1, m.digest, x.target, x.kind FROM m, unnest($10::text[], $11::smallint[]) AS x(target, kind)
        ON CONFLICT DO NOTHING)
    INSERT INTO tags (repository_id, name, digest, updated_at)
    SELECT $1, $12, $2, $9 WHERE $12::text IS NOT NULL
    ON CONFLICT (repository_id, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at";

async fn put_manifest(c: &Client, m: &NewManifest, create: CreateRepo) -> Result<PutOutcome> {
    let tag = m.tag.as_ref().map(Tag::as_str);
    let blobs: Vec<&str> = m.blobs.iter().map(Digest::as_str).collect();
    let children: Vec<&str> = m.children.iter().map(Digest::as_str).collect();
    let check =
        row(c, PUT_CHECK_SQL, &[&m.repository.registry.as_str(), &m.repository.name.as_str(), &tag, &blobs, &children])
            .await?;
    let repo = match check {
        Some(r) => {
            let missing_blobs: Vec<String> = get(&r, 4)?;
            let missing_children: Vec<String> = get(&r, 5)?;
            if !missing_blobs.is_empty() || !missing_children.is_empty() {
                let missing =
                    missing_blobs.iter().chain(&missing_children).map(|d| digest(d)).collect::<Result<_>>()?;
                return Ok(PutOutcome::MissingReferences(missing));
            }
            let existing: Option<String> = get(&r, 3)?;
            let id: i64 = get(&r, 0)?;
            // (b) Tag immutability is decided on the tag's value in this transaction's
            // snapshot. Two pushes of different manifests to one immutable tag both read
            // "absent" (or the same old value) and both write the tag row: serializable
            // isolation lets only one commit, and the other runs again, now reads the first's
            // digest and answers `TagImmutable`, writing nothing. The exclusion filters are
            // read from the same repository row, in the same snapshot.
            if let (Some(tag), Some(existing)) = (tag, &existing)
                && existing != m.digest.as_str()
                && tag_mutability(get(&r, 1)?, get(&r, 2)?)?.is_immutable(tag)
            {
                return Ok(PutOutcome::TagImmutable { existing: digest(existing)? });
            }
            id
        }
        None => {
            // A new repository holds nothing, so every reference is missing; only a manifest
            // that references nothing may create it.
            let missing: Vec<Digest> = m.blobs.iter().chain(&m.children).cloned().collect();
            if !missing.is_empty() {
                return Ok(PutOutcome::MissingReferences(missing));
            }
            ensure_repo(c, &m.repository, create).await?
        }
    };
    // (a) Every referenced blob was linked in the repository in this transaction's snapshot,
    // and the references are written here. A collection of one of those blobs reads the
    // references and deletes the link: the two transactions each read what the other writes,
    // so serializable isolation commits at most one of them unless one ran entirely before the
    // other. Push first: the collection, serialized after, sees the reference and keeps the
    // blob. Collection first: this transaction, run again, finds the link gone and answers
    // `MissingReferences`. No stored manifest names a collected blob.
    // (d), (e) The tag is written with the manifest, which this statement stores if it is not
    // there (a lifecycle deletion serialized before this push removed it), and the tag's
    // foreign key names the manifest: a tag always names a stored manifest. Of two pushes to
    // one mutable tag both manifests are stored and the tag names the one serialized last.
    let kinds: Vec<i16> = std::iter::repeat_n(0, blobs.len()).chain(std::iter::repeat_n(1, children.len())).collect();
    let targets: Vec<&str> = blobs.iter().chain(&children).copied().collect();
    exec(
        c,
        PUT_WRITE_SQL,
        &[
            &repo,
            &m.digest.as_str(),
            &m.media_type,
            &m.artifact_type,
            &m.subject.as_ref().map(Digest::as_str),
            &m.annotations,
            &i64::try_from(m.payload.len()).unwrap_or(i64::MAX),
            &m.payload,
            &now_ms(),
            &targets,
            &kinds,
            &tag,
        ],
    )
    .await?;
    Ok(PutOutcome::Stored)
}

/// An image as ECR lists it: the manifest with its tags and the bytes of its blobs.
macro_rules! image_columns {
    () => {
        "m.digest, m.media_type, m.artifact_type, m.created_at, m.last_pulled_at,
         ARRAY(SELECT t.name FROM tags t WHERE t.repository_id = m.repository_id AND t.digest = m.digest
               ORDER BY t.name),
         (SELECT coalesce(sum(b.size), 0) FROM manifest_references x JOIN blobs b ON b.digest = x.target
          WHERE x.repository_id = m.repository_id AND x.manifest_digest = m.digest AND x.kind = 0)::bigint"
    };
}

/// One image by digest: an equality on the primary key, whatever the repository holds.
const IMAGE_SQL: &str = concat!(
    "SELECT ",
    image_columns!(),
    " FROM repositories r JOIN manifests m ON m.repository_id = r.id
      WHERE r.registry = $1 AND r.name = $2 AND m.digest = $3"
);

/// The repository's id (no row: no repository) with a page of its images after digest `$3`
/// (none: a row of NULLs), `$4` choosing tagged (1), untagged (2) or any (0), at most `$5`: a
/// range of the primary key.
const IMAGES_SQL: &str = concat!(
    "SELECT i.* FROM repositories r LEFT JOIN LATERAL (SELECT ",
    image_columns!(),
    " FROM manifests m WHERE m.repository_id = r.id AND m.digest > $3
        AND ($4 = 0
             OR ($4 = 1 AND EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = m.repository_id AND t.digest = m.digest))
             OR ($4 = 2 AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = m.repository_id AND t.digest = m.digest)))
      ORDER BY m.digest LIMIT $5) i ON true
    WHERE r.registry = $1 AND r.name = $2"
);

fn image_record(r: &Row) -> Result<ImageRecord> {
    let tags: Vec<String> = get(r, 5)?;
    Ok(ImageRecord {
        digest: digest(get(r, 0)?)?,
        media_type: get(r, 1)?,
        artifact_type: get(r, 2)?,
        pushed_at: get(r, 3)?,
        last_pulled_at: get(r, 4)?,
        tags: tags.iter().map(|t| Tag::parse(t).map_err(|_| corrupt("tag"))).collect::<Result<_>>()?,
        size: to_u64(get(r, 6)?),
    })
}

/// A manifest by tag.
const RESOLVE_TAG_SQL: &str = "SELECT m.digest, m.media_type, m.payload FROM repositories r
    JOIN tags t ON t.repository_id = r.id
    JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.digest
    WHERE r.registry = $1 AND r.name = $2 AND t.name = $3";

/// A manifest by digest.
const RESOLVE_DIGEST_SQL: &str = "SELECT m.digest, m.media_type, m.payload FROM repositories r
    JOIN manifests m ON m.repository_id = r.id WHERE r.registry = $1 AND r.name = $2 AND m.digest = $3";

/// Manifests by tag or digest (`$3` keys, `$4` whether each is a tag), each with its place
/// (from 1) in the batch: one statement for a whole batch.
const RESOLVE_MANY_SQL: &str = "
    SELECT x.i, m.digest, m.media_type, m.payload
    FROM unnest($3::text[], $4::bool[]) WITH ORDINALITY AS x(key, by_tag, i)
    JOIN repositories r ON r.registry = $1 AND r.name = $2
    LEFT JOIN tags t ON x.by_tag AND t.repository_id = r.id AND t.name = x.key
    JOIN manifests m ON m.repository_id = r.id AND m.digest = CASE WHEN x.by_tag THEN t.digest ELSE x.key END";

fn manifest_record(r: &Row, first: usize) -> Result<ManifestRecord> {
    Ok(ManifestRecord { digest: digest(get(r, first)?)?, media_type: get(r, first + 1)?, payload: get(r, first + 2)? })
}

#[async_trait]
impl ImageMeta for PgMeta {
    async fn record_pulls(&self, pulls: &[(RepositoryKey, Digest, i64)]) -> Result<()> {
        if pulls.is_empty() {
            return Ok(());
        }
        let registries: Vec<&str> = pulls.iter().map(|(r, ..)| r.registry.as_str()).collect();
        let names: Vec<&str> = pulls.iter().map(|(r, ..)| r.name.as_str()).collect();
        let digests: Vec<&str> = pulls.iter().map(|(_, d, _)| d.as_str()).collect();
        let times: Vec<i64> = pulls.iter().map(|(.., t)| *t).collect();
        // One statement at READ COMMITTED. The pull time only ever grows (`greatest`), and a
        // row another transaction updated first is re-read before this one updates it, so
        // concurrent batches keep the latest time whatever their order. Nothing decides on
        // `last_pulled_at` inside a transaction. Two batches that lock the same rows in
        // different orders may deadlock; the loser runs again.
        self.write_read_committed(async move |c: &Client| {
            exec(
                c,
                "UPDATE manifests m SET last_pulled_at = greatest(coalesce(m.last_pulled_at, 0), p.at)
                 FROM (SELECT r.id, x.digest, max(x.at) AS at
                       FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS x(registry, name, digest, at)
                       JOIN repositories r ON r.registry = x.registry AND r.name = x.name
                       GROUP BY r.id, x.digest) p
                 WHERE m.repository_id = p.id AND m.digest = p.digest",
                &[&registries, &names, &digests, &times],
            )
            .await
            .map(drop)
        })
        .await
    }

    async fn list_images(
        &self,
        repo: &RepositoryKey,
        status: TagStatus,
        page: &PageRequest,
    ) -> Result<Page<ImageRecord>> {
        let status: i32 = match status {
            TagStatus::Any => 0,
            TagStatus::Tagged => 1,
            TagStatus::Untagged => 2,
        };
        let after = page.after.as_deref().unwrap_or("");
        let found = self
            .read(async |c: &Client| {
                rows(
                    c,
                    IMAGES_SQL,
                    &[&repo.registry.as_str(), &repo.name.as_str(), &after, &status, &sql_limit(page.limit)],
                )
                .await
            })
            .await?;
        if found.is_empty() {
            return Err(Error::no_repository(repo));
        }
        let mut items = Vec::with_capacity(found.len());
        for r in &found {
            if get::<Option<&str>>(r, 0)?.is_some() {
                items.push(image_record(r)?);
            }
        }
        Ok(page_of(items, page.limit, |i| i.digest.to_string()))
    }

    async fn get_image(&self, repo: &RepositoryKey, digest: &Digest) -> Result<Option<ImageRecord>> {
        let found = self
            .read(async |c: &Client| {
                row(c, IMAGE_SQL, &[&repo.registry.as_str(), &repo.name.as_str(), &digest.as_str()]).await
            })
            .await?;
        found.map(|r| image_record(&r)).transpose()
    }

    async fn put_manifest(&self, m: &NewManifest, create: CreateRepo) -> Result<PutOutcome> {
        self.write_in(&m.repository, async move |c: &Client| put_manifest(c, m, create).await).await
    }

    async fn resolve(&self, repo: &RepositoryKey, reference: &Reference) -> Result<Option<ManifestRecord>> {
        let (sql, key) = match reference {
            Reference::Tag(t) => (RESOLVE_TAG_SQL, t.as_str()),
            Reference::Digest(d) => (RESOLVE_DIGEST_SQL, d.as_str()),
        };
        let found = self
            .read(async |c: &Client| row(c, sql, &[&repo.registry.as_str(), &repo.name.as_str(), &key]).await)
            .await?;
        found.map(|r| manifest_record(&r, 0)).transpose()
    }

    async fn resolve_many(
        &self,
        repo: &RepositoryKey,
        references: &[Reference],
    ) -> Result<Vec<Option<ManifestRecord>>> {
        let mut out: Vec<Option<ManifestRecord>> = vec![None; references.len()];
        if references.is_empty() {
            return Ok(out);
        }
        let keys: Vec<&str> = references
            .iter()
            .map(|r| match r {
                Reference::Tag(t) => t.as_str(),
                Reference::Digest(d) => d.as_str(),
            })
            .collect();
        let by_tag: Vec<bool> = references.iter().map(|r| matches!(r, Reference::Tag(_))).collect();
        let found = self
            .read(async |c: &Client| {
                rows(c, RESOLVE_MANY_SQL, &[&repo.registry.as_str(), &repo.name.as_str(), &keys, &by_tag]).await
            })
            .await?;
        for r in &found {
            let place = usize::try_from(get::<i64>(r, 0)? - 1).map_err(|_| corrupt("batch position"))?;
            if let Some(slot) = out.get_mut(place) {
                *slot = Some(manifest_record(r, 1)?);
            }
        }
        Ok(out)
    }

    async fn delete_manifest(&self, repo: &RepositoryKey, digest: &Digest) -> Result<bool> {
        // (d) Serialized with pushes: a push that re-tags this manifest either commits first
        // (its tag goes with the manifest, ON DELETE CASCADE) or runs after and stores the
        // manifest again before naming it. The references' trigger touches the blobs they named
        // in this same transaction, so a collection serialized after sees the touch.
        self.write_in(repo, async move |c: &Client| {
            let n = exec(
                c,
                "DELETE FROM manifests WHERE digest = $1
                 AND repository_id = (SELECT id FROM repositories WHERE registry = $2 AND name = $3)",
                &[&digest.as_str(), &repo.registry.as_str(), &repo.name.as_str()],
            )
            .await?;
            Ok(n > 0)
        })
        .await
    }

    async fn delete_tag(&self, repo: &RepositoryKey, tag: &Tag, drop_untagged: bool) -> Result<Option<Digest>> {
        self.write_in(repo, async move |c: &Client| {
            let deleted = row(
                c,
                "DELETE FROM tags WHERE name = $1
                 AND repository_id = (SELECT id FROM repositories WHERE registry = $2 AND name = $3)
                 RETURNING repository_id, digest",
                &[&tag.as_str(), &repo.registry.as_str(), &repo.name.as_str()],
            )
            .await?;
            let Some(deleted) = deleted else { return Ok(None) };
            let (id, name): (i64, String) = (get(&deleted, 0)?, get(&deleted, 1)?);
            if drop_untagged {
                // (c) ECR's last-tag rule. Two transactions deleting the two last tags of one
                // image each see the other's tag still there in their snapshot, and each
                // deletes the tag the other reads: serializable isolation commits one, and the
                // other runs again, sees no tag left and deletes the image. So the image goes
                // exactly when its last tag goes (and a push that tags it again is serialized
                // before, keeping it, or after, storing it again).
                exec(
                    c,
                    "DELETE FROM manifests WHERE repository_id = $1 AND digest = $2
                     AND NOT EXISTS (SELECT 1 FROM tags WHERE repository_id = $1 AND digest = $2)",
                    &[&id, &name],
                )
                .await?;
            }
            digest(&name).map(Some)
        })
        .await
    }

    async fn list_tags(&self, repo: &RepositoryKey, page: &PageRequest) -> Result<Page<Tag>> {
        let after = page.after.as_deref().unwrap_or("");
        let found = self
            .read(async |c: &Client| {
                rows(
                    c,
                    "SELECT t.name FROM repositories r LEFT JOIN LATERAL (
                         SELECT name FROM tags WHERE repository_id = r.id AND name > $3 ORDER BY name LIMIT $4
                     ) t ON true WHERE r.registry = $1 AND r.name = $2",
                    &[&repo.registry.as_str(), &repo.name.as_str(), &after, &sql_limit(page.limit)],
                )
                .await
            })
            .await?;
        if found.is_empty() {
            return Err(Error::no_repository(repo));
        }
        let mut items = Vec::with_capacity(found.len());
        for r in &found {
            if let Some(name) = get::<Option<&str>>(r, 0)? {
                items.push(Tag::parse(name).map_err(|_| corrupt("tag"))?);
            }
        }
        Ok(page_of(items, page.limit, ToString::to_string))
    }

    async fn referrers(
        &self,
        repo: &RepositoryKey,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>> {
        let found = self
            .read(async |c: &Client| {
                rows(
                    c,
                    "SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations FROM manifests m
                     JOIN repositories r ON r.id = m.repository_id
                     WHERE r.registry = $1 AND r.name = $2 AND m.subject = $3
                       AND ($4::text IS NULL OR m.artifact_type = $4)
                     ORDER BY m.digest",
                    &[&repo.registry.as_str(), &repo.name.as_str(), &subject.as_str(), &artifact_type],
                )
                .await
            })
            .await?;
        found
            .iter()
            .map(|r| {
                Ok(Referrer {
                    digest: digest(get(r, 0)?)?,
                    media_type: get(r, 1)?,
                    size: to_u64(get(r, 2)?),
                    artifact_type: get(r, 3)?,
                    annotations: get(r, 4)?,
                })
            })
            .collect()
    }
}

/// PostgreSQL gives deleted rows' space back by itself (autovacuum), so there is nothing to
/// reclaim by hand.
#[async_trait]
impl MaintenanceMeta for PgMeta {
    async fn reclaim(&self, _max_pages: u32) -> Result<u64> {
        Ok(0)
    }

    // One statement each: an update of one row reads nothing else.
    async fn restore_pushed_at(&self, repo: &RepositoryKey, digest: &Digest, pushed_at_ms: i64) -> Result<bool> {
        self.write(async move |c: &Client| {
            exec(
                c,
                "UPDATE manifests SET created_at = $1
                 WHERE repository_id = (SELECT id FROM repositories WHERE registry = $2 AND name = $3)
                   AND digest = $4",
                &[&pushed_at_ms, &repo.registry.as_str(), &repo.name.as_str(), &digest.as_str()],
            )
            .await
            .map(|n| n > 0)
        })
        .await
    }

    async fn restore_repository_created_at(&self, repo: &RepositoryKey, created_at_ms: i64) -> Result<bool> {
        self.write(async move |c: &Client| {
            exec(
                c,
                "UPDATE repositories SET created_at = $1 WHERE registry = $2 AND name = $3",
                &[&created_at_ms, &repo.registry.as_str(), &repo.name.as_str()],
            )
            .await
            .map(|n| n > 0)
        })
        .await
    }
}

/// The database's clock in epoch milliseconds (the same for every node).
const DB_NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

#[async_trait]
impl LeaseMeta for PgMeta {
    async fn acquire_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> Result<bool> {
        // One upsert at READ COMMITTED. A new lease inserts its row; an existing row is locked
        // and, if another upsert changed it meanwhile, re-read before the WHERE decides: the
        // lease is taken only when it is free, expired or already this holder's. Of two
        // holders racing for a free lease one inserts, and the other, waiting on its row,
        // finds it held and unexpired. Expiry is read on the database's clock.
        let taken = self
            .single(async |c: &Client| {
                row(
                    c,
                    &format!(
                        "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, {DB_NOW_MS} + $3)
                         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
                         WHERE leases.holder = excluded.holder OR leases.expires_at <= {DB_NOW_MS}
                         RETURNING 1"
                    ),
                    &[&name, &holder, &ttl_ms.max(0)],
                )
                .await
            })
            .await?;
        Ok(taken.is_some())
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        self.single(async |c: &Client| {
            exec(c, "DELETE FROM leases WHERE name = $1 AND holder = $2", &[&name, &holder]).await.map(drop)
        })
        .await
    }
}
