//! Starts workers, runs each in its own task, keeps their state on a board, and stops them.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use berth_types::now_ms;
use futures_util::FutureExt;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::lease::Lease;
use crate::worker::{Scope, Worker, WorkerState, WorkerStatus};

/// How long a worker refused its lease waits before asking again: a lease whose holder died
/// (10 s unless renewed) is taken over at most this long after it expires.
const LEASE_RETRY: Duration = Duration::from_secs(2);
/// How long a worker whose step panicked pauses before it waits for work again.
const PANIC_PAUSE: Duration = Duration::from_secs(10);
/// How often the status file is rewritten, when something changed.
const WRITE_EVERY: Duration = Duration::from_secs(1);
/// How often shutdown says which workers it still waits for.
const STOP_NOTICE: Duration = Duration::from_secs(10);

/// A worker's state on the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    /// Waiting for work (its last step, if any, succeeded).
    Idle,
    /// A step is in flight.
    Running,
    /// Waiting for work; its last step failed.
    Failed,
    /// Another node holds its lease.
    WaitingForLease,
    /// Finished for good ([`WorkerState::Done`]).
    Done,
    /// Stopped by shutdown.
    Stopped,
}

/// One worker's line on the board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub name: String,
    pub scope: Scope,
    pub state: RunState,
    /// Steps run, and how many of them failed.
    pub runs: u64,
    pub errors: u64,
    /// When the last finished step started, in milliseconds since the Unix epoch.
    pub last_run_at_ms: Option<i64>,
    pub last_duration_ms: Option<u64>,
    /// `ok`, `ok: removed=3`, or `failed: <error>`.
    pub last_outcome: Option<String>,
    #[serde(flatten)]
    pub status: WorkerStatus,
}

/// What the status file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusFile {
    /// The process that wrote it.
    pub pid: u32,
    /// False once that process stopped its workers.
    pub running: bool,
    pub updated_at_ms: i64,
    pub workers: Vec<Report>,
}

impl StatusFile {
    /// Reads a status file written by [`Manager::start`].
    ///
    /// # Errors
    /// When the file cannot be read or parsed.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    fn write(&self, path: &Path) -> anyhow::Result<()> {
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    }
}

#[derive(Default)]
struct Board {
    reports: Mutex<Vec<Report>>,
    changed: AtomicBool,
}

impl Board {
    fn update(&self, i: usize, f: impl FnOnce(&mut Report)) {
        let mut reports = self.reports.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut reports[i]);
        self.changed.store(true, Ordering::Release);
    }

    fn snapshot(&self) -> Vec<Report> {
        self.reports.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// Runs workers. Start it with [`Manager::start`], add workers with [`Manager::spawn`], stop
/// them all with [`Manager::stop`].
pub struct Manager {
    lease: Arc<dyn Lease>,
    stop: CancellationToken,
    board: Arc<Board>,
    tasks: Vec<(String, JoinHandle<()>)>,
    writer: Option<(PathBuf, JoinHandle<()>)>,
}

impl Manager {
    /// A manager taking leases from `lease`; with `status_file`, the board is written there
    /// (at most once a second, and when the workers stopped). Call within a Tokio runtime.
    pub fn start(lease: Arc<dyn Lease>, status_file: Option<PathBuf>) -> Self {
        let stop = CancellationToken::new();
        let board = Arc::new(Board::default());
        let writer = status_file.map(|path| {
            let (board, stop, file) = (Arc::clone(&board), stop.clone(), path.clone());
            let task = tokio::spawn(async move {
                loop {
                    if board.changed.swap(false, Ordering::AcqRel) {
                        write_status(&board, &file, true);
                    }
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(WRITE_EVERY) => {}
                    }
                }
            });
            (path, task)
        });
        Manager { lease, stop, board, tasks: Vec::new(), writer }
    }

    /// Starts `worker` in its own task.
    ///
    /// # Panics
    /// When a worker of the same name runs already.
    pub fn spawn(&mut self, worker: impl Worker) {
        let name = worker.name().to_owned();
        assert!(self.tasks.iter().all(|(n, _)| *n != name), "two workers named {name}");
        let index = {
            let mut reports = self.board.reports.lock().unwrap_or_else(PoisonError::into_inner);
            reports.push(Report {
                name: name.clone(),
                scope: worker.scope(),
                state: RunState::Idle,
                runs: 0,
                errors: 0,
                last_run_at_ms: None,
                last_duration_ms: None,
                last_outcome: None,
                status: worker.status(),
            });
            reports.len() - 1
        };
        self.board.changed.store(true, Ordering::Release);
        let runner = Runner {
            worker: Box::new(worker),
            name: name.clone(),
            index,
            board: Arc::clone(&self.board),
            lease: Arc::clone(&self.lease),
            stop: self.stop.clone(),
        };
        self.tasks.push((name, tokio::spawn(runner.run())));
    }

    /// Every worker's state now.
    #[must_use]
    pub fn reports(&self) -> Vec<Report> {
        self.board.snapshot()
    }

    /// Asks every worker to stop and waits until each has: a worker waiting for work stops at
    /// once, a step in flight runs to its end (or to where it chooses to stop), and workers
    /// that [work on exit](Worker::work_on_exit) run their last step. Then the status file is
    /// written a last time.
    pub async fn stop(self) -> Vec<Report> {
        self.stop.cancel();
        for (name, mut task) in self.tasks {
            loop {
                tokio::select! {
                    r = &mut task => {
                        if let Err(e) = r {
                            tracing::error!(worker = %name, error = %e, "worker task ended abnormally");
                        }
                        break;
                    }
                    () = tokio::time::sleep(STOP_NOTICE) => {
                        tracing::info!(worker = %name, "shutting down: waiting for the worker to finish its step");
                    }
                }
            }
        }
        if let Some((path, task)) = self.writer {
            let _ = task.await;
            write_status(&self.board, &path, false);
        }
        self.board.snapshot()
    }
}

fn write_status(board: &Board, path: &Path, running: bool) {
    let file = StatusFile { pid: std::process::id(), running, updated_at_ms: now_ms(), workers: board.snapshot() };
    if let Err(e) = file.write(path) {
        tracing::warn!(error = format!("{e:#}"), "cannot write the workers' status file");
    }
}

struct Runner {
    worker: Box<dyn Worker>,
    name: String,
    index: usize,
    board: Arc<Board>,
    lease: Arc<dyn Lease>,
    stop: CancellationToken,
}

impl Runner {
    async fn run(mut self) {
        let mut state = WorkerState::Idle;
        loop {
            self.board.update(self.index, |r| r.status = self.worker.status());
            match state {
                WorkerState::Done => {
                    self.board.update(self.index, |r| r.state = RunState::Done);
                    return;
                }
                WorkerState::Idle => {
                    tokio::select! {
                        biased;
                        () = self.stop.cancelled() => break,
                        next = self.worker.wait_for_work() => state = next,
                    }
                }
                WorkerState::Throttled(pause) => {
                    tokio::select! {
                        biased;
                        () = self.stop.cancelled() => break,
                        () = tokio::time::sleep(pause) => state = WorkerState::Busy,
                    }
                }
                WorkerState::Busy => {
                    if self.stop.is_cancelled() {
                        break;
                    }
                    match self.leased_step().await {
                        Some(next) => state = next,
                        None => {
                            tokio::select! {
                                biased;
                                () = self.stop.cancelled() => break,
                                () = tokio::time::sleep(LEASE_RETRY) => {}
                            }
                        }
                    }
                }
            }
        }
        if self.worker.work_on_exit() {
            self.leased_step().await;
        }
        self.board.update(self.index, |r| {
            r.state = RunState::Stopped;
            r.status = self.worker.status();
        });
    }

    /// A step under the lease; `None` when the lease was refused.
    async fn leased_step(&mut self) -> Option<WorkerState> {
        if self.worker.scope() == Scope::Node {
            return Some(self.step().await);
        }
        match self.lease.acquire(&self.name).await {
            Ok(true) => {}
            Ok(false) => {
                self.board.update(self.index, |r| r.state = RunState::WaitingForLease);
                return None;
            }
            Err(e) => {
                tracing::warn!(worker = %self.name, error = format!("{e:#}"), "cannot take the worker's lease");
                self.board.update(self.index, |r| r.state = RunState::WaitingForLease);
                return None;
            }
        }
        let next = self.step().await;
        self.lease.release(&self.name).await;
        Some(next)
    }

    /// One step, logged and put on the board.
    async fn step(&mut self) -> WorkerState {
        self.board.update(self.index, |r| r.state = RunState::Running);
        let started_at = now_ms();
        let started = Instant::now();
        let result = AssertUnwindSafe(self.worker.work(&self.stop)).catch_unwind().await;
        let took = started.elapsed();
        let duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        let name = self.name.as_str();
        let (outcome, failed, next) = match result {
            Ok(Ok(step)) => {
                let counts = step.counts.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
                if step.counts.iter().any(|(_, v)| *v > 0) {
                    tracing::info!(worker = name, outcome = "ok", duration_ms, counts, "worker run");
                } else {
                    tracing::debug!(worker = name, outcome = "ok", duration_ms, counts, "worker run");
                }
                let outcome = if counts.is_empty() { "ok".to_owned() } else { format!("ok: {counts}") };
                (outcome, false, step.next)
            }
            Ok(Err(e)) => {
                let error = format!("{e:#}");
                tracing::warn!(worker = name, outcome = "failed", duration_ms, error, "worker run");
                (format!("failed: {error}"), true, WorkerState::Idle)
            }
            Err(panic) => {
                let error = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(worker = name, outcome = "panicked", duration_ms, error, "worker run");
                (format!("panicked: {error}"), true, WorkerState::Throttled(PANIC_PAUSE))
            }
        };
        self.board.update(self.index, |r| {
            r.state = if failed { RunState::Failed } else { RunState::Idle };
            r.runs += 1;
            r.errors += u64::from(failed);
            r.last_run_at_ms = Some(started_at);
            r.last_duration_ms = Some(duration_ms);
            r.last_outcome = Some(outcome);
        });
        next
    }
}
