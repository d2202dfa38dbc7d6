//! Checks of the `[scale]`, `[registrar]` and `[hotdesk]` sections.

use std::time::Duration;

use super::{Config, ConfigError};

impl Config {
    pub(super) fn validate_scale(&self) -> Result<(), ConfigError> {
        let bad = |key, problem: &str| {
            Err(ConfigError::Invalid {
                key,
                problem: problem.to_string(),
            })
        };
        let s = &self.scale;
        if !(s.threshold > 0.0 && s.threshold <= 1.0) {
            return bad("scale.threshold", "must be above 0.0 and at most 1.0");
        }
        if s.cooldown < Duration::from_secs(1) || s.cooldown > Duration::from_secs(3600) {
            return bad(
                "scale.cooldown",
                "must be between 1s and 1h (the lease in lockd)",
            );
        }
        if s.timeout < Duration::from_secs(1) {
            return bad("scale.timeout", "must be at least 1s");
        }
        if s.command.as_deref().is_some_and(|c| c.trim().is_empty()) {
            return bad("scale.command", "must not be empty (leave it out for none)");
        }
        if let Some(url) = &s.webhook {
            let host = url.strip_prefix("http://").unwrap_or_default();
            if host.is_empty() || host.starts_with('/') {
                return bad(
                    "scale.webhook",
                    "must be an http:// URL (https is not supported: post to a local relay)",
                );
            }
        }
        Ok(())
    }

    pub(super) fn validate_registrar(&self) -> Result<(), ConfigError> {
        let bad = |key, problem: &str| {
            Err(ConfigError::Invalid {
                key,
                problem: problem.to_string(),
            })
        };
        let realm = &self.sip.realm;
        if realm.is_empty()
            || !realm
                .chars()
                .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
        {
            return bad(
                "sip.realm",
                "use printable ASCII without spaces, quotes or backslashes",
            );
        }
        let r = &self.registrar;
        if r.min_expires == 0 || r.min_expires > r.max_expires {
            return bad(
                "registrar.min_expires",
                "must be at least 1 and at most registrar.max_expires",
            );
        }
        if !(r.min_expires..=r.max_expires).contains(&r.default_expires) {
            return bad(
                "registrar.default_expires",
                "must lie between min_expires and max_expires",
            );
        }
        if r.nonce_ttl < Duration::from_secs(10) {
            return bad("registrar.nonce_ttl", "must be at least 10s");
        }
        if r.algorithms.is_empty() {
            return bad(
                "registrar.algorithms",
                "list at least one of \"SHA-256\", \"MD5\"",
            );
        }
        let h = &self.hotdesk;
        for (key, failures) in [
            ("registrar.max_failures", r.max_failures),
            ("hotdesk.max_failures", h.max_failures),
        ] {
            if failures == 0 {
                return bad(key, "must be at least 1");
            }
        }
        for (key, length) in [
            ("registrar.failure_window", r.failure_window),
            ("registrar.ban", r.ban),
            ("hotdesk.failure_window", h.failure_window),
            ("hotdesk.lockout", h.lockout),
        ] {
            if length.is_zero() {
                return bad(key, "must be positive");
            }
        }
        if r.max_ban < r.ban {
            return bad("registrar.max_ban", "must be at least registrar.ban");
        }
        if h.max_lockout < h.lockout {
            return bad("hotdesk.max_lockout", "must be at least hotdesk.lockout");
        }
        Ok(())
    }
}
