//! A rolling upgrade under load, with real peers: three nodes on PostgreSQL behind the
//! Kamailio carrier (which knows main-a and main-b), SIPp placing calls all along; each node in
//! turn gets SIGTERM (it drains), exits once its calls have ended, and is started again from
//! another copy of the binary (the "new version"), rejoining before the next one goes. Not
//! one call fails, and no call is hung up by a node.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::{
    carrier_calls, serial, wait_alive, wait_until, workdir, Burst, Carrier, NodeProc, NodeSpec, Pg,
};

fn nodes(dir: &Path, pg: &Pg) -> Vec<NodeProc> {
    [
        ("main-a", "main", "127.0.33.11"),
        ("main-b", "main", "127.0.33.12"),
        ("extra-c", "extra", "127.0.33.13"),
    ]
    .into_iter()
    .map(|(name, role, ip)| {
        let spec = NodeSpec {
            name,
            role,
            ip,
            db: &pg.url,
            capacity: 100,
            extra: "",
        };
        NodeProc::start(dir, spec)
    })
    .collect()
}

/// `name`'s row in `from`'s view: (generation, version, accepting).
fn row(from: &NodeProc, name: &str) -> Option<(i64, String, bool)> {
    from.nodes().as_array()?.iter().find_map(|n| {
        (n["name"] == name).then(|| {
            (
                n["generation"].as_i64().unwrap_or(0),
                n["version"].as_str().unwrap_or_default().to_owned(),
                n["accepting"] == true,
            )
        })
    })
}

/// The executable a process runs.
fn exe(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

#[test]
fn every_node_drained_upgraded_and_restarted_in_turn_under_load_fails_no_call() {
    let _serial = serial();
    let dir = workdir("rolling-upgrade");
    let pg = Pg::fresh("rolling_upgrade");
    let mut nodes = nodes(&dir, &pg);
    wait_alive(&nodes[0], 3);
    let carrier = Carrier::start(&dir, "127.0.33.1:5070", &[nodes[0].sip, nodes[1].sip]);
    let new_binary = dir.join("v2").join("callfleet");
    std::fs::create_dir_all(new_binary.parent().expect("parent")).expect("mkdir v2");
    std::fs::copy(env!("CARGO_BIN_EXE_callfleet"), &new_binary).expect("copy the new binary");

    // 5 calls a second of 3 s each, for 50 s: about 15 calls up all along.
    let (cdir, caddr) = (dir.clone(), carrier.addr);
    let load = std::thread::spawn(move || {
        let burst = Burst {
            calls: 250,
            every_ms: 200,
            hold_ms: 3000,
        };
        carrier_calls(
            &cdir,
            "rolling",
            caddr,
            "100",
            ("127.0.33.100", 5061),
            burst,
        )
    });
    std::thread::sleep(Duration::from_secs(5));

    // extra-c, then main-b, then main-a (the carrier's first choice); each is watched from a
    // main node that stays up meanwhile.
    for (i, watcher) in [(2, 0), (1, 0), (0, 1)] {
        let name = nodes[i].name.clone();
        let (generation, version, _) = row(&nodes[watcher], &name).expect("node in the view");
        let calls_before = nodes[i].metric("callfleet_calls_active");
        let started = Instant::now();
        nodes[i].signal("TERM");
        let status = nodes[i]
            .wait_exit(Duration::from_secs(30))
            .expect("the drained node exits");
        assert!(status.success(), "{name}: {status}");
        let drained = started.elapsed();
        nodes[i].spawn_binary(&new_binary);
        let back = wait_until(Duration::from_secs(15), || {
            row(&nodes[watcher], &name).is_some_and(|(g, _, ok)| g > generation && ok)
        });
        assert!(back.is_some(), "{name} back: {}", nodes[watcher].nodes());
        let (_, new_version, _) = row(&nodes[watcher], &name).expect("node in the view");
        let pid = nodes[i].pid().expect("running");
        assert_eq!(
            exe(pid),
            new_binary.display().to_string(),
            "{name} runs the new binary"
        );
        println!(
            "rolling upgrade: {name} ({calls_before} calls) drained and exited in {drained:.1?}, \
             version {version} -> {new_version}, taking calls again {:.1?} after SIGTERM",
            started.elapsed()
        );
    }
    let stats = load.join().expect("sipp thread");
    println!("rolling upgrade: {stats:?}");
    assert_eq!(stats.failed, 0, "no call failed: {stats:?}");
    assert_eq!(stats.successful, 250, "{stats:?}");
    let causes = pg.query("SELECT hangup_cause, count(*) FROM cdrs GROUP BY 1 ORDER BY 1");
    assert_eq!(causes, ["normal|250"], "every call ended by its caller");
    for node in &nodes {
        assert!(!node.log_text().contains("panicked"), "{}", node.log_text());
    }
    wait_alive(&nodes[0], 3);
}
