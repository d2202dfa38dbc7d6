//! Calls keep spreading during a database outage, with real peers: main-a, main-b and extra-c
//! on a PostgreSQL server of the test's own, behind the Kamailio carrier, which sends every
//! call to main-a first, so main-a decides where each one goes. The server is stopped
//! (`pg_ctl -m immediate`); past the heartbeat TTL main-a can read no heartbeat, yet:
//! - calls placed then still spread over the three nodes (counted from the CDRs once the
//!   database is back and the spools replayed), because the peers keep answering main-a's
//!   probes with their live load;
//! - extra-c, killed with `kill -9`, is out of main-a's choice within the probe window, and
//!   every call placed after that succeeds, spread over main-a and main-b;
//! - once the database is back, heartbeats rule again.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use callfleet::now_ms;

use support::pgserver::PgServer;
use support::{
    carrier_calls, serial, wait_alive, wait_until, workdir, Burst, Carrier, NodeProc, NodeSpec,
    SippStats,
};

/// The heartbeat TTL of the test nodes (`heartbeat.interval = 1s`, TTL three beats).
const TTL: Duration = Duration::from_secs(3);
/// Probe window: `lb.probe_interval` 400 ms, out after 2 misses, plus the round in flight.
const PROBE_WINDOW: Duration = Duration::from_millis(1_200);

/// CDRs per node of the calls started in `[from_ms, to_ms)`.
fn cdrs_per_node(url: &str, (from_ms, to_ms): (i64, i64)) -> HashMap<String, u64> {
    let sql = format!(
        "SELECT node, count(*) FROM cdrs WHERE started_at_ms >= {from_ms} \
         AND started_at_ms < {to_ms} GROUP BY 1"
    );
    support::psql_rows(url, &sql)
        .into_iter()
        .filter_map(|row| {
            let (node, n) = row.rsplit_once('|')?;
            Some((node.to_string(), n.parse().ok()?))
        })
        .collect()
}

/// The row of `name` in `node`'s `/api/v1/nodes`.
fn row(node: &NodeProc, name: &str) -> serde_json::Value {
    node.nodes()
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["name"] == name)
        .cloned()
        .unwrap_or_default()
}

fn redirects(node: &NodeProc, target: &str) -> f64 {
    node.metric(&format!("callfleet_redirects_total{{target=\"{target}\"}}"))
}

/// main-a, main-b (main) and extra-c (extra) on `db`, capacity 500 each.
fn start_nodes(dir: &Path, db: &str) -> Vec<NodeProc> {
    [
        ("main-a", "main", "127.0.36.11"),
        ("main-b", "main", "127.0.36.12"),
        ("extra-c", "extra", "127.0.36.13"),
    ]
    .into_iter()
    .map(|(name, role, ip)| {
        let spec = NodeSpec {
            name,
            role,
            ip,
            db,
            capacity: 500,
            extra: "",
        };
        NodeProc::start(dir, spec)
    })
    .collect()
}

/// Past the TTL, the peers are still in main-a's view and 60 calls (3 s each, 10 a second,
/// about 30 at once) spread over the three nodes; returns when they were placed (ms).
fn spread_while_held(
    dir: &Path,
    nodes: &[NodeProc],
    carrier: SocketAddr,
    cut: Instant,
) -> (i64, i64) {
    // Well past the TTL: every heartbeat main-a last read is stale.
    std::thread::sleep(TTL * 2);
    for peer in ["main-b", "extra-c"] {
        let seen = row(&nodes[0], peer);
        assert!(
            seen["heartbeat_age_ms"].as_i64().unwrap_or(0) < TTL.as_millis() as i64
                && seen["accepting"] == true,
            "{peer} stays in main-a's view on its probe answers {:?} into the outage: {seen}",
            cut.elapsed()
        );
    }
    let placed_from = now_ms();
    let burst = Burst {
        calls: 60,
        every_ms: 100,
        hold_ms: 3_000,
    };
    let spread = carrier_calls(dir, "held", carrier, "100", ("127.0.36.100", 5061), burst);
    let window = (placed_from, now_ms());
    assert_eq!(
        (spread.successful, spread.failed),
        (60, 0),
        "every call placed during the outage succeeds: {spread:?}"
    );
    let sent_b = redirects(&nodes[0], "main-b");
    let sent_c = redirects(&nodes[0], "extra-c");
    assert!(
        sent_b >= 12.0 && sent_c >= 12.0,
        "main-a spread the calls: {sent_b} to main-b, {sent_c} to extra-c"
    );
    window
}

/// Kills extra-c while calls arrive; main-a's probes exclude it, and the calls placed after
/// that all succeed on main-a and main-b. Returns the exclusion time and SIPp's figures for
/// the calls placed around the kill.
fn kill_and_exclude(
    dir: &Path,
    nodes: &mut [NodeProc],
    carrier: SocketAddr,
) -> (Duration, SippStats) {
    let cdir = dir.to_path_buf();
    let during = std::thread::spawn(move || {
        let burst = Burst {
            calls: 50,
            every_ms: 100,
            hold_ms: 1_000,
        };
        carrier_calls(&cdir, "kill", carrier, "100", ("127.0.36.101", 5062), burst)
    });
    std::thread::sleep(Duration::from_secs(2));
    nodes[2].kill9();
    let killed = Instant::now();
    let excluded = wait_until(Duration::from_secs(10), || {
        row(&nodes[0], "extra-c")["responding"] == false
    });
    let exclusion = killed.elapsed();
    assert!(excluded.is_some(), "never excluded: {}", nodes[0].nodes());
    assert!(
        exclusion <= PROBE_WINDOW + Duration::from_millis(500),
        "extra-c out of main-a's choice {exclusion:?} after kill -9"
    );
    let during = during.join().expect("sipp thread");
    assert_eq!(during.successful + during.failed, 50, "{during:?}");
    let to_c_then = redirects(&nodes[0], "extra-c");
    let to_b_then = redirects(&nodes[0], "main-b");
    let burst = Burst {
        calls: 40,
        every_ms: 100,
        hold_ms: 1_000,
    };
    let after = carrier_calls(dir, "after", carrier, "100", ("127.0.36.102", 5063), burst);
    assert_eq!(
        (after.successful, after.failed),
        (40, 0),
        "every call after the exclusion succeeds: {after:?}"
    );
    assert_eq!(
        redirects(&nodes[0], "extra-c"),
        to_c_then,
        "none to the dead node"
    );
    assert!(
        redirects(&nodes[0], "main-b") - to_b_then >= 10.0,
        "main-b still gets its share"
    );
    assert!(
        row(&nodes[0], "main-b")["accepting"] == true,
        "main-b still answers: {}",
        nodes[0].nodes()
    );
    (exclusion, during)
}

/// The database returns: heartbeats rule again, extra-c starts and replays its spool, every
/// spool drains.
fn recover(server: &PgServer, nodes: &mut [NodeProc]) {
    server.start_again();
    let fresh = wait_until(Duration::from_secs(10), || {
        let b = row(&nodes[0], "main-b");
        b["alive"] == true
            && b["heartbeat_age_ms"]
                .as_i64()
                .is_some_and(|age| age < 1_500)
    });
    assert!(fresh.is_some(), "main-b beats again: {}", nodes[0].nodes());
    nodes[2].spawn();
    wait_alive(&nodes[0], 3);
    let drained = wait_until(Duration::from_secs(30), || {
        nodes
            .iter()
            .all(|n| n.metric("callfleet_record_spool_records") == 0.0)
    });
    assert!(drained.is_some(), "every spool drained");
}

#[test]
fn calls_spread_over_the_nodes_that_answer_probes_while_the_database_is_down() {
    let _serial = serial();
    let dir = workdir("outage-spread");
    let server = PgServer::start("127.0.36.5", 5547);
    let mut nodes = start_nodes(&dir, &server.url);
    wait_alive(&nodes[0], 3);
    let carrier = Carrier::start(&dir, "127.0.36.1:5070", &[nodes[0].sip]);

    server.stop();
    let cut = Instant::now();
    let window = spread_while_held(&dir, &nodes, carrier.addr, cut);
    let (exclusion, during) = kill_and_exclude(&dir, &mut nodes, carrier.addr);
    let outage = cut.elapsed();
    recover(&server, &mut nodes);

    let per_node = cdrs_per_node(&server.url, window);
    let count = |name: &str| per_node.get(name).copied().unwrap_or(0);
    let counts = [count("main-a"), count("main-b"), count("extra-c")];
    println!(
        "outage spread: database down {outage:.1?}; 60 calls placed {:.1?}-{:.1?} into it \
         handled by main-a/main-b/extra-c: {counts:?} (from the CDRs); extra-c killed, out of \
         main-a's choice {exclusion:?} later; calls placed while it died: {} ok, {} failed; \
         40 calls after: all ok",
        TTL * 2,
        TTL * 2 + Duration::from_millis((window.1 - window.0) as u64),
        during.successful,
        during.failed,
    );
    assert_eq!(
        counts.iter().sum::<u64>(),
        60,
        "one CDR per call: {per_node:?}"
    );
    assert!(
        counts.iter().all(|&n| (14..=26).contains(&n)),
        "each node took its share of the 60 calls: {counts:?}"
    );
    for node in &nodes {
        assert!(!node.log_text().contains("panicked"), "{}", node.log_text());
    }
}
