//! The alert state machine, sans-IO: what the rules found true at one moment goes in, the
//! changes worth telling someone come out. Time is injected (wall-clock ms).
//!
//! Per alert (kind and subject): a condition seen true becomes *pending*; once it has been
//! true for its kind's `raise_after` it *fires* (a `Raised` change). A firing alert whose
//! severity rises says so (`Escalated`); one still firing `repeat_after` after it was last
//! sent is sent again (`Reminder`). A firing alert whose condition is gone is *clearing*, and
//! is `Resolved` once it stayed gone for `clear_after`; seen again meanwhile, it is simply
//! firing still (hysteresis: no flapping). A pending condition that goes away leaves no trace.
//! A kind the rules could not evaluate this time (its data unreadable) is *unknown*: its
//! alerts stay as they are, neither raised nor resolved on missing data.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use callfleet_store::{AlertKind, Severity};

/// What identifies an alert: its kind and what it is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub kind: AlertKind,
    /// A node name, `node what` for node-local alerts about one thing, a queue, a carrier.
    pub subject: String,
}

impl Key {
    pub fn new(kind: AlertKind, subject: impl Into<String>) -> Self {
        Self {
            kind,
            subject: subject.into(),
        }
    }
}

/// A condition a rule found true now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub key: Key,
    /// The node it is about (`None` for a queue or a carrier).
    pub node: Option<String>,
    pub severity: Severity,
    /// One line for a human.
    pub message: String,
}

/// What one evaluation of the rules saw.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    /// Kinds whose data could be read: for these, an alert not among `conditions` is clear.
    pub known: BTreeSet<AlertKind>,
    pub conditions: Vec<Condition>,
}

impl Observation {
    /// `kind` was read: these are its conditions now (none: clear).
    pub fn add(&mut self, kind: AlertKind, conditions: impl IntoIterator<Item = Condition>) {
        self.known.insert(kind);
        self.conditions.extend(conditions);
    }
}

/// What happened to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    Raised,
    Escalated,
    Reminder,
    Resolved,
}

/// One change, with the alert as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub change: Change,
    pub key: Key,
    pub node: Option<String>,
    pub severity: Severity,
    pub message: String,
    /// When the condition was first seen (or, for an adopted alert, raised).
    pub since_ms: i64,
}

/// An alert firing (or clearing) now, as [`Engine::firing`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing<'a> {
    pub key: &'a Key,
    pub node: Option<&'a str>,
    pub severity: Severity,
    pub message: &'a str,
    pub since_ms: i64,
}

/// How long conditions must hold and stay gone.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Per kind; a kind not listed fires at once.
    pub raise_after: BTreeMap<AlertKind, Duration>,
    pub clear_after: Duration,
    /// Zero: no reminders.
    pub repeat_after: Duration,
}

impl Timing {
    fn raise_after_ms(&self, kind: AlertKind) -> i64 {
        self.raise_after.get(&kind).copied().map_or(0, ms)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Pending,
    Firing {
        last_sent_ms: i64,
    },
    Clearing {
        last_sent_ms: i64,
        gone_since_ms: i64,
    },
}

#[derive(Debug, Clone)]
struct Tracked {
    phase: Phase,
    /// Condition first seen.
    since_ms: i64,
    node: Option<String>,
    severity: Severity,
    message: String,
}

/// Every alert this node tracks.
#[derive(Debug, Clone)]
pub struct Engine {
    timing: Timing,
    alerts: BTreeMap<Key, Tracked>,
}

impl Engine {
    pub fn new(timing: Timing) -> Self {
        Self {
            timing,
            alerts: BTreeMap::new(),
        }
    }

    /// Takes up an alert notified earlier (by this node before a restart, or by another
    /// node) as firing and sent at `now_ms`; an alert already tracked is left as it is.
    pub fn adopt(&mut self, condition: Condition, since_ms: i64, now_ms: i64) {
        self.alerts.entry(condition.key).or_insert_with(|| Tracked {
            phase: Phase::Firing {
                last_sent_ms: now_ms,
            },
            since_ms,
            node: condition.node,
            severity: condition.severity,
            message: condition.message,
        });
    }

    /// Whether `key` is tracked at all (pending, firing or clearing).
    pub fn tracks(&self, key: &Key) -> bool {
        self.alerts.contains_key(key)
    }

    /// The severity `key` fires with now, if it fires (or clears): rules use it for
    /// hysteresis on their thresholds.
    pub fn firing_severity(&self, key: &Key) -> Option<Severity> {
        self.alerts
            .get(key)
            .filter(|t| t.phase != Phase::Pending)
            .map(|t| t.severity)
    }

    /// Alerts firing or clearing now, by key.
    pub fn firing(&self) -> impl Iterator<Item = Firing<'_>> {
        self.alerts
            .iter()
            .filter(|(_, t)| t.phase != Phase::Pending)
            .map(|(key, t)| Firing {
                key,
                node: t.node.as_deref(),
                severity: t.severity,
                message: &t.message,
                since_ms: t.since_ms,
            })
    }

    /// Folds in one evaluation at `now_ms`; returns the changes, by key.
    pub fn step(&mut self, now_ms: i64, seen: &Observation) -> Vec<Transition> {
        let mut out = Vec::new();
        let mut present: BTreeSet<&Key> = BTreeSet::new();
        for cond in &seen.conditions {
            present.insert(&cond.key);
            let raise_ms = self.timing.raise_after_ms(cond.key.kind);
            let repeat_ms = ms(self.timing.repeat_after);
            let tracked = self
                .alerts
                .entry(cond.key.clone())
                .or_insert_with(|| Tracked {
                    phase: Phase::Pending,
                    since_ms: now_ms,
                    node: cond.node.clone(),
                    severity: cond.severity,
                    message: cond.message.clone(),
                });
            let rose = cond.severity > tracked.severity;
            tracked.node.clone_from(&cond.node);
            tracked.severity = cond.severity;
            tracked.message.clone_from(&cond.message);
            let change = match tracked.phase {
                Phase::Pending if now_ms - tracked.since_ms >= raise_ms => {
                    tracked.phase = Phase::Firing {
                        last_sent_ms: now_ms,
                    };
                    Some(Change::Raised)
                }
                Phase::Pending => None,
                Phase::Firing { last_sent_ms } | Phase::Clearing { last_sent_ms, .. } => {
                    let (change, sent) = if rose {
                        (Some(Change::Escalated), now_ms)
                    } else if repeat_ms > 0 && now_ms - last_sent_ms >= repeat_ms {
                        (Some(Change::Reminder), now_ms)
                    } else {
                        (None, last_sent_ms)
                    };
                    tracked.phase = Phase::Firing { last_sent_ms: sent };
                    change
                }
            };
            if let Some(change) = change {
                out.push(transition(change, &cond.key, tracked));
            }
        }
        let clear_ms = ms(self.timing.clear_after);
        let mut resolved = Vec::new();
        for (key, tracked) in self.alerts.iter_mut() {
            if present.contains(key) || !seen.known.contains(&key.kind) {
                continue;
            }
            match tracked.phase {
                Phase::Pending => resolved.push((key.clone(), false)),
                Phase::Firing { last_sent_ms } => {
                    tracked.phase = Phase::Clearing {
                        last_sent_ms,
                        gone_since_ms: now_ms,
                    };
                    if clear_ms == 0 {
                        resolved.push((key.clone(), true));
                    }
                }
                Phase::Clearing { gone_since_ms, .. } => {
                    if now_ms - gone_since_ms >= clear_ms {
                        resolved.push((key.clone(), true));
                    }
                }
            }
        }
        for (key, tell) in resolved {
            if let Some(tracked) = self.alerts.remove(&key) {
                if tell {
                    out.push(transition(Change::Resolved, &key, &tracked));
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }
}

fn transition(change: Change, key: &Key, t: &Tracked) -> Transition {
    Transition {
        change,
        key: key.clone(),
        node: t.node.clone(),
        severity: t.severity,
        message: t.message.clone(),
        since_ms: t.since_ms,
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
