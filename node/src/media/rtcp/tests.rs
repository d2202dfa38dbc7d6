use super::*;

fn block(ssrc: u32, lost: i32) -> ReportBlock {
    ReportBlock {
        ssrc,
        fraction_lost: 13,
        cumulative_lost: lost,
        highest_seq: 0x0001_0005,
        jitter: 160,
        last_sr: 0x1234_5678,
        delay_since_sr: 0x0002_8000,
    }
}

#[test]
fn receiver_report_layout() {
    let r = Report {
        ssrc: 0xaabb_ccdd,
        sender: None,
        blocks: vec![block(0x0102_0304, 42)],
    };
    let w = write(&r, "cf");
    // RR: header, SSRC, one block = 8 words; SDES: header, SSRC, CNAME "cf" + end, padded.
    assert_eq!(&w[..4], &[0x81, 201, 0, 7]);
    assert_eq!(&w[4..8], &[0xaa, 0xbb, 0xcc, 0xdd]);
    assert_eq!(&w[8..12], &[1, 2, 3, 4]);
    assert_eq!(&w[12..16], &[13, 0, 0, 42]);
    assert_eq!(&w[32..36], &[0x81, 202, 0, 3]);
    assert_eq!(&w[40..], &[1, 2, b'c', b'f', 0, 0, 0, 0]);
    assert_eq!(parse(&w), Ok(vec![r]));
}

#[test]
fn sender_report_round_trip_and_negative_loss() {
    let r = Report {
        ssrc: 7,
        sender: Some(SenderInfo {
            ntp: 0xe000_0001_8000_0000,
            rtp_timestamp: 16_000,
            packets: 250,
            octets: 40_000,
        }),
        // Duplicates can make the cumulative loss negative (24-bit signed on the wire).
        blocks: vec![block(1, -3), block(2, 0x7f_ffff)],
    };
    let w = write(&r, "callfleet@node-a");
    assert_eq!(&w[..2], &[0x82, 200]);
    assert_eq!(w.len() % 4, 0);
    assert_eq!(parse(&w), Ok(vec![r]));
}

#[test]
fn other_packets_are_skipped_and_bad_input_refused() {
    let rr = write(
        &Report {
            ssrc: 9,
            sender: None,
            blocks: vec![],
        },
        "x",
    );
    // A BYE ahead of the report, as some phones send on hangup.
    let mut compound = vec![0x81, 203, 0, 1, 0, 0, 0, 9];
    compound.extend_from_slice(&rr);
    let got = parse(&compound).expect("parses");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].ssrc, 9);
    // Every truncation of a valid compound is an error, never a panic.
    let full = write(
        &Report {
            ssrc: 1,
            sender: Some(SenderInfo {
                ntp: 1,
                rtp_timestamp: 2,
                packets: 3,
                octets: 4,
            }),
            blocks: vec![block(5, 6)],
        },
        "abc",
    );
    for n in 0..full.len() {
        if n % 4 != 0 || n == 0 {
            assert!(parse(&full[..n]).is_err(), "{n} bytes");
        }
    }
    assert_eq!(
        parse(&[0x40, 201, 0, 1, 0, 0, 0, 0]),
        Err(RtcpError::Version(1))
    );
    // Two blocks announced, room for none.
    assert_eq!(
        parse(&[0x82, 201, 0, 1, 0, 0, 0, 0]),
        Err(RtcpError::Blocks(2))
    );
    assert_eq!(parse(&[]), Err(RtcpError::Truncated));
}

#[test]
fn ntp_time() {
    let t = std::time::Duration::from_millis(1_500);
    let n = ntp(t);
    assert_eq!(n >> 32, 2_208_988_801);
    assert_eq!(n & 0xffff_ffff, 0x8000_0000);
    assert_eq!(
        middle(n),
        ((2_208_988_801u64 & 0xffff) << 16 | 0x8000) as u32
    );
}
