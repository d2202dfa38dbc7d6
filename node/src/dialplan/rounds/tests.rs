use callfleet_store::{DestKind, Destination};

use super::*;

fn group(strategy: GroupStrategy, members: &[&str]) -> RingGroup {
    RingGroup {
        name: "office".into(),
        strategy,
        ring_ms: 10_000,
        members: members.iter().map(|m| m.parse().expect("member")).collect(),
        no_answer: Destination::new(DestKind::Message, "goodbye"),
        moh_class: String::new(),
        created_at_ms: 0,
    }
}

fn ring(members: &[&str], until_ms: i64) -> Step {
    Step::Ring {
        members: members.iter().map(|m| m.parse().expect("member")).collect(),
        until_ms,
    }
}

#[test]
fn rounds_by_strategy() {
    use GroupStrategy::{All, Ordered};
    // (strategy, members, the times each round ends at, the steps expected: the first at
    // start, the others at each round's end).
    type Case<'a> = (GroupStrategy, &'a [&'a str], &'a [i64], Vec<Step>);
    let cases: Vec<Case> = vec![
        (
            All,
            &["device:2001", "agent:1001"],
            &[100, 4_000],
            vec![ring(&["device:2001", "agent:1001"], 10_100), Step::NoAnswer],
        ),
        // Ordered: each member for its own ring time from the end of the previous round
        // (a member passed over at once gets the full time too).
        (
            Ordered,
            &["device:2001", "agent:1001", "device:2002"],
            &[100, 10_100, 10_150, 20_150],
            vec![
                ring(&["device:2001"], 10_100),
                ring(&["agent:1001"], 20_100),
                ring(&["device:2002"], 20_150),
                Step::NoAnswer,
            ],
        ),
        // A member named twice rings once, in its first place.
        (
            Ordered,
            &["device:2001", "agent:1001", "device:2001"],
            &[0, 10_000, 20_000],
            vec![
                ring(&["device:2001"], 10_000),
                ring(&["agent:1001"], 20_000),
                Step::NoAnswer,
            ],
        ),
        (
            All,
            &["agent:1001", "agent:1001", "device:1001"],
            &[0, 1],
            vec![ring(&["agent:1001", "device:1001"], 10_000), Step::NoAnswer],
        ),
        // No members: no answer straight away, whatever the strategy.
        (All, &[], &[5], vec![Step::NoAnswer]),
        (Ordered, &[], &[5], vec![Step::NoAnswer]),
    ];
    for (strategy, members, times, want) in cases {
        let mut rounds = Rounds::new(&group(strategy, members));
        let mut got = vec![rounds.start(times[0])];
        for t in &times[1..] {
            got.push(rounds.round_over(*t));
        }
        assert_eq!(got, want, "{strategy} {members:?}");
        // Once given up, it stays given up.
        assert_eq!(rounds.round_over(i64::MAX), Step::NoAnswer);
    }
}

#[test]
fn a_bad_ring_time_still_ends() {
    let mut g = group(GroupStrategy::All, &["device:2001"]);
    g.ring_ms = 0;
    let mut rounds = Rounds::new(&g);
    assert_eq!(rounds.start(i64::MAX), ring(&["device:2001"], i64::MAX));
    assert_eq!(rounds.round_over(i64::MAX), Step::NoAnswer);
}
