//! Load shedding's metrics:
//!
//! | metric                            | type    | labels                       |
//! |-----------------------------------|---------|------------------------------|
//! | `callfleet_shed_level`            | gauge   |                              |
//! | `callfleet_shed_level_changes_total` | counter |                           |
//! | `callfleet_shed_actions_total`    | counter | `action` ([`ShedAction`])    |

use std::fmt;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// What a busy node did instead of the work asked of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShedAction {
    /// A heavy report request was sent to an idle node (307).
    ReportRedirected,
    /// A heavy report request was refused (503): no idle node, or it was already sent here.
    ReportRefused,
    /// A background job was not picked up (it waits for the level to fall).
    BackgroundDeferred,
}

impl ShedAction {
    /// Every action, in label order.
    pub const ALL: [ShedAction; 3] = [
        ShedAction::ReportRedirected,
        ShedAction::ReportRefused,
        ShedAction::BackgroundDeferred,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ShedAction::ReportRedirected => "report_redirected",
            ShedAction::ReportRefused => "report_refused",
            ShedAction::BackgroundDeferred => "background_deferred",
        }
    }
}

impl EncodeLabelValue for ShedAction {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        fmt::Write::write_str(encoder, self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ActionLabels {
    action: ShedAction,
}

/// The handles, registered once by `ShedMetrics::register`.
#[derive(Debug, Default)]
pub struct ShedMetrics {
    level: Gauge,
    changes: Counter,
    actions: Family<ActionLabels, Counter>,
}

impl ShedMetrics {
    pub(super) fn register(&self, r: &mut Registry) {
        for action in ShedAction::ALL {
            self.actions.get_or_create_owned(&ActionLabels { action });
        }
        r.register(
            "shed_level",
            "This node's shed level: 0 normal, 1 heavy reports sent elsewhere, 2 background work deferred, 3 new calls refused",
            self.level.clone(),
        );
        r.register(
            "shed_level_changes",
            "Changes of this node's shed level",
            self.changes.clone(),
        );
        r.register(
            "shed_actions",
            "Work this node shed, by what it did instead",
            self.actions.clone(),
        );
    }

    /// The level is now `level`; `changed`: it was another one before.
    pub fn set_level(&self, level: u8, changed: bool) {
        self.level.set(i64::from(level));
        if changed {
            self.changes.inc();
        }
    }

    /// Counts one shed action.
    pub fn action(&self, action: ShedAction) {
        self.actions.get_or_create(&ActionLabels { action }).inc();
    }
}
