//! One node on SQLite, driven with raw SIP bytes and SIPp: music-on-hold RTP at 50 packets/s,
//! CANCEL → 487, re-INVITE hold/unhold, the carrier allowlist, bad input, UDP and TCP calls,
//! drain, music-on-hold classes. Each test runs its own node on its own 127.0.2.x address.

mod support;

use std::time::Duration;

use callfleet_store::Store;
use support::audio::{tone_share, write_tone_wav};
use support::queue::{queue, Db};
use support::uac::{header, Uac};
use support::{sipp, workdir, NodeProc, NodeSpec};

fn node(test: &str, ip: &str, extra: &str) -> (std::path::PathBuf, NodeProc, String) {
    let dir = workdir(test);
    let db = format!("sqlite://{}", dir.join("cluster.db").display());
    let n = NodeProc::start(
        &dir,
        NodeSpec {
            name: "solo",
            role: "main",
            ip,
            db: &db,
            capacity: 50,
            extra,
        },
    );
    (dir, n, db)
}

async fn cdrs(db: &str) -> Vec<callfleet_store::Cdr> {
    let store = Store::connect(db).await.expect("open test db");
    // Records are written off the call path: give the writer a moment.
    for _ in 0..50 {
        let rows = store.cdrs_since(0).await.expect("read cdrs");
        if !rows.is_empty() {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    vec![]
}

fn ack_for(uac: &Uac, ok: &support::uac::Resp, call_id: &str, cseq: u32) {
    let to = ok.header("To").expect("To");
    uac.send(&format!(
        "ACK sip:callfleet@{t} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bK-ack-{call_id}-{cseq}\r\nMax-Forwards: 70\r\n\
         From: <sip:caller@{l}>;tag=from-{call_id}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n",
        t = uac.target,
        l = uac.local
    ));
}

/// A queue plays the music of its `moh_class` (a sub-folder of `media.moh_dir`); any other
/// number, and a queue whose class has no folder, plays the default music (the folder's own
/// files).
#[test]
fn a_queue_plays_its_music_on_hold_class() {
    let dir = workdir("moh-class");
    let moh = dir.join("moh");
    write_tone_wav(&moh.join("plain.wav"), 600.0, 2.0);
    write_tone_wav(&moh.join("calm").join("tone.wav"), 1000.0, 2.0);
    let db_url = format!("sqlite://{}", dir.join("cluster.db").display());
    let db = Db::connect(&db_url);
    db.block(db.store.migrate()).expect("migrate");
    db.add_queue(&callfleet_store::Queue {
        moh_class: "calm".into(),
        ..queue("calm-queue", "ringall")
    });
    db.add_queue(&callfleet_store::Queue {
        moh_class: "missing".into(),
        ..queue("other-queue", "ringall")
    });
    let n = NodeProc::start(
        &dir,
        NodeSpec {
            name: "solo",
            role: "main",
            ip: "127.0.2.8",
            db: &db_url,
            capacity: 50,
            extra: "",
        },
    );
    let log = n.log_text();
    assert!(
        log.contains("music on hold loaded count=1 classes=[\"calm\"]"),
        "{log}"
    );
    for (i, (number, tone, other)) in [
        ("calm-queue", 1000.0, 600.0),
        ("other-queue", 600.0, 1000.0),
        ("100", 600.0, 1000.0),
    ]
    .into_iter()
    .enumerate()
    {
        let call_id = format!("moh-class-{i}");
        let mut uac = Uac::new(&format!("127.0.2.{}", 108 + i), n.sip);
        let ok = uac
            .answered(number, &call_id, Duration::from_secs(5))
            .expect("answered");
        let heard = uac.talk(Uac::media_addr(&ok), 400.0, Duration::from_secs(2));
        uac.in_dialog("BYE", &call_id, &ok, None);
        // The first half second may still be the answer's start.
        let tail = &heard[heard.len().min(4000)..];
        let (share, wrong) = (tone_share(tail, tone, 8000), tone_share(tail, other, 8000));
        assert!(
            tail.len() >= 8000 && share >= 0.9 && wrong < 0.05,
            "{number}: {tone} Hz {share:.3}, {other} Hz {wrong:.3} of {} samples",
            tail.len()
        );
    }
}

#[tokio::test]
async fn music_on_hold_reaches_the_caller_at_50_packets_per_second() {
    let (_dir, n, db) = node("moh", "127.0.2.1", "");
    let mut uac = Uac::new("127.0.2.101", n.sip);
    let rr = format!("<sip:{};lr>", uac.local);
    uac.record_route = Some(rr.clone());
    let (_, cseq) = uac.invite("100", "moh-1", None, "");
    let trying = uac.recv(Duration::from_secs(2)).expect("a first response");
    assert_eq!(
        trying.status, 100,
        "100 Trying comes first: {}",
        trying.text
    );
    let ok = uac
        .recv_final(Duration::from_secs(5))
        .expect("final response");
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert!(ok.body().contains("m=audio "), "SDP answer: {}", ok.body());
    assert!(
        ok.body().contains("a=rtpmap:0 PCMU/8000"),
        "PCMU chosen: {}",
        ok.body()
    );
    assert!(ok.body().contains("telephone-event/8000"), "{}", ok.body());
    assert_eq!(
        ok.header("Record-Route"),
        Some(rr),
        "the 200 carries the request's Record-Route"
    );
    ack_for(&uac, &ok, "moh-1", cseq);
    let packets = uac.rtp_for(Duration::from_secs(2));
    assert!(
        (95..=105).contains(&packets.len()),
        "{} RTP packets in 2 s",
        packets.len()
    );
    for w in packets.windows(2) {
        assert_eq!(w[0].0, 0, "payload type PCMU");
        assert_eq!(
            w[1].1,
            w[0].1.wrapping_add(1),
            "consecutive sequence numbers"
        );
        assert_eq!(
            w[1].2,
            w[0].2.wrapping_add(160),
            "20 ms of samples per packet"
        );
        assert_eq!(w[0].3, 172, "12-byte header + 160 bytes of G.711");
    }
    let sent: std::collections::HashSet<_> = packets.iter().map(|p| p.3).collect();
    assert_eq!(sent.len(), 1);
    uac.in_dialog("BYE", "moh-1", &ok, None);
    let bye = uac
        .recv_final(Duration::from_secs(3))
        .expect("BYE answered");
    assert_eq!(bye.status, 200);
    let rows = cdrs(&db).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0].hangup_cause.as_str(), rows[0].hangup_side.as_str()),
        ("normal", "caller")
    );
    assert!(rows[0].answered_at_ms.is_some());
    assert_eq!(rows[0].node, "solo");
}

#[tokio::test]
async fn cancel_before_answer_gets_487() {
    let (_dir, n, db) = node("cancel", "127.0.2.2", "[call]\nanswer_delay = \"3s\"\n");
    let mut uac = Uac::new("127.0.2.102", n.sip);
    let (invite, cseq) = uac.invite("100", "cancel-1", None, "");
    let mut ringing = false;
    for _ in 0..3 {
        match uac.recv(Duration::from_secs(2)) {
            Some(r) if r.status == 180 => {
                ringing = true;
                break;
            }
            Some(_) => continue,
            None => break,
        }
    }
    assert!(ringing, "180 Ringing during answer_delay");
    let via = header(&invite, "Via").expect("via");
    let cancel = format!(
        "CANCEL sip:100@{t} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\nFrom: <sip:caller@{l}>;tag=from-cancel-1\r\n\
         To: <sip:100@{t}>\r\nCall-ID: cancel-1\r\nCSeq: {cseq} CANCEL\r\nContent-Length: 0\r\n\r\n",
        t = uac.target,
        l = uac.local
    );
    uac.send(&cancel);
    let mut got = vec![];
    while let Some(r) = uac.recv(Duration::from_secs(3)) {
        got.push(r.status);
        if r.status == 487 {
            break;
        }
    }
    assert!(got.contains(&200), "CANCEL answered 200: {got:?}");
    assert!(got.contains(&487), "INVITE answered 487: {got:?}");
    let rows = cdrs(&db).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].hangup_cause.as_str(), "cancelled");
    assert_eq!(rows[0].sip_status, 487);
    assert!(rows[0].answered_at_ms.is_none());
}

#[tokio::test]
async fn hold_and_unhold_reinvites_are_answered_and_steer_the_music() {
    let (_dir, n, _db) = node("hold", "127.0.2.3", "");
    let mut uac = Uac::new("127.0.2.103", n.sip);
    let (_, cseq) = uac.invite("100", "hold-1", None, "");
    let ok = uac.recv_final(Duration::from_secs(5)).expect("answer");
    assert_eq!(ok.status, 200);
    ack_for(&uac, &ok, "hold-1", cseq);
    assert!(
        uac.rtp_for(Duration::from_millis(500)).len() > 15,
        "music before hold"
    );
    let to_tag = ok
        .header("To")
        .and_then(|t| t.split("tag=").nth(1).map(str::to_string))
        .expect("to tag");
    let (_, c2) = uac.invite("100", "hold-1", Some(&to_tag), "a=sendonly\r\n");
    let held = uac
        .recv_final(Duration::from_secs(3))
        .expect("re-INVITE answered");
    assert_eq!(held.status, 200, "{}", held.text);
    assert!(held.body().contains("a=recvonly"), "{}", held.body());
    ack_for(&uac, &held, "hold-1", c2);
    std::thread::sleep(Duration::from_millis(100));
    let _ = uac.rtp_for(Duration::from_millis(100));
    assert!(
        uac.rtp_for(Duration::from_millis(600)).len() <= 1,
        "no music sent while held"
    );
    let (_, c3) = uac.invite("100", "hold-1", Some(&to_tag), "a=sendrecv\r\n");
    let back = uac
        .recv_final(Duration::from_secs(3))
        .expect("unhold answered");
    assert_eq!(back.status, 200);
    assert!(back.body().contains("a=sendrecv"), "{}", back.body());
    ack_for(&uac, &back, "hold-1", c3);
    assert!(
        uac.rtp_for(Duration::from_millis(600)).len() > 20,
        "music again after unhold"
    );
    uac.in_dialog("BYE", "hold-1", &ok, None);
    assert_eq!(
        uac.recv_final(Duration::from_secs(3)).map(|r| r.status),
        Some(200)
    );
}

#[tokio::test]
async fn sources_outside_the_allowlist_are_refused() {
    let (_dir, n, _db) = node("allow", "127.0.2.4", "");
    // The node's own file allows 127.0.0.0/8; a second node only allows one address.
    drop(n);
    let dir = workdir("allow-strict");
    let db = format!("sqlite://{}", dir.join("cluster.db").display());
    let strict = NodeProc::start(
        &dir,
        NodeSpec {
            name: "strict",
            role: "main",
            ip: "127.0.2.4",
            db: &db,
            capacity: 10,
            extra: "",
        },
    );
    let text = std::fs::read_to_string(&strict.config)
        .unwrap()
        .replace("allow = [\"127.0.0.0/8\"]", "allow = [\"127.0.2.250/32\"]");
    std::fs::write(&strict.config, text).unwrap();
    let mut strict = strict;
    strict.kill9();
    strict.spawn();
    let mut uac = Uac::new("127.0.2.104", strict.sip);
    uac.invite("100", "allow-1", None, "");
    let r = uac.recv_final(Duration::from_secs(3)).expect("answered");
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(strict.metric("callfleet_calls_total{outcome=\"forbidden\"}") >= 1.0);
}

#[tokio::test]
async fn garbage_and_truncated_messages_never_stop_the_node() {
    let (_dir, n, _db) = node("garbage", "127.0.2.5", "");
    let uac = Uac::new("127.0.2.105", n.sip);
    let good = "OPTIONS sip:127.0.2.5 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.2.105:5999;branch=z9hG4bK-g1\r\n\
                From: <sip:t@127.0.2.105>;tag=1\r\nTo: <sip:127.0.2.5>\r\nCall-ID: g1\r\nCSeq: 1 OPTIONS\r\n\
                Content-Length: 0\r\n\r\n";
    let junk: Vec<Vec<u8>> = vec![
        b"\x00\x01\x02\x03".to_vec(),
        b"hello".to_vec(),
        vec![0xff; 3000],
        good.as_bytes()[..60].to_vec(),
        good.replace("Call-ID: g1\r\n", "").into_bytes(),
        good.replace("CSeq: 1 OPTIONS", "CSeq: one OPTIONS").into_bytes(),
        good.replace("Content-Length: 0\r\n\r\n", "Content-Length: 500\r\n\r\nv=0\r\n").into_bytes(),
        b"INVITE sip:x SIP/2.0\r\n\r\n".to_vec(),
        b"SIP/2.0 200 OK\r\nVia: nonsense\r\n\r\n".to_vec(),
        // A new INVITE whose Via has a multi-byte character across a parameter's 9th byte:
        // the stateless 100 Trying must still be built.
        good.replace("OPTIONS sip:127.0.2.5", "INVITE sip:300@127.0.2.5")
            .replace("1 OPTIONS", "1 INVITE")
            .replace("branch=z9hG4bK-g1", "branch=z9hG4bK-g3;receivedé=x")
            .replace("Call-ID: g1", "Call-ID: g3")
            .into_bytes(),
        b"INVITE \xff\xfe SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4\r\n\r\n".to_vec(),
        b"INVITE sip:100@127.0.2.5 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.2.105:5999;branch=z9hG4bK-g2\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:100@c>\r\nCall-ID: g2\r\nCSeq: 1 INVITE\r\nContent-Length: 10\r\n\r\nnot sdp\r\n".to_vec(),
    ];
    for j in &junk {
        uac.send_bytes(j);
    }
    let mut statuses = vec![];
    while let Some(r) = uac.recv(Duration::from_millis(800)) {
        statuses.push(r.status);
    }
    assert!(
        statuses.iter().filter(|s| **s == 400).count() >= 3,
        "400s for the answerable ones: {statuses:?}"
    );
    // TCP: garbage on a stream, then a hang-up.
    {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(n.sip).expect("tcp connect");
        let _ = s.write_all(b"\x16\x03\x01 not sip at all\r\n\r\nINVITE x\r\n\r\n");
    }
    uac.send(good);
    let ok = uac
        .recv_final(Duration::from_secs(2))
        .expect("OPTIONS after garbage");
    assert_eq!(ok.status, 200);
    assert!(
        ok.header("Allow").is_some_and(|a| a.contains("INVITE")),
        "{}",
        ok.text
    );
    // Compact headers: a whole call.
    let sdp = uac.sdp("");
    let l = uac.local;
    let compact = format!(
        "INVITE sip:200@127.0.2.5:5060 SIP/2.0\r\nv: SIP/2.0/UDP {l};branch=z9hG4bK-c1;rport\r\nf: <sip:c@{l}>;tag=c1\r\n\
         t: <sip:200@127.0.2.5>\r\ni: compact-1\r\nCSeq: 1 INVITE\r\nm: <sip:c@{l}>\r\nc: application/sdp\r\nl: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    uac.send(&compact);
    let r = uac
        .recv_final(Duration::from_secs(3))
        .expect("compact INVITE answered");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        n.metric("callfleet_sip_malformed_total") >= 5.0,
        "{}",
        n.metrics()
    );
    assert!(support::http_get(n.http, "/healthz").is_some_and(|(c, _)| c == 200));
}

#[tokio::test]
async fn sqlite_smoke_udp_and_tcp_calls_then_drain() {
    let (dir, mut n, db) = node("smoke", "127.0.2.6", "");
    let target = n.sip.to_string();
    let udp = sipp(
        &dir,
        "udp",
        &[
            "-sn",
            "uac",
            "-s",
            "100",
            "-d",
            "1000",
            "-r",
            "5",
            "-m",
            "10",
            "-i",
            "127.0.2.106",
            "-p",
            "5071",
            "-timeout",
            "30",
            &target,
        ],
    );
    assert_eq!((udp.successful, udp.failed), (10, 0), "{udp:?}");
    let tcp = sipp(
        &dir,
        "tcp",
        &[
            "-sn",
            "uac",
            "-t",
            "t1",
            "-s",
            "100",
            "-d",
            "1000",
            "-r",
            "5",
            "-m",
            "5",
            "-i",
            "127.0.2.106",
            "-p",
            "5072",
            "-timeout",
            "30",
            &target,
        ],
    );
    assert_eq!((tcp.successful, tcp.failed), (5, 0), "{tcp:?}");
    let rows = cdrs(&db).await;
    let until = std::time::Instant::now() + Duration::from_secs(5);
    let mut rows = rows;
    while rows.len() < 15 && std::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(200)).await;
        rows = cdrs(&db).await;
    }
    assert_eq!(rows.len(), 15, "one CDR per call");
    assert!(rows
        .iter()
        .all(|c| c.hangup_cause.as_str() == "normal" && c.answered_at_ms.is_some()));
    let nodes = n.nodes();
    assert_eq!(nodes[0]["name"], "solo");
    assert_eq!(nodes[0]["alive"], true);
    // As the operator does: `callfleet node drain`, signed with the config's cluster secret.
    let (ok, out, err) = support::cli(&n, &["node", "drain"], "");
    assert!(ok && out.contains("is draining"), "{out}{err}");
    let status = n
        .wait_exit(Duration::from_secs(10))
        .expect("a drained idle node exits");
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn a_call_past_max_duration_is_ended_by_our_bye() {
    let (_dir, n, db) = node("maxdur", "127.0.2.7", "[call]\nmax_duration = \"2s\"\n");
    let mut uac = Uac::new("127.0.2.107", n.sip);
    let (_, cseq) = uac.invite("100", "maxdur-1", None, "");
    let ok = uac.recv_final(Duration::from_secs(3)).expect("answer");
    assert_eq!(ok.status, 200);
    ack_for(&uac, &ok, "maxdur-1", cseq);
    // The node sends BYE after 2 s; read it as raw text and answer 200.
    uac.sock
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 4000];
    let (len, from) = uac.sock.recv_from(&mut buf).expect("a BYE from the node");
    let bye = String::from_utf8_lossy(&buf[..len]).into_owned();
    assert!(bye.starts_with("BYE "), "{bye}");
    let via = header(&bye, "Via").unwrap();
    let (f, t, c, s) = (
        header(&bye, "From").unwrap(),
        header(&bye, "To").unwrap(),
        header(&bye, "Call-ID").unwrap(),
        header(&bye, "CSeq").unwrap(),
    );
    uac.sock
        .send_to(format!("SIP/2.0 200 OK\r\nVia: {via}\r\nFrom: {f}\r\nTo: {t}\r\nCall-ID: {c}\r\nCSeq: {s}\r\nContent-Length: 0\r\n\r\n").as_bytes(), from)
        .unwrap();
    let rows = cdrs(&db).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0].hangup_cause.as_str(), rows[0].hangup_side.as_str()),
        ("max_duration", "node")
    );
    let length = rows[0].ended_at_ms - rows[0].answered_at_ms.unwrap();
    assert!((1900..4000).contains(&length), "call lasted {length} ms");
}
