//! Retention: this node deletes its recordings (file, then row) older than
//! `recording.keep` days, a batch at a time, once an hour and at start. Background work: it
//! waits while load shedding defers it.

use std::sync::Arc;
use std::time::Duration;

use callfleet_store::Store;
use callfleet_web::Metrics;
use tracing::{info, warn};

use crate::lifecycle::Lifecycle;
use crate::now_ms;

const EVERY: Duration = Duration::from_secs(3600);
/// Rows read per batch.
const BATCH: i64 = 500;

/// Recordings made before this are deleted (`None`: kept forever).
pub fn cutoff(now_ms: i64, keep_ms: Option<i64>) -> Option<i64> {
    keep_ms.map(|k| now_ms.saturating_sub(k))
}

/// What a retention sweep (of recordings, or of SIP traces in `crate::trace::retention`)
/// uses of the node.
pub struct Retention {
    pub store: Store,
    /// This node's name: it deletes only what it wrote.
    pub me: String,
    /// `recording.keep` or `trace.keep`, in days, for the log.
    pub keep_days: u32,
    /// The same in milliseconds (the section's `keep_ms`; `None`: kept forever).
    pub keep_ms: Option<i64>,
    pub life: Arc<Lifecycle>,
    pub metrics: Metrics,
}

/// Deletes expired recordings until the node stops.
pub async fn run(r: Retention) {
    loop {
        if r.life.background_allowed() {
            if let Some(before) = cutoff(now_ms(), r.keep_ms) {
                sweep(&r, before).await;
            }
        }
        tokio::select! {
            _ = r.life.stopping.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}

/// Deletes this node's recordings made before `before_ms`; returns how many.
pub async fn sweep(r: &Retention, before_ms: i64) -> usize {
    let me = &r.me;
    let mut deleted = 0;
    loop {
        let batch = match r.store.recordings_before(me, before_ms, BATCH).await {
            Ok(b) => b,
            Err(e) => {
                warn!(error = %e, "cannot list expired recordings; trying again later");
                break;
            }
        };
        let full = batch.len() as i64 == BATCH;
        let mut progress = false;
        for rec in batch {
            match std::fs::remove_file(&rec.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    warn!(path = %rec.path, error = %e, "cannot delete an expired recording");
                    continue;
                }
            }
            match r.store.delete_recording(rec.id).await {
                Ok(_) => {
                    deleted += 1;
                    progress = true;
                    r.metrics.recordings().deleted();
                }
                Err(e) => {
                    warn!(recording = rec.id, error = %e, "cannot delete an expired recording's row")
                }
            }
        }
        if !full || !progress {
            break;
        }
    }
    if deleted > 0 {
        info!(
            deleted,
            keep_days = r.keep_days,
            "expired recordings deleted"
        );
    }
    deleted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_is_keep_days_back() {
        assert_eq!(
            cutoff(10 * 86_400_000, Some(7 * 86_400_000)),
            Some(3 * 86_400_000)
        );
        assert_eq!(cutoff(1_000, None), None);
        assert_eq!(cutoff(i64::MIN + 5, Some(86_400_000)), Some(i64::MIN));
    }
}
