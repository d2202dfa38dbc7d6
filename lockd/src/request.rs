//! What a lock request may name (keys, owners, TTLs, tokens), checked before anything reaches a
//! backend, so a backend only ever sees values that are safe as memcached keys and values.

use std::fmt;
use std::time::Duration;

/// Longest lock key, in bytes. memcached allows 250 per key; the backend adds a namespace
/// prefix, and this leaves room for it.
pub const MAX_KEY_LEN: usize = 200;
/// Longest owner name, in bytes.
pub const MAX_OWNER_LEN: usize = 128;
/// Longest lease one request may ask for.
pub const MAX_TTL_MS: u64 = 3_600_000;

/// A request that cannot be served as sent: the HTTP API answers 400 with this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRequest {
    #[error("the lock key is empty")]
    EmptyKey,
    #[error("the lock key is {len} bytes long; the limit is {max}")]
    KeyTooLong { len: usize, max: usize },
    #[error(
        "the lock key has {found:?} at byte {at}; allowed are ASCII letters, digits and . _ - : @ + ="
    )]
    KeyChar { found: char, at: usize },
    #[error("the owner is empty")]
    EmptyOwner,
    #[error("the owner is {len} bytes long; the limit is {max}")]
    OwnerTooLong { len: usize, max: usize },
    #[error("the owner has a control character at byte {at}")]
    OwnerControl { at: usize },
    #[error("ttl_ms {ttl_ms} is out of range 1..={max_ms}")]
    Ttl { ttl_ms: u128, max_ms: u64 },
    #[error("token 0 is never issued")]
    ZeroToken,
}

/// A lock key: 1 to [`MAX_KEY_LEN`] bytes of ASCII letters, digits and `. _ - : @ + =`
/// (e.g. `agent:1001`). Safe in a URL path segment and in a memcached key as it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LockKey(String);

impl LockKey {
    pub fn parse(key: &str) -> Result<Self, InvalidRequest> {
        if key.is_empty() {
            return Err(InvalidRequest::EmptyKey);
        }
        if key.len() > MAX_KEY_LEN {
            return Err(InvalidRequest::KeyTooLong {
                len: key.len(),
                max: MAX_KEY_LEN,
            });
        }
        if let Some((at, found)) = key.char_indices().find(|&(_, c)| !key_char(c)) {
            return Err(InvalidRequest::KeyChar { found, at });
        }
        Ok(Self(key.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '@' | '+' | '=')
}

impl fmt::Display for LockKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who holds (or asks for) a lease: 1 to [`MAX_OWNER_LEN`] bytes of UTF-8 without control
/// characters, e.g. `main-a` or `main-a/queue-dispatcher`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Owner(String);

impl Owner {
    pub fn parse(owner: &str) -> Result<Self, InvalidRequest> {
        if owner.is_empty() {
            return Err(InvalidRequest::EmptyOwner);
        }
        if owner.len() > MAX_OWNER_LEN {
            return Err(InvalidRequest::OwnerTooLong {
                len: owner.len(),
                max: MAX_OWNER_LEN,
            });
        }
        if let Some((at, _)) = owner.char_indices().find(|(_, c)| c.is_control()) {
            return Err(InvalidRequest::OwnerControl { at });
        }
        Ok(Self(owner.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A lease duration: 1 ms to [`MAX_TTL_MS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ttl(u64);

impl Ttl {
    pub fn from_ms(ttl_ms: u64) -> Result<Self, InvalidRequest> {
        if (1..=MAX_TTL_MS).contains(&ttl_ms) {
            Ok(Self(ttl_ms))
        } else {
            Err(InvalidRequest::Ttl {
                ttl_ms: u128::from(ttl_ms),
                max_ms: MAX_TTL_MS,
            })
        }
    }

    /// Rounds up to whole milliseconds: a lease never ends before the caller asked.
    pub fn from_duration(ttl: Duration) -> Result<Self, InvalidRequest> {
        let ms = ttl.as_nanos().div_ceil(1_000_000);
        match u64::try_from(ms) {
            Ok(ms) => Self::from_ms(ms),
            Err(_) => Err(InvalidRequest::Ttl {
                ttl_ms: ms,
                max_ms: MAX_TTL_MS,
            }),
        }
    }

    pub fn as_ms(self) -> u64 {
        self.0
    }

    pub fn as_duration(self) -> Duration {
        Duration::from_millis(self.0)
    }
}

/// A fencing token as a request carries it: backends never issue 0.
pub fn check_token(token: u64) -> Result<u64, InvalidRequest> {
    if token == 0 {
        Err(InvalidRequest::ZeroToken)
    } else {
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let long = "k".repeat(MAX_KEY_LEN);
        let too_long = "k".repeat(MAX_KEY_LEN + 1);
        let cases: &[(&str, Result<(), InvalidRequest>)] = &[
            ("agent:1001", Ok(())),
            ("queue.sales_vip-2@main-a+x=y", Ok(())),
            ("A", Ok(())),
            (&long, Ok(())),
            ("", Err(InvalidRequest::EmptyKey)),
            (
                &too_long,
                Err(InvalidRequest::KeyTooLong {
                    len: MAX_KEY_LEN + 1,
                    max: MAX_KEY_LEN,
                }),
            ),
            (
                "agent 1001",
                Err(InvalidRequest::KeyChar { found: ' ', at: 5 }),
            ),
            (
                "a\r\nb",
                Err(InvalidRequest::KeyChar { found: '\r', at: 1 }),
            ),
            ("a\0", Err(InvalidRequest::KeyChar { found: '\0', at: 1 })),
            ("a/b", Err(InvalidRequest::KeyChar { found: '/', at: 1 })),
            ("a%20", Err(InvalidRequest::KeyChar { found: '%', at: 1 })),
            (
                "agent:é",
                Err(InvalidRequest::KeyChar { found: 'é', at: 6 }),
            ),
            ("a\tb", Err(InvalidRequest::KeyChar { found: '\t', at: 1 })),
        ];
        for (key, want) in cases {
            let got = LockKey::parse(key).map(|k| assert_eq!(k.as_str(), *key));
            assert_eq!(&got, want, "key {key:?}");
        }
    }

    #[test]
    fn owners() {
        let too_long = "o".repeat(MAX_OWNER_LEN + 1);
        let cases: &[(&str, Result<(), InvalidRequest>)] = &[
            ("main-a", Ok(())),
            ("main-a/dispatcher 2", Ok(())),
            ("nœud", Ok(())),
            ("", Err(InvalidRequest::EmptyOwner)),
            (
                &too_long,
                Err(InvalidRequest::OwnerTooLong {
                    len: MAX_OWNER_LEN + 1,
                    max: MAX_OWNER_LEN,
                }),
            ),
            ("a\nb", Err(InvalidRequest::OwnerControl { at: 1 })),
            ("\u{7f}", Err(InvalidRequest::OwnerControl { at: 0 })),
        ];
        for (owner, want) in cases {
            let got = Owner::parse(owner).map(|o| assert_eq!(o.as_str(), *owner));
            assert_eq!(&got, want, "owner {owner:?}");
        }
    }

    #[test]
    fn ttls() {
        let out = |ttl_ms: u128| {
            Err(InvalidRequest::Ttl {
                ttl_ms,
                max_ms: MAX_TTL_MS,
            })
        };
        let cases: &[(Duration, Result<u64, InvalidRequest>)] = &[
            (Duration::from_millis(1500), Ok(1500)),
            (Duration::from_micros(1), Ok(1)),
            (Duration::from_micros(1001), Ok(2)),
            (Duration::from_millis(MAX_TTL_MS), Ok(MAX_TTL_MS)),
            (Duration::ZERO, out(0)),
            (
                Duration::from_millis(MAX_TTL_MS + 1),
                out(u128::from(MAX_TTL_MS) + 1),
            ),
        ];
        for (ttl, want) in cases {
            assert_eq!(&Ttl::from_duration(*ttl).map(Ttl::as_ms), want, "{ttl:?}");
        }
        assert_eq!(Ttl::from_ms(0).map(Ttl::as_ms), out(0));
        assert_eq!(
            Ttl::from_ms(250).map(Ttl::as_duration),
            Ok(Duration::from_millis(250))
        );
        assert_eq!(check_token(0), Err(InvalidRequest::ZeroToken));
        assert_eq!(check_token(7), Ok(7));
    }
}
