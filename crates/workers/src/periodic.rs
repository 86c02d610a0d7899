//! Work that runs on a timer (collection, sweeps, flushes, scrubs) as a [`Worker`].

use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::worker::{Scope, Step, Worker, WorkerState, WorkerStatus};

/// Counts a run reports, by name (`("blobs_removed", 3)`).
pub type Counts = Vec<(&'static str, u64)>;

/// One run of periodic work. The logic lives in the core; a job calls it.
#[async_trait]
pub trait Job: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    fn scope(&self) -> Scope {
        Scope::Cluster
    }

    /// One run. A long run may watch `stop` and end early where that is clean.
    ///
    /// # Errors
    /// The run failed; the next one comes on schedule.
    async fn run(&self, stop: &CancellationToken) -> anyhow::Result<Counts>;
}

/// When the first run comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum First {
    /// At once (finishing whatever a crash interrupted).
    AtStart,
    /// One interval after start.
    AfterInterval,
}

/// How often a job runs.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Pause from the end of one run to the start of the next.
    pub every: Duration,
    pub first: First,
    /// The throttle (Garage's "tranquility"): after a run that took `t`, the next starts no
    /// sooner than `tranquility * t` later. 9 keeps back-to-back runs to a tenth of a core.
    pub tranquility: u32,
    /// Run once more on shutdown.
    pub on_exit: bool,
}

impl Schedule {
    #[must_use]
    pub fn every(every: Duration, first: First) -> Self {
        Schedule { every, first, tranquility: 0, on_exit: false }
    }

    #[must_use]
    pub fn tranquility(mut self, factor: u32) -> Self {
        self.tranquility = factor;
        self
    }

    #[must_use]
    pub fn on_exit(mut self) -> Self {
        self.on_exit = true;
        self
    }
}

/// A [`Job`] on a [`Schedule`].
pub struct Periodic<J> {
    job: J,
    schedule: Schedule,
    next: Instant,
}

impl<J: Job> Periodic<J> {
    pub fn new(job: J, schedule: Schedule) -> Self {
        let now = Instant::now();
        let next = match schedule.first {
            First::AtStart => now,
            First::AfterInterval => now + schedule.every,
        };
        Periodic { job, schedule, next }
    }
}

#[async_trait]
impl<J: Job> Worker for Periodic<J> {
    fn name(&self) -> &str {
        self.job.name()
    }

    fn scope(&self) -> Scope {
        self.job.scope()
    }

    fn status(&self) -> WorkerStatus {
        let ahead = self.next.saturating_duration_since(Instant::now());
        let ahead = i64::try_from(ahead.as_millis()).unwrap_or(i64::MAX);
        WorkerStatus { next_run_at_ms: Some(berth_types::now_ms().saturating_add(ahead)), progress: None }
    }

    async fn work(&mut self, stop: &CancellationToken) -> anyhow::Result<Step> {
        let started = Instant::now();
        let result = self.job.run(stop).await;
        let pause = self.schedule.every.max(started.elapsed() * self.schedule.tranquility);
        self.next = Instant::now() + pause;
        Ok(Step { next: WorkerState::Idle, counts: result? })
    }

    async fn wait_for_work(&mut self) -> WorkerState {
        tokio::time::sleep_until(self.next).await;
        WorkerState::Busy
    }

    fn work_on_exit(&self) -> bool {
        self.schedule.on_exit
    }
}
