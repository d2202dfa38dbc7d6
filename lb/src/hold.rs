//! The cluster view while the heartbeat table cannot be read (a database outage).
//!
//! Heartbeat rows stop changing when the database is down, so left alone every peer's row ages
//! past the TTL and a main node ends up handling every call itself. But a main node still
//! probes its peers (SIP `OPTIONS`, see [`crate::health`]), and a peer answers a probe from
//! another node of the cluster with its live load ([`ProbeLoad`], header [`LOAD_HEADER`]). While
//! reads fail, the view is **held**: the rows of the last read stay, and a peer whose probe
//! answer arrived since that read has its row refreshed from the answer, stamped with the time
//! the answer arrived. So:
//!
//! - a peer that keeps answering stays alive, with its load as it last answered plus the
//!   redirects this node sent since ([`carry_pending`]);
//! - a peer that stops answering is excluded by the probes after a few misses, as always, and
//!   its row ages out after the TTL;
//! - a peer never heard from since the last read (probing off, an older node) ages out as its
//!   heartbeat would.
//!
//! Once a read succeeds again, its rows replace the held view: heartbeats rule again.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use crate::view::{ClusterView, NodeStatus};

#[cfg(test)]
mod tests;

/// The SIP header a node answers a peer's probe with.
pub const LOAD_HEADER: &str = "X-Callfleet-Load";

/// A node's live load as it answers a probe: `calls=3;capacity=100;shed=0;draining=0;refusing=0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeLoad {
    /// Calls in progress.
    pub calls: u32,
    /// Most calls it takes at once.
    pub capacity: u32,
    /// Shed level 0..=3.
    pub shed_level: u8,
    /// An operator is draining it.
    pub draining: bool,
    /// It refuses new calls itself.
    pub refusing: bool,
}

impl fmt::Display for ProbeLoad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "calls={};capacity={};shed={};draining={};refusing={}",
            self.calls,
            self.capacity,
            self.shed_level,
            u8::from(self.draining),
            u8::from(self.refusing)
        )
    }
}

/// Why a [`LOAD_HEADER`] value was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseLoadError {
    /// A `key=value` pair without `=`.
    #[error("probe load: `{0}` is not key=value")]
    Pair(String),
    /// A key this version does not know, or one given twice.
    #[error("probe load: unknown or repeated key `{0}`")]
    Key(String),
    /// A value out of range or not a number.
    #[error("probe load: bad value for `{0}`")]
    Value(&'static str),
    /// A key missing.
    #[error("probe load: `{0}` missing")]
    Missing(&'static str),
}

impl FromStr for ProbeLoad {
    type Err = ParseLoadError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const KEYS: [&str; 5] = ["calls", "capacity", "shed", "draining", "refusing"];
        let mut values: [Option<u32>; 5] = [None; 5];
        for pair in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| ParseLoadError::Pair(pair.to_owned()))?;
            let key = key.trim();
            let index = KEYS
                .iter()
                .position(|k| *k == key)
                .filter(|&i| values[i].is_none())
                .ok_or_else(|| ParseLoadError::Key(key.to_owned()))?;
            let parsed = value.trim().parse();
            values[index] = Some(parsed.map_err(|_| ParseLoadError::Value(KEYS[index]))?);
        }
        let get = |i: usize| values[i].ok_or(ParseLoadError::Missing(KEYS[i]));
        let flag = |i: usize| match get(i)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(ParseLoadError::Value(KEYS[i])),
        };
        let (calls, capacity, shed) = (get(0)?, get(1)?, get(2)?);
        Ok(ProbeLoad {
            calls,
            capacity,
            shed_level: u8::try_from(shed)
                .ok()
                .filter(|l| *l <= 3)
                .ok_or(ParseLoadError::Value("shed"))?,
            draining: flag(3)?,
            refusing: flag(4)?,
        })
    }
}

/// The last probe answer of one peer: its load and when it arrived (this node's clock, ms since
/// the UNIX epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// The load it answered with.
    pub load: ProbeLoad,
    /// When the answer arrived.
    pub at_ms: i64,
}

/// The view held at `now_ms` while the heartbeat table cannot be read: the rows of `read` (the
/// last view read from the table), each peer's row refreshed from its probe answer when one
/// arrived since that read. This node's own row (`self_name`) is left as read: the decision
/// uses this node's live load anyway.
pub fn held_view(
    read: &ClusterView,
    answers: &HashMap<String, Answer>,
    self_name: &str,
    now_ms: i64,
) -> ClusterView {
    let rows = read
        .nodes()
        .iter()
        .map(|row| match answers.get(&row.name) {
            Some(answer) if row.name != self_name && answer.at_ms >= read.built_at_ms() => {
                refreshed(row, answer)
            }
            _ => row.clone(),
        })
        .collect();
    ClusterView::from_rows(rows, now_ms, read.ttl())
}

fn refreshed(row: &NodeStatus, answer: &Answer) -> NodeStatus {
    let load = answer.load;
    NodeStatus {
        calls: load.calls,
        capacity: load.capacity,
        shed_level: load.shed_level,
        draining: load.draining,
        refusing: load.refusing,
        updated_at_ms: answer.at_ms,
        ..row.clone()
    }
}

/// The pending redirects of `old` carried over to `new`: a node whose row did not change
/// (same generation, same heartbeat or answer time) keeps its count; a node whose row is newer
/// starts again from 0, since its new load already includes the calls those redirects brought.
pub fn carry_pending(old: &ClusterView, old_pending: &[u32], new: &ClusterView) -> Vec<u32> {
    new.nodes()
        .iter()
        .map(|row| {
            old.position(&row.name)
                .filter(|&i| {
                    let was = &old.nodes()[i];
                    was.generation == row.generation && was.updated_at_ms == row.updated_at_ms
                })
                .and_then(|i| old_pending.get(i).copied())
                .unwrap_or(0)
        })
        .collect()
}
