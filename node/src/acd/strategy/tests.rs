use std::collections::BTreeMap;

use crate::acd::tests::{agent, call, check, member, World};
use crate::acd::{FreeAgent, Member};

use super::*;

/// Queue `q` with members b (position 0), c and d (position 1), a (position 2), all tier 0.
fn four(strategy: Strategy) -> World {
    World::default().queue("q", strategy).members([
        Member {
            position: 2,
            ..member("q", "a")
        },
        member("q", "b"),
        Member {
            position: 1,
            ..member("q", "c")
        },
        Member {
            position: 1,
            ..member("q", "d")
        },
    ])
}

fn ended(ext: &str, at: Option<i64>) -> FreeAgent {
    FreeAgent {
        last_call_end_ms: at,
        ..agent(ext)
    }
}

fn handled(ext: &str, calls_today: u32) -> FreeAgent {
    FreeAgent {
        calls_today,
        ..agent(ext)
    }
}

#[test]
fn deterministic_strategies_pick_as_documented() {
    use Strategy::*;
    let all = || ["a", "b", "c", "d"].map(agent);
    let one_call = [call(1, "q", 0, 100)];
    check(&[
        (
            "ringall: every free member, in member order",
            four(RingAll).free(all()).calls(one_call.clone()),
            "1: b c d a",
        ),
        (
            "linear: first by (position, ext)",
            four(Linear).free(all()).calls(one_call.clone()),
            "1: b",
        ),
        (
            "linear: skips the busy first member",
            four(Linear)
                .free(["a", "c", "d"].map(agent))
                .calls(one_call.clone()),
            "1: c",
        ),
        (
            "leastrecent: oldest end of last call",
            four(LeastRecent)
                .free([
                    ended("a", Some(300)),
                    ended("b", Some(200)),
                    ended("c", Some(100)),
                    ended("d", Some(400)),
                ])
                .calls(one_call.clone()),
            "1: c",
        ),
        (
            "leastrecent: never called goes first",
            four(LeastRecent)
                .free([ended("a", None), ended("b", Some(1)), ended("c", Some(2))])
                .calls(one_call.clone()),
            "1: a",
        ),
        (
            "leastrecent: tie goes to the lower extension, not member order",
            four(LeastRecent)
                .free([
                    ended("b", Some(5)),
                    ended("a", Some(5)),
                    ended("c", Some(9)),
                ])
                .calls(one_call.clone()),
            "1: a",
        ),
        (
            "fewestcalls: fewest calls today",
            four(FewestCalls)
                .free([
                    handled("a", 4),
                    handled("b", 3),
                    handled("c", 1),
                    handled("d", 2),
                ])
                .calls(one_call.clone()),
            "1: c",
        ),
        (
            "fewestcalls: tie goes to the lower extension",
            four(FewestCalls)
                .free([handled("d", 1), handled("b", 1), handled("a", 1)])
                .calls(one_call.clone()),
            "1: a",
        ),
    ]);
}

#[test]
fn rrmemory_goes_round_from_the_last_offered() {
    use Strategy::RrMemory;
    let all = || ["a", "b", "c", "d"].map(agent);
    let one_call = [call(1, "q", 0, 100)];
    // Member order: b, c, d, a.
    check(&[
        (
            "no memory: first member",
            four(RrMemory).free(all()).calls(one_call.clone()),
            "1: b",
        ),
        (
            "after c comes d",
            four(RrMemory)
                .rr_last("q", "c")
                .free(all())
                .calls(one_call.clone()),
            "1: d",
        ),
        (
            "after the last member, wraps to the first",
            four(RrMemory)
                .rr_last("q", "a")
                .free(all())
                .calls(one_call.clone()),
            "1: b",
        ),
        (
            "busy members are passed over",
            four(RrMemory)
                .rr_last("q", "b")
                .free(["a", "b"].map(agent))
                .busy(&["c", "d"])
                .calls(one_call.clone()),
            "1: a",
        ),
        (
            "a last agent no longer a member: first member",
            four(RrMemory)
                .rr_last("q", "zz")
                .free(all())
                .calls(one_call.clone()),
            "1: b",
        ),
        (
            "two calls in one round continue round the ring",
            four(RrMemory).rr_last("q", "d").free(all()).calls([
                call(1, "q", 0, 100),
                call(2, "q", 0, 200),
                call(3, "q", 0, 300),
            ]),
            "1: a; 2: b; 3: c",
        ),
    ]);
}

/// How often each agent is picked for one call over many seeds.
fn tally(world: &World, seeds: u64) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for seed in 0..seeds {
        for a in world.run(seed) {
            for ext in a.agents {
                *counts.entry(ext).or_insert(0) += 1;
            }
        }
    }
    counts
}

#[test]
fn random_strategies_spread_by_weight() {
    let one_call = [call(1, "q", 0, 100)];
    let random = World::default()
        .queue("q", Strategy::Random)
        .members([member("q", "a"), member("q", "b"), member("q", "c")])
        .free(["a", "b", "c"].map(agent))
        .calls(one_call.clone());
    let counts = tally(&random, 3_000);
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert!(
        counts.values().all(|&n| (850..=1150).contains(&n)),
        "{counts:?}"
    );

    // Weight 0 counts as 1: 1 : 1 : 8.
    let weighted = World::default()
        .queue("q", Strategy::WRandom)
        .members([
            Member {
                weight: 0,
                ..member("q", "zero")
            },
            member("q", "one"),
            Member {
                weight: 8,
                ..member("q", "eight")
            },
        ])
        .free(["zero", "one", "eight"].map(agent))
        .calls(one_call);
    let counts = tally(&weighted, 5_000);
    let n = |ext: &str| counts.get(ext).copied().unwrap_or(0);
    assert!((3_700..=4_300).contains(&n("eight")), "{counts:?}");
    assert!((380..=620).contains(&n("zero")), "{counts:?}");
    assert!((380..=620).contains(&n("one")), "{counts:?}");
}
