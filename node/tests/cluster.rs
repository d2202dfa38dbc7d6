//! The cluster with real peers: three nodes (two main, one extra) on PostgreSQL behind the
//! Kamailio carrier from `peers/carrier`, calls placed by SIPp with `peers/sipp/carrier-call.xml`.
//! Calls spread over all nodes (the extra one only through 302s), the carrier fails over when a
//! main node is killed, and a full node's 503 sends the call elsewhere.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::uac::Uac;
use support::{
    peers, serial, sipp, wait_alive, wait_until, workdir, Carrier, NodeProc, NodeSpec, Pg,
};

fn three_nodes(dir: &std::path::Path, pg: &Pg, net: &str, capacity: u32) -> Vec<NodeProc> {
    [
        ("main-a", "main", 11),
        ("main-b", "main", 12),
        ("extra-c", "extra", 13),
    ]
    .into_iter()
    .map(|(name, role, host)| {
        let ip = format!("{net}.{host}");
        NodeProc::start(
            dir,
            NodeSpec {
                name,
                role,
                ip: &ip,
                db: &pg.url,
                capacity,
                extra: "",
            },
        )
    })
    .collect()
}

/// How many calls SIPp places, how many per second, and how long each lasts.
#[derive(Clone, Copy)]
struct Load {
    calls: u32,
    rate: u32,
    ms: u32,
}

/// Places calls through the carrier with `peers/sipp/carrier-call.xml` from `caller` (ip, port).
fn carrier_call(
    dir: &std::path::Path,
    tag: &str,
    carrier: SocketAddr,
    caller: (&str, &str),
    load: Load,
) -> support::SippStats {
    let (caller_ip, port) = caller;
    let Load { calls, rate, ms } = load;
    let scenario = peers().join("sipp/carrier-call.xml");
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
            "200",
            "-i",
            caller_ip,
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

fn cdrs_per_node(pg: &Pg, expected: usize) -> HashMap<String, usize> {
    let mut per = HashMap::new();
    wait_until(Duration::from_secs(10), || {
        per = pg
            .query("SELECT node, count(*) FROM cdrs WHERE hangup_cause = 'normal' GROUP BY node")
            .iter()
            .filter_map(|l| {
                l.split_once('|')
                    .map(|(n, c)| (n.to_string(), c.parse().unwrap_or(0)))
            })
            .collect();
        per.values().sum::<usize>() >= expected
    });
    per
}

/// The node the carrier tries first (Kamailio's dispatcher decides the order of its list): the
/// one that takes or redirects a probe call.
fn first_tried(
    dir: &std::path::Path,
    carrier: SocketAddr,
    caller_ip: &str,
    nodes: &[&NodeProc],
) -> usize {
    let before: Vec<f64> = nodes
        .iter()
        .map(|n| n.metric("callfleet_sip_requests_total{method=\"INVITE\"}"))
        .collect();
    let probe = carrier_call(
        dir,
        "probe",
        carrier,
        (caller_ip, "5069"),
        Load {
            calls: 1,
            rate: 1,
            ms: 100,
        },
    );
    assert_eq!(probe.successful, 1, "probe call: {probe:?}");
    let got: Vec<usize> = nodes
        .iter()
        .enumerate()
        .filter(|(i, n)| n.metric("callfleet_sip_requests_total{method=\"INVITE\"}") > before[*i])
        .map(|(i, _)| i)
        .collect();
    // A redirect makes the second node see the INVITE too; the first one redirected it.
    match got.as_slice() {
        [only] => *only,
        _ => got
            .iter()
            .copied()
            .find(|&i| nodes[i].metric("callfleet_calls_total{outcome=\"redirected\"}") > 0.0)
            .expect("one node redirected the probe"),
    }
}

#[test]
fn calls_spread_over_all_three_nodes_through_the_carrier() {
    let _serial = serial();
    let dir = workdir("spread");
    let pg = Pg::fresh("spread");
    let mut nodes = three_nodes(&dir, &pg, "127.0.1", 100);
    wait_alive(&nodes[0], 3);
    let carrier = Carrier::start(&dir, "127.0.1.1:5070", &[nodes[0].sip, nodes[1].sip]);
    let stats = carrier_call(
        &dir,
        "spread",
        carrier.addr,
        ("127.0.1.100", "5061"),
        Load {
            calls: 300,
            rate: 15,
            ms: 3000,
        },
    );
    assert_eq!((stats.successful, stats.failed), (300, 0), "{stats:?}");
    let per = cdrs_per_node(&pg, 300);
    assert_eq!(
        per.values().sum::<usize>(),
        300,
        "one CDR per call: {per:?}"
    );
    let extra_before = per.get("extra-c").copied().unwrap_or(0);
    for n in &nodes {
        let handled = per.get(&n.name).copied().unwrap_or(0);
        assert!(
            handled >= 60,
            "{} handled only {handled} of 300 calls: {per:?}",
            n.name
        );
    }
    // The extra node is never called directly: every call it took came by a 302.
    let direct =
        pg.query("SELECT count(*) FROM cdrs WHERE node = 'extra-c' AND redirected_from IS NULL");
    assert_eq!(direct, vec!["0".to_string()]);
    let redirected: f64 = nodes
        .iter()
        .map(|n| n.metric("callfleet_calls_total{outcome=\"redirected\"}"))
        .sum();
    assert!(
        redirected >= 60.0,
        "calls reached the extra node by 302: {redirected}"
    );

    // Drain the extra node: main nodes stop sending to it, and it exits 0 once idle.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_callfleet"))
        .args(["node", "drain", "--config"])
        .arg(&nodes[2].config)
        .output()
        .expect("run callfleet node drain");
    assert!(
        out.status.success(),
        "drain: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = nodes[2]
        .wait_exit(Duration::from_secs(15))
        .expect("drained extra node exits when idle");
    assert!(status.success(), "{status}");
    let seen = wait_until(Duration::from_secs(5), || {
        nodes[0]
            .nodes()
            .as_array()
            .into_iter()
            .flatten()
            .any(|n| n["name"] == "extra-c" && n["accepting"] == false)
    });
    assert!(
        seen.is_some(),
        "main-a still sees extra-c accepting: {}",
        nodes[0].nodes()
    );
    let more = carrier_call(
        &dir,
        "after-drain",
        carrier.addr,
        ("127.0.1.101", "5062"),
        Load {
            calls: 30,
            rate: 15,
            ms: 500,
        },
    );
    assert_eq!((more.successful, more.failed), (30, 0), "{more:?}");
    let per = cdrs_per_node(&pg, 330);
    assert_eq!(
        per.get("extra-c").copied().unwrap_or(0),
        extra_before,
        "no call reached the drained node: {per:?}"
    );
}

#[test]
fn carrier_fails_over_when_a_main_node_is_killed() {
    let _serial = serial();
    let dir = workdir("failover");
    let pg = Pg::fresh("failover");
    let mut nodes = three_nodes(&dir, &pg, "127.0.3", 100);
    wait_alive(&nodes[1], 3);
    let carrier = Carrier::start(&dir, "127.0.3.1:5070", &[nodes[0].sip, nodes[1].sip]);
    let first = first_tried(&dir, carrier.addr, "127.0.3.99", &[&nodes[0], &nodes[1]]);
    let (dead, live) = if first == 0 { (0, 1) } else { (1, 0) };
    let dead_name = nodes[dead].name.clone();
    let (cdir, caddr) = (dir.clone(), carrier.addr);
    let during = std::thread::spawn(move || {
        carrier_call(
            &cdir,
            "during",
            caddr,
            ("127.0.3.100", "5061"),
            Load {
                calls: 120,
                rate: 10,
                ms: 1000,
            },
        )
    });
    std::thread::sleep(Duration::from_secs(5));
    let (_, held) =
        support::http_get(nodes[dead].http, "/api/v1/calls").expect("calls of the node to kill");
    let held = serde_json::from_str::<serde_json::Value>(&held)
        .ok()
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or(0);
    nodes[dead].kill9();
    let killed = Instant::now();
    let seen_dead = wait_until(Duration::from_secs(10), || {
        nodes[live]
            .nodes()
            .as_array()
            .into_iter()
            .flatten()
            .any(|n| n["name"] == dead_name.as_str() && n["alive"] == false)
    });
    let ttl = Duration::from_secs(3);
    assert!(
        seen_dead.is_some(),
        "{dead_name} never shown dead: {}",
        nodes[live].nodes()
    );
    assert!(
        killed.elapsed() <= ttl + Duration::from_millis(1500),
        "{dead_name} shown dead after {:?} (ttl {ttl:?})",
        killed.elapsed()
    );
    let after = carrier_call(
        &dir,
        "after",
        carrier.addr,
        ("127.0.3.101", "5062"),
        Load {
            calls: 40,
            rate: 10,
            ms: 1000,
        },
    );
    assert_eq!(
        (after.successful, after.failed),
        (40, 0),
        "new calls after the kill: {after:?}"
    );
    let during = during.join().expect("sipp thread");
    assert_eq!(during.successful + during.failed, 120, "{during:?}");
    assert!(
        during.failed <= held as u64 + 5,
        "only calls held by {dead_name} may fail: {during:?}, held {held}"
    );
}

#[test]
fn a_full_node_answers_503_and_the_carrier_call_succeeds_elsewhere() {
    let _serial = serial();
    let dir = workdir("full");
    // Separate single-node clusters: a full main node then knows no other node to redirect to.
    let start = |name: &str, role: &str, host: u8| {
        let db = format!("sqlite://{}", dir.join(format!("{name}.db")).display());
        let ip = format!("127.0.4.{host}");
        NodeProc::start(
            &dir,
            NodeSpec {
                name,
                role,
                ip: &ip,
                db: &db,
                capacity: 1,
                extra: "",
            },
        )
    };
    let mains = [start("main-a", "main", 11), start("main-b", "main", 12)];
    let extra = start("extra-c", "extra", 13);
    let carrier = Carrier::start(&dir, "127.0.4.1:5070", &[mains[0].sip, mains[1].sip]);
    let first = first_tried(&dir, carrier.addr, "127.0.4.99", &[&mains[0], &mains[1]]);
    let (full, free) = (&mains[first], &mains[1 - first]);
    // Hold one long call on the node the carrier tries first, and on the extra node.
    let mut holders = vec![];
    for n in [full, &extra] {
        let mut uac = Uac::new("127.0.4.100", n.sip);
        uac.invite("100", &format!("hold-{}", n.name), None, "");
        let ok = uac
            .recv_final(Duration::from_secs(3))
            .expect("held call answered");
        assert_eq!(ok.status, 200);
        holders.push(uac);
    }
    // The extra node at capacity answers 503 with Retry-After.
    let mut probe = Uac::new("127.0.4.101", extra.sip);
    probe.invite("100", "probe-extra", None, "");
    let busy = probe
        .recv_final(Duration::from_secs(3))
        .expect("answer from the full extra node");
    assert_eq!(busy.status, 503, "{}", busy.text);
    assert!(busy.header("Retry-After").is_some(), "{}", busy.text);
    // Carrier calls: the full main node says 503, the carrier fails over, the call succeeds.
    let answered_before = free.metric("callfleet_calls_total{outcome=\"answered\"}");
    let stats = carrier_call(
        &dir,
        "full",
        carrier.addr,
        ("127.0.4.102", "5061"),
        Load {
            calls: 5,
            rate: 2,
            ms: 300,
        },
    );
    assert_eq!((stats.successful, stats.failed), (5, 0), "{stats:?}");
    let busy_sent = full.metric("callfleet_sip_responses_total{status=\"503\"}");
    assert!(
        busy_sent >= 5.0,
        "{} sent {busy_sent} 503s:\n{}",
        full.name,
        full.metrics()
    );
    assert_eq!(
        free.metric("callfleet_calls_total{outcome=\"answered\"}") - answered_before,
        5.0
    );
}
