//! Delivery of alert notifications: what one message says ([`Batch`], the webhook's JSON and
//! the e-mail's text), and the [`Outbox`] that hands each batch to every channel (e-mail,
//! each webhook), each on its own task and queue, retried with backoff, so a dead webhook never
//! delays the e-mail.
//!
//! A batch groups what one node tells at one evaluation: alerts raised, escalated, reminded
//! or resolved together go out as one e-mail and one POST per webhook.

mod email;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use callfleet_store::{AlertKind, Severity};
use callfleet_web::metrics::alerts::{AlertChannel, Delivery};
use callfleet_web::Metrics;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::engine::{Change, Transition};
use crate::config::AlertsSection;

pub use webhook::{signature, SIGNATURE_HEADER};

/// Batches waiting per channel; past this a channel that cannot keep up drops new batches
/// (logged and counted), never blocking the rules.
const QUEUE: usize = 64;
/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Whether an alert fires or ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Firing,
    Resolved,
}

/// One alert in a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub status: Status,
    /// `raised`, `escalated`, `reminder` or `resolved`.
    pub change: &'static str,
    pub kind: AlertKind,
    pub subject: String,
    pub node: Option<String>,
    pub severity: Severity,
    pub message: String,
    /// When the condition was first seen, ms since the UNIX epoch.
    pub since_ms: i64,
    /// When it was resolved (for `resolved`).
    pub ended_at_ms: Option<i64>,
}

impl Notice {
    /// The notice telling `t` at `now_ms`.
    pub fn from_transition(t: &Transition, now_ms: i64) -> Self {
        let (status, change) = match t.change {
            Change::Raised => (Status::Firing, "raised"),
            Change::Escalated => (Status::Firing, "escalated"),
            Change::Reminder => (Status::Firing, "reminder"),
            Change::Resolved => (Status::Resolved, "resolved"),
        };
        Self {
            status,
            change,
            kind: t.key.kind,
            subject: t.key.subject.clone(),
            node: t.node.clone(),
            severity: t.severity,
            message: t.message.clone(),
            since_ms: t.since_ms,
            ended_at_ms: (status == Status::Resolved).then_some(now_ms),
        }
    }
}

/// One message: the webhook's JSON body as it is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Batch {
    /// Always `callfleet`.
    pub source: &'static str,
    /// The node that sent it.
    pub sent_by: String,
    pub sent_at_ms: i64,
    pub alerts: Vec<Notice>,
}

impl Batch {
    pub fn new(sent_by: &str, sent_at_ms: i64, alerts: Vec<Notice>) -> Self {
        Self {
            source: "callfleet",
            sent_by: sent_by.to_owned(),
            sent_at_ms,
            alerts,
        }
    }

    /// The notices at or above `min`, or `None` when none is.
    pub fn at_least(&self, min: Severity) -> Option<Batch> {
        let alerts: Vec<Notice> = self
            .alerts
            .iter()
            .filter(|n| n.severity >= min)
            .cloned()
            .collect();
        (!alerts.is_empty()).then(|| Batch {
            alerts,
            ..self.clone()
        })
    }
}

/// Wait before attempt `attempt + 1` after `attempt` failed (1 s, 2 s, 4 s ... 30 s).
pub fn backoff(attempt: u32) -> Duration {
    let secs = 1u64 << attempt.saturating_sub(1).min(16);
    Duration::from_secs(secs).min(MAX_BACKOFF)
}

/// Why one attempt failed, and whether another may succeed.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub message: String,
    /// A timeout, a refused connection, a 5xx: try again. A 4xx, a refused recipient: don't.
    pub retry: bool,
}

/// One way out: the e-mail relay, or one webhook.
enum Channel {
    Email(email::Mailer),
    Webhook(webhook::Hook),
}

impl Channel {
    fn kind(&self) -> AlertChannel {
        match self {
            Channel::Email(_) => AlertChannel::Email,
            Channel::Webhook(_) => AlertChannel::Webhook,
        }
    }

    fn name(&self) -> &'static str {
        self.kind().as_str()
    }

    fn min_severity(&self) -> Severity {
        match self {
            Channel::Email(m) => m.min_severity,
            Channel::Webhook(h) => h.min_severity,
        }
    }

    fn attempts(&self) -> u32 {
        match self {
            Channel::Email(m) => m.attempts,
            Channel::Webhook(h) => h.attempts,
        }
    }

    fn target(&self) -> String {
        match self {
            Channel::Email(m) => m.describe(),
            Channel::Webhook(h) => h.url.to_string(),
        }
    }

    async fn send(&self, batch: &Batch) -> Result<(), SendError> {
        match self {
            Channel::Email(m) => m.send(batch).await,
            Channel::Webhook(h) => h.send(batch).await,
        }
    }
}

/// Hands batches to every configured channel.
#[derive(Clone)]
pub struct Outbox {
    queues: Vec<(AlertChannel, String, mpsc::Sender<Arc<Batch>>)>,
    metrics: Metrics,
}

impl Outbox {
    /// Starts one task per channel of `cfg` (none configured: batches are only logged).
    pub fn start(
        cfg: &AlertsSection,
        metrics: Metrics,
        stop: CancellationToken,
    ) -> anyhow::Result<Outbox> {
        let mut channels = Vec::new();
        if let Some(mail) = &cfg.email {
            channels.push(Channel::Email(email::Mailer::new(mail)?));
        }
        for hook in &cfg.webhook {
            channels.push(Channel::Webhook(webhook::Hook::new(hook)?));
        }
        let mut queues = Vec::new();
        for channel in channels {
            let (tx, rx) = mpsc::channel(QUEUE);
            queues.push((channel.kind(), channel.target(), tx));
            tokio::spawn(drain(channel, rx, metrics.clone(), stop.clone()));
        }
        Ok(Outbox { queues, metrics })
    }

    /// Queues `batch` on every channel (at once, never waiting).
    pub fn send(&self, batch: Batch) {
        for notice in &batch.alerts {
            info!(
                kind = %notice.kind, subject = %notice.subject, severity = %notice.severity,
                change = notice.change, message = %notice.message, "alert"
            );
        }
        let batch = Arc::new(batch);
        for (kind, target, queue) in &self.queues {
            if queue.try_send(batch.clone()).is_err() {
                warn!(%target, "alert channel is backed up or stopped; notification dropped");
                self.metrics.alert_notification(*kind, Delivery::Dropped);
            }
        }
    }
}

/// Sends every batch that arrives on `rx` through `channel` until `stop`.
async fn drain(
    channel: Channel,
    mut rx: mpsc::Receiver<Arc<Batch>>,
    metrics: Metrics,
    stop: CancellationToken,
) {
    loop {
        let batch = tokio::select! {
            _ = stop.cancelled() => return,
            batch = rx.recv() => match batch {
                Some(batch) => batch,
                None => return,
            },
        };
        let Some(batch) = batch.at_least(channel.min_severity()) else {
            continue;
        };
        let outcome = tokio::select! {
            _ = stop.cancelled() => return,
            outcome = deliver(&channel, &batch) => outcome,
        };
        metrics.alert_notification(channel.kind(), outcome);
    }
}

/// Attempts `batch` on `channel` with backoff.
async fn deliver(channel: &Channel, batch: &Batch) -> Delivery {
    let attempts = channel.attempts().max(1);
    for attempt in 1..=attempts {
        match channel.send(batch).await {
            Ok(()) => {
                info!(channel = channel.name(), target = %channel.target(), alerts = batch.alerts.len(), attempt, "alert notification sent");
                return Delivery::Sent;
            }
            Err(e) if e.retry && attempt < attempts => {
                warn!(channel = channel.name(), target = %channel.target(), attempt, error = %e, "alert notification failed; retrying");
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err(e) => {
                warn!(channel = channel.name(), target = %channel.target(), attempt, error = %e, "alert notification given up");
                return Delivery::Failed;
            }
        }
    }
    Delivery::Failed
}

#[cfg(test)]
mod tests;
