//! What wakes a leg to send: nothing while it only relays or is silent (a bridged leg wakes on
//! the packets it receives and on its RTCP report time only), nothing either for music on hold
//! at 20 ms packets, which the track's clock sends itself to every leg on its roster
//! ([`crate::media::clock`]), and a timer of the leg's own for prompts, a supervisor's mix, and
//! music at other packet times.
//!
//! While a leg sends nothing its RTP timestamp does not advance packet by packet; when it
//! sends again, the time it was idle is skipped at once (`gap_samples`), so the party's
//! stream goes on where a stream that never stopped would be, with the marker bit set.

use std::time::Duration;

use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::{packet_samples, Mode, Out, Target};
use crate::media::clock::Membership;
use crate::media::moh::FRAME;

/// Which pacing a leg's mode and target ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// No timer: nothing to send (bridged, silent, music on hold while held).
    Idle,
    /// The leg's own timer, one tick per packet time.
    Own,
    /// The music track's clock, which sends the leg's packets itself (the leg never wakes).
    Shared,
}

/// The pacing for `mode` sent to `target`.
pub(super) fn kind(mode: &Mode, target: &Target) -> Kind {
    let sending = target.send && target.remote.is_some();
    match mode {
        Mode::Bridge(_) | Mode::Silence => Kind::Idle,
        Mode::Moh(_) if !sending => Kind::Idle,
        Mode::Moh(_) if packet_samples(target.packet_ms) == FRAME => Kind::Shared,
        Mode::Moh(_) | Mode::Play(_) | Mode::Listen(_) => Kind::Own,
    }
}

/// Samples of the time from `stamped` (up to where the stream's timestamp counts) to `now`:
/// what a leg skips when it sends again after a pause (whole milliseconds, 8 samples each).
pub(super) fn gap_samples(stamped: Instant, now: Instant) -> u32 {
    let ms = now.saturating_duration_since(stamped).as_millis();
    (ms.wrapping_mul(8) % (1u128 << 32)) as u32
}

/// The running pacing of a leg.
pub(super) enum Pace {
    Idle,
    Own {
        tick: Interval,
        packet_ms: u32,
    },
    /// On the roster of a music track's clock, which holds the leg's stream meanwhile.
    Shared {
        member: Membership,
        /// Which track's clock (its address), to stay on its roster across changes that
        /// leave the track as it is.
        track: usize,
    },
}

impl Pace {
    /// The own timer for `packet_ms`: the first tick at once, late ticks caught up at once.
    pub(super) fn own(packet_ms: u32) -> Pace {
        let ms = packet_samples(packet_ms) as u64 / 8;
        let mut tick = tokio::time::interval(Duration::from_millis(ms));
        tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
        Pace::Own { tick, packet_ms }
    }

    /// Whether this pacing already is the one asked for (`track`: the music track's address).
    pub(super) fn is(&self, kind: Kind, packet_ms: u32, track: usize) -> bool {
        match (self, kind) {
            (Pace::Idle, Kind::Idle) => true,
            (Pace::Own { packet_ms: p, .. }, Kind::Own) => *p == packet_ms,
            (Pace::Shared { track: t, .. }, Kind::Shared) => *t == track,
            _ => false,
        }
    }

    /// Which pacing this is.
    pub(super) fn kind(&self) -> Kind {
        match self {
            Pace::Idle => Kind::Idle,
            Pace::Own { .. } => Kind::Own,
            Pace::Shared { .. } => Kind::Shared,
        }
    }

    /// Waits for the leg's next packet time (never, when idle or when the track's clock
    /// sends for it). Cancel-safe.
    pub(super) async fn next(&mut self) {
        match self {
            Pace::Idle | Pace::Shared { .. } => std::future::pending().await,
            Pace::Own { tick, .. } => {
                tick.tick().await;
            }
        }
    }

    /// Ends this pacing: a leg on a track's roster takes its stream back into `out`, moved on
    /// by what the clock sent for it.
    pub(super) fn end(&mut self, out: &mut Out) {
        if let Pace::Shared { member, .. } = self {
            if let Some(l) = member.leave() {
                out.take_back(l);
            }
        }
        *self = Pace::Idle;
    }

    /// Copies the stream as the track's clock holds it into `out` (for a sender report).
    pub(super) fn sync(&self, out: &mut Out) {
        if let Pace::Shared { member, .. } = self {
            member.with(|l| out.take_back(l.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::moh::{Library, Track};
    use crate::media::sdp::{Codec, Rtcp};
    use std::sync::Arc;

    fn target(send: bool, remote: bool, packet_ms: u32) -> Target {
        Target {
            remote: remote.then(|| "127.0.0.1:4000".parse().unwrap()),
            codec: Codec::Pcmu,
            send,
            dtmf_pt: None,
            signal_ip: None,
            rtcp: Rtcp::NextPort,
            packet_ms,
        }
    }

    #[test]
    fn kind_table() {
        let moh = Mode::Moh(Library::load(std::path::Path::new("/nonexistent")).default_class());
        let play = Mode::Play(Arc::new(Track::from_samples("p".into(), vec![0; 160])));
        let cases = [
            (&moh, target(true, true, 20), Kind::Shared),
            (&moh, target(true, true, 30), Kind::Own),
            (&moh, target(true, true, 10), Kind::Own),
            (&moh, target(false, true, 20), Kind::Idle),
            (&moh, target(true, false, 20), Kind::Idle),
            (&play, target(true, true, 20), Kind::Own),
            (&play, target(false, true, 20), Kind::Own),
            (&Mode::Silence, target(true, true, 20), Kind::Idle),
        ];
        for (i, (mode, t, want)) in cases.into_iter().enumerate() {
            assert_eq!(kind(mode, &t), want, "case {i}: {mode:?}");
        }
    }

    #[test]
    fn gap_table() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let cases = [
            (t0, t0, 0),
            (t0, t0 + ms(1), 8),
            (t0, t0 + ms(20), 160),
            (t0 + ms(20), t0, 0),
            (t0, t0 + Duration::from_micros(19_999), 152),
            (t0, t0 + ms(5000), 40_000),
        ];
        for (stamped, now, want) in cases {
            assert_eq!(gap_samples(stamped, now), want);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_pace_never_wakes_and_an_own_one_ticks_per_packet() {
        let mut idle = Pace::Idle;
        let woke = tokio::time::timeout(Duration::from_secs(60), idle.next()).await;
        assert!(woke.is_err(), "idle waits forever");
        let mut own = Pace::own(30);
        let start = Instant::now();
        for _ in 0..4 {
            own.next().await;
        }
        assert_eq!(start.elapsed(), Duration::from_millis(90));
        assert!(own.is(Kind::Own, 30, 0));
        assert!(!own.is(Kind::Own, 20, 0));
        assert!(!own.is(Kind::Idle, 30, 0));
    }
}
