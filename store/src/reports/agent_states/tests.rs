use std::collections::BTreeMap;

use super::StateChange;
use crate::reports::Window;
use crate::testdb::flavour_tests;
use crate::{AgentState, Store, StoreError};

use AgentState::*;

const STATES: [AgentState; 7] = [
    LoggedOut, Paused, Available, Reserved, Ringing, InCall, WrapUp,
];

fn ch(agent: &str, state: AgentState, since_ms: i64) -> StateChange {
    StateChange {
        agent: agent.into(),
        state,
        since_ms,
    }
}

/// Per agent, per state, the milliseconds (rows of 0 ms kept: they say the agent is there).
type Times = BTreeMap<String, BTreeMap<AgentState, i64>>;

async fn times(
    store: &Store,
    from_ms: i64,
    to_ms: i64,
    agent: Option<&str>,
) -> Result<Times, StoreError> {
    let w = Window {
        from_ms,
        to_ms,
        bucket_ms: 1,
    };
    let mut out = Times::new();
    for t in store.report_agent_state_times(w, agent).await? {
        let before = out.entry(t.agent).or_default().insert(t.state, t.ms);
        assert_eq!(before, None, "one row per agent and state");
    }
    Ok(out)
}

/// The report's semantics, folded here: each change lasts until the agent's next one in the
/// order written (whatever its time) or the window's end, clipped to `[from_ms, to_ms)`; the
/// changes there are those begun before `to_ms` and ended at or after `from_ms` (or still
/// open), so every agent with a change before `to_ms` is there.
fn reference(changes: &[StateChange], from_ms: i64, to_ms: i64, agent: Option<&str>) -> Times {
    let mut by_agent: BTreeMap<&str, Vec<(i64, AgentState)>> = BTreeMap::new();
    for c in changes {
        if agent.is_none_or(|a| a == c.agent) {
            by_agent
                .entry(&c.agent)
                .or_default()
                .push((c.since_ms, c.state));
        }
    }
    let mut out = Times::new();
    for (a, list) in by_agent {
        for (k, &(since, state)) in list.iter().enumerate() {
            let end = list.get(k + 1).map(|n| n.0);
            if since >= to_ms || end.is_some_and(|e| e < from_ms) {
                continue;
            }
            let ms = end.map_or(to_ms, |e| e.min(to_ms)) - since.max(from_ms);
            let per = out.entry(a.to_owned()).or_default();
            *per.entry(state).or_default() += ms.max(0);
        }
    }
    out
}

fn ms(pairs: &[(AgentState, i64)]) -> BTreeMap<AgentState, i64> {
    pairs.iter().copied().collect()
}

async fn clipped_to_the_window(store: &Store) -> Result<(), StoreError> {
    let changes = [
        // Logged in before the window: only the part inside counts.
        ch("1001", Available, 0),
        ch("1001", Reserved, 150),
        ch("1001", Ringing, 160),
        ch("1001", InCall, 200),
        ch("1001", WrapUp, 500),
        ch("1001", Paused, 600),
        ch("1001", Available, 700),
        // Two changes in one millisecond: the first lasts nothing.
        ch("1001", Reserved, 800),
        ch("1001", Available, 800),
        ch("1001", LoggedOut, 900),
        // Still in a call when the window closes.
        ch("1002", LoggedOut, 0),
        ch("1002", Available, 950),
        ch("1002", InCall, 990),
        // Changes after the window's end: not there.
        ch("1003", Available, 2000),
        // Changes exactly at the window's start and end: the first counts from it, the
        // second ends the state before it and counts nothing.
        ch("1004", Paused, 50),
        ch("1004", Available, 100),
        ch("1004", InCall, 1000),
        // Ties in the last millisecond before the window: the last made holds, the others
        // ended before the window and have no row.
        ch("1005", InCall, 10),
        ch("1005", Available, 60),
        ch("1005", Paused, 60),
        // No change in the window: the state it opened in, all along.
        ch("1006", WrapUp, 20),
        // Logged out before the window.
        ch("1007", Available, 5),
        ch("1007", LoggedOut, 30),
    ];
    store.insert_state_history(&changes).await?;
    let got = times(store, 100, 1000, None).await?;
    let want: Times = [
        (
            "1001",
            ms(&[
                (Available, 50 + 100 + 100),
                (Reserved, 10),
                (Ringing, 40),
                (InCall, 300),
                (WrapUp, 100),
                (Paused, 100),
                (LoggedOut, 100),
            ]),
        ),
        (
            "1002",
            ms(&[(LoggedOut, 850), (Available, 40), (InCall, 10)]),
        ),
        // Paused until the window opened: a row of 0 ms.
        ("1004", ms(&[(Paused, 0), (Available, 900)])),
        ("1005", ms(&[(Paused, 900)])),
        ("1006", ms(&[(WrapUp, 900)])),
        ("1007", ms(&[(LoggedOut, 900)])),
    ]
    .into_iter()
    .map(|(a, m)| (a.to_owned(), m))
    .collect();
    assert_eq!(got, want);
    assert_eq!(got, reference(&changes, 100, 1000, None));

    // One agent.
    let one = times(store, 100, 1000, Some("1005")).await?;
    assert_eq!(one, [("1005".to_owned(), want["1005"].clone())].into());
    assert_eq!(times(store, 100, 1000, Some("9999")).await?, Times::new());
    // A window that has not started yet (the present at its start): the agents are there,
    // with no time.
    let empty = times(store, 100, 100, None).await?;
    assert_eq!(empty.len(), 6);
    assert!(empty.values().flat_map(|m| m.values()).all(|&v| v == 0));
    assert_eq!(empty, reference(&changes, 100, 100, None));
    // A window that ends before it starts is refused.
    let bad = Window {
        from_ms: 10,
        to_ms: 5,
        bucket_ms: 1,
    };
    assert!(store.report_agent_state_times(bad, None).await.is_err());
    Ok(())
}

/// A small deterministic generator (xorshift64*) for a history with many ties.
struct Gen(u64);

impl Gen {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

async fn same_as_the_fold(store: &Store) -> Result<(), StoreError> {
    let mut g = Gen(0x9E37_79B9_7F4A_7C15);
    let mut changes = Vec::new();
    let mut at = [0_i64; 4];
    for _ in 0..400 {
        let a = g.below(4) as usize;
        // Steps of 0–19 ms: many ties, some changes written out of time order.
        at[a] += g.below(20) as i64;
        let since = at[a] - if g.below(10) == 0 { 25 } else { 0 };
        let state = STATES[g.below(7) as usize];
        changes.push(ch(&format!("{}", 2001 + a), state, since));
    }
    // In two writes: the first change of the second closes the changes the first left open.
    store.insert_state_history(&changes[..150]).await?;
    store.insert_state_history(&changes[150..]).await?;
    let windows = [
        (0, 10_000),
        (100, 900),
        (333, 334),
        (500, 500),
        (-50, 40),
        (1000, 1500),
        (1500, 100_000),
    ];
    for (from, to) in windows {
        for agent in [None, Some("2003")] {
            let got = times(store, from, to, agent).await?;
            assert_eq!(
                got,
                reference(&changes, from, to, agent),
                "[{from}, {to}) {agent:?}"
            );
        }
    }
    Ok(())
}

flavour_tests!(clipped_to_the_window, same_as_the_fold);
