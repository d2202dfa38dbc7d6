//! Agent PINs as stored in `agents.pin_hash`: argon2id over `ext:pin` with a random salt and
//! small parameters (a PIN is checked on a call's path, a few at a time), as a PHC string.
//! Rows written before argon2 hold the hex SHA-256 of `ext:pin`; [`verify`] still accepts them
//! and says so, so that the caller stores the argon2id form after the next successful login.
//!
//! One function for every writer (the admin pages, tests) and one for every reader (the
//! node's hot-desk login), so the rule cannot drift between crates.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use sha2::{Digest, Sha256};

/// Memory cost in KiB: 4 MiB per check (user passwords use the crate's 19 MiB default).
pub const MEMORY_KIB: u32 = 4096;
/// Passes over the memory.
pub const ITERATIONS: u32 = 3;

/// Why a PIN could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// argon2 refused to hash (never for the PIN lengths the forms accept).
    #[error("cannot hash the PIN: {0}")]
    Hash(argon2::password_hash::Error),
    /// The stored value is neither an argon2 PHC string nor a SHA-256 hex digest.
    #[error("the stored PIN hash is neither argon2 nor SHA-256")]
    Malformed,
}

/// What a PIN check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinCheck {
    /// The PIN is wrong.
    Wrong,
    /// The PIN is right and the stored hash is current.
    Right,
    /// The PIN is right but was stored in the old SHA-256 form: store this argon2id hash
    /// instead (guarded on the old value, see `Store::upgrade_agent_pin_hash`).
    RightUpgrade { new_hash: String },
}

impl PinCheck {
    pub fn is_right(&self) -> bool {
        !matches!(self, PinCheck::Wrong)
    }
}

fn hasher() -> Argon2<'static> {
    // Constant parameters inside argon2's documented bounds: `Params::new` cannot fail on
    // them, and the fallback (the crate's defaults) would only be slower, never weaker.
    let params = Params::new(MEMORY_KIB, ITERATIONS, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The stored form of agent `ext`'s PIN: an argon2id PHC string (`$argon2id$v=19$m=4096,...`).
/// Slow on purpose (milliseconds): call it off the async workers where that matters.
pub fn hash(ext: &str, pin: &str) -> Result<String, PinError> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(format!("{ext}:{pin}").as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(PinError::Hash)
}

/// Checks `pin` for agent `ext` against the stored `stored` (argon2 PHC string, or the old hex
/// SHA-256 of `ext:pin`). Slow on purpose, like [`hash`].
pub fn verify(ext: &str, pin: &str, stored: &str) -> Result<PinCheck, PinError> {
    let input = format!("{ext}:{pin}");
    if stored.starts_with("$argon2") {
        let parsed = PasswordHash::new(stored).map_err(|_| PinError::Malformed)?;
        if parsed.hash.is_none() || parsed.salt.is_none() {
            return Err(PinError::Malformed);
        }
        // The parameters come from the PHC string, so older costs still verify.
        return match Argon2::default().verify_password(input.as_bytes(), &parsed) {
            Ok(()) => Ok(PinCheck::Right),
            Err(argon2::password_hash::Error::Password) => Ok(PinCheck::Wrong),
            Err(_) => Err(PinError::Malformed),
        };
    }
    if stored.len() != 64 || !stored.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(PinError::Malformed);
    }
    let legacy = hex_lower(&Sha256::digest(input.as_bytes()));
    if !constant_time_eq(legacy.as_bytes(), stored.to_ascii_lowercase().as_bytes()) {
        return Ok(PinCheck::Wrong);
    }
    Ok(PinCheck::RightUpgrade {
        new_hash: hash(ext, pin)?,
    })
}

/// The old stored form (hex SHA-256 of `ext:pin`), for tests of the upgrade path.
pub fn legacy_sha256(ext: &str, pin: &str) -> String {
    hex_lower(&Sha256::digest(format!("{ext}:{pin}").as_bytes()))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;
