//! Alerts: detection rules over what a node sees, and notifications by e-mail and webhook.
//!
//! - `rules` (pure): the conditions true now: nodes that stopped heartbeating, the database or
//!   a lockd unreachable from this node, shedding, nearly full disks, the record spool filling,
//!   a queue's recent service level below target, a carrier silent during open hours, bans;
//! - `engine` (pure): pending → firing → clearing → resolved, per alert, with `raise_after`
//!   per kind, `clear_after` hysteresis and reminders; unknown data changes nothing;
//! - `hours` (pure): the open hours of the carrier rule;
//! - `deliver`: the message (JSON, e-mail text), HMAC signatures, one task per channel with
//!   retries and backoff;
//! - `cluster`: who sends what. A node-local alert is sent by its node. A cluster-wide alert
//!   (node down, service level, carrier) is seen by every node: the node holding the lockd
//!   lease `alerts:<kind>:<subject>` sends it, and the `alerts` row it inserts (or deletes)
//!   makes the raise (or the end) happen once;
//! - `observe` and `shell`: the I/O: reading the inputs every `alerts.interval`, stepping the
//!   engine, mirroring firing alerts into SQL for every panel.
//!
//! [`Inputs`] is what other parts of the node feed: the heartbeat reports database writes,
//! SIP admission reports carrier INVITEs, and the record spool (when it exists) reports its
//! fill through [`SpoolGauge`]; bans are read from [`callfleet_web::Metrics::bans`].

pub mod cluster;
pub mod deliver;
pub mod engine;
pub mod hours;
pub mod observe;
pub mod rules;
pub mod shell;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

pub use shell::run;

/// Sources remembered by [`Inputs::invite_from`] at most (carriers are few; a flood of
/// allowed sources stops being remembered, it never grows memory).
const MAX_SOURCES: usize = 4096;

/// What the rest of the node tells the alert rules. Cheap to share (held in `Node`).
#[derive(Debug, Default)]
pub struct Inputs {
    database_failing: AtomicBool,
    /// The record spool's fill (shared with the record writer).
    pub spool: std::sync::Arc<SpoolGauge>,
    /// Last INVITE time (ms) per admitted source address, since the rules last took them.
    sources: Mutex<HashMap<IpAddr, i64>>,
}

impl Inputs {
    /// The heartbeat's write to the database succeeded (`true`) or failed.
    pub fn database_write(&self, ok: bool) {
        self.database_failing.store(!ok, Ordering::Relaxed);
    }

    /// Whether the last heartbeat write failed.
    pub fn database_failing(&self) -> bool {
        self.database_failing.load(Ordering::Relaxed)
    }

    /// An INVITE from `source` was admitted at `now_ms` (the carrier-silence rule).
    pub fn invite_from(&self, source: IpAddr, now_ms: i64) {
        let mut sources = self
            .sources
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if sources.len() < MAX_SOURCES || sources.contains_key(&source) {
            sources.insert(source, now_ms);
        }
    }

    /// The sources seen since the last call, with their last INVITE time.
    pub fn take_sources(&self) -> HashMap<IpAddr, i64> {
        let mut sources = self
            .sources
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        std::mem::take(&mut *sources)
    }
}

/// How full the record spool is: the spool sets it whenever its use changes, the spool rule
/// reads it. Until a spool sets it, the node has no spool and the rule stays silent.
#[derive(Debug, Default)]
pub struct SpoolGauge {
    used_bytes: AtomicU64,
    /// 0: no spool.
    capacity_bytes: AtomicU64,
}

impl SpoolGauge {
    /// The spool holds `used` bytes of at most `capacity`.
    pub fn set(&self, used: u64, capacity: u64) {
        self.used_bytes.store(used, Ordering::Relaxed);
        self.capacity_bytes.store(capacity, Ordering::Relaxed);
    }

    /// Percent used, `None` without a spool.
    pub fn fill_pct(&self) -> Option<f64> {
        let capacity = self.capacity_bytes.load(Ordering::Relaxed);
        (capacity > 0)
            .then(|| self.used_bytes.load(Ordering::Relaxed) as f64 * 100.0 / capacity as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_remember_what_they_are_told() {
        let inputs = Inputs::default();
        assert!(!inputs.database_failing());
        inputs.database_write(false);
        assert!(inputs.database_failing());
        inputs.database_write(true);
        assert!(!inputs.database_failing());

        assert_eq!(inputs.spool.fill_pct(), None, "no spool yet");
        inputs.spool.set(450, 1000);
        assert_eq!(inputs.spool.fill_pct(), Some(45.0));

        let ip: IpAddr = "192.0.2.7".parse().expect("ip");
        inputs.invite_from(ip, 10);
        inputs.invite_from(ip, 20);
        assert_eq!(inputs.take_sources(), HashMap::from([(ip, 20)]));
        assert!(inputs.take_sources().is_empty(), "taken once");
    }

    #[test]
    fn sources_are_bounded() {
        let inputs = Inputs::default();
        for i in 0..(MAX_SOURCES as u32 + 10) {
            inputs.invite_from(IpAddr::from(i.to_be_bytes()), 1);
        }
        assert_eq!(inputs.take_sources().len(), MAX_SOURCES);
    }
}
