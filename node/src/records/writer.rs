//! The writer task: channel → spool (durable) → database, in order.

use std::time::Duration;

use callfleet_store::Store;
use callfleet_web::metrics::records::RecordOutcome;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::{write, Failure, Record, Reports, Spool, RETRY_EVERY};

/// Most records taken from the channel into one spool batch.
const MAX_BATCH: usize = 1024;
/// Most records replayed per turn, so that records arriving meanwhile reach the disk soon.
const REPLAY_PER_TURN: usize = 512;
/// Records read from the spool at a time.
const PEEK: usize = 128;
/// Most records held in memory while the spool cannot be written (a disk error).
const MAX_PENDING: usize = 200_000;

pub(super) struct Writer {
    store: Store,
    node: String,
    spool: Spool,
    reports: Reports,
    /// Records taken from the channel but not yet in the spool.
    pending: Vec<Record>,
    /// While the database is unreachable: when to try again.
    retry_at: Option<Instant>,
    /// While the spool cannot be written: when to try again.
    spool_retry_at: Option<Instant>,
    /// The fill (tenths) last logged, so each step up is logged once.
    fill_logged: u64,
}

/// How a replay turn ended.
#[derive(Debug, PartialEq, Eq)]
enum Turn {
    /// The spool is empty.
    Drained,
    /// The turn's share is done; more is waiting.
    More,
    /// The database cannot be reached.
    Outage,
    /// The spool could not be read or moved on.
    SpoolError,
}

impl Writer {
    pub(super) fn new(store: Store, node: String, spool: Spool, reports: Reports) -> Writer {
        let mut w = Writer {
            store,
            node,
            spool,
            reports,
            pending: Vec::new(),
            retry_at: None,
            spool_retry_at: None,
            fill_logged: 0,
        };
        w.report_fill();
        w
    }

    /// At start: replays the spool until it is empty or the database is unreachable.
    pub(super) async fn replay_left_over(&mut self) {
        let left = self.spool.waiting();
        if self.spool.is_empty() {
            return;
        }
        info!(records = left, file = %self.spool.path().display(), "replaying the call records an earlier run left in the spool");
        loop {
            match self.replay(usize::MAX, None).await {
                Turn::More => continue,
                Turn::Drained => {
                    info!(records = left, "spool replayed");
                    return;
                }
                Turn::Outage | Turn::SpoolError => {
                    warn!(
                        left = self.spool.waiting(),
                        "spool not replayed yet: the node starts and keeps trying"
                    );
                    return;
                }
            }
        }
    }

    pub(super) async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Record>,
        stop: CancellationToken,
    ) {
        let mut closed = false;
        loop {
            let stopping = stop.is_cancelled() || closed;
            let idle = self.pending.is_empty() || self.spool_blocked();
            if !stopping && idle && !self.replay_due() {
                let wake = self.next_wake();
                tokio::select! {
                    r = rx.recv() => match r {
                        Some(r) => self.pending.push(r),
                        None => closed = true,
                    },
                    _ = tokio::time::sleep_until(wake) => {}
                    _ = stop.cancelled() => rx.close(),
                }
            }
            while self.pending.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(r) => self.pending.push(r),
                    Err(_) => break,
                }
            }
            self.spool_pending();
            let turn = if self.replay_due() || stopping {
                self.replay(REPLAY_PER_TURN, Some(&mut rx)).await
            } else {
                Turn::More
            };
            if stop.is_cancelled() || closed {
                if !self.pending.is_empty() && self.spool_retry_at.is_some() {
                    error!(
                        lost = self.pending.len(),
                        "stopping with call records neither the spool nor the database took"
                    );
                    return;
                }
                if rx.is_empty() && self.pending.is_empty() && turn != Turn::More {
                    self.stopped(&turn);
                    return;
                }
                rx.close();
            }
        }
    }

    fn stopped(&self, turn: &Turn) {
        if *turn == Turn::Drained {
            return;
        }
        warn!(
            records = self.spool.waiting(),
            file = %self.spool.path().display(),
            "stopping with call records the database did not take yet: the next start replays them"
        );
    }

    /// Whether a replay turn should run now.
    fn replay_due(&self) -> bool {
        !self.spool.is_empty() && self.retry_at.is_none_or(|t| Instant::now() >= t)
    }

    fn next_wake(&self) -> Instant {
        let replay = match self.retry_at {
            Some(t) if !self.spool.is_empty() => t,
            _ => Instant::now() + Duration::from_secs(3600),
        };
        match self.spool_retry_at {
            Some(t) if !self.pending.is_empty() => t.min(replay),
            _ => replay,
        }
    }

    /// Whether the last append failed and the next attempt is not due yet.
    fn spool_blocked(&self) -> bool {
        self.spool_retry_at.is_some_and(|t| Instant::now() < t)
    }

    /// Appends the pending records to the spool as one durable batch.
    fn spool_pending(&mut self) {
        if self.pending.is_empty() || self.spool_blocked() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        match blocking(|| self.spool.append(batch.clone())) {
            Ok(refused) => {
                if self.spool_retry_at.take().is_some() {
                    info!("call records reach the spool again");
                }
                for r in refused {
                    self.reports
                        .metrics
                        .records()
                        .record(RecordOutcome::Dropped);
                    error!(record = %json(&r), "record spool full: call record dropped");
                }
            }
            Err(e) => {
                if self.spool_retry_at.is_none() {
                    error!(error = %e, records = batch.len(), "cannot write call records to the spool; kept in memory and tried again every second");
                }
                self.spool_retry_at = Some(Instant::now() + RETRY_EVERY);
                self.pending = batch;
                if self.pending.len() > MAX_PENDING {
                    let gone = self.pending.len() - MAX_PENDING;
                    for r in self.pending.drain(..gone) {
                        self.reports
                            .metrics
                            .records()
                            .record(RecordOutcome::Dropped);
                        error!(record = %json(&r), "call record dropped: neither the spool nor memory can hold it");
                    }
                }
            }
        }
        self.report_fill();
    }

    /// Writes up to `budget` records from the spool's head to the database. Records arriving
    /// on `rx` meanwhile go to the spool at once, so that a write the database is slow to
    /// refuse never leaves new records in memory only.
    async fn replay(
        &mut self,
        budget: usize,
        mut rx: Option<&mut mpsc::UnboundedReceiver<Record>>,
    ) -> Turn {
        let mut done = 0;
        let turn = loop {
            if done >= budget {
                break Turn::More;
            }
            let batch = match blocking(|| self.spool.peek(PEEK.min(budget - done))) {
                Ok(b) => b,
                Err(e) => {
                    error!(error = %e, "cannot read the record spool");
                    break Turn::SpoolError;
                }
            };
            if batch.damaged > 0 {
                error!(
                    lines = batch.damaged,
                    "damaged lines in the record spool skipped"
                );
            }
            let head = self.spool.head();
            if batch.records.is_empty() && batch.end == head {
                break Turn::Drained;
            }
            // Appends meanwhile must not move the records this batch's offsets point at.
            self.spool.pin_offsets(true);
            let (to, n, outage) = self
                .write_batch(head, batch.records, batch.end, rx.as_deref_mut())
                .await;
            self.spool.pin_offsets(false);
            done += n as usize;
            if let Err(e) = blocking(|| self.spool.done(to, n)) {
                error!(error = %e, "cannot move the record spool on");
                break Turn::SpoolError;
            }
            if outage {
                break Turn::Outage;
            }
            if self.spool.is_empty() {
                break Turn::Drained;
            }
        };
        self.after_turn(&turn);
        self.report_fill();
        turn
    }

    /// Writes `records` in order; returns how far the database took them (offset, count)
    /// and whether it stopped on an outage.
    async fn write_batch(
        &mut self,
        head: u64,
        records: Vec<(u64, Record)>,
        end: u64,
        mut rx: Option<&mut mpsc::UnboundedReceiver<Record>>,
    ) -> (u64, u64, bool) {
        let mut to = head;
        let mut n = 0;
        for (at, r) in records {
            match self.write_taking(&r, rx.as_deref_mut()).await {
                Ok(outcome) => self.reports.metrics.records().record(outcome),
                Err(Failure::Permanent(e)) => {
                    self.reports
                        .metrics
                        .records()
                        .record(RecordOutcome::Rejected);
                    error!(error = format!("{e:#}"), record = %json(&r), "the database refused a call record; it is skipped");
                }
                Err(Failure::Transient(reason)) => {
                    if self.retry_at.is_none() {
                        warn!(error = %reason, file = %self.spool.path().display(), "database unreachable: call records wait in the spool");
                    }
                    self.retry_at = Some(Instant::now() + RETRY_EVERY);
                    return (to, n, true);
                }
            }
            to = at;
            n += 1;
        }
        (end, n, false)
    }

    /// Writes `r`, spooling what arrives on `rx` while the database takes its time.
    async fn write_taking(
        &mut self,
        r: &Record,
        rx: Option<&mut mpsc::UnboundedReceiver<Record>>,
    ) -> Result<RecordOutcome, Failure> {
        let (store, node) = (self.store.clone(), self.node.clone());
        let fut = write(&store, &node, r);
        tokio::pin!(fut);
        let Some(rx) = rx else {
            return fut.await;
        };
        let mut open = true;
        loop {
            tokio::select! {
                res = &mut fut => return res,
                got = rx.recv(), if open => match got {
                    Some(x) => {
                        self.pending.push(x);
                        while self.pending.len() < MAX_BATCH {
                            match rx.try_recv() {
                                Ok(x) => self.pending.push(x),
                                Err(_) => break,
                            }
                        }
                        self.spool_pending();
                    }
                    None => open = false,
                },
            }
        }
    }

    fn after_turn(&mut self, turn: &Turn) {
        match turn {
            Turn::Drained | Turn::More if self.retry_at.is_some() => {
                info!(
                    left = self.spool.waiting(),
                    "database back: replaying the spooled call records"
                );
                self.retry_at = None;
            }
            Turn::SpoolError => self.retry_at = Some(Instant::now() + RETRY_EVERY),
            _ => {}
        }
    }

    /// Updates the gauges, and logs each tenth of the capacity the spool fills past.
    fn report_fill(&mut self) {
        let (bytes, cap) = (self.spool.bytes(), self.spool.capacity());
        self.reports
            .metrics
            .records()
            .set_spool(bytes, self.spool.waiting(), cap);
        self.reports.gauge.set(bytes, cap);
        self.log_fill();
    }

    /// Logs the fill when it crosses a tenth of the capacity upwards (and once when it is
    /// back under a tenth).
    fn log_fill(&mut self) {
        let tenth = fill_tenths(self.spool.bytes(), self.spool.capacity());
        if tenth > self.fill_logged {
            warn!(
                percent = tenth * 10,
                records = self.spool.waiting(),
                bytes = self.spool.bytes(),
                capacity = self.spool.capacity(),
                "record spool filling"
            );
        } else if tenth == 0 && self.fill_logged > 0 {
            info!("record spool below 10 % again");
        }
        self.fill_logged = tenth;
    }
}

/// Tenths of `capacity` that `used` has reached (0..=10).
pub(super) fn fill_tenths(used: u64, capacity: u64) -> u64 {
    if capacity == 0 {
        return 0;
    }
    (used.saturating_mul(10) / capacity).min(10)
}

fn json(r: &Record) -> String {
    serde_json::to_string(r).unwrap_or_else(|e| format!("<{e}>"))
}

/// Runs file I/O off the async worker when the runtime allows it.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}
