//! Log lines about bad input, at most `burst` per kind per interval: a flood of the same
//! defect writes a few lines (then one with how many were left out), not one per datagram.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Remembers, per kind, when its window began, how many lines it let through in it, and how
/// many it left out. Kinds are a closed set (static names, log call sites), so the map stays
/// small.
pub struct LogLimiter<K = &'static str> {
    every: Duration,
    burst: u32,
    seen: Mutex<HashMap<K, Window>>,
}

struct Window {
    start: Instant,
    used: u32,
    left_out: u64,
}

impl<K: Hash + Eq> LogLimiter<K> {
    /// One line per kind every `every`.
    pub fn new(every: Duration) -> LogLimiter<K> {
        LogLimiter::with_burst(every, 1)
    }

    /// Up to `burst` lines per kind every `every` (at least one).
    pub fn with_burst(every: Duration, burst: u32) -> LogLimiter<K> {
        LogLimiter {
            every,
            burst: burst.max(1),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Whether to log one more of `kind` at `now`: `Some(left_out)` (how many of this kind
    /// were not logged in the window that just ended; 0 within a window) or `None` to stay
    /// quiet.
    pub fn allow(&self, kind: K, now: Instant) -> Option<u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let window = seen.entry(kind).or_insert(Window {
            start: now,
            used: 0,
            left_out: 0,
        });
        if now.saturating_duration_since(window.start) >= self.every {
            let left_out = window.left_out;
            *window = Window {
                start: now,
                used: 1,
                left_out: 0,
            };
            return Some(left_out);
        }
        if window.used < self.burst {
            window.used += 1;
            return Some(0);
        }
        window.left_out += 1;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_kind_per_interval_with_the_count_left_out() {
        let l = LogLimiter::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(l.allow("bad via", t0), Some(0));
        assert_eq!(l.allow("bad via", t0 + Duration::from_secs(1)), None);
        assert_eq!(l.allow("bad via", t0 + Duration::from_secs(9)), None);
        assert_eq!(
            l.allow("no tag", t0 + Duration::from_secs(9)),
            Some(0),
            "kinds apart"
        );
        assert_eq!(l.allow("bad via", t0 + Duration::from_secs(10)), Some(2));
        assert_eq!(l.allow("bad via", t0 + Duration::from_secs(11)), None);
    }

    #[test]
    fn a_burst_per_window_then_quiet_then_the_count() {
        let l = LogLimiter::with_burst(Duration::from_secs(10), 3);
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let got: Vec<_> = [0, 1, 2, 3, 4, 9]
            .iter()
            .map(|&s| l.allow(7, at(s)))
            .collect();
        assert_eq!(got, [Some(0), Some(0), Some(0), None, None, None]);
        assert_eq!(l.allow(8, at(9)), Some(0), "another kind has its own burst");
        assert_eq!(
            l.allow(7, at(10)),
            Some(3),
            "the new window says how many were left out"
        );
        assert_eq!(l.allow(7, at(11)), Some(0));
        assert_eq!(l.allow(7, at(30)), Some(0), "nothing was left out");
    }
}
