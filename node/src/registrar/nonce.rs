//! Digest nonces without server state, and the per-node record of nonce counts that stops
//! replays. Sans-IO: time comes in as `now_ms`, randomness as `salt`.
//!
//! A nonce is `hex(issued_ms ‖ instance ‖ salt ‖ HMAC-SHA256(key, those 24 bytes)[..16])`.
//! The key is derived from the cluster secret, so every node recognises every node's nonces;
//! `instance` names the node process that issued it (node name and start generation), because
//! the nonce-count record lives in that process's memory only. A nonce of another instance, or
//! one older than the TTL, is *stale*: a client with the right password gets a fresh challenge
//! marked `stale=true`, which phones answer at once, rather than a plain `401` that many
//! (baresip among them) take for a wrong password.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the sealed part: issued_ms, instance, salt.
const BODY: usize = 24;
/// Bytes of the MAC kept in the nonce (128 bits).
const MAC: usize = 16;

/// Issues and checks nonces.
#[derive(Clone)]
pub struct NonceMint {
    key: [u8; 32],
    instance: u64,
    ttl_ms: i64,
}

/// What a nonce turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceState {
    /// Not one of ours: bad length, not hex, or the MAC does not match (tampered, or another
    /// cluster secret).
    Invalid,
    /// Ours and younger than the TTL: replay protection applies.
    Fresh { issued_ms: i64 },
    /// Older than the TTL (or dated implausibly far in the future).
    Expired,
    /// Issued by another node, or by this node before a restart: its nonce counts are unknown.
    Foreign,
}

impl NonceMint {
    /// A mint keyed from `secret` (the same on every node of a cluster) for this process.
    pub fn new(secret: &[u8], instance: u64, ttl: Duration) -> NonceMint {
        // A key of its own, so the cluster secret is never an HMAC key for two purposes.
        NonceMint {
            key: hmac(secret, b"callfleet digest nonce key v1"),
            instance,
            ttl_ms: i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX),
        }
    }

    /// A process instance id from the node's name and start generation.
    pub fn instance_id(node: &str, generation: i64) -> u64 {
        let digest = Sha256::digest(format!("{node}/{generation}").as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first)
    }

    pub fn ttl_ms(&self) -> i64 {
        self.ttl_ms
    }

    /// A new nonce; `salt` makes two nonces of the same millisecond differ.
    pub fn issue(&self, now_ms: i64, salt: u64) -> String {
        let mut body = [0u8; BODY];
        body[..8].copy_from_slice(&now_ms.to_be_bytes());
        body[8..16].copy_from_slice(&self.instance.to_be_bytes());
        body[16..].copy_from_slice(&salt.to_be_bytes());
        let tag = hmac(&self.key, &body);
        let mut out = hex::encode(body);
        out.push_str(&hex::encode(&tag[..MAC]));
        out
    }

    /// Checks a nonce a client sent back.
    pub fn check(&self, nonce: &str, now_ms: i64) -> NonceState {
        let Ok(raw) = hex::decode(nonce) else {
            return NonceState::Invalid;
        };
        if raw.len() != BODY + MAC {
            return NonceState::Invalid;
        }
        let (body, tag) = raw.split_at(BODY);
        let expected = hmac(&self.key, body);
        if !super::digest::constant_time_eq(&expected[..MAC], tag) {
            return NonceState::Invalid;
        }
        let field = |range: std::ops::Range<usize>| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&body[range]);
            b
        };
        let issued_ms = i64::from_be_bytes(field(0..8));
        let instance = u64::from_be_bytes(field(8..16));
        let age = now_ms.saturating_sub(issued_ms);
        if age > self.ttl_ms || age < -self.ttl_ms {
            NonceState::Expired
        } else if instance != self.instance {
            NonceState::Foreign
        } else {
            NonceState::Fresh { issued_ms }
        }
    }
}

/// HMAC-SHA256 of `data` under `key`.
fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The highest `nc` seen per (nonce, user) on this node: a request must bring a higher one.
///
/// Bounded: past `cap` entries the oldest is dropped and its nonce's issue time becomes a
/// floor; a nonce issued at or before the floor that is no longer in the table is refused as
/// if replayed (the client gets `stale=true` and a fresh nonce), so eviction never opens a
/// replay window.
#[derive(Debug)]
pub struct NcRecord {
    seen: HashMap<(String, String), u32>,
    /// Entries in the order they were added, with their nonce's issue time.
    order: VecDeque<(String, String, i64)>,
    floor_ms: i64,
    cap: usize,
}

impl NcRecord {
    pub fn new(cap: usize) -> NcRecord {
        NcRecord {
            seen: HashMap::new(),
            order: VecDeque::new(),
            floor_ms: i64::MIN,
            cap: cap.max(1),
        }
    }

    /// Records `nc` for (nonce, user) if it is higher than any seen before; false for a replay.
    pub fn advance(
        &mut self,
        nonce: &str,
        user: &str,
        issued_ms: i64,
        nc: u32,
        now_ms: i64,
        ttl_ms: i64,
    ) -> bool {
        self.forget_expired(now_ms, ttl_ms);
        let key = (nonce.to_string(), user.to_string());
        if let Some(last) = self.seen.get_mut(&key) {
            if nc <= *last {
                return false;
            }
            *last = nc;
            return true;
        }
        if issued_ms <= self.floor_ms || nc == 0 {
            return false;
        }
        self.order
            .push_back((key.0.clone(), key.1.clone(), issued_ms));
        self.seen.insert(key, nc);
        while self.seen.len() > self.cap {
            let Some((n, u, issued)) = self.order.pop_front() else {
                break;
            };
            self.seen.remove(&(n, u));
            self.floor_ms = self.floor_ms.max(issued);
        }
        true
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Drops entries whose nonce has expired (the nonce check refuses them before this table is
    /// asked), oldest first.
    fn forget_expired(&mut self, now_ms: i64, ttl_ms: i64) {
        while let Some((n, u, issued)) = self.order.front() {
            if now_ms.saturating_sub(*issued) <= ttl_ms {
                break;
            }
            self.seen.remove(&(n.clone(), u.clone()));
            self.order.pop_front();
        }
    }
}

#[cfg(test)]
mod tests;
