//! Background work: one [`Worker`] protocol (Garage's `src/util/background/worker.rs`), one
//! [`Manager`] that starts every worker in one place and stops them on shutdown, and the
//! registry's periodic jobs ([`jobs`]) run on it.
//!
//! - A worker does its work in steps ([`Worker::work`]) and says what comes next
//!   ([`WorkerState`]): another step at once, another after a pause, nothing until
//!   [`Worker::wait_for_work`] returns, or nothing ever again.
//! - Shutdown cancels one [`CancellationToken`]. A worker waiting for work stops at once; a
//!   step in flight is never dropped midway: it runs to its end, or abandons cleanly at a
//!   point of its own choosing when it watches the token it is given (the scrubber stops
//!   between two blobs). [`Manager::stop`] returns when every worker has stopped.
//! - Every step is logged once (worker, outcome, duration, counts) and its state is kept on a
//!   board ([`Report`]): idle, running, failed, waiting for a lease, stopped. The server writes
//!   the board to a status file that `berth admin workers` reads.
//! - A worker of [`Scope::Cluster`] runs a step only while it holds a [`Lease`], so that once
//!   several nodes share a store only one of them runs it. [`LocalLease`] (one node) always
//!   grants.
//!
//! The jobs' logic lives in the registry core; this crate only schedules it.

pub mod jobs;
mod lease;
mod manager;
mod periodic;
mod worker;

pub use lease::{Lease, LocalLease};
pub use manager::{Manager, Report, RunState, StatusFile};
pub use periodic::{Counts, First, Job, Periodic, Schedule};
pub use tokio_util::sync::CancellationToken;
pub use worker::{Scope, Step, Worker, WorkerState, WorkerStatus};
