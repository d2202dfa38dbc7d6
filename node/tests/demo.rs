//! `callfleet demo` as a visitor meets it: within 10 s of the start the panel snapshot shows
//! callers waiting, agents ringing or talking, and calls on more than one node (the carrier
//! followed the main node's 302s); a listen-in request on a demo call is accepted (202) and the
//! demo's supervisor phone hears the caller in it; SIPp with the carrier scenario that follows
//! 302s completes every call through the cluster; Ctrl-C stops the traffic and every child
//! process, leaving none behind. Addresses: the demo's own, 127.0.0.10-13 and 127.0.0.21-30;
//! SIPp on 127.0.0.31.

mod support;

use std::time::Duration;

use support::demo::{alive, children_of, talking_call, Demo};
use support::{http_get, serial, wait_until, workdir};

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
    let mut demo = Demo::start(&dir);
    if let Err(why) = demo.wait_lively(Duration::from_secs(10)) {
        panic!("the panel was not alive 10 s after the start: {why}");
    }
    assert!(
        demo.traffic_log().contains(" 302, then "),
        "the carrier followed a 302:\n{}",
        demo.traffic_log()
    );

    // Listen in on a call that talks to an agent, through main-b: the demo's phone 2900
    // answers and hears the caller.
    let call_id = talking_call(Duration::from_secs(10)).expect("a demo call talking to an agent");
    let (code, body) = demo.operator_post(
        "main-b",
        &format!("/api/v1/calls/{call_id}/listen"),
        r#"{"device":"2900"}"#,
    );
    assert_eq!(code, 202, "listen on {call_id}: {body}");
    let mut heard = None;
    wait_until(Duration::from_secs(15), || {
        heard = supervisor_heard(&demo.traffic_log());
        heard.is_some()
    });
    let (packets, caller_frames) = heard.unwrap_or_else(|| {
        panic!(
            "the supervisor's phone did not report the call:\n{}",
            demo.traffic_log()
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
    let children = children_of(demo.pid());
    assert_eq!(children.len(), 4, "lockd and three nodes: {children:?}");
    let status = demo.interrupt();
    assert!(status.success(), "demo exit status {status}");
    let out = demo.out();
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
