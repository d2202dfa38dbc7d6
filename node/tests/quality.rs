//! RTP quality per call leg against real peers: a caller whose stream loses 5 % of its packets
//! and arrives with up to 20 ms of jitter is measured, reported to it over RTCP and stored with
//! the call; a clean call from a real phone (baresip) measures about nothing lost, and RTCP
//! goes both ways (baresip's reports are read, and baresip reads ours). Each test runs its own
//! node on 127.0.47.x.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use callfleet::media::rtcp;
use callfleet_store::{CallLeg, LegQualityRow};
use support::lossy::{self, Impairment};
use support::phone::{device_add, Phone};
use support::queue::Db;
use support::uac::Uac;
use support::{http_get, require, wait_until, workdir, NodeProc, NodeSpec};

fn node(test: &str, ip: &str) -> (std::path::PathBuf, NodeProc, Db) {
    node_logging(test, ip, None)
}

/// A node, its log at `filter` when given.
fn node_logging(test: &str, ip: &str, filter: Option<&str>) -> (std::path::PathBuf, NodeProc, Db) {
    let dir = workdir(test);
    let db = format!("sqlite://{}", dir.join("cluster.db").display());
    let mut n = NodeProc::configure(
        &dir,
        NodeSpec {
            name: "solo",
            role: "main",
            ip,
            db: &db,
            capacity: 20,
            extra: "",
        },
    );
    if let Some(f) = filter {
        n.log_filter = f.to_owned();
    }
    n.spawn();
    let db = Db::connect(&db);
    (dir, n, db)
}

/// The stored legs of `call_id`, read through the HTTP API once `count` are there.
fn stored_legs(n: &NodeProc, call_id: &str, count: usize) -> Vec<LegQualityRow> {
    let path = format!("/api/v1/calls/{call_id}/quality");
    let mut rows = vec![];
    wait_until(Duration::from_secs(10), || {
        if let Some((200, body)) = http_get(n.http, &path) {
            rows = serde_json::from_str(&body).expect("quality JSON");
        }
        rows.len() >= count
    });
    rows
}

#[test]
fn a_lossy_jittery_caller_is_measured_reported_and_stored() {
    let (_dir, n, _db) = node("quality-lossy", "127.0.47.1");
    let mut uac = Uac::new("127.0.47.2", n.sip);
    // Our RTCP socket, announced with `a=rtcp:` (RFC 3605).
    let rtcp_sock = UdpSocket::bind("127.0.47.2:0").expect("bind RTCP");
    let rtcp_port = rtcp_sock.local_addr().unwrap().port();
    let call_id = "quality-lossy-1";
    let (_, cseq) = uac.invite("5555", call_id, None, &format!("a=rtcp:{rtcp_port}\r\n"));
    let ok = uac.recv_final(Duration::from_secs(5)).expect("answer");
    assert_eq!(ok.status, 200, "{}", ok.text);
    uac.ack(call_id, &ok, cseq);
    let media: SocketAddr = Uac::media_addr(&ok);
    // 12 s: 600 frames, 30 lost, each late by 0-20 ms.
    let imp = Impairment {
        loss_one_in: 20,
        jitter: Duration::from_millis(20),
        seed: 9,
    };
    let sent = lossy::send(&uac.rtp, &rtcp_sock, media, 600, imp);
    assert_eq!(sent.dropped, 30);
    uac.in_dialog("BYE", call_id, &ok, None);
    let bye_ok = uac.recv_final(Duration::from_secs(5)).expect("200 to BYE");
    assert_eq!(bye_ok.status, 200);

    // The node's reports reached us: two in 12 s, each with a block on our stream.
    assert!(
        sent.rtcp.len() >= 2,
        "RTCP from the node: {}",
        sent.rtcp.len()
    );
    let last = rtcp::parse(sent.rtcp.last().unwrap()).expect("the node's RTCP parses");
    let block = last[0]
        .blocks
        .first()
        .expect("a report block on our stream");
    assert_eq!(block.ssrc, 0x1055_5501);
    assert!(
        last[0].sender.is_some(),
        "the node plays music: a sender report"
    );
    assert!((10..=30).contains(&block.cumulative_lost), "{block:?}");

    let rows = stored_legs(&n, call_id, 1);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let q = &rows[0];
    assert_eq!((q.leg, q.codec.as_str()), (CallLeg::Caller, "PCMU"));
    assert_eq!(q.packets_in, 570);
    assert_eq!(q.duplicates, 0);
    let loss = q.lost as f64 / q.expected as f64;
    assert!((0.04..=0.06).contains(&loss), "loss {loss} of {q:?}");
    // Uniform delays in 0-20 ms: the RFC 3550 estimate is about E|d1 - d2| = 20/3 ms.
    assert!(
        (4_000..=10_000).contains(&q.jitter_us),
        "jitter {} us",
        q.jitter_us
    );
    assert!(q.longest_gap_ms >= 20 && q.longest_gap_ms <= 80, "{q:?}");
    assert!(q.packets_out > 400 && q.rtcp_sent >= 2, "{q:?}");
    assert_eq!(q.rtcp_received, 0, "this caller sent no RTCP");
    // The histograms saw the leg.
    assert_eq!(n.metric("callfleet_rtp_loss_ratio_count"), 1.0);
    let sum = n.metric("callfleet_rtp_loss_ratio_sum");
    assert!((0.04..=0.06).contains(&sum), "{sum}");
    assert_eq!(n.metric("callfleet_rtp_jitter_seconds_count"), 1.0);
}

#[test]
fn a_clean_baresip_call_loses_nothing_and_rtcp_goes_both_ways() {
    require("baresip", "baresip");
    let (dir, n, db) = node("quality-baresip", "127.0.47.11");
    device_add(&n, "2001", "phone-secret", false);
    let phone = Phone::start_with_ctrl(
        &dir.join("phone"),
        "127.0.47.21",
        "2001",
        "phone-secret",
        &n,
        4471,
    );
    let registered = wait_until(Duration::from_secs(15), || db.registered("2001"));
    assert!(
        registered.is_some(),
        "phone did not register:\n{}",
        phone.log()
    );
    // Music on hold for 12 s: two reports each way.
    phone.dial(&format!("sip:7777@{}", n.sip));
    let up = wait_until(Duration::from_secs(10), || phone.calls_with("7777") > 0);
    assert!(up.is_some(), "call not established:\n{}", phone.log());
    std::thread::sleep(Duration::from_secs(12));
    let r = phone.command("hangup", "");
    assert_eq!(r["ok"], true, "hangup: {r}");
    let mut rows = vec![];
    wait_until(Duration::from_secs(10), || {
        rows = db
            .block(db.store.quality_since(0))
            .expect("read call_quality");
        !rows.is_empty()
    });
    assert_eq!(rows.len(), 1, "{rows:?}");
    let q = &rows[0];
    assert_eq!(q.leg, CallLeg::Caller);
    assert!(q.packets_in > 500, "{q:?}");
    assert!(q.lost <= 1 && q.duplicates == 0, "a clean call: {q:?}");
    assert!(q.jitter_us < 5_000, "a clean call's jitter: {q:?}");
    // baresip's RTCP was read: its view of our stream.
    assert!(q.rtcp_received >= 2, "{q:?}\n{}", phone.log());
    assert!(q.peer_lost.is_some_and(|l| l <= 1), "{q:?}");
    assert!(q.peer_jitter_us.is_some(), "{q:?}");
    assert!(q.rtcp_sent >= 2, "{q:?}");
    // baresip read ours: its call statistics at hangup show, in the Receive column of
    // `pkt.report`, the packet count of the last sender report it took from the node (the
    // node sends 50 packets a second; one report came by 10 s), and in the Transmit column of
    // `lost` and `jitter` what our receiver reports said of its stream.
    let log = phone.log();
    let column = |name: &str, i: usize| -> f64 {
        log.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .and_then(|v| v.split_whitespace().nth(i)?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} column {i} in baresip's statistics:\n{log}"))
    };
    let announced = column("pkt.report:", 1);
    assert!(
        (200.0..=700.0).contains(&announced),
        "packets our SR announced, as baresip read it: {announced}\n{log}"
    );
    assert_eq!(column("lost:", 0), 0.0, "our RR's loss, as baresip read it");
    assert!(
        column("jitter:", 0) < 5.0,
        "our RR's jitter, as baresip read it"
    );
}

#[test]
fn a_baresip_phone_offering_rtcp_mux_gets_rtcp_on_the_rtp_port() {
    require("baresip", "baresip");
    // The SIP trace (INVITEs as they came) and the media's debug lines.
    let filter = "info,callfleet::sip::inbound=debug,callfleet::media=debug,rsipstack=warn";
    let (dir, n, db) = node_logging("quality-mux", "127.0.47.31", Some(filter));
    device_add(&n, "2002", "phone-secret", false);
    let phone_dir = dir.join("phone");
    let own = phone_dir.join("phone-127.0.47.41");
    std::fs::create_dir_all(&own).expect("phone dir");
    std::fs::write(own.join("config.extra"), "rtcp_mux yes\n").expect("config.extra");
    let phone = Phone::start_with_ctrl(&phone_dir, "127.0.47.41", "2002", "phone-secret", &n, 4472);
    let registered = wait_until(Duration::from_secs(15), || db.registered("2002"));
    assert!(
        registered.is_some(),
        "phone did not register:\n{}",
        phone.log()
    );
    phone.dial(&format!("sip:7777@{}", n.sip));
    let up = wait_until(Duration::from_secs(10), || phone.calls_with("7777") > 0);
    assert!(up.is_some(), "call not established:\n{}", phone.log());
    std::thread::sleep(Duration::from_secs(12));
    let r = phone.command("hangup", "");
    assert_eq!(r["ok"], true, "hangup: {r}");
    let mut rows = vec![];
    wait_until(Duration::from_secs(10), || {
        rows = db
            .block(db.store.quality_since(0))
            .expect("read call_quality");
        !rows.is_empty()
    });
    let q = rows
        .first()
        .unwrap_or_else(|| panic!("no leg stored:\n{}", phone.log()));
    // baresip's RTCP came muxed and was told from its RTP: none of it counted as audio.
    assert!(q.rtcp_received >= 2, "{q:?}\n{}", phone.log());
    assert!(q.lost <= 1 && q.duplicates == 0, "{q:?}");
    assert!(
        q.rtt_us.is_some(),
        "baresip answered our sender reports: {q:?}"
    );
    let log = phone.log();
    let announced: f64 = log
        .lines()
        .find_map(|l| l.trim().strip_prefix("pkt.report:"))
        .and_then(|v| v.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or_else(|| panic!("no RTCP statistics in baresip's log:\n{log}"));
    assert!(
        announced >= 200.0,
        "baresip read our muxed SR: {announced}\n{log}"
    );
    // baresip offered rtcp-mux, and its RTCP came on the RTP port (so our answer took it).
    let node_log = n.log_text();
    assert!(
        node_log.contains("a=rtcp-mux"),
        "baresip's offer:\n{node_log}"
    );
    assert!(
        node_log.contains("first RTCP report from the party, on the RTP port (rtcp-mux)"),
        "{node_log}"
    );
    assert!(!node_log.contains("on the RTCP port"), "{node_log}");
}
