//! Load-shedding policy (sans-IO): a level from CPU smoothed over a few seconds, the load
//! average per core and calls versus capacity, with hysteresis so a node does not flap
//! between levels. 0 normal; 1 heavy reports sent to an idle node; 2 optional background work
//! deferred; 3 new calls refused. Calls in progress are never touched.
//!
//! The heartbeat task feeds it one sample per beat and stores the level in the node's
//! [`ShedGate`]; work asks the gate ([`ShedGate::allows`]) with its [`Work`] kind. Background
//! jobs (MP3 conversion, trace export batches, history pruning) call
//! `Lifecycle::background_allowed` (the gate's answer for [`Work::Background`], counting a
//! deferral) before they pick up an item, and simply try again later when refused.

use std::collections::VecDeque;
use std::time::Duration;

pub use callfleet_vocab::{ShedGate, Work};

/// Whether `work` may run at shed `level` (the gate's test, for callers holding a level).
pub fn allows(level: u8, work: Work) -> bool {
    work.allowed_at(level)
}

/// What a level does, for the log line of a change.
pub fn meaning(level: u8) -> &'static str {
    match level {
        0 => "normal: nothing shed",
        1 => "heavy reports sent to an idle node",
        2 => "heavy reports sent elsewhere, background work deferred",
        _ => "new calls refused, reports and background work shed; calls in progress go on",
    }
}

/// Where each input enters a level (from `[shed]` and `lb.refuse_cpu`), ascending.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// Smoothed CPU % entering levels 1, 2 and 3 (3 is `lb.refuse_cpu`).
    pub cpu: [f32; 3],
    /// Load average per core, in percent (1.0 per core = 100), entering levels 1 and 2.
    pub load: [f32; 2],
    /// Calls over capacity, in percent, entering levels 1 and 2. Calls alone never reach 3:
    /// a node at capacity already refuses new calls.
    pub calls: [f32; 2],
    /// How far (in points) every input must fall below a level's entry to leave it.
    pub hysteresis: f32,
}

/// One sample of what the level is computed from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Inputs {
    /// CPU of the host in percent, smoothed ([`CpuWindow`]).
    pub cpu_pct: f32,
    /// One-minute load average divided by the number of cores.
    pub load_per_core: f32,
    /// Calls in progress.
    pub calls: u32,
    /// Most calls the node takes (0 counts as full).
    pub capacity: u32,
}

impl Inputs {
    /// Calls over capacity in percent.
    pub fn call_pct(&self) -> f32 {
        if self.capacity == 0 {
            100.0
        } else {
            self.calls as f32 * 100.0 / self.capacity as f32
        }
    }

    /// The level the inputs reach: at a threshold or above it (`slack` 0), or, to stay at a
    /// level, less than `slack` points below it. An input `slack` points below a threshold
    /// (an idle one: 0) never holds a level, however low the threshold.
    fn level(&self, t: &Thresholds, slack: f32) -> u8 {
        let holds = |value: f32, x: f32| {
            if slack > 0.0 {
                value > x - slack
            } else {
                value >= x
            }
        };
        let reached = |value: f32, at: &[f32]| at.iter().filter(|&&x| holds(value, x)).count();
        let cpu = reached(self.cpu_pct, &t.cpu);
        let load = reached(self.load_per_core * 100.0, &t.load);
        let calls = reached(self.call_pct(), &t.calls);
        cpu.max(load).max(calls) as u8
    }
}

/// The next shed level given the current one: up at once, down only once every input is
/// `hysteresis` points below the current level's entry.
pub fn next_level(current: u8, t: &Thresholds, inputs: &Inputs) -> u8 {
    let level = inputs.level(t, 0.0);
    if level >= current {
        return level;
    }
    level.max(inputs.level(t, t.hysteresis).min(current))
}

/// Samples per smoothing window: `window` over the sampling `interval`, at least 1.
pub fn window_len(window: Duration, interval: Duration) -> usize {
    if interval.is_zero() {
        return 1;
    }
    (window.as_millis().div_ceil(interval.as_millis())).clamp(1, 3600) as usize
}

/// The mean of the last `len` CPU samples: one busy second does not shed, a busy window does.
#[derive(Debug, Clone)]
pub struct CpuWindow {
    samples: VecDeque<f32>,
    len: usize,
}

impl CpuWindow {
    /// A window of `len` samples (at least 1).
    pub fn new(len: usize) -> Self {
        let len = len.max(1);
        Self {
            samples: VecDeque::with_capacity(len),
            len,
        }
    }

    /// Adds a sample (a value that is not a number counts as 0, and values are kept in
    /// 0..=100) and returns the mean of the window.
    pub fn push(&mut self, pct: f32) -> f32 {
        let pct = if pct.is_finite() {
            pct.clamp(0.0, 100.0)
        } else {
            0.0
        };
        if self.samples.len() == self.len {
            self.samples.pop_front();
        }
        self.samples.push_back(pct);
        self.samples.iter().sum::<f32>() / self.samples.len() as f32
    }
}

#[cfg(test)]
mod tests;
