//! The one wall clock of callfleet: what heartbeats, records, sessions and reports stamp.
//! Decision logic never reads it: it takes the time as an argument (tests pass their own).

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the UNIX epoch: 0 when the clock is before it, `i64::MAX` past year
/// 292 million.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_is_past_2026_and_moves_forward() {
        let a = now_ms();
        assert!(a > 1_767_225_600_000, "{a}");
        assert!(now_ms() >= a);
    }
}
