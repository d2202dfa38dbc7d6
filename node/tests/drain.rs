//! Stopping a node with real calls up: SIGTERM drains (new calls refused, calls in progress
//! end normally, then the node exits 0), `node.drain_timeout` bounds it (the calls left are
//! hung up), and `callfleet health` says at each step what keepalived needs to know:
//! running, draining, not running.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{
    carrier_calls, serial, wait_alive, wait_until, workdir, Burst, NodeProc, NodeSpec, Pg,
};

/// One main node on `ip`, with `drain_timeout` in `[node]`.
fn node(dir: &Path, pg: &Pg, ip: &str, drain_timeout: &str) -> NodeProc {
    let mut node = NodeProc::configure(
        dir,
        NodeSpec {
            name: "main-a",
            role: "main",
            ip,
            db: &pg.url,
            capacity: 50,
            extra: "",
        },
    );
    let text = std::fs::read_to_string(&node.config).expect("read config");
    let text = text.replacen(
        "[node]\n",
        &format!("[node]\ndrain_timeout = \"{drain_timeout}\"\n"),
        1,
    );
    std::fs::write(&node.config, text).expect("write config");
    node.spawn();
    node
}

/// `callfleet health --config CONFIG`: (exit code, the line it printed).
fn health(config: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_callfleet"))
        .args(["health", "--config"])
        .arg(config)
        .output()
        .expect("run callfleet health");
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.code().unwrap_or(-1), line)
}

fn calls_held(node: &NodeProc) -> usize {
    support::http_get(node.http, "/api/v1/calls")
        .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or(0)
}

/// `hangup_cause|count` rows of the CDRs.
fn causes(pg: &Pg) -> Vec<String> {
    pg.query("SELECT hangup_cause, count(*) FROM cdrs GROUP BY hangup_cause ORDER BY 1")
}

#[test]
fn sigterm_lets_calls_finish_and_health_follows_each_state() {
    let _serial = serial();
    let dir = workdir("sigterm-drain");
    let pg = Pg::fresh("sigterm_drain");
    let mut node = node(&dir, &pg, "127.0.31.11", "30s");
    wait_alive(&node, 1);
    let (code, line) = health(&node.config);
    assert_eq!(code, 0, "{line}");
    assert!(
        line.starts_with("main-a: ready: 0 of 50 calls in progress"),
        "{line}"
    );

    // Four calls of 5 s, straight to the node.
    let (cdir, target) = (dir.clone(), node.sip);
    let calls = std::thread::spawn(move || {
        let burst = Burst {
            calls: 4,
            every_ms: 100,
            hold_ms: 5000,
        };
        carrier_calls(&cdir, "held", target, "100", ("127.0.31.100", 5061), burst)
    });
    let up = wait_until(Duration::from_secs(10), || calls_held(&node) == 4);
    assert!(up.is_some(), "4 calls up");
    node.signal("TERM");
    let termed = Instant::now();
    let draining = wait_until(Duration::from_secs(3), || health(&node.config).0 == 2);
    assert!(draining.is_some(), "health never said draining");
    let (_, line) = health(&node.config);
    assert!(line.starts_with("main-a: draining: no new calls"), "{line}");
    let refused = carrier_calls(
        &dir,
        "refused",
        node.sip,
        "100",
        ("127.0.31.101", 5062),
        Burst {
            calls: 1,
            every_ms: 100,
            hold_ms: 100,
        },
    );
    assert_eq!(
        (refused.successful, refused.failed),
        (0, 1),
        "a new call is refused"
    );
    assert_eq!(calls_held(&node), 4, "the calls in progress are still up");

    let status = node
        .wait_exit(Duration::from_secs(20))
        .expect("node exits after its calls");
    let took = termed.elapsed();
    assert!(status.success(), "{status}");
    let held = calls.join().expect("sipp thread");
    assert_eq!((held.successful, held.failed), (4, 0), "{held:?}");
    assert_eq!(
        causes(&pg),
        ["normal|4"],
        "the callers hung up, not the node"
    );
    let (code, line) = health(&node.config);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.starts_with("main-a: not running: nothing answers at"),
        "{line}"
    );
    println!("SIGTERM with 4 calls up: the node exited {took:?} later, once they had ended");

    // Killed: health says not running too.
    node.spawn();
    let (code, line) = health(&node.config);
    assert_eq!(code, 0, "{line}");
    node.kill9();
    let (code, line) = health(&node.config);
    assert_eq!(code, 1, "{line}");
    assert!(line.contains("not running"), "{line}");
    assert!(!node.log_text().contains("panicked"), "{}", node.log_text());
}

#[test]
fn a_drain_ends_at_its_limit_and_hangs_up_the_calls_left() {
    let _serial = serial();
    let dir = workdir("drain-limit");
    let pg = Pg::fresh("drain_limit");
    let mut node = node(&dir, &pg, "127.0.31.21", "2s");
    wait_alive(&node, 1);
    let (cdir, target) = (dir.clone(), node.sip);
    let calls = std::thread::spawn(move || {
        let burst = Burst {
            calls: 3,
            every_ms: 100,
            hold_ms: 30_000,
        };
        carrier_calls(&cdir, "long", target, "100", ("127.0.31.110", 5061), burst)
    });
    let up = wait_until(Duration::from_secs(10), || calls_held(&node) == 3);
    assert!(up.is_some(), "3 calls up");
    let termed = Instant::now();
    node.signal("TERM");
    let status = node
        .wait_exit(Duration::from_secs(15))
        .expect("node exits at its limit");
    let took = termed.elapsed();
    assert!(status.success(), "{status}");
    assert!(
        took >= Duration::from_secs(2),
        "not before the limit: {took:?}"
    );
    let _ = calls.join();
    let counted = wait_until(Duration::from_secs(5), || {
        causes(&pg) == ["node_shutdown|3"]
    });
    assert!(counted.is_some(), "{:?}", causes(&pg));
    assert!(
        node.log_text().contains("drain limit reached"),
        "{}",
        node.log_text()
    );
}

#[test]
fn ctrl_c_still_hangs_up_at_once() {
    let _serial = serial();
    let dir = workdir("sigint-stop");
    let pg = Pg::fresh("sigint_stop");
    let mut node = node(&dir, &pg, "127.0.31.31", "5m");
    wait_alive(&node, 1);
    let (cdir, target) = (dir.clone(), node.sip);
    let calls = std::thread::spawn(move || {
        let burst = Burst {
            calls: 2,
            every_ms: 100,
            hold_ms: 30_000,
        };
        carrier_calls(&cdir, "int", target, "100", ("127.0.31.120", 5061), burst)
    });
    let up = wait_until(Duration::from_secs(10), || calls_held(&node) == 2);
    assert!(up.is_some(), "2 calls up");
    node.signal("INT");
    let status = node
        .wait_exit(Duration::from_secs(10))
        .expect("node stops at once");
    assert!(status.success(), "{status}");
    let _ = calls.join();
    let counted = wait_until(Duration::from_secs(5), || {
        causes(&pg) == ["node_shutdown|2"]
    });
    assert!(counted.is_some(), "{:?}", causes(&pg));
}
