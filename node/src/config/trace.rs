//! `[trace]`: the SIP trace kept with every call (see `crate::trace`), and its optional live
//! export as HEPv3 to a collector (Homer, sngrep).

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TraceSection {
    /// Keep every call's SIP messages (both directions, every leg) with the call.
    #[serde(default = "super::default_true")]
    pub enabled: bool,
    /// Most megabytes (10^6 bytes) of SIP kept per call; later messages are left out and
    /// counted.
    #[serde(default = "default_max_call_mb")]
    pub max_call_mb: u32,
    /// How often a live call's new messages are written to the database.
    #[serde(default = "default_flush_every", with = "humantime_serde")]
    pub flush_every: Duration,
    /// Also send every message of a call as HEPv3 to a collector: `"udp:IP:PORT"`.
    #[serde(default)]
    pub hep: Option<String>,
    /// The capture agent id put in every HEP packet.
    #[serde(default = "default_hep_id")]
    pub hep_id: u32,
    /// Days a trace is kept; `0` keeps them forever.
    #[serde(default = "default_keep")]
    pub keep: u32,
}

impl Default for TraceSection {
    fn default() -> Self {
        Self {
            enabled: true,
            max_call_mb: default_max_call_mb(),
            flush_every: default_flush_every(),
            hep: None,
            hep_id: default_hep_id(),
            keep: default_keep(),
        }
    }
}

impl TraceSection {
    /// The per-call budget in bytes.
    pub fn budget(&self) -> usize {
        usize::try_from(self.max_call_mb)
            .unwrap_or(usize::MAX)
            .saturating_mul(1_000_000)
    }

    /// How long a trace is kept, when not forever.
    pub fn keep_ms(&self) -> Option<i64> {
        (self.keep > 0).then(|| i64::from(self.keep) * 86_400_000)
    }

    /// The HEP collector's address, when `hep` is set (checked when the config is read).
    pub fn hep_target(&self) -> Option<SocketAddr> {
        self.hep.as_deref().and_then(|h| parse_hep(h).ok())
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, problem: String| Err(ConfigError::Invalid { key, problem });
        if self.max_call_mb == 0 {
            return bad("trace.max_call_mb", "must be at least 1".into());
        }
        if self.flush_every < Duration::from_millis(100) {
            return bad("trace.flush_every", "must be at least 100ms".into());
        }
        if let Some(hep) = self.hep.as_deref() {
            if let Err(problem) = parse_hep(hep) {
                return bad("trace.hep", problem);
            }
        }
        Ok(())
    }
}

/// `"udp:IP:PORT"` (an IPv6 address in brackets) as an address, or why not.
pub fn parse_hep(text: &str) -> Result<SocketAddr, String> {
    let Some(addr) = text.strip_prefix("udp:") else {
        return Err(format!(
            "{text:?}: write \"udp:IP:PORT\" (HEP goes over UDP)"
        ));
    };
    let addr: SocketAddr = addr
        .parse()
        .map_err(|_| format!("{text:?}: write \"udp:IP:PORT\" with a numeric IP address"))?;
    if addr.port() == 0 {
        return Err(format!("{text:?}: the port must not be 0"));
    }
    Ok(addr)
}

fn default_max_call_mb() -> u32 {
    5
}

fn default_flush_every() -> Duration {
    Duration::from_secs(2)
}

fn default_hep_id() -> u32 {
    2001
}

fn default_keep() -> u32 {
    30
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hep_targets_are_udp_ip_port() {
        let cases = [
            ("udp:127.0.0.1:9060", Ok("127.0.0.1:9060")),
            ("udp:[::1]:9060", Ok("[::1]:9060")),
            ("tcp:127.0.0.1:9060", Err("HEP goes over UDP")),
            ("udp:homer:9060", Err("numeric IP")),
            ("udp:127.0.0.1", Err("numeric IP")),
            ("udp:127.0.0.1:0", Err("must not be 0")),
            ("", Err("HEP goes over UDP")),
        ];
        for (text, want) in cases {
            match (parse_hep(text), want) {
                (Ok(a), Ok(w)) => assert_eq!(a.to_string(), w),
                (Err(e), Err(w)) => assert!(e.contains(w), "{text}: {e}"),
                (got, w) => panic!("{text}: got {got:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn the_section_is_checked() {
        let ok = TraceSection::default();
        assert!(ok.validate().is_ok());
        assert_eq!(ok.budget(), 5_000_000);
        let bad = [
            TraceSection {
                max_call_mb: 0,
                ..TraceSection::default()
            },
            TraceSection {
                flush_every: Duration::from_millis(10),
                ..TraceSection::default()
            },
            TraceSection {
                hep: Some("udp:nowhere".into()),
                ..TraceSection::default()
            },
        ];
        for s in bad {
            assert!(s.validate().is_err(), "{s:?}");
        }
    }
}
