//! Node-local state of upload sessions: which session a request is working on right now (one
//! request per session at a time), and who opened each session (limits per principal and per
//! account, and a short life for sessions that never receive a byte).
//!
//! Scale-out moves both into the metadata database (a lease per session and counts by owner);
//! on one node this memory is the whole truth. Sessions opened before a restart are not
//! counted: their bytes, if any, are checked against their saved state before they are trusted,
//! and the sweeper removes them when idle.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use berth_types::UploadId;

use crate::error::{Error, Result};

/// How many sessions may be open at once, and how long one may wait for its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    /// Open sessions per principal (an anonymous caller counts per source address).
    pub per_principal: usize,
    /// Open sessions per account, whoever opened them.
    pub per_account: usize,
    /// A session that has received no byte this long after it was opened is removed.
    pub empty_expiry_ms: i64,
}

impl Default for UploadLimits {
    fn default() -> Self {
        UploadLimits { per_principal: 1_000, per_account: 10_000, empty_expiry_ms: 10 * 60 * 1000 }
    }
}

/// Who opened a session and when; whether it has bytes yet.
#[derive(Debug, Clone)]
struct Owner {
    principal: String,
    account: String,
    opened_ms: i64,
    has_bytes: bool,
}

#[derive(Default)]
struct Inner {
    busy: HashSet<UploadId>,
    owners: HashMap<UploadId, Owner>,
    per_principal: HashMap<String, usize>,
    per_account: HashMap<String, usize>,
}

impl Inner {
    fn release(&mut self, id: &UploadId) {
        let Some(owner) = self.owners.remove(id) else { return };
        for (map, key) in [(&mut self.per_principal, owner.principal), (&mut self.per_account, owner.account)] {
            if let Some(n) = map.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&key);
                }
            }
        }
    }
}

#[derive(Default)]
pub(crate) struct Sessions {
    limits: UploadLimits,
    inner: Mutex<Inner>,
}

/// A session held by one request; released when dropped.
pub(crate) struct Held<'a> {
    sessions: &'a Sessions,
    id: UploadId,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.sessions.lock().busy.remove(&self.id);
    }
}

impl Sessions {
    pub(crate) fn new(limits: UploadLimits) -> Self {
        Sessions { limits, inner: Mutex::default() }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a new session against its principal's and account's limits.
    ///
    /// # Errors
    /// `LimitExceeded` when either limit is reached.
    pub(crate) fn open(&self, id: &UploadId, principal: &str, account: &str, now_ms: i64) -> Result<()> {
        let mut g = self.lock();
        if g.per_principal.get(principal).copied().unwrap_or(0) >= self.limits.per_principal {
            return Err(Error::LimitExceeded(format!(
                "{principal} has {} upload sessions open, the most allowed; complete or cancel some first",
                self.limits.per_principal
            )));
        }
        if g.per_account.get(account).copied().unwrap_or(0) >= self.limits.per_account {
            return Err(Error::LimitExceeded(format!(
                "account {account} has {} upload sessions open, the most allowed; complete or cancel some first",
                self.limits.per_account
            )));
        }
        *g.per_principal.entry(principal.to_owned()).or_insert(0) += 1;
        *g.per_account.entry(account.to_owned()).or_insert(0) += 1;
        let owner =
            Owner { principal: principal.to_owned(), account: account.to_owned(), opened_ms: now_ms, has_bytes: false };
        g.owners.insert(id.clone(), owner);
        Ok(())
    }

    /// Takes a session for one request; `None` while another request holds it.
    pub(crate) fn hold(&self, id: &UploadId) -> Option<Held<'_>> {
        self.lock().busy.insert(id.clone()).then(|| Held { sessions: self, id: id.clone() })
    }

    /// Notes that a session has received bytes (it then lives by the ordinary expiry).
    pub(crate) fn received(&self, id: &UploadId) {
        if let Some(o) = self.lock().owners.get_mut(id) {
            o.has_bytes = true;
        }
    }

    /// Forgets a session that ended (completed, cancelled or swept).
    pub(crate) fn close(&self, id: &UploadId) {
        self.lock().release(id);
    }

    /// Sessions opened before `now_ms - empty_expiry_ms` that never received a byte and that no
    /// request holds.
    pub(crate) fn empty_expired(&self, now_ms: i64) -> Vec<UploadId> {
        let cutoff = now_ms - self.limits.empty_expiry_ms;
        let g = self.lock();
        g.owners
            .iter()
            .filter(|(id, o)| !o.has_bytes && o.opened_ms < cutoff && !g.busy.contains(*id))
            .map(|(id, _)| id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> UploadLimits {
        UploadLimits { per_principal: 2, per_account: 3, empty_expiry_ms: 1000 }
    }

    #[test]
    fn limits_per_principal_and_account_and_release() {
        let s = Sessions::new(limits());
        let ids: Vec<UploadId> = (0..5).map(|_| UploadId::generate()).collect();
        s.open(&ids[0], "alice", "1", 0).unwrap();
        s.open(&ids[1], "alice", "1", 0).unwrap();
        assert!(matches!(s.open(&ids[2], "alice", "1", 0), Err(Error::LimitExceeded(_))));
        s.open(&ids[2], "bob", "1", 0).unwrap();
        // The account is full even for a principal with none open.
        assert!(matches!(s.open(&ids[3], "carol", "1", 0), Err(Error::LimitExceeded(_))));
        // Another account is unaffected.
        s.open(&ids[3], "dave", "2", 0).unwrap();
        s.close(&ids[0]);
        s.close(&ids[0]); // twice is harmless
        s.open(&ids[4], "alice", "1", 0).unwrap();
    }

    #[test]
    fn one_holder_at_a_time() {
        let s = Sessions::new(limits());
        let id = UploadId::generate();
        let held = s.hold(&id).unwrap();
        assert!(s.hold(&id).is_none());
        drop(held);
        assert!(s.hold(&id).is_some());
    }

    #[test]
    fn only_empty_idle_unheld_sessions_expire() {
        let s = Sessions::new(UploadLimits { per_principal: 10, per_account: 10, empty_expiry_ms: 1000 });
        let (empty, fed, held) = (UploadId::generate(), UploadId::generate(), UploadId::generate());
        for id in [&empty, &fed, &held] {
            s.open(id, "p", "1", 0).unwrap();
        }
        s.received(&fed);
        let _h = s.hold(&held).unwrap();
        assert!(s.empty_expired(500).is_empty());
        assert_eq!(s.empty_expired(2000), vec![empty]);
    }
}
