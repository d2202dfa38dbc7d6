//! Attacks on the SIP edge of a real node, each from an address the node does not trust, each
//! shown refused with nothing of anybody else's touched: reusing a live call's Call-ID from
//! outside the carrier allowlist (while SIPp holds the real call), and an INVITE whose SDP
//! points our media at a third address that never asked for it. Each test runs its own node
//! on its own 127.0.41.x address.

mod support;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use callfleet_store::Store;
use support::uac::Uac;
use support::{sipp, workdir, NodeProc, NodeSpec};

fn node(test: &str, ip: &str, allow: &str) -> (std::path::PathBuf, NodeProc, String) {
    let dir = workdir(test);
    let db = format!("sqlite://{}", dir.join("cluster.db").display());
    let mut n = NodeProc::configure(
        &dir,
        NodeSpec {
            name: "target",
            role: "main",
            ip,
            db: &db,
            capacity: 20,
            extra: "",
        },
    );
    let text = std::fs::read_to_string(&n.config).expect("read config");
    std::fs::write(
        &n.config,
        text.replace(
            "allow = [\"127.0.0.0/8\"]",
            &format!("allow = [\"{allow}\"]"),
        ),
    )
    .expect("write config");
    n.spawn();
    (dir, n, db)
}

async fn cdrs_eventually(db: &str, want: usize) -> Vec<callfleet_store::Cdr> {
    let store = Store::connect(db).await.expect("open test db");
    let mut rows = vec![];
    for _ in 0..100 {
        rows = store.cdrs_since(0).await.expect("read cdrs");
        if rows.len() >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rows
}

fn live_calls(n: &NodeProc) -> Vec<serde_json::Value> {
    let (_, body) = support::http_get(n.http, "/api/v1/calls").expect("GET /api/v1/calls");
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

/// An INVITE from `uac` with the given Call-ID and From tag.
fn invite_with(uac: &Uac, call_id: &str, from_tag: &str) -> String {
    let sdp = uac.sdp("");
    format!(
        "INVITE sip:100@{t} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bK-att-{from_tag}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:attacker@{l}>;tag={from_tag}\r\nTo: <sip:100@{t}>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:attacker@{l}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len(),
        t = uac.target,
        l = uac.local
    )
}

#[tokio::test]
async fn reusing_a_live_call_id_from_outside_the_allowlist_is_refused() {
    let (dir, n, db) = node("attack-callid", "127.0.41.1", "127.0.41.110/32");
    // The real call: SIPp from the allowed carrier address, held 6 s.
    let target = n.sip.to_string();
    let dir2 = dir.clone();
    let real = std::thread::spawn(move || {
        sipp(
            &dir2,
            "real",
            &[
                "-sn",
                "uac",
                "-s",
                "100",
                "-d",
                "6000",
                "-m",
                "1",
                "-i",
                "127.0.41.110",
                "-p",
                "5073",
                "-timeout",
                "30",
                &target,
            ],
        )
    });
    let mut call_id = None;
    support::wait_until(Duration::from_secs(10), || {
        call_id = live_calls(&n)
            .first()
            .and_then(|c| c["call_id"].as_str().map(str::to_string));
        call_id.is_some()
    });
    let call_id = call_id.expect("the real call is live");
    // The attacker (not in carriers.allow) reuses its Call-ID with a new From tag...
    let attacker = Uac::new("127.0.41.111", n.sip);
    attacker.send(&invite_with(&attacker, &call_id, "evil-1"));
    let r = attacker
        .recv_final(Duration::from_secs(3))
        .expect("the attack is answered");
    assert_eq!(r.status, 403, "{}", r.text);
    // ...and tries to end it with a BYE in a dialog it guesses.
    attacker.send(&format!(
        "BYE sip:callfleet@{t} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bK-att-bye\r\n\
         Max-Forwards: 70\r\nFrom: <sip:sipp@127.0.41.110>;tag=1\r\nTo: <sip:100@{t}>;tag=guess\r\n\
         Call-ID: {call_id}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
        t = attacker.target,
        l = attacker.local
    ));
    let r = attacker
        .recv_final(Duration::from_secs(3))
        .expect("the BYE is answered");
    assert_eq!(r.status, 481, "{}", r.text);
    // An allowed address reusing the live Call-ID does not reach the call either.
    let carrier = Uac::new("127.0.41.110", n.sip);
    carrier.send(&invite_with(&carrier, &call_id, "dup-1"));
    let r = carrier
        .recv_final(Duration::from_secs(3))
        .expect("the duplicate is answered");
    assert_eq!(r.status, 482, "{}", r.text);
    let calls = live_calls(&n);
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["state"], "answered");
    let stats = real.join().expect("sipp");
    assert_eq!(
        (stats.successful, stats.failed),
        (1, 0),
        "the real call: {stats:?}"
    );
    cdrs_eventually(&db, 1).await;
    // Anything the attacks might have written would be queued behind the real call's CDR.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rows = cdrs_eventually(&db, 1).await;
    assert_eq!(rows.len(), 1, "one CDR, the real call's: {rows:?}");
    assert_eq!(rows[0].call_id, call_id);
    assert_eq!(
        (rows[0].hangup_cause.as_str(), rows[0].hangup_side.as_str()),
        ("normal", "caller")
    );
    assert!(rows[0].from_uri.contains("127.0.41.110"), "{:?}", rows[0]);
    assert!(live_calls(&n).is_empty());
}

#[tokio::test]
async fn sdp_pointing_at_a_third_address_sends_it_nothing_and_the_call_ends_at_timer_h() {
    let (_dir, n, db) = node("attack-victim", "127.0.41.2", "127.0.0.0/8");
    let victim = UdpSocket::bind("127.0.41.121:0").expect("bind victim");
    let victim_addr = victim.local_addr().expect("victim addr");
    let attacker = Uac::new("127.0.41.120", n.sip);
    // The INVITE's SDP names the victim as where the caller wants RTP; no ACK ever follows.
    let sdp = format!(
        "v=0\r\no=x 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\n\
         a=rtpmap:0 PCMU/8000\r\n",
        ip = victim_addr.ip(),
        port = victim_addr.port()
    );
    let l = attacker.local;
    let t = attacker.target;
    attacker.send(&format!(
        "INVITE sip:100@{t} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bK-victim-1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:a@{l}>;tag=v1\r\nTo: <sip:100@{t}>\r\nCall-ID: victim-1\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:a@{l}>\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    ));
    let ok = attacker
        .recv_final(Duration::from_secs(5))
        .expect("the INVITE is answered");
    assert_eq!(ok.status, 200, "{}", ok.text);
    // Count every packet the victim receives until the call is gone (Timer H: 64·T1 = 32 s,
    // protocol time) and a little after.
    victim
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut packets = 0;
    let mut buf = [0u8; 2048];
    let start = Instant::now();
    let mut ended_after = None;
    while start.elapsed() < Duration::from_secs(45) {
        if victim.recv_from(&mut buf).is_ok() {
            packets += 1;
        }
        if ended_after.is_none() && live_calls(&n).is_empty() {
            ended_after = Some(start.elapsed());
        }
        if ended_after.is_some_and(|e| start.elapsed() > e + Duration::from_secs(2)) {
            break;
        }
    }
    assert_eq!(packets, 0, "the victim received {packets} packets");
    let ended_after = ended_after.expect("the unacknowledged call ends");
    assert!(
        ended_after >= Duration::from_secs(30),
        "the call waits for the ACK (Timer H), ended after {ended_after:?}"
    );
    let rows = cdrs_eventually(&db, 1).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].call_id, "victim-1");
    assert_eq!(rows[0].hangup_cause.as_str(), "no_ack", "{:?}", rows[0]);
    assert_eq!(n.metric("callfleet_calls_active"), 0.0);
}
