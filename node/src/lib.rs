//! callfleet node: one process of the call-centre cluster.
//!
//! Layout:
//! - `config`: typed TOML configuration (unknown keys rejected);
//! - `node`: the shared state and the start/stop sequence;
//! - `heartbeat`: this node's row every interval, and the cluster view refresh;
//! - `sip`: UDP front (stateless fast path), transactions and dialogs (rsipstack), calls;
//! - `media`: SDP, RTP ports and packets, music on hold;
//! - `calls`, `records`: live calls in memory and their SQL records (written off the call path);
//! - `shed`: the load-shedding policy;
//! - `cli`: the `callfleet` subcommands (`demo`, `doctor`, `migrate`, `node drain`).

#![forbid(unsafe_code)]

pub mod calls;
pub mod cli;
pub mod config;
pub mod heartbeat;
pub mod media;
pub mod node;
pub mod records;
pub mod shed;
pub mod sip;

/// Wall-clock milliseconds since the UNIX epoch (heartbeats and records use wall time).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
