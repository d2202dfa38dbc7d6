//! Tests for the API node row: liveness at request time and the JSON shape.

use std::time::Duration;

use super::*;
use crate::testutil::{node, NodeExt, NOW};

const TTL: Duration = Duration::from_secs(6);

#[test]
fn liveness_is_judged_at_report_time() {
    struct Case {
        what: &'static str,
        row: NodeStatus,
        now: i64,
        alive: bool,
        accepting: bool,
        age: i64,
    }
    let cases = [
        Case {
            what: "fresh",
            row: node("n", 1, 1, 10),
            now: NOW + 100,
            alive: true,
            accepting: true,
            age: 100,
        },
        Case {
            what: "just stale",
            row: node("n", 1, 1, 10),
            now: NOW + 6_000,
            alive: false,
            accepting: false,
            age: 6_000,
        },
        Case {
            what: "draining",
            row: node("n", 1, 1, 10).draining(),
            now: NOW,
            alive: true,
            accepting: false,
            age: 0,
        },
        Case {
            what: "refusing",
            row: node("n", 1, 1, 10).refusing(),
            now: NOW,
            alive: true,
            accepting: false,
            age: 0,
        },
        Case {
            what: "shed 3",
            row: node("n", 1, 1, 10).shed(3),
            now: NOW,
            alive: true,
            accepting: false,
            age: 0,
        },
        Case {
            what: "fresh but not answering probes",
            row: node("n", 1, 1, 10),
            now: NOW,
            alive: true,
            accepting: false,
            age: 0,
        },
        Case {
            what: "clock ahead",
            row: node("n", 1, 1, 10),
            now: NOW - 500,
            alive: true,
            accepting: true,
            age: -500,
        },
    ];
    for c in cases {
        let responding = c.what != "fresh but not answering probes";
        let r = NodeReport::from_status(&c.row, c.now, TTL, 0, responding);
        assert_eq!(
            (r.alive, r.accepting, r.heartbeat_age_ms),
            (c.alive, c.accepting, c.age),
            "{}",
            c.what
        );
    }
}

#[test]
fn json_has_the_agreed_fields_with_string_addresses() {
    let report = NodeReport::from_status(
        &node("main-a", 11, 3, 500).role(Role::Extra),
        NOW + 250,
        TTL,
        2,
        true,
    );
    let json = serde_json::to_value(&report).ok();
    let want = serde_json::json!({
        "name": "main-a", "role": "extra", "sip": "127.0.0.11:5060", "http": "127.0.0.11:8080",
        "alive": true, "accepting": true, "responding": true, "calls": 3, "capacity": 500, "pending": 2,
        "cpu": 12.5, "load1": 0.25, "shed_level": 0, "draining": false, "refusing": false,
        "heartbeat_age_ms": 250, "generation": 1, "services": "sip,media,lb,web",
        "version": "0.1.0", "mem_used_kb": 1024, "mem_total_kb": 4096,
    });
    assert_eq!(json, Some(want));
}

#[test]
fn json_round_trips() {
    let report = NodeReport::from_status(&node("b", 12, 7, 9), NOW, TTL, 1, false);
    let text = serde_json::to_string(&report).unwrap_or_default();
    assert_eq!(serde_json::from_str::<NodeReport>(&text).ok(), Some(report));
}
