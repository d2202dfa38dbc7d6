//! [`LockClient`]: how a node takes leases, over HTTP from a list of lockd instances with
//! failover, or in this process when the node has no lockd configured.

mod http;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::Uri;
use callfleet_sign::{ClusterKey, Signer};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::api::{ConflictResponse, ErrorResponse, LeaseResponse};
use crate::backend::{AcquireOutcome, Backend, BackendError, ReleaseOutcome, RenewOutcome};
use crate::request::{InvalidRequest, LockKey, Owner, Ttl};

use http::{json_string, json_u64, Endpoint, Method};
pub use http::{MalformedReply, TransportError};

/// Connect and request deadline per lockd instance: a lockd that does not answer within it
/// is skipped for the next one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(300);

/// Takes, renews and releases leases. Cheap to clone; clones share connections and the
/// memory of which lockd answered last. Every request to lockd is signed with the cluster
/// secret's key (`callfleet_sign`), each attempt anew.
///
/// A request that timed out at one lockd may still have been carried out there: an acquire
/// may have taken the lease without the caller learning it. Such a lease is nobody's to use
/// and ends at its TTL; keep TTLs short (seconds) and renew.
#[derive(Clone, Debug)]
pub struct LockClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
enum Inner {
    Remote(Remote),
    Local(Backend),
}

#[derive(Debug)]
struct Remote {
    lockds: Vec<Lockd>,
    /// Deadline of one attempt at one lockd (connect, request and reply).
    timeout: Duration,
    /// Index of the lockd that answered last: tried first next time.
    preferred: AtomicUsize,
    signer: Signer,
}

/// One lockd instance. Its URL is parsed once: a request only appends the lock's path.
#[derive(Debug)]
struct Lockd {
    /// The base URL as given, without a trailing slash.
    base: String,
    /// The base URL's path without a trailing slash (often empty).
    base_path: String,
    endpoint: Endpoint,
}

impl Lockd {
    /// `http://HOST[:PORT][/PATH]`, without user, query or fragment.
    fn parse(url: &str) -> Result<Self, LockError> {
        let bad = || LockError::BadUrl { url: url.into() };
        let parsed: Uri = url.parse().map_err(|_| bad())?;
        let authority = parsed.authority().ok_or_else(bad)?;
        if parsed.scheme_str() != Some("http")
            || parsed.query().is_some()
            || authority.as_str().contains('@')
            || url.contains('#')
        {
            return Err(bad());
        }
        let host = authority.host();
        // What follows the host: nothing, or `:PORT` (which `Uri` does not check is a u16).
        let port = match authority.as_str().strip_prefix(host) {
            Some("") => 80,
            Some(port) => port
                .strip_prefix(':')
                .and_then(|p| p.parse::<u16>().ok())
                .ok_or_else(bad)?,
            None => return Err(bad()),
        };
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            base: url.trim_end_matches('/').to_owned(),
            base_path: parsed.path().trim_end_matches('/').to_owned(),
            endpoint: Endpoint::new(host.to_owned(), port, authority.as_str().to_owned()),
        })
    }

    /// The request path of a lock: `<base path>/v1/locks/<key>` (a key needs no escaping in a
    /// path).
    fn lock_path(&self, key: &LockKey) -> String {
        format!("{}/v1/locks/{key}", self.base_path)
    }

    /// The URL of a lock, for messages.
    fn lock_url(&self, key: &LockKey) -> String {
        format!("{}/v1/locks/{key}", self.base)
    }
}

/// A lease this client holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    key: LockKey,
    owner: Owner,
    token: u64,
    expires_at: Instant,
}

impl Lease {
    pub fn key(&self) -> &str {
        self.key.as_str()
    }

    pub fn owner(&self) -> &str {
        self.owner.as_str()
    }

    /// Fencing token: pass it along with every action taken under the lease, so the target
    /// can refuse an older holder's late actions.
    pub fn token(&self) -> u64 {
        self.token
    }

    /// When the lease ends at the latest, by this process's clock (measured from when the
    /// request was sent, so never later than lockd's own idea).
    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }
}

/// What [`LockClient::try_acquire`] got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acquire {
    Granted(Lease),
    /// Someone else holds the key.
    Held {
        holder: Option<String>,
    },
}

/// One lockd instance that could not serve a request.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    #[error("cannot reach lockd at {url}")]
    Transport {
        url: String,
        #[source]
        source: TransportError,
    },
    #[error("lockd at {url} answered {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(transparent)]
    Invalid(#[from] InvalidRequest),
    #[error("no lockd URL given")]
    NoUrls,
    #[error("lockd URL {url:?} is not an http:// URL")]
    BadUrl { url: String },
    /// Every lockd failed (connect error, timeout or 5xx); the last failure is the source.
    #[error("no lockd could serve the request ({attempts} tried)")]
    Unavailable {
        attempts: usize,
        #[source]
        last: Box<AttemptError>,
    },
    /// lockd refused the request itself (4xx other than 409): retrying elsewhere won't help.
    #[error("lockd at {url} refused the request with {status}: {message}")]
    Rejected {
        url: String,
        status: u16,
        message: String,
    },
    #[error("lockd at {url} answered {status} with a body that is not the expected JSON")]
    BadReply {
        url: String,
        status: u16,
        #[source]
        source: serde_json::Error,
    },
    #[error("the in-process lock backend failed")]
    Backend(#[from] BackendError),
}

/// A reply from the lockd that served a request.
struct Reply {
    /// The URL the request went to.
    url: String,
    status: u16,
    body: Vec<u8>,
    /// When the request that got this reply was sent.
    sent_at: Instant,
}

impl Reply {
    fn json<T: DeserializeOwned>(&self) -> Result<T, LockError> {
        serde_json::from_slice(&self.body).map_err(|source| LockError::BadReply {
            url: self.url.clone(),
            status: self.status,
            source,
        })
    }

    fn rejected(&self) -> LockError {
        LockError::Rejected {
            url: self.url.clone(),
            status: self.status,
            message: error_message(&self.body),
        }
    }
}

const OK: u16 = 200;
const NO_CONTENT: u16 = 204;
const CONFLICT: u16 = 409;

impl LockClient {
    /// A client of the lockd instances at `urls` (`http://HOST:PORT`), tried in order with
    /// [`DEFAULT_TIMEOUT`] each, signing with `key` (the cluster secret's).
    pub fn new<I, S>(urls: I, key: ClusterKey) -> Result<Self, LockError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::with_timeout(urls, key, DEFAULT_TIMEOUT)
    }

    /// Like [`LockClient::new`], with another connect and request deadline per instance.
    pub fn with_timeout<I, S>(
        urls: I,
        key: ClusterKey,
        timeout: Duration,
    ) -> Result<Self, LockError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let lockds = urls
            .into_iter()
            .map(|u| Lockd::parse(u.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        if lockds.is_empty() {
            return Err(LockError::NoUrls);
        }
        Ok(Self::from_inner(Inner::Remote(Remote {
            lockds,
            timeout,
            preferred: AtomicUsize::new(0),
            signer: Signer::new(key),
        })))
    }

    /// For a node with no lockd configured: leases in this process's memory. Right for a
    /// single node; nodes of a cluster must share lockd instead.
    pub fn in_process() -> Self {
        Self::with_backend(Backend::memory())
    }

    /// Leases straight from `backend`, without HTTP.
    pub fn with_backend(backend: Backend) -> Self {
        Self::from_inner(Inner::Local(backend))
    }

    fn from_inner(inner: Inner) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Takes the lease on `key` for `ttl`: `None` when someone else holds it
    /// ([`LockClient::try_acquire`] says who).
    pub async fn acquire(
        &self,
        key: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, LockError> {
        Ok(match self.try_acquire(key, owner, ttl).await? {
            Acquire::Granted(lease) => Some(lease),
            Acquire::Held { .. } => None,
        })
    }

    /// Takes the lease on `key` for `ttl`, or says who holds it.
    pub async fn try_acquire(
        &self,
        key: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Acquire, LockError> {
        let (key, owner) = (LockKey::parse(key)?, Owner::parse(owner)?);
        let ttl = Ttl::from_duration(ttl)?;
        let remote = match &*self.inner {
            Inner::Local(backend) => {
                let now = Instant::now();
                return Ok(match backend.acquire(&key, &owner, ttl).await? {
                    AcquireOutcome::Granted(grant) => Acquire::Granted(Lease {
                        key,
                        owner,
                        token: grant.token,
                        expires_at: now + grant.expires_in,
                    }),
                    AcquireOutcome::Held { holder } => Acquire::Held {
                        holder: Some(holder),
                    },
                });
            }
            Inner::Remote(remote) => remote,
        };
        // The body of an `AcquireRequest`, written directly.
        let mut body = Vec::with_capacity(48 + owner.as_str().len());
        body.extend_from_slice(b"{\"owner\":");
        json_string(&mut body, owner.as_str());
        body.extend_from_slice(b",\"ttl_ms\":");
        json_u64(&mut body, ttl.as_ms());
        body.push(b'}');
        let reply = remote.send(Method::Post, &key, &body).await?;
        match reply.status {
            OK => {
                let lease: LeaseResponse = reply.json()?;
                Ok(Acquire::Granted(Lease {
                    key,
                    owner,
                    token: lease.token,
                    expires_at: reply.sent_at + Duration::from_millis(lease.expires_in_ms),
                }))
            }
            CONFLICT => Ok(Acquire::Held {
                holder: reply.json::<ConflictResponse>()?.holder,
            }),
            _ => Err(reply.rejected()),
        }
    }

    /// Extends `lease` to `ttl` from now: `false` if it was lost (expired or taken).
    pub async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<bool, LockError> {
        let ttl = Ttl::from_duration(ttl)?;
        let remote = match &*self.inner {
            Inner::Local(backend) => {
                let renewed = backend
                    .renew(&lease.key, &lease.owner, lease.token, ttl)
                    .await?;
                return Ok(matches!(renewed, RenewOutcome::Renewed(_)));
            }
            Inner::Remote(remote) => remote,
        };
        // The body of a `RenewRequest`.
        let mut body = owner_and_token(lease);
        body.extend_from_slice(b",\"ttl_ms\":");
        json_u64(&mut body, ttl.as_ms());
        body.push(b'}');
        let reply = remote.send(Method::Put, &lease.key, &body).await?;
        match reply.status {
            OK => reply.json::<LeaseResponse>().map(|_| true),
            CONFLICT => reply.json::<ConflictResponse>().map(|_| false),
            _ => Err(reply.rejected()),
        }
    }

    /// Gives `lease` back: `false` if it had already been lost.
    pub async fn release(&self, lease: &Lease) -> Result<bool, LockError> {
        let remote = match &*self.inner {
            Inner::Local(backend) => {
                let released = backend
                    .release(&lease.key, &lease.owner, lease.token)
                    .await?;
                return Ok(matches!(released, ReleaseOutcome::Released));
            }
            Inner::Remote(remote) => remote,
        };
        // The body of a `ReleaseRequest`.
        let mut body = owner_and_token(lease);
        body.push(b'}');
        let reply = remote.send(Method::Delete, &lease.key, &body).await?;
        match reply.status {
            NO_CONTENT => Ok(true),
            CONFLICT => reply.json::<ConflictResponse>().map(|_| false),
            _ => Err(reply.rejected()),
        }
    }
}

/// `{"owner":..,"token":..` of a renew or release body (without the closing brace).
fn owner_and_token(lease: &Lease) -> Vec<u8> {
    let mut body = Vec::with_capacity(64 + lease.owner.as_str().len());
    body.extend_from_slice(b"{\"owner\":");
    json_string(&mut body, lease.owner.as_str());
    body.extend_from_slice(b",\"token\":");
    json_u64(&mut body, lease.token);
    body
}

impl Remote {
    /// Sends the request to the lockd that answered last, then to the others in turn, until
    /// one answers with something other than 5xx, 401 or 429. A 409 or another 4xx is an
    /// answer: it is returned, not retried elsewhere. A lockd that refuses our signature (401:
    /// another secret, its clock far off) or turns us away (429) may be one misconfigured
    /// instance, so the next is tried.
    async fn send(&self, method: Method, key: &LockKey, body: &[u8]) -> Result<Reply, LockError> {
        let n = self.lockds.len();
        if n == 0 {
            return Err(LockError::NoUrls);
        }
        let first = self.preferred.load(Ordering::Relaxed) % n;
        let mut last = None;
        for i in (0..n).map(|i| (first + i) % n) {
            let lockd = &self.lockds[i];
            let path = lockd.lock_path(key);
            let signature = self.signer.sign_now(method.as_str(), &path, body);
            let sent_at = Instant::now();
            let attempt = lockd
                .endpoint
                .request(method, &path, &signature, body, self.timeout)
                .await;
            let e = match attempt {
                Ok(reply) if !fails_over(reply.status) => {
                    if i != first {
                        self.preferred.store(i, Ordering::Relaxed);
                        tracing::info!(lockd = %lockd.base, "lock client switched lockd");
                    }
                    return Ok(Reply {
                        url: lockd.lock_url(key),
                        status: reply.status,
                        body: reply.body,
                        sent_at,
                    });
                }
                Ok(reply) => AttemptError::Status {
                    url: lockd.lock_url(key),
                    status: reply.status,
                    message: error_message(&reply.body),
                },
                Err(source) => AttemptError::Transport {
                    url: lockd.lock_url(key),
                    source,
                },
            };
            tracing::debug!(error = %e, "lockd attempt failed; trying the next");
            last = Some(e);
        }
        match last {
            Some(last) => Err(LockError::Unavailable {
                attempts: n,
                last: Box::new(last),
            }),
            None => Err(LockError::NoUrls),
        }
    }
}

/// Whether a reply with `status` sends the request on to the next lockd.
fn fails_over(status: u16) -> bool {
    (500..600).contains(&status) || status == 401 || status == 429
}

/// `message` of an [`ErrorResponse`] body, else the body as text.
fn error_message(body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorResponse>(body) {
        Ok(e) => e.message,
        Err(_) => String::from_utf8_lossy(body).chars().take(200).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        // (given, base, URL of the lock agent:1)
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            (
                "http://10.0.0.1:7070",
                Some((
                    "http://10.0.0.1:7070",
                    "http://10.0.0.1:7070/v1/locks/agent:1",
                )),
            ),
            (
                "http://10.0.0.1:7070/",
                Some((
                    "http://10.0.0.1:7070",
                    "http://10.0.0.1:7070/v1/locks/agent:1",
                )),
            ),
            (
                "http://lockd.local:7070/base/",
                Some((
                    "http://lockd.local:7070/base",
                    "http://lockd.local:7070/base/v1/locks/agent:1",
                )),
            ),
            (
                "http://lockd.local:7070/a/b",
                Some((
                    "http://lockd.local:7070/a/b",
                    "http://lockd.local:7070/a/b/v1/locks/agent:1",
                )),
            ),
            ("https://10.0.0.1:7070", None),
            ("10.0.0.1:7070", None),
            ("http://10.0.0.1:7070/?x=1", None),
            ("http://10.0.0.1:99999", None),
            ("http://user:pw@10.0.0.1:7070", None),
            ("http://10.0.0.1:7070/#top", None),
            ("http://:7070", None),
            ("http://10.0.0.1:", None),
            (
                "http://[::1]:7070",
                Some(("http://[::1]:7070", "http://[::1]:7070/v1/locks/agent:1")),
            ),
            (
                "http://lockd",
                Some(("http://lockd", "http://lockd/v1/locks/agent:1")),
            ),
            ("", None),
        ];
        let key = LockKey::parse("agent:1").unwrap();
        for (url, want) in cases {
            let got = Lockd::parse(url).ok();
            let got = got.as_ref().map(|l| (l.base.as_str(), l.lock_url(&key)));
            let want = want.map(|(base, lock)| (base, lock.to_owned()));
            assert_eq!(got, want, "{url}");
        }
        // Where each connects.
        let cases = [
            ("http://10.0.0.1:7070/x", ("10.0.0.1", 7070)),
            ("http://[::1]:7070", ("::1", 7070)),
            ("http://lockd.local", ("lockd.local", 80)),
        ];
        for (url, addr) in cases {
            assert_eq!(Lockd::parse(url).unwrap().endpoint.addr(), addr, "{url}");
        }
        // Every character a key may hold goes into the path as it is.
        let key = LockKey::parse("queue.sales_vip-2@main-a+x=y:Z9").unwrap();
        let lockd = Lockd::parse("http://10.0.0.1:7070").unwrap();
        assert_eq!(
            lockd.lock_url(&key),
            "http://10.0.0.1:7070/v1/locks/queue.sales_vip-2@main-a+x=y:Z9"
        );
        assert!(matches!(
            LockClient::new(Vec::<String>::new(), ClusterKey::new("k")),
            Err(LockError::NoUrls)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn in_process_leases() {
        let client = LockClient::in_process();
        let ttl = Duration::from_millis(1500);
        let lease = client.acquire("agent:1", "a", ttl).await.unwrap().unwrap();
        assert_eq!((lease.key(), lease.owner()), ("agent:1", "a"));
        assert_eq!(lease.expires_at(), Instant::now() + ttl);
        let held = client.try_acquire("agent:1", "b", ttl).await.unwrap();
        assert_eq!(
            held,
            Acquire::Held {
                holder: Some("a".into())
            }
        );
        assert_eq!(client.acquire("agent:1", "b", ttl).await.unwrap(), None);
        assert!(client.renew(&lease, ttl).await.unwrap());
        tokio::time::advance(ttl).await;
        assert!(!client.renew(&lease, ttl).await.unwrap(), "expired");
        assert!(!client.release(&lease).await.unwrap());
        let next = client.acquire("agent:1", "b", ttl).await.unwrap().unwrap();
        assert!(next.token() > lease.token());
        assert!(client.release(&next).await.unwrap());
        let bad = client.acquire("agent 1", "b", ttl).await;
        assert!(matches!(
            bad,
            Err(LockError::Invalid(InvalidRequest::KeyChar { .. }))
        ));
        let bad = client.acquire("agent:1", "b", Duration::ZERO).await;
        assert!(matches!(
            bad,
            Err(LockError::Invalid(InvalidRequest::Ttl { .. }))
        ));
    }
}
