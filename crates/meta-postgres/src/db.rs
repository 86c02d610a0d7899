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

/// Runs `f` in a transaction on a pooled connection and commits it, running it again from the
/// start (a fresh copy of `f`) when the server could not serialize it with concurrent
/// transactions or chose it as a deadlock victim. Nothing of an attempt that fails, or of one
/// that `f` answers with an error, is committed.
pub(crate) async fn write<T, F>(db: &Db, isolation: Isolation, f: F) -> Result<T>
where
    F: AsyncFnOnce(&Client) -> Result<T> + Clone,
{
    bounded(db.deadline, async {
        let mut conn = db.conn().await?;
        let mut attempt = 1;
        loop {
            conn.clean = false;
            let c = conn.client();
            c.batch_execute(match isolation {
                Isolation::Serializable => "START TRANSACTION ISOLATION LEVEL SERIALIZABLE",
                Isolation::ReadCommitted => "START TRANSACTION ISOLATION LEVEL READ COMMITTED",
            })
            .await
            .map_err(error::db)?;
            let result = match f.clone()(c).await {
                Ok(value) => c.batch_execute("COMMIT").await.map(|()| value).map_err(error::db),
                Err(e) => {
                    // A failed statement already aborted the transaction; ROLLBACK ends it
                    // either way. A connection that cannot even roll back is dropped (dirty).
                    if c.batch_execute("ROLLBACK").await.is_err() {
                        return Err(e);
                    }
                    Err(e)
                }
            };
            conn.clean = true;
            match result {
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
