//! The record spool filling, end to end: a node with a 1 MB spool on a PostgreSQL server of
//! the test's own. The server is stopped and SIPp places calls to the node, whose records
//! (live-call rows, CDRs, RTP quality) wait in the spool: the spool passes 50 % (a warning by
//! e-mail and webhook), then 90 % (escalated to critical); the server comes back, the spool is
//! replayed into it, and the alert is resolved.

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::alerting::Sinks;
use support::pgserver::PgServer;
use support::{carrier_calls, serial, wait_alive, wait_until, workdir, Burst, NodeProc, NodeSpec};

/// Calls SIPp places in one round, and the most rounds.
const ROUND: u32 = 50;
const MAX_ROUNDS: u32 = 60;

/// How full the node's spool is, in percent of its capacity.
fn fill_pct(node: &NodeProc) -> f64 {
    let metrics = node.metrics();
    let gauge = |name: &str| {
        metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|v| v.trim().parse::<f64>().ok())
            })
            .unwrap_or(0.0)
    };
    let capacity = gauge("callfleet_record_spool_capacity_bytes ");
    assert!(capacity > 0.0, "the node reports its spool's capacity");
    gauge("callfleet_record_spool_bytes ") * 100.0 / capacity
}

/// Rounds of calls placed by a thread until stopped (also when the test fails).
struct Load {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl Load {
    /// The calls answered, once the round in progress is over.
    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take().expect("the calls' thread");
        thread.join().expect("the calls' thread")
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Rounds of calls to `sip` until stopped (or [`MAX_ROUNDS`]).
fn load(dir: PathBuf, sip: std::net::SocketAddr) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let thread = std::thread::spawn(move || {
        let stop = stopped;
        let burst = Burst {
            calls: ROUND,
            every_ms: 10,
            hold_ms: 100,
        };
        let mut answered = 0;
        for round in 0..MAX_ROUNDS {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let tag = format!("spool-{round}");
            let caller = ("127.0.39.72", 5061);
            let stats = carrier_calls(&dir, &tag, sip, "100", caller, burst);
            assert!(stats.successful > 0, "round {round}: {stats:?}");
            answered += stats.successful;
        }
        answered
    });
    Load {
        stop,
        thread: Some(thread),
    }
}

/// Waits until the spool is `pct` full: when it was seen so.
fn until_full(node: &NodeProc, pct: f64) -> Instant {
    let reached = wait_until(Duration::from_secs(180), || fill_pct(node) >= pct);
    assert!(
        reached.is_some(),
        "the spool never reached {pct} %: {:.1} %",
        fill_pct(node)
    );
    Instant::now()
}

/// The node `spool-a` with a spool of 1 MB and the alerts of `extra`.
fn spool_node(dir: &Path, db: &str, extra: &str) -> NodeProc {
    let spec = NodeSpec {
        name: "spool-a",
        role: "main",
        ip: "127.0.39.4",
        db,
        capacity: 200,
        extra,
    };
    let mut node = NodeProc::configure(dir, spec);
    let text = std::fs::read_to_string(&node.config).expect("read the config");
    assert!(
        text.contains("[records]\n"),
        "the test config has [records]"
    );
    let text = text.replace("[records]\n", "[records]\nspool_max_mb = 1\n");
    std::fs::write(&node.config, text).expect("write the config");
    node.spawn();
    node
}

#[test]
fn a_filling_record_spool_is_alerted_at_half_then_nine_tenths_and_resolved_by_the_replay() {
    let _serial = serial();
    let dir = workdir("alerts-spool");
    let server = PgServer::start("127.0.39.5", 5549);
    let sinks = Sinks::start("127.0.39.70:2525", "127.0.39.71:8080");
    let node = spool_node(&dir, &server.url, &sinks.toml("database_after = \"3s\""));
    wait_alive(&node, 1);
    assert!(fill_pct(&node) < 1.0, "an empty spool to start with");

    server.stop();
    let calls = load(dir.clone(), node.sip);
    let half = until_full(&node, 50.0);
    let warning = "WARNING: record spool of node spool-a is";
    sinks.expect(
        Duration::from_secs(10),
        ("spool_filling", "firing", 1),
        warning,
    );
    let raised = half.elapsed();
    let notice = &sinks.of("spool_filling", "firing")[0];
    assert_eq!(
        (notice["node"].as_str(), notice["severity"].as_str()),
        (Some("spool-a"), Some("warning"))
    );
    let message = notice["message"].as_str().unwrap_or_default().to_owned();

    let nine_tenths = until_full(&node, 90.0);
    let answered = calls.stop();
    let critical = "CRITICAL: record spool of node spool-a is";
    sinks.expect(
        Duration::from_secs(10),
        ("spool_filling", "firing", 2),
        critical,
    );
    let escalated = nine_tenths.elapsed();
    let notice = &sinks.of("spool_filling", "firing")[1];
    assert_eq!(
        (notice["change"].as_str(), notice["severity"].as_str()),
        (Some("escalated"), Some("critical"))
    );
    let full = fill_pct(&node);

    server.start_again();
    let back = Instant::now();
    let resolved_subject = "RESOLVED: record spool of node spool-a is";
    sinks.expect(
        Duration::from_secs(60),
        ("spool_filling", "resolved", 1),
        resolved_subject,
    );
    let resolved = back.elapsed();
    assert!(fill_pct(&node) < 48.0, "replayed: {:.1} %", fill_pct(&node));
    let kinds: Vec<_> = sinks
        .notices()
        .iter()
        .map(|n| n["kind"].as_str().unwrap_or_default().to_owned())
        .filter(|k| k != "database_unreachable")
        .collect();
    assert_eq!(kinds.len(), 3, "raised, escalated, resolved: {kinds:?}");
    let mails = sinks.mailed("record spool of node spool-a");
    assert_eq!(mails.len(), 3, "{mails:#?}");
    println!(
        "spool: {message:?} raised {raised:?} after the gauge showed 50 %, escalated \
         {escalated:?} after 90 %, resolved {resolved:?} after the database came back \
         ({answered} calls answered during the outage, spool {full:.0} % full)"
    );
}
