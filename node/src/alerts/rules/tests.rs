//! The rules, table-driven: inputs in, conditions (key, severity) out.

use std::time::Duration;

use callfleet_store::{AlertKind, Carrier, CarrierTraffic, Severity};
use callfleet_web::snapshot::{NodeView, QueueView};

use super::*;
use crate::alerts::engine::{Condition, Key};
use crate::alerts::hours::OpenHours;

use Severity::{Critical, Warning};

fn keys(conds: &[Condition]) -> Vec<(String, Severity)> {
    conds
        .iter()
        .map(|c| (c.key.subject.clone(), c.severity))
        .collect()
}

fn node(name: &str, alive: bool, draining: bool) -> NodeView {
    NodeView {
        name: name.to_owned(),
        role: "main".to_owned(),
        alive,
        heartbeat_age_ms: if alive { 500 } else { 60_000 },
        calls: 0,
        capacity: 10,
        cpu_pct: 0.0,
        load1: 0.0,
        shed_level: 0,
        draining,
        refusing: false,
        spark_calls: Vec::new(),
        spark_cpu: Vec::new(),
    }
}

#[test]
fn node_down_names_dead_nodes_but_not_itself_nor_a_clean_stop() {
    let nodes = [
        node("a", true, false),
        node("b", false, false),
        node("c", false, true),
        node("me", false, false),
        node("d", true, true),
    ];
    let got = node_down(&nodes, "me");
    assert_eq!(keys(&got), vec![("b".to_owned(), Critical)]);
    assert_eq!(got[0].key.kind, AlertKind::NodeDown);
    assert_eq!(got[0].node.as_deref(), Some("b"));
    assert!(got[0].message.contains("node b stopped heartbeating"));
}

#[test]
fn database_and_shed() {
    assert_eq!(database("a", false), None);
    let db = database("a", true).expect("failing");
    assert_eq!(
        (db.key.kind, db.severity),
        (AlertKind::DatabaseUnreachable, Critical)
    );
    let cases = [
        (0, None),
        (1, None),
        (2, Some(Warning)),
        (3, Some(Critical)),
    ];
    for (lvl, want) in cases {
        assert_eq!(shed("a", lvl).map(|c| c.severity), want, "level {lvl}");
    }
}

#[test]
fn lockd_is_critical_only_when_none_answers() {
    let probe = |url: &str, ok| LockdProbe {
        url: url.to_owned(),
        ok,
    };
    let cases = [
        (vec![], vec![]),
        (
            vec![probe("http://x", true), probe("http://y", true)],
            vec![],
        ),
        (
            vec![probe("http://x", false), probe("http://y", true)],
            vec![("a http://x".to_owned(), Warning)],
        ),
        (
            vec![probe("http://x", false), probe("http://y", false)],
            vec![
                ("a http://x".to_owned(), Critical),
                ("a http://y".to_owned(), Critical),
            ],
        ),
    ];
    for (probes, want) in cases {
        assert_eq!(keys(&lockd("a", &probes)), want, "{probes:?}");
    }
}

#[test]
fn levels_have_hysteresis() {
    let t = Thresholds {
        warning_pct: 85.0,
        critical_pct: 95.0,
    };
    // (pct, firing now, want)
    let cases = [
        (50.0, None, None),
        (84.9, None, None),
        (85.0, None, Some(Warning)),
        (95.0, None, Some(Critical)),
        (84.0, Some(Warning), Some(Warning)),
        (82.9, Some(Warning), None),
        (93.5, Some(Critical), Some(Critical)),
        (92.9, Some(Critical), Some(Warning)),
        (83.5, Some(Critical), Some(Warning)),
        (94.0, Some(Warning), Some(Warning)),
    ];
    for (pct, current, want) in cases {
        assert_eq!(level(pct, t, current), want, "{pct}% while {current:?}");
    }
}

#[test]
fn disk_and_spool_use_their_thresholds() {
    let t = Thresholds {
        warning_pct: 85.0,
        critical_pct: 95.0,
    };
    let uses = [
        DiskUse {
            dir: "/var/vm".to_owned(),
            used_pct: 86.2,
        },
        DiskUse {
            dir: "/srv".to_owned(),
            used_pct: 40.0,
        },
        DiskUse {
            dir: "/rec".to_owned(),
            used_pct: 93.9,
        },
    ];
    let firing_rec = |k: &Key| (k.subject == "a /rec").then_some(Critical);
    let got = disk("a", &uses, t, firing_rec);
    assert_eq!(
        keys(&got),
        vec![
            ("a /var/vm".to_owned(), Warning),
            ("a /rec".to_owned(), Critical)
        ]
    );
    assert!(
        got[0].message.contains("/var/vm on node a is 86 % full"),
        "{}",
        got[0].message
    );

    let st = Thresholds {
        warning_pct: 50.0,
        critical_pct: 90.0,
    };
    assert_eq!(spool("a", None, st, None), None, "no spool, no alert");
    assert_eq!(spool("a", Some(49.0), st, None), None);
    assert_eq!(
        spool("a", Some(50.0), st, None).map(|c| c.severity),
        Some(Warning)
    );
    assert_eq!(
        spool("a", Some(91.0), st, None).map(|c| c.severity),
        Some(Critical)
    );
    assert_eq!(
        spool("a", Some(48.5), st, Some(Warning)).map(|c| c.severity),
        Some(Warning)
    );
}

fn queue(name: &str, recent_calls: i64, level: Option<f64>) -> QueueView {
    QueueView {
        name: name.to_owned(),
        strategy: callfleet_store::Strategy::RingAll,
        waiting: 0,
        longest_wait_ms: None,
        members: 0,
        available: 0,
        busy: 0,
        paused: 0,
        logged_out: 0,
        by_state: [0; 7],
        answered_today: 0,
        abandoned_today: 0,
        transferred_today: 0,
        service_level: None,
        recent_calls,
        recent_service_level: level,
    }
}

#[test]
fn service_level_below_target_with_enough_calls() {
    let t = ServiceTarget {
        target: 0.8,
        min_calls: 10,
        threshold_s: 20,
    };
    let queues = [
        queue("quiet", 3, Some(0.0)),
        queue("fine", 40, Some(0.9)),
        queue("slow", 40, Some(0.6)),
        queue("none", 0, None),
        queue("edge", 20, Some(0.81)),
    ];
    let got = service_level(&queues, t, |_| false);
    assert_eq!(keys(&got), vec![("slow".to_owned(), Warning)]);
    assert!(
        got[0]
            .message
            .contains("answered 60 % of 40 calls within 20 s"),
        "{}",
        got[0].message
    );
    assert_eq!(got[0].node, None);
    // While firing, "edge" at 81 % has not climbed 2 points above the target yet.
    let got = service_level(&queues, t, |k| k.subject == "edge");
    assert_eq!(
        keys(&got),
        vec![("slow".to_owned(), Warning), ("edge".to_owned(), Warning)]
    );
    let off = ServiceTarget { target: 0.0, ..t };
    assert!(service_level(&queues, off, |_| false).is_empty());
}

fn carrier(name: &str, created_at_ms: i64) -> Carrier {
    Carrier {
        name: name.to_owned(),
        network: "192.0.2.0/24".to_owned(),
        created_at_ms,
    }
}

fn heard(carrier: &str, node: &str, at: i64) -> CarrierTraffic {
    CarrierTraffic {
        carrier: carrier.to_owned(),
        node: node.to_owned(),
        last_invite_at_ms: at,
    }
}

#[test]
fn carriers_are_silent_only_during_open_hours() {
    let days: Vec<String> = ["mon", "tue", "wed", "thu", "fri"]
        .map(str::to_owned)
        .to_vec();
    let hours = OpenHours::parse("08:00-18:00", &days, "UTC").expect("hours");
    let monday = 1_717_372_800_000; // 2024-06-03 00:00 UTC
    let at = |h: i64, m: i64| monday + (h * 60 + m) * 60_000;
    let carriers = [
        carrier("acme", 0),
        carrier("busy", 0),
        carrier("new", at(9, 0)),
    ];
    let traffic = [
        heard("acme", "a", at(7, 0)),
        heard("busy", "a", at(8, 10)),
        heard("busy", "b", at(9, 55)),
    ];
    let silence = Duration::from_secs(30 * 60);
    // (moment, silent carriers)
    let cases: [(i64, Vec<&str>); 5] = [
        (at(7, 59), vec![]),
        (at(8, 29), vec![]),
        (at(8, 30), vec!["acme"]),
        (at(10, 0), vec!["acme", "new"]),
        (at(18, 0), vec![]),
    ];
    for (now, want) in cases {
        let got: Vec<String> = carrier_silent(&carriers, &traffic, &hours, silence, now)
            .into_iter()
            .map(|c| c.key.subject)
            .collect();
        assert_eq!(got, want, "at {now}");
    }
    assert!(carrier_silent(&carriers, &traffic, &hours, Duration::ZERO, at(10, 0)).is_empty());
}

#[test]
fn silence_is_told_in_seconds_then_minutes() {
    let cases = [
        (-5, "0 s"),
        (0, "0 s"),
        (6_900, "6 s"),
        (59_999, "59 s"),
        (60_000, "1 minute"),
        (119_999, "1 minute"),
        (120_000, "2 minutes"),
        (5_400_000, "90 minutes"),
    ];
    for (ms, want) in cases {
        assert_eq!(silence_text(ms), want, "{ms} ms");
    }
}

#[test]
fn bans_over_a_rolling_window() {
    let window = Duration::from_secs(600);
    let mut w = RateWindow::default();
    // (seconds, counter, growth over the window)
    let samples = [
        (0, 5, 0),
        (60, 10, 5),
        (300, 30, 25),
        (600, 31, 26),
        (660, 31, 21),
        (1300, 31, 0),
        (1310, 2, 2),
    ];
    for (t, total, want) in samples {
        assert_eq!(w.sample(t * 1000, total, window), want, "at {t}s");
    }
    assert_eq!(bans("a", 19, 20, window), None);
    let c = bans("a", 20, 20, window).expect("over");
    assert_eq!((c.key.kind, c.severity), (AlertKind::AuthBans, Warning));
    assert!(
        c.message
            .contains("banned 20 sources or subjects for wrong credentials in 10 minutes"),
        "{}",
        c.message
    );
    let short = bans("a", 3, 3, Duration::from_secs(20)).expect("over");
    assert!(short.message.ends_with("in 20 s"), "{}", short.message);
    assert_eq!(bans("a", 500, 0, window), None, "0 turns it off");
}
