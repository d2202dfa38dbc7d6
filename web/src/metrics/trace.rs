//! The SIP trace's metrics (the node's capture, collector and chunk writer):
//!
//! | metric                              | type    | labels                              |
//! |-------------------------------------|---------|-------------------------------------|
//! | `callfleet_sip_trace_messages_total`| counter | `outcome` ([`TraceOutcome`])        |
//! | `callfleet_sip_trace_chunks_total`  | counter | `outcome` ([`ChunkOutcome`])        |

use std::fmt;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// What became of one captured SIP message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TraceOutcome {
    /// Kept with its call.
    Kept,
    /// The capture queue was full: never looked at.
    Dropped,
    /// Of no call (a REGISTER, an OPTIONS, a refused INVITE): not kept.
    Unmatched,
    /// Its call's trace had reached `trace.max_call_mb`: left out.
    Cut,
}

impl TraceOutcome {
    /// Every outcome, in label order.
    pub const ALL: [TraceOutcome; 4] = [
        TraceOutcome::Kept,
        TraceOutcome::Dropped,
        TraceOutcome::Unmatched,
        TraceOutcome::Cut,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            TraceOutcome::Kept => "kept",
            TraceOutcome::Dropped => "dropped",
            TraceOutcome::Unmatched => "unmatched",
            TraceOutcome::Cut => "cut",
        }
    }
}

/// What became of one chunk of a call's trace on its way to the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChunkOutcome {
    /// Inserted into `sip_trace`.
    Written,
    /// The database already held it (a retried write).
    Duplicate,
    /// Given up (refused by the database, or the writer's queue was full).
    Lost,
}

impl ChunkOutcome {
    /// Every outcome, in label order.
    pub const ALL: [ChunkOutcome; 3] = [
        ChunkOutcome::Written,
        ChunkOutcome::Duplicate,
        ChunkOutcome::Lost,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ChunkOutcome::Written => "written",
            ChunkOutcome::Duplicate => "duplicate",
            ChunkOutcome::Lost => "lost",
        }
    }
}

impl EncodeLabelValue for TraceOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        fmt::Write::write_str(encoder, self.as_str())
    }
}

impl EncodeLabelValue for ChunkOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        fmt::Write::write_str(encoder, self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct MessageLabels {
    outcome: TraceOutcome,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ChunkLabels {
    outcome: ChunkOutcome,
}

/// The handles, registered once by `TraceMetrics::register`.
#[derive(Debug, Default)]
pub struct TraceMetrics {
    messages: Family<MessageLabels, Counter>,
    chunks: Family<ChunkLabels, Counter>,
}

impl TraceMetrics {
    pub(super) fn register(&self, r: &mut Registry) {
        for outcome in TraceOutcome::ALL {
            self.messages
                .get_or_create_owned(&MessageLabels { outcome });
        }
        for outcome in ChunkOutcome::ALL {
            self.chunks.get_or_create_owned(&ChunkLabels { outcome });
        }
        r.register(
            "sip_trace_messages",
            "Captured SIP messages by what became of them in the calls' traces",
            self.messages.clone(),
        );
        r.register(
            "sip_trace_chunks",
            "Chunks of calls' SIP traces by what became of them on the way to the database",
            self.chunks.clone(),
        );
    }

    /// Counts `n` messages with this outcome.
    pub fn messages(&self, outcome: TraceOutcome, n: u64) {
        if n > 0 {
            self.messages
                .get_or_create(&MessageLabels { outcome })
                .inc_by(n);
        }
    }

    /// Counts one chunk with this outcome.
    pub fn chunk(&self, outcome: ChunkOutcome) {
        self.chunks.get_or_create(&ChunkLabels { outcome }).inc();
    }
}
