//! The key requests are signed with, derived from the cluster secret, and what makes a secret
//! strong enough to use.

use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

/// Fewest characters a cluster secret may have. `openssl rand -hex 32` gives 64.
pub const MIN_SECRET_CHARS: usize = 32;

/// The placeholder of the example configuration: refused, so a copied example cannot run a
/// cluster whose secret everybody knows.
pub const EXAMPLE_SECRET: &str = "replace-me-with-the-output-of-openssl-rand-hex-32";

/// Why a secret is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeakSecret {
    /// Shorter than [`MIN_SECRET_CHARS`] (leading and trailing spaces do not count).
    #[error(
        "the cluster secret has {chars} characters; it needs at least {MIN_SECRET_CHARS} \
         (make one with `openssl rand -hex 32`)"
    )]
    TooShort {
        /// Characters it has.
        chars: usize,
    },
    /// The example configuration's placeholder.
    #[error(
        "the cluster secret is the example configuration's placeholder; \
         replace it with a random one (`openssl rand -hex 32`), the same on every node"
    )]
    Example,
}

/// Refuses a secret shorter than [`MIN_SECRET_CHARS`] or equal to [`EXAMPLE_SECRET`].
pub fn check_strength(secret: &str) -> Result<(), WeakSecret> {
    let secret = secret.trim();
    if secret == EXAMPLE_SECRET {
        return Err(WeakSecret::Example);
    }
    let chars = secret.chars().count();
    if chars < MIN_SECRET_CHARS {
        return Err(WeakSecret::TooShort { chars });
    }
    Ok(())
}

/// The signing key of a cluster: HMAC-SHA256 keyed with a key derived from the secret, ready
/// to be cloned per request. Cheap to clone (shared). Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct ClusterKey {
    mac: Arc<Hmac<Sha256>>,
}

/// What the request key is derived with, so the secret is never an HMAC key for two purposes.
const LABEL: &[u8] = b"callfleet request signing key v1";

impl ClusterKey {
    /// The key of `secret` (trimmed) after [`check_strength`].
    pub fn strong(secret: &str) -> Result<Self, WeakSecret> {
        check_strength(secret)?;
        Ok(Self::new(secret))
    }

    /// The key of `secret` (trimmed), strong or not: for tests, and for callers that checked
    /// the secret when they read it.
    pub fn new(secret: &str) -> Self {
        let derived = keyed(secret.trim().as_bytes())
            .chain_update(LABEL)
            .finalize();
        Self {
            mac: Arc::new(keyed(&derived.into_bytes())),
        }
    }

    /// A fresh MAC state under this key.
    pub(crate) fn mac(&self) -> Hmac<Sha256> {
        Hmac::clone(&self.mac)
    }
}

fn keyed(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    }
}

impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterKey(<redacted>)")
    }
}
