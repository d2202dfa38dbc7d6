//! Typed node configuration: TOML with every key defaulted except the node's identity and
//! addresses; unknown keys are rejected with the key's name and place.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use callfleet_lb::Role;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

mod alerts;
mod env;
mod outbound;
mod provisioning;
mod recording;
mod records;
mod shed;
mod sip;
mod tls;
mod trace;
mod validate;

use env::apply_env;
pub use env::ENV_PREFIX;

pub use alerts::{AlertsSection, EmailSection, SmtpTls, WebhookSection};
pub use outbound::{is_e164, OutboundSection};
pub use provisioning::ProvisioningSection;
pub use recording::RecordingSection;
pub use records::RecordsSection;
pub use shed::ShedSection;
pub use sip::{HotdeskSection, RegistrarSection, SipSection};
pub use trace::{parse_hep, TraceSection};

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid config: {key}: {problem}")]
    Invalid { key: &'static str, problem: String },
    #[error("environment variable {var}: {problem}")]
    Env { var: String, problem: &'static str },
}

/// The whole node configuration (see docs/config.md).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub node: NodeSection,
    pub sip: SipSection,
    pub http: HttpSection,
    #[serde(default)]
    pub database: DatabaseSection,
    #[serde(default)]
    pub carriers: CarriersSection,
    #[serde(default)]
    pub heartbeat: HeartbeatSection,
    #[serde(default)]
    pub lb: LbSection,
    #[serde(default)]
    pub media: MediaSection,
    #[serde(default)]
    pub call: CallSection,
    #[serde(default)]
    pub registrar: RegistrarSection,
    #[serde(default)]
    pub lock: LockSection,
    #[serde(default)]
    pub hotdesk: HotdeskSection,
    #[serde(default)]
    pub alerts: AlertsSection,
    #[serde(default)]
    pub scale: ScaleSection,
    #[serde(default)]
    pub records: RecordsSection,
    #[serde(default)]
    pub recording: RecordingSection,
    #[serde(default)]
    pub shed: ShedSection,
    #[serde(default)]
    pub trace: TraceSection,
    #[serde(default)]
    pub provisioning: ProvisioningSection,
    #[serde(default)]
    pub outbound: OutboundSection,
}

/// Scale-out, on main nodes: when the cluster stays busy, one main node runs a command and/or
/// posts a webhook (see `crate::scale`). Off unless `command` or `webhook` is set.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleSection {
    /// Cluster utilisation (0..1: calls over capacity of the nodes taking calls) above which
    /// the cluster counts as busy.
    #[serde(default = "default_scale_threshold")]
    pub threshold: f32,
    /// How long utilisation must stay above `threshold` before a main node acts.
    #[serde(default = "default_scale_duration", with = "humantime_serde")]
    pub duration: Duration,
    /// Run with `sh -c` once per scale-out.
    #[serde(default)]
    pub command: Option<String>,
    /// POSTed once per scale-out (`http://` only).
    #[serde(default)]
    pub webhook: Option<String>,
    /// After a node acted, no main node acts again for this long (the lease's TTL).
    #[serde(default = "default_scale_cooldown", with = "humantime_serde")]
    pub cooldown: Duration,
    /// A command still running after this long is killed.
    #[serde(default = "default_scale_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for ScaleSection {
    fn default() -> Self {
        Self {
            threshold: default_scale_threshold(),
            duration: default_scale_duration(),
            command: None,
            webhook: None,
            cooldown: default_scale_cooldown(),
            timeout: default_scale_timeout(),
        }
    }
}

impl ScaleSection {
    /// Whether there is anything to do on a scale-out.
    pub fn enabled(&self) -> bool {
        self.command.is_some() || self.webhook.is_some()
    }
}

/// Where agent leases are taken.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LockSection {
    /// lockd base URLs, tried in order with failover; empty = an in-process lock (one host).
    #[serde(default)]
    pub urls: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// Unique name of this node in the cluster.
    pub name: String,
    #[serde(default = "default_role")]
    pub role: Role,
    /// Concurrent calls this node accepts.
    #[serde(default = "default_capacity")]
    pub capacity: u32,
    /// How long a drain (SIGTERM, `callfleet node drain`) lets calls in progress run before
    /// the node hangs up the rest and exits.
    #[serde(default = "default_drain_timeout", with = "humantime_serde")]
    pub drain_timeout: Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    pub listen: SocketAddr,
    /// Address other nodes use to reach this one; defaults to `listen`.
    #[serde(default)]
    pub advertise: Option<SocketAddr>,
    /// The cluster secret (required, at least 32 characters, the same on every node and
    /// lockd): node-to-node, node-to-lockd and CLI requests are signed with a key derived from
    /// it (`callfleet_sign`); it never travels. It also keys the registrar's nonces.
    #[serde(default)]
    pub secret: Option<String>,
    /// Whether a program on this host without credentials (a loopback peer, not forwarded
    /// by a proxy) may read the JSON API and `/metrics`; changes always need credentials.
    #[serde(default = "default_true")]
    pub trust_loopback: bool,
    /// Where the node writes its operator token at start (mode 0600, a new one at every
    /// start): a program on this host that can read it acts as the operator
    /// (`Authorization: Bearer <token>`). Default `/var/lib/callfleet/<node.name>.operator-token`.
    #[serde(default)]
    pub operator_token_file: Option<PathBuf>,
    /// HTTPS: the certificate chain (PEM) served on `listen` instead of plain HTTP; with
    /// `tls_key`.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// CA certificates (PEM) that other nodes' (and this node's own) HTTPS certificates are
    /// checked against; without it, the Mozilla roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    #[serde(default = "default_db_url")]
    pub url: String,
}

impl Default for DatabaseSection {
    fn default() -> Self {
        Self {
            url: default_db_url(),
        }
    }
}

/// What to do with a new INVITE (or, with `register_from = "listed"`, a REGISTER) from a
/// source that is no carrier, office proxy or registered phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum RefuseAction {
    #[serde(rename = "403")]
    Forbidden,
    #[serde(rename = "drop")]
    Drop,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CarriersSection {
    /// Source networks allowed to send calls.
    #[serde(default = "default_allow")]
    pub allow: Vec<IpNet>,
    #[serde(default = "default_refuse")]
    pub refuse: RefuseAction,
    /// Where phones may REGISTER from.
    #[serde(default)]
    pub register_from: RegisterFrom,
}

/// Where phones may REGISTER from (`carriers.register_from`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RegisterFrom {
    /// Any address (phones on the internet register directly); digest auth and the guessing
    /// limits protect the registrar.
    #[default]
    Anywhere,
    /// Only `carriers.allow` networks, carriers from SQL and office proxies' addresses; other
    /// REGISTERs get `carriers.refuse`.
    Listed,
}

impl Default for CarriersSection {
    fn default() -> Self {
        Self {
            allow: default_allow(),
            refuse: default_refuse(),
            register_from: RegisterFrom::default(),
        }
    }
}

impl CarriersSection {
    pub fn allows(&self, ip: std::net::IpAddr) -> bool {
        self.allow.iter().any(|net| net.contains(&ip))
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatSection {
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Age after which a node counts as dead; default 3 x interval.
    #[serde(default, with = "humantime_serde")]
    pub ttl: Option<Duration>,
    /// How long heartbeat history (for charts) is kept.
    #[serde(default = "default_history", with = "humantime_serde")]
    pub history: Duration,
}

impl Default for HeartbeatSection {
    fn default() -> Self {
        Self {
            interval: default_interval(),
            ttl: None,
            history: default_history(),
        }
    }
}

impl HeartbeatSection {
    pub fn ttl(&self) -> Duration {
        self.ttl.unwrap_or(self.interval * 3)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LbSection {
    /// A main node keeps a call while it holds at most this fraction more than the best peer
    /// would at its utilisation (plus `hysteresis_calls`).
    #[serde(default = "default_hysteresis")]
    pub hysteresis: f32,
    /// And this many calls more on top (room for small numbers of calls).
    #[serde(default = "default_hysteresis_calls")]
    pub hysteresis_calls: u32,
    /// How often a main node probes every other node with SIP OPTIONS; `0s` turns probing off.
    #[serde(default = "default_probe_interval", with = "humantime_serde")]
    pub probe_interval: Duration,
    /// Probes missed in a row after which a node gets no redirected call.
    #[serde(default = "default_probe_flip")]
    pub probe_misses: u32,
    /// Probes answered in a row after which such a node gets calls again.
    #[serde(default = "default_probe_flip")]
    pub probe_answers: u32,
    /// CPU % at or above which the node refuses new calls (above 100: never on CPU alone).
    #[serde(default = "default_refuse_cpu")]
    pub refuse_cpu: f32,
    /// When false, a main node only handles a call itself if no other node can (a dedicated
    /// redirector).
    #[serde(default = "yes")]
    pub prefer_self: bool,
    /// `Retry-After` seconds in a `503`.
    #[serde(default = "default_retry_after")]
    pub retry_after: u32,
}

impl Default for LbSection {
    fn default() -> Self {
        Self {
            hysteresis: default_hysteresis(),
            hysteresis_calls: default_hysteresis_calls(),
            probe_interval: default_probe_interval(),
            probe_misses: default_probe_flip(),
            probe_answers: default_probe_flip(),
            refuse_cpu: default_refuse_cpu(),
            prefer_self: true,
            retry_after: default_retry_after(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MediaSection {
    /// RTP port range "LOW-HIGH" (even ports are used).
    #[serde(default = "default_rtp_ports")]
    pub rtp_ports: PortRange,
    /// Directory of music-on-hold WAV files (8 kHz mono 16-bit), found with `*.wav`.
    #[serde(default = "default_moh_dir")]
    pub moh_dir: PathBuf,
    /// Directory of spoken prompts (`<name>.wav`); tones stand in for missing files.
    #[serde(default = "default_prompts_dir")]
    pub prompts_dir: PathBuf,
    /// Where voicemail recordings are written (WAV), one folder per agent.
    #[serde(default = "default_voicemail_dir")]
    pub voicemail_dir: PathBuf,
    /// Most messages one agent's mailbox holds; a caller to a full mailbox hears
    /// "mailbox-full" and nothing is recorded.
    #[serde(default = "default_voicemail_max_messages")]
    pub voicemail_max_messages: u32,
    /// Most megabytes (10^6 bytes) of recordings one agent's mailbox holds.
    #[serde(default = "default_voicemail_max_mb")]
    pub voicemail_max_mb: u32,
}

impl Default for MediaSection {
    fn default() -> Self {
        Self {
            rtp_ports: default_rtp_ports(),
            moh_dir: default_moh_dir(),
            prompts_dir: default_prompts_dir(),
            voicemail_dir: default_voicemail_dir(),
            voicemail_max_messages: default_voicemail_max_messages(),
            voicemail_max_mb: default_voicemail_max_mb(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CallSection {
    /// Calls longer than this are ended by the node with a BYE.
    #[serde(default = "default_max_duration", with = "humantime_serde")]
    pub max_duration: Duration,
    /// Ringing time between `180 Ringing` and `200 OK`.
    #[serde(default, with = "humantime_serde")]
    pub answer_delay: Duration,
}

impl Default for CallSection {
    fn default() -> Self {
        Self {
            max_duration: default_max_duration(),
            answer_delay: Duration::ZERO,
        }
    }
}

/// An inclusive UDP port range written as "LOW-HIGH".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PortRange {
    pub low: u16,
    pub high: u16,
}

impl TryFrom<String> for PortRange {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| format!("expected \"LOW-HIGH\", got {s:?}"))?;
        let low: u16 = a.trim().parse().map_err(|_| format!("bad port {a:?}"))?;
        let high: u16 = b.trim().parse().map_err(|_| format!("bad port {b:?}"))?;
        if low == 0 || high < low.saturating_add(1) {
            return Err(format!("range {s:?} must hold at least two ports, low > 0"));
        }
        Ok(PortRange { low, high })
    }
}

impl From<PortRange> for String {
    fn from(r: PortRange) -> String {
        format!("{}-{}", r.low, r.high)
    }
}

pub(crate) fn yes() -> bool {
    true
}
fn default_role() -> Role {
    Role::Main
}
fn default_capacity() -> u32 {
    500
}
fn default_scale_threshold() -> f32 {
    0.8
}
fn default_scale_duration() -> Duration {
    Duration::from_secs(120)
}
fn default_scale_cooldown() -> Duration {
    Duration::from_secs(15 * 60)
}
fn default_scale_timeout() -> Duration {
    Duration::from_secs(300)
}
fn default_drain_timeout() -> Duration {
    Duration::from_secs(300)
}
fn default_db_url() -> String {
    "sqlite:///var/lib/callfleet/cluster.db".to_string()
}
fn default_allow() -> Vec<IpNet> {
    vec!["127.0.0.0/8".parse().expect("constant network parses")]
}
fn default_refuse() -> RefuseAction {
    RefuseAction::Forbidden
}
fn default_interval() -> Duration {
    Duration::from_secs(2)
}
fn default_history() -> Duration {
    Duration::from_secs(15 * 60)
}
fn default_hysteresis() -> f32 {
    0.05
}
fn default_hysteresis_calls() -> u32 {
    1
}
fn default_probe_interval() -> Duration {
    Duration::from_millis(400)
}
fn default_probe_flip() -> u32 {
    2
}
fn default_refuse_cpu() -> f32 {
    95.0
}
fn default_retry_after() -> u32 {
    5
}
fn default_rtp_ports() -> PortRange {
    PortRange {
        low: 20000,
        high: 29999,
    }
}
fn default_moh_dir() -> PathBuf {
    PathBuf::from("/usr/share/callfleet/moh")
}
fn default_prompts_dir() -> PathBuf {
    PathBuf::from("/usr/share/callfleet/prompts")
}
fn default_voicemail_dir() -> PathBuf {
    PathBuf::from("/var/lib/callfleet/voicemail")
}
fn default_voicemail_max_messages() -> u32 {
    100
}
fn default_voicemail_max_mb() -> u32 {
    100
}
fn default_max_duration() -> Duration {
    Duration::from_secs(3600)
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with_env(Some(path), std::env::vars())
    }

    /// Reads the config file (or starts from nothing when `path` is `None`), applies the
    /// `CALLFLEET_<SECTION>_<KEY>` overrides found in `env`, then parses and checks the result.
    /// Variables whose `<SECTION>` is not a config section are left alone (they may belong to
    /// something else); one naming an unknown key of a known section is refused by name.
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let (text, place) = match path {
            Some(path) => (
                std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?,
                path.display().to_string(),
            ),
            None => (String::new(), "<no file>".to_owned()),
        };
        let parse_error = |source| ConfigError::Parse {
            path: PathBuf::from(&place),
            source: Box::new(source),
        };
        let mut table: toml::Table = toml::from_str(&text).map_err(parse_error)?;
        let applied = apply_env(&mut table, env)?;
        let place = if applied.is_empty() {
            place
        } else {
            format!("{place} with {}", applied.join(", "))
        };
        let cfg: Config =
            toml::Value::Table(table)
                .try_into()
                .map_err(|source| ConfigError::Parse {
                    path: PathBuf::from(place),
                    source: Box::new(source),
                })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parses and checks config text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<text>"),
            source: Box::new(e),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, problem: &str| {
            Err(ConfigError::Invalid {
                key,
                problem: problem.to_string(),
            })
        };
        if self.node.name.is_empty() || !self.node.name.chars().all(valid_name_char) {
            return bad("node.name", "use letters, digits, '-', '_' or '.'");
        }
        if self.node.capacity == 0 {
            return bad("node.capacity", "must be at least 1");
        }
        if self.heartbeat.interval < Duration::from_millis(100) {
            return bad("heartbeat.interval", "must be at least 100ms");
        }
        if self.heartbeat.ttl() <= self.heartbeat.interval {
            return bad("heartbeat.ttl", "must be longer than heartbeat.interval");
        }
        if !(0.0..=1.0).contains(&self.lb.hysteresis) {
            return bad("lb.hysteresis", "must be between 0.0 and 1.0");
        }
        if !self.lb.probe_interval.is_zero() && self.lb.probe_interval < Duration::from_millis(50) {
            return bad("lb.probe_interval", "must be 0s (off) or at least 50ms");
        }
        if self.lb.probe_misses == 0 || self.lb.probe_answers == 0 {
            return bad(
                "lb.probe_misses",
                "probe_misses and probe_answers must be at least 1",
            );
        }
        if self.carriers.allow.is_empty() {
            return bad("carriers.allow", "list at least one network");
        }
        if self.call.max_duration.is_zero() {
            return bad("call.max_duration", "must be positive");
        }
        match self.http.secret.as_deref() {
            None => {
                return bad(
                    "http.secret",
                    "the cluster secret is required: 32 characters or more, the same on every \
                     node and lockd (make one with `openssl rand -hex 32`)",
                )
            }
            Some(secret) => {
                if let Err(weak) = callfleet_sign::check_strength(secret) {
                    return bad("http.secret", &weak.to_string());
                }
            }
        }
        if self.media.voicemail_max_messages == 0 {
            return bad("media.voicemail_max_messages", "must be at least 1");
        }
        if self.media.voicemail_max_mb == 0 {
            return bad("media.voicemail_max_mb", "must be at least 1");
        }
        sip::validate(&self.sip, &self.registrar, &self.hotdesk)?;
        self.validate_tls()?;
        self.alerts.validate()?;
        self.records.validate()?;
        self.recording.validate()?;
        self.shed.validate()?;
        self.trace.validate()?;
        self.provisioning.validate()?;
        self.outbound.validate()?;
        self.validate_scale()
    }

    pub fn sip_advertise(&self) -> SocketAddr {
        self.sip.advertise.unwrap_or(self.sip.listen)
    }

    pub fn http_advertise(&self) -> SocketAddr {
        self.http.advertise.unwrap_or(self.http.listen)
    }

    /// Where the operator token is written: `http.operator_token_file`, or
    /// `/var/lib/callfleet/<node.name>.operator-token`.
    pub fn operator_token_file(&self) -> PathBuf {
        self.http.operator_token_file.clone().unwrap_or_else(|| {
            PathBuf::from(format!(
                "/var/lib/callfleet/{}.operator-token",
                self.node.name
            ))
        })
    }

    /// The key requests are signed with, from `http.secret` (checked present and strong when
    /// the config was read).
    pub fn cluster_key(&self) -> callfleet_sign::ClusterKey {
        callfleet_sign::ClusterKey::new(self.http.secret.as_deref().unwrap_or_default())
    }
}

fn valid_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

#[cfg(test)]
mod tests;

fn default_true() -> bool {
    true
}
