//! [`Metrics`]: the node's Prometheus registry and the typed helpers hot paths increment.
//!
//! Every metric is registered once, in [`Metrics::new`], under the `callfleet_` prefix:
//!
//! | metric                                      | type      | labels                  |
//! |---------------------------------------------|-----------|-------------------------|
//! | `callfleet_calls_active`                    | gauge     |                         |
//! | `callfleet_calls_total`                     | counter   | `outcome` ([`Outcome`]) |
//! | `callfleet_redirects_total`                 | counter   | `target` (node name)    |
//! | `callfleet_peers_down`                      | gauge     |                         |
//! | `callfleet_peer_exclusions_total`           | counter   | `target` (node name)    |
//! | `callfleet_sip_requests_total`              | counter   | `method` ([`SipMethod`])|
//! | `callfleet_sip_responses_total`             | counter   | `status` (SIP code)     |
//! | `callfleet_sip_malformed_total`             | counter   |                         |
//! | `callfleet_heartbeat_write_seconds`         | histogram | 1 ms .. 1.024 s buckets |
//! | `callfleet_heartbeat_write_errors_total`    | counter   |                         |
//! | `callfleet_panel_snapshot_reads_total`      | counter   |                         |
//! | `callfleet_panel_snapshot_read_errors_total`| counter   |                         |
//! | `callfleet_panel_viewers`                   | gauge     |                         |
//! | `callfleet_agents`                          | gauge     | `state` (agent state)   |
//! | `callfleet_queue_waiting`                   | gauge     | `queue`                 |
//! | `callfleet_queue_longest_wait_seconds`      | gauge     | `queue`                 |
//! | `callfleet_queue_agents`                    | gauge     | `queue`, `state`        |
//!
//! the defences' counters of [`guard`] (wrong credentials, bans, ignored RTP, full
//! mailboxes), reached through [`Metrics::guard`], the SIP TCP listener's of [`tcp`]
//! (connections open, refused by a cap), reached through [`Metrics::tcp`], the alerts' metrics
//! of [`alerts`] (alerts firing, notifications sent), the RTP quality histograms of
//! [`media`] (loss and jitter per call leg), reached through [`Metrics::media`], load
//! shedding's level and actions of [`shed`], reached through [`Metrics::shed`], and the
//! recordings' and background jobs' counters of [`recordings`], through [`Metrics::recordings`].
//!
//! The agent and queue gauges are the cluster as the panel snapshot last read it (the same
//! numbers on every node); queue labels are the configured queues, and a queue deleted from
//! the configuration disappears from the gauges.
//!
//! Label sets with a closed set of values are created up front, so they are exported at 0 before
//! the first event, and an increment is a read lock, a hash lookup and an atomic add: no
//! allocation. Only [`Metrics::redirect`] allocates (the node name), once per redirect.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use callfleet_store::AgentState;

pub mod guard;

use guard::GuardMetrics;
pub mod alerts;
pub mod media;
pub mod recordings;
pub mod tcp;

use tcp::TcpMetrics;

use alerts::{AlertChannel, AlertMetrics, Delivery};
pub mod records;
pub mod shed;
pub mod trace;

use media::MediaMetrics;
use records::RecordMetrics;
use shed::ShedMetrics;
use trace::TraceMetrics;

/// Heartbeat write buckets: 1 ms doubling up to 1.024 s (powers of two keep the bounds exact).
const HEARTBEAT_BUCKETS: u16 = 11;

/// How a call ended, as counted by `callfleet_calls_total{outcome}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Answered by this node.
    Answered,
    /// Sent to another node with a 302.
    Redirected,
    /// Refused for load (no node could take it).
    Refused,
    /// Cancelled by the caller before it was answered.
    Cancelled,
    /// Failed inside the node (media, transport...).
    Failed,
    /// Rejected because the source is not an allowed carrier.
    Forbidden,
}

impl Outcome {
    /// Every outcome, in a fixed order.
    pub const ALL: [Outcome; 6] = [
        Outcome::Answered,
        Outcome::Redirected,
        Outcome::Refused,
        Outcome::Cancelled,
        Outcome::Failed,
        Outcome::Forbidden,
    ];

    /// The label value, lower case.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Redirected => "redirected",
            Outcome::Refused => "refused",
            Outcome::Cancelled => "cancelled",
            Outcome::Failed => "failed",
            Outcome::Forbidden => "forbidden",
        }
    }
}

impl EncodeLabelValue for Outcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        fmt::Write::write_str(encoder, self.as_str())
    }
}

/// A SIP request method as a bounded label: methods we do not name are counted as `other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SipMethod {
    /// `INVITE`
    Invite,
    /// `ACK`
    Ack,
    /// `BYE`
    Bye,
    /// `CANCEL`
    Cancel,
    /// `OPTIONS`
    Options,
    /// `REGISTER`
    Register,
    /// Any other method, valid or not.
    Other,
}

impl SipMethod {
    /// Every label value, in a fixed order.
    pub const ALL: [SipMethod; 7] = [
        SipMethod::Invite,
        SipMethod::Ack,
        SipMethod::Bye,
        SipMethod::Cancel,
        SipMethod::Options,
        SipMethod::Register,
        SipMethod::Other,
    ];

    /// Classifies a method token; SIP methods are case-sensitive (RFC 3261 section 7.1).
    pub fn from_name(name: &str) -> Self {
        match name {
            "INVITE" => SipMethod::Invite,
            "ACK" => SipMethod::Ack,
            "BYE" => SipMethod::Bye,
            "CANCEL" => SipMethod::Cancel,
            "OPTIONS" => SipMethod::Options,
            "REGISTER" => SipMethod::Register,
            _ => SipMethod::Other,
        }
    }

    /// The label value: the method token, or `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            SipMethod::Invite => "INVITE",
            SipMethod::Ack => "ACK",
            SipMethod::Bye => "BYE",
            SipMethod::Cancel => "CANCEL",
            SipMethod::Options => "OPTIONS",
            SipMethod::Register => "REGISTER",
            SipMethod::Other => "other",
        }
    }
}

impl EncodeLabelValue for SipMethod {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        fmt::Write::write_str(encoder, self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: Outcome,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TargetLabels {
    target: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct MethodLabels {
    method: SipMethod,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StatusLabels {
    status: u16,
}

/// An agent state as a label value (the closed set of [`AgentState::ALL`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct StateLabel(AgentState);

impl EncodeLabelValue for StateLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        fmt::Write::write_str(encoder, self.0.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StateLabels {
    state: StateLabel,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct QueueLabels {
    queue: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct QueueStateLabels {
    queue: String,
    state: StateLabel,
}

/// One queue's gauges, as [`Metrics::set_queues`] takes them.
#[derive(Clone, Debug)]
pub struct QueueGauges<'a> {
    /// Queue name (from the configuration).
    pub queue: &'a str,
    /// Calls waiting or being offered.
    pub waiting: i64,
    /// Wait of the longest-waiting call (zero when none waits).
    pub longest_wait: Duration,
    /// Member agents per state, in [`AgentState::ALL`] order.
    pub agents: [i64; 7],
}

/// The node's metrics: a cheap handle (one `Arc`) to clone into every task.
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

/// The registry owns a clone of every handle below; the handles share their atomics with it.
#[derive(Debug)]
struct Inner {
    registry: Registry,
    calls_active: Gauge,
    calls: Family<OutcomeLabels, Counter>,
    redirects: Family<TargetLabels, Counter>,
    peers_down: Gauge,
    peer_exclusions: Family<TargetLabels, Counter>,
    sip_requests: Family<MethodLabels, Counter>,
    sip_responses: Family<StatusLabels, Counter>,
    sip_malformed: Counter,
    heartbeat_write: Histogram,
    heartbeat_write_errors: Counter,
    panel_reads: Counter,
    panel_read_errors: Counter,
    panel_viewers: Gauge,
    agents: Family<StateLabels, Gauge>,
    queue_waiting: Family<QueueLabels, Gauge>,
    queue_longest_wait: Family<QueueLabels, Gauge<f64, AtomicU64>>,
    queue_agents: Family<QueueStateLabels, Gauge>,
    /// Queues currently exported, so that deleted ones are removed.
    queues_exported: Mutex<BTreeSet<String>>,
    guard: GuardMetrics,
    tcp: TcpMetrics,
    alerts: AlertMetrics,
    records: RecordMetrics,
    media: MediaMetrics,
    recordings: recordings::RecordingMetrics,
    shed: ShedMetrics,
    trace: TraceMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered (and closed label sets at 0).
    pub fn new() -> Self {
        let inner = Inner {
            registry: Registry::with_prefix("callfleet"),
            calls_active: Gauge::default(),
            calls: Family::default(),
            redirects: Family::default(),
            peers_down: Gauge::default(),
            peer_exclusions: Family::default(),
            sip_requests: Family::default(),
            sip_responses: Family::default(),
            sip_malformed: Counter::default(),
            heartbeat_write: Histogram::new(exponential_buckets(0.001, 2.0, HEARTBEAT_BUCKETS)),
            heartbeat_write_errors: Counter::default(),
            panel_reads: Counter::default(),
            panel_read_errors: Counter::default(),
            panel_viewers: Gauge::default(),
            agents: Family::default(),
            queue_waiting: Family::default(),
            queue_longest_wait: Family::default(),
            queue_agents: Family::default(),
            queues_exported: Mutex::new(BTreeSet::new()),
            guard: GuardMetrics::new(),
            tcp: TcpMetrics::new(),
            alerts: AlertMetrics::default(),
            records: RecordMetrics::default(),
            media: MediaMetrics::new(),
            recordings: recordings::RecordingMetrics::default(),
            shed: ShedMetrics::default(),
            trace: TraceMetrics::default(),
        };
        for state in AgentState::ALL {
            inner.agents.get_or_create_owned(&StateLabels {
                state: StateLabel(state),
            });
        }
        for outcome in Outcome::ALL {
            inner.calls.get_or_create_owned(&OutcomeLabels { outcome });
        }
        for method in SipMethod::ALL {
            inner
                .sip_requests
                .get_or_create_owned(&MethodLabels { method });
        }
        Self {
            inner: Arc::new(inner.registered()),
        }
    }

    /// Sets the number of calls in progress on this node.
    pub fn set_calls_active(&self, calls: i64) {
        self.inner.calls_active.set(calls);
    }

    /// Counts one call ending (or being turned away) with `outcome`.
    pub fn call_outcome(&self, outcome: Outcome) {
        self.inner
            .calls
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Counts one call redirected to node `target`.
    pub fn redirect(&self, target: &str) {
        let labels = TargetLabels {
            target: target.to_owned(),
        };
        self.inner.redirects.get_or_create(&labels).inc();
    }

    /// Counts one peer excluded from redirects because it stopped answering probes.
    pub fn peer_excluded(&self, target: &str) {
        let labels = TargetLabels {
            target: target.to_owned(),
        };
        self.inner.peer_exclusions.get_or_create(&labels).inc();
    }

    /// Sets how many peers are excluded by probes right now.
    pub fn set_peers_down(&self, down: i64) {
        self.inner.peers_down.set(down);
    }

    /// Counts one SIP request received, by method token (see [`SipMethod::from_name`]).
    pub fn sip_request(&self, method: &str) {
        let method = SipMethod::from_name(method);
        self.inner
            .sip_requests
            .get_or_create(&MethodLabels { method })
            .inc();
    }

    /// Counts one SIP response sent; codes outside 100..=699 are counted as status `0`.
    pub fn sip_response(&self, status: u16) {
        let status = if (100..=699).contains(&status) {
            status
        } else {
            0
        };
        self.inner
            .sip_responses
            .get_or_create(&StatusLabels { status })
            .inc();
    }

    /// The defences' counters (wrong credentials, bans, ignored RTP, full mailboxes).
    pub fn guard(&self) -> &GuardMetrics {
        &self.inner.guard
    }

    /// The RTP quality histograms (loss and jitter per call leg).
    pub fn media(&self) -> &MediaMetrics {
        &self.inner.media
    }

    /// The SIP TCP listener's gauge and counters (connections open, refused by a cap).
    pub fn tcp(&self) -> &TcpMetrics {
        &self.inner.tcp
    }

    /// Counts one SIP message that could not be parsed.
    pub fn sip_malformed(&self) {
        self.inner.sip_malformed.inc();
    }

    /// Records how long one heartbeat write to the database took.
    pub fn heartbeat_written(&self, took: Duration) {
        self.inner.heartbeat_write.observe(took.as_secs_f64());
    }

    /// Counts one heartbeat write that failed.
    pub fn heartbeat_failed(&self) {
        self.inner.heartbeat_write_errors.inc();
    }

    /// Counts one read of the panel snapshot from the database, and whether it failed.
    pub fn panel_snapshot_read(&self, ok: bool) {
        self.inner.panel_reads.inc();
        if !ok {
            self.inner.panel_read_errors.inc();
        }
    }

    /// One more panel viewer (an open event stream); the guard counts it out when dropped.
    pub fn panel_viewer(&self) -> ViewerGuard {
        self.inner.panel_viewers.inc();
        ViewerGuard {
            metrics: self.clone(),
        }
    }

    /// Sets the number of agents in each state, in [`AgentState::ALL`] order.
    pub fn set_agents(&self, by_state: &[i64; 7]) {
        for (state, count) in AgentState::ALL.into_iter().zip(by_state) {
            self.inner
                .agents
                .get_or_create(&StateLabels {
                    state: StateLabel(state),
                })
                .set(*count);
        }
    }

    /// Sets the gauges of every configured queue; queues not in `queues` any more are removed.
    pub fn set_queues(&self, queues: &[QueueGauges<'_>]) {
        let inner = &self.inner;
        let mut exported = inner
            .queues_exported
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now: BTreeSet<String> = queues.iter().map(|q| q.queue.to_owned()).collect();
        for gone in exported.difference(&now) {
            let labels = QueueLabels {
                queue: gone.clone(),
            };
            inner.queue_waiting.remove(&labels);
            inner.queue_longest_wait.remove(&labels);
            for state in AgentState::ALL {
                inner.queue_agents.remove(&QueueStateLabels {
                    queue: gone.clone(),
                    state: StateLabel(state),
                });
            }
        }
        for q in queues {
            let labels = QueueLabels {
                queue: q.queue.to_owned(),
            };
            inner.queue_waiting.get_or_create(&labels).set(q.waiting);
            inner
                .queue_longest_wait
                .get_or_create(&labels)
                .set(q.longest_wait.as_secs_f64());
            for (state, count) in AgentState::ALL.into_iter().zip(&q.agents) {
                let labels = QueueStateLabels {
                    queue: q.queue.to_owned(),
                    state: StateLabel(state),
                };
                inner.queue_agents.get_or_create(&labels).set(*count);
            }
        }
        *exported = now;
    }

    /// Sets how many alerts this node's rules see firing, by severity.
    pub fn set_alerts_firing(&self, warning: i64, critical: i64) {
        self.inner.alerts.set_firing(warning, critical);
    }

    /// Counts one alert notification on `channel` and what became of it.
    pub fn alert_notification(&self, channel: AlertChannel, outcome: Delivery) {
        self.inner.alerts.notification(channel, outcome);
    }

    /// Load shedding's metrics (level, changes, actions).
    pub fn shed(&self) -> &ShedMetrics {
        &self.inner.shed
    }

    /// The call records' metrics (the record writer and its spool).
    pub fn records(&self) -> &RecordMetrics {
        &self.inner.records
    }

    /// The SIP trace's metrics (capture, collector, chunk writer).
    pub fn trace(&self) -> &TraceMetrics {
        &self.inner.trace
    }

    /// The recordings' and background jobs' metrics.
    pub fn recordings(&self) -> &recordings::RecordingMetrics {
        &self.inner.recordings
    }

    /// Bans started since this node did (a source or a subject shut out for wrong
    /// credentials, counted by [`GuardMetrics::auth_ban`]); the alert rule on bans reads it.
    pub fn bans(&self) -> u64 {
        self.inner.guard.bans_total()
    }

    /// The registry in the OpenMetrics text format (served with [`Metrics::CONTENT_TYPE`]).
    ///
    /// Only fails if a metric cannot be encoded, which our label types never do.
    pub fn encode(&self) -> Result<String, fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.inner.registry)?;
        Ok(out)
    }

    /// The content type of [`Metrics::encode`]'s output.
    pub const CONTENT_TYPE: &'static str =
        "application/openmetrics-text; version=1.0.0; charset=utf-8";
}

impl Inner {
    /// Registers a clone of every handle (counters get their `_total` suffix from the registry).
    fn registered(mut self) -> Self {
        self.register_calls();
        self.register_sip();
        self.register_panel();
        self.register_queues();
        let r = &mut self.registry;
        self.guard.register(r);
        self.tcp.register(r);
        self.alerts.register(r);
        self.records.register(r);
        self.media.register(r);
        self.recordings.register(r);
        self.shed.register(r);
        self.trace.register(r);
        self
    }

    /// Calls in progress and by outcome, redirects, and the peers calls are not sent to.
    fn register_calls(&mut self) {
        let r = &mut self.registry;
        r.register(
            "calls_active",
            "Calls in progress on this node",
            self.calls_active.clone(),
        );
        r.register("calls", "Calls by outcome", self.calls.clone());
        r.register(
            "redirects",
            "Calls redirected, by target node",
            self.redirects.clone(),
        );
        r.register(
            "peers_down",
            "Peers this node sends no calls to because they stopped answering its probes",
            self.peers_down.clone(),
        );
        r.register(
            "peer_exclusions",
            "Times a peer was excluded for missing probes, by peer",
            self.peer_exclusions.clone(),
        );
    }

    /// SIP requests, responses and malformed messages.
    fn register_sip(&mut self) {
        let r = &mut self.registry;
        r.register(
            "sip_requests",
            "SIP requests received, by method",
            self.sip_requests.clone(),
        );
        r.register(
            "sip_responses",
            "SIP responses sent, by status code",
            self.sip_responses.clone(),
        );
        r.register(
            "sip_malformed",
            "SIP messages that could not be parsed",
            self.sip_malformed.clone(),
        );
    }

    /// Heartbeat writes, and the panel's snapshot reads and viewers.
    fn register_panel(&mut self) {
        let r = &mut self.registry;
        r.register_with_unit(
            "heartbeat_write",
            "Time to write one heartbeat to the database",
            Unit::Seconds,
            self.heartbeat_write.clone(),
        );
        r.register(
            "heartbeat_write_errors",
            "Heartbeat writes that failed",
            self.heartbeat_write_errors.clone(),
        );
        r.register(
            "panel_snapshot_reads",
            "Reads of the panel snapshot from the database (about one per second)",
            self.panel_reads.clone(),
        );
        r.register(
            "panel_snapshot_read_errors",
            "Panel snapshot reads that failed (the last snapshot is shown as stale)",
            self.panel_read_errors.clone(),
        );
        r.register(
            "panel_viewers",
            "Open panel event streams on this node",
            self.panel_viewers.clone(),
        );
    }

    /// Agents by state, and each queue's waiting calls, longest wait and members.
    fn register_queues(&mut self) {
        let r = &mut self.registry;
        r.register(
            "agents",
            "Agents of the cluster by state",
            self.agents.clone(),
        );
        r.register(
            "queue_waiting",
            "Calls waiting in each queue (cluster-wide)",
            self.queue_waiting.clone(),
        );
        r.register_with_unit(
            "queue_longest_wait",
            "Wait of the longest-waiting call in each queue",
            Unit::Seconds,
            self.queue_longest_wait.clone(),
        );
        r.register(
            "queue_agents",
            "Member agents of each queue by state",
            self.queue_agents.clone(),
        );
    }
}

/// Counts a panel viewer while it lives (see [`Metrics::panel_viewer`]).
#[derive(Debug)]
pub struct ViewerGuard {
    metrics: Metrics,
}

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        self.metrics.inner.panel_viewers.dec();
    }
}

#[cfg(test)]
mod tests;
