use std::io::Write as _;

use super::*;
use crate::records::frame::tests::cdr;

fn live(n: u32) -> Record {
    Record::Answered {
        call_id: format!("call-{n}"),
        at_ms: 1,
    }
}

fn all(spool: &Spool) -> Vec<(u64, Record)> {
    spool.peek(usize::MAX).expect("peek").records
}

#[test]
fn records_survive_a_reopen_and_replay_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut spool, opened) = Spool::open(dir.path(), "n", 1 << 20).expect("open");
    assert_eq!(opened, Opened::default());
    assert!(spool.is_empty());
    let refused = spool.append(vec![cdr(1), cdr(2)]).expect("append");
    assert!(refused.is_empty());
    spool.append(vec![cdr(3)]).expect("append");
    assert_eq!(spool.waiting(), 3);
    drop(spool);

    let (mut spool, opened) = Spool::open(dir.path(), "n", 1 << 20).expect("reopen");
    assert_eq!(opened.records, 3);
    let batch = all(&spool);
    let got: Vec<Record> = batch.iter().map(|(_, r)| r.clone()).collect();
    assert_eq!(got, [cdr(1), cdr(2), cdr(3)]);
    // The database took the first one: a crash now replays from the second.
    spool.done(batch[0].0, 1).expect("done");
    drop(spool);
    let (spool, opened) = Spool::open(dir.path(), "n", 1 << 20).expect("reopen");
    assert_eq!(opened.records, 2);
    let got: Vec<Record> = all(&spool).into_iter().map(|(_, r)| r).collect();
    assert_eq!(got, [cdr(2), cdr(3)]);
}

#[test]
fn a_torn_end_is_cut_and_appends_go_on_after_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut spool, _) = Spool::open(dir.path(), "n", 1 << 20).expect("open");
    spool.append(vec![cdr(1)]).expect("append");
    let good = spool.bytes();
    drop(spool);
    // A crash in the middle of the next batch's write.
    let half = crate::records::frame::encode(&cdr(2));
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("n.spool"))
        .expect("open file");
    f.write_all(&half[..half.len() / 2]).expect("write");
    drop(f);

    let (mut spool, opened) = Spool::open(dir.path(), "n", 1 << 20).expect("reopen");
    assert_eq!(opened.records, 1);
    assert_eq!(opened.torn, (half.len() / 2) as u64);
    assert_eq!(spool.bytes(), good, "cut back to the last whole line");
    spool.append(vec![cdr(3)]).expect("append");
    let got: Vec<Record> = all(&spool).into_iter().map(|(_, r)| r).collect();
    assert_eq!(got, [cdr(1), cdr(3)]);
}

#[test]
fn the_file_empties_when_everything_is_replayed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut spool, _) = Spool::open(dir.path(), "n", 1 << 20).expect("open");
    spool.append(vec![cdr(1), cdr(2)]).expect("append");
    let batch = spool.peek(10).expect("peek");
    spool.done(batch.end, 2).expect("done");
    assert!(spool.is_empty());
    assert_eq!((spool.bytes(), spool.waiting()), (0, 0));
    let size = std::fs::metadata(dir.path().join("n.spool"))
        .expect("meta")
        .len();
    assert_eq!(size, 0);
    // A crash after emptying: nothing to replay, and new records start at 0.
    drop(spool);
    let (mut spool, opened) = Spool::open(dir.path(), "n", 1 << 20).expect("reopen");
    assert_eq!(opened.records, 0);
    spool.append(vec![cdr(3)]).expect("append");
    let got: Vec<Record> = all(&spool).into_iter().map(|(_, r)| r).collect();
    assert_eq!(got, [cdr(3)]);
}

#[test]
fn a_full_spool_refuses_live_rows_first_then_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let line = crate::records::frame::encode(&cdr(10)).len() as u64;
    // Room for ten CDRs.
    let (mut spool, _) = Spool::open(dir.path(), "n", line * 10).expect("open");
    let refused = spool
        .append((10..19).map(cdr).collect())
        .expect("append nine");
    assert!(refused.is_empty());
    // Past 90 %: a live row is refused, a CDR still fits.
    let refused = spool.append(vec![live(1), cdr(19)]).expect("append");
    assert_eq!(refused, [live(1)]);
    let refused = spool.append(vec![cdr(20)]).expect("append");
    assert_eq!(refused, [cdr(20)], "full");
    assert_eq!(spool.waiting(), 10);
    assert!(spool.bytes() <= spool.capacity());
}

#[test]
fn replayed_records_make_room_by_compaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let line = crate::records::frame::encode(&cdr(10)).len() as u64;
    let (mut spool, _) = Spool::open(dir.path(), "n", line * 4).expect("open");
    spool.append((10..14).map(cdr).collect()).expect("fill");
    let batch = spool.peek(3).expect("peek");
    spool.done(batch.end, 3).expect("three replayed");
    // Full on disk, but three lines are in the database: the next append compacts first.
    let refused = spool.append(vec![cdr(14), cdr(15)]).expect("append");
    assert!(refused.is_empty());
    assert_eq!(spool.head(), 0);
    let got: Vec<Record> = all(&spool).into_iter().map(|(_, r)| r).collect();
    assert_eq!(got, [cdr(13), cdr(14), cdr(15)]);
    drop(spool);
    let (spool, opened) = Spool::open(dir.path(), "n", line * 4).expect("reopen");
    assert_eq!(opened.records, 3);
    let got: Vec<Record> = all(&spool).into_iter().map(|(_, r)| r).collect();
    assert_eq!(got, [cdr(13), cdr(14), cdr(15)]);
}

#[test]
fn a_head_past_the_end_replays_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut spool, _) = Spool::open(dir.path(), "n", 1 << 20).expect("open");
    spool.append(vec![cdr(1)]).expect("append");
    drop(spool);
    std::fs::write(dir.path().join("n.head"), "999999").expect("write head");
    let (spool, opened) = Spool::open(dir.path(), "n", 1 << 20).expect("reopen");
    assert_eq!(opened.records, 1);
    assert_eq!(all(&spool).len(), 1);
}
