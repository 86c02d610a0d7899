//! The registry's periodic jobs. Each calls the core in one place; what a run does is the
//! core's business.

use std::sync::Arc;

use async_trait::async_trait;
use berth_registry::Registry;
use berth_types::now_ms;
use tokio_util::sync::CancellationToken;

use crate::periodic::{Counts, Job};
use crate::worker::{Scope, Step, Worker, WorkerState};

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Writes the pull times buffered in memory to the metadata store.
async fn flush_pulls(registry: &Registry) -> anyhow::Result<u64> {
    Ok(count(registry.maintenance.flush_pulls().await?))
}

/// Garbage collection: unreferenced blobs past their grace period, interrupted runs, orphans.
pub struct Gc(pub Arc<Registry>);

#[async_trait]
impl Job for Gc {
    fn name(&self) -> &'static str {
        "gc"
    }

    async fn run(&self, _stop: &CancellationToken) -> anyhow::Result<Counts> {
        // Not stoppable midway: a run is safe to interrupt only by a crash (the next resumes
        // it), so shutdown waits for it.
        let r = self.0.maintenance.gc_run_once(now_ms()).await?;
        Ok(vec![
            ("blobs_removed", r.blobs_removed),
            ("bytes_freed", r.bytes_freed),
            ("tombstones_finished", r.tombstones_finished),
            ("orphans_removed", r.orphans_removed),
            ("touches_forgotten", r.touches_forgotten),
        ])
    }
}

/// Applies every repository's lifecycle policy.
pub struct Lifecycle(pub Arc<Registry>);

#[async_trait]
impl Job for Lifecycle {
    fn name(&self) -> &'static str {
        "lifecycle"
    }

    async fn run(&self, _stop: &CancellationToken) -> anyhow::Result<Counts> {
        // Pull times first, so that sinceImagePulled rules see the latest. Each node flushes
        // its own buffer on its own schedule as well; this one is this node's.
        let pulls = flush_pulls(&self.0).await?;
        let expired = self.0.lifecycle.run_all().await?;
        Ok(vec![("pulls_recorded", pulls), ("images_expired", count(expired.len()))])
    }
}

/// Gives free space in the metadata store back to the filesystem, a bounded amount a step.
pub struct Reclaim(pub Arc<Registry>);

/// Pages given back per call (16 MiB of 4 KiB pages): one call holds the metadata writer
/// briefly, so writes wait little.
const RECLAIM_PAGES: u32 = 4096;
/// How long one step goes on giving pages back, call after call, while there are more.
const RECLAIM_BUDGET: std::time::Duration = std::time::Duration::from_secs(2);

#[async_trait]
impl Job for Reclaim {
    fn name(&self) -> &'static str {
        "reclaim"
    }

    async fn run(&self, stop: &CancellationToken) -> anyhow::Result<Counts> {
        let started = std::time::Instant::now();
        let mut total = 0;
        loop {
            let n = self.0.maintenance.reclaim(RECLAIM_PAGES).await?;
            total += n;
            if n < u64::from(RECLAIM_PAGES) || started.elapsed() >= RECLAIM_BUDGET || stop.is_cancelled() {
                break;
            }
        }
        Ok(vec![("pages_reclaimed", total)])
    }
}

/// Removes abandoned upload sessions.
pub struct SweepUploads(pub Arc<Registry>);

#[async_trait]
impl Job for SweepUploads {
    fn name(&self) -> &'static str {
        "upload-sweep"
    }

    async fn run(&self, _stop: &CancellationToken) -> anyhow::Result<Counts> {
        Ok(vec![("uploads_removed", count(self.0.maintenance.sweep_uploads().await?))])
    }
}

/// Writes the pull times this node buffered (`lastRecordedPullTime`).
pub struct FlushPulls(pub Arc<Registry>);

#[async_trait]
impl Job for FlushPulls {
    fn name(&self) -> &'static str {
        "pull-flush"
    }

    fn scope(&self) -> Scope {
        Scope::Node
    }

    async fn run(&self, _stop: &CancellationToken) -> anyhow::Result<Counts> {
        Ok(vec![("pulls_recorded", flush_pulls(&self.0).await?)])
    }
}

/// Reads every stored blob back and checks it against its digest, at `bytes_per_sec`
/// (0: unthrottled). Shutdown stops a run between two blobs; the next starts over.
pub struct Scrub {
    pub registry: Arc<Registry>,
    pub bytes_per_sec: u64,
}

#[async_trait]
impl Job for Scrub {
    fn name(&self) -> &'static str {
        "scrub"
    }

    async fn run(&self, stop: &CancellationToken) -> anyhow::Result<Counts> {
        let r = self.registry.maintenance.scrub(self.bytes_per_sec, || stop.is_cancelled()).await?;
        if !r.damaged.is_empty() || !r.missing.is_empty() {
            tracing::error!(
                blobs = r.checked,
                damaged = r.damaged.len(),
                missing = r.missing.len(),
                "scrub found blobs to repair (see above); pushing them again repairs them"
            );
        }
        Ok(vec![
            ("blobs_checked", r.checked),
            ("bytes_checked", r.bytes),
            ("damaged", count(r.damaged.len())),
            ("missing", count(r.missing.len())),
        ])
    }
}

/// Runs queued scans and re-matches on this node, one job at a time, and writes this process's
/// scan counters to `stats_file` after a step that ran any. It waits for a scan asked for on this
/// node, or `poll` (jobs queued through other nodes, or before a restart); a step that used its
/// whole budget is followed by another at once.
pub struct Scans {
    pub registry: Arc<Registry>,
    /// This node, as the holder of its claims on jobs.
    pub holder: String,
    pub stats_file: Option<std::path::PathBuf>,
    pub poll: std::time::Duration,
}

/// Jobs one step runs at most, so shutdown is not held up for long.
const SCANS_PER_STEP: usize = 16;

impl Scans {
    fn write_stats(&self) {
        let Some(path) = &self.stats_file else { return };
        let s = self.registry.scanning.stats();
        let tmp = path.with_extension("tmp");
        let written = serde_json::to_vec(&s)
            .map_err(anyhow::Error::from)
            .and_then(|b| std::fs::write(&tmp, b).map_err(anyhow::Error::from))
            .and_then(|()| std::fs::rename(&tmp, path).map_err(anyhow::Error::from));
        if let Err(e) = written {
            tracing::warn!(error = format!("{e:#}"), "cannot write the scan counters");
        }
    }
}

#[async_trait]
impl Worker for Scans {
    fn name(&self) -> &'static str {
        "scan"
    }

    fn scope(&self) -> Scope {
        // Every node claims from the shared queue; claims keep two nodes off one job.
        Scope::Node
    }

    async fn work(&mut self, stop: &CancellationToken) -> anyhow::Result<Step> {
        let mut ran = 0;
        while ran < SCANS_PER_STEP && !stop.is_cancelled() {
            let n = self.registry.scanning.run_jobs(&self.holder, 1).await?;
            if n == 0 {
                break;
            }
            ran += n;
        }
        if ran == 0 {
            return Ok(Step { next: WorkerState::Idle, counts: Vec::new() });
        }
        self.write_stats();
        let s = self.registry.scanning.stats();
        Ok(Step {
            next: if ran == SCANS_PER_STEP { WorkerState::Busy } else { WorkerState::Idle },
            counts: vec![
                ("jobs", count(ran)),
                ("layer_reads", s.layer_reads),
                ("layer_hits", s.layer_hits),
                ("rematched", s.rematched),
            ],
        })
    }

    async fn wait_for_work(&mut self) -> WorkerState {
        // Both arms are cancel-safe: a notification not taken stays for the next wait.
        tokio::select! {
            () = self.registry.scanning.requested() => {}
            () = tokio::time::sleep(self.poll) => {}
        }
        WorkerState::Busy
    }
}
