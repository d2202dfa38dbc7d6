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

/// How much busier than the best peer a main node may be and still keep a new call: within the
/// band it keeps the call (no redirect for a difference that does not matter), past it the call
/// goes to the best peer. The band has a relative part, for large numbers of calls, and an
/// absolute part in calls, for small numbers, where 10 % is less than one call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    /// This node may hold up to this fraction more than the best peer would at its utilisation
    /// (0.10: 10 % more). Negative or NaN counts as 0.
    pub relative: f32,
    /// And this many calls more on top.
    pub calls: u32,
}

impl Band {
    /// No band: a call goes to any strictly less loaded peer.
    pub const NONE: Band = Band {
        relative: 0.0,
        calls: 0,
    };

    /// Whether a node holding `here` keeps the call against the best peer holding `peer`:
    /// `here.used ≤ peer's utilisation × here.capacity × (1 + relative) + calls`.
    fn keeps(self, here: Load, peer: Load) -> bool {
        let relative = f64::from(self.relative);
        let relative = if relative.is_nan() {
            0.0
        } else {
            relative.max(0.0)
        };
        let peer_at_our_size = peer.utilisation() * f64::from(here.capacity);
        here.used as f64 <= peer_at_our_size * (1.0 + relative) + f64::from(self.calls)
    }
}

/// What this node knows of the other nodes beyond their heartbeat rows, by index in
/// [`ClusterView::nodes`]; missing entries count as 0 and `false`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Peers<'a> {
    /// Redirects sent to each node since the view was built: load on its way there.
    pub pending: &'a [u32],
    /// Nodes this node's probes found unresponsive: never chosen, whatever their heartbeat says.
    pub down: &'a [bool],
}

/// Decides where one new INVITE goes.
///
/// - `marked` (the Request-URI carries the redirect marker), any role: handle it if this node is
///   below its hard capacity, even if draining or refusing, else refuse. Never redirect twice.
/// - `extra` role: handle it if this node is not refusing, not draining and below capacity,
///   else refuse. Extra nodes never redirect.
/// - `main` role: the candidates are this node (judged by `local`, never by its own row in the
///   view) if it is not refusing, not draining and below capacity, plus every other node that is
///   [accepting](ClusterView::is_accepting), not [down](Peers::down), with
///   `calls + pending < capacity`. The least utilised peer, `(calls + pending) / capacity`, ties
///   broken by name, is the best peer. This node handles the call if it is within the
///   [`Band`] of the best peer; otherwise the call goes to the best peer; with no candidate it
///   is refused.
///
/// The caller adds one to `peers.pending` on [`Choice::Redirect`].
pub fn choose(
    view: &ClusterView,
    self_name: &str,
    role: Role,
    marked: bool,
    local: LocalLoad,
    peers: Peers<'_>,
    band: Band,
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
    match (here, least_loaded_peer(view, self_name, peers)) {
        (Some(_), None) => Choice::Handle,
        (Some(here), Some((index, peer))) => handle_if_else(band.keeps(here, peer), index),
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

/// The accepting peer (not `self_name`, not down) with room left and the least utilisation,
/// first by name among equals (the view is sorted by name and only a strictly smaller load
/// replaces).
fn least_loaded_peer(
    view: &ClusterView,
    self_name: &str,
    peers: Peers<'_>,
) -> Option<(usize, Load)> {
    let mut best: Option<(usize, Load)> = None;
    for (index, node) in view.nodes().iter().enumerate() {
        let down = peers.down.get(index).copied().unwrap_or(false);
        if node.name == self_name || down || !view.is_accepting(node) {
            continue;
        }
        let sent = peers.pending.get(index).copied().unwrap_or(0);
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
