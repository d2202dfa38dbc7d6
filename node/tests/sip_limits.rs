//! What a crowd or a flood can take from a node, against a real node: TCP connections are
//! capped in all (`sip.tcp_max_connections`) as well as per source; a flood of messages that
//! make the SIP stack warn cannot flood the log; oversized identifiers are refused before they
//! reach the call table, the API, CDRs or the log, whose refusal lines are rate-limited. Each
//! test runs its own node on its own 127.0.44.x address.

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use support::sip_tcp::{closed_within, read_response, tcp};
use support::{workdir, NodeProc, NodeSpec};

/// A node on `ip` with `sip_keys` added to its `[sip]` section.
fn node(test: &str, ip: &str, sip_keys: &str) -> NodeProc {
    node_in(&workdir(test), ip, sip_keys)
}

fn node_in(dir: &std::path::Path, ip: &str, sip_keys: &str) -> NodeProc {
    let db = format!("sqlite://{}", dir.join("cluster.db").display());
    let mut n = NodeProc::configure(
        dir,
        NodeSpec {
            name: "limits",
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
        text.replace("[sip]\n", &format!("[sip]\n{sip_keys}")),
    )
    .expect("write config");
    n.spawn();
    n
}

fn options(local: SocketAddr, target: SocketAddr, transport: &str, cid: &str) -> String {
    format!(
        "OPTIONS sip:{target} SIP/2.0\r\nVia: SIP/2.0/{transport} {local};branch=z9hG4bK-{cid}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:t@{local}>;tag=t-{cid}\r\nTo: <sip:{target}>\r\n\
         Call-ID: {cid}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Whether an OPTIONS on `s` gets `200`.
fn answers(s: &mut TcpStream, n: &NodeProc, cid: &str) -> bool {
    let local = s.local_addr().expect("local");
    if s.write_all(options(local, n.sip, "TCP", cid).as_bytes())
        .is_err()
    {
        return false;
    }
    read_response(s).is_some_and(|r| r.starts_with("SIP/2.0 200 "))
}

#[test]
fn tcp_connections_are_capped_in_all_and_counted() {
    let n = node(
        "limits-tcp",
        "127.0.44.1",
        "tcp_max_per_source = 2\ntcp_max_connections = 3\n",
    );
    // Three connections from two addresses fill the node.
    let mut held = vec![
        tcp(&n, "127.0.44.101"),
        tcp(&n, "127.0.44.101"),
        tcp(&n, "127.0.44.102"),
    ];
    for (i, s) in held.iter_mut().enumerate() {
        assert!(answers(s, &n, &format!("held-{i}")), "connection {i} works");
    }
    assert_eq!(n.metric("callfleet_sip_tcp_connections "), 3.0);
    // A fourth, from an address that has none open, is closed at once: the total is full.
    let mut fourth = tcp(&n, "127.0.44.103");
    assert!(
        closed_within(&mut fourth, Duration::from_secs(2)),
        "a connection over sip.tcp_max_connections is closed"
    );
    assert_eq!(
        n.metric("callfleet_sip_tcp_refused_total{cap=\"total\"} "),
        1.0
    );
    assert_eq!(
        n.metric("callfleet_sip_tcp_refused_total{cap=\"per_source\"} "),
        0.0
    );
    for (i, s) in held.iter_mut().enumerate() {
        assert!(
            answers(s, &n, &format!("still-{i}")),
            "connection {i} untouched"
        );
    }
    // One closes; its place is given back, and the per-source cap still holds within it.
    held.pop();
    assert!(
        support::wait_until(Duration::from_secs(5), || {
            n.metric("callfleet_sip_tcp_connections ") == 2.0
        })
        .is_some(),
        "the gauge follows the closed connection"
    );
    let mut third_from_101 = tcp(&n, "127.0.44.101");
    assert!(
        closed_within(&mut third_from_101, Duration::from_secs(2)),
        "a third connection from one address is closed by the per-source cap"
    );
    assert_eq!(
        n.metric("callfleet_sip_tcp_refused_total{cap=\"per_source\"} "),
        1.0
    );
    let mut late = tcp(&n, "127.0.44.103");
    assert!(
        answers(&mut late, &n, "late"),
        "a new address gets the place"
    );
}

/// Lines of `log` holding `needle`.
fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn a_flood_that_makes_the_sip_stack_warn_writes_a_bounded_log() {
    let n = node("limits-log", "127.0.44.2", "");
    let sock = UdpSocket::bind("127.0.44.104:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(3))).ok();
    let local = sock.local_addr().expect("local");
    // A header folded over 150 continuation lines past 4 KiB: rsipstack's parser warns once
    // per continuation line beyond 4 KiB, so each datagram would write about 150 lines.
    let folded = format!(
        "Subject: {}\r\n{}",
        "s".repeat(4100),
        " more\r\n".repeat(150)
    );
    let flood = |tag: &str, count: usize| {
        let started = Instant::now();
        for i in 0..count {
            let text = options(local, n.sip, "UDP", &format!("{tag}-{i}"))
                .replace("Max-Forwards", &format!("{folded}Max-Forwards"));
            sock.send_to(text.as_bytes(), n.sip).expect("send");
        }
        started
    };
    const WARNING: &str = "folded header value exceeds";
    let started = flood("flood", 200);
    // The node still answers, and has read the whole flood (its datagrams are answered in turn).
    let mut buf = vec![0u8; 65_535];
    let mut ok = 0;
    for _ in 0..400 {
        match sock.recv_from(&mut buf) {
            Ok((len, _)) if buf[..len].starts_with(b"SIP/2.0 200 ") => ok += 1,
            Ok(_) => {}
            Err(_) => break,
        }
        if ok == 200 {
            break;
        }
    }
    assert_eq!(ok, 200, "every flooded OPTIONS is answered");
    let windows = started.elapsed().as_secs() / 10 + 1;
    let log = n.log_text();
    let written = count(&log, WARNING);
    assert!(
        written > 0 && written as u64 <= 10 * windows,
        "{written} warning lines for 30,000 occurrences over {windows} window(s)"
    );
    // After the window (begun at the node's first warning, a little after `started`), the
    // next occurrence is written with how many were left out.
    std::thread::sleep(Duration::from_millis(10_500).saturating_sub(started.elapsed()));
    flood("after", 1);
    assert!(
        support::wait_until(Duration::from_secs(5), || {
            count(&n.log_text(), "log lines left out") > 0
        })
        .is_some(),
        "a line says how many were left out"
    );
    let log = n.log_text();
    let summary = log
        .lines()
        .find(|l| l.contains("log lines left out"))
        .unwrap_or("");
    assert!(
        summary.contains("rsipstack") && summary.contains("left_out="),
        "{summary}"
    );
    assert!(!log.contains("panicked"));
}

/// An INVITE from `local` whose Call-ID, From tag or Request-URI is `grown` by `pad` bytes.
fn hostile_invite(local: SocketAddr, target: SocketAddr, i: usize, pad: &str) -> String {
    let sdp = format!(
        "v=0\r\no=t 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio 40000 RTP/AVP 0\r\n",
        ip = local.ip()
    );
    let (cid, tag, user) = match i % 3 {
        0 => (format!("cid-{i}-{pad}"), format!("t{i}"), "100".to_string()),
        1 => (format!("cid-{i}"), format!("t{i}-{pad}"), "100".to_string()),
        _ => (format!("cid-{i}"), format!("t{i}"), format!("100-{pad}")),
    };
    format!(
        "INVITE sip:{user}@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-h{i}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:h@{local}>;tag={tag}\r\nTo: <sip:100@{target}>\r\n\
         Call-ID: {cid}\r\nCSeq: 1 INVITE\r\nContact: <sip:h@{local}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

#[test]
fn oversized_identifiers_never_reach_the_call_table_cdrs_or_log() {
    let dir = workdir("limits-ids");
    let n = node_in(&dir, "127.0.44.3", "");
    let sock = UdpSocket::bind("127.0.44.105:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(3))).ok();
    let local = sock.local_addr().expect("local");
    // Call-IDs over 256 bytes, tags over 128, Request-URIs over 1,024: 600 of them.
    let pad = "Z".repeat(1100);
    for i in 0..600 {
        sock.send_to(hostile_invite(local, n.sip, i, &pad).as_bytes(), n.sip)
            .expect("send");
    }
    let mut buf = vec![0u8; 65_535];
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..1200 {
        let Ok((len, _)) = sock.recv_from(&mut buf) else {
            break;
        };
        let status = String::from_utf8_lossy(&buf[..len])
            .get(8..11)
            .unwrap_or("")
            .to_string();
        *statuses.entry(status).or_insert(0) += 1;
    }
    assert_eq!(
        statuses.into_iter().collect::<Vec<_>>(),
        vec![("400".to_string(), 600)],
        "each one refused with 400 and nothing else"
    );
    let (_, calls) = support::http_get(n.http, "/api/v1/calls").expect("GET /api/v1/calls");
    assert_eq!(calls.trim(), "[]", "nothing in the call table");
    assert_eq!(n.metric("callfleet_sip_malformed_total "), 600.0);
    // A genuine call still goes through, and is the only CDR.
    let mut uac = support::uac::Uac::new("127.0.44.106", n.sip);
    let ok = uac
        .answered("100", "genuine-1", Duration::from_secs(5))
        .expect("answered");
    uac.in_dialog("BYE", "genuine-1", &ok, None);
    let db = format!("sqlite://{}", dir.join("cluster.db").display());
    let cdrs = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let store = callfleet_store::Store::connect(&db).await.expect("open db");
            let mut rows = vec![];
            for _ in 0..50 {
                rows = store.cdrs_since(0).await.expect("read cdrs");
                if !rows.is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            rows
        });
    assert_eq!(cdrs.len(), 1, "only the genuine call has a record");
    let log = n.log_text();
    assert!(
        !log.contains("ZZZZZZZZ"),
        "no oversized identifier is logged"
    );
    let lines = count(&log, "refused SIP input");
    assert!(
        (1..=10).contains(&lines),
        "{lines} refusal lines for 600 refusals: one per kind every 10 s"
    );
}
