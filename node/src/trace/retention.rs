//! Retention of SIP traces: this node deletes the trace chunks it wrote more than `trace.keep`
//! days ago, oldest first, a batch at a time, once an hour and at start (whether or not it
//! still traces calls). Background work: it waits while load shedding defers it.

use std::time::Duration;

use tracing::{info, warn};

use crate::now_ms;
use crate::recording::retention::{cutoff, Retention};

const EVERY: Duration = Duration::from_secs(3600);
/// Chunks deleted per statement.
const BATCH: i64 = 1000;
/// Most batches of one sweep; what is left waits for the next.
const MAX_BATCHES: usize = 1000;

/// Deletes expired traces until the node stops.
pub async fn run(r: Retention) {
    loop {
        if let Some(before) = cutoff(now_ms(), r.keep_ms) {
            sweep(&r, before).await;
        }
        tokio::select! {
            _ = r.life.stopping.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}

/// Deletes this node's trace chunks written before `before_ms`; returns how many.
pub async fn sweep(r: &Retention, before_ms: i64) -> u64 {
    let me = &r.me;
    let mut deleted = 0;
    for _ in 0..MAX_BATCHES {
        if r.life.stopping.is_cancelled() || !r.life.background_allowed() {
            break;
        }
        match r.store.delete_trace_before(me, before_ms, BATCH).await {
            Ok(0) => break,
            Ok(n) => deleted += n,
            Err(e) => {
                warn!(error = %e, "cannot delete expired SIP traces; trying again later");
                break;
            }
        }
    }
    if deleted > 0 {
        info!(
            chunks = deleted,
            keep_days = r.keep_days,
            "expired SIP traces deleted"
        );
    }
    deleted
}
