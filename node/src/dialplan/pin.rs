//! An agent's PIN on a hot-desk login, under the limits of [`crate::throttle`]: wrong PINs are
//! counted per phone (the authenticated device) and per agent; past `hotdesk.max_failures`
//! within `hotdesk.failure_window` the phone or the agent is locked out (growing backoff),
//! logged once when it starts and counted in the metrics. A locked-out login is refused
//! without checking the PIN. The check itself (argon2id, `callfleet_store::pin`) runs off the
//! async workers; an agent still stored with the old SHA-256 form gets its argon2id hash on
//! this successful login.

use std::sync::OnceLock;

use callfleet_store::pin::{self, PinCheck};
use callfleet_web::metrics::guard::{AuthKind, BanScope, BusyOutcome};
use tracing::{debug, info, warn};

use crate::node::Pins;
use crate::now_ms;
use crate::throttle::{Gate, Scope, Throttle};

fn lock(pins: &Pins) -> std::sync::MutexGuard<'_, Throttle<String>> {
    pins.throttle.lock().unwrap_or_else(|p| p.into_inner())
}

/// An admitted PIN check; dropped without an outcome (an error), it gives its place back.
struct Attempt<'a> {
    pins: &'a Pins,
    device: String,
    agent: String,
    open: bool,
}

impl Attempt<'_> {
    /// The PIN was wrong (or the agent unknown): counts it; logs and counts the lockouts.
    fn failed(mut self, now: i64) {
        self.open = false;
        failed(self.pins, &self.device, &self.agent, now);
    }

    /// The PIN was right: the agent's count starts over.
    fn succeeded(mut self, now: i64) {
        self.open = false;
        lock(self.pins).success(&self.device, &self.device, &self.agent, now);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.open {
            lock(self.pins).abandon(&self.device, &self.agent);
        }
    }
}

/// Whether `pin` is agent `agent`'s, asked from phone `device`: `pins` holds the throttle,
/// the agents' rows and the metrics, all the check uses.
pub(super) async fn check(pins: &Pins, device: &str, agent: &str, pin: &str) -> bool {
    let now = now_ms();
    let phone = device.to_string();
    match lock(pins).admit(&phone, &phone, agent, now) {
        Gate::Open => {}
        Gate::Banned { scope, until_ms } => {
            pins.metrics.guard().auth_refused(AuthKind::Pin);
            debug!(
                agent,
                device,
                scope = scope.as_str(),
                left_ms = until_ms - now,
                "hot-desk login refused: locked out"
            );
            return false;
        }
        Gate::Busy { scope } => {
            // One person at one phone: PIN checks in flight are a script, not a crowd; no wait.
            pins.metrics
                .guard()
                .auth_busy(AuthKind::Pin, BusyOutcome::Refused);
            debug!(
                agent,
                device,
                scope = scope.as_str(),
                "hot-desk login refused: as many PIN checks in flight as wrong PINs left"
            );
            return false;
        }
    }
    let attempt = Attempt {
        pins,
        device: phone,
        agent: agent.to_string(),
        open: true,
    };
    let stored = match pins.store.agent(agent).await {
        Ok(a) => a.map(|a| a.pin_hash),
        Err(e) => {
            warn!(agent, error = %e, "cannot read the agent for a hot-desk login");
            return false;
        }
    };
    let Some(checked) = verify(agent, pin, stored.clone()).await else {
        return false;
    };
    match (checked, stored) {
        (PinCheck::Wrong, _) | (_, None) => {
            attempt.failed(now);
            false
        }
        (PinCheck::Right, Some(_)) => {
            attempt.succeeded(now);
            true
        }
        (PinCheck::RightUpgrade { new_hash }, Some(old)) => {
            attempt.succeeded(now);
            match pins
                .store
                .upgrade_agent_pin_hash(agent, &old, &new_hash)
                .await
            {
                Ok(true) => info!(agent, "agent PIN now stored as argon2id"),
                Ok(false) => debug!(agent, "agent PIN changed meanwhile; not upgraded"),
                Err(e) => warn!(agent, error = %e, "cannot upgrade the stored agent PIN"),
            }
            true
        }
    }
}

/// Checks `pin` against `stored` (an unknown agent: against a stand-in hash, so the time taken
/// does not tell which agents exist) on a blocking thread; `None` if that thread failed.
async fn verify(agent: &str, pin: &str, stored: Option<String>) -> Option<PinCheck> {
    let (agent, pin) = (agent.to_string(), pin.to_string());
    let joined = tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| stand_in().to_string());
        match pin::verify(&agent, &pin, &hash) {
            Ok(check) if known => check,
            Ok(_) => PinCheck::Wrong,
            Err(e) => {
                warn!(agent = %agent, error = %e, "agent PIN hash is unreadable; set the PIN again");
                PinCheck::Wrong
            }
        }
    })
    .await;
    match joined {
        Ok(check) => Some(check),
        Err(e) => {
            warn!(error = %e, "PIN check failed");
            None
        }
    }
}

/// An argon2id hash nobody's PIN matches, made once.
fn stand_in() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let secret: String = (0..4).map(|_| rand::random::<u64>().to_string()).collect();
        pin::hash("", &secret).unwrap_or_default()
    })
}

/// Counts a wrong PIN; logs and counts the lockouts it starts.
fn failed(pins: &Pins, device: &str, agent: &str, now: i64) {
    let bans = lock(pins).failure(&device.to_string(), agent, now);
    let metrics = pins.metrics.guard();
    metrics.auth_failure(AuthKind::Pin);
    info!(agent, device, "hot-desk login: wrong PIN");
    for ban in bans {
        let minutes = (ban.until_ms - now) / 60_000;
        match ban.scope {
            Scope::Source => {
                metrics.auth_ban(AuthKind::Pin, BanScope::Source);
                warn!(
                    device,
                    minutes,
                    strike = ban.strike,
                    "too many wrong PINs from this phone: its hot-desk logins are locked out"
                );
            }
            Scope::Subject => {
                metrics.auth_ban(AuthKind::Pin, BanScope::Subject);
                warn!(
                    agent,
                    minutes,
                    strike = ban.strike,
                    "too many wrong PINs for this agent: its hot-desk logins are locked out"
                );
            }
        }
    }
}
