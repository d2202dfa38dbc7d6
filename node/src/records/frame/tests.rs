use super::*;
use callfleet_store::{Cdr, HangupCause, HangupSide, QueueEvent, QueueEventKind};

pub(crate) fn cdr(n: u32) -> Record {
    Record::Cdr(Cdr {
        node: "main-a".into(),
        call_id: format!("call-{n}@host"),
        from_uri: "sip:caller@127.0.0.1".into(),
        to_uri: "sip:100@127.0.0.11".into(),
        started_at_ms: 1_000 + i64::from(n),
        answered_at_ms: Some(1_100),
        ended_at_ms: 9_000,
        hangup_cause: HangupCause::Normal,
        hangup_side: HangupSide::Caller,
        sip_status: 200,
        redirected_from: None,
        agent: None,
        queue: None,
        uid: Some(format!("main-a/1/{n}")),
        direction: Default::default(),
        destination: None,
    })
}

fn event() -> Record {
    Record::QueueEvent(QueueEvent {
        id: 0,
        at_ms: 5,
        queue: "sales".into(),
        call_id: "c\nwith a newline".into(),
        node: "main-a".into(),
        agent: Some("1001".into()),
        event: QueueEventKind::Enqueue,
        detail: None,
        uid: Some("main-a/1/q0".into()),
    })
}

#[test]
fn lines_round_trip_and_hold_no_raw_newline() {
    let records = [
        cdr(1),
        event(),
        Record::Gone {
            call_id: "x".into(),
        },
    ];
    let mut bytes = Vec::new();
    for r in &records {
        let line = encode(r);
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
        assert_eq!(line.last(), Some(&b'\n'));
        bytes.extend(line);
    }
    let scan = scan(&bytes, usize::MAX);
    let got: Vec<Record> = scan.records.iter().map(|(_, r)| r.clone()).collect();
    assert_eq!(got, records);
    assert_eq!(scan.complete, bytes.len());
    assert_eq!(scan.torn(bytes.len()), 0);
    assert_eq!(scan.damaged, 0);
    // Offsets point just past each line.
    let first = encode(&records[0]).len();
    assert_eq!(scan.records[0].0, first);
}

#[test]
fn a_torn_tail_is_left_out_at_every_cut() {
    let whole: Vec<u8> = [cdr(1), cdr(2)].iter().flat_map(encode).collect();
    let first = encode(&cdr(1)).len();
    for cut in 0..whole.len() {
        let scan = scan(&whole[..cut], usize::MAX);
        let want = usize::from(cut >= first);
        assert_eq!(scan.records.len(), want, "cut at {cut}");
        assert_eq!(scan.complete, if cut >= first { first } else { 0 });
        assert_eq!(
            scan.damaged, 0,
            "a torn line is not a damaged one (cut {cut})"
        );
    }
    // Zeros the file system left after a crash are a torn tail too.
    let mut zeros = whole.clone();
    zeros.extend([0u8; 4096]);
    let scan = scan(&zeros, usize::MAX);
    assert_eq!((scan.records.len(), scan.complete), (2, whole.len()));
}

#[test]
fn damaged_lines_are_skipped_and_counted() {
    let mut bytes = encode(&cdr(1));
    let mut bad = encode(&cdr(2));
    let flip = bad.len() / 2;
    bad[flip] ^= 0x01; // one bit of the JSON
    bytes.extend(&bad);
    bytes.extend(b"not a record\n");
    bytes.extend(encode(&cdr(3)));
    let scan = scan(&bytes, usize::MAX);
    let ids: Vec<Record> = scan.records.into_iter().map(|(_, r)| r).collect();
    assert_eq!(ids, [cdr(1), cdr(3)]);
    assert_eq!(scan.damaged, 2);
    assert_eq!(scan.complete, bytes.len());
}

#[test]
fn scan_stops_after_max_records() {
    let bytes: Vec<u8> = (0..5).flat_map(|n| encode(&cdr(n))).collect();
    let scan = scan(&bytes, 2);
    assert_eq!(scan.records.len(), 2);
    assert_eq!(scan.complete, scan.records[1].0, "stops after the second");
}

#[test]
fn admission_keeps_room_for_call_ends_and_cdrs() {
    // (kind, len, used, capacity, admitted)
    let cases = [
        (Kind::Kept, 10, 0, 100, true),
        (Kind::Kept, 10, 90, 100, true),
        (Kind::Kept, 11, 90, 100, false),
        (Kind::Live, 10, 80, 100, true),
        (Kind::Live, 11, 80, 100, false),
        (Kind::Live, 1, 90, 100, false),
        (Kind::Kept, 1, u64::MAX, 100, false),
    ];
    for (kind, len, used, cap, want) in cases {
        assert_eq!(
            admit(kind, len, used, cap),
            want,
            "{kind:?} {len} {used} {cap}"
        );
    }
    assert_eq!(cdr(1).kind(), Kind::Kept);
    assert_eq!(
        Record::Gone {
            call_id: "x".into()
        }
        .kind(),
        Kind::Kept
    );
    assert_eq!(
        Record::Answered {
            call_id: "x".into(),
            at_ms: 1
        }
        .kind(),
        Kind::Live
    );
}

#[test]
fn compaction_when_most_of_the_file_is_replayed() {
    // (head, len, min, compact)
    let cases = [
        (0, 100, 10, false),
        (9, 10, 10, false),
        (10, 19, 10, true),
        (10, 20, 10, false),
        (60, 100, 10, true),
        (60, 100, 100, false),
    ];
    for (head, len, min, want) in cases {
        assert_eq!(should_compact(head, len, min), want, "{head} {len} {min}");
    }
}
