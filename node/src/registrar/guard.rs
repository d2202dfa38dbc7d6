//! The registrar's shell around [`crate::throttle`]: wrong digest passwords (REGISTER and
//! phones' INVITEs share the counts) per source IP address and per extension; a ban is logged
//! once, when it starts, and every failure, ban and refusal is counted in the metrics.

use std::net::SocketAddr;
use std::time::Duration;

use callfleet_web::metrics::guard::{AuthKind, BanScope};
use tracing::{debug, warn};

use super::Registrar;
use crate::throttle::{source_key, Gate, Scope};

/// How long a phone stays trusted for its extension after its last successful request (it
/// refreshes its registration well within this).
pub const TRUST: Duration = Duration::from_secs(24 * 3600);

impl Registrar {
    fn throttle(
        &self,
    ) -> std::sync::MutexGuard<'_, crate::throttle::Throttle<std::net::IpAddr, SocketAddr>> {
        self.inner
            .throttle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a request from `src` about extension `ext` may be checked; counts a refusal.
    pub(super) fn gate_open(
        &self,
        kind: AuthKind,
        src: SocketAddr,
        ext: &str,
        now_ms: i64,
    ) -> bool {
        let gate = self
            .throttle()
            .check(&source_key(src.ip()), &src, ext, now_ms);
        match gate {
            Gate::Open => true,
            Gate::Closed { scope, until_ms } => {
                self.inner.metrics.guard().auth_refused(kind);
                debug!(%src, ext, scope = scope.as_str(), left_ms = until_ms - now_ms, "request refused: banned");
                false
            }
        }
    }

    /// Counts a wrong password from `src` for `ext`; logs and counts the bans it starts.
    pub(super) fn failed(&self, kind: AuthKind, src: SocketAddr, ext: &str, now_ms: i64) {
        let source = source_key(src.ip());
        let bans = self.throttle().failure(&source, ext, now_ms);
        let metrics = self.inner.metrics.guard();
        metrics.auth_failure(kind);
        for ban in bans {
            let seconds = (ban.until_ms - now_ms) / 1000;
            match ban.scope {
                Scope::Source => {
                    metrics.auth_ban(kind, BanScope::Source);
                    warn!(source = %source, seconds, strike = ban.strike, "too many wrong phone passwords from this address: banned");
                }
                Scope::Subject => {
                    metrics.auth_ban(kind, BanScope::Subject);
                    warn!(ext, seconds, strike = ban.strike, "too many wrong passwords for this extension: banned (phones that registered it before keep working)");
                }
            }
        }
    }

    /// A good password from `src` for `ext`.
    pub(super) fn succeeded(&self, src: SocketAddr, ext: &str, now_ms: i64) {
        self.throttle().success(&src, ext, now_ms);
    }
}
