//! The node's own run state, shared by the subsystems that set it or act on it: whether it is
//! draining or refusing new calls, its shed level, when its heartbeat was last written, and the
//! tokens that stop its background loops and hang up its calls. The heartbeat sets the shed
//! level and refusal, the drain watch and the HTTP layer ask for a drain, and every background
//! job asks [`Lifecycle::background_allowed`] before it picks up an item.
//!
//! Each subsystem is handed an `Arc<Lifecycle>` with the few other handles it uses (see
//! `heartbeat::Heart`, `drain::Watch`, `scale::Scaler`), never the whole node.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use callfleet_web::metrics::shed::ShedAction;
use callfleet_web::Metrics;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::now_ms;
use crate::shed::{ShedGate, Work};

pub struct Lifecycle {
    /// New at every start (ms since the epoch at start).
    pub generation: i64,
    /// Operator asked this node to take no new calls and exit when idle.
    pub draining: AtomicBool,
    /// CPU over `lb.refuse_cpu` or shed level 3 (set by the heartbeat task).
    pub refusing: AtomicBool,
    /// The shed level (set by the heartbeat task; see `crate::shed`), shared with the HTTP
    /// layer and every job that asks whether it may run.
    pub shed: ShedGate,
    /// When draining was first asked for (ms since the epoch; 0: not draining).
    pub drain_started_ms: AtomicI64,
    /// Signalled when draining is requested.
    pub drain_requested: Notify,
    /// When a heartbeat was last written (ms since the epoch; 0: not yet).
    pub beat_ok_ms: AtomicI64,
    /// Asks the heartbeat task for a beat now (a draining node says so at once).
    pub beat_now: Notify,
    /// Background loops stop when this is cancelled.
    pub stopping: CancellationToken,
    /// Every call in progress hangs up (BYE) when this is cancelled.
    pub hangup: CancellationToken,
    /// Counts the deferrals of background work.
    metrics: Metrics,
}

impl Lifecycle {
    pub fn new(generation: i64, stopping: CancellationToken, metrics: Metrics) -> Lifecycle {
        Lifecycle {
            generation,
            draining: AtomicBool::new(false),
            refusing: AtomicBool::new(false),
            shed: ShedGate::new(),
            drain_started_ms: AtomicI64::new(0),
            drain_requested: Notify::new(),
            beat_ok_ms: AtomicI64::new(0),
            beat_now: Notify::new(),
            stopping,
            hangup: CancellationToken::new(),
            metrics,
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    pub fn is_refusing(&self) -> bool {
        self.refusing.load(Ordering::Relaxed)
    }

    /// Whether optional background work (MP3 conversion, trace export batches, history
    /// pruning) may start an item now; when it may not (shed level 2 and up) the deferral is
    /// counted in `callfleet_shed_actions_total{action="background_deferred"}` and the job
    /// tries again later: it resumes by itself when the level falls.
    pub fn background_allowed(&self) -> bool {
        let allowed = self.shed.allows(Work::Background);
        if !allowed {
            self.metrics.shed().action(ShedAction::BackgroundDeferred);
        }
        allowed
    }

    /// Takes no new calls from now on, says so in a heartbeat at once, and lets the drain
    /// watch end the node once the calls in progress (`calls` now) have ended, at most `limit`
    /// after the first request.
    pub fn request_drain(&self, calls: u32, limit: Duration) {
        let _first = self.drain_started_ms.compare_exchange(
            0,
            now_ms(),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        if !self.draining.swap(true, Ordering::Relaxed) {
            info!(
                calls,
                ?limit,
                "draining: taking no new calls, exiting when idle"
            );
            self.beat_now.notify_one();
        }
        self.drain_requested.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn life() -> Lifecycle {
        Lifecycle::new(1, CancellationToken::new(), Metrics::new())
    }

    #[test]
    fn background_work_is_deferred_from_shed_level_two() {
        let life = life();
        for (level, allowed) in [(0, true), (1, true), (2, false), (3, false)] {
            life.shed.set(level);
            assert_eq!(life.background_allowed(), allowed, "level {level}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_drain_starts_once_and_asks_for_a_beat_once() {
        let life = life();
        assert!(!life.is_draining());
        life.request_drain(3, Duration::from_secs(60));
        let first = life.drain_started_ms.load(Ordering::Relaxed);
        assert!(first > 0);
        assert!(life.is_draining());
        // The beat was asked for: a permit is stored for the heartbeat task.
        tokio::time::timeout(Duration::from_millis(1), life.beat_now.notified())
            .await
            .expect("a beat is asked for at the first request");
        life.request_drain(2, Duration::from_secs(60));
        assert_eq!(life.drain_started_ms.load(Ordering::Relaxed), first);
        assert!(
            tokio::time::timeout(Duration::from_secs(1), life.beat_now.notified())
                .await
                .is_err(),
            "a second request asks for no second beat"
        );
    }
}
