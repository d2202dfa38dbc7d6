//! Call records written to SQL off the call path: live-call rows, CDRs and the legs' RTP
//! quality go through a channel to one writer task, so a slow or dead database never delays a
//! call. A failed write is retried in order until it succeeds; the queue is bounded and says so
//! in the log when full.

use std::collections::VecDeque;
use std::time::Duration;

use callfleet_store::{Cdr, LegQualityRow, LiveCall, QueueEvent, Store, Voicemail};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// One write.
#[derive(Debug, Clone)]
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
    /// One call leg's RTP quality (an upsert: written twice, stored once).
    Quality(LegQualityRow),
}

/// Sends records to the writer; cheap to clone.
#[derive(Debug, Clone)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Record>,
}

impl Recorder {
    pub fn send(&self, r: Record) {
        if self.tx.send(r).is_err() {
            error!("record writer has stopped; a call record is lost");
        }
    }
}

/// Most records kept while the database is away; CDRs are never dropped before live-call rows.
const MAX_BACKLOG: usize = 200_000;

/// Starts the writer; it drains its queue before returning once `stop` is cancelled.
pub fn start(
    store: Store,
    node: String,
    stop: CancellationToken,
) -> (Recorder, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(run(store, node, rx, stop));
    (Recorder { tx }, task)
}

async fn run(
    store: Store,
    node: String,
    mut rx: mpsc::UnboundedReceiver<Record>,
    stop: CancellationToken,
) {
    let mut backlog: VecDeque<Record> = VecDeque::new();
    let mut failing = false;
    loop {
        if backlog.is_empty() {
            tokio::select! {
                r = rx.recv() => match r {
                    Some(r) => backlog.push_back(r),
                    None => return,
                },
                _ = stop.cancelled() => {
                    rx.close();
                    while let Ok(r) = rx.try_recv() { backlog.push_back(r); }
                    if backlog.is_empty() { return; }
                }
            }
        }
        while let Ok(r) = rx.try_recv() {
            backlog.push_back(r);
        }
        trim(&mut backlog);
        while let Some(r) = backlog.front() {
            match write(&store, &node, r).await {
                Ok(()) => {
                    backlog.pop_front();
                    if failing {
                        info!(left = backlog.len(), "database writes resumed");
                        failing = false;
                    }
                }
                Err(e) => {
                    if !failing {
                        warn!(error = %e, backlog = backlog.len(), "cannot write call records; will retry");
                        failing = true;
                    }
                    break;
                }
            }
        }
        if failing {
            if stop.is_cancelled() {
                error!(
                    lost = backlog.len(),
                    "stopping with call records the database did not take"
                );
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.cancelled() => {}
            }
        } else if stop.is_cancelled() && rx.is_empty() && backlog.is_empty() {
            return;
        }
    }
}

fn trim(backlog: &mut VecDeque<Record>) {
    if backlog.len() <= MAX_BACKLOG {
        return;
    }
    let before = backlog.len();
    backlog.retain(|r| {
        matches!(
            r,
            Record::Cdr(_) | Record::QueueEvent(_) | Record::Voicemail(_) | Record::Quality(_)
        )
    });
    while backlog.len() > MAX_BACKLOG {
        backlog.pop_front();
    }
    error!(
        dropped = before - backlog.len(),
        "record backlog full; dropped the oldest records"
    );
}

async fn write(store: &Store, node: &str, r: &Record) -> Result<(), callfleet_store::StoreError> {
    match r {
        Record::Live(c) => store.insert_live_call(c).await.map(drop),
        Record::Answered { call_id, at_ms } => store
            .update_live_call_answered(node, call_id, *at_ms)
            .await
            .map(drop),
        Record::Gone { call_id } => store.delete_live_call(node, call_id).await.map(drop),
        Record::Cdr(c) => store.insert_cdr(c).await.map(drop),
        Record::QueueEvent(e) => store.queue_event(e).await.map(drop),
        Record::Voicemail(v) => store.insert_voicemail(v).await.map(drop),
        Record::Quality(q) => store.upsert_leg_quality(q).await,
    }
}
