//! Node-local alerts end to end: a real node on PostgreSQL, each condition made for real, the
//! notifications caught by an SMTP sink and a webhook receiver of the test's own.
//!
//! - `lockd_unreachable`: one of the node's two lockds killed (`-9`), a warning; the other
//!   too, critical; then both started again.
//! - `shed_high`: a node of capacity 4 filled with four calls (shed level 2) for longer than
//!   `shed_after`, then the calls hung up.
//! - `auth_bans`: REGISTERs with wrong passwords from two loopback addresses until the node
//!   banned more sources and extensions than `ban_count` within `ban_window`, then the window
//!   passes.
//!
//! Each test prints how long the alert took to come and to be resolved (the operations
//! guide's "Monitor" table).

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::alerting::Sinks;
use support::lockd::{memcached, Lockd};
use support::phone::device_add;
use support::raw_phone::RawPhone;
use support::uac::{Resp, Uac};
use support::{serial, wait_alive, wait_until, workdir, NodeProc, NodeSpec, Pg};

/// A main node `name` on `ip` with `capacity` and `extra` (whole sections).
fn node(dir: &Path, pg: &Pg, (name, ip): (&str, &str), capacity: u32, extra: &str) -> NodeProc {
    let node = NodeProc::start(
        dir,
        NodeSpec {
            name,
            role: "main",
            ip,
            db: &pg.url,
            capacity,
            extra,
        },
    );
    wait_alive(&node, 1);
    node
}

/// The `lockd_unreachable` notices about the lockd at `url` with `status`.
fn about(sinks: &Sinks, status: &str, url: &str) -> Vec<serde_json::Value> {
    let subject = format!("lockd-a {url}");
    sinks
        .of("lockd_unreachable", status)
        .into_iter()
        .filter(|n| n["subject"] == subject.as_str())
        .collect()
}

#[test]
fn lockds_that_stop_answering_are_alerted_then_resolved_once_they_are_back() {
    let _serial = serial();
    let dir = workdir("alerts-lockd");
    let pg = Pg::fresh("alerts_lockd");
    let backend = format!("memcached://{}", memcached());
    let listen = ["127.0.39.10:7070", "127.0.39.11:7070"];
    let mut first = Lockd::start(&dir, listen[0], &backend);
    let mut second = Lockd::start(&dir, listen[1], &backend);
    let (url1, url2) = (first.url.clone(), second.url.clone());
    let sinks = Sinks::start("127.0.39.20:2525", "127.0.39.21:8080");
    let rules = sinks.toml("lockd_after = \"3s\"");
    let extra = format!("[lock]\nurls = [\"{url1}\", \"{url2}\"]\n{rules}");
    let _node = node(&dir, &pg, ("lockd-a", "127.0.39.1"), 10, &extra);
    assert!(
        sinks.quiet_for(Duration::from_secs(3)),
        "nothing to tell while both lockds answer: {:#?}",
        sinks.notices()
    );

    // One of two stops answering: a warning about that one.
    second.kill9();
    let killed = Instant::now();
    let warning = format!("WARNING: node lockd-a cannot reach lockd at {url2}\n");
    sinks.expect(
        Duration::from_secs(20),
        ("lockd_unreachable", "firing", 1),
        &warning,
    );
    let warned = killed.elapsed();
    assert!(
        warned >= Duration::from_secs(3),
        "not before lockd_after: {warned:?}"
    );
    let notice = &about(&sinks, "firing", &url2)[0];
    assert_eq!(
        (notice["node"].as_str(), notice["severity"].as_str()),
        (Some("lockd-a"), Some("warning"))
    );

    // Neither answers: the first is alerted critical, the second's alert escalated.
    first.kill9();
    let all_down = Instant::now();
    let message = format!("node lockd-a cannot reach lockd at {url1} (nor any other)");
    sinks.expect(
        Duration::from_secs(20),
        ("lockd_unreachable", "firing", 3),
        &format!("CRITICAL: {message}"),
    );
    let critical = all_down.elapsed();
    let raised = about(&sinks, "firing", &url1);
    assert_eq!(raised.len(), 1, "{raised:#?}");
    assert_eq!(
        (
            raised[0]["severity"].as_str(),
            raised[0]["message"].as_str()
        ),
        (Some("critical"), Some(message.as_str()))
    );
    let escalated = about(&sinks, "firing", &url2);
    assert_eq!(
        (
            escalated[1]["change"].as_str(),
            escalated[1]["severity"].as_str()
        ),
        (Some("escalated"), Some("critical"))
    );

    drop((first, second));
    let _back = [
        Lockd::start(&dir, listen[0], &backend),
        Lockd::start(&dir, listen[1], &backend),
    ];
    let back = Instant::now();
    let resolved = format!("RESOLVED: node lockd-a cannot reach lockd at {url1}");
    sinks.expect(
        Duration::from_secs(20),
        ("lockd_unreachable", "resolved", 2),
        &resolved,
    );
    let resolved = back.elapsed();
    for url in [&url1, &url2] {
        assert_eq!(about(&sinks, "resolved", url).len(), 1, "{url}");
    }
    assert_eq!(sinks.notices().len(), 5, "{:#?}", sinks.notices());
    println!(
        "lockd: warning {warned:?} after one of two was killed, critical {critical:?} after \
         the other (lockd_after 3s), resolved {resolved:?} after their restart (clear_after 3s)"
    );
}

fn shed_level(node: &NodeProc) -> f64 {
    node.metric("callfleet_shed_level ")
}

/// An answered call from `ip` to the node's echo service `100`.
fn call(ip: &str, node: &NodeProc, call_id: &str) -> (Uac, Resp) {
    let mut uac = Uac::new(ip, node.sip);
    let ok = uac
        .answered("100", call_id, Duration::from_secs(5))
        .expect("the call is answered");
    (uac, ok)
}

#[test]
fn a_node_shedding_at_level_two_is_alerted_then_resolved_when_its_calls_end() {
    let _serial = serial();
    let dir = workdir("alerts-shed");
    let pg = Pg::fresh("alerts_shed");
    let sinks = Sinks::start("127.0.39.30:2525", "127.0.39.31:8080");
    let extra = sinks.toml("shed_after = \"3s\"");
    let n = node(&dir, &pg, ("shed-a", "127.0.39.2"), 4, &extra);

    // Four calls of four: the node is full, shed level 2.
    let mut calls: Vec<(Uac, Resp, String)> = (0..4)
        .map(|i| {
            let call_id = format!("alert-shed-{i}");
            let (uac, ok) = call(&format!("127.0.39.{}", 40 + i), &n, &call_id);
            (uac, ok, call_id)
        })
        .collect();
    let full = wait_until(Duration::from_secs(10), || shed_level(&n) == 2.0);
    assert!(
        full.is_some(),
        "level 2 with 4 calls of 4: {}",
        n.log_text()
    );
    let leveled = Instant::now();
    let subject = "WARNING: node shed-a is shedding load (level 2)";
    sinks.expect(Duration::from_secs(15), ("shed_high", "firing", 1), subject);
    let raised = leveled.elapsed();
    assert!(
        raised >= Duration::from_secs(2),
        "not long before shed_after (3 s): {raised:?}"
    );
    let notice = &sinks.of("shed_high", "firing")[0];
    assert_eq!(
        (notice["node"].as_str(), notice["severity"].as_str()),
        (Some("shed-a"), Some("warning"))
    );

    for (uac, ok, call_id) in &mut calls {
        uac.in_dialog("BYE", call_id, ok, None);
    }
    let hung_up = Instant::now();
    let fell = wait_until(Duration::from_secs(10), || shed_level(&n) == 0.0);
    assert!(fell.is_some(), "the level fell: {}", n.log_text());
    sinks.expect(
        Duration::from_secs(15),
        ("shed_high", "resolved", 1),
        "RESOLVED: node shed-a is shedding load",
    );
    let resolved = hung_up.elapsed();
    assert_eq!(sinks.notices().len(), 2, "{:#?}", sinks.notices());
    assert_eq!(sinks.smtp.mails().len(), 2, "{:#?}", sinks.smtp.mails());
    println!(
        "shed: raised {raised:?} after level 2 (shed_after 3s), resolved {resolved:?} after \
         the calls ended (clear_after 3s)"
    );
}

/// Bans the node made so far (source and extension).
fn bans(node: &NodeProc) -> f64 {
    ["source", "subject"]
        .iter()
        .map(|scope| {
            node.metric(&format!(
                "callfleet_auth_bans_total{{kind=\"register\",scope=\"{scope}\"}}"
            ))
        })
        .sum()
}

/// Wrong passwords for `ext` from `ip` until the node bans both (at most 6 tries).
fn guess(node: &NodeProc, ip: &str, ext: &str, bans_before: f64) {
    let mut thief = RawPhone::new(ip, node.sip, ext, "not-the-password");
    for _ in 0..6 {
        let answer = thief.register().expect("an answer to a REGISTER");
        assert_eq!(answer.status, 403, "{}", answer.text);
        if bans(node) >= bans_before + 2.0 {
            return;
        }
    }
    panic!("{ip} guessing {ext} was not banned: {}", node.metrics());
}

#[test]
fn repeated_bans_for_wrong_passwords_are_alerted_then_resolved_after_the_window() {
    let _serial = serial();
    let dir = workdir("alerts-bans");
    let pg = Pg::fresh("alerts_bans");
    let sinks = Sinks::start("127.0.39.50:2525", "127.0.39.51:8080");
    let window = Duration::from_secs(10);
    let extra = format!(
        "[registrar]\nmax_failures = 3\nalgorithms = [\"MD5\"]\n{}",
        sinks.toml(&format!(
            "ban_count = 3\nban_window = \"{}s\"",
            window.as_secs()
        ))
    );
    let n = node(&dir, &pg, ("bans-a", "127.0.39.3"), 10, &extra);
    device_add(&n, "1001", "secret-1001", false);
    device_add(&n, "1002", "secret-1002", false);

    // One address guessing one extension: two bans, under the count.
    guess(&n, "127.0.39.60", "1001", 0.0);
    let first = Instant::now();
    assert_eq!(bans(&n), 2.0, "{}", n.metrics());
    assert!(
        sinks.quiet_for(Duration::from_secs(3)),
        "two bans of three: {:#?}",
        sinks.notices()
    );

    // Another address, another extension: four bans within the window.
    guess(&n, "127.0.39.61", "1002", 2.0);
    let banned = Instant::now();
    let subject = "WARNING: node bans-a banned";
    sinks.expect(Duration::from_secs(10), ("auth_bans", "firing", 1), subject);
    let raised = banned.elapsed();
    let notice = &sinks.of("auth_bans", "firing")[0];
    assert_eq!(
        (notice["node"].as_str(), notice["severity"].as_str()),
        (Some("bans-a"), Some("warning"))
    );
    let message = notice["message"].as_str().unwrap_or_default().to_owned();
    assert!(
        message.contains("for wrong credentials in 10 s"),
        "{message}"
    );

    // No more guesses: once the first two bans are older than the window, two are left in it,
    // under the count, and the alert ends.
    sinks.expect(
        window + Duration::from_secs(15),
        ("auth_bans", "resolved", 1),
        "RESOLVED: node bans-a banned",
    );
    let resolved = first.elapsed();
    assert!(
        resolved >= window,
        "not before the first bans left the window: {resolved:?}"
    );
    assert_eq!(sinks.notices().len(), 2, "{:#?}", sinks.notices());
    assert_eq!(sinks.smtp.mails().len(), 2, "{:#?}", sinks.smtp.mails());
    println!(
        "bans: {message:?} raised {raised:?} after the fourth ban, resolved {resolved:?} after \
         the first (ban_window 10s, clear_after 3s)"
    );
}
