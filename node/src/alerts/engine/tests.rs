//! The state machine, table-driven: scripts of evaluations at injected times and the changes
//! each one must produce.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use callfleet_store::{AlertKind, Severity};

use super::{Change, Condition, Engine, Key, Observation, Timing};

const DOWN: AlertKind = AlertKind::NodeDown;
const DISK: AlertKind = AlertKind::DiskFull;

fn timing() -> Timing {
    Timing {
        raise_after: BTreeMap::from([(DOWN, Duration::from_secs(10))]),
        clear_after: Duration::from_secs(30),
        repeat_after: Duration::from_secs(3600),
    }
}

fn cond(kind: AlertKind, subject: &str, severity: Severity) -> Condition {
    Condition {
        key: Key::new(kind, subject),
        node: Some(subject.to_owned()),
        severity,
        message: format!("{kind} {subject} {severity}"),
    }
}

/// One evaluation: at `t` seconds, these kinds known, these conditions true.
struct Step {
    t: i64,
    known: &'static [AlertKind],
    seen: Vec<Condition>,
    want: Vec<(Change, &'static str, Severity)>,
}

fn st(
    t: i64,
    known: &'static [AlertKind],
    seen: Vec<Condition>,
    want: Vec<(Change, &'static str, Severity)>,
) -> Step {
    Step {
        t,
        known,
        seen,
        want,
    }
}

fn run(name: &str, steps: Vec<Step>) -> Engine {
    let mut engine = Engine::new(timing());
    for step in steps {
        let obs = Observation {
            known: step.known.iter().copied().collect::<BTreeSet<_>>(),
            conditions: step.seen,
        };
        let got: Vec<(Change, String, Severity)> = engine
            .step(step.t * 1000, &obs)
            .into_iter()
            .map(|t| (t.change, t.key.subject, t.severity))
            .collect();
        let want: Vec<(Change, String, Severity)> = step
            .want
            .into_iter()
            .map(|(c, s, v)| (c, s.to_owned(), v))
            .collect();
        assert_eq!(got, want, "{name}: at t={}s", step.t);
    }
    engine
}

use Severity::{Critical, Warning};

#[test]
fn scripts() {
    let k = &[DOWN, DISK][..];
    let down = |s| cond(DOWN, s, Critical);
    let scripts: Vec<(&str, Vec<Step>)> = vec![
        (
            "raised only after raise_after, resolved after clear_after",
            vec![
                st(0, k, vec![down("b")], vec![]),
                st(9, k, vec![down("b")], vec![]),
                st(
                    10,
                    k,
                    vec![down("b")],
                    vec![(Change::Raised, "b", Critical)],
                ),
                st(15, k, vec![down("b")], vec![]),
                st(20, k, vec![], vec![]),
                st(49, k, vec![], vec![]),
                st(50, k, vec![], vec![(Change::Resolved, "b", Critical)]),
                st(55, k, vec![], vec![]),
            ],
        ),
        (
            "a blip shorter than raise_after leaves no trace",
            vec![
                st(0, k, vec![down("b")], vec![]),
                st(5, k, vec![], vec![]),
                st(8, k, vec![down("b")], vec![]),
                st(17, k, vec![down("b")], vec![]),
                st(
                    18,
                    k,
                    vec![down("b")],
                    vec![(Change::Raised, "b", Critical)],
                ),
            ],
        ),
        (
            "flapping while clearing is one alert (hysteresis), not one per flap",
            vec![
                st(0, k, vec![down("b")], vec![]),
                st(
                    10,
                    k,
                    vec![down("b")],
                    vec![(Change::Raised, "b", Critical)],
                ),
                st(20, k, vec![], vec![]),
                st(40, k, vec![down("b")], vec![]),
                st(45, k, vec![], vec![]),
                st(70, k, vec![down("b")], vec![]),
                st(80, k, vec![], vec![]),
                st(110, k, vec![], vec![(Change::Resolved, "b", Critical)]),
            ],
        ),
        (
            "unknown data neither raises nor resolves",
            vec![
                st(0, k, vec![down("b")], vec![]),
                st(
                    10,
                    k,
                    vec![down("b")],
                    vec![(Change::Raised, "b", Critical)],
                ),
                st(20, &[DISK], vec![], vec![]),
                st(100, &[DISK], vec![], vec![]),
                st(105, k, vec![], vec![]),
                st(135, k, vec![], vec![(Change::Resolved, "b", Critical)]),
            ],
        ),
        (
            "rising severity is told, falling is not; reminders every repeat_after",
            vec![
                st(
                    0,
                    k,
                    vec![cond(DISK, "a /srv", Warning)],
                    vec![(Change::Raised, "a /srv", Warning)],
                ),
                st(
                    5,
                    k,
                    vec![cond(DISK, "a /srv", Critical)],
                    vec![(Change::Escalated, "a /srv", Critical)],
                ),
                st(10, k, vec![cond(DISK, "a /srv", Warning)], vec![]),
                st(3604, k, vec![cond(DISK, "a /srv", Warning)], vec![]),
                st(
                    3605,
                    k,
                    vec![cond(DISK, "a /srv", Warning)],
                    vec![(Change::Reminder, "a /srv", Warning)],
                ),
                st(7204, k, vec![cond(DISK, "a /srv", Warning)], vec![]),
                st(
                    7205,
                    k,
                    vec![cond(DISK, "a /srv", Warning)],
                    vec![(Change::Reminder, "a /srv", Warning)],
                ),
            ],
        ),
        (
            "several alerts change in one step, listed by key",
            vec![
                st(
                    0,
                    k,
                    vec![down("c"), down("b"), cond(DISK, "a /srv", Warning)],
                    vec![(Change::Raised, "a /srv", Warning)],
                ),
                st(
                    10,
                    k,
                    vec![down("c"), down("b")],
                    vec![
                        (Change::Raised, "b", Critical),
                        (Change::Raised, "c", Critical),
                    ],
                ),
                st(40, k, vec![], vec![(Change::Resolved, "a /srv", Warning)]),
                st(
                    70,
                    k,
                    vec![],
                    vec![
                        (Change::Resolved, "b", Critical),
                        (Change::Resolved, "c", Critical),
                    ],
                ),
            ],
        ),
    ];
    for (name, steps) in scripts {
        run(name, steps);
    }
}

#[test]
fn an_adopted_alert_is_not_raised_again_and_resolves_when_clear() {
    let mut engine = Engine::new(timing());
    engine.adopt(cond(DOWN, "b", Critical), 1_000, 5_000);
    assert!(engine.tracks(&Key::new(DOWN, "b")));
    assert_eq!(engine.firing_severity(&Key::new(DOWN, "b")), Some(Critical));
    let known = Observation {
        known: BTreeSet::from([DOWN]),
        conditions: vec![cond(DOWN, "b", Critical)],
    };
    assert_eq!(
        engine.step(20_000, &known),
        vec![],
        "still firing: nothing new"
    );
    let clear = Observation {
        known: BTreeSet::from([DOWN]),
        conditions: vec![],
    };
    assert_eq!(engine.step(25_000, &clear), vec![]);
    let gone = engine.step(55_000, &clear);
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].change, Change::Resolved);
    assert_eq!(gone[0].since_ms, 1_000);
    assert!(!engine.tracks(&Key::new(DOWN, "b")));
}

#[test]
fn firing_lists_firing_and_clearing_alerts_not_pending_ones() {
    let mut engine = Engine::new(timing());
    let obs = Observation {
        known: BTreeSet::from([DOWN, DISK]),
        conditions: vec![down_b(), cond(DISK, "a /srv", Warning)],
    };
    engine.step(0, &obs);
    let firing: Vec<String> = engine.firing().map(|f| f.key.subject.clone()).collect();
    assert_eq!(firing, vec!["a /srv".to_owned()], "node b is only pending");
    assert_eq!(engine.firing_severity(&Key::new(DOWN, "b")), None);
}

fn down_b() -> Condition {
    cond(DOWN, "b", Critical)
}
