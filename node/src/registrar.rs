//! The registrar: phones (devices) REGISTER here with digest credentials, and the B2BUA asks
//! [`Registrar::locate`] where to send a call for an extension.
//!
//! Layout: `digest` (HA1, `Authorization` parsing, challenges), `credentials` (a device row
//! from a password, for the CLI and the admin pages), `nonce` (stateless nonces and
//! the nonce-count record), `auth` (the digest decision), `bindings` (RFC 3261 §10.3 as a pure
//! function), `store` (the [`RegistrarStore`] trait, and [`MemoryStore`]); this file is the thin
//! shell that reads a request, asks the store, and builds the response.
//!
//! Decisions:
//! - **AOR = the device extension** (`1001`), the user part of the To URI; the host part is not
//!   checked (phones write our IP, a name, or the realm). The digest username must be the
//!   AOR: a phone registers its own extension only.
//! - **Who learns what.** A REGISTER without credentials for our realm gets `401` with a
//!   SHA-256 and an MD5 challenge (in `registrar.algorithms` order), whatever extension it
//!   names; credentials that do not verify get `403`, the same for an unknown extension and a
//!   wrong password (and the same hashing work), so answers never reveal which extensions
//!   exist. A right password on a nonce that is too old, from another node, or replayed (its
//!   `nc` not above the last one seen) gets `401 ... stale=true`.
//! - **Nonces** are stateless (see `nonce`), keyed from `[http] secret`: every node of a
//!   cluster recognises its peers' nonces, and answers them `stale=true`, because the `nc`
//!   record that stops replays is kept per node process. A phone that re-registers on another
//!   node (or after a restart) therefore gets one fresh challenge, which it answers at once.
//!   A node's config always has the secret; `Settings` without one (unit tests) keys nonces
//!   at random: another node's nonce is then a plain `401`, which phones such as baresip take
//!   as a wrong password until their next try.
//! - **Locating a phone**: a binding's target is the address its REGISTER came from (the
//!   `received` ip:port), not the Contact's host, since a phone behind NAT writes its private
//!   address in Contact while only the public source reaches it; the request line still names
//!   the Contact URI. The binding also names the node that took the REGISTER: the NAT pinhole
//!   (and a TCP connection) lead to that node only, so INVITEs should leave from there.
//! - Concurrent REGISTERs of one AOR on two nodes are not serialised: each node reads the
//!   bindings, plans, and writes rows keyed by (aor, contact); the last write of a contact wins.
//! - **Guessing is limited** (`guard`): wrong passwords are counted per source IP address and
//!   per extension; past `registrar.max_failures` within `failure_window` the address or the
//!   extension is banned (growing backoff), and a banned request gets `403` before any nonce
//!   or hash work. A ban starts with one log line and counts in the metrics. A phone that
//!   registered from the same address and port keeps working through a ban of its extension.
//!   Checks in flight count against the failures left; a request held back only by those
//!   (nothing banned) waits up to `guard::BUSY_WAIT` for one to finish, then gets `503` with
//!   `Retry-After` if still busy.
//! - **Phones' own calls** (`invite`): an INVITE from a registered phone's address is
//!   challenged with `407 Proxy Authentication Required` (the same nonces, algorithms and
//!   limits); the device whose credentials verify is the caller, whatever the From header says.

pub mod auth;
pub mod bindings;
pub mod credentials;
pub mod digest;
mod guard;
mod invite;
pub mod nonce;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use callfleet_store::StoreError;
use callfleet_web::metrics::guard::AuthKind;
use callfleet_web::Metrics;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Request, StatusCode, Transport, Uri};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::SipConnection;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use self::auth::{Authenticator, Verdict};
use self::bindings::{Change, Limits, Meta, Refusal};
use self::digest::{Algorithm, Credentials, DigestError};
use self::nonce::NonceMint;
use crate::config::Config;
use crate::throttle::{Policy, Throttle};

pub use self::invite::InviteAuth;
pub use self::store::{Device, MemoryStore, RegistrarStore, Registration};

/// How often expired bindings are deleted from the database.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(60);

/// What the registrar is set up with (from the node config).
#[derive(Debug, Clone)]
pub struct Settings {
    pub realm: String,
    pub limits: Limits,
    pub nonce_ttl: Duration,
    /// The cluster secret nonces are keyed from; `None`: a random key of this process.
    pub secret: Option<String>,
    /// Challenge algorithms, in the order offered.
    pub algorithms: Vec<Algorithm>,
    pub node: String,
    /// This node process (see [`NonceMint::instance_id`]).
    pub instance: u64,
    /// The limits on wrong passwords.
    pub throttle: Policy,
}

impl Settings {
    pub fn from_config(cfg: &Config, generation: i64) -> Settings {
        let r = &cfg.registrar;
        Settings {
            realm: cfg.sip.realm.clone(),
            limits: Limits {
                min_expires: r.min_expires,
                max_expires: r.max_expires,
                default_expires: r.default_expires,
            },
            nonce_ttl: r.nonce_ttl,
            secret: cfg.http.secret.clone(),
            algorithms: r.algorithms.clone(),
            node: cfg.node.name.clone(),
            instance: NonceMint::instance_id(&cfg.node.name, generation),
            throttle: Policy::new(r.max_failures, r.failure_window, r.ban, r.max_ban)
                .trusting(guard::TRUST),
        }
    }
}

/// Where a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub addr: SocketAddr,
    pub transport: Transport,
}

/// A response to send: status and the headers to add.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: Vec<Header>,
}

impl Reply {
    fn status(status: StatusCode) -> Reply {
        Reply {
            status,
            headers: vec![],
        }
    }
}

/// Where to send a request for an extension: one live binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The Contact URI: the Request-URI of an INVITE to the phone.
    pub contact: String,
    /// Where to send it: the REGISTER's source (NAT-safe), else the Contact's host:port.
    pub target: SocketAddr,
    pub transport: String,
    /// The node the phone registered through.
    pub node: String,
    pub expires_at_ms: i64,
}

/// The registrar of one node (a cheap clone).
#[derive(Clone)]
pub struct Registrar {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn RegistrarStore>,
    auth: Authenticator,
    limits: Limits,
    node: String,
    /// Phones registered through this node, by the address their REGISTER came from, with
    /// the binding's expiry: calls from them are internal (never redirected, no allowlist).
    /// A std mutex: map operations only, never held across an `.await`.
    phones: std::sync::Mutex<std::collections::HashMap<std::net::SocketAddr, (String, i64)>>,
    /// Wrong passwords per source address and per extension (a std mutex, never held across
    /// an `.await`).
    throttle: std::sync::Mutex<Throttle<std::net::IpAddr, SocketAddr>>,
    /// Requests waiting for a check in flight to finish.
    slots: guard::Slots,
    metrics: Metrics,
    /// Told the AOR of every binding stored (the queue looks its agents up again).
    on_register: std::sync::OnceLock<OnRegister>,
}

/// What the node does when a phone registers through it.
type OnRegister = Box<dyn Fn(&str) + Send + Sync>;

impl Registrar {
    pub fn new(store: Arc<dyn RegistrarStore>, settings: Settings, metrics: Metrics) -> Registrar {
        let secret = match &settings.secret {
            Some(s) => s.as_bytes().to_vec(),
            None => rand::random::<[u8; 32]>().to_vec(),
        };
        let mint = NonceMint::new(&secret, settings.instance, settings.nonce_ttl);
        Registrar {
            inner: Arc::new(Inner {
                store,
                auth: Authenticator::new(settings.realm, settings.algorithms, mint),
                limits: settings.limits,
                node: settings.node,
                phones: Default::default(),
                throttle: std::sync::Mutex::new(Throttle::new(settings.throttle)),
                slots: guard::Slots::default(),
                metrics,
                on_register: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Sets what is told the AOR of every binding stored through this node (once; later
    /// calls change nothing).
    pub fn on_register(&self, f: impl Fn(&str) + Send + Sync + 'static) {
        if self.inner.on_register.set(Box::new(f)).is_err() {
            debug!("registration hook already set");
        }
    }

    pub fn realm(&self) -> &str {
        self.inner.auth.realm()
    }

    /// Answers the REGISTER of server transaction `tx`.
    pub async fn answer(&self, tx: &mut Transaction) -> rsipstack::Result<()> {
        let Some(src) = source_of(tx) else {
            debug!("REGISTER with no usable source address");
            return tx.reply(StatusCode::BadRequest).await;
        };
        let reply = self.register(&tx.original, src, crate::now_ms()).await;
        tx.reply_with(reply.status, reply.headers, None).await
    }

    /// Handles one REGISTER from `src` at `now_ms` (later if it waits for a slot: see
    /// `guard`).
    pub async fn register(&self, req: &Request, src: Source, now_ms: i64) -> Reply {
        let aor = to_user(req).unwrap_or_default();
        let attempt = match self
            .attempt(AuthKind::Register, src.addr, &aor, now_ms)
            .await
        {
            Ok(a) => a,
            Err(turned) => return turned.reply(),
        };
        let now_ms = attempt.now_ms;
        let creds = match self.credentials(req, false) {
            Ok(Some(c)) => c,
            Ok(None) => return self.challenge(now_ms, false),
            Err(e) => {
                debug!(%aor, error = %e, "unusable Authorization");
                return match e {
                    DigestError::NotDigest { .. } | DigestError::UnsupportedAlgorithm { .. } => {
                        self.challenge(now_ms, false)
                    }
                    _ => Reply::status(StatusCode::BadRequest),
                };
            }
        };
        if creds.username != aor {
            info!(user = %creds.username, %aor, %src.addr, "REGISTER refused: user registers another AOR");
            attempt.failed(now_ms);
            return Reply::status(StatusCode::Forbidden);
        }
        let device = match self.inner.store.device(&aor).await {
            Ok(d) => d,
            Err(e) => return store_failed("read device", &e),
        };
        let ha1 = device
            .as_ref()
            .and_then(|d| self.ha1_of(d, creds.algorithm));
        let uri_ok = same_uri(&creds.uri, &req.uri);
        let verdict = self
            .inner
            .auth
            .verify(&creds, ha1, "REGISTER", uri_ok, now_ms);
        match verdict {
            Verdict::Accept { .. } => {
                attempt.succeeded(now_ms);
                self.bind(&aor, req, src, now_ms).await
            }
            Verdict::Challenge { stale, why } => {
                debug!(%aor, ?why, stale, "REGISTER challenged");
                self.challenge(now_ms, stale)
            }
            Verdict::Forbidden { why } => {
                info!(%aor, ?why, %src.addr, "REGISTER refused");
                attempt.failed(now_ms);
                Reply::status(StatusCode::Forbidden)
            }
            Verdict::BadRequest { why } => {
                debug!(%aor, why, "REGISTER refused");
                Reply::status(StatusCode::BadRequest)
            }
        }
    }

    /// The first digest credentials for our realm (in `Proxy-Authorization` when `proxy`,
    /// else `Authorization`); `Ok(None)` when there are none.
    fn credentials(&self, req: &Request, proxy: bool) -> Result<Option<Credentials>, DigestError> {
        let mut first_err = None;
        for h in req.headers.iter() {
            let value = match h {
                Header::Authorization(a) if !proxy => a.value(),
                Header::ProxyAuthorization(a) if proxy => a.value(),
                _ => continue,
            };
            match Credentials::parse(value) {
                Ok(c) if c.realm == self.realm() => return Ok(Some(c)),
                Ok(_) => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(None), Err)
    }

    /// The device's HA1 for `algorithm`, if it was computed for our realm.
    fn ha1_of<'d>(&self, device: &'d Device, algorithm: Algorithm) -> Option<&'d str> {
        if device.realm != self.realm() {
            warn!(ext = %device.extension, realm = %device.realm, "device was provisioned for another realm; set its password again");
            return None;
        }
        Some(match algorithm {
            Algorithm::Md5 => &device.ha1_md5,
            Algorithm::Sha256 => &device.ha1_sha256,
        })
    }

    fn challenge(&self, now_ms: i64, stale: bool) -> Reply {
        let headers = self
            .inner
            .auth
            .challenges(now_ms, rand::random(), stale)
            .into_iter()
            .map(|v| Header::WwwAuthenticate(v.into()))
            .collect();
        Reply {
            status: StatusCode::Unauthorized,
            headers,
        }
    }

    /// `407` with `Proxy-Authenticate` challenges (a phone's INVITE).
    fn proxy_challenge(&self, now_ms: i64, stale: bool) -> Reply {
        let headers = self
            .inner
            .auth
            .challenges(now_ms, rand::random(), stale)
            .into_iter()
            .map(|v| Header::ProxyAuthenticate(v.into()))
            .collect();
        Reply {
            status: StatusCode::ProxyAuthenticationRequired,
            headers,
        }
    }

    /// §10.3 steps 6–8 for an authenticated REGISTER.
    async fn bind(&self, aor: &str, req: &Request, src: Source, now_ms: i64) -> Reply {
        let parsed = bindings::contacts(req).and_then(|c| Ok((c, self.meta(req, src)?)));
        let (contacts, meta) = match parsed {
            Ok(x) => x,
            Err(refusal) => return refused(aor, refusal),
        };
        let existing = match self.inner.store.registrations(aor, now_ms).await {
            Ok(e) => e,
            Err(e) => return store_failed("read registrations", &e),
        };
        let plan = match bindings::plan(aor, &contacts, &meta, &existing, self.inner.limits, now_ms)
        {
            Ok(p) => p,
            Err(refusal) => return refused(aor, refusal),
        };
        if let Err(e) = self.apply(aor, &plan.changes).await {
            return store_failed("write registrations", &e);
        }
        log_changes(aor, &existing, &plan.changes, plan.bindings.len(), src);
        let headers = plan
            .bindings
            .iter()
            .map(|b| {
                let left = (b.expires_at_ms - now_ms + 999).max(0) / 1000;
                Header::Contact(format!("<{}>;expires={left}", b.contact).into())
            })
            .collect();
        Reply {
            status: StatusCode::OK,
            headers,
        }
    }

    fn meta(&self, req: &Request, src: Source) -> Result<Meta, Refusal> {
        let bad = |why| Refusal::BadRequest { why };
        let cseq = req
            .cseq_header()
            .ok()
            .and_then(|c| c.seq().ok())
            .ok_or(bad("unreadable CSeq"))?;
        let call_id = req
            .call_id_header()
            .map(|c| c.value().to_string())
            .map_err(|_| bad("no Call-ID"))?;
        Ok(Meta {
            expires: bindings::expires_header(req)?,
            call_id,
            cseq: i64::from(cseq),
            received: src.addr.to_string(),
            transport: src.transport.to_string().to_ascii_lowercase(),
            user_agent: req
                .user_agent_header()
                .map(|u| u.value().chars().take(200).collect())
                .unwrap_or_default(),
            node: self.inner.node.clone(),
        })
    }

    async fn apply(&self, aor: &str, changes: &[Change]) -> Result<(), StoreError> {
        let store = &self.inner.store;
        for change in changes {
            match change {
                Change::Upsert(reg) => {
                    if let Ok(addr) = reg.received.parse() {
                        self.phones()
                            .insert(addr, (aor.to_string(), reg.expires_at_ms));
                    }
                    if !store.upsert_registration(reg).await? {
                        debug!(%aor, contact = %reg.contact, "a later REGISTER of this Call-ID was stored first");
                    }
                    if let Some(hook) = self.inner.on_register.get() {
                        hook(aor);
                    }
                }
                Change::Remove { contact } => {
                    store.delete_registration(aor, contact).await?;
                }
                Change::RemoveAll => {
                    self.phones().retain(|_, (ext, _)| ext != aor);
                    store.delete_registrations(aor).await?;
                }
            }
        }
        Ok(())
    }

    fn phones(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<std::net::SocketAddr, (String, i64)>>
    {
        self.inner.phones.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The extension of the phone registered through this node from `addr`, if its binding
    /// is still current: calls from it are the cluster's own phones, not carrier calls.
    pub fn phone_at(&self, addr: std::net::SocketAddr, now_ms: i64) -> Option<String> {
        let mut phones = self.phones();
        match phones.get(&addr) {
            Some((ext, expires)) if *expires > now_ms => Some(ext.clone()),
            Some(_) => {
                phones.remove(&addr);
                None
            }
            None => None,
        }
    }

    /// An office proxy moved from `from` to `to`: the phones registered through it are known
    /// at the new address (same ports), as its bindings in SQL are
    /// (`callfleet_store::Store::proxy_checkin`). Returns how many were moved.
    pub fn readdress(&self, from: std::net::IpAddr, to: std::net::IpAddr) -> usize {
        let mut phones = self.phones();
        let moved: Vec<SocketAddr> = phones.keys().filter(|a| a.ip() == from).copied().collect();
        for old in &moved {
            if let Some(entry) = phones.remove(old) {
                phones.insert(SocketAddr::new(to, old.port()), entry);
            }
        }
        if !moved.is_empty() {
            debug!(%from, %to, phones = moved.len(), "office proxy moved: its phones are known at the new address");
        }
        moved.len()
    }

    /// Where to send an INVITE for extension `ext` now.
    pub async fn locate(&self, ext: &str) -> Result<Vec<Binding>, StoreError> {
        self.locate_at(ext, crate::now_ms()).await
    }

    /// [`Registrar::locate`] at `now_ms`: the live bindings, the one that lasts longest (in
    /// practice the latest refreshed) first.
    pub async fn locate_at(&self, ext: &str, now_ms: i64) -> Result<Vec<Binding>, StoreError> {
        let mut regs = self.inner.store.registrations(ext, now_ms).await?;
        regs.sort_by_key(|r| std::cmp::Reverse(r.expires_at_ms));
        Ok(regs.into_iter().filter_map(binding_of).collect())
    }

    /// Deletes expired bindings.
    pub async fn purge(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.inner.store.purge_expired_registrations(now_ms).await
    }
}

/// Deletes expired bindings every [`PURGE_INTERVAL`] until `stop`.
pub async fn purge_loop(registrar: Registrar, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(PURGE_INTERVAL) => {}
        }
        match registrar.purge(crate::now_ms()).await {
            Ok(0) => {}
            Ok(n) => debug!(n, "purged expired registrations"),
            Err(e) => warn!(error = %e, "cannot purge expired registrations"),
        }
    }
}

fn binding_of(reg: Registration) -> Option<Binding> {
    let target = reg.received.parse().ok().or_else(|| {
        let uri = Uri::try_from(reg.contact.as_str()).ok()?;
        SocketAddr::try_from(uri.host_with_port).ok()
    })?;
    Some(Binding {
        contact: reg.contact,
        target,
        transport: reg.transport,
        node: reg.node,
        expires_at_ms: reg.expires_at_ms,
    })
}

/// New and removed bindings at info level; refreshes (every phone, every few minutes) at debug.
fn log_changes(aor: &str, before: &[Registration], changes: &[Change], now: usize, src: Source) {
    let new = changes
        .iter()
        .filter(
            |c| matches!(c, Change::Upsert(r) if !before.iter().any(|b| b.contact == r.contact)),
        )
        .count();
    let removed = changes.iter().any(|c| !matches!(c, Change::Upsert(_)));
    if new > 0 || removed {
        info!(%aor, new, bindings = now, %src.addr, "registered");
    } else if !changes.is_empty() {
        debug!(%aor, bindings = now, %src.addr, "registration refreshed");
    }
}

fn refused(aor: &str, refusal: Refusal) -> Reply {
    debug!(%aor, ?refusal, "REGISTER refused");
    match refusal {
        Refusal::IntervalTooBrief { min_expires } => Reply {
            status: StatusCode::IntervalTooBrief,
            headers: vec![Header::MinExpires(min_expires.to_string().into())],
        },
        Refusal::BadRequest { .. } | Refusal::OutOfOrder { .. } => {
            Reply::status(StatusCode::BadRequest)
        }
    }
}

/// Seconds a phone is asked to wait before trying again while the database is unreachable.
const DATABASE_RETRY_AFTER_S: u32 = 30;

/// The answer when the database fails: with the database unreachable (a transient failure),
/// `503 Service Unavailable` with `Retry-After` (the phone keeps its binding and tries again);
/// any other failure is this node's fault, `500`.
fn store_failed(what: &str, e: &StoreError) -> Reply {
    if e.is_transient() {
        warn!(error = %e, "registrar cannot {what}: database unreachable, answering 503");
        return Reply {
            status: StatusCode::ServiceUnavailable,
            headers: vec![Header::Other(
                "Retry-After".into(),
                DATABASE_RETRY_AFTER_S.to_string(),
            )],
        };
    }
    warn!(error = %e, "registrar cannot {what}");
    Reply::status(StatusCode::ServerInternalError)
}

/// The user part of the To URI: the AOR.
fn to_user(req: &Request) -> Option<String> {
    let uri = req.to_header().ok()?.uri().ok()?;
    uri.user().map(str::to_string)
}

/// Whether the digest `uri` names the Request-URI (compared as parsed URIs, so letter case in
/// parameters and the like do not matter; the hash still covers the text as the phone sent it).
fn same_uri(digest_uri: &str, request_uri: &Uri) -> bool {
    Uri::try_from(digest_uri).is_ok_and(|u| &u == request_uri)
        || digest_uri == request_uri.to_string()
}

/// The source of a server transaction's request: the connection's peer for TCP, and for UDP
/// the top Via as the transport layer stamped it (`received`/`rport`, RFC 3581).
pub fn source_of(tx: &Transaction) -> Option<Source> {
    let conn = tx.connection.as_ref()?;
    let transport = conn.transport();
    let addr = if conn.is_reliable() {
        conn.get_remote_addr()?.get_socketaddr().ok()?
    } else {
        let via = tx.original.via_header().ok()?;
        let (_, hp) = SipConnection::parse_target_from_via(via).ok()?;
        SocketAddr::try_from(hp).ok()?
    };
    Some(Source { addr, transport })
}

#[cfg(test)]
mod tests;
