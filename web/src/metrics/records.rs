//! The call records' metrics (the node's record writer and its spool):
//!
//! | metric                                   | type    | labels                          |
//! |------------------------------------------|---------|---------------------------------|
//! | `callfleet_record_spool_bytes`           | gauge   |                                 |
//! | `callfleet_record_spool_capacity_bytes`  | gauge   |                                 |
//! | `callfleet_record_spool_records`         | gauge   |                                 |
//! | `callfleet_records_total`                | counter | `outcome` ([`RecordOutcome`])   |
//!
//! The spool bytes are those of records not yet in the database (every record passes
//! through the spool; it empties whenever the database keeps up).

use std::fmt;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// What became of one call record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordOutcome {
    /// Written to the database.
    Written,
    /// The database already held it (a replay after a crash or a lost answer): not written
    /// twice.
    Duplicate,
    /// The database refused it for good (a constraint or data error): logged with the
    /// record, and the records behind it went on.
    Rejected,
    /// The spool was full: logged with the record, never written.
    Dropped,
}

impl RecordOutcome {
    /// Every outcome, in label order.
    pub const ALL: [RecordOutcome; 4] = [
        RecordOutcome::Written,
        RecordOutcome::Duplicate,
        RecordOutcome::Rejected,
        RecordOutcome::Dropped,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordOutcome::Written => "written",
            RecordOutcome::Duplicate => "duplicate",
            RecordOutcome::Rejected => "rejected",
            RecordOutcome::Dropped => "dropped",
        }
    }
}

impl EncodeLabelValue for RecordOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        fmt::Write::write_str(encoder, self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: RecordOutcome,
}

/// The handles, registered once by `RecordMetrics::register`.
#[derive(Debug, Default)]
pub struct RecordMetrics {
    spool_bytes: Gauge,
    spool_capacity: Gauge,
    spool_records: Gauge,
    records: Family<OutcomeLabels, Counter>,
}

impl RecordMetrics {
    pub(super) fn register(&self, r: &mut Registry) {
        for outcome in RecordOutcome::ALL {
            self.records.get_or_create_owned(&OutcomeLabels { outcome });
        }
        r.register(
            "record_spool_bytes",
            "Bytes of call records in the on-disk spool, not yet in the database",
            self.spool_bytes.clone(),
        );
        r.register(
            "record_spool_capacity_bytes",
            "Most bytes the record spool may hold (records.spool_max_mb)",
            self.spool_capacity.clone(),
        );
        r.register(
            "record_spool_records",
            "Call records in the on-disk spool, not yet in the database",
            self.spool_records.clone(),
        );
        r.register(
            "records",
            "Call records by what became of them",
            self.records.clone(),
        );
    }

    /// The spool holds `records` records in `bytes` of at most `capacity`.
    pub fn set_spool(&self, bytes: u64, records: u64, capacity: u64) {
        let g = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.spool_bytes.set(g(bytes));
        self.spool_records.set(g(records));
        self.spool_capacity.set(g(capacity));
    }

    /// Counts one record and what became of it.
    pub fn record(&self, outcome: RecordOutcome) {
        self.records.get_or_create(&OutcomeLabels { outcome }).inc();
    }
}
