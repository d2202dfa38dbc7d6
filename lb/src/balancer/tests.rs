//! Tests for the shared balancer: pending counts across decisions, view swaps, snapshots.

use std::collections::HashMap;

use super::*;
use crate::testutil::{node, NodeExt, NOW};

const ME: &str = "main-a";

fn balancer(role: Role) -> Balancer {
    Balancer::new(ME, role, LbConfig::default())
}

/// This node cannot take calls, so every unmarked INVITE is redirected or refused.
fn full() -> LocalLoad {
    LocalLoad {
        calls: 100,
        capacity: 100,
        refusing: false,
        draining: false,
    }
}

fn idle() -> LocalLoad {
    LocalLoad {
        calls: 0,
        capacity: 100,
        refusing: false,
        draining: false,
    }
}

fn three_equal_peers() -> Vec<NodeStatus> {
    vec![
        node("main-b", 12, 0, 100),
        node("main-c", 13, 0, 100),
        node("extra-d", 14, 0, 100).role(Role::Extra),
    ]
}

/// Runs `n` decisions and counts them: redirect targets by name, plus "handle" and "refuse".
fn tally(lb: &Balancer, n: usize, local: LocalLoad) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for _ in 0..n {
        let key = match lb.decide(false, local) {
            Decision::Handle => "handle".to_owned(),
            Decision::Refuse => "refuse".to_owned(),
            Decision::Redirect { name, .. } => name,
        };
        *counts.entry(key).or_default() += 1;
    }
    counts
}

#[test]
fn defaults_match_the_config_reference() {
    let config = LbConfig::default();
    assert_eq!(
        (config.ttl, config.hysteresis),
        (Duration::from_secs(6), 0.10)
    );
    let lb = balancer(Role::Main);
    assert_eq!(
        (lb.self_name(), lb.role(), lb.config()),
        (ME, Role::Main, config)
    );
}

#[test]
fn pending_spreads_a_burst_across_equal_nodes() {
    let lb = balancer(Role::Main);
    lb.replace_view(three_equal_peers(), NOW);
    let counts = tally(&lb, 100, full());
    for name in ["main-b", "main-c", "extra-d"] {
        let got = counts.get(name).copied().unwrap_or(0);
        assert!(got >= 25, "{name} got {got} of 100: {counts:?}");
        assert_eq!(lb.pending(name) as usize, got, "{name}");
    }
    assert_eq!(counts.values().sum::<usize>(), 100);
}

#[test]
fn redirect_carries_the_target_sip_address() {
    let lb = balancer(Role::Main);
    lb.replace_view(vec![node("main-b", 12, 0, 100)], NOW);
    let want = Decision::Redirect {
        name: "main-b".to_owned(),
        sip: "127.0.0.12:5060".parse().expect("literal address"),
    };
    assert_eq!(lb.decide(false, full()), want);
}

#[test]
fn replace_view_resets_pending() {
    let lb = balancer(Role::Main);
    let rows = vec![node("main-b", 12, 0, 10)];
    lb.replace_view(rows.clone(), NOW);
    let counts = tally(&lb, 12, full());
    assert_eq!(
        (counts.get("main-b"), counts.get("refuse")),
        (Some(&10), Some(&2)),
        "{counts:?}"
    );
    assert_eq!(lb.pending("main-b"), 10);

    lb.replace_view(rows, NOW + 2_000);
    assert_eq!(lb.pending("main-b"), 0);
    assert_eq!(tally(&lb, 1, full()).get("main-b"), Some(&1));
}

#[test]
fn restamp_keeps_pending_and_ages_out_silent_nodes() {
    let lb = balancer(Role::Main);
    lb.replace_view(vec![node("main-b", 12, 0, 10)], NOW);
    tally(&lb, 3, full());
    lb.restamp(NOW + 5_999);
    assert_eq!(lb.pending("main-b"), 3);
    assert!(matches!(
        lb.decide(false, full()),
        Decision::Redirect { .. }
    ));
    lb.restamp(NOW + 6_000);
    assert_eq!(lb.decide(false, full()), Decision::Refuse);
    assert_eq!(lb.decide(false, idle()), Decision::Handle);
}

#[test]
fn empty_balancer_handles_what_it_can() {
    let lb = balancer(Role::Main);
    assert_eq!(lb.decide(false, idle()), Decision::Handle);
    assert_eq!(lb.decide(false, full()), Decision::Refuse);
    assert!(lb.snapshot(NOW).is_empty());
}

#[test]
fn marked_and_extra_never_redirect_nor_count_pending() {
    for (role, marked) in [
        (Role::Main, true),
        (Role::Extra, false),
        (Role::Extra, true),
    ] {
        let lb = balancer(role);
        lb.replace_view(three_equal_peers(), NOW);
        let busy = LocalLoad {
            calls: 99,
            ..idle()
        };
        assert_eq!(
            lb.decide(marked, busy),
            Decision::Handle,
            "{role} marked={marked}"
        );
        assert_eq!(
            lb.decide(marked, full()),
            Decision::Refuse,
            "{role} marked={marked}"
        );
        assert_eq!(
            lb.pending("main-b") + lb.pending("main-c") + lb.pending("extra-d"),
            0
        );
    }
}

#[test]
fn clones_share_view_and_pending() {
    let lb = balancer(Role::Main);
    let other = lb.clone();
    other.replace_view(vec![node("main-b", 12, 0, 10)], NOW);
    tally(&lb, 4, full());
    assert_eq!(other.pending("main-b"), 4);
    assert!(Arc::ptr_eq(&lb.view(), &other.view()));
}

#[test]
fn concurrent_decisions_count_every_redirect() {
    let lb = balancer(Role::Main);
    lb.replace_view(
        three_equal_peers()
            .into_iter()
            .map(|mut n| {
                n.capacity = 10_000;
                n
            })
            .collect(),
        NOW,
    );
    std::thread::scope(|s| {
        for _ in 0..4 {
            let lb = lb.clone();
            s.spawn(move || tally(&lb, 300, full()));
        }
    });
    let pending: Vec<u32> = ["main-b", "main-c", "extra-d"]
        .iter()
        .map(|n| lb.pending(n))
        .collect();
    assert_eq!(pending.iter().sum::<u32>(), 1_200, "{pending:?}");
    let (min, max) = (pending.iter().min(), pending.iter().max());
    assert!(
        max.zip(min).is_some_and(|(max, min)| max - min <= 1),
        "uneven under contention: {pending:?}"
    );
}

#[test]
fn snapshot_reports_every_node_at_request_time() {
    let lb = balancer(Role::Main);
    let rows = vec![
        node("main-c", 13, 5, 10).draining(),
        node("main-b", 12, 0, 10),
        node("extra-d", 14, 1, 10).aged(4_000),
    ];
    lb.replace_view(rows, NOW);
    tally(&lb, 2, full());
    let got: Vec<_> = lb
        .snapshot(NOW + 3_000)
        .into_iter()
        .map(|r| (r.name, r.alive, r.accepting, r.pending, r.heartbeat_age_ms))
        .collect();
    let want = [
        ("extra-d".to_owned(), false, false, 1, 7_000),
        ("main-b".to_owned(), true, true, 1, 3_000),
        ("main-c".to_owned(), true, false, 0, 3_000),
    ];
    assert_eq!(got, want);
}

#[test]
fn dedicated_redirector_sends_everything_away_while_peers_can_take_it() {
    let config = LbConfig {
        prefer_self: false,
        ..LbConfig::default()
    };
    let b = Balancer::new(ME, Role::Main, config);
    b.replace_view(vec![node("peer", 13, 0, 2)], NOW);
    let idle = LocalLoad {
        calls: 0,
        capacity: 10,
        refusing: false,
        draining: false,
    };
    assert!(matches!(b.decide(false, idle), Decision::Redirect { .. }));
    assert!(matches!(b.decide(false, idle), Decision::Redirect { .. }));
    // The peer is full (2 pending on capacity 2): the redirector keeps the call.
    assert_eq!(b.decide(false, idle), Decision::Handle);
}
