//! Cluster view: an immutable, timestamped snapshot of every node's last heartbeat.
//!
//! Two words are kept apart on purpose:
//! - **alive**: the heartbeat is fresh (`age < ttl`), so the node process is up. The API shows it.
//! - **accepting**: alive, not draining, not refusing and below [`REFUSE_SHED_LEVEL`]: the node
//!   may be sent new calls. Only accepting nodes are redirect targets.
//!
//! A heartbeat written by a clock ahead of ours has a negative age and counts as fresh.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::role::Role;

#[cfg(test)]
mod tests;

/// Shed level at which a node takes no new calls (DESIGN §5 level 3); such a node is not
/// accepting even if its `refusing` flag is not set.
pub const REFUSE_SHED_LEVEL: u8 = 3;

/// One node as the view sees it: its last heartbeat row, typed by the node that read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Unique node name (primary key of the heartbeat table).
    pub name: String,
    /// Role the node runs with.
    pub role: Role,
    /// Where it takes SIP (the 302 Contact points here).
    pub sip: SocketAddr,
    /// Where it serves HTTP.
    pub http: SocketAddr,
    /// Changes at every start of the node process.
    pub generation: i64,
    /// Calls in progress.
    pub calls: u32,
    /// Most calls the node takes at once; 0 means it takes none.
    pub capacity: u32,
    /// CPU use in percent (0.0..=100.0 per the whole host).
    pub cpu_pct: f32,
    /// Load average over one minute.
    pub load1: f32,
    /// Shed level 0..=3 (DESIGN §5).
    pub shed_level: u8,
    /// Operator asked it to take no new calls.
    pub draining: bool,
    /// It refuses new calls itself (at capacity or CPU over the refuse threshold).
    pub refusing: bool,
    /// Wall-clock time of the writer when it wrote the row, ms since the UNIX epoch.
    pub updated_at_ms: i64,
    /// Services it runs, comma-separated (`"sip,media,lb,web"`, with `https` and `sips` when it
    /// serves HTTPS and SIP over TLS); passed through to the API.
    pub services: String,
    /// Its software version; passed through to the API.
    pub version: String,
    /// Memory in use, KiB; passed through to the API.
    pub mem_used_kb: i64,
    /// Memory installed, KiB; passed through to the API.
    pub mem_total_kb: i64,
}

impl NodeStatus {
    /// Calls over capacity (1.0 = full; may exceed 1.0). A node with capacity 0 counts as full.
    pub fn utilisation(&self) -> f32 {
        if self.capacity == 0 {
            1.0
        } else {
            self.calls as f32 / self.capacity as f32
        }
    }

    /// Milliseconds between the heartbeat and `now_ms`; negative if the writer's clock is ahead.
    pub fn heartbeat_age_ms(&self, now_ms: i64) -> i64 {
        now_ms.saturating_sub(self.updated_at_ms)
    }

    /// Whether the heartbeat is younger than `ttl` at `now_ms`: the node process is up.
    pub fn alive_at(&self, now_ms: i64, ttl: Duration) -> bool {
        self.heartbeat_age_ms(now_ms) < duration_ms(ttl)
    }

    /// Whether the node may be sent new calls at `now_ms`: alive, not draining, not refusing,
    /// below [`REFUSE_SHED_LEVEL`].
    pub fn accepting_at(&self, now_ms: i64, ttl: Duration) -> bool {
        self.alive_at(now_ms, ttl)
            && !self.draining
            && !self.refusing
            && self.shed_level < REFUSE_SHED_LEVEL
    }
}

/// All nodes' heartbeats as read at one instant, sorted by name, one row per name.
///
/// Immutable: the balancer swaps a whole new view in after every read of the heartbeat table.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterView {
    nodes: Vec<NodeStatus>,
    built_at_ms: i64,
    ttl: Duration,
}

impl ClusterView {
    /// Builds the view read at `now_ms`. Rows are sorted by name; if a name appears twice, the
    /// row with the highest generation, then the latest heartbeat, is kept.
    pub fn from_rows(mut rows: Vec<NodeStatus>, now_ms: i64, ttl: Duration) -> Self {
        rows.sort_unstable_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then(b.generation.cmp(&a.generation))
                .then(b.updated_at_ms.cmp(&a.updated_at_ms))
        });
        // `dedup_by` keeps the first of each run, which the sort made the newest.
        rows.dedup_by(|later, kept| later.name == kept.name);
        ClusterView {
            nodes: rows,
            built_at_ms: now_ms,
            ttl,
        }
    }

    /// A view with no nodes, as a balancer has before its first read.
    pub fn empty(now_ms: i64, ttl: Duration) -> Self {
        Self::from_rows(Vec::new(), now_ms, ttl)
    }

    /// Every node, sorted by name.
    pub fn nodes(&self) -> &[NodeStatus] {
        &self.nodes
    }

    /// Index of `name` in [`Self::nodes`].
    pub fn position(&self, name: &str) -> Option<usize> {
        self.nodes
            .binary_search_by(|n| n.name.as_str().cmp(name))
            .ok()
    }

    /// The row of `name`, if the view has one.
    pub fn get(&self, name: &str) -> Option<&NodeStatus> {
        self.position(name).map(|i| &self.nodes[i])
    }

    /// When the rows were read, ms since the UNIX epoch.
    pub fn built_at_ms(&self) -> i64 {
        self.built_at_ms
    }

    /// How long a heartbeat counts as fresh.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Whether `node`'s heartbeat was fresh when the view was built.
    pub fn is_alive(&self, node: &NodeStatus) -> bool {
        node.alive_at(self.built_at_ms, self.ttl)
    }

    /// Whether `node` could be sent new calls when the view was built.
    pub fn is_accepting(&self, node: &NodeStatus) -> bool {
        node.accepting_at(self.built_at_ms, self.ttl)
    }

    /// Whether the node called `name` is known and its heartbeat was fresh.
    pub fn alive(&self, name: &str) -> bool {
        self.get(name).is_some_and(|n| self.is_alive(n))
    }

    /// Whether the node called `name` is known and could be sent new calls.
    pub fn accepting(&self, name: &str) -> bool {
        self.get(name).is_some_and(|n| self.is_accepting(n))
    }
}

/// `ttl` in whole milliseconds, saturating at `i64::MAX`.
pub(crate) fn duration_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}
