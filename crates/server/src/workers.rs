//! The background workers this server runs, built from the configuration and started on one
//! [`Manager`]. What each run does is the core's business (`berth_workers::jobs`); this file
//! only says which jobs run, how often, and where their state is written.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use berth_meta::MetaStore;
use berth_registry::Registry;
use berth_workers::jobs::{FlushPulls, Gc, Lifecycle, Reclaim, Scans, Scrub, SweepUploads};
use berth_workers::{First, Lease, LocalLease, Manager, Periodic, Schedule};

use crate::backends::Backends;
use crate::config::Config;
use crate::tls;

/// How long a lease on cluster-wide work lasts unless renewed: a node that dies in the middle
/// of a step holds its work up for at most this long.
pub(crate) const LEASE_TTL: Duration = Duration::from_secs(10);

/// Leases kept in the shared metadata, so that one node of a cluster at a time runs each
/// cluster-wide worker. A lease is renewed every third of its life while its step runs.
struct SharedLease {
    meta: Arc<dyn MetaStore>,
    /// This node, for as long as it runs.
    holder: String,
    renewing: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
}

#[async_trait]
impl Lease for SharedLease {
    async fn acquire(&self, worker: &str) -> anyhow::Result<bool> {
        let ttl = i64::try_from(LEASE_TTL.as_millis()).unwrap_or(i64::MAX);
        if !self.meta.acquire_lease(worker, &self.holder, ttl).await? {
            return Ok(false);
        }
        let (meta, holder, name) = (Arc::clone(&self.meta), self.holder.clone(), worker.to_owned());
        let renew = tokio::spawn(async move {
            loop {
                tokio::time::sleep(LEASE_TTL / 3).await;
                match meta.acquire_lease(&name, &holder, ttl).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(worker = %name, "lease was taken over while a step ran"),
                    Err(e) => tracing::warn!(worker = %name, error = %e, "cannot renew lease"),
                }
            }
        });
        if let Some(old) =
            self.renewing.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(worker.to_owned(), renew)
        {
            old.abort();
        }
        Ok(true)
    }

    async fn release(&self, worker: &str) {
        if let Some(r) = self.renewing.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(worker) {
            r.abort();
        }
        if let Err(e) = self.meta.release_lease(worker, &self.holder).await {
            tracing::warn!(worker, error = %e, "cannot release lease; it expires by itself");
        }
    }
}

/// Pause between GC runs when its interval is 0 ("continuously").
const CONTINUOUS_PAUSE: Duration = Duration::from_millis(10);

/// After a GC run that took `t`, the next starts no sooner than `9 t` later, so that
/// back-to-back collection uses at most a tenth of a core and requests keep the rest.
const GC_TRANQUILITY: u32 = 9;

/// Where the workers' state is written for `berth admin workers`.
pub(crate) fn status_file(data: &Path) -> PathBuf {
    data.join("workers.json")
}

/// Where scan workers write their process's scan counters, a file per process (nodes of a
/// cluster may share the directory); `berth admin scan stats` adds them up.
pub(crate) fn scan_stats_dir(data: &Path) -> PathBuf {
    data.join("scan-stats")
}

/// How often free metadata pages are given back.
const RECLAIM_EVERY: Duration = Duration::from_secs(10);

/// Starts every worker:
/// - `gc`: at start (finishing whatever a crash interrupted), then every `gc.interval_secs`;
/// - `upload-sweep`: at start, then at least twice per `uploads.empty_expiry_secs`;
/// - `pull-flush`: every `pulls.flush_interval_secs`, and once more on shutdown;
/// - `lifecycle`: every `lifecycle.interval_secs` (pull times first);
/// - `scrub`: every `scrub.interval_secs` unless 0;
/// - `reclaim`: every 10 s, giving the metadata store's free pages back, 16 MiB a call for at
///   most 2 s;
/// - `tls-reload`: every 2 s when TLS is on;
/// - `scan`: on every node, at once when this node is asked for a scan, else every
///   `scanning.poll_ms`, running queued scans and re-matches.
pub(crate) fn start(registry: &Arc<Registry>, stores: &Backends, cfg: &Config, tls: Option<tls::Reloader>) -> Manager {
    let secs = |n: u64| Duration::from_secs(n.max(1));
    let lease: Arc<dyn Lease> = if stores.shared {
        Arc::new(SharedLease {
            meta: Arc::clone(&stores.meta),
            holder: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4()),
            renewing: Mutex::default(),
        })
    } else {
        Arc::new(LocalLease)
    };
    let mut m = Manager::start(lease, Some(status_file(&cfg.storage.path)));
    let gc_every = match cfg.gc.interval_secs {
        0 => CONTINUOUS_PAUSE,
        n => Duration::from_secs(n),
    };
    let holder = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4());
    let stats_dir = scan_stats_dir(&cfg.storage.path);
    let stats_file = match std::fs::create_dir_all(&stats_dir) {
        Ok(()) => Some(stats_dir.join(format!("{holder}.json"))),
        Err(e) => {
            tracing::warn!(dir = %stats_dir.display(), error = %e, "cannot keep scan counters");
            None
        }
    };
    m.spawn(Scans {
        registry: Arc::clone(registry),
        holder,
        stats_file,
        poll: Duration::from_millis(cfg.scanning.poll_ms.max(10)),
    });
    m.spawn(Periodic::new(
        Gc(Arc::clone(registry)),
        Schedule::every(gc_every, First::AtStart).tranquility(GC_TRANQUILITY),
    ));
    // Often enough that sessions which never received a byte go soon after their expiry.
    let sweep = secs(cfg.uploads.sweep_interval_secs.min(cfg.uploads.empty_expiry_secs / 2));
    m.spawn(Periodic::new(SweepUploads(Arc::clone(registry)), Schedule::every(sweep, First::AtStart)));
    m.spawn(Periodic::new(
        FlushPulls(Arc::clone(registry)),
        Schedule::every(secs(cfg.pulls.flush_interval_secs), First::AfterInterval).on_exit(),
    ));
    m.spawn(Periodic::new(Reclaim(Arc::clone(registry)), Schedule::every(RECLAIM_EVERY, First::AfterInterval)));
    m.spawn(Periodic::new(
        Lifecycle(Arc::clone(registry)),
        Schedule::every(secs(cfg.lifecycle.interval_secs), First::AfterInterval),
    ));
    if cfg.scrub.interval_secs > 0 {
        m.spawn(Periodic::new(
            Scrub { registry: Arc::clone(registry), bytes_per_sec: cfg.scrub.bytes_per_sec },
            Schedule::every(Duration::from_secs(cfg.scrub.interval_secs), First::AfterInterval),
        ));
    }
    if let Some(reloader) = tls {
        m.spawn(Periodic::new(reloader, Schedule::every(tls::CHECK_EVERY, First::AfterInterval)));
    }
    m
}
