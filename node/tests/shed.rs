//! Shedding the reporting load with real nodes on PostgreSQL: a node made busy by calls (calls
//! over capacity, one of the shed level's inputs) sends report pages and CSV exports to the
//! idle node with `307`, refuses a request already sent on, and, once every node is busy,
//! answers `503` with `Retry-After`, and a full node defers its background work; its calls in progress keep clean, evenly paced audio; when
//! the calls end the level falls again, with one log line per change and the metrics to show.
//!
//! The level is raised with calls, not with a CPU hog: every node of a test shares one host,
//! so host CPU or load would raise all of them at once (and the host is never idle for sure).
//! The CPU and load inputs are table-tested with injected samples (`callfleet::shed`).

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use support::http::{exchange, header};
use support::uac::{Resp, Uac};
use support::{carrier_calls, serial, user_add, wait_alive, wait_until, workdir, Burst};
use support::{NodeProc, NodeSpec, Pg};

/// An `extra` node (it keeps the calls it is sent) taking at most 4 calls: 3 make it busy.
fn node(dir: &Path, pg: &Pg, name: &'static str, ip: &str) -> NodeProc {
    let node = NodeProc::start(
        dir,
        NodeSpec {
            name,
            role: "extra",
            ip,
            db: &pg.url,
            capacity: 4,
            extra: "",
        },
    );
    let text = std::fs::read_to_string(&node.config).expect("read config");
    assert!(
        text.contains("[shed]\n"),
        "the test config has a [shed] section"
    );
    node
}

/// Logs `name` in on `http`: the session cookie.
fn login(http: SocketAddr, name: &str, password: &str) -> String {
    let (status, h, body) = exchange(
        http,
        "POST /login HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded",
        &format!("name={name}&password={password}&next=%2F"),
    );
    assert_eq!(status, 303, "login: {body}");
    let cookie = header(&h, "set-cookie").expect("a session cookie");
    cookie.split(';').next().expect("cookie").to_owned()
}

/// A GET with the session `cookie` and `accept`: (status, headers, body).
fn get(
    http: SocketAddr,
    path: &str,
    cookie: &str,
    accept: &str,
) -> (u16, Vec<(String, String)>, String) {
    exchange(
        http,
        &format!("GET {path} HTTP/1.0\r\nCookie: {cookie}\r\nAccept: {accept}"),
        "",
    )
}

const HTML: &str = "text/html,application/xhtml+xml,*/*;q=0.8";

fn level(node: &NodeProc) -> f64 {
    node.metric("callfleet_shed_level ")
}

fn action(node: &NodeProc, action: &str) -> f64 {
    node.metric(&format!(
        "callfleet_shed_actions_total{{action=\"{action}\"}} "
    ))
}

/// A call from `ip` to `node`, answered: the UAC, the 200 and where to send RTP.
fn call(ip: &str, node: &NodeProc, call_id: &str) -> (Uac, Resp, SocketAddr) {
    let mut uac = Uac::new(ip, node.sip);
    let ok = uac
        .answered("100", call_id, Duration::from_secs(5))
        .expect("the call is answered");
    let media = Uac::media_addr(&ok);
    (uac, ok, media)
}

/// Pacing of what the node sent in `window` while we send it 20 ms frames: (packets, longest
/// gap between two, sequence numbers not one after the other).
fn pacing(uac: &Uac, to: SocketAddr, window: Duration) -> (usize, Duration, usize) {
    let frame = [0xffu8; 160];
    uac.rtp
        .set_read_timeout(Some(Duration::from_millis(2)))
        .expect("read timeout");
    let (mut count, mut gap, mut skips) = (0, Duration::ZERO, 0);
    let mut last: Option<(Instant, u16)> = None;
    let mut buf = [0u8; 2048];
    // What arrived before the window (while the test made its requests) is not counted.
    while uac.rtp.recv_from(&mut buf).is_ok() {}
    let start = Instant::now();
    let mut i: u16 = 0;
    while start.elapsed() < window {
        let mut pkt = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0x5e, 0xd0, 0x00, 0x01];
        pkt[2..4].copy_from_slice(&i.to_be_bytes());
        pkt[4..8].copy_from_slice(&(u32::from(i) * 160).to_be_bytes());
        pkt.extend_from_slice(&frame);
        uac.rtp.send_to(&pkt, to).expect("send RTP");
        while let Ok((n, _)) = uac.rtp.recv_from(&mut buf) {
            if n < 12 || buf[1] & 0x7f != 0 {
                continue;
            }
            let now = Instant::now();
            let seq = u16::from_be_bytes([buf[2], buf[3]]);
            if let Some((at, prev)) = last {
                gap = gap.max(now - at);
                if seq != prev.wrapping_add(1) {
                    skips += 1;
                }
            }
            last = Some((now, seq));
            count += 1;
        }
        i = i.wrapping_add(1);
        let next = start + Duration::from_millis(20 * u64::from(i));
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    (count, gap, skips)
}

/// Log lines of `node` announcing a shed level change.
fn changes(node: &NodeProc) -> Vec<String> {
    node.log_text()
        .lines()
        .filter(|l| l.contains("shed level ") && l.contains(" -> "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_busy_node_sends_reports_to_the_idle_one_and_its_calls_keep_clean_audio() {
    let _serial = serial();
    let dir = workdir("shed-reports");
    let pg = Pg::fresh("shed_reports");
    let idle = node(&dir, &pg, "idle", "127.0.53.1");
    let busy = node(&dir, &pg, "busy", "127.0.53.2");
    wait_alive(&busy, 2);
    user_add(&busy, "boss", "supervisor", "boss-password-1", None);
    // Sessions are in SQL: the cookie of a login on one node is good on the other.
    let cookie = login(busy.http, "boss", "boss-password-1");
    let report = "/reports/queues?tz=UTC&interval=day";
    let (status, _, body) = get(busy.http, report, &cookie, HTML);
    assert_eq!(status, 200, "an idle node answers itself: {body}");
    assert_eq!(level(&busy), 0.0);

    // Three calls of four: 75 % of capacity, level 1. One is ours, to listen to.
    let (mut uac, ok, media) = call("127.0.53.20", &busy, "shed-watched");
    let (cdir, target) = (dir.clone(), busy.sip);
    let sipp = std::thread::spawn(move || {
        let burst = Burst {
            calls: 2,
            every_ms: 100,
            hold_ms: 25_000,
        };
        carrier_calls(&cdir, "filler", target, "100", ("127.0.53.21", 5061), burst)
    });
    let raised = wait_until(Duration::from_secs(15), || {
        level(&busy) == 1.0
            && idle.nodes().as_array().is_some_and(|nodes| {
                nodes
                    .iter()
                    .any(|n| n["name"] == "busy" && n["shed_level"] == 1)
            })
    });
    assert!(
        raised.is_some(),
        "busy never reached level 1: {}",
        busy.log_text()
    );

    // A report page and a CSV go to the idle node, same path and query, marked.
    let (status, h, _) = get(busy.http, report, &cookie, HTML);
    assert_eq!(status, 307);
    let location = header(&h, "location").expect("a Location").to_owned();
    assert_eq!(
        location,
        format!("http://{}{report}&shed_from=busy", idle.http)
    );
    let path = location.trim_start_matches(&format!("http://{}", idle.http));
    let (status, _, body) = get(idle.http, path, &cookie, HTML);
    assert_eq!(
        status, 200,
        "the idle node answers the redirected request: {body}"
    );
    assert!(
        body.contains("<table") && body.contains("/reports/queues.csv?tz=UTC&amp;interval=day\""),
        "the CSV link carries no marker: {body}"
    );
    let (status, h, _) = get(busy.http, "/reports/heatmap.csv", &cookie, "text/csv");
    assert_eq!(status, 307);
    let location = header(&h, "location").expect("a Location").to_owned();
    assert_eq!(
        location,
        format!("http://{}/reports/heatmap.csv?shed_from=busy", idle.http)
    );
    let path = location.trim_start_matches(&format!("http://{}", idle.http));
    let (status, h, body) = get(idle.http, path, &cookie, "text/csv");
    assert_eq!(status, 200, "{body}");
    assert!(header(&h, "content-type").is_some_and(|c| c.starts_with("text/csv")));
    // Sent here already: never bounced again.
    let (status, h, body) = get(busy.http, "/reports/queues?shed_from=idle", &cookie, HTML);
    assert_eq!(status, 503, "{body}");
    assert!(header(&h, "retry-after").is_some());
    // The list of reports and the panel are not shed.
    assert_eq!(get(busy.http, "/reports", &cookie, HTML).0, 200);
    assert_eq!(get(busy.http, "/", &cookie, HTML).0, 200);

    // The call in progress keeps its audio, evenly paced, while the node sheds.
    let (count, gap, skips) = pacing(&uac, media, Duration::from_secs(4));
    println!("busy node's audio over 4 s: {count} packets, longest gap {gap:?}, {skips} skips");
    assert!((180..=210).contains(&count), "{count} packets in 4 s");
    assert!(gap <= Duration::from_millis(120), "longest gap {gap:?}");
    assert_eq!(skips, 0, "packets lost or out of order");
    assert_eq!(action(&busy, "report_redirected"), 2.0);
    assert_eq!(action(&busy, "report_refused"), 1.0);

    // The calls end: the level falls back, and reports are answered here again.
    uac.in_dialog("BYE", "shed-watched", &ok, None);
    let held = sipp.join().expect("sipp thread");
    assert_eq!((held.successful, held.failed), (2, 0), "{held:?}");
    let fell = wait_until(Duration::from_secs(15), || level(&busy) == 0.0);
    assert!(
        fell.is_some(),
        "the level did not fall: {}",
        busy.log_text()
    );
    let (status, _, body) = get(busy.http, report, &cookie, HTML);
    assert_eq!(status, 200, "{body}");
    let lines = changes(&busy);
    assert_eq!(lines.len(), 2, "one line per change: {lines:#?}");
    assert!(
        lines[0].contains("shed level 0 -> 1") && lines[0].contains("calls=3"),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains("shed level 1 -> 0"), "{}", lines[1]);
    assert_eq!(busy.metric("callfleet_shed_level_changes_total "), 2.0);
    assert!(
        changes(&idle).is_empty(),
        "the idle node never changed level"
    );
}

#[test]
fn with_every_node_busy_reports_wait_with_retry_after() {
    let _serial = serial();
    let dir = workdir("shed-all-busy");
    let pg = Pg::fresh("shed_all_busy");
    let a = node(&dir, &pg, "node-a", "127.0.53.11");
    let b = node(&dir, &pg, "node-b", "127.0.53.12");
    wait_alive(&b, 2);
    user_add(&a, "boss", "supervisor", "boss-password-1", None);
    let cookie = login(a.http, "boss", "boss-password-1");
    // Three calls on node-a (level 1), four on node-b (full: level 2).
    let mut held = Vec::new();
    for (n, node, calls) in [(0, &a, 3), (1, &b, 4)] {
        for i in 0..calls {
            let ip = format!("127.0.53.{}", 30 + n * 10 + i);
            held.push(call(&ip, node, &format!("busy-{n}-{i}")));
        }
    }
    let both = wait_until(Duration::from_secs(15), || {
        level(&a) == 1.0
            && level(&b) == 2.0
            && a.nodes()
                .as_array()
                .is_some_and(|nodes| nodes.iter().all(|n| n["shed_level"] != 0))
    });
    assert!(both.is_some(), "both nodes busy: {}", a.log_text());

    let (status, h, body) = get(a.http, "/reports/agents", &cookie, HTML);
    assert_eq!(status, 503, "{body}");
    assert_eq!(header(&h, "retry-after"), Some("30"));
    assert!(
        body.contains("Reports are paused") && body.contains("30 seconds"),
        "{body}"
    );
    let (status, h, body) = get(a.http, "/reports/cdrs.csv", &cookie, "application/json");
    assert_eq!(status, 503);
    assert_eq!(header(&h, "retry-after"), Some("30"));
    let json: serde_json::Value = serde_json::from_str(&body).expect("a JSON body");
    assert_eq!(json["retry_after_s"], 30, "{json}");
    assert_eq!(action(&a, "report_refused"), 2.0);
    assert_eq!(action(&a, "report_redirected"), 0.0);

    // Level 2 defers background work: node-b leaves its heartbeat history pruning (every 30
    // beats) for later; node-a, at level 1, does not.
    let deferred = wait_until(Duration::from_secs(45), || {
        action(&b, "background_deferred") >= 1.0
    });
    assert!(deferred.is_some(), "node-b deferred no background work");
    assert_eq!(action(&a, "background_deferred"), 0.0);

    // One node's calls end: it is idle again and gets the reports of the other.
    for (uac, ok, _) in held.iter_mut().skip(3) {
        let call_id = ok.header("Call-ID").expect("Call-ID");
        uac.in_dialog("BYE", &call_id, ok, None);
    }
    let idle = wait_until(Duration::from_secs(15), || {
        a.nodes().as_array().is_some_and(|nodes| {
            nodes
                .iter()
                .any(|n| n["name"] == "node-b" && n["shed_level"] == 0)
        })
    });
    assert!(idle.is_some(), "node-b idle again: {}", b.log_text());
    let (status, h, _) = get(a.http, "/reports/agents", &cookie, HTML);
    assert_eq!(status, 307);
    assert_eq!(
        header(&h, "location"),
        Some(format!("http://{}/reports/agents?shed_from=node-a", b.http).as_str())
    );
    for (uac, ok, _) in held.iter_mut().take(3) {
        let call_id = ok.header("Call-ID").expect("Call-ID");
        uac.in_dialog("BYE", &call_id, ok, None);
    }
    let fell = wait_until(Duration::from_secs(15), || level(&a) == 0.0);
    assert!(fell.is_some(), "node-a's level fell");
    assert_eq!(get(a.http, "/reports/agents", &cookie, HTML).0, 200);
}
