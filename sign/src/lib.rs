//! Requests between the parts of a callfleet cluster (node to lockd, node to node, the CLI to a
//! node) signed with the cluster secret, so the secret itself never travels.
//!
//! A request carries one header, [`HEADER`]:
//!
//! ```text
//! X-Callfleet-Signature: cf1 <unix ms> <client id, 16 hex> <sequence> <HMAC-SHA256, 64 hex>
//! ```
//!
//! The HMAC is keyed with a key derived from the secret (never the secret itself, which also
//! keys other things) and covers the method, the request target (path and query, exactly as
//! sent), the time, the client id, the sequence number and the body. The receiver
//! ([`Verifier`]) accepts a request only when the MAC matches, its time is within
//! [`WINDOW`] of its own clock, and it has not seen that client id and sequence number before
//! (a sliding window per client, as IPsec's anti-replay window): a captured request cannot be
//! changed, and cannot be replayed to the same receiver. [`Strikes`] counts refused
//! credentials per source address so a receiver can slow down whoever keeps presenting them.
//!
//! - [`key`]: [`ClusterKey`] and the strength rule of a secret ([`check_strength`]).
//! - [`signer`]: [`Signer`], which a client holds.
//! - [`verifier`]: [`Verifier`], which a server holds.
//! - [`strikes`]: [`Strikes`], failures per source address.
//!
//! Limits: the replay record lives in the receiver's memory, so after a receiver restarts, or
//! at another receiver sharing the secret, a captured request stays usable until its time is
//! [`WINDOW`] old. Nothing is encrypted: a captured request's content can be read.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod key;
pub mod signer;
pub mod strikes;
pub mod verifier;

use std::time::Duration;

pub use key::{check_strength, ClusterKey, WeakSecret, EXAMPLE_SECRET, MIN_SECRET_CHARS};
pub use signer::Signer;
pub use strikes::{Strike, Strikes};
pub use verifier::{Refused, Verifier};

/// The header a signed request carries (lower case, as HTTP/2 and axum spell names).
pub const HEADER: &str = "x-callfleet-signature";

/// The header that carried the secret itself in clear before requests were signed; a
/// receiver refuses a request that still sends it.
pub const LEGACY_SECRET_HEADER: &str = "x-callfleet-secret";

/// How far a request's time may be from the receiver's clock, either way. Cluster hosts keep
/// their clocks in step with NTP; this is far wider than their drift and short enough that a
/// captured request is soon useless everywhere.
pub const WINDOW: Duration = Duration::from_secs(30);

/// Milliseconds since the UNIX epoch by this host's clock (0 before 1970): callfleet's one
/// clock ([`callfleet_vocab::now_ms`]) as the unsigned time a signature carries.
pub fn now_ms() -> u64 {
    u64::try_from(callfleet_vocab::now_ms()).unwrap_or(0)
}

/// The bytes the MAC covers, in order: fixed fields separated by `\n` (none can contain one:
/// a method is a token, a request target has no control characters, the rest are digits and
/// hex), then the body as sent.
fn mac_input(
    mac: &mut hmac::Hmac<sha2::Sha256>,
    method: &str,
    target: &str,
    ts: u64,
    client: u64,
    seq: u64,
    body: &[u8],
) {
    use hmac::Mac as _;
    let head = format!("cf1\n{method}\n{target}\n{ts}\n{client:016x}\n{seq}\n");
    mac.update(head.as_bytes());
    mac.update(body);
}

#[cfg(test)]
mod tests;
