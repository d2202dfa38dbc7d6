use super::*;

const SSRC: u32 = 0x5555;

fn header(seq: u16, timestamp: u32) -> Header {
    Header {
        payload_type: 0,
        seq,
        timestamp,
        ssrc: SSRC,
    }
}

/// Feeds sequence numbers arriving 20 ms apart, timestamps in step with the clock.
fn feed(seqs: &[u16]) -> InboundSummary {
    let mut q = Inbound::default();
    for (i, &seq) in seqs.iter().enumerate() {
        let ts = u32::from(seq).wrapping_mul(160);
        q.packet(
            &header(seq, ts),
            172,
            Duration::from_millis(20 * i as u64),
            true,
        );
    }
    q.summary()
}

#[test]
fn sequences_with_gaps_duplicates_reordering_and_wraps() {
    // (what, sequence numbers, (expected, lost, duplicates, out of order))
    type Case = (&'static str, Vec<u16>, (u64, u64, u64, u64));
    let cases: &[Case] = &[
        ("in order", (1..=100).collect(), (100, 0, 0, 0)),
        ("one gap of 3", vec![1, 2, 3, 7, 8], (8, 3, 0, 0)),
        ("a duplicate", vec![1, 2, 2, 3], (3, 0, 1, 0)),
        ("swapped pair", vec![1, 3, 2, 4], (4, 0, 0, 1)),
        ("late then its copy", vec![1, 3, 2, 2, 4], (4, 0, 1, 1)),
        ("late, before the first", vec![10, 11, 9, 12], (4, 0, 0, 1)),
        ("wrap", vec![65533, 65534, 65535, 0, 1], (5, 0, 0, 0)),
        (
            "gap across the wrap",
            vec![65534, 65535, 2, 3],
            (6, 2, 0, 0),
        ),
        (
            "late across the wrap",
            vec![65534, 0, 65535, 1],
            (4, 0, 0, 1),
        ),
        (
            "copy of the previous cycle's",
            vec![65535, 0, 1, 65535],
            (3, 0, 1, 0),
        ),
        // A jump of 5000 is believed when the next packet follows it: a new source.
        ("confirmed jump", vec![1, 2, 5002, 5003, 5004], (4, 0, 0, 0)),
        // A lone stray jump is not counted.
        ("stray jump", vec![1, 2, 40000, 3, 4], (4, 0, 0, 0)),
    ];
    for (what, seqs, want) in cases {
        let s = feed(seqs);
        assert_eq!(
            (s.expected, s.lost, s.duplicates, s.out_of_order),
            *want,
            "{what}"
        );
        assert_eq!(s.packets, seqs.len() as u64, "{what}: every packet counted");
        assert_eq!(s.bytes, 172 * seqs.len() as u64, "{what}");
    }
}

#[test]
fn many_wraps_extend_the_sequence() {
    let mut q = Inbound::default();
    let mut lost = 0;
    for i in 0..200_000u32 {
        if i % 50 == 7 {
            lost += 1;
            continue;
        }
        let seq = (i & 0xffff) as u16;
        q.packet(
            &header(seq, i * 160),
            172,
            Duration::from_millis(20 * u64::from(i)),
            true,
        );
    }
    let s = q.summary();
    assert_eq!(s.expected, 200_000);
    assert_eq!(s.lost, lost);
    let rb = q.report(0, Duration::ZERO).expect("a source");
    assert_eq!(rb.highest_seq, 199_999);
    assert_eq!(rb.cumulative_lost, lost as i32);
}

#[test]
fn a_new_ssrc_keeps_the_old_counts() {
    let mut q = Inbound::default();
    for (ssrc, seq) in [(1, 10), (1, 12), (2, 500), (2, 501), (2, 503)] {
        let h = Header {
            ssrc,
            ..header(seq, 0)
        };
        q.packet(&h, 100, Duration::ZERO, false);
    }
    let s = q.summary();
    assert_eq!((s.expected, s.lost), (3 + 4, 1 + 1));
    assert_eq!(q.ssrc(), Some(2));
}

#[test]
fn jitter_with_known_timing() {
    // (what, arrival offsets in ms for packets sent every 20 ms, jitter band in ms)
    let steady: Vec<i64> = vec![0; 500];
    // Alternating 0 and +10 ms: |D| = 80 units each packet, J converges to 80 (10 ms).
    let alternating: Vec<i64> = (0..500).map(|i| if i % 2 == 0 { 0 } else { 10 }).collect();
    // Uniform delay in [0, 20) ms from a fixed pseudo-random sequence: E|X-Y| = 20/3 ms.
    let mut x: u64 = 12345;
    let uniform: Vec<i64> = (0..5000)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 33) % 20) as i64
        })
        .collect();
    let cases: [(&str, &[i64], f64, f64); 3] = [
        ("steady", &steady, 0.0, 0.001),
        ("alternating 10 ms", &alternating, 9.9, 10.0),
        ("uniform 0-20 ms", &uniform, 4.5, 8.5),
    ];
    for (what, offsets, low, high) in cases {
        let mut q = Inbound::default();
        for (i, off) in offsets.iter().enumerate() {
            let sent_ms = 20 * i as i64;
            // Start the timestamps near the wrap so the estimator must wrap too.
            let ts = (u32::MAX - 1000).wrapping_add((i as u32) * 160);
            let at = Duration::from_millis((1_000 + sent_ms + off) as u64);
            q.packet(&header(i as u16, ts), 172, at, true);
        }
        let j = q.summary().jitter.as_secs_f64() * 1000.0;
        assert!(
            (low..=high).contains(&j),
            "{what}: jitter {j} ms not in {low}..{high}"
        );
    }
}

#[test]
fn dtmf_does_not_feed_jitter_and_gaps_are_measured() {
    let mut q = Inbound::default();
    let times = [0, 20, 40, 300, 320];
    for (i, t) in times.iter().enumerate() {
        // A telephone-event keeps its timestamp: taken as audio it would read as jitter.
        q.packet(&header(i as u16, 800), 16, Duration::from_millis(*t), false);
    }
    let s = q.summary();
    assert_eq!(s.jitter, Duration::ZERO);
    assert_eq!(s.longest_gap, Duration::from_millis(260));
}

#[test]
fn report_fraction_lost_per_interval() {
    let mut q = Inbound::default();
    // 100 expected, 10 lost in the first interval; none in the second.
    for seq in (0..100u16).filter(|s| s % 10 != 3) {
        q.packet(&header(seq, 0), 172, Duration::ZERO, false);
    }
    let first = q.report(0, Duration::ZERO).expect("a source");
    assert_eq!(first.fraction_lost, (10 * 256 / 100) as u8);
    assert_eq!(first.cumulative_lost, 10);
    assert_eq!((first.last_sr, first.delay_since_sr), (0, 0));
    for seq in 100..200u16 {
        q.packet(&header(seq, 0), 172, Duration::ZERO, false);
    }
    let second = q
        .report(0x1000, Duration::from_millis(500))
        .expect("a source");
    assert_eq!(second.fraction_lost, 0);
    assert_eq!(second.cumulative_lost, 10);
    assert_eq!(second.highest_seq, 199);
    assert_eq!(second.last_sr, 0x1000);
    assert_eq!(second.delay_since_sr, 32768);
}

#[test]
fn peer_view_from_a_block() {
    let mut p = PeerView::default();
    let block = ReportBlock {
        ssrc: 1,
        fraction_lost: 12,
        cumulative_lost: 30,
        highest_seq: 5000,
        jitter: 160,
        last_sr: 0x0001_0000,
        delay_since_sr: 0x0000_8000,
    };
    // Arrived 0.75 s after our SR, the peer held it 0.5 s: 0.25 s round trip.
    p.block(&block, 0x0001_c000);
    assert_eq!(p.fraction_lost, Some(12));
    assert_eq!(p.cumulative_lost, Some(30));
    assert_eq!(p.jitter, Some(Duration::from_millis(20)));
    assert_eq!(p.rtt, Some(Duration::from_millis(250)));
    // No SR answered: no round trip; a forged delay is not a measurement.
    let mut q = PeerView::default();
    q.block(
        &ReportBlock {
            last_sr: 0,
            ..block
        },
        5,
    );
    assert_eq!(q.rtt, None);
    q.block(
        &ReportBlock {
            last_sr: 10,
            ..block
        },
        5,
    );
    assert_eq!(q.rtt, None);
}
