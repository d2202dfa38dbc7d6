//! The routing rule for one new INVITE: handle it here, redirect it to a peer, or refuse it.
//!
//! [`choose`] is pure: it reads the view, this node's live load and the redirects already sent
//! since the view was built, and returns a [`Choice`]. It does not allocate, log or lock; the
//! [`Balancer`](crate::Balancer) wraps it with the shared state.

use std::net::SocketAddr;

use crate::role::Role;
use crate::view::ClusterView;

#[cfg(test)]
mod tests;

/// This node's own load, read live when the INVITE arrives. It overrides this node's row in
/// the view, which may be a heartbeat interval old.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LocalLoad {
    /// Calls in progress here.
    pub calls: u32,
    /// Most calls this node takes at once (hard capacity).
    pub capacity: u32,
    /// This node refuses new calls (CPU over the refuse threshold or shed level 3).
    pub refusing: bool,
    /// An operator is draining this node: it takes no new calls (redirected ones excepted).
    pub draining: bool,
}

impl LocalLoad {
    fn below_capacity(self) -> bool {
        self.calls < self.capacity
    }

    fn accepting(self) -> bool {
        !self.refusing && !self.draining && self.below_capacity()
    }
}

/// What to do with a new INVITE, ready for the SIP layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Take the call on this node.
    Handle,
    /// Answer `302 Moved Temporarily` with a Contact on this node.
    Redirect {
        /// Name of the chosen node (goes in the redirect marker's log lines and CDR).
        name: String,
        /// SIP address of the chosen node (goes in the Contact).
        sip: SocketAddr,
    },
    /// Answer `503 Service Unavailable` with `Retry-After` so the carrier fails over.
    Refuse,
}

/// What [`choose`] decided, naming the target by its index in [`ClusterView::nodes`] so the
/// decision itself allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Take the call here.
    Handle,
    /// Redirect to `view.nodes()[index]`.
    Redirect(usize),
    /// Refuse the call.
    Refuse,
}

impl Choice {
    /// Resolves the target against the view the choice was made on. An index the view does not
    /// have (a different view) gives [`Decision::Refuse`] rather than a wrong target.
    pub fn to_decision(self, view: &ClusterView) -> Decision {
        match self {
            Choice::Handle => Decision::Handle,
            Choice::Refuse => Decision::Refuse,
            Choice::Redirect(index) => match view.nodes().get(index) {
                Some(node) => Decision::Redirect {
                    name: node.name.clone(),
                    sip: node.sip,
                },
                None => Decision::Refuse,
            },
        }
    }
}

/// Decides where one new INVITE goes.
///
/// - `marked` (the Request-URI carries the redirect marker), any role: handle it if this node is
///   below its hard capacity, even if draining or refusing, else refuse. Never redirect twice.
/// - `extra` role: handle it if this node is not refusing, not draining and below capacity,
///   else refuse. Extra nodes never redirect.
/// - `main` role: the candidates are this node (judged by `local`, never by its own row in the
///   view) if it is not refusing, not draining and below capacity, plus every other node that is
///   [accepting](ClusterView::is_accepting) with `calls + pending < capacity`. The least
///   utilised peer, `(calls + pending) / capacity`, ties broken by name, is the best peer. This
///   node handles the call if its utilisation is at most the best peer's plus `hysteresis`;
///   otherwise the call goes to the best peer; with no candidate it is refused.
///
/// `pending[i]` counts redirects sent to `view.nodes()[i]` since the view was built (missing
/// entries count 0). The caller adds one to it on [`Choice::Redirect`]. A negative or NaN
/// `hysteresis` counts as 0.
pub fn choose(
    view: &ClusterView,
    self_name: &str,
    role: Role,
    marked: bool,
    local: LocalLoad,
    pending: &[u32],
    hysteresis: f32,
) -> Choice {
    if marked {
        return handle_if(local.below_capacity());
    }
    if role == Role::Extra {
        return handle_if(local.accepting());
    }
    let here = local
        .accepting()
        .then(|| Load::new(local.calls.into(), local.capacity));
    match (here, least_loaded_peer(view, self_name, pending)) {
        (Some(_), None) => Choice::Handle,
        (Some(here), Some((index, peer))) => {
            let band = f64::from(hysteresis.max(0.0));
            handle_if_else(here.utilisation() <= peer.utilisation() + band, index)
        }
        (None, Some((index, _))) => Choice::Redirect(index),
        (None, None) => Choice::Refuse,
    }
}

fn handle_if(ok: bool) -> Choice {
    if ok {
        Choice::Handle
    } else {
        Choice::Refuse
    }
}

fn handle_if_else(here: bool, peer: usize) -> Choice {
    if here {
        Choice::Handle
    } else {
        Choice::Redirect(peer)
    }
}

/// The accepting peer (not `self_name`) with room left and the least utilisation, first by
/// name among equals (the view is sorted by name and only a strictly smaller load replaces).
fn least_loaded_peer(
    view: &ClusterView,
    self_name: &str,
    pending: &[u32],
) -> Option<(usize, Load)> {
    let mut best: Option<(usize, Load)> = None;
    for (index, node) in view.nodes().iter().enumerate() {
        if node.name == self_name || !view.is_accepting(node) {
            continue;
        }
        let sent = pending.get(index).copied().unwrap_or(0);
        let used = u64::from(node.calls) + u64::from(sent);
        if used >= u64::from(node.capacity) {
            continue;
        }
        let load = Load::new(used, node.capacity);
        if best.is_none_or(|(_, b)| load.less_than(b)) {
            best = Some((index, load));
        }
    }
    best
}

/// Calls (plus pending redirects) over capacity, compared exactly as a fraction. Only built
/// for candidates, so `capacity > 0`.
#[derive(Debug, Clone, Copy)]
struct Load {
    used: u64,
    capacity: u32,
}

impl Load {
    fn new(used: u64, capacity: u32) -> Self {
        Load { used, capacity }
    }

    fn less_than(self, other: Load) -> bool {
        u128::from(self.used) * u128::from(other.capacity)
            < u128::from(other.used) * u128::from(self.capacity)
    }

    fn utilisation(self) -> f64 {
        self.used as f64 / f64::from(self.capacity)
    }
}
