//! The shared balancer: owns the current cluster view and the redirects sent since it was built,
//! and runs [`choose`] for every new INVITE.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::decision::{choose, Band, Choice, Decision, LocalLoad, Peers};
use crate::hold::{carry_pending, held_view, Answer, ProbeLoad};
use crate::report::NodeReport;
use crate::role::Role;
use crate::view::{ClusterView, NodeStatus};

#[cfg(test)]
mod tests;

/// Default heartbeat TTL: three times the default 2 s heartbeat interval.
pub const DEFAULT_TTL: Duration = Duration::from_secs(6);

/// Default band: a main node keeps a call while it holds at most 5 % and one call more than the
/// best peer would at its utilisation (`lb.hysteresis`, `lb.hysteresis_calls`). Simulated in
/// `balancer/tests.rs`: even within max/min 1.2 from 15 to 900 calls on three nodes.
pub const DEFAULT_BAND: Band = Band {
    relative: 0.05,
    calls: 1,
};

/// Tuning of the balancer, from the node config (`heartbeat.ttl`, `lb.hysteresis`,
/// `lb.hysteresis_calls`, `lb.prefer_self`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LbConfig {
    /// A heartbeat older than this marks its node down (never chosen).
    pub ttl: Duration,
    /// How much busier than the best peer this node may be and still keep a call.
    pub band: Band,
    /// When false, a main node is a dedicated redirector: it handles an unmarked call itself
    /// only if no peer can take it (`lb.prefer_self`).
    pub prefer_self: bool,
}

impl Default for LbConfig {
    fn default() -> Self {
        LbConfig {
            ttl: DEFAULT_TTL,
            band: DEFAULT_BAND,
            prefer_self: true,
        }
    }
}

/// The routing decision with its shared state; cheap to clone, one per node process.
///
/// The SIP layer calls [`decide`](Self::decide) per INVITE; the heartbeat task calls
/// [`replace_view`](Self::replace_view) after each read of the heartbeat table.
#[derive(Debug, Clone)]
pub struct Balancer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    self_name: String,
    role: Role,
    config: LbConfig,
    /// A std mutex, not tokio's: nothing here is async, so it is never held across an
    /// `.await`, and each critical section is one scan of a few rows.
    state: Mutex<State>,
}

/// The view, the redirects sent since it was built and the peers found down by probes, kept
/// under one lock so that `pending[i]` and `down[i]` always describe `view.nodes()[i]` of this
/// very view.
#[derive(Debug)]
struct State {
    view: Arc<ClusterView>,
    pending: Vec<u32>,
    /// Names of the peers the probes found down, as last set.
    down_names: Vec<String>,
    /// `down_names` resolved against `view`.
    down: Vec<bool>,
    /// The view as last read from the heartbeat table (the same as `view` unless held).
    read: Arc<ClusterView>,
    /// The last read failed: `view` is [`held_view`] of `read` (see [`crate::hold`]).
    held: bool,
    /// Each peer's last probe answer.
    answers: HashMap<String, Answer>,
}

impl State {
    /// Swaps in `view`, carrying the pending counts of unchanged rows over; returns the old one
    /// to be freed after the lock is released.
    fn swap_held(&mut self, view: ClusterView) -> Arc<ClusterView> {
        let view = Arc::new(view);
        self.pending = carry_pending(&self.view, &self.pending, &view);
        let old = std::mem::replace(&mut self.view, view);
        self.resolve_down();
        old
    }

    fn resolve_down(&mut self) {
        let view = &self.view;
        let names = &self.down_names;
        self.down = view
            .nodes()
            .iter()
            .map(|n| names.contains(&n.name))
            .collect();
    }
}

impl Balancer {
    /// A balancer for node `self_name` with an empty view: until the first
    /// [`replace_view`](Self::replace_view) a main node handles what it can and redirects nothing.
    pub fn new(self_name: impl Into<String>, role: Role, config: LbConfig) -> Self {
        let view = Arc::new(ClusterView::empty(0, config.ttl));
        let state = State {
            read: Arc::clone(&view),
            view,
            pending: Vec::new(),
            down_names: Vec::new(),
            down: Vec::new(),
            held: false,
            answers: HashMap::new(),
        };
        Balancer {
            inner: Arc::new(Inner {
                self_name: self_name.into(),
                role,
                config,
                state: Mutex::new(state),
            }),
        }
    }

    /// This node's name.
    pub fn self_name(&self) -> &str {
        &self.inner.self_name
    }

    /// This node's role.
    pub fn role(&self) -> Role {
        self.inner.role
    }

    /// The tuning this balancer runs with.
    pub fn config(&self) -> LbConfig {
        self.inner.config
    }

    /// The current view (a shared handle: later replacements do not change it).
    pub fn view(&self) -> Arc<ClusterView> {
        Arc::clone(&self.lock().view)
    }

    /// Redirects sent to `name` since the current view was built.
    pub fn pending(&self, name: &str) -> u32 {
        let state = self.lock();
        state
            .view
            .position(name)
            .and_then(|i| state.pending.get(i).copied())
            .unwrap_or(0)
    }

    /// Swaps in the view built from `rows` read at `now_ms` and resets the pending counts: the
    /// fresh rows already include the calls those redirects brought. Ends a hold.
    pub fn replace_view(&self, rows: Vec<NodeStatus>, now_ms: i64) {
        let view = Arc::new(ClusterView::from_rows(rows, now_ms, self.inner.config.ttl));
        let nodes = view.nodes().len();
        let pending = vec![0; nodes];
        // The old view and counts are freed after the lock is released.
        let old = {
            let mut state = self.lock();
            let old_pending = std::mem::replace(&mut state.pending, pending);
            let old_read = std::mem::replace(&mut state.read, Arc::clone(&view));
            let old_view = std::mem::replace(&mut state.view, view);
            state.held = false;
            let State { answers, read, .. } = &mut *state;
            answers.retain(|name, _| read.position(name).is_some());
            state.resolve_down();
            (old_view, old_read, old_pending)
        };
        drop(old);
        tracing::debug!(nodes, now_ms, "cluster view replaced");
    }

    /// For when the heartbeat table cannot be read at `now_ms`: holds the rows of the last read,
    /// each peer's refreshed from its last probe answer since then (see [`crate::hold`]). Peers
    /// that answer stay; the others age out as their heartbeats would.
    pub fn hold(&self, now_ms: i64) {
        let old = {
            let mut state = self.lock();
            let view = held_view(&state.read, &state.answers, &self.inner.self_name, now_ms);
            state.held = true;
            state.swap_held(view)
        };
        drop(old);
    }

    /// Records that `peer` answered a probe at `at_ms` with `load`. While the view is held, the
    /// peer's row takes that load at once and its pending count starts again from 0.
    pub fn answered(&self, peer: &str, load: ProbeLoad, at_ms: i64) {
        let old = {
            let mut state = self.lock();
            state
                .answers
                .insert(peer.to_owned(), Answer { load, at_ms });
            if !state.held {
                return;
            }
            let view = held_view(&state.read, &state.answers, &self.inner.self_name, at_ms);
            state.swap_held(view)
        };
        drop(old);
    }

    /// Whether the view is held (the last read of the heartbeat table failed).
    pub fn held(&self) -> bool {
        self.lock().held
    }

    /// Sets the peers this node's probes found unresponsive (see [`crate::health`]): they are
    /// never chosen until a later call leaves them out, whatever their heartbeats say.
    pub fn set_down(&self, names: Vec<String>) {
        let mut state = self.lock();
        state.down_names = names;
        state.resolve_down();
    }

    /// The peers currently excluded by probes.
    pub fn down(&self) -> Vec<String> {
        self.lock().down_names.clone()
    }

    /// Decides where a new INVITE goes (see [`choose`] for the rules) and, on a redirect,
    /// counts it as pending load on the target.
    ///
    /// Hot path: the lock is held only for the scan and the counter bump; the target's name is
    /// copied and the decision logged after it is released.
    pub fn decide(&self, marked: bool, local: LocalLoad) -> Decision {
        let inner = &*self.inner;
        let (choice, view) = {
            let mut state = self.lock();
            let pick = |local| {
                let peers = Peers {
                    pending: &state.pending,
                    down: &state.down,
                };
                choose(
                    &state.view,
                    &inner.self_name,
                    inner.role,
                    marked,
                    local,
                    peers,
                    inner.config.band,
                )
            };
            let choice = if inner.config.prefer_self {
                pick(local)
            } else {
                // A dedicated redirector offers the call to its peers first, as if it were
                // draining, and keeps it only when none of them can take it.
                match pick(LocalLoad {
                    draining: true,
                    ..local
                }) {
                    Choice::Refuse => pick(local),
                    other => other,
                }
            };
            if let Choice::Redirect(index) = choice {
                if let Some(sent) = state.pending.get_mut(index) {
                    *sent = sent.saturating_add(1);
                }
            }
            (choice, Arc::clone(&state.view))
        };
        let decision = choice.to_decision(&view);
        tracing::trace!(marked, calls = local.calls, ?decision, "lb decision");
        decision
    }

    /// One report per node in the current view, judged at `now_ms`, sorted by name.
    pub fn snapshot(&self, now_ms: i64) -> Vec<NodeReport> {
        let (view, pending, down) = {
            let state = self.lock();
            (
                Arc::clone(&state.view),
                state.pending.clone(),
                state.down.clone(),
            )
        };
        view.nodes()
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let sent = pending.get(i).copied().unwrap_or(0);
                let responding = !down.get(i).copied().unwrap_or(false);
                NodeReport::from_status(node, now_ms, view.ttl(), sent, responding)
            })
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is valid at every instant (whole-value swaps, single counter bumps, and
        // `choose` does not panic), so a poisoned lock is safe to keep using.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
