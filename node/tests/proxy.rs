//! Office proxies end to end (issue 14): a node that takes SIP only from its carrier, office
//! proxies and registered phones (`carriers.allow` one address, `register_from = "listed"`).
//! A baresip phone registers through a small UDP relay standing in for an office's proxy: the
//! relay forwards what the phone sends to the node from the proxy's public address, and what
//! comes back to the phone, as an office NAT or SBC does. The proxy checks in, then its public
//! address moves to another IP and it checks in again: the node moves the phone's binding, and
//! a SIPp carrier call to a queue rings the phone at the new address and is answered, before
//! the phone registers again. A stranger's INVITE and REGISTER get 403, and so does a REGISTER
//! from the proxy's address before its first check-in.
//!
//! Addresses: the node at 127.0.72.1, the carrier (SIPp) at 127.0.72.50, a stranger at
//! 127.0.72.66; the proxy's public address 127.0.71.40 then 127.0.72.40 (port 5080), its
//! office side 127.0.71.41:5070, the phone at 127.0.71.42.

mod support;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::phone::{device_add, Phone};
use support::queue::{member, queue, traces, Db};
use support::uac::Uac;
use support::{carrier_calls, cli, wait_until, workdir, Burst, NodeProc, NodeSpec};

const NODE_IP: &str = "127.0.72.1";
const CARRIER_IP: &str = "127.0.72.50";
const STRANGER_IP: &str = "127.0.72.66";
const PROXY_OLD: &str = "127.0.71.40";
const PROXY_NEW: &str = "127.0.72.40";
const PROXY_PORT: u16 = 5080;
const OFFICE_SIDE: &str = "127.0.71.41:5070";
const PHONE_IP: &str = "127.0.71.42";

/// The office's proxy: a UDP relay between the phone (office side) and the node (public side,
/// whose address the test moves). Runs until dropped, at most ten minutes.
struct Relay {
    public: Arc<Mutex<UdpSocket>>,
    stop: Arc<AtomicBool>,
    /// Datagrams from the node passed on to the phone.
    to_phone: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

fn bind(addr: &str) -> UdpSocket {
    let sock = UdpSocket::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .expect("read timeout");
    sock
}

impl Relay {
    fn start(node: SocketAddr) -> Relay {
        let office = bind(OFFICE_SIDE);
        let public = Arc::new(Mutex::new(bind(&format!("{PROXY_OLD}:{PROXY_PORT}"))));
        let stop = Arc::new(AtomicBool::new(false));
        let to_phone = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (public, stop, to_phone) = (public.clone(), stop.clone(), to_phone.clone());
            std::thread::spawn(move || {
                let until = Instant::now() + Duration::from_secs(600);
                let mut phone: Option<SocketAddr> = None;
                let mut buf = [0u8; 65535];
                while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                    if let Ok((n, from)) = office.recv_from(&mut buf) {
                        phone = Some(from);
                        let public = public.lock().expect("public socket");
                        public.send_to(&buf[..n], node).ok();
                    }
                    let got = public.lock().expect("public socket").recv_from(&mut buf);
                    if let (Ok((n, _)), Some(phone)) = (got, phone) {
                        office.send_to(&buf[..n], phone).ok();
                        to_phone.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        };
        Relay {
            public,
            stop,
            to_phone,
            thread: Some(thread),
        }
    }

    /// The office's public address changes: the relay now talks to the node from `ip`.
    fn move_to(&self, ip: &str) {
        *self.public.lock().expect("public socket") = bind(&format!("{ip}:{PROXY_PORT}"));
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().ok();
        }
    }
}

/// `POST /api/v1/proxies/{name}/checkin` from `from` with `token`: (status, body). Bounded by
/// a 5 s read timeout.
fn check_in(http: SocketAddr, from: &str, name: &str, token: &str) -> (u16, String) {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let local: SocketAddr = format!("{from}:0").parse().expect("local addr");
    socket
        .bind(&local.into())
        .expect("bind the proxy's address");
    socket
        .connect_timeout(&http.into(), Duration::from_secs(2))
        .expect("connect");
    let mut s: TcpStream = socket.into();
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    write!(
        s,
        "POST /api/v1/proxies/{name}/checkin HTTP/1.1\r\nHost: {http}\r\n\
         Authorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("send the check-in");
    let mut buf = String::new();
    s.read_to_string(&mut buf).expect("read the answer");
    let status = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = buf.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_owned())
}

/// A REGISTER without credentials from `ip`: the node's status (401 challenge when it takes
/// REGISTERs from there, 403 when not), `None` when it does not answer within a second.
fn register_status(ip: &str, node: SocketAddr, n: u32) -> Option<u16> {
    let uac = Uac::new(ip, node);
    let l = uac.local;
    uac.send(&format!(
        "REGISTER sip:{node} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bK-reg-{n};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:7201@{node}>;tag=reg-{n}\r\nTo: <sip:7201@{node}>\r\n\
         Call-ID: reg-{ip}-{n}\r\nCSeq: 1 REGISTER\r\nContact: <sip:7201@{l}>\r\n\
         Content-Length: 0\r\n\r\n"
    ));
    uac.recv_final(Duration::from_secs(1)).map(|r| r.status)
}

/// Polls REGISTERs from `ip` until the node answers `want`; how long it took.
fn wait_register_status(ip: &str, node: SocketAddr, want: u16) -> Option<Duration> {
    let mut n = 0;
    wait_until(Duration::from_secs(10), || {
        n += 1;
        register_status(ip, node, n) == Some(want)
    })
}

#[test]
fn a_phone_behind_a_moving_proxy_keeps_taking_queue_calls() {
    let dir = workdir("proxy-move");
    let db_url = format!("sqlite://{}", dir.join("cluster.db").display());
    let extra = "[registrar]\nalgorithms = [\"MD5\"]\n";
    let mut node = NodeProc::configure(
        &dir,
        NodeSpec {
            name: "px-a",
            role: "main",
            ip: NODE_IP,
            db: &db_url,
            capacity: 10,
            extra,
        },
    );
    let text = std::fs::read_to_string(&node.config).expect("read the config");
    let text = text.replacen(
        "allow = [\"127.0.0.0/8\"]",
        &format!("allow = [\"{CARRIER_IP}/32\"]\nregister_from = \"listed\"\nrefuse = \"403\""),
        1,
    );
    std::fs::write(&node.config, text).expect("write the config");
    node.spawn();
    let db = Db::connect(&db_url);

    let (ok, token, err) = cli(&node, &["proxy", "add", "--name", "office"], "");
    assert!(ok, "proxy add: {err}");
    let token = token.trim().to_owned();
    assert!(token.starts_with("cfx_") && token.len() == 68, "{token:?}");

    // Neither carrier, proxy nor phone: refused.
    assert_eq!(register_status(STRANGER_IP, node.sip, 0), Some(403));
    let mut stranger = Uac::new(STRANGER_IP, node.sip);
    stranger.invite("sales", "stranger-1", None, "");
    let refused = stranger
        .recv_final(Duration::from_secs(2))
        .map(|r| r.status);
    assert_eq!(refused, Some(403), "a stranger's INVITE");
    // The proxy's address before it checked in is no one's either.
    assert_eq!(register_status(PROXY_OLD, node.sip, 0), Some(403));

    // A wrong token moves nothing; the right one makes the source the proxy's address.
    let wrong = format!("cfx_{}", "0".repeat(64));
    assert_eq!(check_in(node.http, PROXY_OLD, "office", &wrong).0, 401);
    let (status, body) = check_in(node.http, PROXY_OLD, "office", &token);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"address\":\"127.0.71.40\""), "{body}");
    let took = wait_register_status(PROXY_OLD, node.sip, 401);
    assert!(
        took.is_some(),
        "the node does not take REGISTERs from the proxy"
    );

    // The phone registers through the proxy.
    let relay = Relay::start(node.sip);
    device_add(&node, "7201", "pw-7201", false);
    let office: SocketAddr = OFFICE_SIDE.parse().expect("office side");
    let phone = Phone::start_with_ctrl_at(&dir, PHONE_IP, "7201", "pw-7201", office, 4072);
    let registered = wait_until(Duration::from_secs(15), || db.registered("7201"));
    assert!(registered.is_some(), "no registration:\n{}", phone.log());
    let before = db
        .block(db.store.registrations("7201", callfleet::now_ms()))
        .expect("bindings");
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].received, format!("{PROXY_OLD}:{PROXY_PORT}"));

    db.add_agent("1001", "1234");
    db.login("1001", "7201");
    db.add_queue(&queue("sales", "ringall"));
    db.add_member(&member("sales", "1001", 0, 0));

    // The office's public address changes; the proxy checks in from the new one.
    relay.move_to(PROXY_NEW);
    let (status, body) = check_in(node.http, PROXY_NEW, "office", &token);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"moved\":true"), "{body}");
    assert!(body.contains("\"bindings_moved\":1"), "{body}");
    let after = db
        .block(db.store.registrations("7201", callfleet::now_ms()))
        .expect("bindings");
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].received, format!("{PROXY_NEW}:{PROXY_PORT}"));
    assert_eq!(
        (after[0].cseq, after[0].expires_at_ms),
        (before[0].cseq, before[0].expires_at_ms),
        "moved by the check-in, not by a new REGISTER"
    );
    assert!(
        node.log_text().contains("proxy moved"),
        "no log line:\n{}",
        node.log_text()
    );
    let learned = wait_register_status(PROXY_NEW, node.sip, 401);
    assert!(
        learned.is_some_and(|d| d < Duration::from_secs(3)),
        "the node did not admit the new address within 3 s: {learned:?}"
    );
    assert_eq!(
        register_status(PROXY_OLD, node.sip, 99),
        Some(403),
        "the old address is no proxy's any more"
    );

    // A carrier call to the queue rings the phone through the proxy's new address.
    let forwarded = relay.to_phone.load(Ordering::Relaxed);
    let since = callfleet::now_ms();
    let stats = carrier_calls(
        &dir,
        "after-move",
        node.sip,
        "sales",
        (CARRIER_IP, 5090),
        Burst {
            calls: 1,
            every_ms: 1000,
            hold_ms: 6000,
        },
    );
    assert_eq!(stats.successful, 1, "the carrier call failed: {stats:?}");
    let mut answered = None;
    wait_until(Duration::from_secs(10), || {
        answered = traces(&db.events(since))
            .iter()
            .find_map(|t| t.agent().map(str::to_owned));
        answered.is_some()
    });
    assert_eq!(
        answered.as_deref(),
        Some("1001"),
        "the agent did not answer; phone log:\n{}",
        phone.log()
    );
    assert!(
        relay.to_phone.load(Ordering::Relaxed) > forwarded,
        "nothing reached the phone through the proxy's new address"
    );
    let still = db
        .block(db.store.registrations("7201", callfleet::now_ms()))
        .expect("bindings");
    assert_eq!(
        still[0].cseq, before[0].cseq,
        "the phone did not re-register meanwhile"
    );
    drop(phone);
    drop(relay);
}
