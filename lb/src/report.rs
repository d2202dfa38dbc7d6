//! The per-node row of `GET /api/v1/nodes`: the heartbeat plus liveness judged at request time.

use std::fmt::Display;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

use crate::role::Role;
use crate::view::NodeStatus;

#[cfg(test)]
mod tests;

/// One node as the API shows it. Addresses serialize as `"ip:port"` strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeReport {
    /// Node name.
    pub name: String,
    /// `"main"` or `"extra"`.
    pub role: Role,
    /// SIP address.
    #[serde(serialize_with = "as_string")]
    pub sip: SocketAddr,
    /// HTTP address.
    #[serde(serialize_with = "as_string")]
    pub http: SocketAddr,
    /// Heartbeat fresh: the node process is up (it may still be draining or refusing).
    pub alive: bool,
    /// Alive, not draining, not refusing, below shed level 3 and answering this node's probes:
    /// it may be sent new calls.
    pub accepting: bool,
    /// Answering this node's probes (always true on nodes that do not probe: extra nodes).
    #[serde(default = "yes")]
    pub responding: bool,
    /// Calls in progress at its last heartbeat.
    pub calls: u32,
    /// Most calls it takes at once.
    pub capacity: u32,
    /// Redirects this node sent it since the last heartbeat read.
    pub pending: u32,
    /// CPU use, percent.
    pub cpu: f32,
    /// Load average over one minute.
    pub load1: f32,
    /// Shed level 0..=3.
    pub shed_level: u8,
    /// Operator asked it to take no new calls.
    pub draining: bool,
    /// It refuses new calls itself.
    pub refusing: bool,
    /// Milliseconds since its last heartbeat (negative if its clock is ahead of ours).
    pub heartbeat_age_ms: i64,
    /// Changes at every start of the node.
    pub generation: i64,
    /// Services it runs, comma-separated.
    pub services: String,
    /// Software version.
    pub version: String,
    /// Memory in use, KiB.
    pub mem_used_kb: i64,
    /// Memory installed, KiB.
    pub mem_total_kb: i64,
}

impl NodeReport {
    /// The report for `node` judged at `now_ms` with heartbeat `ttl`, `pending` redirects sent,
    /// and whether it answers this node's probes.
    pub fn from_status(
        node: &NodeStatus,
        now_ms: i64,
        ttl: Duration,
        pending: u32,
        responding: bool,
    ) -> Self {
        NodeReport {
            name: node.name.clone(),
            role: node.role,
            sip: node.sip,
            http: node.http,
            alive: node.alive_at(now_ms, ttl),
            accepting: responding && node.accepting_at(now_ms, ttl),
            responding,
            calls: node.calls,
            capacity: node.capacity,
            pending,
            cpu: node.cpu_pct,
            load1: node.load1,
            shed_level: node.shed_level,
            draining: node.draining,
            refusing: node.refusing,
            heartbeat_age_ms: node.heartbeat_age_ms(now_ms),
            generation: node.generation,
            services: node.services.clone(),
            version: node.version.clone(),
            mem_used_kb: node.mem_used_kb,
            mem_total_kb: node.mem_total_kb,
        }
    }
}

fn yes() -> bool {
    true
}

/// Serializes through `Display` whatever the format (serde's own `SocketAddr` impl does so only
/// for human-readable formats).
fn as_string<T: Display, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}
