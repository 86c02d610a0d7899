//! A bounded in-process cache of resolved manifests, so that pulls by tag or digest skip the
//! database.
//!
//! Coherence: every write that can change what a reference resolves to (manifest put, manifest
//! or tag delete) bumps its repository's generation after it commits and drops the
//! repository's entries. A reader notes the generation before it queries the database and only
//! fills the cache if the generation is unchanged, so an answer read before a write can never
//! be cached after it. This holds within one process. Writes from elsewhere (another node on
//! the same database, or `berth admin` running lifecycle policies) are seen once an entry is
//! older than [`MAX_AGE`]; garbage collection's grace period is far longer than that, so a
//! cached manifest never outlives the blobs it names.
//!
//! Garbage collection relies on this too: deleting a manifest touches its blobs, which then
//! stay for the grace period (`gc.rs`), far longer than a cached entry lives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_types::{Digest, Reference, RepositoryKey};
use bytes::Bytes;

/// A stored manifest as the core hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub digest: Digest,
    pub media_type: String,
    pub payload: Bytes,
}

/// How long a cached answer is used before the database is asked again.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Inner {
    generations: HashMap<RepositoryKey, u64>,
    items: HashMap<RepositoryKey, HashMap<Reference, (Instant, Arc<Manifest>)>>,
    len: usize,
}

pub(crate) struct ManifestCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl ManifestCache {
    pub(crate) fn new(capacity: usize) -> Self {
        ManifestCache { capacity, inner: Mutex::new(Inner::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A cached answer, or the generation to pass to `fill` after reading the database.
    pub(crate) fn get(&self, repo: &RepositoryKey, reference: &Reference) -> Result<Arc<Manifest>, u64> {
        let inner = self.lock();
        if let Some((at, m)) = inner.items.get(repo).and_then(|r| r.get(reference))
            && at.elapsed() < MAX_AGE
        {
            return Ok(Arc::clone(m));
        }
        Err(inner.generations.get(repo).copied().unwrap_or(0))
    }

    pub(crate) fn fill(&self, repo: &RepositoryKey, reference: &Reference, generation: u64, m: &Arc<Manifest>) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        if inner.generations.get(repo).copied().unwrap_or(0) != generation {
            return;
        }
        if inner.len >= self.capacity {
            inner.items.clear();
            inner.len = 0;
        }
        let entry = (Instant::now(), Arc::clone(m));
        if inner.items.entry(repo.clone()).or_default().insert(reference.clone(), entry).is_none() {
            inner.len += 1;
        }
    }

    pub(crate) fn invalidate(&self, repo: &RepositoryKey) {
        let mut inner = self.lock();
        *inner.generations.entry(repo.clone()).or_insert(0) += 1;
        if let Some(gone) = inner.items.remove(repo) {
            inner.len -= gone.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Arc<Manifest> {
        Arc::new(Manifest {
            digest: Digest::of(berth_types::Algorithm::Sha256, s.as_bytes()),
            media_type: "x".into(),
            payload: Bytes::from(s.to_owned()),
        })
    }

    #[test]
    fn a_read_from_before_a_write_is_never_cached() {
        let c = ManifestCache::new(10);
        let r = RepositoryKey::new(
            berth_types::AccountId::parse("111122223333").unwrap(),
            berth_types::RepositoryName::parse("ab").unwrap(),
        );
        let t = Reference::parse("v1").unwrap();
        let g = c.get(&r, &t).unwrap_err();
        c.invalidate(&r); // a write committed while the reader was querying
        c.fill(&r, &t, g, &m("old"));
        assert!(c.get(&r, &t).is_err());
        let g = c.get(&r, &t).unwrap_err();
        c.fill(&r, &t, g, &m("new"));
        assert_eq!(c.get(&r, &t).unwrap().payload, "new");
        c.invalidate(&r);
        assert!(c.get(&r, &t).is_err());
    }

    #[test]
    fn bounded() {
        let c = ManifestCache::new(2);
        let r = RepositoryKey::new(
            berth_types::AccountId::parse("111122223333").unwrap(),
            berth_types::RepositoryName::parse("ab").unwrap(),
        );
        for i in 0..5 {
            let t = Reference::parse(&format!("t{i}")).unwrap();
            let g = c.get(&r, &t).unwrap_err();
            c.fill(&r, &t, g, &m("x"));
        }
        assert!(c.lock().len <= 2);
        let off = ManifestCache::new(0);
        let t = Reference::parse("t").unwrap();
        off.fill(&r, &t, 0, &m("x"));
        assert!(off.get(&r, &t).is_err());
    }
}
