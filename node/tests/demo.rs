//! `callfleet demo` as a visitor meets it: within 10 s of the start the panel snapshot shows
//! callers waiting, agents ringing or talking, and calls on more than one node (the carrier
//! followed the main node's 302s); a listen-in request on a demo call is accepted (202) and the
//! demo's supervisor phone hears the caller in it; SIPp with the carrier scenario that follows
//! 302s completes every call through the cluster; Ctrl-C stops the traffic and every child
//! process, leaving none behind. Addresses: the demo's own, 127.0.0.10-13 and 127.0.0.21-30;
//! SIPp on 127.0.0.31.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{http_get, http_post_json, serial, wait_until, workdir};

/// The pids whose parent is `pid` (from /proc).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            // "pid (comm) state ppid ...": the comm may hold spaces, so split after ')'.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                == Some(pid)
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

fn snapshot() -> Option<Value> {
    let (code, body) = http_get("127.0.0.11:8080".parse().ok()?, "/api/v1/panel/snapshot")?;
    (code == 200).then(|| serde_json::from_str(&body).ok())?
}

/// What the snapshot shows: (callers waiting, agents ringing or talking, nodes holding calls).
fn liveliness(s: &Value) -> (i64, usize, usize) {
    let waiting = s["queues"]
        .as_array()
        .map_or(0, |q| q.iter().filter_map(|q| q["waiting"].as_i64()).sum());
    let busy = s["agents"].as_array().map_or(0, |a| {
        a.iter()
            .filter(|a| a["state"] == "ringing" || a["state"] == "in_call")
            .count()
    });
    let mut nodes: Vec<&str> = s["calls"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["node"].as_str()).collect())
        .unwrap_or_default();
    nodes.sort_unstable();
    nodes.dedup();
    (waiting, busy, nodes.len())
}

fn traffic_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("traffic.log")).unwrap_or_default()
}

/// The numbers in a "phone 2900 hears the call: N RTP packets received, the caller (440 Hz)
/// in K frames" line: (N, K).
fn supervisor_heard(log: &str) -> Option<(u64, u64)> {
    let line = log
        .lines()
        .find(|l| l.contains("phone 2900 hears the call:"))?;
    let packets = line
        .split("hears the call: ")
        .nth(1)?
        .split(' ')
        .next()?
        .parse()
        .ok()?;
    let caller = line
        .split("the caller (440 Hz) in ")
        .nth(1)
        .and_then(|r| r.split(' ').next()?.parse().ok())
        .unwrap_or(0);
    Some((packets, caller))
}

#[test]
fn the_demo_is_alive_within_10_s_listen_works_and_ctrl_c_leaves_nothing_behind() {
    let _serial = serial();
    let dir = workdir("demo");
    let started = Instant::now();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_callfleet"))
        .args(["demo", "--dir"])
        .arg(&dir)
        .stdout(std::fs::File::create(dir.join("demo.out")).expect("create demo.out"))
        .stderr(Stdio::null())
        .spawn()
        .expect("start the demo");
    let mut last = Value::Null;
    let mut lively = false;
    while started.elapsed() < Duration::from_secs(10) {
        if let Some(s) = snapshot() {
            let (waiting, busy, nodes) = liveliness(&s);
            last = s;
            if waiting > 0 && busy > 0 && nodes > 1 {
                lively = true;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if !lively {
        let _ = demo.kill();
        panic!(
            "the panel was not alive 10 s after the start: {:?}\n{last:#}\ntraffic:\n{}",
            liveliness(&last),
            traffic_log(&dir)
        );
    }
    assert!(
        traffic_log(&dir).contains(" 302, then "),
        "the carrier followed a 302:\n{}",
        traffic_log(&dir)
    );

    // Listen in on a call that talks to an agent, through main-b: the demo's phone 2900
    // answers and hears the caller.
    let mut talking = None;
    wait_until(Duration::from_secs(10), || {
        talking = snapshot().and_then(|s| {
            s["calls"].as_array()?.iter().find_map(|c| {
                (c["state"] == "talking").then(|| c["call_id"].as_str().map(str::to_owned))?
            })
        });
        talking.is_some()
    });
    let call_id = talking.expect("a demo call talking to an agent");
    let (code, body) = http_post_json(
        "127.0.0.12:8080".parse().expect("address"),
        &format!("/api/v1/calls/{call_id}/listen"),
        r#"{"device":"2900"}"#,
    )
    .expect("listen request answered");
    assert_eq!(code, 202, "listen on {call_id}: {body}");
    let mut heard = None;
    wait_until(Duration::from_secs(15), || {
        heard = supervisor_heard(&traffic_log(&dir));
        heard.is_some()
    });
    let (packets, caller_frames) = heard.unwrap_or_else(|| {
        panic!(
            "the supervisor's phone did not report the call:\n{}",
            traffic_log(&dir)
        )
    });
    assert!(
        packets > 0 && caller_frames > 0,
        "the supervisor's phone heard {packets} packets, the caller in {caller_frames} frames"
    );

    // SIPp as a carrier, with the scenario that follows 302s (README's command, shorter):
    // every call succeeds, and main-a redirected some of them.
    let main_a = "127.0.0.11:8080".parse().expect("address");
    let redirects = |text: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with("callfleet_redirects_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let before = redirects(&http_get(main_a, "/metrics").expect("metrics").1);
    let scenario = support::peers().join("sipp/carrier-302.xml");
    let stats = support::sipp(
        &dir,
        "carrier-302",
        &[
            "-sf",
            scenario.to_str().expect("UTF-8 path"),
            "-s",
            "sales",
            "-d",
            "3000",
            "-r",
            "5",
            "-m",
            "10",
            "-i",
            "127.0.0.31",
            "-timeout",
            "60",
            "127.0.0.11:5060",
        ],
    );
    let after = redirects(&http_get(main_a, "/metrics").expect("metrics").1);
    assert_eq!(
        (stats.successful, stats.failed),
        (10, 0),
        "SIPp through the demo cluster (see sipp-carrier-302.* in {})",
        dir.display()
    );
    assert!(
        after > before,
        "main-a sent no 302 to SIPp ({before} -> {after})"
    );

    // Ctrl-C: the traffic hangs up, the nodes and lockd stop, the demo exits cleanly.
    let children = children_of(demo.id());
    assert_eq!(children.len(), 4, "lockd and three nodes: {children:?}");
    let sent = Command::new("kill")
        .args(["-INT", &demo.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success());
    let stopped = wait_until(Duration::from_secs(40), || {
        matches!(demo.try_wait(), Ok(Some(_)))
    });
    if stopped.is_none() {
        let _ = demo.kill();
        panic!("the demo did not stop on Ctrl-C");
    }
    let status = demo.wait().expect("exit status");
    assert!(status.success(), "demo exit status {status}");
    let out = std::fs::read_to_string(dir.join("demo.out")).unwrap_or_default();
    assert!(
        out.contains("traffic: ") && out.contains("demo stopped"),
        "{out}"
    );
    let left: Vec<u32> = children.into_iter().filter(|p| alive(*p)).collect();
    assert!(left.is_empty(), "processes left after Ctrl-C: {left:?}");
    for ip in ["127.0.0.11", "127.0.0.12", "127.0.0.13"] {
        let addr = format!("{ip}:8080").parse().expect("address");
        assert!(http_get(addr, "/healthz").is_none(), "{ip} still answers");
    }
    // The simulated phones' and the carrier's SIP ports are free again.
    for ip in ["127.0.0.21", "127.0.0.29", "127.0.0.30"] {
        assert!(
            std::net::UdpSocket::bind(format!("{ip}:5060")).is_ok(),
            "{ip}:5060 still taken"
        );
    }
}
