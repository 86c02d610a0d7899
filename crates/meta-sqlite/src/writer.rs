//! Group commit: one thread owns the single SQLite writer connection and runs the write jobs that
//! arrive while the previous commit was syncing as one transaction, one savepoint per job.
//!
//! A job's result is delivered only after the transaction that holds it has committed (and so
//! reached the disk: `synchronous = FULL`). A job that fails is rolled back to its savepoint
//! and does not disturb the others in its batch. Under load, N concurrent writers share one
//! fsync instead of queueing for N, and a job's statements run on the thread that owns the
//! connection, with no handoff per statement.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use berth_meta::{Error, Result};
use rusqlite::Connection;
use tokio::sync::oneshot;

/// Most jobs in one transaction.
const MAX_BATCH: usize = 256;

type Run = Box<dyn FnOnce(&Connection) -> bool + Send>;
/// Answers the caller: `None` when the job's transaction committed, else why it did not.
type Deliver = Box<dyn FnOnce(Option<(bool, String)>) + Send>;

struct Job {
    run: Run,
    deliver: Deliver,
    /// Whether the caller must not be answered before the job is on disk.
    durable: bool,
    /// Runs alone, outside any transaction (checkpoints, incremental vacuum).
    bare: bool,
}

pub(crate) struct Writer {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

fn stopped() -> Error {
    Error::Backend("metadata writer has stopped".into())
}

impl Writer {
    pub(crate) fn start(conn: Connection) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("berth-meta-writer".into())
            .spawn(move || run(&conn, &rx))
            .expect("spawn the metadata writer thread");
        Writer { jobs: Mutex::new(Some(tx)), thread: Mutex::new(Some(thread)) }
    }

    /// Runs `f` inside the next group transaction and returns its result once committed and
    /// synced to disk.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.submit(f, true, false).await
    }

    /// Like `write`, but answers once committed, possibly before the commit reaches the disk: a
    /// crash may lose it (never tear it). A later durable commit syncs it too.
    pub(crate) async fn write_lazy<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.submit(f, false, false).await
    }

    /// Runs `f` on the writer connection between group transactions, alone and outside any
    /// transaction (for statements that may not run inside one). `f` manages its own
    /// transactions, if any.
    pub(crate) async fn bare<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.submit(f, true, true).await
    }

    async fn submit<T, F>(&self, f: F, durable: bool, bare: bool) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let slot: Arc<Mutex<Option<Result<T>>>> = Arc::new(Mutex::new(None));
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let fill = Arc::clone(&slot);
        let run: Run = Box::new(move |conn: &Connection| {
            let result = f(conn);
            let keep = result.is_ok();
            *fill.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(result);
            keep
        });
        let deliver: Deliver = Box::new(move |failure: Option<(bool, String)>| {
            let result = slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
            let outcome = match (result, failure) {
                (Some(Err(e)), _) => Err(e),
                (Some(Ok(v)), None) => Ok(v),
                (Some(Ok(_)) | None, Some((true, why))) => Err(Error::StorageFull(why)),
                (Some(Ok(_)) | None, Some((false, why))) => {
                    Err(Error::Backend(format!("metadata transaction failed: {why}").into()))
                }
                (None, None) => Err(stopped()),
            };
            let _ = tx.send(outcome);
        });
        {
            let jobs = self.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            jobs.as_ref().ok_or_else(stopped)?.send(Job { run, deliver, durable, bare }).map_err(|_| stopped())?;
        }
        rx.await.map_err(|_| stopped())?
    }

    /// Stops taking jobs, finishes the queued ones and joins the thread.
    pub(crate) fn close(&self) {
        self.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(t) = self.thread.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            let _ = t.join();
        }
    }
}

fn run(conn: &Connection, rx: &mpsc::Receiver<Job>) {
    // A bare job met while gathering a batch waits for the batch to commit.
    let mut held: Option<Job> = None;
    loop {
        let first = match held.take() {
            Some(job) => job,
            None => match rx.recv() {
                Ok(job) => job,
                Err(_) => break,
            },
        };
        if first.bare {
            let failure = conn.execute_batch("PRAGMA synchronous = FULL").err().map(|e| (false, e.to_string()));
            if failure.is_none() {
                (first.run)(conn);
            }
            (first.deliver)(failure);
            continue;
        }
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) if job.bare => {
                    held = Some(job);
                    break;
                }
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let durable = batch.iter().any(|j| j.durable);
        let mut delivers = Vec::with_capacity(batch.len());
        let mut runs = Vec::with_capacity(batch.len());
        for job in batch {
            runs.push(job.run);
            delivers.push(job.deliver);
        }
        // In WAL mode, NORMAL commits without syncing the log; the next FULL commit syncs it,
        // earlier frames included.
        let sync = if durable { "PRAGMA synchronous = FULL" } else { "PRAGMA synchronous = NORMAL" };
        let failure = conn.execute_batch(sync).and_then(|()| run_batch(conn, runs)).err().map(|e| {
            let full = e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull);
            (full, e.to_string())
        });
        for deliver in delivers {
            deliver(failure.clone());
        }
    }
}

/// Runs every job in one transaction. Jobs after a failure of the transaction itself do not run.
fn run_batch(conn: &Connection, runs: Vec<Run>) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        for run in runs {
            conn.execute_batch("SAVEPOINT job")?;
            if run(conn) {
                conn.execute_batch("RELEASE job")?;
            } else {
                conn.execute_batch("ROLLBACK TO job; RELEASE job")?;
            }
        }
        conn.execute_batch("COMMIT")
    })();
    if result.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}
