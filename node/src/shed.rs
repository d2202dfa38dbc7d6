//! Load-shedding policy (sans-IO): a level from CPU and calls-versus-capacity, with hysteresis
//! so a node does not flap between levels. 0 normal; 1 heavy reports refused; 2 optional
//! background work deferred; 3 new calls refused. Calls in progress are never touched.

/// Pressure in percent at which each level (1, 2, 3) is entered.
pub const ENTER: [f32; 3] = [70.0, 85.0, 95.0];
/// How far pressure must fall below a level's entry point to leave it.
pub const HYSTERESIS: f32 = 5.0;

/// The next shed level given the current one and the pressures (percent).
pub fn next_level(current: u8, cpu_pct: f32, calls: u32, capacity: u32, refuse_cpu: f32) -> u8 {
    let call_pct = if capacity == 0 {
        100.0
    } else {
        calls as f32 * 100.0 / capacity as f32
    };
    // CPU reaches level 3 at the configured refuse threshold; calls only at full capacity,
    // because the decision already stops admitting calls there.
    let cpu_scaled = cpu_pct * ENTER[2] / refuse_cpu.max(1.0);
    let pressure = cpu_scaled.max(call_pct.min(ENTER[2] - 0.01));
    let mut level = ENTER.iter().filter(|&&t| pressure >= t).count() as u8;
    if level < current {
        // Leave a level only once pressure is clearly below it.
        let hold = ENTER
            .iter()
            .take(current as usize)
            .filter(|&&t| pressure >= t - HYSTERESIS)
            .count() as u8;
        level = hold.max(level);
    }
    level
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_rise_and_fall_with_hysteresis() {
        // (current, cpu, calls, capacity, expected)
        let cases = [
            (0, 10.0, 0, 100, 0),
            (0, 72.0, 0, 100, 1),
            (0, 90.0, 0, 100, 2),
            (0, 96.0, 0, 100, 3),
            (3, 92.0, 0, 100, 3),
            (3, 89.0, 0, 100, 2),
            (2, 81.0, 0, 100, 2),
            (2, 79.0, 0, 100, 1),
            (1, 60.0, 0, 100, 0),
            (0, 10.0, 100, 100, 2),
            (0, 10.0, 75, 100, 1),
            (0, 10.0, 0, 0, 2),
        ];
        for (cur, cpu, calls, cap, want) in cases {
            assert_eq!(
                next_level(cur, cpu, calls, cap, 95.0),
                want,
                "cur {cur} cpu {cpu} calls {calls}/{cap}"
            );
        }
    }

    #[test]
    fn refuse_threshold_scales_cpu() {
        assert_eq!(next_level(0, 50.0, 0, 100, 50.0), 3);
        assert_eq!(next_level(0, 45.0, 0, 100, 50.0), 2);
        assert_eq!(next_level(0, 40.0, 0, 100, 50.0), 1);
    }
}
