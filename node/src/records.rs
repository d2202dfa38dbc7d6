//! Call records written to SQL off the call path: live-call rows, CDRs, queue events,
//! voicemails, recordings and the legs' RTP quality go through a channel to one writer task, so a slow or dead database never delays
//! a call.
//!
//! Every record goes through the node's on-disk spool first (see [`spool`]): the writer
//! appends what arrived since its last turn as one batch, makes it durable (`fdatasync`),
//! then replays the spool to the database in order and moves the spool's head past what the
//! database took. While the database is unreachable the spool grows (bounded by
//! `records.spool_max_mb`, logged and in metrics as it fills) and the writer retries every
//! second; a node killed meanwhile replays its spool when it starts again, before anything
//! else. Every record carries a key of its own (a CDR its call's, a queue event one given
//! here, a voicemail its file), and the database stores a key once: a record replayed twice
//! is stored once.
//!
//! A write that fails is retried only when the failure is transient (the database cannot be
//! reached, see [`StoreError::is_transient`], or answers nothing within [`WRITE_TIMEOUT`]).
//! Any other failure is the record's own (a constraint or a value the schema refuses): it is
//! logged with the record, counted, and the records behind it go on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use callfleet_store::{
    Cdr, LegQualityRow, LiveCall, NewJob, QueueEvent, RecordingRow, Store, StoreError, Voicemail,
};
use callfleet_web::metrics::records::RecordOutcome;
use callfleet_web::Metrics;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::error;

use crate::alerts::SpoolGauge;

pub mod frame;
pub mod spool;
mod writer;

pub use spool::{Spool, SpoolError};

/// One write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Record {
    Live(LiveCall),
    Answered {
        call_id: String,
        at_ms: i64,
    },
    Gone {
        call_id: String,
    },
    Cdr(Cdr),
    QueueEvent(QueueEvent),
    Voicemail(Voicemail),
    /// A queued call left the cluster queue (its entry row is deleted; deleting it again
    /// changes nothing).
    EntryGone {
        id: i64,
    },
    /// One call leg's RTP quality (an upsert keyed by node, Call-ID, call start and leg:
    /// written twice, stored once).
    Quality(LegQualityRow),
    /// A call's recording, with the job that converts it (stored with the row, in one
    /// transaction, only when the row is new: keyed by the recording's `uid`).
    Recording {
        row: RecordingRow,
        job: Option<NewJob>,
    },
}

/// Longest wait for the database's answer to one write; past it the write counts as failed
/// for a transient reason (it is retried; if it was in fact stored, its key says so).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between attempts while the database is unreachable.
pub const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Sends records to the writer; cheap to clone.
#[derive(Debug, Clone)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Record>,
    keys: Arc<Keys>,
}

/// Gives queue events (and CDRs sent without one) their keys: `<node>/<generation>/...`,
/// unique in the cluster (node names are, and a generation is the start time of a run).
#[derive(Debug)]
struct Keys {
    prefix: String,
    next: AtomicU64,
}

impl Recorder {
    /// Queues `r` for the database (it reaches the spool within the writer's next turn).
    pub fn send(&self, mut r: Record) {
        let key = |tag: &str| {
            let n = self.keys.next.fetch_add(1, Ordering::Relaxed);
            Some(format!("{}/{tag}{n}", self.keys.prefix))
        };
        match &mut r {
            Record::QueueEvent(e) if e.uid.is_none() => e.uid = key("q"),
            Record::Cdr(c) if c.uid.is_none() => c.uid = key("c"),
            _ => {}
        }
        if self.tx.send(r).is_err() {
            error!("record writer has stopped; a call record is lost");
        }
    }

    /// The key of the CDR of call number `call_uid` of this run.
    pub fn cdr_key(&self, call_uid: u64) -> String {
        format!("{}/{call_uid}", self.keys.prefix)
    }
}

/// Where the writer reports.
#[derive(Debug, Clone)]
pub struct Reports {
    pub metrics: Metrics,
    pub gauge: Arc<SpoolGauge>,
}

/// What the writer needs.
pub struct Setup {
    pub store: Store,
    pub node: String,
    pub generation: i64,
    pub spool: Spool,
    pub reports: Reports,
}

/// Replays what an earlier run left in the spool (until it is empty or the database cannot
/// be reached), then starts the writer; it drains its queue into the spool, and the spool
/// into the database as far as it can, before returning once `stop` is cancelled.
pub async fn start(
    setup: Setup,
    stop: CancellationToken,
) -> (Recorder, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let keys = Arc::new(Keys {
        prefix: format!("{}/{}", setup.node, setup.generation),
        next: AtomicU64::new(0),
    });
    let mut w = writer::Writer::new(setup.store, setup.node, setup.spool, setup.reports);
    w.replay_left_over().await;
    let task = tokio::spawn(w.run(rx, stop));
    (Recorder { tx, keys }, task)
}

/// What one write came to.
#[derive(Debug)]
enum Failure {
    /// The database could not be reached, or did not answer in time: retry later.
    Transient(String),
    /// The database refused this record: report it and go on.
    Permanent(StoreError),
}

/// Writes `r`; a failure the store cannot call transient is checked with a ping, so that a
/// database going away mid-write is never taken for a bad record.
async fn write(store: &Store, node: &str, r: &Record) -> Result<RecordOutcome, Failure> {
    let res = tokio::time::timeout(WRITE_TIMEOUT, write_once(store, node, r)).await;
    match res {
        Err(_) => Err(Failure::Transient(format!(
            "no answer within {WRITE_TIMEOUT:?}"
        ))),
        Ok(Ok(true)) => Ok(RecordOutcome::Written),
        Ok(Ok(false)) => Ok(RecordOutcome::Duplicate),
        Ok(Err(e)) if e.is_transient() => Err(Failure::Transient(format!("{e:#}"))),
        Ok(Err(e)) => match tokio::time::timeout(WRITE_TIMEOUT, store.ping()).await {
            Ok(Ok(())) => Err(Failure::Permanent(e)),
            Ok(Err(p)) => Err(Failure::Transient(format!("{e}; then the ping: {p}"))),
            Err(_) => Err(Failure::Transient(format!("{e}; then no answer to a ping"))),
        },
    }
}

/// `Ok(false)`: the database already held the record.
async fn write_once(store: &Store, node: &str, r: &Record) -> Result<bool, StoreError> {
    match r {
        Record::Live(c) => store.insert_live_call(c).await.map(|()| true),
        Record::Answered { call_id, at_ms } => store
            .update_live_call_answered(node, call_id, *at_ms)
            .await
            .map(|_| true),
        Record::Gone { call_id } => store.delete_live_call(node, call_id).await.map(|_| true),
        Record::Cdr(c) => store.insert_cdr(c).await.map(|id| id.is_some()),
        Record::QueueEvent(e) => store.queue_event(e).await.map(|id| id.is_some()),
        Record::Voicemail(v) => store.insert_voicemail(v).await.map(|id| id.is_some()),
        Record::EntryGone { id } => store.remove_entry(*id).await.map(|_| true),
        Record::Quality(q) => store.upsert_leg_quality(q).await.map(|()| true),
        Record::Recording { row, job } => store
            .insert_recording(row, job.as_ref())
            .await
            .map(|id| id.is_some()),
    }
}

#[cfg(test)]
mod tests;
