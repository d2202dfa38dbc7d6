use super::*;
use crate::media::dtmf::event_packet;
use crate::media::sdp::{Codec, Rtcp};
use crate::media::session::{bridge, MediaEvent, Mode, Session, Target};
use prometheus_client::metrics::counter::Counter;
use std::sync::atomic::Ordering;
use tokio::net::UdpSocket;

#[test]
fn batched_table() {
    let cases = [
        (Kind::Shared, false, false, true),
        (Kind::Shared, true, false, false),
        (Kind::Shared, false, true, false),
        (Kind::Own, false, false, false),
        (Kind::Idle, false, false, false),
        (Kind::Idle, true, true, false),
    ];
    for (i, (pace, recording, tap, want)) in cases.into_iter().enumerate() {
        assert_eq!(batched(pace, recording, tap), want, "case {i}");
    }
}

#[test]
fn arrival_table() {
    let wall = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let ms = Duration::from_millis;
    let cases = [
        // (task now, stamp, arrival)
        (ms(10_000), None, ms(10_000)),
        (ms(10_000), Some(wall), ms(10_000)),
        (ms(10_000), Some(wall - ms(30)), ms(9_970)),
        (ms(10_000), Some(wall - ms(99)), ms(9_901)),
        (ms(10_000), Some(wall - MAX_AGE), ms(10_000) - MAX_AGE),
        // A stamp ahead of the wall clock, or too old: the wall clock moved.
        (ms(10_000), Some(wall + ms(5)), ms(10_000)),
        (ms(10_000), Some(wall - MAX_AGE - ms(1)), ms(10_000)),
        // Never before the task's start.
        (ms(10), Some(wall - ms(30)), Duration::ZERO),
    ];
    for (i, (now, stamp, want)) in cases.into_iter().enumerate() {
        assert_eq!(arrival(now, wall, stamp), want, "case {i}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_coarse_timer_ticks_every_period_and_never_when_not_parked() {
    let start = Instant::now();
    let mut batch = Some(timer());
    for _ in 0..3 {
        next(&mut batch).await;
    }
    assert_eq!(start.elapsed(), PERIOD * 3);
    let mut none = None;
    let woke = tokio::time::timeout(Duration::from_secs(60), next(&mut none)).await;
    assert!(woke.is_err(), "a leg that is not parked has no batch time");
}

/// Music on hold (the built-in tune).
fn moh() -> Mode {
    Mode::Moh(
        crate::media::moh::Library::load(std::path::Path::new("/nonexistent-moh-dir"))
            .default_class(),
    )
}

/// A leg on 127.0.89.1 whose party is `party`.
async fn leg(mode: Mode, party: &UdpSocket) -> Session {
    let sock = UdpSocket::bind("127.0.89.1:0").await.expect("bind node");
    let local = sock.local_addr().expect("addr");
    let target = Target {
        remote: Some(party.local_addr().expect("party")),
        codec: Codec::Pcmu,
        send: true,
        dtmf_pt: Some(101),
        signal_ip: None,
        rtcp: Rtcp::Mux,
        packet_ms: 20,
    };
    Session::start(sock, local, target, mode, 0, Counter::default())
}

fn rtp_packet(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&0x0102_0304u32.to_be_bytes());
    p.extend_from_slice(&[0xff; 160]);
    p
}

/// A receiver report on the RTP port (rtcp-mux), from SSRC 0x01020304.
fn receiver_report() -> Vec<u8> {
    vec![0x80, 201, 0, 1, 1, 2, 3, 4]
}

/// A held caller's packets wait in the socket until the leg's batch time, and are then all
/// taken as they would be one by one: counted, the latch keeping out a stranger's, DTMF
/// reported, RTCP on the RTP port read, the quality meter fed.
#[tokio::test(start_paused = true)]
async fn a_held_callers_packets_are_taken_at_the_batch_time() {
    let caller = UdpSocket::bind("127.0.89.2:0").await.expect("bind");
    let stranger = UdpSocket::bind("127.0.89.3:0").await.expect("bind");
    let s = leg(moh(), &caller).await;
    let mut events = s.events().expect("events");
    // The leg's task starts and joins the track's clock (and so reads in batches).
    tokio::time::sleep(Duration::from_millis(1)).await;
    for seq in 0..3 {
        caller
            .send_to(&rtp_packet(seq), s.local)
            .await
            .expect("send");
    }
    for end in [false, true, true, true] {
        let p = event_packet(101, 3, 480, 5, end, 400);
        caller.send_to(&p, s.local).await.expect("send");
    }
    caller
        .send_to(&receiver_report(), s.local)
        .await
        .expect("send");
    stranger
        .send_to(&rtp_packet(9), s.local)
        .await
        .expect("send");
    tokio::time::sleep(PERIOD / 2).await;
    let stats = s.stats();
    assert_eq!(stats.received.load(Ordering::Relaxed), 0, "not read yet");
    assert!(events.try_recv().is_err(), "no digit yet");
    tokio::time::sleep(PERIOD).await;
    assert_eq!(stats.received.load(Ordering::Relaxed), 7, "3 audio, 4 DTMF");
    assert_eq!(stats.ignored.load(Ordering::Relaxed), 1, "the stranger's");
    assert_eq!(events.try_recv().ok(), Some(MediaEvent::Dtmf('5')));
    assert!(events.try_recv().is_err(), "one digit");
    let q = s.quality();
    assert_eq!(q.inbound.packets, 7, "every packet of the party measured");
    assert_eq!(q.peer.reports, 1, "the party's RTCP taken");
    assert!(stats.sent.load(Ordering::Relaxed) > 0, "music meanwhile");
}

/// Bridged (leaving the roster), the leg takes what waited, under the hold it came in, and
/// relays what comes next at once.
#[tokio::test(start_paused = true)]
async fn leaving_hold_takes_what_waited_and_relays_at_once() {
    let caller = UdpSocket::bind("127.0.89.4:0").await.expect("bind");
    let agent = UdpSocket::bind("127.0.89.5:0").await.expect("bind");
    let a = leg(moh(), &caller).await;
    let b = leg(Mode::Silence, &agent).await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    for seq in 0..3 {
        caller
            .send_to(&rtp_packet(seq), a.local)
            .await
            .expect("send");
    }
    bridge(&a, &b);
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(a.stats().received.load(Ordering::Relaxed), 3);
    assert_eq!(
        b.stats().relayed.load(Ordering::Relaxed),
        0,
        "held audio not relayed"
    );
    caller.send_to(&rtp_packet(3), a.local).await.expect("send");
    let mut buf = [0u8; 400];
    let (n, from) = tokio::time::timeout(Duration::from_millis(5), agent.recv_from(&mut buf))
        .await
        .expect("relayed without waiting for a batch time")
        .expect("recv");
    assert_eq!(&buf[..n], &rtp_packet(3)[..]);
    assert_eq!(from, b.local);
    assert_eq!(a.stats().received.load(Ordering::Relaxed), 4);
}

/// The packets waiting when the leg stops are counted and measured by the time `finish`
/// returns.
#[tokio::test(start_paused = true)]
async fn a_stopped_held_leg_counts_what_waited() {
    let caller = UdpSocket::bind("127.0.89.6:0").await.expect("bind");
    let s = leg(moh(), &caller).await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    for seq in 0..40 {
        caller
            .send_to(&rtp_packet(seq), s.local)
            .await
            .expect("send");
    }
    s.finish().await;
    assert_eq!(
        s.stats().received.load(Ordering::Relaxed),
        40,
        "more than two batches"
    );
    assert_eq!(
        s.quality().inbound.packets,
        40,
        "all measured once the leg finished"
    );
}
