//! A small map whose entries expire: identity and policy data read on every request, kept
//! briefly so a change made elsewhere (another node, `berth admin`) is seen within the TTL.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

pub struct TtlCache<K, V> {
    ttl: Duration,
    max: usize,
    map: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration, max: usize) -> Self {
        TtlCache { ttl, max, map: Mutex::default() }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        if self.ttl.is_zero() {
            return None;
        }
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(key).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, v)| v.clone())
    }

    /// Keeps `value`, read from the store starting at `read_at`: it expires a TTL after the
    /// read began, so a change committed while a slow read was on its way is seen within the
    /// TTL of the change, not of the read's end.
    pub fn insert(&self, key: K, value: V, read_at: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= self.max {
            let ttl = self.ttl;
            map.retain(|_, (at, _)| at.elapsed() < ttl);
            if map.len() >= self.max {
                map.clear();
            }
        }
        map.insert(key, (read_at, value));
    }

    pub fn remove(&self, key: &K) {
        self.map.lock().unwrap_or_else(PoisonError::into_inner).remove(key);
    }

    pub fn clear(&self) {
        self.map.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_and_bounds() {
        let c = TtlCache::new(Duration::from_secs(60), 2);
        c.insert(1, "a", Instant::now());
        c.insert(2, "b", Instant::now());
        assert_eq!(c.get(&1), Some("a"));
        c.insert(3, "c", Instant::now());
        assert_eq!(c.get(&3), Some("c"), "room is made for new entries");
        c.remove(&3);
        assert_eq!(c.get(&3), None);
        let off = TtlCache::new(Duration::ZERO, 2);
        off.insert(1, "a", Instant::now());
        assert_eq!(off.get(&1), None, "a zero TTL caches nothing");
        let short = TtlCache::new(Duration::from_millis(1), 2);
        short.insert(1, "a", Instant::now());
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(short.get(&1), None);
        let slow = TtlCache::new(Duration::from_millis(50), 2);
        slow.insert(1, "read before a change", Instant::now() - Duration::from_millis(60));
        assert_eq!(slow.get(&1), None, "a value whose read began a TTL ago is stale already");
    }
}
