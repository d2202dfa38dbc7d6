//! The alerts' metrics:
//!
//! | metric                                  | type    | labels                                 |
//! |-----------------------------------------|---------|----------------------------------------|
//! | `callfleet_alerts_firing`               | gauge   | `severity` (`warning`, `critical`)     |
//! | `callfleet_alert_notifications_total`   | counter | `channel` ([`AlertChannel`]), `outcome` ([`Delivery`]) |
//!
//! `callfleet_alerts_firing` is what this node's rules see firing (cluster-wide alerts on
//! every node, node-local ones on their node). The alert rule on bans reads
//! [`Metrics::bans`](super::Metrics::bans), the defences' count of bans since start.

use std::fmt;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Where a notification went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AlertChannel {
    /// SMTP.
    Email,
    /// An HTTP POST.
    Webhook,
}

/// What became of one notification on one channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// Accepted by the relay or the endpoint.
    Sent,
    /// Every attempt failed, or the endpoint refused it.
    Failed,
    /// The channel's queue was full: never attempted.
    Dropped,
}

impl AlertChannel {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertChannel::Email => "email",
            AlertChannel::Webhook => "webhook",
        }
    }
}

impl Delivery {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Sent => "sent",
            Delivery::Failed => "failed",
            Delivery::Dropped => "dropped",
        }
    }
}

impl EncodeLabelValue for AlertChannel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        fmt::Write::write_str(encoder, self.as_str())
    }
}

impl EncodeLabelValue for Delivery {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        fmt::Write::write_str(encoder, self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SeverityLabels {
    severity: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DeliveryLabels {
    channel: AlertChannel,
    outcome: Delivery,
}

/// The handles, registered once by [`AlertMetrics::register`].
#[derive(Debug, Default)]
pub(super) struct AlertMetrics {
    firing: Family<SeverityLabels, Gauge>,
    notifications: Family<DeliveryLabels, Counter>,
}

impl AlertMetrics {
    pub(super) fn register(&self, r: &mut Registry) {
        for severity in ["warning", "critical"] {
            self.firing
                .get_or_create_owned(&SeverityLabels { severity });
        }
        r.register(
            "alerts_firing",
            "Alerts this node's rules see firing, by severity",
            self.firing.clone(),
        );
        r.register(
            "alert_notifications",
            "Alert notifications by channel and outcome",
            self.notifications.clone(),
        );
    }

    pub(super) fn set_firing(&self, warning: i64, critical: i64) {
        self.firing
            .get_or_create(&SeverityLabels {
                severity: "warning",
            })
            .set(warning);
        self.firing
            .get_or_create(&SeverityLabels {
                severity: "critical",
            })
            .set(critical);
    }

    pub(super) fn notification(&self, channel: AlertChannel, outcome: Delivery) {
        self.notifications
            .get_or_create(&DeliveryLabels { channel, outcome })
            .inc();
    }
}
