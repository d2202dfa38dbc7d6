//! The music clock: one 20 ms timer per music-on-hold track, shared by every caller who hears
//! that track. The clock counts frames; on each tick the callers' legs wake, take the track's
//! frame at that count (pre-encoded, see [`super::moh`]) and send it with their own SSRC,
//! sequence number and timestamp. The position in the track is the clock's, not the caller's:
//! callers hear the track as a radio plays it, from wherever it is when they join.
//!
//! The clock's task runs only while someone listens: the first caller starts it, and it stops
//! at the first tick after the last caller left (a later caller starts a new one, from the
//! track's beginning).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

/// The time of one frame (20 ms of audio at 8 kHz).
pub const FRAME_TIME: Duration = Duration::from_millis(20);

/// Where a track's running clock is found (none while nobody listens).
#[derive(Debug, Default)]
pub struct Clock {
    slot: Arc<Mutex<Option<watch::Sender<u64>>>>,
}

impl Clock {
    /// A receiver of the clock's frame count (the count it holds now is already seen); starts
    /// the clock when nobody listened. Must be called within a tokio runtime.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = slot.as_ref().filter(|tx| !tx.is_closed()) {
            let mut rx = tx.subscribe();
            rx.mark_unchanged();
            return rx;
        }
        let (tx, rx) = watch::channel(0);
        tokio::spawn(run(self.slot.clone(), tx.clone()));
        *slot = Some(tx);
        rx
    }

    /// Whether the clock runs (someone listens, or the last listener left less than a tick
    /// ago).
    pub fn running(&self) -> bool {
        self.slot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|tx| !tx.is_closed())
    }
}

/// The clock's task: one tick per frame time, late ticks caught up at once (the count stays
/// the frames elapsed); ends when nobody listens. The check and the slot's clearing happen
/// under the slot's lock, so a caller joining at that moment starts a new clock instead of
/// subscribing to this one.
async fn run(slot: Arc<Mutex<Option<watch::Sender<u64>>>>, tx: watch::Sender<u64>) {
    let mut tick = tokio::time::interval(FRAME_TIME);
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    tick.tick().await;
    let mut count: u64 = 0;
    loop {
        tick.tick().await;
        {
            let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
            if tx.is_closed() {
                if slot.as_ref().is_some_and(|s| s.same_channel(&tx)) {
                    *slot = None;
                }
                return;
            }
        }
        count += 1;
        tx.send_replace(count);
    }
}

/// What a leg sends when its clock went from frame `last` to frame `now`: the frames from
/// the first returned to `now` (at most `max`), after skipping the returned number of frames
/// that are too old to send (a leg that fell behind sends the latest frames, not a burst).
pub fn frames_due(last: u64, now: u64, max: u64) -> (u64, std::ops::RangeInclusive<u64>) {
    let behind = now.saturating_sub(last);
    let send = behind.min(max);
    let skip = behind - send;
    (skip, (now + 1 - send)..=now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_due_table() {
        // (last, now, max) -> (skipped, first, count)
        let cases = [
            ((0, 1, 3), (0, 1, 1)),
            ((4, 5, 3), (0, 5, 1)),
            ((4, 6, 3), (0, 5, 2)),
            ((4, 7, 3), (0, 5, 3)),
            ((4, 10, 3), (3, 8, 3)),
            ((5, 5, 3), (0, 6, 0)),
            ((9, 5, 3), (0, 6, 0)),
        ];
        for ((last, now, max), (skip, first, count)) in cases {
            let (s, range) = frames_due(last, now, max);
            assert_eq!(s, skip, "{last}->{now}");
            assert_eq!(*range.start(), first, "{last}->{now}");
            assert_eq!(range.count() as u64, count, "{last}->{now}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_clock_for_all_listeners_stopped_when_the_last_leaves() {
        let clock = Clock::default();
        let mut a = clock.subscribe();
        tokio::time::sleep(Duration::from_millis(45)).await;
        let mut b = clock.subscribe();
        assert!(
            !b.has_changed().expect("open"),
            "a joiner starts at the count"
        );
        assert_eq!(*a.borrow_and_update(), 2, "two frames in 45 ms");
        assert_eq!(*b.borrow(), 2, "one count for both");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(*a.borrow_and_update(), 3);
        assert_eq!(*b.borrow_and_update(), 3);
        drop(a);
        drop(b);
        assert!(!clock.running(), "nobody listens");
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(clock.slot.lock().unwrap().is_none(), "the task ended");
        let c = clock.subscribe();
        assert_eq!(
            *c.borrow(),
            0,
            "a new clock starts at the track's beginning"
        );
        assert!(clock.running());
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_clock_catches_up_the_frames_elapsed() {
        let clock = Clock::default();
        let rx = clock.subscribe();
        tokio::time::sleep(Duration::from_millis(1010)).await;
        assert_eq!(*rx.borrow(), 50, "50 frames a second");
        // A stalled runtime (time jumps by 200 ms at once): the count still follows time.
        tokio::time::advance(Duration::from_millis(200)).await;
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(*rx.borrow(), 60);
    }
}
