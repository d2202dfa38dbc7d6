//! Where the snapshot's next read of queue events starts. Events are written late at times
//! (through each node's record spool, after a database outage), so a read by event time must
//! look back (a minute) and reads the same rows again every second: at a busy hour that is
//! every event of the last minute, on every node, once a second. An event's id is handed out
//! when it is stored, however old the event, so once a read's highest id is settled, later
//! reads ask only for the ids after it.
//!
//! Settled means old enough: PostgreSQL hands out an id when the row is inserted, not when it
//! is committed, so a read can see id 101 while 100 is still being committed. A read's highest
//! id is trusted as the start of later reads once that read is [`ID_SETTLE_MS`] old; until one
//! is (the node's first seconds), reads go by event time as before. Rows read twice are
//! recognised by their id (`Tracker`), so reading a little more is harmless; reading less
//! would not be.

use std::collections::VecDeque;

/// A read's highest event id starts later reads once the read is this old (a row handed an
/// id before it and committed after it has had this long to commit).
pub const ID_SETTLE_MS: i64 = 10_000;

/// How the next read asks for queue events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventsFrom {
    /// Events at or after this time: no read is settled yet.
    Since(i64),
    /// Events stored after this id.
    AfterId(i64),
}

/// The highest event id seen by each recent read.
#[derive(Debug, Clone, Default)]
pub struct Cursor {
    /// The highest event id read so far.
    highest: Option<i64>,
    /// (time of a read, the highest id seen by then), oldest first, back to the newest one
    /// settled at the last read.
    marks: VecDeque<(i64, i64)>,
}

impl Cursor {
    /// The id up to which every event has been read, as of `now_ms`: the highest id of the
    /// newest settled read (`None` while none is).
    pub fn settled(&self, now_ms: i64) -> Option<i64> {
        self.marks
            .iter()
            .rev()
            .find(|(at, _)| *at <= now_ms - ID_SETTLE_MS)
            .map(|(_, id)| *id)
    }

    /// A successful read at `now_ms` returned the events of `ids`.
    pub fn note(&mut self, now_ms: i64, ids: impl IntoIterator<Item = i64>) {
        self.highest = self.highest.max(ids.into_iter().max());
        if let Some(highest) = self.highest {
            self.marks.push_back((now_ms, highest));
        }
        // Keep the newest settled mark at the front and drop the older ones.
        while self
            .marks
            .get(1)
            .is_some_and(|(at, _)| *at <= now_ms - ID_SETTLE_MS)
        {
            self.marks.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settled id just after a read, 1 s later and 10 s later.
    type Settled = (Option<i64>, Option<i64>, Option<i64>);

    #[test]
    fn a_reads_highest_id_starts_later_reads_once_settled() {
        let mut c = Cursor::default();
        // (read at, ids it returned, settled ids)
        let reads: [(i64, &[i64], Settled); 6] = [
            // No event yet: nothing to start from.
            (0, &[], (None, None, None)),
            (1_000, &[3, 7, 5], (None, None, Some(7))),
            (2_000, &[], (None, None, Some(7))),
            (11_000, &[9], (Some(7), Some(7), Some(9))),
            // A late write gets a new id, whatever its time: it is after the settled one.
            (12_000, &[8, 12], (Some(7), Some(7), Some(12))),
            // Ids below the highest read earlier do not move it back.
            (30_000, &[4], (Some(12), Some(12), Some(12))),
        ];
        for (at, ids, (now, soon, later)) in reads {
            c.note(at, ids.iter().copied());
            assert_eq!(c.settled(at), now, "at {at}");
            assert_eq!(c.settled(at + 1_000), soon, "1 s after {at}");
            assert_eq!(c.settled(at + ID_SETTLE_MS), later, "10 s after {at}");
        }
        // One mark per second at most is kept, back to the settled one.
        assert!(c.marks.len() <= 2, "{:?}", c.marks);
    }

    #[test]
    fn a_clock_stepped_back_reads_by_time_again() {
        let mut c = Cursor::default();
        c.note(100_000, [5]);
        c.note(111_000, [6]);
        assert_eq!(c.settled(111_000), Some(5));
        // The clock is 20 s behind now: no mark is old enough by it.
        assert_eq!(c.settled(91_000), None);
    }
}
