//! The collector's decisions (sans-IO, time passed in): which call a captured message belongs
//! to, the per-call budget, and when a call's new messages are cut into a chunk for the
//! database.
//!
//! A message is tied to a call by its Call-ID: the caller's leg names the call ([`Event::Begin`]),
//! and each leg the node dials for it (an agent, a supervisor) is linked to it
//! ([`Event::Link`]). A message whose Call-ID is not known yet waits up to
//! [`Limits::pending_for`] (the INVITE that starts a call is read before the call is admitted;
//! an agent's INVITE may leave before its leg is linked); then it is of no call. After
//! [`Event::End`] the call stays for [`Limits::grace`] so that the last ACK, the 200 to a BYE
//! and retransmissions still join it.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use callfleet_vocab::{CallTrace, TracedMessage};

/// What the collector is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Message(TracedMessage),
    /// A call was admitted: its caller's Call-ID and start time (as on its CDR).
    Begin {
        call_id: String,
        started_at_ms: i64,
    },
    /// A leg the node dialled for call `call_id` has Call-ID `leg`.
    Link {
        leg: String,
        call_id: String,
    },
    /// The call ended (its CDR was written).
    End {
        call_id: String,
    },
}

/// The collector's bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most bytes of SIP kept per call.
    pub budget: usize,
    /// A live call's new messages are cut into a chunk this often.
    pub flush_every: Duration,
    /// How long a message of an unknown Call-ID waits for its call.
    pub pending_for: Duration,
    /// Most messages waiting for their call (the oldest is let go first).
    pub pending_max: usize,
    /// How long an ended call still takes messages.
    pub grace: Duration,
}

/// A chunk of one call's trace, ready to be encoded and written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub call_id: String,
    pub started_at_ms: i64,
    pub seq: i64,
    pub messages: Vec<TracedMessage>,
    pub bytes: usize,
    /// Messages left out (budget) since the previous chunk.
    pub cut: u64,
}

/// Messages counted by what became of them since the last [`Collector::take_counts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub kept: u64,
    pub unmatched: u64,
    pub cut: u64,
}

struct Call {
    started_at_ms: i64,
    messages: Vec<TracedMessage>,
    flushed: usize,
    seq: i64,
    bytes: usize,
    cut: u64,
    cut_unflushed: u64,
    last_flush: Instant,
    ended: Option<Instant>,
    legs: Vec<String>,
}

/// Every live call's trace, and the messages waiting for their call.
pub struct Collector {
    limits: Limits,
    calls: HashMap<String, Call>,
    /// Call-ID of a leg (the caller's included) to the call's.
    legs: HashMap<String, String>,
    pending: VecDeque<(Instant, String, TracedMessage)>,
    /// Last chunks of ended calls a new call with the same Call-ID replaced, for the next tick.
    retired: Vec<Chunk>,
    counts: Counts,
}

/// The Call-ID header's value (`Call-ID` or its compact form `i`), from the message's head.
pub fn call_id_of(text: &str) -> Option<&str> {
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    head.split("\r\n").skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        let name = name.trim_end_matches([' ', '\t']);
        (name.eq_ignore_ascii_case("call-id") || name.eq_ignore_ascii_case("i"))
            .then(|| value.trim_matches([' ', '\t']))
            .filter(|v| !v.is_empty())
    })
}

impl Collector {
    pub fn new(limits: Limits) -> Collector {
        Collector {
            limits,
            calls: HashMap::new(),
            legs: HashMap::new(),
            pending: VecDeque::new(),
            retired: Vec::new(),
            counts: Counts::default(),
        }
    }

    /// Takes one event; returns the messages it tied to a call (the caller's Call-ID with
    /// each), for a live export.
    pub fn on(&mut self, ev: Event, now: Instant) -> Vec<(String, TracedMessage)> {
        match ev {
            Event::Message(m) => {
                let Some(leg) = call_id_of(&m.text).map(str::to_owned) else {
                    self.counts.unmatched += 1;
                    return Vec::new();
                };
                match self.legs.get(&leg).cloned() {
                    Some(call) => self.keep(&call, m).into_iter().collect(),
                    None => {
                        if self.pending.len() >= self.limits.pending_max {
                            self.pending.pop_front();
                            self.counts.unmatched += 1;
                        }
                        self.pending.push_back((now, leg, m));
                        Vec::new()
                    }
                }
            }
            Event::Begin {
                call_id,
                started_at_ms,
            } => {
                self.retire(&call_id, now);
                self.calls.entry(call_id.clone()).or_insert(Call {
                    started_at_ms,
                    messages: Vec::new(),
                    flushed: 0,
                    seq: 0,
                    bytes: 0,
                    cut: 0,
                    cut_unflushed: 0,
                    last_flush: now,
                    ended: None,
                    legs: vec![call_id.clone()],
                });
                self.legs.insert(call_id.clone(), call_id.clone());
                self.claim(&call_id, &call_id)
            }
            Event::Link { leg, call_id } => {
                let Some(call) = self.calls.get_mut(&call_id) else {
                    return Vec::new();
                };
                call.legs.push(leg.clone());
                self.legs.insert(leg.clone(), call_id.clone());
                self.claim(&leg, &call_id)
            }
            Event::End { call_id } => {
                if let Some(call) = self.calls.get_mut(&call_id) {
                    call.ended.get_or_insert(now);
                }
                Vec::new()
            }
        }
    }

    /// A new call reuses the Call-ID of an ended one still in its grace: the ended one is cut
    /// and let go, so the new call's messages are not stored under the old call's start.
    fn retire(&mut self, call_id: &str, now: Instant) {
        if self.calls.get(call_id).is_none_or(|c| c.ended.is_none()) {
            return;
        }
        if let Some(mut old) = self.calls.remove(call_id) {
            if old.messages.len() > old.flushed || old.cut_unflushed > 0 {
                self.retired.push(cut_chunk(call_id, &mut old, now));
            }
            for leg in old.legs {
                self.legs.remove(&leg);
            }
        }
    }

    /// Moves the waiting messages of leg `leg` into call `call`.
    fn claim(&mut self, leg: &str, call: &str) -> Vec<(String, TracedMessage)> {
        let (mine, rest): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|(_, l, _)| l == leg);
        self.pending = rest;
        mine.into_iter()
            .filter_map(|(_, _, m)| self.keep(call, m))
            .collect()
    }

    /// Adds `m` to call `call` within its budget.
    fn keep(&mut self, call_id: &str, m: TracedMessage) -> Option<(String, TracedMessage)> {
        let call = self.calls.get_mut(call_id)?;
        if call.bytes.saturating_add(m.text.len()) > self.limits.budget {
            call.cut += 1;
            call.cut_unflushed += 1;
            self.counts.cut += 1;
            return None;
        }
        call.bytes += m.text.len();
        call.messages.push(m.clone());
        self.counts.kept += 1;
        Some((call_id.to_owned(), m))
    }

    /// Cuts the chunks that are due at `now`, lets go of messages that waited too long and of
    /// calls past their grace.
    pub fn tick(&mut self, now: Instant) -> Vec<Chunk> {
        let pending_for = self.limits.pending_for;
        let before = self.pending.len();
        self.pending
            .retain(|(at, _, _)| now.saturating_duration_since(*at) < pending_for);
        self.counts.unmatched += (before - self.pending.len()) as u64;
        let mut chunks = std::mem::take(&mut self.retired);
        let mut gone = Vec::new();
        for (call_id, call) in &mut self.calls {
            let due = call.ended.is_some()
                || now.saturating_duration_since(call.last_flush) >= self.limits.flush_every;
            let fresh = call.messages.len() > call.flushed || call.cut_unflushed > 0;
            if due && fresh {
                chunks.push(cut_chunk(call_id, call, now));
            }
            if call
                .ended
                .is_some_and(|e| now.saturating_duration_since(e) >= self.limits.grace)
            {
                gone.push(call_id.clone());
            }
        }
        for call_id in gone {
            if let Some(call) = self.calls.remove(&call_id) {
                for leg in call.legs {
                    self.legs.remove(&leg);
                }
            }
        }
        chunks
    }

    /// The trace of a live call (or one in its grace) held here.
    pub fn live(&self, call_id: &str, node: &str) -> Option<CallTrace> {
        let call = self.calls.get(call_id)?;
        Some(CallTrace {
            call_id: call_id.to_owned(),
            node: node.to_owned(),
            live: call.ended.is_none(),
            cut: call.cut,
            messages: call.messages.clone(),
        })
    }

    /// Calls held, and messages waiting for their call.
    pub fn sizes(&self) -> (usize, usize) {
        (self.calls.len(), self.pending.len())
    }

    /// The counts since the last call, reset.
    pub fn take_counts(&mut self) -> Counts {
        std::mem::take(&mut self.counts)
    }
}

fn cut_chunk(call_id: &str, call: &mut Call, now: Instant) -> Chunk {
    let messages = call
        .messages
        .get(call.flushed..)
        .unwrap_or_default()
        .to_vec();
    let chunk = Chunk {
        call_id: call_id.to_owned(),
        started_at_ms: call.started_at_ms,
        seq: call.seq,
        bytes: messages.iter().map(|m| m.text.len()).sum(),
        messages,
        cut: call.cut_unflushed,
    };
    call.flushed = call.messages.len();
    call.seq += 1;
    call.cut_unflushed = 0;
    call.last_flush = now;
    chunk
}

#[cfg(test)]
mod tests;
