//! Table tests for the held view: probe answers refresh peers, silent peers age out, pending
//! counts carry over only for unchanged rows, and the load header parses strictly.

use std::collections::HashMap;
use std::time::Duration;

use super::*;
use crate::testutil::{node, NodeExt, NOW};

const TTL: Duration = Duration::from_secs(6);
const ME: &str = "main-a";

fn load(calls: u32, capacity: u32) -> ProbeLoad {
    ProbeLoad {
        calls,
        capacity,
        shed_level: 0,
        draining: false,
        refusing: false,
    }
}

#[test]
fn load_header_round_trips_and_refuses_hostile_values() {
    let full = ProbeLoad {
        calls: 7,
        capacity: 100,
        shed_level: 2,
        draining: true,
        refusing: false,
    };
    let text = full.to_string();
    assert_eq!(text, "calls=7;capacity=100;shed=2;draining=1;refusing=0");
    assert_eq!(text.parse(), Ok(full));
    assert_eq!(
        " refusing=0; draining=1 ;shed=2;capacity=100;calls=7;".parse(),
        Ok(full),
        "order and spaces do not matter"
    );
    let cases: [(&str, ParseLoadError); 9] = [
        ("", ParseLoadError::Missing("calls")),
        (
            "calls=1;capacity=2;shed=0;draining=0",
            ParseLoadError::Missing("refusing"),
        ),
        ("calls", ParseLoadError::Pair("calls".to_owned())),
        ("calls=-1", ParseLoadError::Value("calls")),
        ("calls=99999999999", ParseLoadError::Value("calls")),
        (
            "calls=1;capacity=2;shed=4;draining=0;refusing=0",
            ParseLoadError::Value("shed"),
        ),
        (
            "calls=1;capacity=2;shed=0;draining=2;refusing=0",
            ParseLoadError::Value("draining"),
        ),
        ("calls=1;calls=2", ParseLoadError::Key("calls".to_owned())),
        ("cpu=1", ParseLoadError::Key("cpu".to_owned())),
    ];
    for (text, want) in cases {
        assert_eq!(text.parse::<ProbeLoad>(), Err(want), "{text:?}");
    }
}

/// What the held view makes of one peer.
#[derive(Debug, PartialEq)]
struct Seen {
    alive: bool,
    accepting: bool,
    calls: u32,
}

#[test]
fn held_view_keeps_answering_peers_and_ages_silent_ones() {
    struct Case {
        what: &'static str,
        row: NodeStatus,
        /// The peer's answer, ms after the read (the read is at NOW).
        answer: Option<(ProbeLoad, i64)>,
        /// When the view is held, ms after the read.
        at: i64,
        want: Seen,
    }
    let peer = || node("main-b", 12, 5, 100);
    let seen = |alive, accepting, calls| Seen {
        alive,
        accepting,
        calls,
    };
    let cases = [
        Case {
            what: "no answer, within the TTL: as read",
            row: peer(),
            answer: None,
            at: 5_999,
            want: seen(true, true, 5),
        },
        Case {
            what: "no answer, past the TTL: aged out as its heartbeat",
            row: peer(),
            answer: None,
            at: 6_000,
            want: seen(false, false, 5),
        },
        Case {
            what: "answered 1 s ago, 60 s into the outage: alive with the answered load",
            row: peer(),
            answer: Some((load(9, 100), 59_000)),
            at: 60_000,
            want: seen(true, true, 9),
        },
        Case {
            what: "last answer older than the TTL: aged out",
            row: peer(),
            answer: Some((load(9, 100), 53_000)),
            at: 60_000,
            want: seen(false, false, 9),
        },
        Case {
            what: "answer from before the read: the read is newer",
            row: peer(),
            answer: Some((load(9, 100), -1)),
            at: 1_000,
            want: seen(true, true, 5),
        },
        Case {
            what: "answered refusing: alive, not accepting",
            row: peer(),
            answer: Some((
                ProbeLoad {
                    refusing: true,
                    ..load(100, 100)
                },
                9_500,
            )),
            at: 10_000,
            want: seen(true, false, 100),
        },
        Case {
            what: "answered at shed level 3: not accepting",
            row: peer(),
            answer: Some((
                ProbeLoad {
                    shed_level: 3,
                    ..load(1, 100)
                },
                9_500,
            )),
            at: 10_000,
            want: seen(true, false, 1),
        },
        Case {
            what: "draining when read, answered not draining: accepting again",
            row: peer().draining(),
            answer: Some((load(0, 100), 9_500)),
            at: 10_000,
            want: seen(true, true, 0),
        },
        Case {
            what: "stale when read stays stale only until an answer",
            row: peer().aged(7_000),
            answer: Some((load(2, 100), 500)),
            at: 1_000,
            want: seen(true, true, 2),
        },
    ];
    for case in cases {
        let me = node(ME, 11, 50, 100);
        let read = ClusterView::from_rows(vec![me.clone(), case.row], NOW, TTL);
        let answers: HashMap<String, Answer> = case
            .answer
            .map(|(load, after)| {
                let answer = Answer {
                    load,
                    at_ms: NOW + after,
                };
                ("main-b".to_owned(), answer)
            })
            .into_iter()
            .collect();
        let held = held_view(&read, &answers, ME, NOW + case.at);
        let row = held.get("main-b").expect("the peer stays in the view");
        let got = Seen {
            alive: held.is_alive(row),
            accepting: held.is_accepting(row),
            calls: row.calls,
        };
        assert_eq!(got, case.want, "{}", case.what);
        assert_eq!(held.get(ME), Some(&me), "{}: own row as read", case.what);
        assert_eq!(held.built_at_ms(), NOW + case.at, "{}", case.what);
    }
}

#[test]
fn this_nodes_own_answer_never_replaces_its_row() {
    let me = node(ME, 11, 50, 100);
    let read = ClusterView::from_rows(vec![me.clone()], NOW, TTL);
    let answers = HashMap::from([(
        ME.to_owned(),
        Answer {
            load: load(0, 100),
            at_ms: NOW + 500,
        },
    )]);
    let held = held_view(&read, &answers, ME, NOW + 1_000);
    assert_eq!(held.get(ME), Some(&me));
}

#[test]
fn pending_carries_over_only_unchanged_rows() {
    struct Case {
        what: &'static str,
        new_row: NodeStatus,
        want: u32,
    }
    let cases = [
        Case {
            what: "same row",
            new_row: node("main-b", 12, 5, 100),
            want: 4,
        },
        Case {
            what: "newer answer or heartbeat",
            new_row: node("main-b", 12, 5, 100).aged(-500),
            want: 0,
        },
        Case {
            what: "another generation",
            new_row: NodeStatus {
                generation: 2,
                ..node("main-b", 12, 5, 100)
            },
            want: 0,
        },
    ];
    for case in cases {
        let old = ClusterView::from_rows(
            vec![node("main-b", 12, 5, 100), node("main-c", 13, 5, 100)],
            NOW,
            TTL,
        );
        let new = ClusterView::from_rows(
            vec![
                node("main-c", 13, 5, 100),
                case.new_row,
                node("new", 14, 0, 1),
            ],
            NOW + 1_000,
            TTL,
        );
        let pending = carry_pending(&old, &[4, 3], &new);
        let by_name: Vec<(&str, u32)> = new
            .nodes()
            .iter()
            .map(|n| n.name.as_str())
            .zip(pending)
            .collect();
        assert_eq!(
            by_name,
            [("main-b", case.want), ("main-c", 3), ("new", 0)],
            "{}",
            case.what
        );
    }
}
