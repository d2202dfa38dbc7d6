//! Even spread and fast exclusion, with real peers: three nodes of capacity 500 on PostgreSQL
//! behind the Kamailio carrier, calls placed by SIPp.
//! - At a steady 60 calls, all sent by the carrier to one main node first, each node holds its
//!   share (15–25 calls), and that node redirects about the two thirds an even spread needs.
//! - A node killed with `kill -9` while calls arrive is excluded by main-a's probes long before
//!   its heartbeat would expire, and every call placed after that succeeds.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::{
    peers, serial, sipp, wait_alive, wait_until, workdir, Carrier, NodeProc, NodeSpec, Pg,
    SippStats,
};

/// Starts main-a, main-b and extra-c on `NET.11`–`.13`, each with `extra_heartbeat` added to its
/// `[heartbeat]` section.
fn three_nodes(dir: &std::path::Path, pg: &Pg, net: &str, extra_heartbeat: &str) -> Vec<NodeProc> {
    [
        ("main-a", "main", 11),
        ("main-b", "main", 12),
        ("extra-c", "extra", 13),
    ]
    .into_iter()
    .map(|(name, role, host)| {
        let ip = format!("{net}.{host}");
        let mut node = NodeProc::configure(
            dir,
            NodeSpec {
                name,
                role,
                ip: &ip,
                db: &pg.url,
                capacity: 500,
                extra: "",
            },
        );
        let text = std::fs::read_to_string(&node.config).expect("read config");
        let text = text.replacen(
            "[heartbeat]\n",
            &format!("[heartbeat]\n{extra_heartbeat}"),
            1,
        );
        std::fs::write(&node.config, text).expect("write config");
        node.spawn();
        node
    })
    .collect()
}

/// `calls` calls of `ms` at `rate` per second through the carrier from `caller`.
fn carrier_calls(
    dir: &std::path::Path,
    tag: &str,
    carrier: SocketAddr,
    caller: (&str, &str),
    (calls, rate, ms): (u32, u32, u32),
) -> SippStats {
    let scenario = peers().join("sipp/carrier-call.xml");
    let (ip, port) = caller;
    sipp(
        dir,
        tag,
        &[
            "-sf",
            scenario.to_str().expect("utf-8 path"),
            "-s",
            "100",
            "-d",
            &ms.to_string(),
            "-r",
            &rate.to_string(),
            "-m",
            &calls.to_string(),
            "-l",
            "500",
            "-i",
            ip,
            "-p",
            port,
            "-timeout",
            "120",
            "-max_retrans",
            "10",
            &carrier.to_string(),
        ],
    )
}

/// Calls each node holds right now, from its own `/api/v1/calls`.
fn held(nodes: &[NodeProc]) -> Vec<f64> {
    nodes
        .iter()
        .map(|n| {
            support::http_get(n.http, "/api/v1/calls")
                .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
                .and_then(|v| v.as_array().map(|a| a.len() as f64))
                .unwrap_or(0.0)
        })
        .collect()
}

#[test]
fn steady_load_spreads_evenly_over_three_nodes() {
    let _serial = serial();
    let dir = workdir("even-spread");
    let pg = Pg::fresh("even_spread");
    let nodes = three_nodes(&dir, &pg, "127.0.21", "");
    wait_alive(&nodes[0], 3);
    let carrier = Carrier::start(&dir, "127.0.21.1:5070", &[nodes[0].sip, nodes[1].sip]);
    // 4 calls a second of 15 s each: 60 calls in progress from 15 s on, for 35 s.
    let (cdir, caddr) = (dir.clone(), carrier.addr);
    let load = std::thread::spawn(move || {
        carrier_calls(
            &cdir,
            "steady",
            caddr,
            ("127.0.21.100", "5061"),
            (200, 4, 15_000),
        )
    });
    std::thread::sleep(Duration::from_secs(18));
    let mut samples = Vec::new();
    for _ in 0..28 {
        samples.push(held(&nodes));
        std::thread::sleep(Duration::from_secs(1));
    }
    let stats = load.join().expect("sipp thread");
    assert_eq!((stats.successful, stats.failed), (200, 0), "{stats:?}");
    let n = samples.len() as f64;
    let means: Vec<f64> = (0..3)
        .map(|i| samples.iter().map(|s| s[i]).sum::<f64>() / n)
        .collect();
    let total: f64 = means.iter().sum();
    let (lo, hi) = means
        .iter()
        .fold((f64::MAX, 0f64), |(lo, hi), &m| (lo.min(m), hi.max(m)));
    let within = samples
        .iter()
        .filter(|s| s.iter().all(|&c| (15.0..=25.0).contains(&c)))
        .count() as f64
        / n;
    // The carrier tries one main node first; that node decides every call.
    let redirected: f64 = nodes[..2]
        .iter()
        .map(|n| n.metric("callfleet_calls_total{outcome=\"redirected\"}"))
        .sum();
    let invites = stats.successful as f64;
    println!(
        "steady spread: means {means:.1?} (total {total:.1}), max/min {:.2}, samples with every \
         node at 15-25 calls {:.0} %, {redirected} of {invites} calls redirected ({:.2})",
        hi / lo,
        within * 100.0,
        redirected / invites
    );
    assert!(total > 50.0, "steady load reached: {samples:?}");
    assert!(hi / lo <= 1.2, "means {means:?}: {samples:?}");
    assert!(within >= 0.8, "samples at 15-25 calls: {samples:?}");
    assert!(
        (0.5..=0.75).contains(&(redirected / invites)),
        "{redirected} of {invites} calls redirected: an even spread needs about two thirds"
    );
}

#[test]
fn a_killed_node_gets_no_calls_once_probes_exclude_it() {
    let _serial = serial();
    let dir = workdir("probe-exclusion");
    let pg = Pg::fresh("probe_exclusion");
    // A long heartbeat TTL: without probes a dead node would get calls for 20 s.
    let mut nodes = three_nodes(&dir, &pg, "127.0.22", "ttl = \"20s\"\n");
    wait_alive(&nodes[0], 3);
    let carrier = Carrier::start(&dir, "127.0.22.1:5070", &[nodes[0].sip, nodes[1].sip]);
    let (cdir, caddr) = (dir.clone(), carrier.addr);
    let during = std::thread::spawn(move || {
        carrier_calls(
            &cdir,
            "during",
            caddr,
            ("127.0.22.100", "5061"),
            (100, 10, 2_000),
        )
    });
    std::thread::sleep(Duration::from_secs(5));
    nodes[2].kill9();
    let killed = Instant::now();
    let excluded = wait_until(Duration::from_secs(10), || {
        nodes[0]
            .nodes()
            .as_array()
            .into_iter()
            .flatten()
            .any(|n| n["name"] == "extra-c" && n["responding"] == false)
    });
    let window = killed.elapsed();
    assert!(excluded.is_some(), "never excluded: {}", nodes[0].nodes());
    let view = nodes[0].nodes();
    let still_alive = view
        .as_array()
        .into_iter()
        .flatten()
        .any(|n| n["name"] == "extra-c" && n["alive"] == true);
    assert!(
        still_alive,
        "the heartbeat still says alive, so the probes excluded it: {view}"
    );
    let redirects_then = nodes[0].metric("callfleet_redirects_total{target=\"extra-c\"}");
    let after = carrier_calls(
        &dir,
        "after",
        carrier.addr,
        ("127.0.22.101", "5062"),
        (40, 10, 1_000),
    );
    let during = during.join().expect("sipp thread");
    println!(
        "exclusion: extra-c out of main-a's choice {window:?} after kill -9; calls placed while \
         it died: {} ok, {} failed; after: {} ok, {} failed",
        during.successful, during.failed, after.successful, after.failed
    );
    assert_eq!(
        (after.successful, after.failed),
        (40, 0),
        "every call after the exclusion succeeds: {after:?}"
    );
    assert_eq!(
        nodes[0].metric("callfleet_redirects_total{target=\"extra-c\"}"),
        redirects_then,
        "no redirect to the dead node after its exclusion"
    );
    assert!(
        nodes[0].metric("callfleet_peer_exclusions_total{target=\"extra-c\"}") >= 1.0,
        "{}",
        nodes[0].metrics()
    );
    assert_eq!(during.successful + during.failed, 100, "{during:?}");
}
