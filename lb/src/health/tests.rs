//! Table tests for probe health: flips after consecutive results only.

use super::*;

/// Feeds `results` (true = answered) for one peer and returns the state after each.
fn run(thresholds: Thresholds, results: &[bool]) -> Vec<PeerState> {
    let mut health = Health::new(thresholds);
    results
        .iter()
        .map(|&answered| {
            health.record("b", answered);
            health.state("b")
        })
        .collect()
}

#[test]
fn flips_only_after_consecutive_results() {
    use PeerState::{Down as D, Up as U};
    let two = Thresholds::default();
    let cases: Vec<(&str, Thresholds, Vec<bool>, Vec<PeerState>)> = vec![
        (
            "answers keep it up",
            two,
            vec![true, true, true],
            vec![U, U, U],
        ),
        (
            "one miss is not enough",
            two,
            vec![false, true, false],
            vec![U, U, U],
        ),
        (
            "two misses take it down",
            two,
            vec![false, false],
            vec![U, D],
        ),
        (
            "one answer does not bring it back",
            two,
            vec![false, false, true, false, true],
            vec![U, D, D, D, D],
        ),
        (
            "two answers bring it back",
            two,
            vec![false, false, true, true],
            vec![U, D, D, U],
        ),
        (
            "three misses with thresholds 3/1",
            Thresholds {
                misses: 3,
                answers: 1,
            },
            vec![false, false, false, true],
            vec![U, U, D, U],
        ),
        (
            "zero thresholds count as one",
            Thresholds {
                misses: 0,
                answers: 0,
            },
            vec![false, true],
            vec![D, U],
        ),
    ];
    for (what, thresholds, results, want) in cases {
        assert_eq!(run(thresholds, &results), want, "{what}");
    }
}

#[test]
fn record_reports_flips_and_down_lists_them() {
    let health = Health::default();
    let mut health2 = Health::new(Thresholds::default());
    assert_eq!(health2.record("c", false), None);
    assert_eq!(health2.record("c", false), Some(PeerState::Down));
    assert_eq!(health2.record("b", false), None);
    assert_eq!(health2.record("b", false), Some(PeerState::Down));
    assert_eq!(health2.down(), vec!["b".to_string(), "c".to_string()]);
    assert_eq!(health2.record("b", true), None);
    assert_eq!(health2.record("b", true), Some(PeerState::Up));
    assert_eq!(health2.down(), vec!["c".to_string()]);
    assert_eq!(health.state("never-probed"), PeerState::Up);
}

#[test]
fn retain_forgets_nodes_gone_from_the_cluster() {
    let mut health = Health::new(Thresholds {
        misses: 1,
        answers: 1,
    });
    health.record("b", false);
    health.record("c", false);
    health.retain(["c"]);
    assert_eq!(health.down(), vec!["c".to_string()]);
    assert_eq!(health.state("b"), PeerState::Up);
}
