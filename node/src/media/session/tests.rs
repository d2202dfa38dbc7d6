use super::socket::DRAIN;
use super::*;
use crate::media::dtmf::event_packet;
use crate::media::sdp::Rtcp;
use prometheus_client::metrics::counter::Counter;

/// Music on hold: the built-in tune (no such directory).
fn moh() -> Mode {
    Mode::Moh(
        crate::media::moh::Library::load(std::path::Path::new("/nonexistent-moh-dir"))
            .default_class(),
    )
}

async fn leg(mode: Mode, remote: Option<SocketAddr>) -> Session {
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind node");
    let local = sock.local_addr().expect("addr");
    let target = Target {
        remote,
        codec: Codec::Pcmu,
        send: true,
        dtmf_pt: Some(101),
        signal_ip: None,
        rtcp: Rtcp::NextPort,
        packet_ms: 20,
    };
    Session::start(sock, local, target, mode, 0, Counter::default())
}

#[tokio::test(start_paused = true)]
async fn streams_fifty_packets_a_second_and_pauses_on_hold() {
    let caller = UdpSocket::bind("127.0.0.1:0").await.expect("bind caller");
    let s = leg(moh(), Some(caller.local_addr().unwrap())).await;
    tokio::time::sleep(Duration::from_millis(1010)).await;
    let sent = s.stats().sent.load(Ordering::Relaxed);
    assert!((50..=52).contains(&sent), "sent {sent} in 1 s");
    let mut buf = [0u8; 400];
    let (n, _) = caller.recv_from(&mut buf).await.expect("packet");
    assert_eq!(n, 172);
    assert_eq!(rtp::payload_type(&buf[..n]), Some(0));
    let t = s.target();
    s.retarget(Target { send: false, ..t });
    tokio::time::sleep(Duration::from_millis(30)).await;
    let held = s.stats().sent.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        s.stats().sent.load(Ordering::Relaxed),
        held,
        "nothing is sent on hold"
    );
}

#[tokio::test(start_paused = true)]
async fn a_prompt_plays_once_then_reports_done() {
    let caller = UdpSocket::bind("127.0.0.1:0").await.expect("bind caller");
    let clip = Arc::new(Track::from_samples("beep".into(), vec![1000; 800]));
    let s = leg(Mode::Play(clip.clone()), Some(caller.local_addr().unwrap())).await;
    let mut events = s.events().expect("events");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        s.stats().sent.load(Ordering::Relaxed),
        5,
        "800 samples = 5 frames"
    );
    assert_eq!(
        events.try_recv().ok(),
        Some(MediaEvent::PlayDone(0)),
        "the first mode"
    );
    // A later change of target does not replay the finished prompt.
    s.retarget(s.target());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.stats().sent.load(Ordering::Relaxed), 5);
    assert_eq!(events.try_recv().ok(), None, "one PlayDone per play");
    // Asked for again (a second "you are next"), the same clip plays again from its start.
    let again = s.set_mode(Mode::Play(clip));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        s.stats().sent.load(Ordering::Relaxed),
        10,
        "the same clip object is played again when asked again"
    );
    assert_eq!(events.try_recv().ok(), Some(MediaEvent::PlayDone(again)));
    // A change of target in the middle of a prompt neither restarts nor cuts it.
    let long = s.set_mode(Mode::Play(Arc::new(Track::from_samples(
        "long".into(),
        vec![1000; 160 * 10],
    ))));
    assert!(long > again, "each request gets a new number");
    tokio::time::sleep(Duration::from_millis(90)).await;
    s.retarget(s.target());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.stats().sent.load(Ordering::Relaxed), 20);
    assert_eq!(events.try_recv().ok(), Some(MediaEvent::PlayDone(long)));
}

#[tokio::test]
async fn bridged_legs_relay_both_ways_and_dtmf_is_reported() {
    let alice = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let bob = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let a = leg(Mode::Silence, Some(alice.local_addr().unwrap())).await;
    let b = leg(Mode::Silence, Some(bob.local_addr().unwrap())).await;
    let mut a_events = a.events().unwrap();
    bridge(&a, &b);
    let mut pkt = vec![0x80, 0, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4];
    pkt.extend_from_slice(&[0xff; 160]);
    alice.send_to(&pkt, a.local).await.unwrap();
    let mut buf = [0u8; 400];
    let (n, from) = tokio::time::timeout(Duration::from_secs(2), bob.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], &pkt[..], "relayed unchanged");
    assert_eq!(from, b.local, "out of the other leg's socket");
    bob.send_to(&pkt, b.local).await.unwrap();
    let (n, from) = tokio::time::timeout(Duration::from_secs(2), alice.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((n, from), (172, a.local));
    for end in [false, true, true, true] {
        alice
            .send_to(&event_packet(101, 9, 4000, 11, end, 400), a.local)
            .await
            .unwrap();
    }
    let ev = tokio::time::timeout(Duration::from_secs(2), a_events.recv())
        .await
        .unwrap();
    assert_eq!(ev, Some(MediaEvent::Dtmf('#')));
}

/// Packets that arrived while the leg's task did not run are all taken at its next wake-ups,
/// more than one wake-up's bound of them, in order and unchanged.
#[tokio::test]
async fn a_burst_waiting_on_the_socket_is_relayed_whole_and_in_order() {
    let alice = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let bob = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let a = leg(Mode::Silence, Some(alice.local_addr().unwrap())).await;
    let b = leg(Mode::Silence, Some(bob.local_addr().unwrap())).await;
    bridge(&a, &b);
    // Let both tasks take the bridge before the burst.
    tokio::task::yield_now().await;
    let count = 3 * DRAIN as u16 + 5;
    // Sent without yielding: on this single-threaded runtime the legs' tasks run only after.
    for seq in 0..count {
        alice.send_to(&rtp_packet(seq, 7), a.local).unwrap();
    }
    let mut buf = [0u8; 400];
    for seq in 0..count {
        let (n, from) = tokio::time::timeout(Duration::from_secs(2), bob.recv_from(&mut buf))
            .await
            .expect("every packet of the burst")
            .expect("recv");
        assert_eq!(&buf[..n], &rtp_packet(seq, 7)[..], "packet {seq}");
        assert_eq!(from, b.local);
    }
    assert_eq!(a.stats().received.load(Ordering::Relaxed), u64::from(count));
    assert_eq!(b.stats().relayed.load(Ordering::Relaxed), u64::from(count));
}

/// A party flooding the leg's port (far more than a wake-up's drain, all the time) cannot
/// keep the leg's task from stopping, though the task polls its socket before its stop.
#[tokio::test]
async fn a_flooded_leg_still_stops() {
    let flooder = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let a = leg(Mode::Silence, Some(flooder.local_addr().unwrap())).await;
    let b = leg(Mode::Silence, Some(sink.local_addr().unwrap())).await;
    // Bridged: every packet taken is also relayed, so the flood outpaces the leg.
    bridge(&a, &b);
    tokio::task::yield_now().await;
    let to = a.local;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let done = done.clone();
        std::thread::spawn(move || {
            let until = std::time::Instant::now() + Duration::from_secs(10);
            let mut seq = 0u16;
            while !done.load(Ordering::Relaxed) && std::time::Instant::now() < until {
                // A full socket buffer refuses some: the flood goes on regardless.
                if flooder.send_to(&rtp_packet(seq, 7), to).is_ok() {
                    seq = seq.wrapping_add(1);
                }
            }
        })
    };
    let flooded = 10 * DRAIN as u64;
    for _ in 0..400 {
        if a.stats().received.load(Ordering::Relaxed) >= flooded {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let received = a.stats().received.load(Ordering::Relaxed);
    a.stop();
    let task = a.task.lock().unwrap().take().expect("the leg's task");
    let ended = tokio::time::timeout(Duration::from_secs(2), task).await;
    done.store(true, Ordering::Relaxed);
    flood.join().unwrap();
    assert!(
        received >= flooded,
        "the party flooded the leg ({received} taken)"
    );
    assert!(
        matches!(ended, Ok(Ok(()))),
        "the flooded leg's task ended when stopped"
    );
}

#[tokio::test]
async fn a_recording_holds_what_the_party_sent() {
    let dir = tempfile::tempdir().unwrap();
    let party = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let s = leg(Mode::Silence, Some(party.local_addr().unwrap())).await;
    let rec = s.record(&dir.path().join("r.wav")).unwrap();
    let mut pkt = vec![0x80, 0, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4];
    pkt.extend_from_slice(&[0x80; 160]);
    for _ in 0..10 {
        party.send_to(&pkt, s.local).await.unwrap();
    }
    let mut waited = 0;
    while rec.duration_ms() < 200 && waited < 100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
    }
    let rec = s.stop_recording().expect("recording");
    assert_eq!(rec.finish().unwrap(), 200);
}

#[tokio::test]
async fn packets_from_a_third_address_are_ignored_counted_and_not_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let party = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let stranger = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind node");
    let local = sock.local_addr().expect("addr");
    let target = Target {
        remote: Some(party.local_addr().unwrap()),
        codec: Codec::Pcmu,
        send: true,
        dtmf_pt: Some(101),
        signal_ip: None,
        rtcp: Rtcp::NextPort,
        packet_ms: 20,
    };
    let ignored = Counter::default();
    let s = Session::start(sock, local, target, moh(), 0, ignored.clone());
    let rec = s.record(&dir.path().join("r.wav")).unwrap();
    let mut pkt = vec![0x80, 0, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4];
    pkt.extend_from_slice(&[0x80; 160]);
    // The stranger speaks first, then along with the party.
    for _ in 0..10 {
        stranger.send_to(&pkt, local).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    for _ in 0..10 {
        party.send_to(&pkt, local).await.unwrap();
        stranger.send_to(&pkt, local).await.unwrap();
    }
    let mut waited = 0;
    while (ignored.get() < 20 || rec.duration_ms() < 200) && waited < 100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
    }
    assert_eq!(s.stats().ignored.load(Ordering::Relaxed), 20);
    assert_eq!(ignored.get(), 20);
    assert_eq!(s.stats().received.load(Ordering::Relaxed), 10);
    // The stream stays with the party; the stranger is sent nothing.
    let mut buf = [0u8; 400];
    let got = tokio::time::timeout(Duration::from_secs(2), party.recv_from(&mut buf)).await;
    assert!(matches!(got, Ok(Ok((172, _)))), "{got:?}");
    let none = tokio::time::timeout(Duration::from_millis(200), stranger.recv_from(&mut buf)).await;
    assert!(none.is_err(), "the stranger got {none:?}");
    let rec = s.stop_recording().expect("recording");
    assert_eq!(
        rec.finish().unwrap(),
        200,
        "only the party's 10 packets are recorded"
    );
}

/// A socket on 127.0.0.1 whose port + 1 was free a moment ago (the leg's RTCP port).
async fn rtp_socket_with_free_next_port() -> UdpSocket {
    for _ in 0..50 {
        let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let port = sock.local_addr().expect("addr").port();
        if port < u16::MAX && std::net::UdpSocket::bind(("127.0.0.1", port + 1)).is_ok() {
            return sock;
        }
    }
    panic!("no port with a free next port in 50 tries");
}

fn rtp_packet(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0xff; 160]);
    p
}

async fn recv_rtcp(sock: &UdpSocket) -> Vec<crate::media::rtcp::Report> {
    let mut buf = [0u8; 1500];
    loop {
        let (n, _) = tokio::time::timeout(Duration::from_secs(7), sock.recv_from(&mut buf))
            .await
            .expect("an RTCP report within 7 s")
            .expect("recv");
        if rtp::is_rtcp(&buf[..n]) {
            return crate::media::rtcp::parse(&buf[..n]).expect("our RTCP parses");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn quality_is_measured_and_rtcp_goes_both_ways() {
    use crate::media::rtcp::{self, Report, ReportBlock};
    let party = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let party_rtcp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let stranger = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let sock = rtp_socket_with_free_next_port().await;
    let local = sock.local_addr().unwrap();
    let target = Target {
        remote: Some(party.local_addr().unwrap()),
        codec: Codec::Pcmu,
        send: true,
        dtmf_pt: Some(101),
        signal_ip: None,
        rtcp: Rtcp::Port(party_rtcp.local_addr().unwrap().port()),
        packet_ms: 20,
    };
    let s = Session::start(sock, local, target, moh(), 0, Counter::default());
    // 100 packets, every 20th from the 3rd lost (5), one sent twice.
    for seq in (0..100u16).filter(|q| q % 20 != 3) {
        party.send_to(&rtp_packet(seq, 77), local).await.unwrap();
        if seq == 50 {
            party.send_to(&rtp_packet(seq, 77), local).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reports = recv_rtcp(&party_rtcp).await;
    assert_eq!(reports.len(), 1);
    let ours = &reports[0];
    let sender = ours.sender.expect("a sender report: the leg plays music");
    // The first report goes 2.5 s in: 125 packets of 20 ms sent by then.
    assert!((120..=130).contains(&sender.packets), "{sender:?}");
    assert_eq!(ours.blocks.len(), 1);
    assert_eq!(ours.blocks[0].ssrc, 77);
    assert_eq!(ours.blocks[0].cumulative_lost, 5);
    assert_eq!(ours.blocks[0].highest_seq, 99);
    // The party's receiver report on our stream, and a stranger's forged one.
    let rr = |fraction_lost, cumulative_lost| Report {
        ssrc: 77,
        sender: None,
        blocks: vec![ReportBlock {
            ssrc: ours.ssrc,
            fraction_lost,
            cumulative_lost,
            highest_seq: 300,
            jitter: 80,
            last_sr: rtcp::middle(sender.ntp),
            delay_since_sr: 0,
        }],
    };
    let to = SocketAddr::new(local.ip(), local.port() + 1);
    stranger
        .send_to(&rtcp::write(&rr(200, 999), "x"), to)
        .await
        .unwrap();
    // A broken compound from the party's host: dropped, nothing taken from it.
    party.send_to(&[0x81, 201, 0, 9, 1, 2], to).await.unwrap();
    party
        .send_to(&rtcp::write(&rr(25, 7), "p"), to)
        .await
        .unwrap();
    let mut waited = 0;
    while s.quality().peer.reports < 1 && waited < 100 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let q = s.quality();
    assert_eq!(q.peer.reports, 1, "the stranger's report is not taken");
    assert_eq!(q.peer.fraction_lost, Some(25));
    assert_eq!(q.peer.cumulative_lost, Some(7));
    assert_eq!(q.peer.jitter, Some(Duration::from_millis(10)));
    assert!(q.peer.rtt.is_some(), "{q:?}");
    assert_eq!(q.codec, Codec::Pcmu);
    assert_eq!(
        (
            q.inbound.packets,
            q.inbound.expected,
            q.inbound.lost,
            q.inbound.duplicates
        ),
        (96, 100, 5, 1)
    );
    assert_eq!(q.inbound.bytes, 96 * 172);
    assert!(
        q.packets_out >= 125 && q.bytes_out == 172 * q.packets_out,
        "{q:?}"
    );
    assert!(q.rtcp_sent >= 1);
}

#[tokio::test(start_paused = true)]
async fn rtcp_mux_shares_the_rtp_port_and_is_not_taken_for_audio() {
    use crate::media::rtcp::{self, Report};
    let party = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = sock.local_addr().unwrap();
    let target = Target {
        remote: Some(party.local_addr().unwrap()),
        codec: Codec::Pcma,
        send: true,
        dtmf_pt: None,
        signal_ip: None,
        rtcp: Rtcp::Mux,
        packet_ms: 20,
    };
    let s = Session::start(sock, local, target, Mode::Silence, 0, Counter::default());
    for seq in 0..10u16 {
        party.send_to(&rtp_packet(seq, 5), local).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rr = Report {
        ssrc: 5,
        sender: None,
        blocks: vec![],
    };
    party.send_to(&rtcp::write(&rr, "p"), local).await.unwrap();
    let reports = recv_rtcp(&party).await;
    assert_eq!(
        reports[0].sender, None,
        "a silent leg sends a receiver report"
    );
    assert_eq!(reports[0].blocks[0].ssrc, 5);
    let q = s.quality();
    assert_eq!(q.peer.reports, 1);
    assert_eq!(
        q.inbound.packets, 10,
        "the RTCP packet is not counted as RTP"
    );
    assert_eq!(s.stats().received.load(Ordering::Relaxed), 10);
}

#[tokio::test(start_paused = true)]
async fn packets_follow_the_packet_time_and_a_prompt_ends_padded() {
    let caller = UdpSocket::bind("127.0.0.1:0").await.expect("bind caller");
    let s = leg(moh(), Some(caller.local_addr().unwrap())).await;
    let t = s.target();
    s.retarget(Target { packet_ms: 30, ..t });
    tokio::time::sleep(Duration::from_millis(15)).await;
    let before = s.stats().sent.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(900)).await;
    let sent = s.stats().sent.load(Ordering::Relaxed) - before;
    assert!(
        (29..=31).contains(&sent),
        "{sent} packets of 30 ms in 900 ms"
    );
    let mut buf = [0u8; 600];
    let mut sizes = std::collections::BTreeSet::new();
    let mut stamps = Vec::new();
    while let Ok(Ok((n, _))) =
        tokio::time::timeout(Duration::from_millis(1), caller.recv_from(&mut buf)).await
    {
        sizes.insert(n);
        stamps.push(u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]));
    }
    assert!(sizes.contains(&(rtp::HEADER + 240)), "{sizes:?}");
    let late: Vec<u32> = stamps.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    assert!(late.iter().rev().take(20).all(|d| *d == 240), "{late:?}");
    // An 80 ms prompt at 30 ms: three packets, the last padded with 10 ms of silence, then
    // its end.
    let mut events = s.events().expect("events");
    s.set_mode(Mode::Play(Arc::new(Track::from_samples(
        "short".into(),
        vec![1000; 640],
    ))));
    let before = s.stats().sent.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(s.stats().sent.load(Ordering::Relaxed) - before, 3);
    assert!(matches!(events.try_recv(), Ok(MediaEvent::PlayDone(_))));
    assert_eq!(packet_samples(10), 80);
    assert_eq!(packet_samples(0), 80, "held to 10 ms at least");
    assert_eq!(packet_samples(600), 480, "and 60 ms at most");
}

/// A leg on 127.0.86.1 sending to `ear` (an address on 127.0.86.x).
async fn leg_at(mode: Mode, ear: &UdpSocket) -> Session {
    let sock = UdpSocket::bind("127.0.86.1:0").await.expect("bind node");
    let local = sock.local_addr().expect("addr");
    let target = Target {
        remote: Some(ear.local_addr().expect("ear")),
        codec: Codec::Pcmu,
        send: true,
        dtmf_pt: Some(101),
        signal_ip: None,
        rtcp: Rtcp::NextPort,
        packet_ms: 20,
    };
    Session::start(sock, local, target, mode, 0, Counter::default())
}

/// One RTP packet as heard: sequence number, timestamp, SSRC, marker bit, payload.
#[derive(Debug, Clone, PartialEq)]
struct Heard {
    seq: u16,
    ts: u32,
    ssrc: u32,
    marker: bool,
    payload: Vec<u8>,
}

/// The RTP packets waiting at `ear` (at most 500).
async fn heard(ear: &UdpSocket) -> Vec<Heard> {
    let mut out = Vec::new();
    let mut buf = [0u8; 600];
    for _ in 0..500 {
        let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_millis(1), ear.recv_from(&mut buf)).await
        else {
            break;
        };
        let p = &buf[..n];
        if rtp::is_rtcp(p) || n < rtp::HEADER {
            continue;
        }
        out.push(Heard {
            seq: u16::from_be_bytes([p[2], p[3]]),
            ts: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
            ssrc: u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
            marker: p[1] & 0x80 != 0,
            payload: p[rtp::HEADER..].to_vec(),
        });
    }
    out
}

/// Every packet follows the one before it: one SSRC, sequence + 1, timestamp + 160.
fn assert_continuous(packets: &[Heard]) {
    for w in packets.windows(2) {
        assert_eq!(w[1].ssrc, w[0].ssrc, "{w:?}");
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "{w:?}");
        assert_eq!(w[1].ts, w[0].ts.wrapping_add(160), "{w:?}");
        assert!(!w[1].marker, "{w:?}");
    }
}

fn ear_at(last: u8) -> std::net::SocketAddr {
    SocketAddr::from(([127, 0, 86, last], 0))
}

#[tokio::test(start_paused = true)]
async fn callers_on_one_track_share_its_clock_with_streams_of_their_own() {
    let Mode::Moh(playlist) = moh() else {
        unreachable!()
    };
    let ear_a = UdpSocket::bind(ear_at(2)).await.expect("bind");
    let ear_b = UdpSocket::bind(ear_at(3)).await.expect("bind");
    let a = leg_at(Mode::Moh(playlist.clone()), &ear_a).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let b = leg_at(Mode::Moh(playlist.clone()), &ear_b).await;
    tokio::time::sleep(Duration::from_millis(410)).await;
    let (heard_a, heard_b) = (heard(&ear_a).await, heard(&ear_b).await);
    assert!(playlist.track(0).clock().running());
    assert_eq!(heard_a.len(), 23, "460 ms of 20 ms frames");
    assert_eq!(heard_b.len(), 21, "the caller who joined 50 ms later");
    assert_continuous(&heard_a);
    assert_continuous(&heard_b);
    assert!(heard_a[0].marker && heard_b[0].marker);
    assert_ne!(heard_a[0].ssrc, heard_b[0].ssrc, "a stream per caller");
    // One clock: the later caller hears the frames the first hears at the same moments.
    let tail_a: Vec<&[u8]> = heard_a[2..].iter().map(|h| &h.payload[..]).collect();
    let tail_b: Vec<&[u8]> = heard_b.iter().map(|h| &h.payload[..]).collect();
    assert_eq!(tail_a, tail_b);
    assert_ne!(heard_a[0].payload, heard_a[1].payload, "the track moves on");
    let track = playlist.track(0);
    assert_eq!(heard_a[0].payload, track.frame(Codec::Pcmu, 1));
    assert_eq!(heard_b[0].payload, track.frame(Codec::Pcmu, 3));
    drop(a);
    drop(b);
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(!playlist.track(0).clock().running(), "nobody listens");
}

#[tokio::test(start_paused = true)]
async fn hold_and_resume_continue_the_callers_stream_without_a_timer_while_held() {
    let ear = UdpSocket::bind(ear_at(4)).await.expect("bind");
    let s = leg_at(moh(), &ear).await;
    tokio::time::sleep(Duration::from_millis(210)).await;
    let before = heard(&ear).await;
    assert_eq!(before.len(), 10);
    let t = s.target();
    s.retarget(Target { send: false, ..t });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let paced = s.stats().paced.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(heard(&ear).await.is_empty(), "nothing is sent on hold");
    assert_eq!(
        s.stats().paced.load(Ordering::Relaxed),
        paced,
        "no timer wakes a held leg"
    );
    s.retarget(t);
    tokio::time::sleep(Duration::from_millis(105)).await;
    let after = heard(&ear).await;
    assert!((5..=6).contains(&after.len()), "{}", after.len());
    assert_continuous(&after);
    let (last, first) = (before.last().expect("before"), &after[0]);
    assert_eq!(first.ssrc, last.ssrc);
    assert_eq!(first.seq, last.seq.wrapping_add(1), "no sequence gap");
    assert!(first.marker, "a new talkspurt");
    let gap = first.ts.wrapping_sub(last.ts);
    assert!(
        (1020 * 8..=1080 * 8).contains(&gap),
        "the timestamp follows the time held: {gap}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_bridged_leg_has_no_timer_and_its_music_resumes_in_sequence() {
    let alice = UdpSocket::bind(ear_at(5)).await.expect("bind");
    let bob = UdpSocket::bind(ear_at(6)).await.expect("bind");
    let a = leg_at(moh(), &alice).await;
    let b = leg_at(Mode::Silence, &bob).await;
    tokio::time::sleep(Duration::from_millis(110)).await;
    let music = heard(&alice).await;
    assert_eq!(music.len(), 5);
    bridge(&a, &b);
    tokio::time::sleep(Duration::from_millis(1)).await;
    let paced = a.stats().paced.load(Ordering::Relaxed);
    for seq in 0..20 {
        alice
            .send_to(&rtp_packet(seq, 7), a.local)
            .await
            .expect("send");
        bob.send_to(&rtp_packet(seq, 9), b.local)
            .await
            .expect("send");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let relayed = heard(&alice).await;
    assert_eq!(relayed.len(), 20, "bob's packets, and no music");
    assert!(relayed.iter().all(|h| h.ssrc == 9));
    assert_eq!(heard(&bob).await.len(), 20);
    assert_eq!(a.stats().paced.load(Ordering::Relaxed), paced, "no tick");
    assert_eq!(b.stats().paced.load(Ordering::Relaxed), 0, "never a tick");
    assert_eq!(a.stats().received.load(Ordering::Relaxed), 20);
    // Back to music (the agent's hold): our own stream goes on.
    a.set_mode(moh());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let again = heard(&alice).await;
    assert!((4..=5).contains(&again.len()), "{}", again.len());
    assert_continuous(&again);
    let last = music.last().expect("music");
    assert_eq!(again[0].ssrc, last.ssrc);
    assert_eq!(again[0].seq, last.seq.wrapping_add(1));
    assert!(again[0].marker);
    assert!(a.stats().paced.load(Ordering::Relaxed) > paced);
}

#[tokio::test]
async fn a_legs_task_holds_its_receive_buffers_and_little_more() {
    let sock = UdpSocket::bind("127.0.86.1:0").await.expect("bind");
    let leg = Arc::new(Leg {
        socket: RtpSocket::new(sock),
        remote: Mutex::new(None),
        stats: MediaStats::default(),
        whisper: Mutex::new(None),
        meter: Mutex::new(Meter::default()),
    });
    let (_control, rx) = watch::channel(Control {
        target: Target {
            remote: None,
            codec: Codec::Pcmu,
            send: true,
            dtmf_pt: None,
            signal_ip: None,
            rtcp: Rtcp::NextPort,
            packet_ms: 20,
        },
        mode: Mode::Silence,
        mode_seq: 0,
        recording: None,
        tap: None,
    });
    let player = Player {
        leg,
        track: 0,
        events: mpsc::unbounded_channel().0,
        cancel: CancellationToken::new(),
        ignored: Counter::default(),
        origin: tokio::time::Instant::now(),
        rtcp: None,
        cname: String::new(),
    };
    let task = player.run(rx);
    let size = std::mem::size_of_val(&task);
    eprintln!("a leg's task: {size} bytes");
    // One receive buffer of 2048 bytes (RTP and RTCP), 492 of send buffer, 160 of mix frame,
    // and no other buffer (a relayed packet is mixed in place, never copied).
    assert!(size < 5 * 1024, "a leg's task takes {size} bytes");
}
