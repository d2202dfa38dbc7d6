//! RTP quality of one call leg, sans-IO: what the party sent us (packets, bytes, sequence gaps
//! counted as lost, duplicates, packets out of order, interarrival jitter, the longest silence
//! between two packets) and what we sent it, from which the leg's RTCP reports are written.
//!
//! Sequence numbers are extended to 32 bits and validated as in RFC 3550 appendix A.1 (a jump
//! of up to `MAX_DROPOUT` forward is a gap, one of up to `MAX_MISORDER` back a late packet, any
//! other jump is believed only when the next packet follows it); jitter is the estimator of
//! appendix A.8 in RTP timestamp units (8 kHz for G.711 and telephone-events). Arrival times are
//! given by the caller (a monotonic clock read in the shell, injected in tests), so the
//! statistics are pure and table-tested.

use std::time::Duration;

use super::rtcp::ReportBlock;
use super::rtp::Header;

/// RTP clock of the codecs we take (G.711 and telephone-event/8000).
pub const CLOCK_RATE: u64 = 8000;

/// RFC 3550 A.1: the largest forward jump taken as a gap, and the largest backward one taken
/// as a late packet.
const MAX_DROPOUT: u16 = 3000;
const MAX_MISORDER: u16 = 100;
const SEQ_MOD: u64 = 1 << 16;

/// One synchronisation source as the receiver tracks it.
#[derive(Debug, Clone)]
struct Source {
    ssrc: u32,
    /// The lowest extended sequence number seen.
    base: u64,
    max_seq: u16,
    /// Wraps of the sequence number, times 65,536.
    cycles: u64,
    /// A sequence number that would confirm a jump (RFC 3550 A.1 `bad_seq`).
    bad_seq: Option<u16>,
    /// Distinct packets (a duplicate is not counted twice).
    received: u64,
    /// Bit `i`: the packet `i` below the highest was received (late ones told from copies).
    seen: u128,
    duplicates: u64,
    out_of_order: u64,
    /// A.8 estimate, in timestamp units.
    jitter: f64,
    last_transit: Option<u32>,
    /// Expected and received at the last report, for its fraction lost.
    expected_prior: u64,
    received_prior: u64,
}

/// What one packet was to its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seq {
    /// The highest so far (in order, or after a gap).
    New,
    /// Below the highest, not seen before.
    Late,
    Duplicate,
    /// A jump not confirmed yet: not counted.
    Jump,
}

impl Source {
    fn new(ssrc: u32, seq: u16) -> Source {
        Source {
            ssrc,
            base: u64::from(seq),
            max_seq: seq,
            cycles: 0,
            bad_seq: None,
            received: 1,
            seen: 1,
            duplicates: 0,
            out_of_order: 0,
            jitter: 0.0,
            last_transit: None,
            expected_prior: 0,
            received_prior: 0,
        }
    }

    fn highest(&self) -> u64 {
        self.cycles + u64::from(self.max_seq)
    }

    fn expected(&self) -> u64 {
        self.highest() + 1 - self.base
    }

    fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received)
    }

    fn sequence(&mut self, seq: u16) -> Seq {
        let delta = seq.wrapping_sub(self.max_seq);
        if delta == 0 {
            self.duplicates += 1;
            Seq::Duplicate
        } else if delta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += SEQ_MOD;
            }
            self.seen = if delta >= 128 { 0 } else { self.seen << delta } | 1;
            self.max_seq = seq;
            self.bad_seq = None;
            self.received += 1;
            Seq::New
        } else if u64::from(delta) <= SEQ_MOD - u64::from(MAX_MISORDER) {
            Seq::Jump
        } else {
            // Late: within MAX_MISORDER (< 128) below the highest.
            let back = u32::from(self.max_seq.wrapping_sub(seq));
            let bit = 1u128 << back;
            if self.seen & bit != 0 {
                self.duplicates += 1;
                return Seq::Duplicate;
            }
            self.seen |= bit;
            self.received += 1;
            self.out_of_order += 1;
            let ext = self.highest().checked_sub(u64::from(back));
            if let Some(ext) = ext.filter(|e| *e < self.base) {
                self.base = ext;
            }
            Seq::Late
        }
    }

    /// A.8: `arrival` in timestamp units (wrapping), `timestamp` the packet's.
    fn transit(&mut self, arrival: u32, timestamp: u32) {
        let transit = arrival.wrapping_sub(timestamp);
        if let Some(last) = self.last_transit {
            let d = f64::from((transit.wrapping_sub(last) as i32).unsigned_abs());
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last_transit = Some(transit);
    }

    /// A report block on this source (RFC 3550 A.3), and the interval restarted.
    fn report(&mut self, last_sr: u32, since_sr: Duration) -> ReportBlock {
        let expected = self.expected();
        let interval = expected - self.expected_prior;
        let got = self.received - self.received_prior;
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = interval.saturating_sub(got);
        let fraction_lost = (lost_interval << 8)
            .checked_div(interval)
            .map_or(0, |f| f.min(255) as u8);
        ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost: self.lost().min(0x7f_ffff) as i32,
            highest_seq: (self.highest() & 0xffff_ffff) as u32,
            jitter: self.jitter as u32,
            last_sr,
            delay_since_sr: if last_sr == 0 {
                0
            } else {
                (since_sr.as_secs_f64() * 65536.0) as u32
            },
        }
    }
}

/// Counts of the sources a leg heard before its current one (a new SSRC, or a sequence
/// restart), kept so that a call's totals span them.
#[derive(Debug, Clone, Copy, Default)]
struct Past {
    expected: u64,
    lost: u64,
    duplicates: u64,
    out_of_order: u64,
}

/// What the party sent us.
#[derive(Debug, Clone, Default)]
pub struct Inbound {
    current: Option<Source>,
    past: Past,
    packets: u64,
    bytes: u64,
    last_arrival: Option<Duration>,
    longest_gap: Duration,
    jitter_max: f64,
}

/// The inbound figures at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct InboundSummary {
    pub packets: u64,
    pub bytes: u64,
    pub expected: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// The current A.8 estimate, and the highest it reached.
    pub jitter: Duration,
    pub jitter_max: Duration,
    pub longest_gap: Duration,
}

impl Inbound {
    /// One packet of the party, `len` bytes, arrived at `at` (any monotonic origin). Only
    /// `audio` packets feed the jitter estimate (a telephone-event keeps one timestamp for a
    /// whole digit).
    pub fn packet(&mut self, header: &Header, len: usize, at: Duration, audio: bool) {
        self.packets += 1;
        self.bytes += len as u64;
        if let Some(last) = self.last_arrival {
            self.longest_gap = self.longest_gap.max(at.saturating_sub(last));
        }
        self.last_arrival = Some(at);
        // `None`: a new source (another SSRC, or a jump the next packet confirmed).
        let outcome = match self.current.as_mut().filter(|s| s.ssrc == header.ssrc) {
            None => None,
            Some(s) => match s.sequence(header.seq) {
                Seq::Jump if s.bad_seq == Some(header.seq) => None,
                Seq::Jump => {
                    s.bad_seq = Some(header.seq.wrapping_add(1));
                    Some(Seq::Jump)
                }
                other => Some(other),
            },
        };
        let outcome = outcome.unwrap_or_else(|| {
            self.restart(header);
            Seq::New
        });
        if audio && matches!(outcome, Seq::New | Seq::Late) {
            if let Some(s) = self.current.as_mut() {
                s.transit(arrival_units(at), header.timestamp);
                self.jitter_max = self.jitter_max.max(s.jitter);
            }
        }
    }

    /// Starts a new source (new SSRC, or a confirmed jump), keeping the old one's counts.
    fn restart(&mut self, header: &Header) {
        if let Some(old) = self.current.take() {
            self.past.expected += old.expected();
            self.past.lost += old.lost();
            self.past.duplicates += old.duplicates;
            self.past.out_of_order += old.out_of_order;
        }
        self.current = Some(Source::new(header.ssrc, header.seq));
    }

    /// The SSRC heard last.
    pub fn ssrc(&self) -> Option<u32> {
        self.current.as_ref().map(|s| s.ssrc)
    }

    /// A report block on the current source for our next RTCP report; `last_sr` and `since_sr`
    /// are the middle of the NTP time of the party's last SR and how long ago it came.
    pub fn report(&mut self, last_sr: u32, since_sr: Duration) -> Option<ReportBlock> {
        Some(self.current.as_mut()?.report(last_sr, since_sr))
    }

    pub fn summary(&self) -> InboundSummary {
        let (mut expected, mut lost) = (self.past.expected, self.past.lost);
        let (mut duplicates, mut out_of_order) = (self.past.duplicates, self.past.out_of_order);
        let mut jitter = 0.0;
        if let Some(s) = &self.current {
            expected += s.expected();
            lost += s.lost();
            duplicates += s.duplicates;
            out_of_order += s.out_of_order;
            jitter = s.jitter;
        }
        InboundSummary {
            packets: self.packets,
            bytes: self.bytes,
            expected,
            lost,
            duplicates,
            out_of_order,
            jitter: units_to_duration(jitter),
            jitter_max: units_to_duration(self.jitter_max),
            longest_gap: self.longest_gap,
        }
    }
}

/// An arrival time in RTP timestamp units, wrapping like RTP timestamps.
fn arrival_units(at: Duration) -> u32 {
    ((at.as_micros() * u128::from(CLOCK_RATE) / 1_000_000) & 0xffff_ffff) as u32
}

fn units_to_duration(units: f64) -> Duration {
    Duration::from_secs_f64(units.max(0.0) / CLOCK_RATE as f64)
}

/// The party's own view of the stream we send it, from its RTCP reports.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PeerView {
    /// RTCP packets taken from the party.
    pub reports: u64,
    /// From its last report block: loss since its previous report (fraction of 256), lost in
    /// all, jitter; and the round trip, when the block answered one of our sender reports.
    pub fraction_lost: Option<u8>,
    pub cumulative_lost: Option<i64>,
    pub jitter: Option<Duration>,
    pub rtt: Option<Duration>,
}

impl PeerView {
    /// Takes a report block the party wrote about what we send; `now_ntp` is the middle 32 bits
    /// of the NTP time it arrived at (RFC 3550 §6.4.1 round trip).
    pub fn block(&mut self, block: &ReportBlock, now_ntp: u32) {
        self.fraction_lost = Some(block.fraction_lost);
        self.cumulative_lost = Some(i64::from(block.cumulative_lost));
        self.jitter = Some(units_to_duration(f64::from(block.jitter)));
        if block.last_sr != 0 {
            let rtt = now_ntp
                .wrapping_sub(block.last_sr)
                .wrapping_sub(block.delay_since_sr);
            // A round trip over a minute is a clock or a forged block, not a measurement.
            if rtt < 60 << 16 {
                self.rtt = Some(Duration::from_secs_f64(f64::from(rtt) / 65536.0));
            }
        }
    }
}

#[cfg(test)]
mod tests;
