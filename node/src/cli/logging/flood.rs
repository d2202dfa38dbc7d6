//! A flood of remote input cannot flood the log: events at `info` and above from the parts of
//! the node that log on what a remote party sends (rsipstack's transport, transaction and
//! dialog layers; our call handling and registrar) are let through at most [`BURST`] per log
//! call site every [`WINDOW`]. The first event of a call site after a window in which some
//! were left out is preceded by one line saying how many. `debug` and `trace` (the SIP trace)
//! are never limited: whoever turns them on asked for every line.

use std::time::{Duration, Instant};

use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::sip::loglimit::LogLimiter;

/// Lines let through per call site in each window.
pub const BURST: u32 = 10;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Target of the line that says how many were left out (never limited itself).
pub const SUMMARY_TARGET: &str = "callfleet::log";

/// Targets whose events are limited (prefixes, at a `::` boundary).
const LIMITED: [&str; 3] = ["rsipstack", "callfleet::sip::call", "callfleet::registrar"];

/// Whether events of this level and target are limited.
pub fn limited(level: Level, target: &str) -> bool {
    level <= Level::INFO
        && LIMITED.iter().any(|p| {
            target
                .strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
}

/// The [`Layer`] that drops events over the budget of their call site.
pub struct FloodLimit {
    /// Keyed by call site: its target and its name (`event src/file.rs:LINE`).
    limiter: LogLimiter<(&'static str, &'static str)>,
}

impl FloodLimit {
    pub fn new() -> FloodLimit {
        FloodLimit {
            limiter: LogLimiter::with_burst(WINDOW, BURST),
        }
    }

    /// Whether one event of `meta` may be written at `now`, and how many of its call site
    /// were left out in the window just ended.
    pub fn decide(&self, meta: &'static Metadata<'static>, now: Instant) -> Option<u64> {
        if !limited(*meta.level(), meta.target()) {
            return Some(0);
        }
        self.limiter.allow((meta.target(), meta.name()), now)
    }
}

impl Default for FloodLimit {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Subscriber> Layer<S> for FloodLimit {
    fn event_enabled(&self, event: &Event<'_>, _cx: Context<'_, S>) -> bool {
        let meta = event.metadata();
        match self.decide(meta, Instant::now()) {
            None => false,
            Some(0) => true,
            Some(left_out) => {
                tracing::warn!(
                    target: SUMMARY_TARGET,
                    from = meta.target(),
                    site = meta.name(),
                    left_out,
                    "log lines left out: at most {BURST} per call site every {}s",
                    WINDOW.as_secs()
                );
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_limited() {
        for (level, target, want) in [
            (Level::WARN, "rsipstack", true),
            (Level::WARN, "rsipstack::sip::parser", true),
            (Level::INFO, "rsipstack::transport::udp", true),
            (Level::ERROR, "callfleet::registrar::invite", true),
            (Level::INFO, "callfleet::sip::call", true),
            (Level::DEBUG, "rsipstack::sip::parser", false),
            (Level::TRACE, "callfleet::sip::call", false),
            (Level::DEBUG, "callfleet::sip::inbound", false),
            (Level::INFO, "callfleet::sip::inbound", false),
            (Level::WARN, "rsipstackish", false),
            (Level::WARN, "callfleet::sip::callx", false),
            (Level::WARN, "callfleet::node", false),
            (Level::WARN, SUMMARY_TARGET, false),
        ] {
            assert_eq!(limited(level, target), want, "{level} {target}");
        }
    }
}
