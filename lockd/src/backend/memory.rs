//! The in-process backend: leases in a map in this process, for a cluster on one host (or a
//! node with no lockd configured). Expiry follows `tokio::time`, so it is tested with paused
//! time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use tokio::time::Instant;

use super::{
    token_seed, AcquireOutcome, BackendError, Grant, LockBackend, ReleaseOutcome, RenewOutcome,
};
use crate::request::{LockKey, Owner, Ttl};

/// Expired leases are swept from the map after this many acquires (they are ignored as soon
/// as they expire; the sweep only bounds the memory they take).
const SWEEP_EVERY: u32 = 1024;

/// Leases held in this process; clones share them.
#[derive(Clone, Debug)]
pub struct MemoryBackend {
    // A std mutex: every critical section is a few map operations and never crosses an
    // `.await`, so an async mutex would only add cost.
    inner: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    leases: HashMap<LockKey, Lease>,
    last_token: u64,
    acquires_since_sweep: u32,
}

#[derive(Debug)]
struct Lease {
    owner: Owner,
    token: u64,
    expires_at: Instant,
}

impl Lease {
    fn live(&self, now: Instant) -> bool {
        now < self.expires_at
    }
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Mutex::new(State {
                leases: HashMap::new(),
                last_token: token_seed(),
                acquires_since_sweep: 0,
            })),
        }
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        // A panic while holding the lock cannot leave a lease half-written (each update is one
        // map operation), so the state of a poisoned lock is still good.
        let mut state = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut state)
    }
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl State {
    fn acquire(&mut self, key: &LockKey, owner: &Owner, ttl: Ttl, now: Instant) -> AcquireOutcome {
        self.acquires_since_sweep += 1;
        if self.acquires_since_sweep >= SWEEP_EVERY {
            self.acquires_since_sweep = 0;
            self.leases.retain(|_, lease| lease.live(now));
        }
        if let Some(lease) = self.leases.get(key).filter(|l| l.live(now)) {
            return AcquireOutcome::Held {
                holder: lease.owner.to_string(),
            };
        }
        self.last_token += 1;
        let token = self.last_token;
        let lease = Lease {
            owner: owner.clone(),
            token,
            expires_at: now + ttl.as_duration(),
        };
        self.leases.insert(key.clone(), lease);
        AcquireOutcome::Granted(Grant {
            token,
            expires_in: ttl.as_duration(),
        })
    }

    /// The live lease of `key` if it is `owner`'s with `token`, else who holds the key.
    fn mine(
        &mut self,
        key: &LockKey,
        owner: &Owner,
        token: u64,
        now: Instant,
    ) -> Result<&mut Lease, Option<String>> {
        match self.leases.get_mut(key) {
            Some(lease) if !lease.live(now) => Err(None),
            Some(lease) if lease.token == token && lease.owner == *owner => Ok(lease),
            Some(lease) => Err(Some(lease.owner.to_string())),
            None => Err(None),
        }
    }
}

#[async_trait]
impl LockBackend for MemoryBackend {
    async fn acquire(
        &self,
        key: &LockKey,
        owner: &Owner,
        ttl: Ttl,
    ) -> Result<AcquireOutcome, BackendError> {
        let now = Instant::now();
        Ok(self.with_state(|s| s.acquire(key, owner, ttl, now)))
    }

    async fn renew(
        &self,
        key: &LockKey,
        owner: &Owner,
        token: u64,
        ttl: Ttl,
    ) -> Result<RenewOutcome, BackendError> {
        let now = Instant::now();
        Ok(self.with_state(|s| match s.mine(key, owner, token, now) {
            Ok(lease) => {
                lease.expires_at = now + ttl.as_duration();
                RenewOutcome::Renewed(Grant {
                    token,
                    expires_in: ttl.as_duration(),
                })
            }
            Err(holder) => RenewOutcome::Lost { holder },
        }))
    }

    async fn release(
        &self,
        key: &LockKey,
        owner: &Owner,
        token: u64,
    ) -> Result<ReleaseOutcome, BackendError> {
        let now = Instant::now();
        Ok(self.with_state(|s| match s.mine(key, owner, token, now) {
            Ok(_) => {
                s.leases.remove(key);
                ReleaseOutcome::Released
            }
            Err(holder) => ReleaseOutcome::Lost { holder },
        }))
    }

    async fn check(&self) -> Result<(), BackendError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn key(k: &str) -> LockKey {
        LockKey::parse(k).unwrap()
    }
    fn owner(o: &str) -> Owner {
        Owner::parse(o).unwrap()
    }
    fn ms(ms: u64) -> Ttl {
        Ttl::from_ms(ms).unwrap()
    }
    async fn granted(b: &MemoryBackend, k: &str, o: &str, ttl: u64) -> u64 {
        match b.acquire(&key(k), &owner(o), ms(ttl)).await.unwrap() {
            AcquireOutcome::Granted(g) => {
                assert_eq!(g.expires_in, Duration::from_millis(ttl));
                g.token
            }
            other => panic!("{o} wanted {k}, got {other:?}"),
        }
    }
    fn held(holder: &str) -> AcquireOutcome {
        AcquireOutcome::Held {
            holder: holder.into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_excludes_others_until_it_expires() {
        let b = MemoryBackend::new();
        let t1 = granted(&b, "agent:1", "a", 1500).await;
        tokio::time::advance(Duration::from_millis(1499)).await;
        let got = b.acquire(&key("agent:1"), &owner("b"), ms(1000)).await;
        assert_eq!(got.unwrap(), held("a"));
        // Another key is independent.
        granted(&b, "agent:2", "b", 1000).await;
        tokio::time::advance(Duration::from_millis(1)).await;
        let t2 = granted(&b, "agent:1", "b", 1000).await;
        assert!(t2 > t1, "tokens increase: {t1} then {t2}");
        // The same owner is no exception: a lease is held once.
        let got = b.acquire(&key("agent:1"), &owner("b"), ms(1000)).await;
        assert_eq!(got.unwrap(), held("b"));
    }

    #[tokio::test(start_paused = true)]
    async fn renew_extends_only_the_current_live_lease() {
        let b = MemoryBackend::new();
        let (k, a) = (key("agent:1"), owner("a"));
        let t = granted(&b, "agent:1", "a", 1000).await;
        tokio::time::advance(Duration::from_millis(900)).await;
        let renewed = b.renew(&k, &a, t, ms(1000)).await.unwrap();
        let grant = Grant {
            token: t,
            expires_in: Duration::from_millis(1000),
        };
        assert_eq!(renewed, RenewOutcome::Renewed(grant));
        tokio::time::advance(Duration::from_millis(900)).await;
        // 1800 ms after the acquire, still held thanks to the renew.
        let got = b.acquire(&k, &owner("b"), ms(1000)).await.unwrap();
        assert_eq!(got, held("a"));
        let lost_b = RenewOutcome::Lost {
            holder: Some("a".into()),
        };
        let cases = [(owner("a"), t + 1, lost_b.clone()), (owner("b"), t, lost_b)];
        for (who, token, want) in cases {
            assert_eq!(b.renew(&k, &who, token, ms(1000)).await.unwrap(), want);
        }
        tokio::time::advance(Duration::from_millis(100)).await;
        // Expired: a late renew does not bring it back.
        let late = b.renew(&k, &a, t, ms(1000)).await.unwrap();
        assert_eq!(late, RenewOutcome::Lost { holder: None });
        granted(&b, "agent:1", "b", 1000).await;
    }

    #[tokio::test(start_paused = true)]
    async fn release_needs_owner_and_token() {
        let b = MemoryBackend::new();
        let (k, a) = (key("agent:1"), owner("a"));
        let t = granted(&b, "agent:1", "a", 5000).await;
        let lost = ReleaseOutcome::Lost {
            holder: Some("a".into()),
        };
        assert_eq!(b.release(&k, &a, t + 1).await.unwrap(), lost);
        assert_eq!(b.release(&k, &owner("b"), t).await.unwrap(), lost);
        assert_eq!(
            b.release(&k, &a, t).await.unwrap(),
            ReleaseOutcome::Released
        );
        // Released twice: the second finds nothing.
        let gone = ReleaseOutcome::Lost { holder: None };
        assert_eq!(b.release(&k, &a, t).await.unwrap(), gone);
        let t2 = granted(&b, "agent:1", "b", 5000).await;
        // The old token cannot release the new holder's lease.
        assert_eq!(
            b.release(&k, &a, t).await.unwrap(),
            ReleaseOutcome::Lost {
                holder: Some("b".into())
            }
        );
        assert!(t2 > t);
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_only_increase_across_keys_and_expiry() {
        let b = MemoryBackend::new();
        let mut last = 0;
        for round in 0..50u64 {
            let k = format!("agent:{}", round % 3);
            let t = granted(&b, &k, "a", 10).await;
            assert!(t > last, "round {round}: {t} after {last}");
            last = t;
            if round % 2 == 0 {
                tokio::time::advance(Duration::from_millis(10)).await;
            } else {
                b.release(&key(&k), &owner("a"), t).await.unwrap();
            }
        }
        // A new backend (lockd restarted) starts above every token of the old one.
        let restarted = MemoryBackend::new();
        assert!(granted(&restarted, "agent:0", "a", 10).await > last);
    }

    #[tokio::test(start_paused = true)]
    async fn expired_leases_are_swept() {
        let b = MemoryBackend::new();
        for i in 0..SWEEP_EVERY - 1 {
            granted(&b, &format!("k{i}"), "a", 10).await;
        }
        assert_eq!(b.with_state(|s| s.leases.len()), SWEEP_EVERY as usize - 1);
        tokio::time::advance(Duration::from_millis(10)).await;
        granted(&b, "last", "a", 10).await;
        assert_eq!(b.with_state(|s| s.leases.len()), 1);
    }
}
