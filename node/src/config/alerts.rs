//! `[alerts]`: when the alert rules fire and resolve, and where notifications go (e-mail over
//! SMTP, signed webhooks). See docs/config.md.

use std::path::PathBuf;
use std::time::Duration;

use callfleet_store::Severity;
use serde::{Deserialize, Serialize};

use super::ConfigError;

/// The alert rules' thresholds and timings, and the notification channels.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsSection {
    /// How often the rules are evaluated.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// A condition must be gone this long before its alert is resolved.
    #[serde(default = "default_clear_after", with = "humantime_serde")]
    pub clear_after: Duration,
    /// A still-firing alert is sent again this often; `0s`: never.
    #[serde(default = "default_repeat_after", with = "humantime_serde")]
    pub repeat_after: Duration,
    /// A node's heartbeat must be older than `heartbeat.ttl` this long.
    #[serde(default = "default_node_down_after", with = "humantime_serde")]
    pub node_down_after: Duration,
    /// Heartbeat writes must fail this long.
    #[serde(default = "default_unreachable_after", with = "humantime_serde")]
    pub database_after: Duration,
    /// A lockd must fail its health check this long.
    #[serde(default = "default_unreachable_after", with = "humantime_serde")]
    pub lockd_after: Duration,
    /// The shed level must stay at 2 or more this long.
    #[serde(default = "default_shed_after", with = "humantime_serde")]
    pub shed_after: Duration,
    /// Directories watched for free space besides `media.voicemail_dir`.
    #[serde(default)]
    pub disk_dirs: Vec<PathBuf>,
    /// File system use (percent) that raises a warning.
    #[serde(default = "default_disk_warning")]
    pub disk_warning_pct: f64,
    /// File system use (percent) that makes it critical.
    #[serde(default = "default_disk_critical")]
    pub disk_critical_pct: f64,
    /// Record spool fill (percent) that raises a warning.
    #[serde(default = "default_spool_warning")]
    pub spool_warning_pct: f64,
    /// Record spool fill (percent) that makes it critical.
    #[serde(default = "default_spool_critical")]
    pub spool_critical_pct: f64,
    /// Share (0..1) of a queue's calls to answer within 20 s over the last 15 minutes; `0`
    /// turns the rule off.
    #[serde(default = "default_service_level_target")]
    pub service_level_target: f64,
    /// Calls a queue must have had in those 15 minutes before its service level counts.
    #[serde(default = "default_service_level_min_calls")]
    pub service_level_min_calls: u32,
    /// A carrier of the `carriers` table sending no INVITE this long during open hours
    /// raises an alert; `0s` turns the rule off.
    #[serde(default = "default_carrier_silence", with = "humantime_serde")]
    pub carrier_silence: Duration,
    /// Open hours, `"HH:MM-HH:MM"` in `time_zone`.
    #[serde(default = "default_open_hours")]
    pub open_hours: String,
    /// Open days: `mon` .. `sun`.
    #[serde(default = "default_open_days")]
    pub open_days: Vec<String>,
    /// IANA time zone of the open hours, e.g. `Europe/Paris`.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Bans (wrong credentials) on one node within `ban_window` that raise an alert; `0`
    /// turns the rule off.
    #[serde(default = "default_ban_count")]
    pub ban_count: u32,
    #[serde(default = "default_ban_window", with = "humantime_serde")]
    pub ban_window: Duration,
    /// Where notifications go by e-mail.
    #[serde(default)]
    pub email: Option<EmailSection>,
    /// Where notifications are POSTed (chat, SMS gateways, incident tools).
    #[serde(default)]
    pub webhook: Vec<WebhookSection>,
}

impl Default for AlertsSection {
    fn default() -> Self {
        Self {
            interval: default_interval(),
            clear_after: default_clear_after(),
            repeat_after: default_repeat_after(),
            node_down_after: default_node_down_after(),
            database_after: default_unreachable_after(),
            lockd_after: default_unreachable_after(),
            shed_after: default_shed_after(),
            disk_dirs: Vec::new(),
            disk_warning_pct: default_disk_warning(),
            disk_critical_pct: default_disk_critical(),
            spool_warning_pct: default_spool_warning(),
            spool_critical_pct: default_spool_critical(),
            service_level_target: default_service_level_target(),
            service_level_min_calls: default_service_level_min_calls(),
            carrier_silence: default_carrier_silence(),
            open_hours: default_open_hours(),
            open_days: default_open_days(),
            time_zone: default_time_zone(),
            ban_count: default_ban_count(),
            ban_window: default_ban_window(),
            email: None,
            webhook: Vec::new(),
        }
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// STARTTLS when the server offers it, plain otherwise (the default).
    Opportunistic,
    /// STARTTLS, or no mail at all.
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// Never encrypt (a relay on the same host).
    None,
}

/// `[alerts.email]`: one SMTP relay and its recipients.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSection {
    /// SMTP server host name (also the name its certificate must carry).
    pub server: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    #[serde(default = "default_smtp_tls")]
    pub tls: SmtpTls,
    /// PEM file of the CA certificates the relay's certificate is checked against, besides the
    /// webpki roots (a relay with a private CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Login, when the relay wants one.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    /// Alerts below this severity are not mailed.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// Deadline of one attempt (connect, dialogue, data).
    #[serde(default = "default_email_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Attempts per message before it is given up (logged and counted).
    #[serde(default = "default_attempts")]
    pub attempts: u32,
}

/// `[[alerts.webhook]]`: one HTTP endpoint.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
    /// `http://` or `https://` URL the JSON is POSTed to.
    pub url: String,
    /// Key of the HMAC-SHA256 signature of the body (header `X-Callfleet-Signature`).
    pub secret: String,
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// Deadline of one attempt.
    #[serde(default = "default_webhook_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    #[serde(default = "default_attempts")]
    pub attempts: u32,
}

impl AlertsSection {
    /// Checks the values serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, problem: &str| {
            Err(ConfigError::Invalid {
                key,
                problem: problem.to_string(),
            })
        };
        if self.interval < Duration::from_millis(200) {
            return bad("alerts.interval", "must be at least 200ms");
        }
        let pct = |v: f64| (0.0..=100.0).contains(&v);
        if !pct(self.disk_warning_pct)
            || !pct(self.disk_critical_pct)
            || self.disk_warning_pct > self.disk_critical_pct
        {
            return bad(
                "alerts.disk_warning_pct",
                "disk_warning_pct and disk_critical_pct must be percentages, warning <= critical",
            );
        }
        if !pct(self.spool_warning_pct)
            || !pct(self.spool_critical_pct)
            || self.spool_warning_pct > self.spool_critical_pct
        {
            return bad(
                "alerts.spool_warning_pct",
                "spool_warning_pct and spool_critical_pct must be percentages, warning <= critical",
            );
        }
        if !(0.0..=1.0).contains(&self.service_level_target) {
            return bad("alerts.service_level_target", "must be between 0 and 1");
        }
        if self.ban_window.is_zero() {
            return bad("alerts.ban_window", "must be positive");
        }
        if let Err(problem) = crate::alerts::hours::OpenHours::parse(
            &self.open_hours,
            &self.open_days,
            &self.time_zone,
        ) {
            return bad("alerts.open_hours", &problem);
        }
        if let Some(email) = &self.email {
            email.validate()?;
        }
        for hook in &self.webhook {
            hook.validate()?;
        }
        Ok(())
    }
}

impl EmailSection {
    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, problem: &str| {
            Err(ConfigError::Invalid {
                key,
                problem: problem.to_string(),
            })
        };
        if self.server.trim().is_empty() {
            return bad("alerts.email.server", "name the SMTP server");
        }
        if self.from.parse::<lettre::message::Mailbox>().is_err() {
            return bad("alerts.email.from", "must be an e-mail address");
        }
        if self.to.is_empty() {
            return bad("alerts.email.to", "list at least one address");
        }
        if self
            .to
            .iter()
            .any(|to| to.parse::<lettre::message::Mailbox>().is_err())
        {
            return bad("alerts.email.to", "every entry must be an e-mail address");
        }
        if self.username.is_some() != self.password.is_some() {
            return bad(
                "alerts.email.username",
                "give both username and password, or neither",
            );
        }
        if self.ca_file.is_some() && self.tls == SmtpTls::None {
            return bad(
                "alerts.email.ca_file",
                "a CA is only used with TLS: set tls to opportunistic, starttls or tls",
            );
        }
        if self
            .ca_file
            .as_ref()
            .is_some_and(|f| f.as_os_str().is_empty())
        {
            return bad("alerts.email.ca_file", "name a PEM file");
        }
        if self.attempts == 0 || self.timeout.is_zero() {
            return bad(
                "alerts.email.attempts",
                "attempts and timeout must be positive",
            );
        }
        Ok(())
    }
}

impl WebhookSection {
    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, problem: &str| {
            Err(ConfigError::Invalid {
                key,
                problem: problem.to_string(),
            })
        };
        let scheme_ok = reqwest::Url::parse(&self.url)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if !scheme_ok {
            return bad("alerts.webhook.url", "must be an http:// or https:// URL");
        }
        if self.secret.len() < 16 {
            return bad(
                "alerts.webhook.secret",
                "must be at least 16 characters (it keys the signature receivers check)",
            );
        }
        if self.attempts == 0 || self.timeout.is_zero() {
            return bad(
                "alerts.webhook.attempts",
                "attempts and timeout must be positive",
            );
        }
        Ok(())
    }
}

fn default_interval() -> Duration {
    Duration::from_secs(5)
}
fn default_clear_after() -> Duration {
    Duration::from_secs(30)
}
fn default_repeat_after() -> Duration {
    Duration::from_secs(4 * 3600)
}
fn default_node_down_after() -> Duration {
    Duration::from_secs(10)
}
fn default_unreachable_after() -> Duration {
    Duration::from_secs(15)
}
fn default_shed_after() -> Duration {
    Duration::from_secs(60)
}
fn default_disk_warning() -> f64 {
    85.0
}
fn default_disk_critical() -> f64 {
    95.0
}
fn default_spool_warning() -> f64 {
    50.0
}
fn default_spool_critical() -> f64 {
    90.0
}
fn default_service_level_target() -> f64 {
    0.8
}
fn default_service_level_min_calls() -> u32 {
    10
}
fn default_carrier_silence() -> Duration {
    Duration::from_secs(30 * 60)
}
fn default_open_hours() -> String {
    "08:00-18:00".to_owned()
}
fn default_open_days() -> Vec<String> {
    ["mon", "tue", "wed", "thu", "fri"]
        .map(str::to_owned)
        .to_vec()
}
fn default_time_zone() -> String {
    "UTC".to_owned()
}
fn default_ban_count() -> u32 {
    20
}
fn default_ban_window() -> Duration {
    Duration::from_secs(10 * 60)
}
fn default_smtp_port() -> u16 {
    587
}
fn default_smtp_tls() -> SmtpTls {
    SmtpTls::Opportunistic
}
fn default_min_severity() -> Severity {
    Severity::Warning
}
fn default_email_timeout() -> Duration {
    Duration::from_secs(20)
}
fn default_webhook_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_attempts() -> u32 {
    6
}
