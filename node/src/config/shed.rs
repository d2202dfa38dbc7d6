//! `[shed]`: when the node sheds load (see `crate::shed`): thresholds of each input, the
//! hysteresis, the CPU smoothing window, and what a shed report request is told.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::shed::Thresholds;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ShedSection {
    /// Smoothed CPU % entering levels 1 and 2; unset: 70/95 and 85/95 of `lb.refuse_cpu`
    /// (70 and 85 with the default 95). Level 3 on CPU is `lb.refuse_cpu`.
    #[serde(default)]
    pub cpu: Option<[f32; 2]>,
    /// One-minute load average per core entering levels 1 and 2.
    #[serde(default = "default_load")]
    pub load_per_core: [f32; 2],
    /// Calls over capacity (%) entering levels 1 and 2.
    #[serde(default = "default_calls")]
    pub calls: [f32; 2],
    /// Points every input must fall below a level's entry to leave it (load per core counts
    /// 1.0 as 100 points).
    #[serde(default = "default_hysteresis")]
    pub hysteresis: f32,
    /// CPU is the mean of the samples of this window (one per `heartbeat.interval`).
    #[serde(default = "default_cpu_window", with = "humantime_serde")]
    pub cpu_window: Duration,
    /// `Retry-After` of a report request refused with 503 (whole seconds).
    #[serde(default = "default_retry_after", with = "humantime_serde")]
    pub retry_after: Duration,
    /// At level 1 or more, the panel's event stream sends at most one snapshot per this.
    #[serde(default = "default_panel_interval", with = "humantime_serde")]
    pub panel_interval: Duration,
}

impl Default for ShedSection {
    fn default() -> Self {
        Self {
            cpu: None,
            load_per_core: default_load(),
            calls: default_calls(),
            hysteresis: default_hysteresis(),
            cpu_window: default_cpu_window(),
            retry_after: default_retry_after(),
            panel_interval: default_panel_interval(),
        }
    }
}

impl ShedSection {
    /// The thresholds the policy uses, with level 3 on CPU at `refuse_cpu` (levels 1 and 2
    /// are never above it).
    pub fn thresholds(&self, refuse_cpu: f32) -> Thresholds {
        let [c1, c2] = self
            .cpu
            .unwrap_or([refuse_cpu * 70.0 / 95.0, refuse_cpu * 85.0 / 95.0]);
        Thresholds {
            cpu: [c1.min(refuse_cpu), c2.min(refuse_cpu), refuse_cpu],
            load: self.load_per_core.map(|l| l * 100.0),
            calls: self.calls,
            hysteresis: self.hysteresis,
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, problem: &str| {
            Err(ConfigError::Invalid {
                key,
                problem: problem.to_string(),
            })
        };
        let ascending =
            |pair: [f32; 2]| pair.iter().all(|v| v.is_finite() && *v > 0.0) && pair[0] <= pair[1];
        if self.cpu.is_some_and(|c| !ascending(c)) {
            return bad(
                "shed.cpu",
                "two positive percentages, the first not above the second",
            );
        }
        if !ascending(self.load_per_core) {
            return bad(
                "shed.load_per_core",
                "two positive numbers, the first not above the second",
            );
        }
        if !ascending(self.calls) {
            return bad(
                "shed.calls",
                "two positive percentages, the first not above the second",
            );
        }
        if !(0.0..=50.0).contains(&self.hysteresis) {
            return bad("shed.hysteresis", "must be between 0 and 50 points");
        }
        if self.cpu_window.is_zero() || self.cpu_window > Duration::from_secs(600) {
            return bad("shed.cpu_window", "must be between 1ms and 10m");
        }
        if self.retry_after < Duration::from_secs(1) || self.retry_after > Duration::from_secs(3600)
        {
            return bad("shed.retry_after", "must be between 1s and 1h");
        }
        if self.panel_interval.is_zero() || self.panel_interval > Duration::from_secs(60) {
            return bad("shed.panel_interval", "must be between 1ms and 60s");
        }
        Ok(())
    }
}

fn default_load() -> [f32; 2] {
    [1.5, 2.0]
}

fn default_calls() -> [f32; 2] {
    [70.0, 85.0]
}

fn default_hysteresis() -> f32 {
    5.0
}

fn default_cpu_window() -> Duration {
    Duration::from_secs(10)
}

fn default_retry_after() -> Duration {
    Duration::from_secs(30)
}

fn default_panel_interval() -> Duration {
    Duration::from_secs(5)
}
