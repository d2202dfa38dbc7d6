//! What this lockd last wrote for each lease it granted or renewed: the record and the CAS
//! value memcached gave it. With it, a renew or release of that lease is one
//! compare-and-swap (or compare-and-delete) instead of a read and then a write.
//!
//! It is only ever a hint. The write that uses it is conditional on the CAS value, so it
//! acts only if the item is still exactly the record remembered here — same owner, same
//! token, same expiry — and a stale entry (the lease was renewed through another lockd,
//! released, taken over, or memcached restarted) costs one failed command and a fallback to
//! reading. An entry is used only when the request names the same owner and token.
//!
//! The map is bounded: when full, entries of ended leases are dropped, and if it is still
//! more than half full, all of it (those leases then take the fallback once).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::conn::ItemCas;

/// Entries kept at most: a few hundred bytes each.
const CAPACITY: usize = 16 * 1024;

/// The record this lockd wrote for a lease, and its CAS value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Written {
    pub token: u64,
    pub owner: String,
    pub expires_at_ms: u64,
    pub cas: ItemCas,
}

impl Written {
    pub fn live(&self, now_ms: u64) -> bool {
        now_ms < self.expires_at_ms
    }
}

/// Lease item key → what was written; shared by every request of one backend.
#[derive(Debug)]
pub(crate) struct WrittenLeases {
    // A std mutex: every critical section is one map operation, never across an `.await`.
    map: Mutex<HashMap<String, Written>>,
    capacity: usize,
}

impl WrittenLeases {
    pub fn new() -> Self {
        Self::with_capacity(CAPACITY)
    }

    fn with_capacity(capacity: usize) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Written>> {
        // Each update is one map operation: a poisoned map is still consistent.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remembers what was just written for `item`.
    pub fn remember(&self, item: &str, written: Written, now_ms: u64) {
        let mut map = self.map();
        if map.len() >= self.capacity && !map.contains_key(item) {
            map.retain(|_, w| w.live(now_ms));
            if map.len() > self.capacity / 2 {
                map.clear();
            }
        }
        map.insert(item.to_owned(), written);
    }

    /// What was written for `item` if it was the lease of `owner` with `token`.
    pub fn get(&self, item: &str, owner: &str, token: u64) -> Option<Written> {
        let map = self.map();
        let written = map.get(item)?;
        (written.token == token && written.owner == owner).then(|| written.clone())
    }

    /// Like [`WrittenLeases::get`], and forgets it.
    pub fn take(&self, item: &str, owner: &str, token: u64) -> Option<Written> {
        let mut map = self.map();
        let written = map.get(item)?;
        if written.token == token && written.owner == owner {
            map.remove(item)
        } else {
            None
        }
    }

    pub fn forget(&self, item: &str) {
        self.map().remove(item);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memcached::conn::ItemCas;

    fn written(token: u64, owner: &str, expires_at_ms: u64) -> Written {
        Written {
            token,
            owner: owner.into(),
            expires_at_ms,
            cas: ItemCas::for_tests(1, token * 10),
        }
    }

    #[test]
    fn an_entry_serves_only_its_own_lease() {
        let leases = WrittenLeases::new();
        leases.remember("k", written(5, "a", 100), 0);
        assert_eq!(leases.get("k", "a", 5), Some(written(5, "a", 100)));
        let cases = [("k", "a", 4), ("k", "a", 6), ("k", "b", 5), ("j", "a", 5)];
        for (item, owner, token) in cases {
            assert_eq!(
                leases.get(item, owner, token),
                None,
                "{item} {owner} {token}"
            );
            assert_eq!(
                leases.take(item, owner, token),
                None,
                "{item} {owner} {token}"
            );
        }
        // A miss does not forget the entry; a hit of `take` does.
        assert_eq!(leases.take("k", "a", 5), Some(written(5, "a", 100)));
        assert_eq!(leases.get("k", "a", 5), None);
        // A later write replaces the earlier one.
        leases.remember("k", written(5, "a", 100), 0);
        leases.remember("k", written(7, "b", 200), 0);
        assert_eq!(leases.get("k", "a", 5), None);
        assert_eq!(leases.get("k", "b", 7), Some(written(7, "b", 200)));
        leases.forget("k");
        assert_eq!(leases.get("k", "b", 7), None);
    }

    #[test]
    fn a_full_map_drops_ended_leases_then_everything() {
        let leases = WrittenLeases::with_capacity(4);
        for (i, expires) in [(1, 10), (2, 10), (3, 50), (4, 50)] {
            leases.remember(&format!("k{i}"), written(i, "a", expires), 0);
        }
        assert_eq!(leases.len(), 4);
        // Replacing an entry needs no room.
        leases.remember("k4", written(4, "a", 60), 20);
        assert_eq!(leases.len(), 4);
        // At 20 ms, k1 and k2 have ended: they make room; k3 and k4 stay.
        leases.remember("k5", written(5, "a", 60), 20);
        assert_eq!(leases.len(), 3);
        assert!(leases.get("k3", "a", 3).is_some());
        assert!(leases.get("k1", "a", 1).is_none());
        leases.remember("k6", written(6, "a", 60), 20);
        // Full of live leases: all go, the newest stays.
        leases.remember("k7", written(7, "a", 60), 20);
        assert_eq!(leases.len(), 1);
        assert!(leases.get("k7", "a", 7).is_some());
    }

    #[test]
    fn live_until_the_expiry() {
        let w = written(1, "a", 100);
        assert!(w.live(99));
        assert!(!w.live(100));
    }
}
