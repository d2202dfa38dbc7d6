//! A call leg's RTP quality into the call's record: when a leg's media stops, the call hands
//! its [`LegQuality`] (measured by the leg's task, `media::session::report`) to [`record`],
//! which writes it through the record writer (table `call_quality`, keyed by the call and the
//! leg) and observes its loss and jitter in the node's histograms. Any leg can be recorded
//! this way: it only needs the Call-ID of a call still in the node's table and its role.

use std::time::Duration;

use callfleet_store::{CallLeg, LegQualityRow};
use tracing::debug;

use crate::media::session::LegQuality;
use crate::node::Quality;
use crate::now_ms;
use crate::records::Record;

/// The call a leg belongs to, as its CDR names it.
#[derive(Debug, Clone, Copy)]
pub struct CallKey<'a> {
    pub node: &'a str,
    pub call_id: &'a str,
    pub started_at_ms: i64,
}

/// Writes one leg's quality with its call and observes it in the metrics; a call no longer in
/// the table (never the case at the end of a leg) is logged and skipped.
pub fn record(handle: &Quality, call_id: &str, leg: CallLeg, q: &LegQuality) {
    let Some(entry) = handle.calls.get(call_id) else {
        debug!(
            call_id,
            leg = leg.as_str(),
            "leg quality of a call not in the table; not stored"
        );
        return;
    };
    let key = CallKey {
        node: &handle.cfg.node.name,
        call_id,
        started_at_ms: entry.started_at_ms,
    };
    let row = row(key, leg, q, now_ms());
    debug!(
        call_id,
        leg = leg.as_str(),
        received = row.packets_in,
        lost = row.lost,
        jitter_us = row.jitter_us,
        rtcp_received = row.rtcp_received,
        "leg quality"
    );
    if let Some(loss) = loss_ratio(q) {
        handle
            .metrics
            .media()
            .observe(loss, q.inbound.jitter.as_secs_f64());
    }
    handle.recorder.send(Record::Quality(row));
}

/// The share of the party's packets lost; `None` when none were expected (no RTP came).
pub fn loss_ratio(q: &LegQuality) -> Option<f64> {
    (q.inbound.expected > 0).then(|| q.inbound.lost as f64 / q.inbound.expected as f64)
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// The stored form of a leg's quality.
pub fn row(key: CallKey<'_>, leg: CallLeg, q: &LegQuality, ended_at_ms: i64) -> LegQualityRow {
    let i = &q.inbound;
    LegQualityRow {
        node: key.node.to_owned(),
        call_id: key.call_id.to_owned(),
        started_at_ms: key.started_at_ms,
        leg,
        ended_at_ms,
        codec: q.codec.name().to_owned(),
        packets_in: int(i.packets),
        bytes_in: int(i.bytes),
        packets_out: int(q.packets_out),
        bytes_out: int(q.bytes_out),
        expected: int(i.expected),
        lost: int(i.lost),
        duplicates: int(i.duplicates),
        out_of_order: int(i.out_of_order),
        jitter_us: micros(i.jitter),
        jitter_max_us: micros(i.jitter_max),
        longest_gap_ms: i64::try_from(i.longest_gap.as_millis()).unwrap_or(i64::MAX),
        rtcp_sent: int(q.rtcp_sent),
        rtcp_received: int(q.peer.reports),
        peer_fraction_lost: q.peer.fraction_lost.map(i64::from),
        peer_lost: q.peer.cumulative_lost,
        peer_jitter_us: q.peer.jitter.map(micros),
        rtt_us: q.peer.rtt.map(micros),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::quality::{InboundSummary, PeerView};
    use crate::media::sdp::Codec;

    #[test]
    fn a_leg_becomes_its_row() {
        let q = LegQuality {
            codec: Codec::Pcma,
            inbound: InboundSummary {
                packets: 950,
                bytes: 163_400,
                expected: 1_000,
                lost: 52,
                duplicates: 2,
                out_of_order: 7,
                jitter: Duration::from_micros(12_345),
                jitter_max: Duration::from_millis(30),
                longest_gap: Duration::from_millis(81),
            },
            packets_out: 1_001,
            bytes_out: 172_172,
            rtcp_sent: 4,
            peer: PeerView {
                reports: 3,
                fraction_lost: Some(13),
                cumulative_lost: Some(-1),
                jitter: Some(Duration::from_millis(2)),
                rtt: None,
            },
        };
        let key = CallKey {
            node: "main-a",
            call_id: "c@h",
            started_at_ms: 10,
        };
        let r = row(key, CallLeg::Agent, &q, 99);
        assert_eq!((r.node.as_str(), r.call_id.as_str()), ("main-a", "c@h"));
        assert_eq!(
            (r.started_at_ms, r.ended_at_ms, r.leg),
            (10, 99, CallLeg::Agent)
        );
        assert_eq!(r.codec, "PCMA");
        assert_eq!(
            (r.packets_in, r.bytes_in, r.packets_out, r.bytes_out),
            (950, 163_400, 1_001, 172_172)
        );
        assert_eq!(
            (r.expected, r.lost, r.duplicates, r.out_of_order),
            (1_000, 52, 2, 7)
        );
        assert_eq!(
            (r.jitter_us, r.jitter_max_us, r.longest_gap_ms),
            (12_345, 30_000, 81)
        );
        assert_eq!((r.rtcp_sent, r.rtcp_received), (4, 3));
        assert_eq!(
            (
                r.peer_fraction_lost,
                r.peer_lost,
                r.peer_jitter_us,
                r.rtt_us
            ),
            (Some(13), Some(-1), Some(2_000), None)
        );
        assert_eq!(loss_ratio(&q), Some(0.052));
        let silent = LegQuality {
            inbound: InboundSummary::default(),
            ..q
        };
        assert_eq!(loss_ratio(&silent), None);
    }
}
