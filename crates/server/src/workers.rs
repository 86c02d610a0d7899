//! Background workers: timers that run jobs of the core. The jobs' logic lives in the core
//! (`Registry::gc_run_once`); this only schedules it and stops it on shutdown.

use std::sync::Arc;
use std::time::Duration;

use berth_registry::Registry;
use berth_types::now_ms;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;

/// Pause between runs when the interval is 0 ("continuously").
const CONTINUOUS_PAUSE: Duration = Duration::from_millis(10);

/// The throttle (Garage's "tranquility"): after a run that took `t`, the next starts no sooner
/// than `TRANQUILITY * t` later, so that back-to-back collection uses at most a tenth of a
/// core and requests keep the rest.
const TRANQUILITY: u32 = 9;

pub(crate) struct Workers {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Starts the garbage collector: one run at start (finishing whatever a crash interrupted),
/// then one every `gc_interval_secs`.
pub(crate) fn start(registry: Arc<Registry>, cfg: &Config) -> Workers {
    let (stop, stopped) = watch::channel(false);
    let every = match cfg.gc_interval_secs {
        0 => CONTINUOUS_PAUSE,
        n => Duration::from_secs(n),
    };
    let mut tasks = vec![tokio::spawn(gc_loop(Arc::clone(&registry), every, stopped.clone()))];
    if cfg.scrub_interval_secs > 0 {
        let every = Duration::from_secs(cfg.scrub_interval_secs);
        tasks.push(tokio::spawn(scrub_loop(registry, every, cfg.scrub_bytes_per_sec, stopped)));
    }
    Workers { stop, tasks }
}

/// Reads every blob back once per `every` (the first run one interval after start), at
/// `bytes_per_sec`; a shutdown stops a run between two blobs.
async fn scrub_loop(registry: Arc<Registry>, every: Duration, bytes_per_sec: u64, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            () = tokio::time::sleep(every) => {}
        }
        let flag = stopped.clone();
        match registry.scrub(bytes_per_sec, || *flag.borrow()).await {
            Ok(r) if r.damaged.is_empty() && r.missing.is_empty() => {
                tracing::info!(blobs = r.checked, bytes = r.bytes, "scrub: every blob checked is intact");
            }
            Ok(r) => tracing::error!(
                blobs = r.checked,
                damaged = r.damaged.len(),
                missing = r.missing.len(),
                "scrub found blobs to repair (see above); pushing them again repairs them"
            ),
            Err(e) => tracing::warn!(error = %e, "scrub failed; the next run starts over"),
        }
    }
}

async fn gc_loop(registry: Arc<Registry>, every: Duration, mut stopped: watch::Receiver<bool>) {
    loop {
        // Spawned and awaited, so that a shutdown waits for a run in progress instead of
        // dropping it midway (see `gc_run_once`).
        let reg = Arc::clone(&registry);
        let started = tokio::time::Instant::now();
        match tokio::spawn(async move { reg.gc_run_once(now_ms()).await }).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "garbage collection failed; the next run resumes it"),
            Err(e) => tracing::error!(error = %e, "garbage collection panicked"),
        }
        tokio::select! {
            _ = stopped.changed() => return,
            () = tokio::time::sleep(every.max(started.elapsed() * TRANQUILITY)) => {}
        }
    }
}

impl Workers {
    /// Asks every worker to stop and waits for the runs in progress to finish.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}
