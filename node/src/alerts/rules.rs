//! The detection rules, pure: each turns what the shell read (heartbeat rows, this node's
//! health, file system use, the panel's queue figures, carrier traffic, ban counts) into the
//! conditions true now. Thresholds on levels have hysteresis: an alert firing at a severity
//! keeps it until the value is [`MARGIN_PCT`] points below the threshold.

use std::time::Duration;

use callfleet_store::{AlertKind, Carrier, CarrierTraffic, Severity};
use callfleet_web::snapshot::{NodeView, QueueView};

use super::engine::{Condition, Key};
use super::hours::OpenHours;

/// How far below a threshold a level must fall to leave it (percentage points).
pub const MARGIN_PCT: f64 = 2.0;
/// How far above the target the recent service level must climb to clear (0..1).
pub const SERVICE_MARGIN: f64 = 0.02;

/// Nodes whose heartbeat is older than the TTL, other than `me`. A node whose last beat said
/// it was draining (a clean stop, `SIGTERM` or `node drain`) was stopped on purpose: no alert.
pub fn node_down(nodes: &[NodeView], me: &str) -> Vec<Condition> {
    nodes
        .iter()
        .filter(|n| !n.alive && !n.draining && n.name != me)
        .map(|n| Condition {
            key: Key::new(AlertKind::NodeDown, n.name.clone()),
            node: Some(n.name.clone()),
            severity: Severity::Critical,
            message: format!("node {} stopped heartbeating", n.name),
        })
        .collect()
}

/// This node cannot write its heartbeat to the database.
pub fn database(me: &str, failing: bool) -> Option<Condition> {
    failing.then(|| Condition {
        key: Key::new(AlertKind::DatabaseUnreachable, me),
        node: Some(me.to_owned()),
        severity: Severity::Critical,
        message: format!("node {me} cannot reach the database"),
    })
}

/// One lockd's health check from this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockdProbe {
    pub url: String,
    pub ok: bool,
}

/// lockd instances this node cannot reach: critical when it reaches none (no agent can be
/// offered a call), a warning while another still answers.
pub fn lockd(me: &str, probes: &[LockdProbe]) -> Vec<Condition> {
    let all_down = !probes.is_empty() && probes.iter().all(|p| !p.ok);
    probes
        .iter()
        .filter(|p| !p.ok)
        .map(|p| Condition {
            key: Key::new(AlertKind::LockdUnreachable, format!("{me} {}", p.url)),
            node: Some(me.to_owned()),
            severity: if all_down {
                Severity::Critical
            } else {
                Severity::Warning
            },
            message: if all_down {
                format!("node {me} cannot reach lockd at {} (nor any other)", p.url)
            } else {
                format!("node {me} cannot reach lockd at {}", p.url)
            },
        })
        .collect()
}

/// This node sheds load: level 2 (optional work deferred) is a warning, 3 (new calls
/// refused) critical.
pub fn shed(me: &str, level: u8) -> Option<Condition> {
    let severity = match level {
        0 | 1 => return None,
        2 => Severity::Warning,
        _ => Severity::Critical,
    };
    Some(Condition {
        key: Key::new(AlertKind::ShedHigh, me),
        node: Some(me.to_owned()),
        severity,
        message: format!("node {me} is shedding load (level {level})"),
    })
}

/// A warning and a critical threshold in percent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub warning_pct: f64,
    pub critical_pct: f64,
}

/// The severity `pct` deserves given the one the alert fires with now (`current`): a level is
/// entered at its threshold and left only [`MARGIN_PCT`] below it.
pub fn level(pct: f64, t: Thresholds, current: Option<Severity>) -> Option<Severity> {
    let keep = |threshold: f64, severity: Severity| {
        let held = current.is_some_and(|c| c >= severity);
        pct >= threshold || (held && pct >= threshold - MARGIN_PCT)
    };
    if keep(t.critical_pct, Severity::Critical) {
        Some(Severity::Critical)
    } else if keep(t.warning_pct, Severity::Warning) {
        Some(Severity::Warning)
    } else {
        None
    }
}

/// How full one watched directory's file system is, as read by `statvfs`.
#[derive(Debug, Clone, PartialEq)]
pub struct DiskUse {
    /// The directory as configured.
    pub dir: String,
    /// Percent of the space non-root users may use that is used.
    pub used_pct: f64,
}

/// Directories whose file system is nearly full; `current` tells the severity each fires
/// with now (for hysteresis).
pub fn disk(
    me: &str,
    uses: &[DiskUse],
    t: Thresholds,
    current: impl Fn(&Key) -> Option<Severity>,
) -> Vec<Condition> {
    uses.iter()
        .filter_map(|u| {
            let key = Key::new(AlertKind::DiskFull, format!("{me} {}", u.dir));
            let severity = level(u.used_pct, t, current(&key))?;
            Some(Condition {
                key,
                node: Some(me.to_owned()),
                severity,
                message: format!(
                    "file system of {} on node {me} is {:.0} % full",
                    u.dir, u.used_pct
                ),
            })
        })
        .collect()
}

/// The record spool's fill in percent, `None` where the node has no spool.
pub fn spool(
    me: &str,
    fill_pct: Option<f64>,
    t: Thresholds,
    current: Option<Severity>,
) -> Option<Condition> {
    let pct = fill_pct?;
    let severity = level(pct, t, current)?;
    Some(Condition {
        key: Key::new(AlertKind::SpoolFilling, me),
        node: Some(me.to_owned()),
        severity,
        message: format!("record spool of node {me} is {pct:.0} % full"),
    })
}

/// What the service-level rule compares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServiceTarget {
    /// Share (0..1) to answer within the threshold; 0 turns the rule off.
    pub target: f64,
    /// Calls a queue must have had in the window before its level counts.
    pub min_calls: i64,
    /// The threshold, seconds (for the message).
    pub threshold_s: u64,
}

/// Queues whose recent service level is below target (cleared [`SERVICE_MARGIN`] above it).
pub fn service_level(
    queues: &[QueueView],
    t: ServiceTarget,
    firing: impl Fn(&Key) -> bool,
) -> Vec<Condition> {
    if t.target <= 0.0 {
        return Vec::new();
    }
    queues
        .iter()
        .filter_map(|q| {
            let level = q.recent_service_level?;
            let key = Key::new(AlertKind::ServiceLevelLow, q.name.clone());
            let bar = if firing(&key) {
                t.target + SERVICE_MARGIN
            } else {
                t.target
            };
            if q.recent_calls < t.min_calls || level >= bar {
                return None;
            }
            Some(Condition {
                key,
                node: None,
                severity: Severity::Warning,
                message: format!(
                    "queue {} answered {:.0} % of {} calls within {} s over the last 15 minutes \
                     (target {:.0} %)",
                    q.name,
                    level * 100.0,
                    q.recent_calls,
                    t.threshold_s,
                    t.target * 100.0
                ),
            })
        })
        .collect()
}

/// Carriers that sent no INVITE to any node for `silence` during the current opening.
/// Silence counts from the latest of: the carrier's last INVITE on any node, its creation,
/// and the opening; outside open hours nothing is silent.
pub fn carrier_silent(
    carriers: &[Carrier],
    traffic: &[CarrierTraffic],
    hours: &OpenHours,
    silence: Duration,
    now_ms: i64,
) -> Vec<Condition> {
    let silence_ms = i64::try_from(silence.as_millis()).unwrap_or(i64::MAX);
    if silence_ms == 0 {
        return Vec::new();
    }
    let Some(opened) = hours.opened_at(now_ms) else {
        return Vec::new();
    };
    carriers
        .iter()
        .filter_map(|c| {
            let heard = traffic
                .iter()
                .filter(|t| t.carrier == c.name)
                .map(|t| t.last_invite_at_ms)
                .max()
                .unwrap_or(i64::MIN);
            let since = heard.max(c.created_at_ms).max(opened);
            (now_ms - since >= silence_ms).then(|| Condition {
                key: Key::new(AlertKind::CarrierSilent, c.name.clone()),
                node: None,
                severity: Severity::Warning,
                message: format!(
                    "carrier {} sent no call for {} during open hours",
                    c.name,
                    silence_text(now_ms - since)
                ),
            })
        })
        .collect()
}

/// A silence of `ms` as the message says it: whole minutes from one minute on, seconds below.
pub fn silence_text(ms: i64) -> String {
    match ms / 1000 {
        secs @ ..=59 => format!("{} s", secs.max(0)),
        secs @ 60..=119 => format!("{} minute", secs / 60),
        secs => format!("{} minutes", secs / 60),
    }
}

/// Bans this node made within the window, at or over `count` (0 turns the rule off).
pub fn bans(me: &str, in_window: u64, count: u32, window: Duration) -> Option<Condition> {
    (count > 0 && in_window >= u64::from(count)).then(|| Condition {
        key: Key::new(AlertKind::AuthBans, me),
        node: Some(me.to_owned()),
        severity: Severity::Warning,
        message: format!(
            "node {me} banned {in_window} sources or subjects for wrong credentials in {} minutes",
            window.as_secs() / 60
        ),
    })
}

/// A rolling count over a time window from samples of an ever-growing counter.
#[derive(Debug, Clone, Default)]
pub struct RateWindow {
    /// (time, counter value), oldest first.
    samples: std::collections::VecDeque<(i64, u64)>,
}

impl RateWindow {
    /// Adds a sample of the counter at `now_ms`; returns how much it grew over `window`
    /// (since the oldest sample within it). A counter that went back (restart) counts from 0.
    pub fn sample(&mut self, now_ms: i64, total: u64, window: Duration) -> u64 {
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        if self.samples.back().is_some_and(|&(_, last)| total < last) {
            self.samples.clear();
            self.samples.push_back((now_ms, 0));
        }
        self.samples.push_back((now_ms, total));
        while self
            .samples
            .get(1)
            .is_some_and(|&(at, _)| now_ms - at >= window_ms)
        {
            self.samples.pop_front();
        }
        let oldest = self.samples.front().map_or(total, |&(_, v)| v);
        total.saturating_sub(oldest)
    }
}

#[cfg(test)]
mod tests;
