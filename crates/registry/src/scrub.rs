//! The scrubber: reads every recorded blob back from the blob store and checks that its bytes
//! hash to its digest. A blob whose bytes are damaged is moved aside (`BlobStore::quarantine`),
//! so that it is reported missing from then on: pulls answer `BLOB_UNKNOWN` with a clear
//! message instead of serving wrong bytes, and existence checks (HEAD,
//! `BatchCheckLayerAvailability`) answer that it is missing, so the next push of the blob
//! uploads it and stores good bytes again. Missing blobs are only reported: a push repairs them
//! the same way.
//!
//! A push may replace a blob's file while the scrubber reads it; a mismatch is therefore read
//! and hashed a second time before the file is moved aside. Should a push slip in between
//! those, the good copy is moved aside and the blob is pushed again on its next push: nothing
//! wrong is ever served.

use std::time::Duration;

use berth_types::{Digest, Hasher};
use futures_util::StreamExt;

use crate::core::Core;
use crate::error::{Error, Result};

/// What one scrub found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScrubReport {
    /// Blobs read back.
    pub checked: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Blobs whose bytes did not hash to their digest (or had the wrong size), now moved aside.
    pub damaged: Vec<Digest>,
    /// Recorded blobs with no bytes at all.
    pub missing: Vec<Digest>,
}

/// Recorded blobs read per page.
const PAGE: usize = 256;

/// What reading one blob back found.
enum Check {
    Good(u64),
    Damaged(u64),
    Missing,
}

impl Core {
    /// Checks every recorded blob, reading at most `bytes_per_sec` (0: as fast as the disk
    /// goes), until done or until `stop` answers true. Damaged blobs are moved aside.
    ///
    /// # Errors
    /// Storage failures other than a missing or damaged blob.
    pub(crate) async fn scrub(&self, bytes_per_sec: u64, stop: impl Fn() -> bool) -> Result<ScrubReport> {
        let mut report = ScrubReport::default();
        let started = tokio::time::Instant::now();
        let mut after: Option<Digest> = None;
        loop {
            let page = self.meta.recorded_blobs(after.as_ref(), PAGE).await?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (digest, size) in page {
                if stop() {
                    return Ok(report);
                }
                report.checked += 1;
                match self.check_blob(&digest, size).await? {
                    Check::Good(n) => report.bytes += n,
                    Check::Missing => {
                        tracing::error!(%digest, "scrub: a recorded blob has no bytes; a push of it will store it again");
                        report.missing.push(digest);
                    }
                    Check::Damaged(n) => {
                        report.bytes += n;
                        // Read once more: a push may just have replaced the file.
                        if matches!(self.check_blob(&digest, size).await?, Check::Damaged(_)) {
                            self.blobs.quarantine(&digest).await?;
                            tracing::error!(%digest, "scrub: stored bytes do not hash to the blob's digest; moved them aside, a push of the blob will store it again");
                            report.damaged.push(digest);
                        }
                    }
                }
                if bytes_per_sec > 0 {
                    // Sleep until the bytes read so far fit the rate.
                    let due = Duration::from_secs_f64(report.bytes as f64 / bytes_per_sec as f64);
                    tokio::time::sleep_until(started + due).await;
                }
            }
        }
        Ok(report)
    }

    /// Reads a blob back and hashes it.
    async fn check_blob(&self, digest: &Digest, size: u64) -> Result<Check> {
        let read = match self.blobs.read(digest, None).await {
            Ok(r) => r,
            Err(berth_blobstore::Error::NotFound) => return Ok(Check::Missing),
            Err(e) => return Err(e.into()),
        };
        if read.size != size {
            return Ok(Check::Damaged(0));
        }
        let mut hasher = Hasher::new(digest.algorithm());
        let mut seen = 0u64;
        let mut body = read.body.into_stream();
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) => {
                    hasher.update(&chunk);
                    seen += chunk.len() as u64;
                }
                // Cut short while read: the file changed size under the reader.
                Err(e)
                    if e.downcast_ref::<std::io::Error>()
                        .is_some_and(|e| e.kind() == std::io::ErrorKind::UnexpectedEof) =>
                {
                    return Ok(Check::Damaged(seen));
                }
                Err(e) => return Err(Error::Internal(e)),
            }
        }
        Ok(if seen == size && &hasher.finish() == digest { Check::Good(seen) } else { Check::Damaged(seen) })
    }
}
