//! The torture-message suite: messages modeled on the cases of RFC 4475 ("SIP Torture Test
//! Messages"), each checked over UDP and over TCP against a live node. The messages are written
//! for this project, modeled on the RFC's cases and named after their sections and case names;
//! they are not copied from the RFC. They live in `node/tests/torture/`, one `NAME.sip` file per
//! case, with the answers expected over each transport in `torture/manifest.txt`; add a case by
//! adding a file and a manifest line.
//!
//! A `.sip` file is the message as text: leading lines starting with `#` are comments, every
//! line ends in CRLF when sent, and these placeholders are filled in per run:
//!
//! | placeholder        | becomes                                                        |
//! |--------------------|----------------------------------------------------------------|
//! | `{target}`         | the node's SIP address, `IP:PORT`                              |
//! | `{host}`           | the node's IP address                                          |
//! | `{local}`          | the test's own address, `IP:PORT`                              |
//! | `{lhost}`          | the test's own IP address                                      |
//! | `{transport}`      | `UDP` or `TCP`                                                 |
//! | `{id}`             | a token unique to the case and transport (Call-IDs, branches)   |
//! | `{len}`            | the length of the body (what follows the first empty line)     |
//! | `{repeat:N:TEXT}`  | TEXT written N times                                           |
//! | `{SP}` / `{CR}`    | a space (where a trailing one matters) / a bare carriage return |
//!
//! A line `{next}` starts another message sent in the same datagram or TCP write.
//!
//! Every INVITE answered `200` is ACKed and hung up, and the call table must be empty at the
//! end. The node runs on 127.0.43.1.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::uac::header;
use support::{workdir, NodeProc, NodeSpec};

/// One line of the manifest.
struct Case {
    name: String,
    udp: Vec<Want>,
    tcp: Vec<Want>,
    header: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Status(u16),
    Nothing,
    Closed,
}

fn torture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/torture")
}

fn wants(field: &str) -> Vec<Want> {
    field
        .split('+')
        .map(|w| match w {
            "none" => Want::Nothing,
            "close" => Want::Closed,
            code => Want::Status(code.parse().unwrap_or_else(|_| panic!("bad status {code}"))),
        })
        .collect()
}

/// The manifest's cases; every `.sip` file is listed once, and every listed file exists.
fn manifest() -> Vec<Case> {
    let dir = torture_dir();
    let text = std::fs::read_to_string(dir.join("manifest.txt")).expect("read manifest");
    let cases: Vec<Case> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 4, "manifest line: {l}");
            Case {
                name: f[0].to_string(),
                udp: wants(f[1]),
                tcp: wants(f[2]),
                header: (f[3] != "-").then(|| f[3].to_string()),
            }
        })
        .collect();
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("read torture dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".sip").map(str::to_string))
        .collect();
    files.sort();
    let mut listed: Vec<String> = cases.iter().map(|c| c.name.clone()).collect();
    listed.sort();
    assert_eq!(files, listed, "every .sip file has one manifest line");
    cases
}

/// Where one run of a case stands: the node, this side's address and transport.
struct Run<'a> {
    node: &'a NodeProc,
    local: SocketAddr,
    transport: &'static str,
    id: String,
}

/// The message of case `name` for one run, as bytes (several messages when the file has
/// `{next}` lines).
fn message(name: &str, run: &Run<'_>) -> Vec<u8> {
    let text = std::fs::read_to_string(torture_dir().join(format!("{name}.sip")))
        .unwrap_or_else(|e| panic!("{name}.sip: {e}"));
    let lines: Vec<&str> = text.lines().skip_while(|l| l.starts_with('#')).collect();
    let parts: Vec<&[&str]> = lines.split(|l| *l == "{next}").collect();
    let mut out = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let mut msg = part.join("\r\n");
        if i + 1 < parts.len() || text.ends_with('\n') {
            msg.push_str("\r\n");
        }
        out.extend(expand(&msg, run));
    }
    out
}

/// One message's placeholders filled in; `{len}` last, from the body as sent.
fn expand(template: &str, run: &Run<'_>) -> Vec<u8> {
    let mut msg = expand_repeats(template);
    for (from, to) in [
        ("{target}", run.node.sip.to_string()),
        ("{host}", run.node.sip.ip().to_string()),
        ("{local}", run.local.to_string()),
        ("{lhost}", run.local.ip().to_string()),
        ("{transport}", run.transport.to_string()),
        ("{id}", run.id.clone()),
        ("{SP}", " ".to_string()),
        ("{CR}", "\r".to_string()),
    ] {
        msg = msg.replace(from, &to);
    }
    let body_len = msg.find("\r\n\r\n").map_or(0, |i| msg.len() - i - 4);
    msg.replace("{len}", &body_len.to_string()).into_bytes()
}

fn expand_repeats(text: &str) -> String {
    let mut out = text.to_string();
    while let Some(start) = out.find("{repeat:") {
        let end = start + out[start..].find('}').expect("closed {repeat:...}");
        let spec = &out[start + 8..end];
        let (n, what) = spec.split_once(':').expect("{repeat:N:TEXT}");
        let n: usize = n.parse().expect("repeat count");
        out.replace_range(start..=end, &what.repeat(n));
    }
    out
}

/// One response as read: its status and text.
struct Answer {
    status: u16,
    text: String,
}

impl Answer {
    fn parse(bytes: &[u8]) -> Answer {
        let text = String::from_utf8_lossy(bytes).into_owned();
        let status = text.get(8..11).and_then(|c| c.parse().ok()).unwrap_or(0);
        Answer { status, text }
    }
}

/// A way to talk to the node: a UDP socket or a TCP stream.
enum Channel {
    Udp(UdpSocket, SocketAddr),
    Tcp(TcpStream, Vec<u8>, bool),
}

impl Channel {
    fn local(&self) -> SocketAddr {
        match self {
            Channel::Udp(s, _) => s.local_addr().expect("local"),
            Channel::Tcp(s, ..) => s.local_addr().expect("local"),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        match self {
            Channel::Udp(s, to) => {
                s.send_to(bytes, *to).expect("send datagram");
            }
            Channel::Tcp(s, _, closed) => {
                if s.write_all(bytes).is_err() {
                    *closed = true;
                }
            }
        }
    }

    /// The next response within `limit`, or None (for TCP, also when the stream closed).
    fn next(&mut self, limit: Duration) -> Option<Answer> {
        let until = Instant::now() + limit;
        let mut chunk = vec![0u8; 65_535];
        loop {
            let left = until.checked_duration_since(Instant::now())?;
            match self {
                Channel::Udp(s, _) => {
                    s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
                        .ok();
                    let (n, _) = s.recv_from(&mut chunk).ok()?;
                    return Some(Answer::parse(&chunk[..n]));
                }
                Channel::Tcp(s, buf, closed) => {
                    if let Some(n) = framed(buf) {
                        let frame: Vec<u8> = buf.drain(..n).collect();
                        return Some(Answer::parse(&frame));
                    }
                    if *closed {
                        return None;
                    }
                    s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
                        .ok();
                    match s.read(&mut chunk) {
                        Ok(0) => *closed = true,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        Err(e) if is_timeout(&e) => return None,
                        Err(_) => *closed = true,
                    }
                }
            }
        }
    }

    /// The final answers that came within `first` (the first one) and then `more` each.
    fn finals(&mut self, first: Duration, more: Duration) -> Vec<Answer> {
        let mut out: Vec<Answer> = Vec::new();
        for _ in 0..20 {
            let limit = if out.is_empty() { first } else { more };
            let Some(a) = self.next(limit) else { break };
            let seen = out.iter().any(|o| {
                o.status == a.status
                    && header(&o.text, "CSeq") == header(&a.text, "CSeq")
                    && header(&o.text, "Call-ID") == header(&a.text, "Call-ID")
            });
            if a.status >= 200 && !seen {
                out.push(a);
            }
        }
        out
    }

    /// Whether the TCP stream was closed by the node (false for UDP).
    fn closed(&mut self, limit: Duration) -> bool {
        if let Channel::Tcp(..) = self {
            let until = Instant::now() + limit;
            while Instant::now() < until {
                if let Channel::Tcp(_, _, true) = self {
                    return true;
                }
                self.next(Duration::from_millis(200));
            }
            matches!(self, Channel::Tcp(_, _, true))
        } else {
            false
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// The length of the whole response at the front of `buf`, if it is all there.
fn framed(buf: &[u8]) -> Option<usize> {
    let head = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let text = String::from_utf8_lossy(&buf[..head]);
    let len: usize = header(&text, "Content-Length")
        .or_else(|| header(&text, "l"))
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    (buf.len() >= head + len).then_some(head + len)
}

fn channel(node: &NodeProc, transport: &str) -> Channel {
    match transport {
        "UDP" => Channel::Udp(UdpSocket::bind("127.0.43.101:0").expect("bind"), node.sip),
        _ => Channel::Tcp(
            support::sip_tcp::tcp(node, "127.0.43.102"),
            Vec::new(),
            false,
        ),
    }
}

/// ACKs a `200` to an INVITE and hangs the call up with a BYE (answered `200`).
fn hang_up(ch: &mut Channel, run: &Run<'_>, ok: &Answer) -> Result<(), String> {
    let get = |name| header(&ok.text, name).ok_or(format!("no {name} in {}", ok.text));
    let (from, to, cid) = (get("From")?, get("To")?, get("Call-ID")?);
    let contact = get("Contact")?;
    let target = contact
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or("");
    let n: u32 = get("CSeq")?
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or("CSeq number")?;
    let request = |method: &str, seq: u32| {
        format!(
            "{method} {target} SIP/2.0\r\nVia: SIP/2.0/{t} {l};branch=z9hG4bK-{method}-{seq}-{id}\r\n\
             Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {cid}\r\nCSeq: {seq} {method}\r\n\
             Content-Length: 0\r\n\r\n",
            t = run.transport,
            l = run.local,
            id = run.id,
        )
    };
    ch.send(request("ACK", n).as_bytes());
    ch.send(request("BYE", n + 1).as_bytes());
    for _ in 0..10 {
        match ch.next(Duration::from_secs(3)) {
            Some(a) if a.text.contains("BYE\r\n") && a.status == 200 => return Ok(()),
            Some(_) => continue,
            None => break,
        }
    }
    Err(format!("the BYE of {cid} was not answered 200"))
}

/// Runs one case over one transport; the problems found, if any.
fn run_case(node: &NodeProc, case: &Case, transport: &'static str, n: usize) -> Vec<String> {
    let mut ch = channel(node, transport);
    let run = Run {
        node,
        local: ch.local(),
        transport,
        id: format!("t{n}{}", transport.to_ascii_lowercase()),
    };
    let want = if transport == "UDP" {
        &case.udp
    } else {
        &case.tcp
    };
    ch.send(&message(&case.name, &run));
    let what = format!("{} over {transport}", case.name);
    let mut problems = Vec::new();
    let statuses: Vec<u16> = want
        .iter()
        .filter_map(|w| match w {
            Want::Status(s) => Some(*s),
            _ => None,
        })
        .collect();
    let wait = if statuses.is_empty() {
        Duration::from_millis(1500)
    } else {
        Duration::from_secs(4)
    };
    // Listen on after the first answer: long when more are due, briefly to catch strays.
    let more = if statuses.len() > 1 {
        Duration::from_secs(4)
    } else {
        Duration::from_millis(400)
    };
    let finals = ch.finals(wait, more);
    let got: Vec<u16> = finals.iter().map(|a| a.status).collect();
    if got != statuses {
        let first = finals
            .first()
            .map_or("", |a| a.text.lines().next().unwrap_or(""));
        problems.push(format!("{what}: want {want:?}, got {got:?} ({first})"));
    }
    if let (Some(h), Some(first)) = (&case.header, finals.first()) {
        if header(&first.text, h).is_none() {
            problems.push(format!("{what}: no {h} in {}", first.text));
        }
    }
    for a in &finals {
        if a.text
            .split("\r\n\r\n")
            .next()
            .unwrap_or("")
            .replace("\r\n", "")
            .contains('\r')
        {
            problems.push(format!("{what}: a bare CR in the answer {:?}", a.text));
        }
        let invite = header(&a.text, "CSeq").is_some_and(|c| c.ends_with("INVITE"));
        if a.status == 200 && invite {
            if let Err(e) = hang_up(&mut ch, &run, a) {
                problems.push(format!("{what}: {e}"));
            }
        }
    }
    let closed = ch.closed(if want.contains(&Want::Closed) {
        Duration::from_secs(5)
    } else {
        Duration::from_millis(300)
    });
    match (transport, want.contains(&Want::Closed), closed) {
        ("TCP", true, false) => problems.push(format!("{what}: the connection stayed open")),
        ("TCP", false, true) if want.contains(&Want::Nothing) => {
            problems.push(format!("{what}: the connection was closed"))
        }
        _ => {}
    }
    problems
}

fn live_calls(n: &NodeProc) -> usize {
    let (_, body) = support::http_get(n.http, "/api/v1/calls").expect("GET /api/v1/calls");
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or(usize::MAX)
}

fn torture_node(test: &str, ip: &str) -> NodeProc {
    let dir = workdir(test);
    let db = format!("sqlite://{}", dir.join("cluster.db").display());
    let mut n = NodeProc::configure(
        &dir,
        NodeSpec {
            name: "torture",
            role: "main",
            ip,
            db: &db,
            capacity: 50,
            extra: "",
        },
    );
    let text = std::fs::read_to_string(&n.config).expect("read config");
    std::fs::write(
        &n.config,
        text.replace("[sip]\n", "[sip]\ntcp_message_timeout = \"2s\"\n"),
    )
    .expect("write config");
    n.spawn();
    n
}

#[test]
fn rfc_4475_torture_messages_get_their_answers_over_udp_and_tcp() {
    let cases = manifest();
    let node = torture_node("torture", "127.0.43.1");
    let mut problems = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        for transport in ["UDP", "TCP"] {
            problems.extend(run_case(&node, case, transport, n));
        }
    }
    if support::wait_until(Duration::from_secs(10), || live_calls(&node) == 0).is_none() {
        problems.push(format!(
            "{} calls left in the call table",
            live_calls(&node)
        ));
    }
    let log = node.log_text();
    if log.contains("panicked") {
        problems.push(format!("the node panicked:\n{log}"));
    }
    assert!(
        problems.is_empty(),
        "{} of {} runs went wrong:\n{}",
        problems.len(),
        cases.len() * 2,
        problems.join("\n")
    );
}
