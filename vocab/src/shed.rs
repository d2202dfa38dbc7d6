//! Load shedding: the work a busy node gives up first ([`Work`]), and the node's current
//! level as every part of it reads it ([`ShedGate`]).
//!
//! Levels: 0 normal; 1 heavy reports sent elsewhere; 2 optional background work deferred
//! too; 3 new calls refused too. Calls in progress are never touched at any level.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// Highest shed level.
pub const MAX_LEVEL: u8 = 3;

/// What a piece of work is, for the shed level: each kind stops at its own level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Work {
    /// A report page with results, or a CSV export: sent to an idle node from level 1.
    HeavyReport,
    /// Optional background work (MP3 conversion, trace export batches, history pruning): not
    /// picked up from level 2; it resumes by itself when the level falls.
    Background,
    /// A new call: refused from level 3.
    NewCall,
}

impl Work {
    /// Every kind, in the order they are shed.
    pub const ALL: [Work; 3] = [Work::HeavyReport, Work::Background, Work::NewCall];

    /// The level from which this work is refused.
    pub const fn shed_from(self) -> u8 {
        match self {
            Work::HeavyReport => 1,
            Work::Background => 2,
            Work::NewCall => 3,
        }
    }

    /// Whether this work may run at `level`.
    pub const fn allowed_at(self, level: u8) -> bool {
        level < self.shed_from()
    }

    /// The name logs and docs use.
    pub const fn as_str(self) -> &'static str {
        match self {
            Work::HeavyReport => "heavy_report",
            Work::Background => "background",
            Work::NewCall => "new_call",
        }
    }
}

/// The node's shed level, shared: the heartbeat task sets it, everyone else asks it. A cheap
/// clone (one `Arc`); reading it is one relaxed atomic load, fine on any hot path.
#[derive(Debug, Clone, Default)]
pub struct ShedGate(Arc<AtomicU8>);

impl ShedGate {
    /// A gate at level 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current level (0..=3).
    pub fn level(&self) -> u8 {
        self.0.load(Ordering::Relaxed)
    }

    /// Sets the level (clamped to 0..=3); returns the previous one.
    pub fn set(&self, level: u8) -> u8 {
        self.0.swap(level.min(MAX_LEVEL), Ordering::Relaxed)
    }

    /// Whether `work` may run now.
    pub fn allows(&self, work: Work) -> bool {
        work.allowed_at(self.level())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_work_stops_at_its_level() {
        // (work, level, allowed)
        let cases = [
            (Work::HeavyReport, 0, true),
            (Work::HeavyReport, 1, false),
            (Work::HeavyReport, 3, false),
            (Work::Background, 1, true),
            (Work::Background, 2, false),
            (Work::NewCall, 2, true),
            (Work::NewCall, 3, false),
        ];
        for (work, level, want) in cases {
            assert_eq!(work.allowed_at(level), want, "{work:?} at {level}");
        }
    }

    #[test]
    fn the_gate_is_shared_and_clamped() {
        let gate = ShedGate::new();
        let seen = gate.clone();
        assert!(seen.allows(Work::HeavyReport));
        assert_eq!(gate.set(2), 0);
        assert_eq!(seen.level(), 2);
        assert!(!seen.allows(Work::Background) && seen.allows(Work::NewCall));
        assert_eq!(gate.set(9), 2);
        assert_eq!(seen.level(), MAX_LEVEL);
    }
}
