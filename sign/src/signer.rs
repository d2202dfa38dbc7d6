//! [`Signer`]: what a client holds to sign its requests.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use hmac::Mac as _;

use crate::key::ClusterKey;

/// Signs requests under a [`ClusterKey`]. Each signer has a random client id and numbers its
/// requests from 1, so a receiver can tell every request it took from a new one. Cheap to
/// share (`&self`); one per process is enough.
pub struct Signer {
    key: ClusterKey,
    client: u64,
    seq: AtomicU64,
}

impl Signer {
    /// A signer with a fresh random client id.
    pub fn new(key: ClusterKey) -> Self {
        Self::with_client(key, rand::random())
    }

    /// A signer with this client id (tests).
    pub fn with_client(key: ClusterKey, client: u64) -> Self {
        Self {
            key,
            client,
            seq: AtomicU64::new(1),
        }
    }

    /// The [`crate::HEADER`] value for `method target` with `body`, signed at `now_ms`
    /// (milliseconds since the UNIX epoch). `target` is the path and query exactly as they
    /// go on the wire. Each call takes the next sequence number: sign every attempt anew.
    pub fn sign(&self, method: &str, target: &str, body: &[u8], now_ms: u64) -> String {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        self.sign_seq(method, target, body, now_ms, seq)
    }

    /// [`Signer::sign`] at this host's time.
    pub fn sign_now(&self, method: &str, target: &str, body: &[u8]) -> String {
        self.sign(method, target, body, crate::now_ms())
    }

    /// [`Signer::sign`] with a given sequence number (tests replay with it).
    pub fn sign_seq(&self, method: &str, target: &str, body: &[u8], ts: u64, seq: u64) -> String {
        let mut mac = self.key.mac();
        crate::mac_input(&mut mac, method, target, ts, self.client, seq, body);
        let tag = hex::encode(mac.finalize().into_bytes());
        format!("cf1 {ts} {:016x} {seq} {tag}", self.client)
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("client", &format_args!("{:016x}", self.client))
            .finish_non_exhaustive()
    }
}
