//! The memcached backend: leases shared by every lockd pointed at the same memcached.
//!
//! A lease of key `K` is the item `callfleet:lock:K` holding a [`Record`] (token, expiry in
//! wall-clock ms, owner). Tokens come from one counter item, `callfleet:lock#token`, drawn
//! with `ma` (meta arithmetic), which creates it when missing, seeded with the wall clock in
//! microseconds, so that a counter lost with a memcached restart or eviction starts again
//! above every token already issued.
//!
//! # Acquire: two round trips
//!
//! 1. In one write: `ms ME` (store if absent) a *pending* record (token 0), then `ma` the
//!    counter. memcached runs the commands of a connection in order, so the draw happens
//!    after the store. If the key is taken, lockd reads it (`mg`) and, when its record has
//!    expired by its own expiry, replaces it with a compare-and-swap, again followed by a
//!    draw in the same write; a live record means the key is held.
//! 2. Write the drawn token into the record with a compare-and-swap on the CAS value from
//!    step 1 (`ms C<cas>`). Only then is the lease granted.
//!
//! **Why tokens increase in the order the key is held.** Call the moment holder *n*'s step 1
//! stored its record `a(n)`, the draw `d(n)` and the stamp `s(n)`; the draw follows the store
//! on the same connection, so `a(n) < d(n) < s(n)`. The stamp succeeds only if the record is
//! exactly the one stored at `a(n)`: no one else stored the key in between. The next holder
//! stores its record after that — after holder *n* released it (deleting the stamped record)
//! or after it expired and was replaced — so `s(n) < a(n+1) < d(n+1)`, hence `d(n) < d(n+1)`,
//! and since `ma` is atomic, the later draw gets the larger number: `token(n) < token(n+1)`.
//! An acquirer that stalls anywhere is covered: if its pending record expired and was taken
//! over, its stamp fails (the CAS value changed) and it starts over with a new draw; a token
//! drawn by an acquirer that did not get the key is never used. Drawing *before* the store
//! would not be safe: an acquirer could draw, stall, and store after a later holder with a
//! larger token had come and gone — even with the draw and the store in one write, since
//! memcached may run them apart (the write split over TCP segments, its worker thread
//! descheduled in between) while other connections' commands run. Stamping costs a round
//! trip; it is what makes the token part of the record, so that any lockd can check it.
//!
//! The draw in a step 1 whose store fails is wasted: each acquire of a held key skips a token.
//! Tokens stay increasing; they are not consecutive (they never were across keys).
//!
//! # Renew and release: one round trip
//!
//! lockd remembers the CAS value of every record it wrote ([`WrittenLeases`]). A renew or
//! release of that lease by the same owner and token sends `ms C<cas>` or `md C<cas>` right
//! away; memcached carries it out only if the item is still exactly that record, so it can
//! never touch another holder's lease. When lockd does not know the CAS value (the lease was
//! granted or renewed by another lockd, or memcached answered `EX`), it reads the record and
//! its CAS value (`mg v c`), checks owner, token and expiry, then sends the same conditional
//! write: a record that changed in between is never overwritten or deleted. A remembered CAS
//! value is only sent on the connection it came from: after a memcached restart the same
//! number may name another holder's record (a test restarts memcached to show it).
//!
//! # Time
//!
//! memcached expires items in whole seconds, and its clock ticks once a second, so an item
//! may go up to a second early. Items therefore live `ceil(ttl) + 1` seconds, and the expiry
//! written in the record (milliseconds) is what ends a lease: a 1500 ms lease is free for a
//! new acquirer 1.5 s after it was granted. lockd hosts sharing a memcached must keep their
//! clocks in sync (NTP); skew between them lengthens or shortens leases by that much.
//!
//! # The client
//!
//! lockd talks to memcached (1.6 or later, for meta commands; with CAS, i.e. not `-C`)
//! through a small client of its own over one shared, pipelined connection: `conn` says why
//! `async-memcached` and `memcache-async` do not fit, and how a CAS value stays tied to the
//! connection (so the memcached process) that issued it.

mod conn;
mod driver;
mod proto;
mod record;
mod written;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

pub use self::conn::ConnectionError;
use self::conn::{Cas, Conn, ItemCas, Memcached};
pub use self::proto::ProtocolError;
use self::record::Record;
use self::written::{Written, WrittenLeases};
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
    written: WrittenLeases,
}

/// What a contended acquire found when the key was taken.
enum Taken {
    /// The old lease had expired; a pending record of ours replaced it (its CAS value), and
    /// the token was drawn after.
    Replaced(ItemCas, u64),
    Held(String),
    /// The record changed or went away: start over.
    Retry,
}

impl MemcachedBackend {
    /// `addr` is `HOST:PORT`.
    pub fn new(addr: String) -> Self {
        Self {
            mc: Memcached::new(addr),
            written: WrittenLeases::new(),
        }
    }

    fn decode(&self, key: &LockKey, value: &[u8]) -> Result<Record, BackendError> {
        Record::decode(value).map_err(|reason| BackendError::Corrupt {
            key: key.to_string(),
            reason,
        })
    }

    /// Whether an operation that ended with `result` on `conn` runs once more, from the
    /// start, on a new connection: yes, once, if `conn` had worked before and now broke —
    /// memcached may have restarted since. Running an operation twice never grants a lease
    /// twice: a repeated store finds the key taken, a repeated CAS finds the CAS changed, a
    /// repeated draw skips a token.
    fn again<T>(&self, conn: &Conn, result: &Result<T, BackendError>, retried: &mut bool) -> bool {
        match result {
            Err(e) if conn.reused() && !*retried && e.connection_broke() => {
                tracing::debug!(addr = %self.mc.addr(), error = %e, "memcached connection went away; reconnecting");
                *retried = true;
                true
            }
            _ => false,
        }
    }

    async fn acquire_on(
        &self,
        conn: &Conn,
        (key, item): (&LockKey, &str),
        owner: &Owner,
        ttl: Ttl,
    ) -> Result<AcquireOutcome, BackendError> {
        let exptime = exptime(ttl);
        for _ in 0..ATTEMPTS {
            let pending = Record {
                token: 0,
                expires_at_ms: ends_at(ttl),
                owner: owner.to_string(),
            };
            let value = pending.encode();
            let drawn = conn
                .add_and_draw(item, &value, exptime, (COUNTER, token_seed()))
                .await?;
            let (cas, token) = match drawn {
                (Some(cas), token) => (cas, token),
                (None, _wasted) => match self.take_expired(conn, key, item, &value, exptime).await?
                {
                    Taken::Replaced(cas, token) => (cas, token),
                    Taken::Held(holder) => return Ok(AcquireOutcome::Held { holder }),
                    Taken::Retry => continue,
                },
            };
            let record = Record { token, ..pending };
            match self.stamp(conn, item, record, exptime, cas).await {
                Ok(Some(grant)) => return Ok(AcquireOutcome::Granted(grant)),
                Ok(None) => continue,
                Err(e) => {
                    // Free the key rather than leave a pending record blocking it for the
                    // whole TTL; if memcached is down this fails too, and the TTL does it.
                    let _ = conn.delete_cas(item, cas).await;
                    return Err(e);
                }
            }
        }
        Err(Self::contended(key, "acquire"))
    }

    /// Takes over `item` if its lease has expired, drawing a token right after.
    async fn take_expired(
        &self,
        conn: &Conn,
        key: &LockKey,
        item: &str,
        pending: &[u8],
        exptime: u32,
    ) -> Result<Taken, BackendError> {
        let Some((value, cas)) = conn.get(item).await? else {
            return Ok(Taken::Retry);
        };
        let current = self.decode(key, &value)?;
        if current.live(wall_ms()) {
            return Ok(Taken::Held(current.owner));
        }
        let swapped = conn
            .swap_and_draw(item, pending, (exptime, cas), (COUNTER, token_seed()))
            .await?;
        Ok(match swapped {
            (Cas::Done(Some(cas)), token) => Taken::Replaced(cas, token),
            _ => Taken::Retry,
        })
    }

    /// Step 2 of an acquire: write the token if the key is still ours.
    async fn stamp(
        &self,
        conn: &Conn,
        item: &str,
        record: Record,
        exptime: u32,
        cas: ItemCas,
    ) -> Result<Option<Grant>, BackendError> {
        match conn.set_cas(item, &record.encode(), exptime, cas).await? {
            Cas::Done(cas) => {
                let grant = Grant {
                    token: record.token,
                    // Rounded down, so the holder never thinks it has longer than it has.
                    expires_in: Duration::from_millis(
                        record.expires_at_ms.saturating_sub(wall_ms_up()),
                    ),
                };
                self.remember(item, record, cas);
                Ok(Some(grant))
            }
            Cas::Changed | Cas::Gone => Ok(None),
        }
    }

    fn remember(&self, item: &str, record: Record, cas: Option<ItemCas>) {
        let Some(cas) = cas else { return };
        let written = Written {
            token: record.token,
            owner: record.owner,
            expires_at_ms: record.expires_at_ms,
            cas,
        };
        self.written.remember(item, written, wall_ms());
    }

    async fn renew_on(
        &self,
        conn: &Conn,
        (key, item): (&LockKey, &str),
        (owner, token): (&Owner, u64),
        ttl: Ttl,
    ) -> Result<RenewOutcome, BackendError> {
        let renewed = |owner: String| Record {
            token,
            expires_at_ms: ends_at(ttl),
            owner,
        };
        let grant = Grant {
            token,
            expires_in: ttl.as_duration(),
        };
        if let Some(known) = self.written.get(item, owner.as_str(), token) {
            if known.live(wall_ms()) {
                let record = renewed(known.owner);
                match conn
                    .set_cas(item, &record.encode(), exptime(ttl), known.cas)
                    .await?
                {
                    Cas::Done(cas) => {
                        self.remember(item, record, cas);
                        return Ok(RenewOutcome::Renewed(grant));
                    }
                    Cas::Gone => {
                        self.written.forget(item);
                        return Ok(RenewOutcome::Lost { holder: None });
                    }
                    // Renewed through another lockd, or taken over: read it.
                    Cas::Changed => self.written.forget(item),
                }
            }
        }
        for _ in 0..ATTEMPTS {
            let Some((value, cas)) = conn.get(item).await? else {
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
            let record = renewed(current.owner);
            match conn
                .set_cas(item, &record.encode(), exptime(ttl), cas)
                .await?
            {
                Cas::Done(cas) => {
                    self.remember(item, record, cas);
                    return Ok(RenewOutcome::Renewed(grant));
                }
                Cas::Changed => continue,
                Cas::Gone => return Ok(RenewOutcome::Lost { holder: None }),
            }
        }
        Err(Self::contended(key, "renew"))
    }

    async fn release_on(
        &self,
        conn: &Conn,
        (key, item): (&LockKey, &str),
        owner: &Owner,
        token: u64,
    ) -> Result<ReleaseOutcome, BackendError> {
        if let Some(known) = self.written.take(item, owner.as_str(), token) {
            let live = known.live(wall_ms());
            match conn.delete_cas(item, known.cas).await? {
                Cas::Done(_) if live => return Ok(ReleaseOutcome::Released),
                Cas::Done(_) | Cas::Gone => return Ok(ReleaseOutcome::Lost { holder: None }),
                // Renewed through another lockd, or taken over: read it.
                Cas::Changed => {}
            }
        }
        for _ in 0..ATTEMPTS {
            let Some((value, cas)) = conn.get(item).await? else {
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
            match conn.delete_cas(item, cas).await? {
                Cas::Done(_) if live => return Ok(ReleaseOutcome::Released),
                Cas::Done(_) | Cas::Gone => return Ok(ReleaseOutcome::Lost { holder: None }),
                Cas::Changed => continue,
            }
        }
        Err(Self::contended(key, "release"))
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
        let mut retried = false;
        loop {
            let conn = self.mc.conn(&item).await?;
            let result = self.acquire_on(&conn, (key, &item), owner, ttl).await;
            if !self.again(&conn, &result, &mut retried) {
                return result;
            }
        }
    }

    async fn renew(
        &self,
        key: &LockKey,
        owner: &Owner,
        token: u64,
        ttl: Ttl,
    ) -> Result<RenewOutcome, BackendError> {
        let item = item_key(key);
        let mut retried = false;
        loop {
            let conn = self.mc.conn(&item).await?;
            let result = self
                .renew_on(&conn, (key, &item), (owner, token), ttl)
                .await;
            if !self.again(&conn, &result, &mut retried) {
                return result;
            }
        }
    }

    async fn release(
        &self,
        key: &LockKey,
        owner: &Owner,
        token: u64,
    ) -> Result<ReleaseOutcome, BackendError> {
        let item = item_key(key);
        let mut retried = false;
        loop {
            let conn = self.mc.conn(&item).await?;
            let result = self.release_on(&conn, (key, &item), owner, token).await;
            if !self.again(&conn, &result, &mut retried) {
                return result;
            }
        }
    }

    async fn check(&self) -> Result<(), BackendError> {
        let mut retried = false;
        loop {
            let conn = self.mc.conn(COUNTER).await?;
            let result = conn.version().await;
            if !self.again(&conn, &result, &mut retried) {
                return result;
            }
        }
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
mod tests;
