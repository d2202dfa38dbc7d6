//! Where leases live: the [`LockBackend`] trait, its two implementations (in-process memory,
//! shared memcached) and [`Backend`], the cheap handle the server and the client hold.

mod memcached;
mod memory;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use crate::request::{LockKey, Owner, Ttl};

pub use memcached::{ConnectionError, ProtocolError};
pub use memory::MemoryBackend;

/// A lease was granted or renewed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Fencing token: larger than every token any earlier holder of this key got.
    pub token: u64,
    /// How long the lease lasts from now (the backend's now).
    pub expires_in: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AcquireOutcome {
    Granted(Grant),
    /// Someone holds a live lease on the key.
    Held {
        holder: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RenewOutcome {
    /// Same token, new expiry.
    Renewed(Grant),
    /// The lease has expired or belongs to someone else; `holder` names a live holder.
    Lost { holder: Option<String> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReleaseOutcome {
    Released,
    /// The caller no longer held the lease (expired, or someone else's); nothing of another
    /// holder was touched.
    Lost {
        holder: Option<String>,
    },
}

/// Lease storage. Every method is atomic per key: acquire grants one live lease at a time,
/// renew and release act only when owner and token match the current live lease.
#[async_trait]
pub trait LockBackend: Send + Sync + fmt::Debug {
    async fn acquire(
        &self,
        key: &LockKey,
        owner: &Owner,
        ttl: Ttl,
    ) -> Result<AcquireOutcome, BackendError>;
    async fn renew(
        &self,
        key: &LockKey,
        owner: &Owner,
        token: u64,
        ttl: Ttl,
    ) -> Result<RenewOutcome, BackendError>;
    async fn release(
        &self,
        key: &LockKey,
        owner: &Owner,
        token: u64,
    ) -> Result<ReleaseOutcome, BackendError>;
    /// Ok when the backend can serve requests now.
    async fn check(&self) -> Result<(), BackendError>;
}

/// The backend could not answer. Every variant means "try again later / elsewhere": the HTTP
/// API answers 503 for [`BackendError::is_unavailable`] and 500 otherwise.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("cannot connect to memcached at {addr}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the connection to memcached at {addr} failed during `{op}`")]
    Connection {
        addr: String,
        op: &'static str,
        #[source]
        source: ConnectionError,
    },
    #[error("memcached at {addr} did not answer `{op}` within {after:?}")]
    Timeout {
        addr: String,
        op: &'static str,
        after: Duration,
    },
    /// `SERVER_ERROR`: memcached could not carry the command out (e.g. out of memory).
    #[error("memcached at {addr} could not carry out `{op}`: {message}")]
    Server {
        addr: String,
        op: &'static str,
        message: String,
    },
    #[error("memcached at {addr} answered `{op}` with {reply}")]
    Unexpected {
        addr: String,
        op: &'static str,
        reply: String,
    },
    #[error("the lease record of {key} in memcached is corrupt: {reason}")]
    Corrupt { key: String, reason: &'static str },
    #[error("{key} changed under `{op}` {attempts} times in a row")]
    Contended {
        key: String,
        op: &'static str,
        attempts: u32,
    },
}

impl BackendError {
    /// The storage is down or busy, not broken: callers may retry, or fail over.
    pub fn is_unavailable(&self) -> bool {
        !matches!(self, Self::Corrupt { .. } | Self::Unexpected { .. })
    }

    /// A connection to memcached broke (as opposed to memcached answering).
    pub(crate) fn connection_broke(&self) -> bool {
        matches!(self, Self::Connection { .. })
    }
}

/// `Backend::from_url` could not make sense of the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendUrlError {
    #[error("unknown lock backend {url:?}: use `memory` or `memcached://HOST:PORT`")]
    Scheme { url: String },
    #[error(
        "lock backend {url:?} needs an IPv4 address or host name and a port: memcached://HOST:PORT"
    )]
    Address { url: String },
}

/// A lock backend, cheap to clone (all clones share the same leases).
#[derive(Clone)]
pub struct Backend {
    inner: Arc<dyn LockBackend>,
    url: Arc<str>,
}

impl Backend {
    /// `memory` (leases in this process) or `memcached://HOST:PORT` (port 11211 if left out).
    /// Does not connect: a memcached that is down makes requests fail with 503 until it is up.
    pub fn from_url(url: &str) -> Result<Self, BackendUrlError> {
        if url == "memory" {
            return Ok(Self::memory());
        }
        let Some(rest) = url.strip_prefix("memcached://") else {
            return Err(BackendUrlError::Scheme { url: url.into() });
        };
        let addr =
            memcached_addr(rest).ok_or_else(|| BackendUrlError::Address { url: url.into() })?;
        Ok(Self {
            inner: Arc::new(memcached::MemcachedBackend::new(addr.clone())),
            url: format!("memcached://{addr}").into(),
        })
    }

    pub fn memory() -> Self {
        Self {
            inner: Arc::new(MemoryBackend::new()),
            url: "memory".into(),
        }
    }

    /// This backend with every outcome and failure counted in `metrics`.
    pub fn metered(self, metrics: &crate::metrics::Metrics) -> Self {
        Self {
            inner: Arc::new(crate::metrics::Metered::new(self.inner, metrics.clone())),
            url: self.url,
        }
    }

    /// The URL this backend was made from, normalised (`memcached://HOST:PORT` or `memory`).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn acquire(
        &self,
        key: &LockKey,
        owner: &Owner,
        ttl: Ttl,
    ) -> Result<AcquireOutcome, BackendError> {
        self.inner.acquire(key, owner, ttl).await
    }

    pub async fn renew(
        &self,
        key: &LockKey,
        owner: &Owner,
        token: u64,
        ttl: Ttl,
    ) -> Result<RenewOutcome, BackendError> {
        self.inner.renew(key, owner, token, ttl).await
    }

    pub async fn release(
        &self,
        key: &LockKey,
        owner: &Owner,
        token: u64,
    ) -> Result<ReleaseOutcome, BackendError> {
        self.inner.release(key, owner, token).await
    }

    pub async fn check(&self) -> Result<(), BackendError> {
        self.inner.check().await
    }
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backend").field("url", &self.url).finish()
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// `HOST:PORT` or `HOST` (port 11211); `None` when it is neither. IPv6 literals are refused:
/// the memcached client connects over IPv4 only.
fn memcached_addr(rest: &str) -> Option<String> {
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = match rest.split_once(':') {
        Some((host, port)) => (host, port.parse::<u16>().ok().filter(|p| *p != 0)?),
        None => (rest, 11211),
    };
    let host_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    if host.is_empty() || !host.chars().all(host_char) {
        return None;
    }
    Some(format!("{host}:{port}"))
}

/// Seed of a fresh token counter: wall-clock microseconds. Tokens only ever increase by one
/// per grant, far slower than a microsecond clock, so a counter recreated after a restart
/// (lockd's memory, or a memcached that lost its data) starts above every token issued before.
fn token_seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let cases: &[(&str, Result<&str, ()>)] = &[
            ("memory", Ok("memory")),
            (
                "memcached://127.0.0.1:11211",
                Ok("memcached://127.0.0.1:11211"),
            ),
            ("memcached://10.0.0.5", Ok("memcached://10.0.0.5:11211")),
            (
                "memcached://cache.local:11311/",
                Ok("memcached://cache.local:11311"),
            ),
            ("memcached://[::1]:11211", Err(())),
            ("memcached://", Err(())),
            ("memcached://:11211", Err(())),
            ("memcached://h:0", Err(())),
            ("memcached://h:99999", Err(())),
            ("memcached://h:x", Err(())),
            ("memcached://h:1/db", Err(())),
            ("memcached://::1", Err(())),
            ("memcached://u@h:1", Err(())),
            ("redis://h:1", Err(())),
            ("Memory", Err(())),
            ("", Err(())),
        ];
        for (url, want) in cases {
            let got = Backend::from_url(url)
                .map(|b| b.url().to_owned())
                .map_err(|_| ());
            assert_eq!(got.as_deref(), want.as_ref().map(|s| *s), "{url}");
        }
    }

    #[test]
    fn url_errors_say_what_is_expected() {
        let err = Backend::from_url("redis://h").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("unknown lock backend \"redis://h\": use `memory` or `memcached://HOST:PORT`")
        );
    }
}
