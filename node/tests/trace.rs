//! SIP trace per call against real peers: a caller (our UAC) queued on node A is answered by an
//! agent on a baresip phone, and node A exports every message as HEPv3 to sngrep listening on
//! loopback. While the call is up, node B serves its trace by asking node A (signed HTTP);
//! once it is over, node B serves it from SQL, as JSON, as a pcap that tshark reads, and as the
//! ladder page (in Chromium, with axe); and sngrep's own capture holds the INVITE, 200 and BYE
//! of both legs. A call over TCP is traced both ways with the caller's address (what rsipstack
//! writes on a stream reaches the trace through its message inspector). Addresses 127.0.49.x.

mod support;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use callfleet::now_ms;
use callfleet_store::trace::encode;
use callfleet_store::TraceChunk;
use callfleet_vocab::CallTrace;
use serde_json::json;
use support::browser::{axe_source, Browser};
use support::phone::{device_add, Phone};
use support::queue::{member, queue, Db};
use support::uac::Uac;
use support::{require, serial, wait_alive, wait_until, workdir, NodeProc, NodeSpec, Pg};

const NET: &str = "127.0.49";
const AGENT: &str = "1001";
const AGENT_PHONE: &str = "2001";

fn ip(n: u8) -> String {
    format!("{NET}.{n}")
}

/// sngrep listening for HEP on `listen`, writing what it receives to `out`; stopped (SIGTERM,
/// its file then complete) when dropped or by [`Sngrep::stop`].
struct Sngrep {
    child: Option<Child>,
}

impl Sngrep {
    fn start(listen: &str, out: &Path, log: &Path) -> Sngrep {
        require("sngrep", "sngrep");
        let log = std::fs::File::create(log).expect("sngrep log");
        let child = Command::new("sngrep")
            .args(["-L", &format!("udp:{listen}"), "-N", "-q", "-O"])
            .arg(out)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sngrep");
        Sngrep { child: Some(child) }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = c.id().to_string();
            let signalled = Command::new("kill").args(["-TERM", &pid]).status();
            assert!(matches!(signalled, Ok(s) if s.success()), "signal sngrep");
            let ended = wait_until(Duration::from_secs(5), || {
                matches!(c.try_wait(), Ok(Some(_)))
            });
            if ended.is_none() {
                // Never left running: a stuck sngrep is killed (its file may then be short).
                drop(c.kill());
                drop(c.wait());
            }
        }
    }
}

impl Drop for Sngrep {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A GET with a binary body: (status, body).
fn get_bytes(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let mut s =
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("send");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read");
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head")
        + 4;
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    (status, buf[end..].to_vec())
}

fn trace_of(n: &NodeProc, call_id: &str) -> Option<CallTrace> {
    match n.get(&format!("/api/v1/calls/{call_id}/trace")) {
        Some((200, body)) => Some(serde_json::from_str(&body).expect("trace JSON")),
        _ => None,
    }
}

/// `(Call-ID, what)` of the SIP messages in a pcap as tshark reads them: a request's method
/// or a response's `status METHOD`.
fn tshark_sip(file: &Path) -> BTreeSet<(String, String)> {
    require("tshark", "tshark");
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-Y", "sip", "-T", "fields", "-E", "separator=|"])
        .args([
            "-e",
            "sip.Call-ID",
            "-e",
            "sip.Method",
            "-e",
            "sip.Status-Code",
            "-e",
            "sip.CSeq.method",
        ])
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "tshark -r {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            let what = if f.get(1).is_some_and(|m| !m.is_empty()) {
                f[1].to_string()
            } else {
                format!("{} {}", f.get(2)?, f.get(3)?)
            };
            Some((f.first()?.to_string(), what))
        })
        .collect()
}

/// The INVITE, 200 and BYE of both legs are among `seen`.
fn assert_both_legs(seen: &BTreeSet<(String, String)>, (caller, agent): (&str, &str), what: &str) {
    for leg in [caller, agent] {
        for want in ["INVITE", "200 INVITE", "BYE", "200 BYE"] {
            assert!(
                seen.contains(&(leg.to_string(), want.to_string())),
                "{what}: no {want} of leg {leg} in {seen:#?}"
            );
        }
    }
}

/// Two nodes on PostgreSQL (A exporting HEP to sngrep), the agent's baresip phone registered
/// through A and logged in, queue `sales`.
struct Cluster {
    /// Dropped first, while the nodes still answer its un-REGISTER.
    agent: Phone,
    nodes: Vec<NodeProc>,
    db: Db,
    sngrep: Sngrep,
    dir: std::path::PathBuf,
    _pg: Pg,
}

impl Cluster {
    fn start() -> Cluster {
        require("baresip", "baresip");
        let dir = workdir("trace");
        let pg = Pg::fresh("trace");
        let hep = format!("{}:9060", ip(50));
        let sngrep = Sngrep::start(&hep, &dir.join("hep.pcap"), &dir.join("sngrep.log"));
        let extra_a = format!("[trace]\nhep = \"udp:{hep}\"\n");
        let nodes: Vec<NodeProc> = [("main-a", 1, extra_a.as_str()), ("main-b", 2, "")]
            .into_iter()
            .map(|(name, host, extra)| {
                let spec = NodeSpec {
                    name,
                    role: "main",
                    ip: &ip(host),
                    db: &pg.url,
                    capacity: 20,
                    extra,
                };
                NodeProc::start(&dir, spec)
            })
            .collect();
        wait_alive(&nodes[1], 2);
        let db = Db::connect(&pg.url);
        device_add(&nodes[0], AGENT_PHONE, "pw-agent", false);
        let agent = Phone::start(&dir, &ip(10), AGENT_PHONE, "pw-agent", &nodes[0]);
        let ok = wait_until(Duration::from_secs(15), || db.registered(AGENT_PHONE));
        assert!(
            ok.is_some(),
            "the agent's phone did not register:\n{}",
            agent.log()
        );
        db.add_agent(AGENT, "1234");
        db.login(AGENT, AGENT_PHONE);
        db.add_queue(&queue("sales", "ringall"));
        db.add_member(&member("sales", AGENT, 0, 0));
        // Both nodes have reloaded the configuration with the queue (their log says which).
        let version = db.block(db.store.config_version()).expect("config version");
        let line = format!("configuration reloaded version={version}");
        for n in &nodes {
            let seen = wait_until(Duration::from_secs(10), || n.log_text().contains(&line));
            assert!(
                seen.is_some(),
                "{} did not reload version {version}",
                n.name
            );
        }
        Cluster {
            agent,
            nodes,
            db,
            sngrep,
            dir,
            _pg: pg,
        }
    }

    fn logs(&self) -> String {
        format!("(logs in {})", self.dir.display())
    }
}

/// How many messages of `t` answer with a 200.
fn oks(t: &CallTrace) -> usize {
    t.messages
        .iter()
        .filter(|m| m.label().starts_with("200 "))
        .count()
}

/// While the call is up, node B serves its trace by asking node A: the caller's INVITE first,
/// the INVITE to the agent's phone, both answered. Returns it and the agent leg's Call-ID.
fn live_through_node_b(c: &Cluster, call_id: &str) -> (CallTrace, String) {
    let mut live = None;
    wait_until(Duration::from_secs(5), || {
        live = trace_of(&c.nodes[1], call_id).filter(|t| oks(t) >= 2);
        live.is_some()
    });
    let live = live.unwrap_or_else(|| {
        let now = trace_of(&c.nodes[1], call_id);
        panic!(
            "no live trace with both INVITEs answered through node B {}: {now:#?}",
            c.logs()
        )
    });
    assert!(live.live, "{live:?}");
    assert_eq!(live.node, "main-a");
    let first = &live.messages[0];
    assert_eq!(first.label(), "INVITE", "the caller's INVITE comes first");
    assert_eq!(first.src.ip().to_string(), ip(20));
    assert_eq!(first.dst, c.nodes[0].sip);
    let to_agent = live
        .messages
        .iter()
        .find(|m| m.label() == "INVITE" && m.dst.ip().to_string() == ip(10))
        .unwrap_or_else(|| panic!("no INVITE to the agent's phone in {live:#?}"));
    let agent_call_id = to_agent
        .text
        .lines()
        .find_map(|l| l.strip_prefix("Call-ID: "))
        .expect("the agent leg's Call-ID")
        .trim()
        .to_string();
    assert_ne!(agent_call_id, call_id);
    assert!(
        live.messages.windows(2).all(|w| w[0].at_us <= w[1].at_us),
        "in time order"
    );
    (live, agent_call_id)
}

#[test]
fn a_queued_call_is_traced_served_live_and_stored_downloaded_as_pcap_and_sent_as_hep() {
    let _serial = serial();
    let mut c = Cluster::start();
    let since = now_ms();
    let call_id = "trace-1";
    let mut uac = Uac::new(&ip(20), c.nodes[0].sip);
    let ok = uac
        .answered("sales", call_id, Duration::from_secs(5))
        .expect("node A answers the queue call");
    let answered = wait_until(Duration::from_secs(10), || {
        c.db.events(since)
            .iter()
            .any(|e| e.call_id == call_id && e.event.as_str() == "answer")
    });
    assert!(answered.is_some(), "the agent did not answer {}", c.logs());
    let up = wait_until(Duration::from_secs(5), || c.agent.calls_with("caller") == 1);
    assert!(
        up.is_some(),
        "the agent's phone has the call:\n{}",
        c.agent.log()
    );
    let (live, agent_call_id) = live_through_node_b(&c, call_id);

    // The caller hangs up; node A BYEs the agent.
    uac.in_dialog("BYE", call_id, &ok, None);
    let bye_ok = uac
        .recv_final(Duration::from_secs(5))
        .expect("200 to the BYE");
    assert_eq!(bye_ok.status, 200);

    // Finished: from SQL, still through node B.
    let b = &c.nodes[1];
    let mut stored = None;
    wait_until(Duration::from_secs(10), || {
        stored = trace_of(b, call_id).filter(|t| !t.live && oks(t) >= 4);
        stored.is_some()
    });
    let stored = stored.unwrap_or_else(|| {
        let now = trace_of(b, call_id);
        panic!(
            "no stored trace with both BYEs answered {}: {now:#?}",
            c.logs()
        )
    });
    assert_eq!((stored.node.as_str(), stored.cut), ("main-a", 0));
    assert!(
        stored.messages.len() >= live.messages.len() + 4,
        "{stored:#?}"
    );

    ladder_in_the_browser(b, &c.dir, call_id, &stored);

    // The pcap download, read back by tshark.
    let (status, pcap) = get_bytes(b.http, &format!("/api/v1/calls/{call_id}/trace.pcap"));
    assert_eq!(status, 200);
    let file = c.dir.join("download.pcap");
    std::fs::write(&file, &pcap).expect("write the pcap");
    let legs = (call_id, agent_call_id.as_str());
    assert_both_legs(&tshark_sip(&file), legs, "the downloaded pcap");

    // sngrep received the HEP export.
    c.sngrep.stop();
    assert_both_legs(
        &tshark_sip(&c.dir.join("hep.pcap")),
        legs,
        "sngrep's capture",
    );

    let a = &c.nodes[0];
    let written = a.metric("callfleet_sip_trace_chunks_total{outcome=\"written\"}");
    assert!(written >= 1.0, "chunks written: {written}");
    let dropped = a.metric("callfleet_sip_trace_messages_total{outcome=\"dropped\"}");
    assert_eq!(dropped, 0.0);
    assert_eq!(trace_of(b, "no-such-call"), None);
    let (status, _) = get_bytes(b.http, "/api/v1/calls/no-such-call/trace.pcap");
    assert_eq!(status, 404);
}

/// On node B, a supervisor goes from the Calls page to the call's ladder diagram: one arrow
/// per message, axe finds nothing, and an arrow chosen from the keyboard shows its message.
fn ladder_in_the_browser(n: &NodeProc, dir: &Path, call_id: &str, stored: &CallTrace) {
    support::user_add(n, "sue", "supervisor", "pw-sue-trace-1", None);
    let b = Browser::start(dir, &dir.join("shots"));
    let base = format!("http://{}", n.http);
    b.goto(&format!("{base}/calls"));
    b.type_into("#name", "sue");
    b.type_into("#password", "pw-sue-trace-1");
    b.click("#login");
    let link = format!("a[href='/calls/{call_id}/trace']");
    let listed = b.wait_js(
        Duration::from_secs(10),
        "return location.pathname === '/calls' && !!document.querySelector(arguments[0]);",
        vec![json!(link)],
    );
    assert!(
        listed,
        "the Calls page links the call to its trace: {}",
        b.url()
    );
    b.click(&link);
    let drawn = b.wait_js(
        Duration::from_secs(10),
        "return document.querySelectorAll('svg a[data-testid^=\"arrow-\"]').length > 0;",
        vec![],
    );
    assert!(drawn, "no ladder at {}", b.url());
    let arrows = b.js(
        "return document.querySelectorAll('svg a[data-testid^=\"arrow-\"]').length;",
        vec![],
    );
    assert_eq!(
        arrows,
        json!(stored.messages.len()),
        "one arrow per message"
    );
    b.review(&axe_source(), "sip-trace", &[]);
    let bye = stored
        .messages
        .iter()
        .position(|m| m.label() == "BYE")
        .expect("a BYE")
        + 1;
    b.js(
        "document.querySelector('[data-testid=\"arrow-' + arguments[0] + '\"]').focus();",
        vec![json!(bye)],
    );
    b.press(fantoccini::key::Key::Enter);
    let shown = b.wait_js(
        Duration::from_secs(5),
        "return location.hash === '#msg-' + arguments[0] && document.querySelector('li:target pre').textContent.indexOf('BYE ') === 0;",
        vec![json!(bye)],
    );
    assert!(shown, "Enter on arrow {bye} shows the BYE: {}", b.url());
}

/// One request over our TCP stream (`cseq`, the To tag once known).
fn tcp_request(
    s: &mut std::net::TcpStream,
    (method, cseq, to_tag): (&str, u32, Option<&str>),
    node: SocketAddr,
    call_id: &str,
    body: &str,
) {
    let local = s.local_addr().expect("local");
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let content = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    let text = format!(
        "{method} sip:7777@{node};transport=tcp SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bK-{call_id}-{method}-{cseq};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:caller@{local}>;tag=from-{call_id}\r\nTo: <sip:7777@{node}>{to_tag}\r\n\
         Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:caller@{local};transport=tcp>\r\n\
         {content}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(text.as_bytes()).expect("send over TCP");
}

#[test]
fn a_call_over_tcp_is_traced_both_ways_with_the_callers_address() {
    let dir = workdir("trace-tcp");
    let db = format!("sqlite://{}", dir.join("cluster.db").display());
    let n = NodeProc::start(
        &dir,
        NodeSpec {
            name: "solo",
            role: "main",
            ip: &ip(60),
            db: &db,
            capacity: 20,
            extra: "",
        },
    );
    let call_id = "trace-tcp-1";
    let mut s = support::sip_tcp::tcp(&n, &ip(61));
    let caller = s.local_addr().expect("local");
    let rtp = std::net::UdpSocket::bind(format!("{}:0", ip(61))).expect("rtp");
    let sdp = format!(
        "v=0\r\no=t 1 1 IN IP4 {a}\r\ns=-\r\nc=IN IP4 {a}\r\nt=0 0\r\nm=audio {p} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
        a = ip(61),
        p = rtp.local_addr().expect("rtp addr").port()
    );
    tcp_request(&mut s, ("INVITE", 1, None), n.sip, call_id, &sdp);
    let mut ok = None;
    for _ in 0..3 {
        let r = support::sip_tcp::read_response(&mut s).expect("a response over TCP");
        if r.starts_with("SIP/2.0 200") {
            ok = Some(r);
            break;
        }
    }
    let ok = ok.expect("200 to the INVITE");
    let to = support::uac::header(&ok, "To").expect("To");
    let tag = to.split(";tag=").nth(1).expect("To tag").to_string();
    tcp_request(&mut s, ("ACK", 1, Some(&tag)), n.sip, call_id, "");
    tcp_request(&mut s, ("BYE", 2, Some(&tag)), n.sip, call_id, "");
    let bye_ok = support::sip_tcp::read_response(&mut s).expect("200 to the BYE");
    assert!(bye_ok.starts_with("SIP/2.0 200"), "{bye_ok}");

    let mut stored = None;
    wait_until(Duration::from_secs(10), || {
        stored = trace_of(&n, call_id).filter(|t| !t.live && t.messages.len() >= 6);
        stored.is_some()
    });
    let t = stored.unwrap_or_else(|| panic!("no stored trace: {:#?}", trace_of(&n, call_id)));
    let mut labels: Vec<String> = t.messages.iter().map(|m| m.label()).collect();
    // A slow answer makes rsipstack send a 100 of its own after the node's: both are traced.
    labels.dedup();
    assert_eq!(
        labels,
        ["INVITE", "100 Trying", "200 OK", "ACK", "BYE", "200 OK"],
        "{t:#?}"
    );
    for m in &t.messages {
        assert_eq!(m.transport, callfleet_vocab::TraceTransport::Tcp, "{m:?}");
        let ends = if m.text.starts_with("SIP/2.0") {
            (n.sip, caller)
        } else {
            (caller, n.sip)
        };
        assert_eq!((m.src, m.dst), ends, "{}", m.text);
    }
}

/// Retention: at start a node deletes the trace chunks it wrote more than `trace.keep` days
/// ago; newer ones, and another node's, stay.
#[test]
fn a_node_deletes_its_traces_older_than_keep_days() {
    let dir = workdir("trace-keep");
    let url = format!("sqlite://{}", dir.join("cluster.db").display());
    let db = Db::connect(&url);
    db.block(db.store.migrate()).expect("migrate");
    let day = 86_400_000;
    let chunk = |node: &str, call_id: &str, days_ago: i64| {
        let at_ms = now_ms() - days_ago * day;
        TraceChunk {
            node: node.into(),
            call_id: call_id.into(),
            started_at_ms: at_ms - 1_000,
            seq: 0,
            at_ms,
            messages: 0,
            bytes: 0,
            cut: 0,
            blob: encode(&[]).expect("encode"),
        }
    };
    let mut chunks = vec![
        chunk("keeper", "recent@h", 1),
        chunk("other", "other-old@h", 20),
    ];
    chunks.extend((0..2500).map(|i| chunk("keeper", &format!("old-{i}@h"), 11 + i % 30)));
    let stored = db.block(db.store.insert_trace_chunks(&chunks));
    assert_eq!(stored.expect("insert chunks"), 2502);
    let n = NodeProc::start(
        &dir,
        NodeSpec {
            name: "keeper",
            role: "main",
            ip: &ip(70),
            db: &url,
            capacity: 20,
            extra: "[trace]\nkeep = 10\n",
        },
    );
    let count = |call_id: &str| {
        db.block(db.store.trace_of_call(call_id))
            .expect("read a trace")
            .len()
    };
    let swept = wait_until(Duration::from_secs(20), || {
        n.log_text().contains("expired SIP traces deleted")
    });
    assert!(swept.is_some(), "no sweep: {}", n.log_text());
    let line = n
        .log_text()
        .lines()
        .find(|l| l.contains("expired SIP traces deleted"))
        .map(str::to_owned)
        .unwrap_or_default();
    assert!(
        line.contains("chunks=2500") && line.contains("keep_days=10"),
        "{line}"
    );
    assert_eq!(count("old-0@h") + count("old-2499@h"), 0);
    assert_eq!(count("recent@h"), 1, "a newer trace stays");
    assert_eq!(count("other-old@h"), 1, "another node's trace stays");
}
