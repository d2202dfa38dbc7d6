//! Retention: this node deletes its recordings (file, then row) older than
//! `recording.keep` days, a batch at a time, once an hour and at start. Background work: it
//! waits while load shedding defers it.

use std::time::Duration;

use tracing::{info, warn};

use crate::node::Node;
use crate::now_ms;

const EVERY: Duration = Duration::from_secs(3600);
/// Rows read per batch.
const BATCH: i64 = 500;

/// Recordings made before this are deleted (`None`: kept forever).
pub fn cutoff(now_ms: i64, keep_ms: Option<i64>) -> Option<i64> {
    keep_ms.map(|k| now_ms.saturating_sub(k))
}

/// Deletes expired recordings until the node stops.
pub async fn run(node: Node) {
    loop {
        if node.background_allowed() {
            if let Some(before) = cutoff(now_ms(), node.cfg.recording.keep_ms()) {
                sweep(&node, before).await;
            }
        }
        tokio::select! {
            _ = node.stopping.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}

/// Deletes this node's recordings made before `before_ms`; returns how many.
pub async fn sweep(node: &Node, before_ms: i64) -> usize {
    let me = &node.cfg.node.name;
    let mut deleted = 0;
    loop {
        let batch = match node.store.recordings_before(me, before_ms, BATCH).await {
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
            match node.store.delete_recording(rec.id).await {
                Ok(_) => {
                    deleted += 1;
                    progress = true;
                    node.metrics.recordings().deleted();
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
            keep_days = node.cfg.recording.keep,
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
