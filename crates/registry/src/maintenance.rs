//! Background work the workers schedule and `berth admin` runs: garbage collection, the
//! scrubber, sweeping abandoned uploads, and writing down pull times.

use crate::{GcReport, Result, ScrubReport, StorageUsage, service};

service! {
    /// Maintenance: the steps of background work, each safe while the registry serves.
    Maintenance
}

impl Maintenance {
    /// One garbage-collection run at `now_ms` (see `gc`).
    ///
    /// # Errors
    /// Storage failures; whatever was not finished is finished by the next run.
    pub async fn gc_run_once(&self, now_ms: i64) -> Result<GcReport> {
        self.0.gc_run_once(now_ms).await
    }

    /// Bytes used per repository and in total. For operators; no front door serves it.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn storage_usage(&self) -> Result<StorageUsage> {
        self.0.storage_usage().await
    }

    /// Reads every recorded blob back and moves damaged ones aside (see `scrub`), at most
    /// `bytes_per_sec` (0: no limit), until done or `stop` answers true.
    ///
    /// # Errors
    /// Storage failures other than a missing or damaged blob.
    pub async fn scrub(&self, bytes_per_sec: u64, stop: impl Fn() -> bool) -> Result<ScrubReport> {
        self.0.scrub(bytes_per_sec, stop).await
    }

    /// Removes sessions idle past the expiry and upload bytes whose session is gone; returns
    /// how many uploads it removed.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn sweep_uploads(&self) -> Result<usize> {
        self.0.sweep_uploads().await
    }

    /// Gives up to `max_pages` pages of free space in the metadata store back to the
    /// filesystem; returns how many it gave.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn reclaim(&self, max_pages: u32) -> Result<u64> {
        Ok(self.meta.reclaim(max_pages).await?)
    }

    /// Writes the pull times noted since the last flush; returns how many images it touched.
    ///
    /// # Errors
    /// Storage failures (the times are then kept for the next flush).
    pub async fn flush_pulls(&self) -> Result<usize> {
        let pulls = &self.local.pulls;
        let taken = std::mem::take(&mut *pulls.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        if taken.is_empty() {
            return Ok(0);
        }
        let batch: Vec<_> = taken.into_iter().map(|((r, d), at)| (r, d, at)).collect();
        if let Err(e) = self.meta.record_pulls(&batch).await {
            let mut pulls = pulls.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for (r, d, at) in batch {
                let slot = pulls.entry((r, d)).or_insert(at);
                *slot = (*slot).max(at);
            }
            return Err(e.into());
        }
        Ok(batch.len())
    }
}
