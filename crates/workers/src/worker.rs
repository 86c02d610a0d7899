//! The worker protocol.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// What a worker asks of its runner next (Garage's `WorkerState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WorkerState {
    /// More work is waiting: run another step at once.
    Busy,
    /// More work is waiting, but pause this long first (the throttle).
    Throttled(Duration),
    /// Nothing to do until [`Worker::wait_for_work`] returns.
    #[default]
    Idle,
    /// Finished for good: the worker is not called again.
    Done,
}

/// Where a worker runs once several nodes share one store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// On one node at a time: each step needs the [`Lease`](crate::Lease) on the worker's name.
    Cluster,
    /// On every node, on that node's own state (a buffer in memory, a certificate file).
    Node,
}

/// What one step did: what comes next, and counts for the log line and the board
/// (`("blobs_removed", 3)`).
#[derive(Debug, Default)]
pub struct Step {
    pub next: WorkerState,
    pub counts: Vec<(&'static str, u64)>,
}

/// What a worker tells about itself beyond its state (Garage's `WorkerStatus`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerStatus {
    /// When the next step is due, in milliseconds since the Unix epoch, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_run_at_ms: Option<i64>,
    /// Free-form progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
}

/// A background worker.
///
/// The runner calls [`wait_for_work`](Worker::wait_for_work) first, then
/// [`work`](Worker::work) as the returned [`WorkerState`] says. On shutdown the wait is
/// dropped (so it must be cancel-safe), while a step in flight runs to its end.
#[async_trait]
pub trait Worker: Send + 'static {
    /// Unique among the workers of one manager; names the worker in logs, on the board and
    /// in the lease.
    fn name(&self) -> &str;

    /// [`Scope::Cluster`] unless the worker works on node-local state.
    fn scope(&self) -> Scope {
        Scope::Cluster
    }

    fn status(&self) -> WorkerStatus {
        WorkerStatus::default()
    }

    /// One step. `stop` is cancelled on shutdown: a long step may watch it and return early
    /// at a point where stopping is clean; otherwise it simply runs to its end.
    ///
    /// # Errors
    /// The step failed; it is logged and counted, and the worker then waits for work (so
    /// [`wait_for_work`](Worker::wait_for_work) decides when it is tried again).
    async fn work(&mut self, stop: &CancellationToken) -> anyhow::Result<Step>;

    /// Waits until there is work, then says how to go on (usually [`WorkerState::Busy`]).
    async fn wait_for_work(&mut self) -> WorkerState;

    /// Whether to run one last step on shutdown (after the server stopped taking requests),
    /// as a buffer that must be written out does.
    fn work_on_exit(&self) -> bool {
        false
    }
}
