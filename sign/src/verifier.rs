//! [`Verifier`]: checks a signed request's MAC, time and freshness.
//!
//! Freshness is a sliding window per client id, as IPsec's anti-replay window: the highest
//! sequence number seen and a bitmap of the [`REPLAY_BITS`] numbers below it. A number above
//! the highest moves the window; one inside it is accepted once; one below it is refused.
//! Requests of one client may arrive out of order (several connections), by up to
//! [`REPLAY_BITS`] numbers. A client's record is kept until its last request's time is
//! [`crate::WINDOW`] old: after that, a replay of any of its requests is refused for its time.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use hmac::Mac as _;

use crate::key::ClusterKey;

/// How far out of order one client's requests may arrive.
pub const REPLAY_BITS: u64 = 4096;
const WORDS: usize = (REPLAY_BITS / 64) as usize;
/// Most clients remembered at once. Only requests with a valid MAC make a record, so only
/// the cluster's own parts fill it: each process signs with one client id.
pub const MAX_CLIENTS: usize = 10_000;

/// Why a signed request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The header is not `cf1 <ms> <client> <seq> <mac>`.
    #[error("the signature header is malformed")]
    Malformed,
    /// The request's time is too far from this host's clock.
    #[error("the request was signed {skew_ms} ms away from this host's clock (limit {limit_ms} ms): check NTP on both hosts")]
    Stale {
        /// How far off, in milliseconds (either way).
        skew_ms: u64,
        /// The window, in milliseconds.
        limit_ms: u64,
    },
    /// The MAC does not match: another secret, or a changed request.
    #[error("the signature does not match (another cluster secret, or a changed request)")]
    BadMac,
    /// This request was already taken.
    #[error("the request was already received (a replay)")]
    Replayed,
    /// [`MAX_CLIENTS`] clients are being remembered.
    #[error("too many signing clients at once")]
    TooManyClients,
}

/// Checks signed requests under one [`ClusterKey`] and remembers what it took.
pub struct Verifier {
    key: ClusterKey,
    window_ms: u64,
    clients: Mutex<Clients>,
}

#[derive(Default)]
struct Clients {
    seen: HashMap<u64, Seen>,
    /// When (ms) records were last pruned.
    pruned_at: u64,
}

struct Seen {
    top: u64,
    /// Bit `i` set: sequence number `top - i` was taken.
    bits: [u64; WORDS],
    last_ts: u64,
}

/// The fields of a signature header.
struct Parsed<'a> {
    ts: u64,
    client: u64,
    seq: u64,
    tag: &'a str,
}

fn parse(header: &str) -> Option<Parsed<'_>> {
    let mut parts = header.split(' ');
    if parts.next()? != "cf1" {
        return None;
    }
    let ts = digits(parts.next()?)?;
    let client = parts.next().filter(|c| c.len() == 16)?;
    let client = u64::from_str_radix(client, 16).ok()?;
    let seq = digits(parts.next()?)?;
    let tag = parts.next().filter(|t| t.len() == 64)?;
    if parts.next().is_some() {
        return None;
    }
    Some(Parsed {
        ts,
        client,
        seq,
        tag,
    })
}

/// A decimal number of 1 to 20 digits (no sign, no spaces).
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl Verifier {
    /// A verifier accepting requests signed within `window` of this host's clock.
    pub fn new(key: ClusterKey, window: Duration) -> Self {
        Self {
            key,
            window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
            clients: Mutex::new(Clients::default()),
        }
    }

    /// Checks `header` (the [`crate::HEADER`] value) for `method target` with `body` at
    /// `now_ms`, and takes the request: the same header is refused from then on.
    pub fn verify(
        &self,
        header: &[u8],
        method: &str,
        target: &str,
        body: &[u8],
        now_ms: u64,
    ) -> Result<(), Refused> {
        let header = std::str::from_utf8(header).map_err(|_| Refused::Malformed)?;
        let p = parse(header).ok_or(Refused::Malformed)?;
        let skew_ms = now_ms.abs_diff(p.ts);
        if skew_ms > self.window_ms {
            return Err(Refused::Stale {
                skew_ms,
                limit_ms: self.window_ms,
            });
        }
        let tag = hex::decode(p.tag).map_err(|_| Refused::Malformed)?;
        let mut mac = self.key.mac();
        crate::mac_input(&mut mac, method, target, p.ts, p.client, p.seq, body);
        mac.verify_slice(&tag).map_err(|_| Refused::BadMac)?;
        self.take(p.client, p.seq, p.ts, now_ms)
    }

    /// Records `seq` of `client`, or refuses it as seen (or too old to tell).
    fn take(&self, client: u64, seq: u64, ts: u64, now_ms: u64) -> Result<(), Refused> {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if now_ms.saturating_sub(clients.pruned_at) >= self.window_ms {
            let window = self.window_ms;
            clients
                .seen
                .retain(|_, s| s.last_ts.saturating_add(window) >= now_ms);
            clients.pruned_at = now_ms;
        }
        if !clients.seen.contains_key(&client) && clients.seen.len() >= MAX_CLIENTS {
            return Err(Refused::TooManyClients);
        }
        let seen = clients.seen.entry(client).or_insert_with(|| Seen {
            top: seq,
            bits: [0; WORDS],
            last_ts: ts,
        });
        seen.last_ts = seen.last_ts.max(ts);
        if seq > seen.top {
            shift(&mut seen.bits, seq - seen.top);
            seen.top = seq;
        }
        let back = seen.top - seq;
        if back >= REPLAY_BITS {
            return Err(Refused::Replayed);
        }
        let (word, bit) = ((back / 64) as usize, back % 64);
        let Some(w) = seen.bits.get_mut(word) else {
            return Err(Refused::Replayed);
        };
        if *w & (1 << bit) != 0 {
            return Err(Refused::Replayed);
        }
        *w |= 1 << bit;
        Ok(())
    }

    /// Clients remembered now (tests).
    pub fn clients(&self) -> usize {
        self.clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .seen
            .len()
    }
}

/// Moves every bit `d` places up (bit `i` to `i + d`), dropping what falls off the top.
fn shift(bits: &mut [u64; WORDS], d: u64) {
    if d >= REPLAY_BITS {
        *bits = [0; WORDS];
        return;
    }
    let (words, b) = ((d / 64) as usize, (d % 64) as u32);
    for i in (0..WORDS).rev() {
        let src = i.checked_sub(words);
        let hi = src.and_then(|s| bits.get(s).copied()).unwrap_or(0);
        let lo = src
            .and_then(|s| s.checked_sub(1))
            .and_then(|s| bits.get(s).copied())
            .unwrap_or(0);
        bits[i] = if b == 0 {
            hi
        } else {
            (hi << b) | (lo >> (64 - b))
        };
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("window_ms", &self.window_ms)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
