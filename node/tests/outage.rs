//! A database outage under load, with real peers: three nodes on a PostgreSQL server of the
//! test's own behind the Kamailio carrier, SIPp placing 10 calls a second all along. The
//! server is stopped (`pg_ctl -m immediate`, connections cut) for 60 s; meanwhile one node is
//! killed with SIGKILL while its spool holds records the database never saw, and an attempt
//! to start it again without the database fails cleanly, its spool untouched. Once the server
//! is back the node starts and replays its spool first. Afterwards every call SIPp completed
//! has exactly one CDR, and no call has two.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::pgserver::PgServer;
use support::{peers, serial, sipp, wait_alive, wait_until, workdir, Carrier, NodeProc, NodeSpec};

/// SIPp's pace and the outage's timeline.
const CALLS: u32 = 900;
const EVERY_MS: u32 = 100;
const HOLD_MS: u32 = 2000;
const BEFORE: Duration = Duration::from_secs(10);
const OUTAGE: Duration = Duration::from_secs(60);
/// When, in the outage, the node is killed.
const KILL_AFTER: Duration = Duration::from_secs(15);

fn nodes(dir: &Path, db: &str) -> Vec<NodeProc> {
    [
        ("main-a", "main", "127.0.35.11"),
        ("main-b", "main", "127.0.35.12"),
        ("extra-c", "extra", "127.0.35.13"),
    ]
    .into_iter()
    .map(|(name, role, ip)| {
        let spec = NodeSpec {
            name,
            role,
            ip,
            db,
            capacity: 100,
            extra: "",
        };
        NodeProc::start(dir, spec)
    })
    .collect()
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Starts `node`'s binary once more and waits for it to exit (bounded): (success, stderr).
fn start_expecting_exit(node: &NodeProc) -> (bool, String) {
    let out = Command::new("timeout")
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_callfleet"))
        .args(["node", "--config"])
        .arg(&node.config)
        .env("RUST_LOG", "info,sqlx=warn,rsipstack=warn")
        .output()
        .expect("run callfleet node");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_database_outage_with_a_node_killed_loses_no_call_record_and_writes_none_twice() {
    let _serial = serial();
    let dir = workdir("outage");
    let server = PgServer::start("127.0.35.5", 5546);
    let mut nodes = nodes(&dir, &server.url);
    wait_alive(&nodes[0], 3);
    let carrier = Carrier::start(&dir, "127.0.35.1:5070", &[nodes[0].sip, nodes[1].sip]);

    let (sdir, caddr) = (dir.clone(), carrier.addr);
    let log_file = dir.join("sipp-completed.log");
    let sipp_log = log_file.clone();
    let load = std::thread::spawn(move || {
        let scenario = peers().join("sipp/logged-call.xml");
        let limit = (CALLS * EVERY_MS + HOLD_MS) / 1000 + 60;
        sipp(
            &sdir,
            "outage",
            &[
                "-sf",
                scenario.to_str().expect("utf-8 path"),
                "-s",
                "100",
                "-d",
                &HOLD_MS.to_string(),
                "-r",
                "1",
                "-rp",
                &EVERY_MS.to_string(),
                "-m",
                &CALLS.to_string(),
                "-l",
                "200",
                "-i",
                "127.0.35.100",
                "-p",
                "5061",
                "-timeout",
                &limit.to_string(),
                "-max_retrans",
                "10",
                "-trace_logs",
                "-log_file",
                sipp_log.to_str().expect("utf-8 path"),
                &caddr.to_string(),
            ],
        )
    });
    std::thread::sleep(BEFORE);

    server.stop();
    let cut = Instant::now();
    std::thread::sleep(KILL_AFTER);
    // extra-c takes calls all through the outage (the main nodes' probes keep it in their
    // view); the CDRs of those that ended are in its spool only.
    let spool = dir.join("spool").join("extra-c.spool");
    let spooled = file_len(&spool);
    assert!(
        spooled > 0,
        "extra-c spooled its records: {}",
        nodes[2].log_text()
    );
    let killed_with = nodes[2].metric("callfleet_record_spool_records");
    nodes[2].kill9();
    let (ok, stderr) = start_expecting_exit(&nodes[2]);
    assert!(!ok, "a node cannot start without its database: {stderr}");
    assert!(
        stderr.contains("connect to the database"),
        "says why: {stderr}"
    );
    assert!(
        file_len(&spool) >= spooled,
        "the failed start left the spool as it was"
    );
    let main_spooled = nodes[0].metric("callfleet_record_spool_records");
    std::thread::sleep(OUTAGE.saturating_sub(cut.elapsed()));

    server.start_again();
    let outage = cut.elapsed();
    nodes[2].spawn();
    let log = nodes[2].log_text();
    assert!(
        log.contains("replaying the call records an earlier run left in the spool"),
        "{log}"
    );
    assert!(log.contains("spool replayed"), "{log}");

    let stats = load.join().expect("sipp thread");
    let drained = wait_until(Duration::from_secs(60), || {
        nodes
            .iter()
            .all(|n| n.metric("callfleet_record_spool_records") == 0.0)
    });
    assert!(drained.is_some(), "every spool drained");

    let completed: Vec<String> = std::fs::read_to_string(&log_file)
        .expect("SIPp's log of completed calls")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("completed ").map(str::to_string))
        .collect();
    assert_eq!(completed.len() as u64, stats.successful, "{stats:?}");
    let cdrs: HashMap<String, u64> =
        support::psql_rows(&server.url, "SELECT call_id, count(*) FROM cdrs GROUP BY 1")
            .into_iter()
            .filter_map(|row| {
                let (id, n) = row.rsplit_once('|')?;
                Some((id.to_string(), n.parse().ok()?))
            })
            .collect();
    let twice: Vec<_> = cdrs.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "calls with more than one CDR: {twice:?}");
    let missing: Vec<_> = completed
        .iter()
        .filter(|id| !cdrs.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "completed calls without a CDR: {missing:?}"
    );
    let from_extra = support::psql_rows(
        &server.url,
        "SELECT count(*) FROM cdrs WHERE node = 'extra-c'",
    );
    let rejected: f64 = nodes
        .iter()
        .map(|n| n.metric("callfleet_records_total{outcome=\"rejected\"}"))
        .sum();
    assert_eq!(rejected, 0.0, "no record refused");
    for node in &nodes {
        assert!(!node.log_text().contains("panicked"), "{}", node.log_text());
    }
    println!(
        "outage: {stats:?}; database down {outage:.1?}; {} calls completed, each with one CDR \
         ({} CDRs in all, {} from extra-c); extra-c killed with {killed_with} records \
         ({spooled} bytes) in its spool, replayed at its restart; main-a held {main_spooled} \
         records in its spool at that time",
        completed.len(),
        cdrs.len(),
        from_extra.first().map(String::as_str).unwrap_or("?"),
    );
    wait_alive(&nodes[0], 3);
}
