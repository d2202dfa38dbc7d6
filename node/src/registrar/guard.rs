//! The registrar's shell around [`crate::throttle`]: wrong digest passwords (REGISTER and
//! phones' INVITEs share the counts) per source IP address and per extension. A request is
//! admitted as an [`Attempt`] before any digest work, and the attempt reports its outcome (or,
//! dropped without one, gives its place back). A ban is logged once, when it starts, and every
//! failure, ban and refusal is counted in the metrics.
//!
//! A request that finds its source or extension busy (as many checks in flight as failures
//! left, nothing banned: typically an office's phones behind one NAT address registering at
//! once) waits for a slot instead of being refused: every finished check wakes the waiters,
//! who ask the throttle again, for at most [`BUSY_WAIT`] and [`MAX_WAKEUPS`] wake-ups, and at
//! most [`MAX_WAITING`] requests of the node wait at once. One still busy after that gets
//! `503 Service Unavailable` with `Retry-After` ([`BUSY_RETRY_AFTER_S`]), not `403`: nothing
//! was wrong with it, and a phone that gets `403` may stop registering until someone looks.
//! The security property is the throttle's and is unchanged: never more checks in flight
//! than failures left.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use callfleet_web::metrics::guard::{AuthKind, BanScope, BusyOutcome};
use rsipstack::sip::{Header, StatusCode};
use tracing::{debug, warn};

use super::{Registrar, Reply};
use crate::throttle::{source_key, Gate, Scope, Throttle};

/// How long a phone stays trusted for its extension after its last successful request (it
/// refreshes its registration well within this).
pub const TRUST: Duration = Duration::from_secs(24 * 3600);

/// The longest a request that found its failure budget busy waits for a slot.
pub const BUSY_WAIT: Duration = Duration::from_secs(2);

/// The most wake-ups one waiting request takes (each finished check of the node wakes every
/// waiter) before it is refused, whatever time is left.
pub const MAX_WAKEUPS: u32 = 4096;

/// The most requests of a node waiting for a slot at once; one more is refused at once.
pub const MAX_WAITING: usize = 256;

/// `Retry-After` (seconds) of the `503` for a request still busy after [`BUSY_WAIT`].
pub const BUSY_RETRY_AFTER_S: u32 = 5;

/// One admitted check of a password from `src` for `ext`.
pub(super) struct Attempt<'a> {
    registrar: &'a Registrar,
    kind: AuthKind,
    src: SocketAddr,
    ext: String,
    open: bool,
    /// The time it was admitted (the request's time plus any wait for a slot).
    pub(super) now_ms: i64,
}

/// Why a request is turned away unchecked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Turned {
    /// Its source or extension is banned: `403`, as a wrong password.
    Banned,
    /// Still as many checks in flight as failures left after waiting: `503`, try again soon.
    Busy,
}

impl Turned {
    pub(super) fn reply(self) -> Reply {
        match self {
            Turned::Banned => Reply::status(StatusCode::Forbidden),
            Turned::Busy => Reply {
                status: StatusCode::ServiceUnavailable,
                headers: vec![Header::Other(
                    "Retry-After".into(),
                    BUSY_RETRY_AFTER_S.to_string(),
                )],
            },
        }
    }
}

/// Waking up requests that wait for a slot (one per registrar).
#[derive(Debug, Default)]
pub(super) struct Slots {
    freed: tokio::sync::Notify,
    waiting: AtomicUsize,
}

/// A place among the [`MAX_WAITING`] waiters, given back when dropped (also when the request's
/// future is dropped while it waits).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn take(count: &'a AtomicUsize) -> Option<Waiting<'a>> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_WAITING).then_some(n + 1)
            })
            .ok()
            .map(|_| Waiting(count))
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Registrar {
    fn throttle(&self) -> std::sync::MutexGuard<'_, Throttle<IpAddr, SocketAddr>> {
        self.inner
            .throttle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a check of a password from `src` for extension `ext` at `now_ms`, waiting for
    /// a slot while only checks in flight hold it back (see the module); turned away (and
    /// counted) when a ban refuses it or it is still busy after the wait.
    pub(super) async fn attempt(
        &self,
        kind: AuthKind,
        src: SocketAddr,
        ext: &str,
        now_ms: i64,
    ) -> Result<Attempt<'_>, Turned> {
        let source = source_key(src.ip());
        let slots = &self.inner.slots;
        let metrics = self.inner.metrics.guard();
        let started = tokio::time::Instant::now();
        let deadline = started + BUSY_WAIT;
        let mut waiting: Option<Waiting<'_>> = None;
        for _ in 0..=MAX_WAKEUPS {
            // Listening before asking: a check that finishes between the two still wakes us.
            let freed = slots.freed.notified();
            let elapsed = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
            let now = now_ms.saturating_add(elapsed);
            let gate = self.throttle().admit(&source, &src, ext, now);
            match gate {
                Gate::Open => {
                    if waiting.is_some() {
                        metrics.auth_busy(kind, BusyOutcome::Admitted);
                        debug!(%src, ext, waited_ms = elapsed, "request admitted after waiting for a check in flight");
                    }
                    return Ok(Attempt {
                        registrar: self,
                        kind,
                        src,
                        ext: ext.to_string(),
                        open: true,
                        now_ms: now,
                    });
                }
                Gate::Banned { scope, until_ms } => {
                    // Also after a wait (the checks it waited for started a ban): a ban
                    // refusal, counted as such only.
                    metrics.auth_refused(kind);
                    debug!(%src, ext, scope = scope.as_str(), left_ms = until_ms - now, "request refused unchecked: banned");
                    return Err(Turned::Banned);
                }
                Gate::Busy { scope } => {
                    if waiting.is_none() {
                        waiting = Waiting::take(&slots.waiting);
                        if waiting.is_none() {
                            debug!(%src, ext, scope = scope.as_str(), "request refused unchecked: busy, and too many requests wait already");
                            break;
                        }
                    }
                    if tokio::time::timeout_at(deadline, freed).await.is_err() {
                        debug!(%src, ext, scope = scope.as_str(), "request refused unchecked: still as many checks in flight as failures left");
                        break;
                    }
                }
            }
        }
        metrics.auth_busy(kind, BusyOutcome::Refused);
        Err(Turned::Busy)
    }

    /// A check finished (whatever its outcome): the requests waiting for a slot ask again.
    fn check_finished(&self) {
        self.inner.slots.freed.notify_waiters();
    }
}

impl Attempt<'_> {
    /// The password was wrong: counts it, and logs and counts the bans it starts.
    pub(super) fn failed(mut self, now_ms: i64) {
        self.open = false;
        let source = source_key(self.src.ip());
        let r = self.registrar;
        let bans = r.throttle().failure(&source, &self.ext, now_ms);
        let metrics = r.inner.metrics.guard();
        metrics.auth_failure(self.kind);
        for ban in bans {
            let seconds = (ban.until_ms - now_ms) / 1000;
            let ext = &self.ext;
            match ban.scope {
                Scope::Source => {
                    metrics.auth_ban(self.kind, BanScope::Source);
                    warn!(source = %source, seconds, strike = ban.strike, "too many wrong phone passwords from this address: banned");
                }
                Scope::Subject => {
                    metrics.auth_ban(self.kind, BanScope::Subject);
                    warn!(ext, seconds, strike = ban.strike, "too many wrong passwords for this extension: banned (phones that registered it before keep working)");
                }
            }
        }
        r.check_finished();
    }

    /// The password was right: the extension's count starts over and the phone is trusted.
    pub(super) fn succeeded(mut self, now_ms: i64) {
        self.open = false;
        let source = source_key(self.src.ip());
        self.registrar
            .throttle()
            .success(&source, &self.src, &self.ext, now_ms);
        self.registrar.check_finished();
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.open {
            let source = source_key(self.src.ip());
            self.registrar.throttle().abandon(&source, &self.ext);
            self.registrar.check_finished();
        }
    }
}
