//! Group commit: one task owns the single SQLite writer connection and runs the write jobs that
//! arrive while the previous commit was syncing as one transaction, one savepoint per job.
//!
//! A job's result is delivered only after the transaction that holds it has committed (and so
//! reached the disk: `synchronous = FULL`). A job that fails is rolled back to its savepoint
//! and does not disturb the others in its batch. Under load, N concurrent writers share one
//! fsync instead of queueing for N.

use std::sync::{Arc, Mutex};

use berth_meta::{Error, Result};
use futures_util::future::BoxFuture;
use sqlx::SqliteConnection;
use tokio::sync::{mpsc, oneshot};

/// Most jobs in one transaction.
const MAX_BATCH: usize = 128;

type Run = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, bool> + Send>;
/// Answers the caller: `None` when the job's transaction committed, else why it did not.
type Deliver = Box<dyn FnOnce(Option<String>) + Send>;

struct Job {
    run: Run,
    deliver: Deliver,
}

#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

fn stopped() -> Error {
    Error::Backend("metadata writer has stopped".into())
}

impl Writer {
    pub(crate) fn start(pool: sqlx::SqlitePool) -> Self {
        let (tx, rx) = mpsc::channel::<Job>(1024);
        tokio::spawn(run(pool, rx));
        Writer { jobs: tx }
    }

    /// Runs `f` inside the next group transaction and returns its result once committed.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let slot: Arc<Mutex<Option<Result<T>>>> = Arc::new(Mutex::new(None));
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let fill = Arc::clone(&slot);
        let run: Run = Box::new(move |conn: &mut SqliteConnection| {
            Box::pin(async move {
                let result = f(conn).await;
                let keep = result.is_ok();
                *fill.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(result);
                keep
            })
        });
        let deliver: Deliver = Box::new(move |failure: Option<String>| {
            let result = slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
            let outcome = match (result, failure) {
                (Some(Err(e)), _) => Err(e),
                (Some(Ok(v)), None) => Ok(v),
                (Some(Ok(_)) | None, Some(why)) => {
                    Err(Error::Backend(format!("metadata transaction failed: {why}").into()))
                }
                (None, None) => Err(stopped()),
            };
            let _ = tx.send(outcome);
        });
        self.jobs.send(Job { run, deliver }).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

async fn exec(conn: &mut SqliteConnection, sql: &'static str) -> std::result::Result<(), String> {
    sqlx::raw_sql(sql).execute(conn).await.map(|_| ()).map_err(|e| e.to_string())
}

async fn run(pool: sqlx::SqlitePool, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let failure = match pool.acquire().await {
            Ok(mut conn) => run_batch(&mut conn, &mut batch).await,
            Err(e) => Some(e.to_string()),
        };
        for job in batch {
            (job.deliver)(failure.clone());
        }
    }
}

/// Runs every job of `batch` in one transaction; `None` when it committed. Jobs are left in
/// `batch` (their `run` taken) for delivery.
async fn run_batch(conn: &mut SqliteConnection, batch: &mut [Job]) -> Option<String> {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE").await {
        return Some(e);
    }
    for job in batch.iter_mut() {
        let run = std::mem::replace(&mut job.run, Box::new(|_| Box::pin(async { false })));
        let step = async {
            exec(conn, "SAVEPOINT job").await?;
            if run(conn).await {
                exec(conn, "RELEASE job").await
            } else {
                exec(conn, "ROLLBACK TO job").await?;
                exec(conn, "RELEASE job").await
            }
        };
        if let Err(e) = step.await {
            let _ = exec(conn, "ROLLBACK").await;
            return Some(e);
        }
    }
    match exec(conn, "COMMIT").await {
        Ok(()) => None,
        Err(e) => {
            let _ = exec(conn, "ROLLBACK").await;
            Some(e)
        }
    }
}
