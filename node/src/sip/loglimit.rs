//! Log lines about bad input, at most one per kind per interval: a flood of the same defect
//! writes one line (with how many were left out since the last), not one per datagram.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Remembers when each kind was last logged and how many were left out since.
pub struct LogLimiter {
    every: Duration,
    seen: Mutex<HashMap<&'static str, (Instant, u64)>>,
}

impl LogLimiter {
    pub fn new(every: Duration) -> LogLimiter {
        LogLimiter {
            every,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Whether to log one more of `kind` at `now`: `Some(left_out)` (how many of this kind
    /// were not logged since the last line) or `None` to stay quiet.
    pub fn allow(&self, kind: &'static str, now: Instant) -> Option<u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        match seen.get_mut(kind) {
            Some((last, left_out)) if now.duration_since(*last) < self.every => {
                *left_out += 1;
                None
            }
            Some((last, left_out)) => {
                let n = *left_out;
                *last = now;
                *left_out = 0;
                Some(n)
            }
            None => {
                seen.insert(kind, (now, 0));
                Some(0)
            }
        }
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
}
