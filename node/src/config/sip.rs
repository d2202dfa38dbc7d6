//! `[sip]`, `[registrar]` and `[hotdesk]`: the SIP edge (listen address, TCP limits, TLS, realm)
//! and phones (registrations, digest bans, hot-desk lockouts). See docs/config.md.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{yes, ConfigError};
use crate::registrar::digest::Algorithm;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SipSection {
    /// UDP and TCP listen address.
    pub listen: SocketAddr,
    /// Address written in Contact and Record-Route and given to other nodes; defaults to `listen`.
    #[serde(default)]
    pub advertise: Option<SocketAddr>,
    /// Send `100 Trying` before a stateless `302`/`503` too (every INVITE gets one).
    #[serde(default = "yes")]
    pub trying_on_redirect: bool,
    /// Digest realm phones authenticate in (device HA1 values are computed for it).
    #[serde(default = "default_realm")]
    pub realm: String,
    /// The cluster's SIP domains (host names phones are configured with, e.g.
    /// `pbx.example.com`): a transfer's Refer-To naming one of them names this cluster. The
    /// realm does not count unless listed.
    #[serde(default)]
    pub domains: Vec<String>,
    /// A TCP connection that carries no byte for this long is closed.
    #[serde(default = "default_tcp_idle_timeout", with = "humantime_serde")]
    pub tcp_idle_timeout: Duration,
    /// A message begun on a TCP connection must be whole (head and body) within this time.
    #[serde(default = "default_tcp_message_timeout", with = "humantime_serde")]
    pub tcp_message_timeout: Duration,
    /// Most TCP connections open at once from one source address; more are refused.
    #[serde(default = "default_tcp_max_per_source")]
    pub tcp_max_per_source: u32,
    /// Most TCP connections open at once in all; more are refused.
    #[serde(default = "default_tcp_max_connections")]
    pub tcp_max_connections: u32,
    /// SIP over TLS: the certificate chain (PEM) served on `tls_listen`; with `tls_key`.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// TLS listen address; defaults to `listen`'s address on port 5061.
    #[serde(default)]
    pub tls_listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrarSection {
    /// Shorter registrations (other than 0) get `423 Interval Too Brief` (seconds).
    #[serde(default = "default_min_expires")]
    pub min_expires: u32,
    /// Longer registrations are cut to this (seconds).
    #[serde(default = "default_max_expires")]
    pub max_expires: u32,
    /// Registration time when a REGISTER names none (seconds).
    #[serde(default = "default_max_expires")]
    pub default_expires: u32,
    /// How long a digest nonce is good for; older ones get `stale=true`.
    #[serde(default = "default_nonce_ttl", with = "humantime_serde")]
    pub nonce_ttl: Duration,
    /// Digest algorithms challenged with, in the order offered.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<Algorithm>,
    /// Wrong digest passwords (REGISTER and phones' INVITEs) from one IP address, or for one
    /// extension, within `failure_window` that start a ban.
    #[serde(default = "default_reg_failures")]
    pub max_failures: u32,
    #[serde(default = "default_reg_window", with = "humantime_serde")]
    pub failure_window: Duration,
    /// The first ban; each later one of the same address or extension doubles.
    #[serde(default = "default_reg_ban", with = "humantime_serde")]
    pub ban: Duration,
    /// The longest ban.
    #[serde(default = "default_reg_max_ban", with = "humantime_serde")]
    pub max_ban: Duration,
}

/// Agents' hot-desk logins (`*11`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HotdeskSection {
    /// Wrong PINs from one phone, or for one agent, within `failure_window` that start a
    /// lockout.
    #[serde(default = "default_pin_failures")]
    pub max_failures: u32,
    #[serde(default = "default_pin_window", with = "humantime_serde")]
    pub failure_window: Duration,
    /// The first lockout; each later one of the same phone or agent doubles.
    #[serde(default = "default_pin_lockout", with = "humantime_serde")]
    pub lockout: Duration,
    /// The longest lockout.
    #[serde(default = "default_pin_max_lockout", with = "humantime_serde")]
    pub max_lockout: Duration,
}

impl Default for HotdeskSection {
    fn default() -> Self {
        Self {
            max_failures: default_pin_failures(),
            failure_window: default_pin_window(),
            lockout: default_pin_lockout(),
            max_lockout: default_pin_max_lockout(),
        }
    }
}

impl Default for RegistrarSection {
    fn default() -> Self {
        Self {
            min_expires: default_min_expires(),
            max_expires: default_max_expires(),
            default_expires: default_max_expires(),
            nonce_ttl: default_nonce_ttl(),
            algorithms: default_algorithms(),
            max_failures: default_reg_failures(),
            failure_window: default_reg_window(),
            ban: default_reg_ban(),
            max_ban: default_reg_max_ban(),
        }
    }
}

/// Checks `[sip]`, `[registrar]` and `[hotdesk]` (`ConfigError::Invalid` names the key).
pub(super) fn validate(
    sip: &SipSection,
    r: &RegistrarSection,
    h: &HotdeskSection,
) -> Result<(), ConfigError> {
    validate_sip(sip)?;
    validate_expiry(r)?;
    validate_failures(r, h)
}

/// `ConfigError::Invalid` for `key`, with what is wrong with it.
fn invalid(key: &'static str, problem: &str) -> Result<(), ConfigError> {
    Err(ConfigError::Invalid {
        key,
        problem: problem.to_string(),
    })
}

/// `[sip]`: the TCP limits, the digest realm and the cluster's domains.
fn validate_sip(sip: &SipSection) -> Result<(), ConfigError> {
    if sip.tcp_max_per_source == 0 {
        return invalid("sip.tcp_max_per_source", "must be at least 1");
    }
    if sip.tcp_max_connections == 0 {
        return invalid("sip.tcp_max_connections", "must be at least 1");
    }
    let realm = &sip.realm;
    if realm.is_empty()
        || !realm
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
    {
        return invalid(
            "sip.realm",
            "use printable ASCII without spaces, quotes or backslashes",
        );
    }
    if let Some(problem) = sip.domains.iter().find_map(|d| domain_problem(d)) {
        return Err(ConfigError::Invalid {
            key: "sip.domains",
            problem,
        });
    }
    Ok(())
}

/// `[registrar]`'s registration times, nonce lifetime and digest algorithms.
fn validate_expiry(r: &RegistrarSection) -> Result<(), ConfigError> {
    if r.min_expires == 0 || r.min_expires > r.max_expires {
        return invalid(
            "registrar.min_expires",
            "must be at least 1 and at most registrar.max_expires",
        );
    }
    if !(r.min_expires..=r.max_expires).contains(&r.default_expires) {
        return invalid(
            "registrar.default_expires",
            "must lie between min_expires and max_expires",
        );
    }
    if r.nonce_ttl < Duration::from_secs(10) {
        return invalid("registrar.nonce_ttl", "must be at least 10s");
    }
    if r.algorithms.is_empty() {
        return invalid(
            "registrar.algorithms",
            "list at least one of \"SHA-256\", \"MD5\"",
        );
    }
    Ok(())
}

/// The digest bans of `[registrar]` and the PIN lockouts of `[hotdesk]`: failures counted,
/// windows and first penalties positive, the longest penalty no shorter than the first.
fn validate_failures(r: &RegistrarSection, h: &HotdeskSection) -> Result<(), ConfigError> {
    for (key, failures) in [
        ("registrar.max_failures", r.max_failures),
        ("hotdesk.max_failures", h.max_failures),
    ] {
        if failures == 0 {
            return invalid(key, "must be at least 1");
        }
    }
    for (key, length) in [
        ("registrar.failure_window", r.failure_window),
        ("registrar.ban", r.ban),
        ("hotdesk.failure_window", h.failure_window),
        ("hotdesk.lockout", h.lockout),
    ] {
        if length.is_zero() {
            return invalid(key, "must be positive");
        }
    }
    if r.max_ban < r.ban {
        return invalid("registrar.max_ban", "must be at least registrar.ban");
    }
    if h.max_lockout < h.lockout {
        return invalid("hotdesk.max_lockout", "must be at least hotdesk.lockout");
    }
    Ok(())
}

/// What is wrong with a `sip.domains` entry, if anything (pure): it must be a lower-case DNS
/// host name (labels of `a-z`, `0-9` and inner `-`, at most 63 bytes each, 253 in all), not an
/// IP address, without scheme, user, port or trailing dot.
pub fn domain_problem(d: &str) -> Option<String> {
    let shown: String = d.chars().take(64).collect();
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if d.is_empty() || d.len() > 253 || !d.split('.').all(label_ok) {
        return Some(format!(
            "{shown:?} is not a lower-case host name (no scheme, user, port or trailing dot)"
        ));
    }
    if d.parse::<std::net::IpAddr>().is_ok()
        || d.rsplit('.')
            .next()
            .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Some(format!(
            "{shown:?} is an address, not a name (the node's own addresses count already)"
        ));
    }
    None
}

fn default_tcp_idle_timeout() -> Duration {
    Duration::from_secs(300)
}

fn default_tcp_message_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_tcp_max_per_source() -> u32 {
    32
}

fn default_tcp_max_connections() -> u32 {
    4096
}
fn default_realm() -> String {
    "callfleet".to_string()
}

fn default_min_expires() -> u32 {
    60
}

fn default_max_expires() -> u32 {
    3600
}

fn default_nonce_ttl() -> Duration {
    Duration::from_secs(300)
}

fn default_reg_failures() -> u32 {
    10
}

fn default_reg_window() -> Duration {
    Duration::from_secs(10 * 60)
}

fn default_reg_ban() -> Duration {
    Duration::from_secs(10 * 60)
}

fn default_reg_max_ban() -> Duration {
    Duration::from_secs(24 * 3600)
}

fn default_pin_failures() -> u32 {
    5
}

fn default_pin_window() -> Duration {
    Duration::from_secs(15 * 60)
}

fn default_pin_lockout() -> Duration {
    Duration::from_secs(15 * 60)
}

fn default_pin_max_lockout() -> Duration {
    Duration::from_secs(24 * 3600)
}

fn default_algorithms() -> Vec<Algorithm> {
    // MD5 only by default: common phones (baresip 1.0 among them) give up when any challenge
    // is not MD5; list "SHA-256" first to offer both to phones that take it.
    vec![Algorithm::Md5]
}
