use super::*;
use std::sync::atomic::{AtomicU64, Ordering};

/// A leg's output that keeps what it was sent: (sequence, timestamp, marker, first payload
/// byte) per packet, and the times it was paced.
#[derive(Default)]
struct Ear {
    heard: Mutex<Vec<(u16, u32, bool, u8)>>,
    paced: AtomicU64,
    /// Refuses every packet (a full socket).
    full: bool,
}

impl Output for Ear {
    fn send_now(&self, p: &[u8], _to: SocketAddr) -> bool {
        if self.full {
            return false;
        }
        let seq = u16::from_be_bytes([p[2], p[3]]);
        let ts = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
        self.heard
            .lock()
            .unwrap()
            .push((seq, ts, p[1] & 0x80 != 0, p[rtp::HEADER]));
        true
    }

    fn paced(&self) {
        self.paced.fetch_add(1, Ordering::Relaxed);
    }
}

impl Ear {
    fn take(&self) -> Vec<(u16, u32, bool, u8)> {
        std::mem::take(&mut *self.heard.lock().unwrap())
    }
}

/// A track whose frame `i` is the PCMU encoding of a constant level that differs per frame
/// (so a packet's first byte tells its frame), 64 frames long.
fn audio() -> Arc<Encoded> {
    let samples: Vec<i16> = (0..64 * FRAME).map(|i| (i / FRAME) as i16 * 400).collect();
    Arc::new(Encoded::from_samples(&samples))
}

/// A packet as heard: sequence number, timestamp, marker bit, and the frame it carries (its
/// clock count) or the frame's first byte.
type Heard = (u16, u32, bool, u64);

fn listener(seq: u16, ts: u32) -> Listener {
    Listener::new(
        Stream::new(0, 0x1234, seq, ts),
        Codec::Pcmu,
        "127.0.0.1:4000".parse().unwrap(),
        Instant::now(),
    )
}

fn first_byte(audio: &Encoded, n: u64) -> u8 {
    audio.frame_at(Codec::Pcmu, n)[0]
}

#[test]
fn frames_due_table() {
    // (last, now, max) -> (skipped, first, count)
    let cases = [
        ((0, 1, 3), (0, 1, 1)),
        ((4, 5, 3), (0, 5, 1)),
        ((4, 6, 3), (0, 5, 2)),
        ((4, 7, 3), (0, 5, 3)),
        ((4, 10, 3), (3, 8, 3)),
        ((5, 5, 3), (0, 6, 0)),
        ((9, 5, 3), (0, 6, 0)),
    ];
    for ((last, now, max), (skip, first, count)) in cases {
        let (s, range) = frames_due(last, now, max);
        assert_eq!(s, skip, "{last}->{now}");
        assert_eq!(*range.start(), first, "{last}->{now}");
        assert_eq!(range.count() as u64, count, "{last}->{now}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_listener_is_sent_the_frames_due_and_skips_what_it_fell_behind() {
    let audio = audio();
    let mut buf = [0u8; rtp::HEADER + FRAME];
    let t0 = Instant::now();
    // (count the clock stands at, packets sent as (seq, ts, marker, frame)), one after the other.
    let cases: [(u64, &[Heard]); 5] = [
        (1, &[(100, 1000, true, 1)]),
        (2, &[(101, 1160, false, 2)]),
        (2, &[]),
        // Behind by 6: 3 frames' time skipped, the latest 3 sent, the first marked.
        (
            8,
            &[
                (102, 1800, true, 6),
                (103, 1960, false, 7),
                (104, 2120, false, 8),
            ],
        ),
        (5, &[]),
    ];
    let mut l = listener(100, 1000);
    for (now, want) in cases {
        let mut sent = Vec::new();
        let due = l.send_due(now, &audio, &mut buf, |p, _| {
            sent.push((
                u16::from_be_bytes([p[2], p[3]]),
                u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
                p[1] & 0x80 != 0,
                p[rtp::HEADER],
            ));
            true
        });
        let want: Vec<_> = want
            .iter()
            .map(|&(s, t, m, n)| (s, t, m, first_byte(&audio, n)))
            .collect();
        assert_eq!(sent, want, "at count {now}");
        assert_eq!(due, want.len() as u64);
    }
    assert_eq!((l.packets, l.octets), (5, 5 * FRAME as u64));
    assert_eq!(
        l.stamped,
        t0 + FRAME_TIME * 8,
        "the time of 5 sent and 3 skipped"
    );
    // A packet the socket refused still moves the stream on (lost, as on the wire).
    let mut r = listener(7, 0);
    assert_eq!(r.send_due(1, &audio, &mut buf, |_, _| false), 1);
    assert_eq!((r.stream.seq, r.packets), (8, 0));
}

#[test]
fn a_roster_starts_joiners_at_its_count_and_hands_their_streams_back() {
    let audio = audio();
    let mut buf = [0u8; rtp::HEADER + FRAME];
    let (a, b) = (Arc::new(Ear::default()), Arc::new(Ear::default()));
    let mut roster: Roster<Arc<Ear>> = Roster::default();
    let ia = roster.join(listener(10, 0), a.clone());
    assert!(roster.tick(1));
    assert_eq!(roster.send(0, CHUNK, &audio, &mut buf), None);
    let ib = roster.join(listener(500, 0), b.clone());
    assert_ne!(ia, ib);
    assert!(
        b.take().is_empty(),
        "a joiner hears nothing before the next tick"
    );
    assert!(roster.tick(2));
    // Two places, one at a time: the first call goes on from the second place.
    assert_eq!(roster.send(0, 1, &audio, &mut buf), Some(1));
    assert_eq!(roster.send(1, 1, &audio, &mut buf), None);
    let fb = first_byte(&audio, 2);
    assert_eq!(
        a.take(),
        [(10, 0, true, first_byte(&audio, 1)), (11, 160, false, fb)]
    );
    assert_eq!(
        b.take(),
        [(500, 0, true, fb)],
        "the same frame at the same tick"
    );
    assert_eq!(
        (
            a.paced.load(Ordering::Relaxed),
            b.paced.load(Ordering::Relaxed)
        ),
        (2, 1)
    );
    let back = roster.leave(ia).expect("a listened");
    assert_eq!((back.stream.seq, back.stream.timestamp), (12, 320));
    assert!(roster.leave(ia).is_none(), "once");
    assert_eq!(roster.len(), 1);
    // A new leg takes the free place.
    let ic = roster.join(listener(0, 0), a.clone());
    assert_eq!(ic, ia);
    roster.listener(ic).expect("c").codec = Codec::Pcma;
    assert!(roster.tick(3));
    assert_eq!(roster.send(0, CHUNK, &audio, &mut buf), None);
    assert_eq!(
        a.take()[0].3,
        audio.frame_at(Codec::Pcma, 3)[0],
        "its codec"
    );
    roster.leave(ib);
    roster.leave(ic);
    assert!(!roster.tick(4), "nobody listens: the clock stops");
    assert!(roster.closed);
}

#[tokio::test(start_paused = true)]
async fn one_sender_for_all_listeners_stopped_when_the_last_leaves() {
    let audio = audio();
    let clock = Clock::new(audio.clone());
    let (a, b) = (Arc::new(Ear::default()), Arc::new(Ear::default()));
    let mut ma = clock.join(listener(0, 0), a.clone());
    assert!(clock.running());
    tokio::time::sleep(Duration::from_millis(45)).await;
    let mb = clock.join(listener(0, 0), b.clone());
    tokio::time::sleep(Duration::from_millis(20)).await;
    let frames = |ear: &Ear| -> Vec<u8> { ear.take().iter().map(|h| h.3).collect() };
    let fb = |n| first_byte(&audio, n);
    assert_eq!(frames(&a), [fb(1), fb(2), fb(3)], "a tick every 20 ms");
    assert_eq!(
        frames(&b),
        [fb(3)],
        "a joiner hears the track where it stands"
    );
    let back = ma.leave().expect("a listened");
    assert_eq!((back.stream.seq, back.packets), (3, 3));
    assert!(ma.leave().is_none());
    assert_eq!(mb.with(|l| l.packets), Some(1));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(a.take().is_empty(), "a left");
    assert_eq!(frames(&b), [fb(4)]);
    drop(mb);
    assert!(!clock.running(), "nobody listens");
    tokio::time::sleep(Duration::from_millis(40)).await;
    assert!(clock.slot.lock().unwrap().is_none(), "the task ended");
    assert!(b.take().is_empty());
    let _mc = clock.join(listener(0, 0), a.clone());
    tokio::time::sleep(Duration::from_millis(25)).await;
    assert_eq!(
        frames(&a),
        [fb(1)],
        "a new clock starts at the track's beginning"
    );
}

#[tokio::test(start_paused = true)]
async fn a_late_clock_sends_the_latest_frames_and_skips_the_older_ones_time() {
    let audio = audio();
    let clock = Clock::new(audio.clone());
    let a = Arc::new(Ear::default());
    let full = Arc::new(Ear {
        full: true,
        ..Ear::default()
    });
    let m = clock.join(listener(0, 0), a.clone());
    let _f = clock.join(listener(0, 0), full.clone());
    tokio::time::sleep(Duration::from_millis(1010)).await;
    let heard = a.take();
    assert_eq!(heard.len(), 50, "50 frames a second");
    assert_eq!(heard.last().map(|h| h.3), Some(first_byte(&audio, 50)));
    // A stalled runtime (time jumps by 200 ms at once): the count still follows time.
    tokio::time::advance(Duration::from_millis(200)).await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    let late = a.take();
    let bytes: Vec<u8> = late.iter().map(|h| h.3).collect();
    assert_eq!(bytes, [58, 59, 60].map(|n| first_byte(&audio, n)));
    assert!(late[0].2, "marked after the skipped time");
    assert_eq!(late[0].1, 57 * 160, "the timestamp skipped 7 frames' time");
    assert_eq!(m.with(|l| l.packets), Some(53));
    assert_eq!(
        full.paced.load(Ordering::Relaxed),
        a.paced.load(Ordering::Relaxed),
        "a full socket is paced as any other"
    );
    assert!(full.take().is_empty());
}
