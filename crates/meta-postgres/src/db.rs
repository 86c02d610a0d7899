//! Connections, statements and transactions: the only place that talks to the pool.
//!
//! A command borrows one connection for its whole run and gives it back only if the exchange
//! with the server finished. A command whose deadline passes (a server that stopped answering)
//! or that panicked midway drops its connection instead, so the pool never hands out one with a
//! transaction or a query still open on it.
//!
//! Writes run at SERIALIZABLE (see the crate documentation for why) and are retried from the
//! start when the server reports a serialization failure or a deadlock; reads that one
//! statement answers run alone at READ COMMITTED.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use berth_meta::{Error, Result};
use deadpool_postgres::{ClientWrapper, Object};
use futures_util::future::join;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::error::{self, is_retryable, pool};

/// The connection type commands are given.
pub(crate) type Client = ClientWrapper;

/// Parameters of a statement.
pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// How many times a write is run before a serialization failure is given to the caller (as
/// `Unavailable`: the request may be retried).
const MAX_ATTEMPTS: u32 = 12;

/// A pooled connection that goes back to the pool only when left clean.
struct Conn {
    object: Option<Object>,
    clean: bool,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if !self.clean
            && let Some(object) = self.object.take()
        {
            // Closing the connection ends whatever the server was doing for it (an open
            // transaction rolls back).
            drop(Object::take(object));
        }
    }
}

impl Conn {
    fn client(&self) -> &Client {
        self.object.as_deref().expect("a connection in use")
    }
}

/// The pool with the bounds every command keeps.
pub(crate) struct Db {
    pub(crate) pool: deadpool_postgres::Pool,
    /// The longest one command may take, waiting for a connection and retries included.
    pub(crate) deadline: Duration,
    /// Transactions run again after a serialization failure or a deadlock, since opening.
    pub(crate) retries: AtomicU64,
}

impl Db {
    async fn conn(&self) -> Result<Conn> {
        Ok(Conn { object: Some(self.pool.get().await.map_err(pool)?), clean: false })
    }
}

/// Runs `f` with a pooled connection, within the deadline in all (waiting for the connection
/// included).
pub(crate) async fn read<T, F>(db: &Db, f: F) -> Result<T>
where
    F: AsyncFnOnce(&Client) -> Result<T>,
{
    bounded(db.deadline, async {
        let mut conn = db.conn().await?;
        let result = f(conn.client()).await;
        conn.clean = true;
        result
    })
    .await
}

/// The isolation of a write transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isolation {
    Serializable,
    ReadCommitted,
}

/// A queue that retried writes of one repository wait in, one at a time, before their
/// transaction starts: a session advisory lock on the repository, taken before `START
/// TRANSACTION` and given back after its end.
///
/// It is not what makes the writes correct (serializable isolation is, and would be without
/// it). It keeps concurrent writes to one repository from colliding again and again: two
/// serializable transactions that each read, then write, the same index pages abort one
/// another, and under many writers one could lose every retry. A first attempt runs without
/// the queue (no extra round trip, full concurrency); an attempt after a serialization failure
/// queues, so it takes its snapshot after the writers ahead of it committed. The lock is taken
/// while the connection holds no other lock, so it cannot be part of a deadlock; a connection
/// that dies or is dropped midway releases it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Queue(i32);

/// The advisory lock class of repository queues ("be" in ASCII; the migrations' lock uses the
/// one-key space, which does not overlap the two-key one).
const QUEUE_CLASS: i32 = 0x6265;

impl Queue {
    /// The queue of a repository (names hashed with FNV-1a; two that collide share a queue,
    /// which costs only concurrency).
    pub(crate) fn repository(key: &berth_types::RepositoryKey) -> Queue {
        let mut h: u32 = 0x811c_9dc5;
        for b in key.registry.as_str().bytes().chain([b'/']).chain(key.name.as_str().bytes()) {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        Queue(i32::from_ne_bytes(h.to_ne_bytes()))
    }
}

/// Runs `f` in a transaction on a pooled connection and commits it, running it again from the
/// start (a fresh copy of `f`) when the server could not serialize it with concurrent
/// transactions or chose it as a deadlock victim. Nothing of an attempt that fails, or of one
/// that `f` answers with an error, is committed. With a queue, a retry waits its turn in it
/// first.
pub(crate) async fn write<T, F>(db: &Db, isolation: Isolation, queue: Option<Queue>, f: F) -> Result<T>
where
    F: AsyncFnOnce(&Client) -> Result<T> + Clone,
{
    write_queued_by(db, isolation, async |_: &Client| Ok(queue), f).await
}

/// [`write`], with the queue found by `queue` on the write's connection (outside any
/// transaction) before the first retry, and only if there is one: for a write whose repository
/// is known only to the database (an upload's), so that its first attempt costs no extra round
/// trip. A failure to find it means no queue.
pub(crate) async fn write_queued_by<T, F, Q>(db: &Db, isolation: Isolation, queue: Q, f: F) -> Result<T>
where
    F: AsyncFnOnce(&Client) -> Result<T> + Clone,
    Q: AsyncFnOnce(&Client) -> Result<Option<Queue>>,
{
    let begin = match isolation {
        Isolation::Serializable => "START TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        Isolation::ReadCommitted => "START TRANSACTION ISOLATION LEVEL READ COMMITTED",
    };
    bounded(db.deadline, async {
        let mut conn = db.conn().await?;
        let mut attempt = 1;
        let mut queue = Some(queue);
        let mut statements: Option<(String, String)> = None;
        loop {
            conn.clean = false;
            let c = conn.client();
            if attempt == 2
                && let Some(find) = queue.take()
            {
                statements = find(c).await.ok().flatten().map(|Queue(id)| {
                    (
                        format!("SELECT pg_advisory_lock({QUEUE_CLASS}, {id})"),
                        format!("SELECT pg_advisory_unlock({QUEUE_CLASS}, {id})"),
                    )
                });
            }
            let (lock, unlock) = match &statements {
                Some((lock, unlock)) => (Some(lock), Some(unlock)),
                None => (None, None),
            };
            // The lock and the start are sent together (one round trip); the server runs the
            // start only once the lock is granted, so the snapshot comes after the queue.
            let queued = if attempt > 1 { lock } else { None };
            let begun = match queued {
                Some(lock) => {
                    let (locked, begun) = join(c.batch_execute(lock), c.batch_execute(begin)).await;
                    locked.and(begun)
                }
                None => c.batch_execute(begin).await,
            };
            let outcome = async {
                begun.map_err(error::db)?;
                let value = f.clone()(c).await?;
                c.batch_execute("COMMIT").await.map_err(error::db)?;
                Ok(value)
            }
            .await;
            // A failed statement already aborted the transaction and a failed COMMIT ended it;
            // ROLLBACK ends it in every case (a mere warning when none is open). A connection
            // that cannot end its transaction or leave the queue is dropped, not pooled: closing
            // it does both.
            if outcome.is_err() && c.batch_execute("ROLLBACK").await.is_err() {
                return outcome;
            }
            if let Some(unlock) = unlock.filter(|_| queued.is_some())
                && c.batch_execute(unlock).await.is_err()
            {
                return outcome;
            }
            conn.clean = true;
            match outcome {
                Err(e) if is_retryable(&e) && attempt < MAX_ATTEMPTS => {
                    tracing::debug!(attempt, error = %e, "metadata transaction retried");
                    db.retries.fetch_add(1, Ordering::Relaxed);
                    backoff(attempt).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    })
    .await
}

/// Sleeps a random time that grows with each attempt (up to about 50 ms), so transactions that
/// collided do not collide again in step.
async fn backoff(attempt: u32) {
    let ceiling_us = 500u64 << attempt.min(7);
    tokio::time::sleep(Duration::from_micros(fastrand::u64(ceiling_us / 4..=ceiling_us))).await;
}

async fn bounded<T>(deadline: Duration, f: impl Future<Output = Result<T>>) -> Result<T> {
    match tokio::time::timeout(deadline, f).await {
        Ok(result) => result,
        Err(_) => Err(Error::Unavailable(
            format!("the metadata database did not answer within {} ms", deadline.as_millis()).into(),
        )),
    }
}

/// Every row of a statement (prepared once per connection).
pub(crate) async fn rows(c: &Client, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
    let stmt = c.prepare_cached(sql).await.map_err(error::db)?;
    c.query(&stmt, params).await.map_err(error::db)
}

/// The row of a statement that returns at most one.
pub(crate) async fn row(c: &Client, sql: &str, params: Params<'_>) -> Result<Option<Row>> {
    let stmt = c.prepare_cached(sql).await.map_err(error::db)?;
    c.query_opt(&stmt, params).await.map_err(error::db)
}

/// The row of a statement that returns exactly one.
pub(crate) async fn one(c: &Client, sql: &str, params: Params<'_>) -> Result<Row> {
    let stmt = c.prepare_cached(sql).await.map_err(error::db)?;
    c.query_one(&stmt, params).await.map_err(error::db)
}

/// Runs a statement; how many rows it changed.
pub(crate) async fn exec(c: &Client, sql: &str, params: Params<'_>) -> Result<u64> {
    let stmt = c.prepare_cached(sql).await.map_err(error::db)?;
    c.execute(&stmt, params).await.map_err(error::db)
}
