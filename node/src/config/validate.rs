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
}
