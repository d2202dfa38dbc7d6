//! The memcached backend: leases shared by every lockd pointed at the same memcached.
//!
//! A lease of key `K` is the item `callfleet:lock:K` holding a [`Record`] (token, expiry in
//! wall-clock ms, owner). Tokens come from one counter item, `callfleet:lock#token`, bumped
//! with `incr`; it is created with `add` when missing, seeded with the wall clock in
//! microseconds so that a counter lost with a memcached restart or eviction starts again above
//! every token already issued.
//!
//! - **acquire**: (1) `add` a pending record (token 0) — atomic, one winner; if the key is
//!   taken, read it (`mg`) and, when its record has expired by its own expiry, replace it with
//!   a compare-and-swap; (2) `incr` the counter; (3) write the token into the record with a
//!   compare-and-swap on the CAS value from step 1. The token is drawn *while* the key is
//!   held, so a later holder always draws a later (larger) token: tokens increase in the
//!   order the key is held, even when an acquirer stalls between steps. Step 3 fails only if
//!   the pending record expired and someone else took the key; the acquire then starts over.
//! - **renew / release**: read the record and its CAS value (`mg v c`), check owner, token
//!   and expiry, then `ms C<cas>` (renew) or `md C<cas>` (release): a record that changed in
//!   between is never overwritten or deleted.
//!
//! memcached expires items in whole seconds, and its clock ticks once a second, so an item
//! may go up to a second early. Items therefore live `ceil(ttl) + 1` seconds, and the expiry
//! written in the record (milliseconds) is what ends a lease: a 1500 ms lease is free for a
//! new acquirer 1.5 s after it was granted. lockd hosts sharing a memcached must keep their
//! clocks in sync (NTP); skew between them lengthens or shortens leases by that much.
//!
//! The client crate is `async-memcached` 0.9: its meta commands take arbitrary flags, so it
//! gives compare-and-delete (`md <key> C<cas>`), store-if-absent and compare-and-swap that
//! return the new CAS value (`ms ... c`), and every command waits for memcached's answer.
//! `memcache-async` 0.10 was the other candidate; its `delete` is `noreply` only and it has
//! no compare-and-delete, so a release could not be made conditional with it.

mod conn;
mod record;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use self::conn::{Cas, Memcached};
use self::record::Record;
use super::{
    token_seed, AcquireOutcome, BackendError, Grant, LockBackend, ReleaseOutcome, RenewOutcome,
};
use crate::request::{LockKey, Owner, Ttl};

/// Namespace of lease items; with the longest key this stays under memcached's 250 bytes.
const PREFIX: &str = "callfleet:lock:";
/// The token counter (`#` cannot appear in a lock key, so it cannot clash with a lease).
const COUNTER: &str = "callfleet:lock#token";
/// How many times an operation starts over when the record changes under it.
const ATTEMPTS: u32 = 8;

#[derive(Debug)]
pub(crate) struct MemcachedBackend {
    mc: Memcached,
}

/// What a contended acquire found when the key was taken.
enum Taken {
    /// The old lease had expired; a pending record of ours replaced it (its CAS value).
    Replaced(u64),
    Held(String),
    /// The record changed or went away: start over.
    Retry,
}

impl MemcachedBackend {
    /// `addr` is `HOST:PORT`.
    pub fn new(addr: String) -> Self {
        Self {
            mc: Memcached::new(addr),
        }
    }

    fn decode(&self, key: &LockKey, value: &[u8]) -> Result<Record, BackendError> {
        Record::decode(value).map_err(|reason| BackendError::Corrupt {
            key: key.to_string(),
            reason,
        })
    }

    /// Takes over `item` if its lease has expired.
    async fn take_expired(
        &self,
        key: &LockKey,
        item: &str,
        pending: &Record,
        exptime: u32,
    ) -> Result<Taken, BackendError> {
        let Some((value, cas)) = self.mc.get(item).await? else {
            return Ok(Taken::Retry);
        };
        let current = self.decode(key, &value)?;
        if current.live(wall_ms()) {
            return Ok(Taken::Held(current.owner));
        }
        Ok(
            match self
                .mc
                .set_cas(item, &pending.encode(), exptime, cas)
                .await?
            {
                Cas::Done(cas) => Taken::Replaced(cas),
                Cas::Changed | Cas::Gone => Taken::Retry,
            },
        )
    }

    /// Steps 2 and 3 of an acquire: draw the token, write it if the key is still ours.
    async fn stamp(
        &self,
        item: &str,
        mut record: Record,
        exptime: u32,
        cas: u64,
    ) -> Result<Option<Grant>, BackendError> {
        record.token = self.next_token().await?;
        match self
            .mc
            .set_cas(item, &record.encode(), exptime, cas)
            .await?
        {
            Cas::Done(_) => Ok(Some(Grant {
                token: record.token,
                // Rounded down, so the holder never thinks it has longer than it has.
                expires_in: Duration::from_millis(
                    record.expires_at_ms.saturating_sub(wall_ms_up()),
                ),
            })),
            Cas::Changed | Cas::Gone => Ok(None),
        }
    }

    async fn next_token(&self) -> Result<u64, BackendError> {
        for _ in 0..ATTEMPTS {
            if let Some(token) = self.mc.incr(COUNTER).await? {
                return Ok(token);
            }
            if self.mc.add_counter(COUNTER, token_seed()).await? {
                tracing::info!(addr = %self.mc.addr(), "created the lock token counter in memcached");
            }
        }
        Err(BackendError::Contended {
            key: COUNTER.into(),
            op: "incr",
            attempts: ATTEMPTS,
        })
    }

    fn contended(key: &LockKey, op: &'static str) -> BackendError {
        BackendError::Contended {
            key: key.to_string(),
            op,
            attempts: ATTEMPTS,
        }
    }
}

#[async_trait]
impl LockBackend for MemcachedBackend {
    async fn acquire(
        &self,
        key: &LockKey,
        owner: &Owner,
        ttl: Ttl,
    ) -> Result<AcquireOutcome, BackendError> {
        let item = item_key(key);
        let exptime = exptime(ttl);
        for _ in 0..ATTEMPTS {
            let pending = Record {
                token: 0,
                expires_at_ms: ends_at(ttl),
                owner: owner.to_string(),
            };
            let cas = match self.mc.add(&item, &pending.encode(), exptime).await? {
                Some(cas) => cas,
                None => match self.take_expired(key, &item, &pending, exptime).await? {
                    Taken::Replaced(cas) => cas,
                    Taken::Held(holder) => return Ok(AcquireOutcome::Held { holder }),
                    Taken::Retry => continue,
                },
            };
            match self.stamp(&item, pending, exptime, cas).await {
                Ok(Some(grant)) => return Ok(AcquireOutcome::Granted(grant)),
                Ok(None) => continue,
                Err(e) => {
                    // Free the key rather than leave a pending record blocking it for the
                    // whole TTL; if memcached is down this fails too, and the TTL does it.
                    let _ = self.mc.delete_cas(&item, cas).await;
                    return Err(e);
                }
            }
        }
        Err(Self::contended(key, "acquire"))
    }

    async fn renew(
        &self,
        key: &LockKey,
        owner: &Owner,
        token: u64,
        ttl: Ttl,
    ) -> Result<RenewOutcome, BackendError> {
        let item = item_key(key);
        for _ in 0..ATTEMPTS {
            let Some((value, cas)) = self.mc.get(&item).await? else {
                return Ok(RenewOutcome::Lost { holder: None });
            };
            let current = self.decode(key, &value)?;
            if !current.live(wall_ms()) {
                return Ok(RenewOutcome::Lost { holder: None });
            }
            if current.token != token || current.owner != owner.as_str() {
                let holder = Some(current.owner);
                return Ok(RenewOutcome::Lost { holder });
            }
            let renewed = Record {
                expires_at_ms: ends_at(ttl),
                ..current
            };
            match self
                .mc
                .set_cas(&item, &renewed.encode(), exptime(ttl), cas)
                .await?
            {
                Cas::Done(_) => {
                    let grant = Grant {
                        token,
                        expires_in: ttl.as_duration(),
                    };
                    return Ok(RenewOutcome::Renewed(grant));
                }
                Cas::Changed => continue,
                Cas::Gone => return Ok(RenewOutcome::Lost { holder: None }),
            }
        }
        Err(Self::contended(key, "renew"))
    }

    async fn release(
        &self,
        key: &LockKey,
        owner: &Owner,
        token: u64,
    ) -> Result<ReleaseOutcome, BackendError> {
        let item = item_key(key);
        for _ in 0..ATTEMPTS {
            let Some((value, cas)) = self.mc.get(&item).await? else {
                return Ok(ReleaseOutcome::Lost { holder: None });
            };
            let current = self.decode(key, &value)?;
            let live = current.live(wall_ms());
            if current.token != token || current.owner != owner.as_str() {
                let holder = live.then_some(current.owner);
                return Ok(ReleaseOutcome::Lost { holder });
            }
            // An expired lease of the caller's is deleted too (nobody else holds it), but
            // the caller learns it had lost it.
            match self.mc.delete_cas(&item, cas).await? {
                Cas::Done(_) if live => return Ok(ReleaseOutcome::Released),
                Cas::Done(_) | Cas::Gone => return Ok(ReleaseOutcome::Lost { holder: None }),
                Cas::Changed => continue,
            }
        }
        Err(Self::contended(key, "release"))
    }

    async fn check(&self) -> Result<(), BackendError> {
        self.mc.version().await
    }
}

fn item_key(key: &LockKey) -> String {
    format!("{PREFIX}{key}")
}

/// memcached lifetime of a lease item: the TTL rounded up to whole seconds, plus one second
/// because memcached's clock may expire an item up to a second early.
fn exptime(ttl: Ttl) -> u32 {
    let secs = ttl.as_ms().div_ceil(1000) + 1;
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// Wall-clock milliseconds since the UNIX epoch, rounded down: has a lease ended yet?
/// (Lease expiries are compared across hosts, hence the wall clock.)
fn wall_ms() -> u64 {
    let nanos = wall_nanos();
    u64::try_from(nanos / 1_000_000).unwrap_or(u64::MAX / 2)
}

/// When a lease of `ttl` granted now ends: now rounded up to the millisecond, plus `ttl`, so
/// it never ends before `ttl` has passed.
fn ends_at(ttl: Ttl) -> u64 {
    wall_ms_up() + ttl.as_ms()
}

fn wall_ms_up() -> u64 {
    u64::try_from(wall_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX / 2)
}

fn wall_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::MAX_KEY_LEN;

    #[test]
    fn item_lifetimes_cover_the_lease() {
        let cases = [
            (1, 2),
            (999, 2),
            (1000, 2),
            (1001, 3),
            (1500, 3),
            (3_600_000, 3601),
        ];
        for (ttl_ms, secs) in cases {
            assert_eq!(exptime(Ttl::from_ms(ttl_ms).unwrap()), secs, "{ttl_ms} ms");
        }
    }

    #[test]
    fn the_longest_key_fits_memcached() {
        let key = LockKey::parse(&"k".repeat(MAX_KEY_LEN)).unwrap();
        assert!(item_key(&key).len() <= 250);
        // No lock key maps onto the counter.
        assert!(!COUNTER.starts_with(PREFIX));
    }
}
