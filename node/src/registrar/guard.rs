//! The registrar's shell around [`crate::throttle`]: wrong digest passwords (REGISTER and
//! phones' INVITEs share the counts) per source IP address and per extension. A request is
//! admitted as an [`Attempt`] before any digest work, and the attempt reports its outcome (or,
//! dropped without one, gives its place back). A ban is logged once, when it starts, and every
//! failure, ban and refusal is counted in the metrics.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use callfleet_web::metrics::guard::{AuthKind, BanScope};
use tracing::{debug, warn};

use super::Registrar;
use crate::throttle::{source_key, Gate, Scope, Throttle};

/// How long a phone stays trusted for its extension after its last successful request (it
/// refreshes its registration well within this).
pub const TRUST: Duration = Duration::from_secs(24 * 3600);

/// One admitted check of a password from `src` for `ext`.
pub(super) struct Attempt<'a> {
    registrar: &'a Registrar,
    kind: AuthKind,
    src: SocketAddr,
    ext: String,
    open: bool,
}

impl Registrar {
    fn throttle(&self) -> std::sync::MutexGuard<'_, Throttle<IpAddr, SocketAddr>> {
        self.inner
            .throttle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a check of a password from `src` for extension `ext`; `None` (counted) when a
    /// ban, or the checks already in flight, refuse it.
    pub(super) fn attempt(
        &self,
        kind: AuthKind,
        src: SocketAddr,
        ext: &str,
        now_ms: i64,
    ) -> Option<Attempt<'_>> {
        let gate = self
            .throttle()
            .admit(&source_key(src.ip()), &src, ext, now_ms);
        match gate {
            Gate::Open => Some(Attempt {
                registrar: self,
                kind,
                src,
                ext: ext.to_string(),
                open: true,
            }),
            Gate::Closed { scope, until_ms } => {
                self.inner.metrics.guard().auth_refused(kind);
                debug!(%src, ext, scope = scope.as_str(), left_ms = until_ms - now_ms, "request refused unchecked: banned");
                None
            }
        }
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
    }

    /// The password was right: the extension's count starts over and the phone is trusted.
    pub(super) fn succeeded(mut self, now_ms: i64) {
        self.open = false;
        let source = source_key(self.src.ip());
        self.registrar
            .throttle()
            .success(&source, &self.src, &self.ext, now_ms);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.open {
            let source = source_key(self.src.ip());
            self.registrar.throttle().abandon(&source, &self.ext);
        }
    }
}
