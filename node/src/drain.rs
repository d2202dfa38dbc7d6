//! How a node stops, and what it says about itself meanwhile. SIGTERM and
//! `callfleet node drain` drain: no new calls, calls in progress run to their end for at most
//! `node.drain_timeout`, then the rest are hung up; Ctrl-C (SIGINT) stops at once. The pure
//! parts ([`drain_end`], [`readiness`]) decide from numbers and times given to them.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use callfleet_web::ready::{Readiness, ReadyState};
use tracing::{info, warn};

use crate::calls::CallTable;
use crate::lifecycle::Lifecycle;
use crate::now_ms;

#[cfg(test)]
mod tests;

/// Why the node stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Ctrl-C / SIGINT: calls in progress are hung up at once.
    Interrupt,
    /// The drain ended with no call left.
    Drained,
    /// The drain reached `node.drain_timeout`: the calls left are hung up.
    DrainTimeout,
}

impl Stop {
    pub fn as_str(self) -> &'static str {
        match self {
            Stop::Interrupt => "interrupt",
            Stop::Drained => "drained",
            Stop::DrainTimeout => "drain timeout",
        }
    }
}

/// How a drain that started at `started_ms` stands at `now_ms` with `calls` in progress:
/// over once no call is left and `grace` has passed (time for every main node to read the
/// draining heartbeat, so no redirected call is still on its way), or once `limit` has passed
/// whatever is left; `None` while it goes on.
pub fn drain_end(
    now_ms: i64,
    started_ms: i64,
    calls: u32,
    grace: Duration,
    limit: Duration,
) -> Option<Stop> {
    let elapsed = Duration::from_millis(u64::try_from(now_ms - started_ms).unwrap_or(0));
    if calls == 0 && elapsed >= grace {
        Some(Stop::Drained)
    } else if elapsed >= limit {
        Some(Stop::DrainTimeout)
    } else {
        None
    }
}

/// The grace a drained node waits before it exits: one heartbeat interval for the main
/// nodes to read its draining beat (written at once), and half a second for the write.
pub fn grace(heartbeat_interval: Duration) -> Duration {
    heartbeat_interval + Duration::from_millis(500)
}

/// What [`readiness`] judges from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReadyInputs {
    pub draining: bool,
    pub refusing: bool,
    pub shed_level: u8,
    pub calls: u32,
    pub capacity: u32,
    /// When a heartbeat was last written (ms since the epoch; 0: never).
    pub beat_ok_ms: i64,
    /// When the node started (ms since the epoch): the first beat is judged from there.
    pub started_ms: i64,
    pub now_ms: i64,
    /// `heartbeat.ttl`: a node that wrote no heartbeat for this long is dead to the others.
    pub ttl: Duration,
}

/// Whether the node takes new calls, and why not (the detail does not repeat the state's
/// name): draining first (the operator's word), then a
/// heartbeat that cannot be written (the database), then refusing (load).
pub fn readiness(s: &ReadyInputs) -> Readiness {
    let (state, detail) = if s.draining {
        (
            ReadyState::Draining,
            format!(
                "no new calls, {} in progress; the node exits when they end",
                s.calls
            ),
        )
    } else if s.now_ms - s.beat_ok_ms.max(s.started_ms) > s.ttl.as_millis() as i64 {
        let since = if s.beat_ok_ms == 0 {
            format!(
                "since it started {:.1} s ago",
                (s.now_ms - s.started_ms) as f64 / 1000.0
            )
        } else {
            format!("for {:.1} s", (s.now_ms - s.beat_ok_ms) as f64 / 1000.0)
        };
        (
            ReadyState::DatabaseUnreachable,
            format!(
                "no heartbeat written {since} (heartbeat.ttl {:.1} s): other nodes count this \
                 node out",
                s.ttl.as_secs_f64()
            ),
        )
    } else if s.refusing {
        (
            ReadyState::Refusing,
            format!(
                "no new calls: shed level {}, {} of {} calls",
                s.shed_level, s.calls, s.capacity
            ),
        )
    } else {
        (
            ReadyState::Ready,
            format!("{} of {} calls in progress", s.calls, s.capacity),
        )
    };
    Readiness { state, detail }
}

/// What the drain watch and the readiness answer read of the node.
pub struct Watch {
    pub life: Arc<Lifecycle>,
    pub calls: Arc<CallTable>,
    /// `node.capacity`.
    pub capacity: u32,
    /// `heartbeat.interval`: the grace before a drained node exits ([`grace`]).
    pub heartbeat_interval: Duration,
    /// `heartbeat.ttl`.
    pub ttl: Duration,
    /// `node.drain_timeout`.
    pub drain_timeout: Duration,
}

/// The node's readiness now.
pub fn readiness_of(w: &Watch) -> Readiness {
    readiness(&ReadyInputs {
        draining: w.life.is_draining(),
        refusing: w.life.is_refusing(),
        shed_level: w.life.shed.level(),
        calls: w.calls.active(),
        capacity: w.capacity,
        beat_ok_ms: w.life.beat_ok_ms.load(Ordering::Relaxed),
        started_ms: w.life.generation,
        now_ms: now_ms(),
        ttl: w.ttl,
    })
}

/// Waits until the node must stop: Ctrl-C; or a drain (asked by SIGTERM or over HTTP) that
/// ended. A SIGTERM while draining changes nothing.
pub async fn wait_for_stop(w: &Watch) -> Stop {
    let mut term = sigterm();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Stop::Interrupt,
            got = recv(&mut term) => {
                if got {
                    let calls = w.calls.active();
                    info!(
                        calls,
                        limit = ?w.drain_timeout,
                        "SIGTERM: draining (Ctrl-C or SIGINT stops at once)"
                    );
                    w.life.request_drain(calls, w.drain_timeout);
                } else {
                    term = None;
                }
            }
            end = drained(w) => return end,
        }
    }
}

/// The end of the drain, once one is asked for.
async fn drained(w: &Watch) -> Stop {
    let grace = grace(w.heartbeat_interval);
    let limit = w.drain_timeout;
    loop {
        let started = w.life.drain_started_ms.load(Ordering::Relaxed);
        if w.life.is_draining() && started > 0 {
            let calls = w.calls.active();
            if let Some(end) = drain_end(now_ms(), started, calls, grace, limit) {
                if end == Stop::DrainTimeout {
                    warn!(
                        calls,
                        ?limit,
                        "drain limit reached: hanging up the calls left"
                    );
                }
                return end;
            }
        }
        tokio::select! {
            _ = w.life.drain_requested.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

#[cfg(unix)]
type Term = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Term = Option<()>;

fn sigterm() -> Term {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(s) => Some(s),
            Err(e) => {
                warn!(error = %e, "cannot listen for SIGTERM; use Ctrl-C or callfleet node drain");
                None
            }
        }
    }
    #[cfg(not(unix))]
    None
}

/// The next SIGTERM: `true`; `false` when the stream ended (never again).
async fn recv(term: &mut Term) -> bool {
    #[cfg(unix)]
    if let Some(s) = term {
        return s.recv().await.is_some();
    }
    let _ = term;
    std::future::pending::<bool>().await
}
