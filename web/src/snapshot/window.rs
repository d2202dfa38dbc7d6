//! The recent service level's memory: per queue, the calls of the last
//! [`SERVICE_WINDOW_MS`](super::SERVICE_WINDOW_MS) that count for it.

use std::collections::BTreeMap;

/// A queue's calls over the window (see [`Tracker::queue_window`](super::Tracker::queue_window)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServiceWindow {
    /// Calls answered, and calls given up after waiting past the threshold.
    pub counted: i64,
    /// Of those, answered within the threshold.
    pub in_time: i64,
}

/// Per queue: (time, answered within the threshold) of each counted call.
#[derive(Debug, Clone, Default)]
pub(super) struct Recent {
    calls: BTreeMap<String, Vec<(i64, bool)>>,
}

impl Recent {
    /// Counts one call of `queue` at `at_ms`.
    pub(super) fn note(&mut self, queue: &str, at_ms: i64, in_time: bool) {
        self.calls
            .entry(queue.to_owned())
            .or_default()
            .push((at_ms, in_time));
    }

    /// Forgets calls before `start_ms`.
    pub(super) fn forget_before(&mut self, start_ms: i64) {
        self.calls.retain(|_, calls| {
            calls.retain(|(at_ms, _)| *at_ms >= start_ms);
            !calls.is_empty()
        });
    }

    pub(super) fn window(&self, queue: &str) -> ServiceWindow {
        let mut window = ServiceWindow::default();
        for &(_, in_time) in self.calls.get(queue).into_iter().flatten() {
            window.counted += 1;
            if in_time {
                window.in_time += 1;
            }
        }
        window
    }
}
