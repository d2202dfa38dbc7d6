//! The SIP edge under abuse, against a real node: a flood of INVITEs the transaction layer
//! could not take (no From tag, a Via it cannot read, oversized) while SIPp places genuine
//! calls; oversized and oddly spaced INVITEs answered like any other; TCP idle and half-message
//! timeouts, the per-source connection cap, and one validation for UDP and TCP. Each test runs
//! its own node on its own 127.0.40.x address.

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use support::sip_tcp::{closed_within, read_response, tcp};
use support::uac::{header, Uac};
use support::{sipp, workdir, NodeProc, NodeSpec};

/// A node on `ip` with `sip_keys` added to its `[sip]` section.
fn node(test: &str, ip: &str, capacity: u32, sip_keys: &str) -> (std::path::PathBuf, NodeProc) {
    let dir = workdir(test);
    let db = format!("sqlite://{}", dir.join("cluster.db").display());
    let mut n = NodeProc::configure(
        &dir,
        NodeSpec {
            name: "edge",
            role: "main",
            ip,
            db: &db,
            capacity,
            extra: "",
        },
    );
    let text = std::fs::read_to_string(&n.config).expect("read config");
    std::fs::write(
        &n.config,
        text.replace("[sip]\n", &format!("[sip]\n{sip_keys}")),
    )
    .expect("write config");
    n.spawn();
    (dir, n)
}

/// An INVITE from `from` (`ip:port`) with a valid SDP body; `edit` changes the text.
fn invite(
    from: SocketAddr,
    to: SocketAddr,
    call_id: &str,
    edit: impl Fn(String) -> String,
) -> String {
    let sdp = format!(
        "v=0\r\no=t 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n\
         a=rtpmap:0 PCMU/8000\r\n",
        ip = from.ip()
    );
    let text = format!(
        "INVITE sip:100@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK-{call_id}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:flood@{from}>;tag=from-{call_id}\r\nTo: <sip:100@{to}>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:flood@{from}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    edit(text)
}

/// Statuses of the final responses to each Call-ID read from `sock` until `limit` passes
/// or nothing new came for three seconds.
fn finals(sock: &UdpSocket, limit: Duration) -> std::collections::HashMap<String, u16> {
    let mut out = std::collections::HashMap::new();
    let until = Instant::now() + limit;
    let mut buf = vec![0u8; 65_535];
    sock.set_read_timeout(Some(Duration::from_secs(3))).ok();
    while Instant::now() < until {
        let Ok((n, _)) = sock.recv_from(&mut buf) else {
            break;
        };
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let status: u16 = text.get(8..11).and_then(|c| c.parse().ok()).unwrap_or(0);
        if status >= 200 {
            if let Some(cid) = header(&text, "Call-ID") {
                out.insert(cid, status);
            }
        }
    }
    out
}

fn live_calls(n: &NodeProc) -> usize {
    let (_, body) = support::http_get(n.http, "/api/v1/calls").expect("GET /api/v1/calls");
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or(usize::MAX)
}

#[test]
fn a_flood_of_undeliverable_invites_leaves_the_node_taking_calls() {
    let (dir, n) = node("edge-flood", "127.0.40.1", 500, "");
    let flooder = UdpSocket::bind("127.0.40.101:0").expect("bind flooder");
    let from = flooder.local_addr().expect("addr");
    let reader = flooder.try_clone().expect("clone");
    let answers = std::thread::spawn(move || finals(&reader, Duration::from_secs(30)));
    // Genuine calls from SIPp while the flood runs: 20 calls at 10/s, each held 1 s.
    let target = n.sip.to_string();
    let dir2 = dir.clone();
    let genuine = std::thread::spawn(move || {
        sipp(
            &dir2,
            "genuine",
            &[
                "-sn",
                "uac",
                "-s",
                "100",
                "-d",
                "1000",
                "-r",
                "10",
                "-m",
                "20",
                "-i",
                "127.0.40.102",
                "-p",
                "5071",
                "-timeout",
                "60",
                &target,
            ],
        )
    });
    // 1,000 INVITEs in about a second that rsipstack's transaction layer cannot take: without
    // a From tag (RFC 2543), with a Via it cannot read, and oversized without a From tag.
    let pad = "x".repeat(9_000);
    let start = Instant::now();
    for i in 0..1000 {
        let cid = format!("flood-{i}");
        let text = match i % 3 {
            0 => invite(from, n.sip, &cid, |t| {
                t.replace(&format!(";tag=from-{cid}"), "")
            }),
            1 => invite(from, n.sip, &cid, |t| {
                t.replace(
                    &format!("SIP/2.0/UDP {from};branch=z9hG4bK-{cid}"),
                    "SIP/2.0/UDP",
                )
            }),
            _ => invite(from, n.sip, &cid, |t| {
                t.replace(&format!(";tag=from-{cid}"), "").replace(
                    "Max-Forwards: 70\r\n",
                    &format!("Max-Forwards: 70\r\nX-Pad: {pad}\r\n"),
                )
            }),
        };
        flooder.send_to(text.as_bytes(), n.sip).expect("send");
        if i % 100 == 99 {
            // About a second for the whole flood.
            let due = Duration::from_millis(i as u64 + 1);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        if i == 500 {
            assert!(
                live_calls(&n) <= 20,
                "the flood takes no call slots: {} live",
                live_calls(&n)
            );
        }
    }
    let stats = genuine.join().expect("sipp thread");
    assert_eq!(
        (stats.successful, stats.failed),
        (20, 0),
        "genuine calls: {stats:?}"
    );
    let answers = answers.join().expect("reader thread");
    let refused = answers.values().filter(|s| **s == 400).count();
    assert!(
        refused >= 950,
        "each undeliverable INVITE gets its final 400 at once ({refused} of 1000; {:?})",
        answers
            .values()
            .filter(|s| **s != 400)
            .take(5)
            .collect::<Vec<_>>()
    );
    assert!(
        answers.values().all(|s| *s == 400),
        "no flood INVITE was accepted"
    );
    assert!(
        support::wait_until(Duration::from_secs(10), || live_calls(&n) == 0).is_some(),
        "the call table is empty afterwards"
    );
}

#[test]
fn oversized_and_spaced_tag_invites_are_answered_like_any_other() {
    let (_dir, n) = node("edge-big", "127.0.40.2", 20, "");
    let mut uac = Uac::new("127.0.40.103", n.sip);
    // 20 KB: larger than rsipstack's own read buffer (8,192 bytes).
    let pad = "y".repeat(20_000);
    let text = invite(uac.local, n.sip, "big-1", |t| {
        t.replace(
            "Max-Forwards: 70\r\n",
            &format!("Max-Forwards: 70\r\nX-Pad: {pad}\r\n"),
        )
    });
    uac.send(&text);
    let ok = uac.recv_final(Duration::from_secs(5)).expect("an answer");
    assert_eq!(ok.status, 200, "{}", ok.text);
    uac.ack("big-1", &ok, 1);
    // RFC 3261 allows white space around a parameter's '='; the From tag is still found.
    let text = invite(uac.local, n.sip, "spaced-1", |t| {
        t.replace(";tag=from-spaced-1", " ; tag = from-spaced-1")
    });
    uac.send(&text);
    let ok2 = uac.recv_final(Duration::from_secs(5)).expect("an answer");
    assert_eq!(ok2.status, 200, "{}", ok2.text);
    assert!(
        ok2.header("From")
            .is_some_and(|f| f.contains("from-spaced-1")),
        "{}",
        ok2.text
    );
    // Without a From tag (RFC 2543): refused at once, never a call slot.
    let text = invite(uac.local, n.sip, "notag-1", |t| {
        t.replace(";tag=from-notag-1", "")
    });
    uac.send(&text);
    let r = uac.recv_final(Duration::from_secs(3)).expect("an answer");
    assert_eq!(r.status, 400, "{}", r.text);
    uac.in_dialog("BYE", "big-1", &ok, None);
    assert_eq!(
        uac.recv_final(Duration::from_secs(3)).map(|r| r.status),
        Some(200)
    );
    assert!(
        support::wait_until(Duration::from_secs(5), || live_calls(&n) == 1).is_some(),
        "only the spaced-tag call is left: {}",
        live_calls(&n)
    );
}

fn options(local: &str, target: SocketAddr, cid: &str, method_in_cseq: &str) -> String {
    format!(
        "OPTIONS sip:{target} SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bK-{cid}\r\n\
         From: <sip:t@{local}>;tag=t-{cid}\r\nTo: <sip:{target}>\r\nCall-ID: {cid}\r\n\
         CSeq: 1 {method_in_cseq}\r\nContent-Length: 0\r\n\r\n"
    )
}

#[test]
fn tcp_is_bounded_in_time_and_per_source_and_validated_like_udp() {
    let (_dir, n) = node(
        "edge-tcp",
        "127.0.40.3",
        20,
        "tcp_idle_timeout = \"2s\"\ntcp_message_timeout = \"1s\"\ntcp_max_per_source = 3\n",
    );
    let ip = "127.0.40.104";
    // One validation for both transports: a CSeq/method mismatch gets 400, an unknown method
    // 501 with Allow, and the connection stays open for the next request.
    let mut s = tcp(&n, ip);
    let local = s.local_addr().expect("local").to_string();
    s.write_all(options(&local, n.sip, "tcp-1", "INVITE").as_bytes())
        .expect("write");
    let r = read_response(&mut s).expect("an answer to the mismatch");
    assert!(r.starts_with("SIP/2.0 400 "), "{r}");
    let unknown = options(&local, n.sip, "tcp-2", "FOO").replace("OPTIONS sip:", "FOO sip:");
    s.write_all(unknown.as_bytes()).expect("write");
    let r = read_response(&mut s).expect("an answer to FOO");
    assert!(r.starts_with("SIP/2.0 501 "), "{r}");
    assert!(
        header(&r, "Allow").is_some_and(|a| a.contains("INVITE")),
        "{r}"
    );
    s.write_all(options(&local, n.sip, "tcp-3", "OPTIONS").as_bytes())
        .expect("write");
    let r = read_response(&mut s).expect("OPTIONS answered on the same connection");
    assert!(r.starts_with("SIP/2.0 200 "), "{r}");
    // Idle: closed after tcp_idle_timeout.
    assert!(
        closed_within(&mut s, Duration::from_secs(5)),
        "idle connection closed"
    );
    // Half a message: closed after tcp_message_timeout even though bytes keep trickling in
    // more slowly than the idle timeout.
    let mut half = tcp(&n, ip);
    let text = options(&local, n.sip, "tcp-4", "OPTIONS");
    let started = Instant::now();
    let mut closed = false;
    for b in text.as_bytes()[..40].chunks(1) {
        if half.write_all(b).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
        if started.elapsed() > Duration::from_secs(6) {
            break;
        }
    }
    assert!(
        closed || closed_within(&mut half, Duration::from_secs(3)),
        "a half message does not hold the connection"
    );
    // At most three connections from one address.
    let mut held: Vec<TcpStream> = (0..3).map(|_| tcp(&n, ip)).collect();
    let mut fourth = tcp(&n, ip);
    assert!(
        closed_within(&mut fourth, Duration::from_secs(2)),
        "the fourth connection from one address is closed"
    );
    let first = &mut held[0];
    let local = first.local_addr().expect("local").to_string();
    first
        .write_all(options(&local, n.sip, "tcp-5", "OPTIONS").as_bytes())
        .expect("write");
    let r = read_response(first).expect("the first three still work");
    assert!(r.starts_with("SIP/2.0 200 "), "{r}");
    // Another address is not counted against this one.
    let mut other = tcp(&n, "127.0.40.105");
    let local = other.local_addr().expect("local").to_string();
    other
        .write_all(options(&local, n.sip, "tcp-6", "OPTIONS").as_bytes())
        .expect("write");
    assert!(read_response(&mut other).is_some_and(|r| r.starts_with("SIP/2.0 200 ")));
}

#[tokio::test]
async fn a_delayed_offer_gets_our_offer_in_the_200_and_the_ack_answers_it() {
    let (dir, n) = node("edge-delayed", "127.0.40.4", 20, "");
    // SIPp as a carrier that sends no SDP in its INVITE (the scenario checks our offer).
    let scenario = support::peers().join("sipp/delayed-offer.xml");
    let target = n.sip.to_string();
    let stats = sipp(
        &dir,
        "delayed",
        &[
            "-sf",
            scenario.to_str().expect("utf-8 path"),
            "-s",
            "100",
            "-d",
            "1000",
            "-m",
            "3",
            "-i",
            "127.0.40.106",
            "-p",
            "5074",
            "-timeout",
            "30",
            &target,
        ],
    );
    assert_eq!((stats.successful, stats.failed), (3, 0), "{stats:?}");
    // By hand: no media before the ACK, then media where the ACK's answer says, in its codec.
    let uac = Uac::new("127.0.40.107", n.sip);
    let text = invite(uac.local, n.sip, "late-1", |t| {
        let head = t
            .split("Content-Type")
            .next()
            .unwrap_or_default()
            .to_string();
        head + "Content-Length: 0\r\n\r\n"
    });
    uac.send(&text);
    let ok = uac.recv_final(Duration::from_secs(5)).expect("answered");
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert!(
        ok.body().contains("RTP/AVP 0 8 101"),
        "our offer: {}",
        ok.body()
    );
    assert!(
        uac.rtp_for(Duration::from_millis(400)).is_empty(),
        "no media before the ACK"
    );
    let rtp = uac.rtp.local_addr().expect("rtp addr");
    let answer = format!(
        "v=0\r\no=t 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 8\r\n\
         a=rtpmap:8 PCMA/8000\r\n",
        ip = rtp.ip(),
        port = rtp.port()
    );
    let to = ok.header("To").expect("To");
    uac.send(&format!(
        "ACK sip:callfleet@{t} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bK-ack-late-1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:flood@{l}>;tag=from-late-1\r\nTo: {to}\r\nCall-ID: late-1\r\n\
         CSeq: 1 ACK\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{answer}",
        answer.len(),
        t = uac.target,
        l = uac.local
    ));
    let packets = uac.rtp_for(Duration::from_secs(1));
    assert!(
        packets.len() > 20,
        "{} RTP packets after the ACK",
        packets.len()
    );
    assert!(packets.iter().all(|p| p.0 == 8), "PCMA, as answered");
}

/// A valid INVITE from `local` (over `transport`) to `target`, changed by `edit`.
fn good_invite(local: SocketAddr, target: SocketAddr, transport: &str, cid: &str) -> String {
    let sdp = "v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    format!(
        "INVITE sip:100@{target} SIP/2.0\r\nVia: SIP/2.0/{transport} {local};branch=z9hG4bK-{cid}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:a@{local}>;tag=from-{cid}\r\nTo: <sip:100@{target}>\r\n\
         Call-ID: {cid}\r\nCSeq: 1 INVITE\r\nContact: <sip:a@{local}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// Requests the node must refuse, each with the status and a header the answer must carry.
fn refusals(
    local: SocketAddr,
    target: SocketAddr,
    transport: &str,
) -> Vec<(String, u16, &'static str)> {
    let g = |cid: &str| good_invite(local, target, transport, cid);
    let long_id = "c".repeat(300);
    vec![
        (
            g("v7").replace(" SIP/2.0\r\nVia", " SIP/7.0\r\nVia"),
            505,
            "",
        ),
        (
            g("foo")
                .replace("INVITE sip:", "FOO sip:")
                .replace("1 INVITE", "1 FOO"),
            501,
            "Allow",
        ),
        (
            g("scheme").replace("INVITE sip:100@", "INVITE http://"),
            416,
            "",
        ),
        (
            g("require").replace("Max-Forwards", "Require: foo\r\nMax-Forwards"),
            420,
            "Unsupported",
        ),
        (
            g("ctype").replace("application/sdp\r\n", "text/plain\r\n"),
            415,
            "Accept",
        ),
        (
            g("accept").replace("Max-Forwards", "Accept: text/html\r\nMax-Forwards"),
            406,
            "",
        ),
        (
            g("nocontact").replace(&format!("Contact: <sip:a@{local}>\r\n"), ""),
            400,
            "",
        ),
        (
            g("badcontact").replace(&format!("Contact: <sip:a@{local}>"), "Contact: <>;;"),
            400,
            "",
        ),
        (
            g("twofrom").replace("Max-Forwards", "From: <sip:b@x>;tag=2\r\nMax-Forwards"),
            400,
            "",
        ),
        (
            g("nocolon").replace("Max-Forwards", "Just some words\r\nMax-Forwards"),
            400,
            "",
        ),
        (
            g("cr").replace("Max-Forwards", "Subject: a\rb\r\nMax-Forwards"),
            400,
            "",
        ),
        (
            g("nul").replace("Max-Forwards", "Subject: a\0b\r\nMax-Forwards"),
            400,
            "",
        ),
        (
            g("long").replace("Call-ID: long", &format!("Call-ID: {long_id}")),
            400,
            "",
        ),
        (
            g("reg")
                .replace("INVITE sip:100@", "REGISTER sip:")
                .replace("1 INVITE", "1 REGISTER")
                .replace(&format!("To: <sip:100@{target}>"), "To: <tel:+4930123>"),
            400,
            "",
        ),
    ]
}

fn check_refusal(what: &str, reply: Option<String>, status: u16, must: &str) {
    let reply = reply.unwrap_or_else(|| panic!("{what}: no answer"));
    assert!(
        reply.starts_with(&format!("SIP/2.0 {status} ")),
        "{what}: want {status}, got {}",
        reply.lines().next().unwrap_or("")
    );
    if !must.is_empty() {
        assert!(
            header(&reply, must).is_some(),
            "{what}: {must} missing in {reply}"
        );
    }
    let head = reply.split("\r\n\r\n").next().unwrap_or("");
    assert!(
        !head.replace("\r\n", "").contains('\r'),
        "{what}: a bare CR echoed: {reply:?}"
    );
}

#[test]
fn bad_requests_get_the_rfc_3261_answer_over_udp_and_tcp() {
    let (_dir, n) = node("edge-rfc", "127.0.40.5", 20, "");
    let uac = Uac::new("127.0.40.108", n.sip);
    for (i, (text, status, must)) in refusals(uac.local, n.sip, "UDP").into_iter().enumerate() {
        uac.send_bytes(text.as_bytes());
        let reply = uac.recv_final(Duration::from_secs(3)).map(|r| r.text);
        check_refusal(&format!("UDP case {i}"), reply, status, must);
    }
    for (i, (text, status, must)) in refusals("127.0.40.108:5999".parse().unwrap(), n.sip, "TCP")
        .into_iter()
        .enumerate()
    {
        let mut s = tcp(&n, "127.0.40.108");
        s.write_all(text.as_bytes()).expect("write");
        check_refusal(
            &format!("TCP case {i}"),
            read_response(&mut s),
            status,
            must,
        );
    }
    assert!(live_calls(&n) == 0, "no refused request took a call slot");
}

/// RTP packets read from `sock` for `window`: (arrival, payload type, timestamp, length).
fn rtp_packets(sock: &UdpSocket, window: Duration) -> Vec<(Instant, u8, u32, usize)> {
    let mut out = Vec::new();
    let until = Instant::now() + window;
    let mut buf = [0u8; 2048];
    sock.set_read_timeout(Some(Duration::from_millis(200))).ok();
    while Instant::now() < until && out.len() < 1000 {
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            if n >= 12 {
                let ts = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
                out.push((Instant::now(), buf[1] & 0x7f, ts, n - 12));
            }
        }
    }
    out
}

#[test]
fn the_callers_ptime_sets_the_packet_size_and_pace() {
    let (dir, n) = node("edge-ptime", "127.0.40.6", 20, "");
    let scenario = support::peers().join("sipp/ptime.xml");
    for (ptime, port) in [(30u32, "5076"), (10, "5077")] {
        // The caller (SIPp) asks for `ptime` and names our socket as its RTP address.
        let rtp = UdpSocket::bind("127.0.40.109:0").expect("bind rtp");
        let rtp_port = rtp.local_addr().expect("addr").port().to_string();
        let (dir2, scenario, target) = (dir.clone(), scenario.clone(), n.sip.to_string());
        let caller = std::thread::spawn(move || {
            sipp(
                &dir2,
                &format!("ptime-{ptime}"),
                &[
                    "-sf",
                    scenario.to_str().expect("utf-8 path"),
                    "-s",
                    "100",
                    "-d",
                    "2500",
                    "-m",
                    "1",
                    "-i",
                    "127.0.40.109",
                    "-p",
                    port,
                    "-key",
                    "rtp_port",
                    &rtp_port,
                    "-key",
                    "ptime",
                    &ptime.to_string(),
                    "-timeout",
                    "30",
                    &target,
                ],
            )
        });
        let packets = rtp_packets(&rtp, Duration::from_secs(2));
        let stats = caller.join().expect("sipp thread");
        assert_eq!(
            (stats.successful, stats.failed),
            (1, 0),
            "the call with a=ptime:{ptime}: {stats:?}"
        );
        let bytes = (ptime * 8) as usize;
        assert!(
            packets.len() >= 20,
            "{} packets at {ptime} ms",
            packets.len()
        );
        assert!(
            packets.iter().all(|p| p.1 == 0 && p.3 == bytes),
            "PCMU, {bytes} bytes a packet at {ptime} ms: {:?}",
            packets.iter().map(|p| p.3).take(5).collect::<Vec<_>>()
        );
        assert!(
            packets
                .windows(2)
                .all(|w| w[1].2.wrapping_sub(w[0].2) == bytes as u32),
            "the RTP clock moves {bytes} samples a packet"
        );
        // Pace: the time the packets took to arrive over the audio they carry, from the
        // stream's own clock (a ratio, not a timing): about one.
        let (first, last) = (packets[0], packets[packets.len() - 1]);
        let carried = f64::from(last.2.wrapping_sub(first.2)) / 8000.0;
        let took = last.0.duration_since(first.0).as_secs_f64();
        let ratio = took / carried;
        assert!(
            (0.8..1.25).contains(&ratio),
            "{ptime} ms packets arrive at the pace of their audio: {took:.3} s for {carried:.3} s"
        );
    }
}
