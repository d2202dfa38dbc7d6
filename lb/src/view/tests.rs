//! Tests for the cluster view: row order, duplicates, alive vs accepting at the build time.

use std::time::Duration;

use super::*;
use crate::testutil::{node, NodeExt, NOW};

const TTL: Duration = Duration::from_secs(6);

fn names(view: &ClusterView) -> Vec<&str> {
    view.nodes().iter().map(|n| n.name.as_str()).collect()
}

#[test]
fn rows_are_sorted_by_name_and_looked_up() {
    let view = ClusterView::from_rows(
        vec![node("c", 3, 0, 1), node("a", 1, 0, 1), node("b", 2, 0, 1)],
        NOW,
        TTL,
    );
    assert_eq!(names(&view), ["a", "b", "c"]);
    assert_eq!(view.position("b"), Some(1));
    assert_eq!(
        view.get("c").map(|n| n.sip.to_string()),
        Some("127.0.0.3:5060".to_owned())
    );
    assert_eq!(view.get("zz"), None);
    assert_eq!((view.built_at_ms(), view.ttl()), (NOW, TTL));
}

#[test]
fn duplicate_names_keep_the_newest_row() {
    let mut old_gen = node("a", 1, 10, 100);
    old_gen.generation = 1;
    let mut new_gen_old_beat = node("a", 1, 20, 100).aged(1_000);
    new_gen_old_beat.generation = 2;
    let mut new_gen_new_beat = node("a", 1, 30, 100);
    new_gen_new_beat.generation = 2;
    let rows = vec![
        new_gen_old_beat,
        old_gen,
        new_gen_new_beat,
        node("b", 2, 0, 1),
    ];
    let view = ClusterView::from_rows(rows, NOW, TTL);
    assert_eq!(names(&view), ["a", "b"]);
    assert_eq!(view.get("a").map(|n| n.calls), Some(30));
}

#[test]
fn alive_and_accepting_at_build_time() {
    struct Case {
        row: NodeStatus,
        alive: bool,
        accepting: bool,
    }
    let cases = [
        Case {
            row: node("fresh", 1, 0, 1),
            alive: true,
            accepting: true,
        },
        Case {
            row: node("age-ttl-minus-1", 1, 0, 1).aged(5_999),
            alive: true,
            accepting: true,
        },
        Case {
            row: node("age-ttl", 1, 0, 1).aged(6_000),
            alive: false,
            accepting: false,
        },
        Case {
            row: node("ancient", 1, 0, 1).aged(3_600_000),
            alive: false,
            accepting: false,
        },
        Case {
            row: node("clock-ahead", 1, 0, 1).aged(-2_000),
            alive: true,
            accepting: true,
        },
        Case {
            row: node("draining", 1, 0, 1).draining(),
            alive: true,
            accepting: false,
        },
        Case {
            row: node("refusing", 1, 0, 1).refusing(),
            alive: true,
            accepting: false,
        },
        Case {
            row: node("shed-2", 1, 0, 1).shed(2),
            alive: true,
            accepting: true,
        },
        Case {
            row: node("shed-3", 1, 0, 1).shed(3),
            alive: true,
            accepting: false,
        },
        Case {
            row: node("stale-draining", 1, 0, 1).aged(9_000).draining(),
            alive: false,
            accepting: false,
        },
    ];
    for c in cases {
        let name = c.row.name.clone();
        let view = ClusterView::from_rows(vec![c.row], NOW, TTL);
        assert_eq!(
            (view.alive(&name), view.accepting(&name)),
            (c.alive, c.accepting),
            "{name}"
        );
    }
    let view = ClusterView::empty(NOW, TTL);
    assert!(!view.alive("nobody") && !view.accepting("nobody"));
}

#[test]
fn utilisation_counts_zero_capacity_as_full() {
    for (calls, capacity, want) in [
        (0, 10, 0.0),
        (5, 10, 0.5),
        (10, 10, 1.0),
        (12, 10, 1.2),
        (0, 0, 1.0),
        (3, 0, 1.0),
    ] {
        assert_eq!(
            node("n", 1, calls, capacity).utilisation(),
            want,
            "{calls}/{capacity}"
        );
    }
}

#[test]
fn huge_ttl_saturates() {
    let row = node("a", 1, 0, 1).aged(i64::MAX / 2);
    assert!(row.alive_at(NOW, Duration::MAX));
    assert_eq!(duration_ms(Duration::MAX), i64::MAX);
}
