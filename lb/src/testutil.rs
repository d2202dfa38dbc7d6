//! Test helpers: terse builders for node rows.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::role::Role;
use crate::view::NodeStatus;

/// Wall-clock "now" used by tests, ms since the UNIX epoch.
pub const NOW: i64 = 1_700_000_000_000;

/// A fresh, accepting main node `127.0.0.<host>` with `calls` of `capacity`.
pub fn node(name: &str, host: u8, calls: u32, capacity: u32) -> NodeStatus {
    let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, host));
    NodeStatus {
        name: name.to_owned(),
        role: Role::Main,
        sip: SocketAddr::new(ip, 5060),
        http: SocketAddr::new(ip, 8080),
        generation: 1,
        calls,
        capacity,
        cpu_pct: 12.5,
        load1: 0.25,
        shed_level: 0,
        draining: false,
        refusing: false,
        updated_at_ms: NOW,
        services: "sip,media,lb,web".to_owned(),
        version: "0.1.0".to_owned(),
        mem_used_kb: 1024,
        mem_total_kb: 4096,
    }
}

/// Builder-style tweaks on a node row.
pub trait NodeExt {
    /// Heartbeat written `ms` before [`NOW`].
    fn aged(self, ms: i64) -> Self;
    /// Draining flag set.
    fn draining(self) -> Self;
    /// Refusing flag set.
    fn refusing(self) -> Self;
    /// Shed level set.
    fn shed(self, level: u8) -> Self;
    /// Role set.
    fn role(self, role: Role) -> Self;
}

impl NodeExt for NodeStatus {
    fn aged(mut self, ms: i64) -> Self {
        self.updated_at_ms = NOW - ms;
        self
    }
    fn draining(mut self) -> Self {
        self.draining = true;
        self
    }
    fn refusing(mut self) -> Self {
        self.refusing = true;
        self
    }
    fn shed(mut self, level: u8) -> Self {
        self.shed_level = level;
        self
    }
    fn role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }
}
