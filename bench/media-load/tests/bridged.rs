//! The functional version of `bench/media`: 50 bridged calls for 5 s through a node on
//! loopback (127.0.73.x), with real SIP (the carrier's callers, the agents' phones registered
//! with digest) and G.711 both ways on every call. Every packet sent in the window must arrive,
//! in order, with its payload intact, on the leg of the call it was sent on. No timing bounds:
//! those are the benchmark's.
//!
//! The node runs in this process (its library's `node::run`, on a runtime of its own), with a
//! SQLite database in a temporary folder: the test needs no other server.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use callfleet_mediaload::{provision, run};

const NODE_IP: &str = "127.0.73.1";
const CARRIER_IP: &str = "127.0.73.2";
const PHONES_IP: &str = "127.0.73.3";
const CALLS: usize = 50;

fn config(dir: &Path) -> String {
    format!(
        "[node]\nname = \"mediaload\"\nrole = \"main\"\ncapacity = 1000\n\
         [sip]\nlisten = \"{NODE_IP}:5060\"\n\
         [http]\nlisten = \"{NODE_IP}:8080\"\nsecret = \"mediaload-test-cluster-secret-0123456789abcdef\"\n\
         operator_token_file = \"{d}/token\"\n\
         [database]\nurl = \"sqlite://{d}/cluster.db\"\n\
         [carriers]\nallow = [\"127.0.0.0/8\"]\n\
         [heartbeat]\ninterval = \"1s\"\n\
         [lb]\nrefuse_cpu = 1000.0\n[shed]\nload_per_core = [1000.0, 1000.0]\n\
         [records]\nspool_dir = \"{d}/spool\"\n\
         [recording]\ndir = \"{d}/recordings\"\n\
         [media]\nmoh_dir = \"{d}/moh\"\nvoicemail_dir = \"{d}/voicemail\"\nrtp_ports = \"41000-41999\"\n",
        d = dir.display()
    )
}

/// Whether the node answers `GET /healthz` with 200.
fn healthy(http: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&http, Duration::from_millis(500)) else {
        return false;
    };
    if s.set_read_timeout(Some(Duration::from_secs(2))).is_err()
        || s.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .is_err()
    {
        return false;
    }
    let mut text = String::new();
    s.read_to_string(&mut text).is_ok()
        && (text.starts_with("HTTP/1.1 200") || text.starts_with("HTTP/1.0 200"))
}

#[test]
fn fifty_bridged_calls_every_packet_in_order_and_intact() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("node.toml");
    std::fs::write(&path, config(dir.path())).expect("write the node config");
    let db = format!("sqlite://{}/cluster.db", dir.path().display());

    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    rt.block_on(provision::provision(&db, CALLS))
        .expect("provision the call centre");

    let cfg = callfleet::config::Config::load(&path).expect("load the node config");
    // The node on a runtime of its own, so the generator's work does not run on its threads;
    // it ends with the test process.
    std::thread::spawn(move || {
        let node_rt = tokio::runtime::Runtime::new().expect("the node's runtime");
        if let Err(e) = node_rt.block_on(callfleet::node::run(cfg)) {
            eprintln!("node stopped: {e:#}");
        }
    });
    let http: SocketAddr = format!("{NODE_IP}:8080").parse().expect("address");
    let until = Instant::now() + Duration::from_secs(20);
    while !healthy(http) {
        assert!(Instant::now() < until, "the node did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }

    let plan = run::Plan {
        node: format!("{NODE_IP}:5060").parse().expect("address"),
        carrier_ip: CARRIER_IP.parse().expect("address"),
        phones_ip: PHONES_IP.parse().expect("address"),
        bridged: CALLS,
        moh: 0,
        phones: CALLS,
        rate: 50.0,
        warm: Duration::from_secs(1),
        window: Duration::from_secs(5),
        // Two legs per socket: room for a long stall of the receiving threads on a busy host
        // even with the default socket buffers.
        sockets_per_side: 25,
        node_pid: None,
        music: None,
        // New calls while the 50 carry media: each must be answered and hung up.
        probes_per_second: 2.0,
    };
    let report = rt.block_on(run::run(&plan)).expect("the run");
    let r = &report.media.relay;
    let text = serde_json::to_string_pretty(&report).expect("JSON");
    assert_eq!(report.answered, CALLS as u64, "{text}");
    assert_eq!(report.bridged_up, CALLS as u64, "{text}");
    assert_eq!(report.failed, 0, "{text}");
    assert_eq!(report.dropped_by_node, 0, "{text}");
    // Both legs of every call heard the other party, and only it.
    assert_eq!(r.legs, 2 * CALLS as u64, "{text}");
    assert_eq!(r.silent_legs, 0, "{text}");
    assert_eq!(r.misrouted, 0, "{text}");
    // 5 s at 50 packets a second on 100 streams: about 25,000 packets (the sender may start a
    // stream's window a packet late or early).
    assert!(r.sent >= 2 * CALLS as u64 * 240, "{text}");
    assert_eq!(r.lost, 0, "{text}");
    assert_eq!(r.received, r.sent, "{text}");
    assert_eq!(r.out_of_order, 0, "{text}");
    assert_eq!(r.bad_payload, 0, "{text}");
    // Every new call placed through the window was answered, and its BYE confirmed.
    let p = &report.probes;
    assert_eq!(p.placed, 10, "{text}");
    assert_eq!(p.answered, p.placed, "{text}");
    assert_eq!(p.unconfirmed_byes, 0, "{text}");
    assert!(p.setup_p99_ms > 0.0, "{text}");
    // The carrier's BYEs ended every agent's leg too.
    assert_eq!(report.phones_hung_up, CALLS as u64, "{text}");
}
