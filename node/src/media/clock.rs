//! The music clock: one 20 ms timer per music-on-hold track, and the one sender of that track
//! to every caller who hears it. The clock counts frames; on each tick its task goes through
//! the track's roster and writes each listening leg's packet itself: the track's frame at that
//! count (pre-encoded, see [`super::moh`]) under the leg's own SSRC, sequence number and
//! timestamp, out of the leg's own socket without waiting (a datagram the socket cannot take
//! at once is lost, as on the wire). A leg on hold to music therefore never wakes to send: its
//! task wakes only for what it receives, its RTCP report time and control changes. The
//! position in the track is the clock's, not the caller's: callers hear the track as a radio
//! plays it, from wherever it is when they join.
//!
//! A leg joins with its stream's state ([`Listener`]) and takes it back when it leaves (its
//! mode or target changed, or its task ended), with the sequence number and timestamp where the
//! track's sender left them, so its stream goes on without a gap in either. The roster
//! ([`Roster`]: who listens, what each is sent at a tick) is sans-IO; the task and the sockets
//! ([`Output`]) are the shell.
//!
//! The clock's task runs only while someone listens: the first caller starts it, and it stops
//! at the first tick after the last caller left (a later caller starts a new one, from the
//! track's beginning).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};

use super::moh::{Encoded, FRAME};
use super::rtp::{self, Stream};
use super::sdp::Codec;

/// The time of one frame (20 ms of audio at 8 kHz).
pub const FRAME_TIME: Duration = Duration::from_millis(20);

/// At most this many frames are sent at once to a leg the clock ran ahead of (the runtime was
/// late); older ones are skipped.
pub const MAX_CATCH_UP: u64 = 3;

/// Legs sent to per hold of the roster's lock: a leg leaving or joining waits at most for
/// this many legs' packets, not for the whole tick's.
const CHUNK: usize = 128;

/// Where a listening leg's packets go: its socket and its counters (the I/O side of a
/// [`Roster`] entry).
pub trait Output: Send + Sync {
    /// Sends `packet` to `to` now, without waiting; whether it left.
    fn send_now(&self, packet: &[u8], to: SocketAddr) -> bool;
    /// The leg had something to send at a tick (its pacing's count).
    fn paced(&self) {}
}

/// A listening leg's stream, held by the track's roster while the clock sends it; handed
/// back, moved on, when the leg leaves.
#[derive(Debug, Clone)]
pub struct Listener {
    pub stream: Stream,
    pub codec: Codec,
    pub remote: SocketAddr,
    /// Up to when the stream's RTP timestamp counts (the time of the packets sent or skipped).
    pub stamped: Instant,
    /// Own packets and payload octets sent (for sender reports).
    pub packets: u64,
    pub octets: u64,
    /// The clock's count last sent (where the leg stood when it joined, at first).
    last: u64,
}

impl Listener {
    pub fn new(stream: Stream, codec: Codec, remote: SocketAddr, stamped: Instant) -> Listener {
        Listener {
            stream,
            codec,
            remote,
            stamped,
            packets: 0,
            octets: 0,
            last: 0,
        }
    }

    /// Writes into `buf` and hands to `emit` what this leg is due at the clock's count `now`:
    /// the frames from its last count to `now` (at most [`MAX_CATCH_UP`], the older ones' time
    /// skipped in its timestamp with the marker set); returns how many packets were due.
    pub fn send_due(
        &mut self,
        now: u64,
        audio: &Encoded,
        buf: &mut [u8; rtp::HEADER + FRAME],
        mut emit: impl FnMut(&[u8], SocketAddr) -> bool,
    ) -> u64 {
        let (skip, frames) = frames_due(self.last, now, MAX_CATCH_UP);
        self.last = self.last.max(now);
        if skip > 0 {
            let skip = u32::try_from(skip).unwrap_or(u32::MAX / 2);
            self.stream.skip(skip.wrapping_mul(FRAME as u32));
            self.stamped += FRAME_TIME * skip;
        }
        let mut due = 0;
        for n in frames {
            let payload = audio.frame_at(self.codec, n);
            let len = self.stream.write(payload, FRAME as u32, buf);
            self.stamped += FRAME_TIME;
            due += 1;
            if emit(&buf[..len], self.remote) {
                self.packets += 1;
                self.octets += payload.len() as u64;
            }
        }
        due
    }
}

/// The legs that hear a track, each with its stream and its output (sans-IO: the outputs are
/// called, never awaited).
#[derive(Debug)]
pub struct Roster<T> {
    slots: Vec<Option<(Listener, T)>>,
    free: Vec<usize>,
    len: usize,
    /// The clock's count at its last tick: where a joiner starts.
    count: u64,
    /// Nobody listened at a tick: the clock stopped, and nobody joins this roster again.
    closed: bool,
}

impl<T> Default for Roster<T> {
    fn default() -> Self {
        Roster {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            count: 0,
            closed: false,
        }
    }
}

impl<T: Output> Roster<T> {
    /// Adds a leg, which hears from the next tick on; returns its place.
    pub fn join(&mut self, mut listener: Listener, out: T) -> usize {
        listener.last = self.count;
        self.len += 1;
        match self.free.pop() {
            Some(id) => {
                self.slots[id] = Some((listener, out));
                id
            }
            None => {
                self.slots.push(Some((listener, out)));
                self.slots.len() - 1
            }
        }
    }

    /// Takes a leg off; its stream as the clock left it.
    pub fn leave(&mut self, id: usize) -> Option<Listener> {
        let (listener, _) = self.slots.get_mut(id)?.take()?;
        self.len -= 1;
        self.free.push(id);
        Some(listener)
    }

    /// A listening leg's stream (to change its address or codec, or read its counters).
    pub fn listener(&mut self, id: usize) -> Option<&mut Listener> {
        self.slots.get_mut(id)?.as_mut().map(|(l, _)| l)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The clock ticked to `count`: false (and the roster closed) when nobody listens.
    pub fn tick(&mut self, count: u64) -> bool {
        if self.is_empty() {
            self.closed = true;
            return false;
        }
        self.count = count;
        true
    }

    /// Sends what is due at this tick to the legs in places `from..from + max`; the place to
    /// go on from, `None` when every place was gone through.
    pub fn send(
        &mut self,
        from: usize,
        max: usize,
        audio: &Encoded,
        buf: &mut [u8; rtp::HEADER + FRAME],
    ) -> Option<usize> {
        let end = from.saturating_add(max).min(self.slots.len());
        let count = self.count;
        for (listener, out) in self.slots.get_mut(from..end)?.iter_mut().flatten() {
            if listener.send_due(count, audio, buf, |p, to| out.send_now(p, to)) > 0 {
                out.paced();
            }
        }
        (end < self.slots.len()).then_some(end)
    }
}

type Shared = Arc<Track>;

/// A running clock: its track's audio and roster.
struct Track {
    audio: Arc<Encoded>,
    roster: Mutex<Roster<Arc<dyn Output>>>,
}

impl Track {
    fn roster(&self) -> MutexGuard<'_, Roster<Arc<dyn Output>>> {
        self.roster.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Where a track's running clock is found (none while nobody listens).
pub struct Clock {
    audio: Arc<Encoded>,
    slot: Arc<Mutex<Option<Shared>>>,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clock")
            .field("running", &self.running())
            .finish()
    }
}

impl Clock {
    /// The clock of a track of this audio (stopped until someone listens).
    pub fn new(audio: Arc<Encoded>) -> Clock {
        Clock {
            audio,
            slot: Arc::default(),
        }
    }

    /// Adds a leg to the track's listeners (from the clock's next tick on), starting the clock
    /// when nobody listened. Must be called within a tokio runtime.
    pub fn join(&self, listener: Listener, out: Arc<dyn Output>) -> Membership {
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(track) = slot.as_ref() {
            let mut roster = track.roster();
            if !roster.closed {
                let id = roster.join(listener, out);
                drop(roster);
                return Membership {
                    track: track.clone(),
                    id: Some(id),
                };
            }
        }
        let track = Arc::new(Track {
            audio: self.audio.clone(),
            roster: Mutex::default(),
        });
        let id = track.roster().join(listener, out);
        tokio::spawn(run(track.clone(), self.slot.clone()));
        *slot = Some(track.clone());
        Membership {
            track,
            id: Some(id),
        }
    }

    /// Whether someone listens (the clock runs).
    pub fn running(&self) -> bool {
        self.slot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|t| {
                let roster = t.roster();
                !roster.closed && !roster.is_empty()
            })
    }
}

/// A leg's place among a track's listeners; leaves when dropped.
pub struct Membership {
    track: Shared,
    id: Option<usize>,
}

impl Membership {
    /// Leaves the track: the leg's stream as the clock left it (once).
    pub fn leave(&mut self) -> Option<Listener> {
        let id = self.id.take()?;
        self.track.roster().leave(id)
    }

    /// Reads or changes the leg's stream while it listens.
    pub fn with<R>(&self, f: impl FnOnce(&mut Listener) -> R) -> Option<R> {
        let id = self.id?;
        self.track.roster().listener(id).map(f)
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.leave();
    }
}

/// Frames of [`FRAME_TIME`] from `start` to `now`.
fn frames_since(start: Instant, now: Instant) -> u64 {
    let n = now.saturating_duration_since(start).as_nanos() / FRAME_TIME.as_nanos();
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The clock's task: one tick per frame time, the count the frames elapsed (a late tick sends
/// each leg the latest frames and skips the older ones' time); ends at the first tick with
/// nobody listening, and then leaves the slot to a new clock.
async fn run(track: Shared, slot: Arc<Mutex<Option<Shared>>>) {
    let start = Instant::now();
    let mut tick = tokio::time::interval_at(start + FRAME_TIME, FRAME_TIME);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut buf = [0u8; rtp::HEADER + FRAME];
    loop {
        tick.tick().await;
        let count = frames_since(start, Instant::now());
        if !track.roster().tick(count) {
            break;
        }
        let mut next = Some(0);
        while let Some(from) = next {
            next = track.roster().send(from, CHUNK, &track.audio, &mut buf);
        }
    }
    let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
    if slot.as_ref().is_some_and(|s| Arc::ptr_eq(s, &track)) {
        *slot = None;
    }
}

impl<T: Output + ?Sized> Output for Arc<T> {
    fn send_now(&self, packet: &[u8], to: SocketAddr) -> bool {
        (**self).send_now(packet, to)
    }

    fn paced(&self) {
        (**self).paced()
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
mod tests;
