//! Online garbage collection of blob bytes, and storage use.
//!
//! # The rule
//!
//! A blob's bytes are deleted when **no manifest in any repository references the blob, and
//! the blob was last touched before `now - grace`**. A blob is touched when its bytes are
//! reserved for storing (every upload path, before the bytes reach their final place), when it
//! is linked or mounted into a repository, when a client checks it exists (HEAD,
//! `BatchCheckLayerAvailability`) and its mark is older than half the grace, and when a
//! manifest referencing it is deleted. Deletion goes in three steps:
//!
//! 1. one metadata transaction (`GcMeta::collect_blobs`) re-checks the rule, removes the
//!    blob's record and its links in every repository and its touch mark, and leaves a
//!    tombstone;
//! 2. the bytes are deleted;
//! 3. the tombstone is removed (`finish_tombstones`).
//!
//! Storing bytes goes: `reserve_blob` (refused while a tombstone exists; otherwise touches the
//! digest and returns the id of its touch mark as a token), then the bytes are put in place,
//! then `link_reserved` records the blob only if the touch mark still has that id.
//!
//! # Why it is safe
//!
//! Invariant **I**: whenever the metadata records a blob (a `blobs` row, or a link of it in a
//! repository), its bytes are in the blob store. Everything else follows from I.
//!
//! - *Only step 2 deletes bytes, and only of a digest with a tombstone, whose records step 1
//!   removed.* So a deletion never removes bytes of a blob recorded at step 1's commit.
//! - *No record of a digest is created between steps 1 and 3 for bytes that step 2 removes.*
//!   Records are created by `link_reserved` and by a mount. A mount copies a record that
//!   exists, and step 1 removed them all. `link_reserved` needs a token from a reservation:
//!   (a) a reservation committed before step 1 has its token voided by step 1, which deletes
//!   the touch mark (a new mark gets a new id: AUTOINCREMENT); (b) no reservation succeeds
//!   while the tombstone stands; (c) a reservation after step 3 comes after the bytes were
//!   deleted, so the bytes its caller then places are the ones it records.
//! - *A recorded blob keeps its bytes while a manifest references it.* `put_manifest` checks,
//!   in its write transaction, that every referenced blob is linked in the repository, and
//!   stores the references. Step 1 checks, in its write transaction, that no reference exists,
//!   and removes the links. The metadata store serializes the two (SQLite: one writer
//!   connection; every transaction sees all earlier commits). If the push commits first, the
//!   collection sees its reference and skips the blob. If the collection commits first, the
//!   push finds the blob unlinked and fails with `MANIFEST_BLOB_UNKNOWN`: nothing is stored,
//!   the client uploads the blob again. Either way no stored manifest ever names a blob
//!   without bytes. This holds whatever the clocks say; the grace only decides *how often* a
//!   push loses that race (a client that uploads or checks a blob and pushes its manifest
//!   within the grace, or half of it after a check, never does).
//! - *Uploads in flight.* The rule above is safe for any reservation, however slow: one that a
//!   collection overtakes fails cleanly in `link_reserved`. So that it does not fail at all,
//!   a run never takes a digest this process is storing (between its reservation and its
//!   record, `GcState::in_flight`, snapshotted after the run's `now`): a digest missing from
//!   the snapshot is reserved after it, with a touch mark later than `now - grace`. Another
//!   node's uploads are protected only by the grace (see below), and fail cleanly beyond it.
//! - *Crashes.* Each step is atomic. A crash after step 1 leaves tombstones, which the next
//!   run finishes first (steps 2 and 3 are idempotent); until then reservations of those
//!   digests wait. A crash after bytes were placed but before `link_reserved` leaves bytes
//!   with no record: the orphan sweep marks them touched when it first sees them and takes
//!   them through the same three steps once the grace has passed since.
//! - *Pulls.* A pull reads a blob it found linked in the repository; an open file survives
//!   deletion. A pull of a manifest that exists throughout never loses a blob (above). A pull
//!   of a manifest deleted meanwhile keeps its blobs for the grace: deleting a manifest
//!   touches the blobs it referenced. The manifest cache (`cache.rs`) is invalidated on this
//!   node right after a delete commits; a pull served from the cache in between is within the
//!   grace too. Several nodes must not cache manifests (see `cache.rs`): another node's stale
//!   entry would outlive the grace.
//!
//! # Several nodes on one database (Postgres)
//!
//! The argument needs every transaction above to see the writes committed before it and to
//! conflict with a concurrent one that would change its decision. SQLite gives that with a
//! single writer. On Postgres under READ COMMITTED it does not hold as written (write skew: a
//! push and a collection could both check, then both commit). Postgres needs either
//! SERIALIZABLE for `put_manifest`, `reserve_blob`, `link_reserved`, `collect_blobs` and
//! `claim_orphans` (retrying on serialization failures), or row locks in a fixed order: the
//! collection locks each candidate's `blobs` row `FOR UPDATE` and re-checks references after
//! the lock; `put_manifest` locks the rows of the blobs it references `FOR SHARE` before
//! checking links; `reserve_blob` and `link_reserved` lock the digest's touch mark
//! (`INSERT … ON CONFLICT DO UPDATE … RETURNING`, then check the tombstone in the same
//! transaction). Runs must also not overlap: a run finishes tombstones left by earlier runs on
//! the assumption that those runs are over, which one process guarantees with a lock (and by
//! running each run to completion, see `gc_run_once`); several nodes need a lease on the
//! collector (a row with an expiry, renewed while running) and a run must stop deleting bytes
//! once its lease is lost.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use berth_meta::{Collected, LinkTarget, MetaStore, Reservation, StorageUsage};
use berth_types::{Digest, now_ms};
use futures_util::StreamExt;

use crate::core::Core;
use crate::{Error, Result};

/// Blobs handled per metadata transaction.
const BATCH: usize = 256;

/// How often, and how long apart, an upload asks again while its digest's bytes are being
/// deleted (tombstones last as long as deleting one batch of files).
const RESERVE_ATTEMPTS: u32 = 500;
const RESERVE_RETRY: std::time::Duration = std::time::Duration::from_millis(10);

/// Reserves `digest` in the metadata before its bytes are put in place, waiting while they are
/// being deleted; returns the token for `link_reserved`.
pub(crate) async fn reserve_token(meta: &dyn MetaStore, digest: &Digest) -> Result<i64> {
    for _ in 0..RESERVE_ATTEMPTS {
        match meta.reserve_blob(digest, now_ms()).await? {
            Reservation::Granted(token) => return Ok(token),
            Reservation::Collecting => tokio::time::sleep(RESERVE_RETRY).await,
        }
    }
    Err(Error::Internal(format!("blob {digest} is being garbage-collected; try again").into()))
}

/// What one garbage-collection run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Unreferenced blobs whose records and bytes were removed.
    pub blobs_removed: u64,
    /// Their bytes.
    pub bytes_freed: u64,
    /// Tombstones of an earlier run that stopped midway, finished by this one.
    pub tombstones_finished: u64,
    /// Files in the blob store that no record named, removed.
    pub orphans_removed: u64,
    /// Touch marks of digests without a record, forgotten.
    pub touches_forgotten: u64,
}

/// Serializes runs within the process, and knows which digests this process is storing.
#[derive(Default)]
pub(crate) struct GcState {
    /// Held by the run in progress; holds what later runs need of earlier ones.
    running: tokio::sync::Mutex<Runs>,
    /// Digests between their reservation and their record, with how many stores of each are
    /// in flight. A run never takes them, however long storing takes (see `Reserved`).
    storing: Mutex<HashMap<Digest, usize>>,
}

/// When the last orphan sweep and the last full scan ran, and the cutoff of the last run.
#[derive(Default)]
struct Runs {
    orphans_swept_at: Option<i64>,
    full_scan_at: Option<i64>,
    last_cutoff: Option<i64>,
}

impl GcState {
    fn storing(&self) -> MutexGuard<'_, HashMap<Digest, usize>> {
        self.storing.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The digests being stored now. A digest that is not in the snapshot, taken after the
    /// run's `now`, is reserved (if at all) after the snapshot, so its touch mark is later than
    /// the run's `now` and no cutoff of the run (`now - grace`) reaches it.
    fn in_flight(&self) -> Vec<Digest> {
        self.storing().keys().cloned().collect()
    }
}

/// A reservation held by this process: its token, and the digest's place in the in-flight set
/// until it is recorded (or the attempt fails). Taken before the reservation's transaction.
pub(crate) struct Reserved<'a> {
    token: i64,
    digest: Digest,
    state: &'a GcState,
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        let mut storing = self.state.storing();
        if let Some(n) = storing.get_mut(&self.digest) {
            *n -= 1;
            if *n == 0 {
                storing.remove(&self.digest);
            }
        }
    }
}

impl Core {
    /// One garbage-collection run at time `now_ms` (see the module documentation for the rule
    /// and why it is safe while pushes and pulls go on). Runs in this process never overlap.
    ///
    /// Run it to completion (spawn it rather than dropping it midway): a dropped run is safe
    /// for the metadata, but a file deletion it already started may still be in flight when
    /// the next run finishes its tombstones.
    ///
    /// # Errors
    /// Storage failures. Whatever was not finished is finished by the next run.
    pub(crate) async fn gc_run_once(&self, now_ms: i64) -> Result<GcReport> {
        let mut runs = self.local.gc.running.lock().await;
        let started = std::time::Instant::now();
        let cutoff = now_ms.saturating_sub(self.opts.gc_grace_ms);
        let mut report = GcReport::default();

        // Tombstones of an earlier run that stopped between its steps.
        loop {
            let left = self.meta.tombstones(BATCH).await?;
            if left.is_empty() {
                break;
            }
            self.delete_bytes(&left).await?;
            report.tombstones_finished += left.len() as u64;
            if left.len() < BATCH {
                break;
            }
        }

        // Unreferenced blobs past the grace. A blob that was no candidate at the last run's
        // cutoff can only be one now if its touch mark is at least that cutoff: it was then
        // either touched after it (so its mark is later), or referenced, and losing its last
        // reference touches it. So between full scans (at least every half grace, which also
        // bounds the delay if clocks of several nodes disagree) a run reads only blobs touched
        // since the last cutoff. The rule itself is checked in the transaction either way.
        let full = runs.full_scan_at.is_none_or(|t| now_ms - t >= self.opts.gc_grace_ms / 2);
        let touched_since = if full { None } else { runs.last_cutoff };
        if full {
            runs.full_scan_at = Some(now_ms);
        }
        let mut after: Option<Digest> = None;
        loop {
            let in_flight = self.local.gc.in_flight();
            let taken: Vec<Collected> =
                self.meta.collect_blobs(cutoff, now_ms, after.as_ref(), BATCH, &in_flight, touched_since).await?;
            let Some(last) = taken.last() else { break };
            after = Some(last.digest.clone());
            let digests: Vec<Digest> = taken.iter().map(|c| c.digest.clone()).collect();
            self.delete_bytes(&digests).await?;
            report.blobs_removed += taken.len() as u64;
            report.bytes_freed += taken.iter().map(|c| c.size).sum::<u64>();
            if taken.len() < BATCH {
                break;
            }
        }

        // Bytes no record names (a crash between placing bytes and recording them). They are
        // taken once the grace has passed since a sweep first saw them, so sweeping more often
        // than every half grace gains nothing and costs a walk of the whole store.
        runs.last_cutoff = Some(cutoff);
        if runs.orphans_swept_at.is_none_or(|t| now_ms - t >= self.opts.gc_grace_ms / 2) {
            runs.orphans_swept_at = Some(now_ms);
            self.sweep_orphans(now_ms, cutoff, &mut report).await?;
            // Only right after a sweep: the sweep took every unrecorded digest with bytes and a
            // mark before the cutoff, so such marks left now name no bytes (or bytes placed
            // after the listing under a reservation older than the grace, which forgetting
            // voids: their record is refused and the next sweep sees the bytes afresh).
            report.touches_forgotten = self.meta.forget_touches(cutoff, &self.local.gc.in_flight()).await?;
        }

        if report != GcReport::default() {
            tracing::info!(?report, elapsed_ms = started.elapsed().as_millis(), "garbage collection");
        } else {
            tracing::debug!(elapsed_ms = started.elapsed().as_millis(), "garbage collection found nothing to do");
        }
        Ok(report)
    }

    async fn sweep_orphans(&self, now_ms: i64, cutoff: i64, report: &mut GcReport) -> Result<()> {
        let mut listing = self.blobs.list();
        let mut found = Vec::with_capacity(BATCH);
        loop {
            let next = listing.next().await;
            if let Some(d) = &next {
                found.push(d.as_ref().map_err(|e| Error::Internal(e.to_string().into()))?.clone());
            }
            if found.len() == BATCH || (next.is_none() && !found.is_empty()) {
                let in_flight = self.local.gc.in_flight();
                found.retain(|d| !in_flight.contains(d));
                let taken = self.meta.claim_orphans(&found, cutoff, now_ms).await?;
                self.delete_bytes(&taken).await?;
                report.orphans_removed += taken.len() as u64;
                found.clear();
            }
            if next.is_none() {
                break;
            }
        }
        Ok(())
    }

    /// Steps 2 and 3: deletes the bytes of tombstoned digests, then their tombstones.
    async fn delete_bytes(&self, digests: &[Digest]) -> Result<()> {
        for d in digests {
            self.blobs.delete(d).await?;
        }
        self.meta.finish_tombstones(digests).await?;
        Ok(())
    }

    /// Bytes used per repository (distinct blobs its manifests reference, plus its manifests)
    /// and in total. For operators; no front door serves it.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) async fn storage_usage(&self) -> Result<StorageUsage> {
        Ok(self.meta.storage_usage().await?)
    }

    /// Reserves `digest` before its bytes are put in place, waiting while they are being
    /// deleted. Pass the reservation to `record_reserved` once they are.
    pub(crate) async fn reserve(&self, digest: &Digest) -> Result<Reserved<'_>> {
        *self.local.gc.storing().entry(digest.clone()).or_insert(0) += 1;
        let mut held = Reserved { token: 0, digest: digest.clone(), state: &self.local.gc };
        held.token = reserve_token(self.meta.as_ref(), digest).await?;
        Ok(held)
    }

    /// Records a blob whose bytes were put in place under `reserved`.
    pub(crate) async fn record_reserved(
        &self,
        target: &LinkTarget,
        digest: &Digest,
        size: u64,
        reserved: Reserved<'_>,
    ) -> Result<()> {
        let outcome = self.meta.link_reserved(target, digest, size, reserved.token).await;
        drop(reserved);
        match outcome {
            Ok(true) => Ok(()),
            // Another node's collection took it (this one never takes a digest in flight).
            Ok(false) => Err(Error::Internal(
                format!("blob {digest} was garbage-collected while it was being stored; push it again").into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Touches a blob a client just checked or mounted, if its mark is older than half the
    /// grace, so that it outlives the check by at least that long. Failures are only logged:
    /// the worst they cause is a later `MANIFEST_BLOB_UNKNOWN`.
    pub(crate) async fn touch(&self, digest: &Digest) {
        let now = now_ms();
        if let Err(e) = self.meta.touch_blob(digest, now, now - self.opts.gc_grace_ms / 2).await {
            tracing::warn!(%digest, error = %e, "could not touch blob");
        }
    }
}
