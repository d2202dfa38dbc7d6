//! Tests for agents: configuration, login/logout, guarded transitions,
//! counters, and races between nodes, on both flavours.

use std::collections::HashSet;

use crate::testdb::flavour_tests;
use crate::{Agent, AgentState, Store, StoreError, Transition};
use AgentState::*;

flavour_tests!(
    upsert_agent_keeps_runtime_state,
    login_moves_between_devices,
    login_and_logout_refused_while_in_a_call,
    logout_by_state,
    transition_guard_by_state,
    a_stale_lease_holder_is_fenced_off,
    transition_call_bookkeeping,
    paused_flag,
    calls_today_counts_calls_and_sales_per_day,
    config_writes_bump_version,
    release_node_agents_frees_only_that_node,
    concurrent_transitions_have_one_winner,
    concurrent_logins_leave_one_agent_on_the_device,
    pin_hash_upgrade_is_guarded_and_not_a_config_change,
);

const DAY1: &str = "2024-05-01";
const DAY2: &str = "2024-05-02";

#[test]
fn agent_state_text_round_trips() {
    for state in AgentState::ALL {
        assert_eq!(state.as_str().parse::<AgentState>(), Ok(state));
        assert_eq!(state.to_string(), state.as_str());
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(json, format!("\"{}\"", state.as_str()));
        assert_eq!(serde_json::from_str::<AgentState>(&json).unwrap(), state);
    }
    for bad in ["", "Available", "in-call", "busy"] {
        let err = bad.parse::<AgentState>().unwrap_err();
        assert_eq!((err.kind, err.value.as_str()), ("agent state", bad));
    }
    let holding: Vec<AgentState> = AgentState::ALL
        .into_iter()
        .filter(|s| s.holds_call())
        .collect();
    assert_eq!(holding, vec![Reserved, Ringing, InCall]);
}

async fn new_agent(store: &Store, ext: &str) -> Result<Agent, StoreError> {
    let agent = Agent::new(ext, &format!("Agent {ext}"), &format!("hash-{ext}"), 100);
    store.upsert_agent(&agent).await?;
    Ok(agent)
}

async fn get(store: &Store, ext: &str) -> Result<Agent, StoreError> {
    Ok(store.agent(ext).await?.expect("agent exists"))
}

fn call_of(ext: &str) -> String {
    format!("call-{ext}")
}

/// Creates agent `ext` and brings it to `state` with the store's own
/// operations: logged in on `dev-<ext>`, calls on node `node-a`.
async fn agent_in(store: &Store, ext: &str, state: AgentState) -> Result<Agent, StoreError> {
    new_agent(store, ext).await?;
    if state != LoggedOut {
        assert!(store.login_agent(ext, &format!("dev-{ext}"), 200).await?);
    }
    let call = call_of(ext);
    let steps: &[(AgentState, AgentState)] = match state {
        LoggedOut | Available | Paused => &[],
        Reserved => &[(Available, Reserved)],
        Ringing => &[(Available, Reserved), (Reserved, Ringing)],
        InCall | WrapUp => &[
            (Available, Reserved),
            (Reserved, Ringing),
            (Ringing, InCall),
        ],
    };
    for &(from, to) in steps {
        let moved = store
            .transition_agent(ext, &[from], to, 300, Some((&call, "node-a")))
            .await?;
        assert!(moved, "{ext}: {from} -> {to}");
    }
    if state == Paused {
        assert!(store.set_paused(ext, true, 300).await?);
    }
    if state == WrapUp {
        assert!(store.finish_agent_call(ext, 400, DAY1, 0).await? == Transition::Moved);
    }
    let agent = get(store, ext).await?;
    assert_eq!(agent.state, state, "{ext} set up");
    Ok(agent)
}

async fn upsert_agent_keeps_runtime_state(store: &Store) -> Result<(), StoreError> {
    let created = Agent {
        daily_limit: Some(5),
        ..Agent::new("1001", "Alice", "h1", 100)
    };
    store.upsert_agent(&created).await?;
    assert_eq!(store.agent("1001").await?, Some(created));
    assert_eq!(store.agent("nobody").await?, None);

    let before = agent_in(store, "1001", InCall).await?;
    let update = Agent {
        daily_limit: None,
        ..Agent::new("1001", "Alice B", "h2", 999)
    };
    store.upsert_agent(&update).await?;
    let want = Agent {
        name: "Alice B".to_owned(),
        pin_hash: "h2".to_owned(),
        daily_limit: None,
        ..before
    };
    assert_eq!(get(store, "1001").await?, want);

    let other = new_agent(store, "1000").await?;
    assert_eq!(store.agents().await?, vec![other, want]);
    Ok(())
}

async fn login_moves_between_devices(store: &Store) -> Result<(), StoreError> {
    new_agent(store, "1001").await?;
    new_agent(store, "1002").await?;
    let on = |store: &Store, device: &'static str| {
        let store = store.clone();
        async move {
            let agent = store.agent_on_device(device).await?;
            Ok::<_, StoreError>(agent.map(|a| a.extension))
        }
    };

    assert!(store.login_agent("1001", "d1", 200).await?);
    let a = get(store, "1001").await?;
    assert_eq!(
        (a.device.as_deref(), a.state, a.state_since_ms),
        (Some("d1"), Available, 200)
    );
    assert_eq!(on(store, "d1").await?.as_deref(), Some("1001"));

    // Hot-desking to another phone frees the first one.
    assert!(store.login_agent("1001", "d2", 300).await?);
    assert_eq!(on(store, "d1").await?, None);
    assert_eq!(on(store, "d2").await?.as_deref(), Some("1001"));

    // Another agent on the same phone logs the first one out.
    assert!(store.login_agent("1002", "d2", 400).await?);
    let a = get(store, "1001").await?;
    assert_eq!(
        (a.device, a.state, a.state_since_ms),
        (None, LoggedOut, 400)
    );
    assert_eq!(on(store, "d2").await?.as_deref(), Some("1002"));

    assert!(!store.login_agent("9999", "d2", 500).await?);
    assert_eq!(on(store, "d2").await?.as_deref(), Some("1002"));

    // The paused flag survives logout and applies at the next login.
    assert!(store.set_paused("1001", true, 600).await?);
    assert!(store.login_agent("1001", "d1", 700).await?);
    assert_eq!(get(store, "1001").await?.state, Paused);
    Ok(())
}

async fn login_and_logout_refused_while_in_a_call(store: &Store) -> Result<(), StoreError> {
    for (i, state) in [Reserved, Ringing, InCall].into_iter().enumerate() {
        let ext = format!("10{i}");
        let busy = agent_in(store, &ext, state).await?;
        let device = busy.device.clone().expect("logged in");
        assert!(!store.login_agent(&ext, "elsewhere", 900).await?, "{state}");
        assert!(!store.logout_agent(&ext, 900).await?, "{state}");
        // Nobody takes the phone of an agent in a call.
        let other = format!("20{i}");
        new_agent(store, &other).await?;
        assert!(!store.login_agent(&other, &device, 900).await?, "{state}");
        assert_eq!(get(store, &ext).await?, busy, "{state}");
        assert_eq!(get(store, &other).await?.state, LoggedOut, "{state}");
    }
    // Wrap-up carries over to the new phone.
    agent_in(store, "300", WrapUp).await?;
    assert!(store.login_agent("300", "elsewhere", 900).await?);
    let a = get(store, "300").await?;
    assert_eq!((a.device.as_deref(), a.state), (Some("elsewhere"), WrapUp));
    Ok(())
}

async fn logout_by_state(store: &Store) -> Result<(), StoreError> {
    assert!(!store.logout_agent("nobody", 900).await?);
    let cases = [
        (LoggedOut, true),
        (Available, true),
        (Paused, true),
        (WrapUp, true),
        (Reserved, false),
        (Ringing, false),
        (InCall, false),
    ];
    for (state, allowed) in cases {
        let ext = format!("x-{state}");
        let before = agent_in(store, &ext, state).await?;
        assert_eq!(store.logout_agent(&ext, 900).await?, allowed, "{state}");
        let want = if !allowed {
            before
        } else {
            Agent {
                device: None,
                state: LoggedOut,
                state_since_ms: if state == LoggedOut { 100 } else { 900 },
                current_call: None,
                current_node: None,
                ..before
            }
        };
        assert_eq!(get(store, &ext).await?, want, "{state}");
    }
    Ok(())
}

/// Node A rings the agent under lease token 10; its lease runs out (A is cut off), node B
/// frees the agent under token 11 and takes it for its own call under token 12. A, back,
/// still acts with token 10: every change it tries is refused as fenced, and B's state stands.
async fn a_stale_lease_holder_is_fenced_off(store: &Store) -> Result<(), StoreError> {
    agent_in(store, "f1", Available).await?;
    let ring = |fence, from: AgentState, to, node| {
        let from = [from];
        async move {
            store
                .transition_agent_fenced("f1", &from, to, 1_000, Some(("call", node)), fence)
                .await
        }
    };
    assert_eq!(ring(10, Available, Ringing, "a").await?, Transition::Moved);
    assert_eq!(ring(11, Ringing, Available, "b").await?, Transition::Moved);
    assert_eq!(ring(12, Available, Ringing, "b").await?, Transition::Moved);
    // The stale holder: even from the right state, its older token is refused.
    assert_eq!(
        ring(10, Ringing, InCall, "a").await?,
        Transition::Fenced { stored: 12 }
    );
    assert_eq!(
        ring(11, Ringing, Available, "a").await?,
        Transition::Fenced { stored: 12 }
    );
    let after = get(store, "f1").await?;
    assert_eq!(
        (after.state, after.current_node.as_deref()),
        (Ringing, Some("b"))
    );
    // The holder of the current token goes on; its call ends under the same token.
    assert_eq!(ring(12, Ringing, InCall, "b").await?, Transition::Moved);
    assert_eq!(
        store.finish_agent_call("f1", 2_000, DAY1, 10).await?,
        Transition::Fenced { stored: 12 }
    );
    assert_eq!(
        store.finish_agent_call("f1", 2_000, DAY1, 12).await?,
        Transition::Moved
    );
    // Changes without a lease (login, logout, a node's own restart) are not fenced; a wrong
    // state is told apart from a stale token.
    assert_eq!(
        ring(12, Available, Ringing, "b").await?,
        Transition::Refused
    );
    assert!(
        store
            .transition_agent("f1", &[WrapUp], Available, 3_000, None)
            .await?
    );
    Ok(())
}

async fn transition_guard_by_state(store: &Store) -> Result<(), StoreError> {
    assert!(
        !store
            .transition_agent("nobody", &[Available], Reserved, 900, None)
            .await?
    );
    // (start, from, to, moves)
    let cases: &[(AgentState, &[AgentState], AgentState, bool)] = &[
        (Available, &[Available], Reserved, true),
        (Available, &[Ringing, InCall], Reserved, false),
        (Available, &[], Reserved, false),
        (Reserved, &[Reserved, Ringing], Ringing, true),
        (Ringing, &[Reserved, Ringing], InCall, true),
        (WrapUp, &[WrapUp], Available, true),
        (Paused, &[Available], Reserved, false),
        (InCall, &[InCall], LoggedOut, true),
        // A logged-out agent has no phone to take calls on.
        (LoggedOut, &[LoggedOut], Available, false),
    ];
    for (i, &(start, from, to, moves)) in cases.iter().enumerate() {
        let ext = format!("t{i}");
        let before = agent_in(store, &ext, start).await?;
        let moved = store.transition_agent(&ext, from, to, 900, None).await?;
        assert_eq!(moved, moves, "case {i}: {start} -> {to}");
        let after = get(store, &ext).await?;
        if moves {
            assert_eq!((after.state, after.state_since_ms), (to, 900), "case {i}");
            assert_eq!(after.device.is_none(), to == LoggedOut, "case {i}");
        } else {
            assert_eq!(after, before, "case {i}");
        }
    }
    Ok(())
}

async fn transition_call_bookkeeping(store: &Store) -> Result<(), StoreError> {
    agent_in(store, "1001", Available).await?;
    let call = |a: &Agent| (a.current_call.clone(), a.current_node.clone());
    let some = |c: &str, n: &str| (Some(c.to_owned()), Some(n.to_owned()));
    // (from, to, call argument, state after, call after)
    let steps = [
        (
            Available,
            Reserved,
            Some(("c1", "n1")),
            Reserved,
            some("c1", "n1"),
        ),
        (Reserved, Ringing, None, Ringing, some("c1", "n1")),
        (
            Ringing,
            InCall,
            Some(("c2", "n2")),
            InCall,
            some("c2", "n2"),
        ),
        (InCall, WrapUp, None, WrapUp, (None, None)),
        (WrapUp, Available, None, Available, (None, None)),
    ];
    for (from, to, arg, state, want) in steps {
        assert!(
            store
                .transition_agent("1001", &[from], to, 900, arg)
                .await?
        );
        let a = get(store, "1001").await?;
        assert_eq!((a.state, call(&a)), (state, want), "{from} -> {to}");
    }
    // Becoming available while paused lands on paused.
    assert!(store.set_paused("1001", true, 950).await?);
    assert!(store.set_paused("1001", false, 960).await?);
    assert!(
        store
            .transition_agent("1001", &[Available], InCall, 970, Some(("c3", "n1")))
            .await?
    );
    assert!(store.set_paused("1001", true, 980).await?);
    assert_eq!(get(store, "1001").await?.state, InCall);
    assert!(
        store
            .transition_agent("1001", &[InCall], Available, 990, None)
            .await?
    );
    let a = get(store, "1001").await?;
    assert_eq!((a.state, a.paused, call(&a)), (Paused, true, (None, None)));
    Ok(())
}

async fn paused_flag(store: &Store) -> Result<(), StoreError> {
    assert!(!store.set_paused("nobody", true, 900).await?);
    // (start, paused, state after)
    let cases = [
        (Available, true, Paused),
        (Available, false, Available),
        (Paused, false, Available),
        (Paused, true, Paused),
        (InCall, true, InCall),
        (WrapUp, true, WrapUp),
        (LoggedOut, true, LoggedOut),
    ];
    for (i, (start, paused, state)) in cases.into_iter().enumerate() {
        let ext = format!("p{i}");
        let before = agent_in(store, &ext, start).await?;
        assert!(store.set_paused(&ext, paused, 900).await?);
        let a = get(store, &ext).await?;
        let since = if state == start {
            before.state_since_ms
        } else {
            900
        };
        assert_eq!(
            (a.state, a.paused, a.state_since_ms),
            (state, paused, since),
            "case {i}"
        );
    }
    Ok(())
}

async fn calls_today_counts_calls_and_sales_per_day(store: &Store) -> Result<(), StoreError> {
    assert!(!(store.finish_agent_call("nobody", 1_000, DAY1, 0).await? == Transition::Moved));
    assert!(!store.record_sale("nobody", DAY1).await?);
    agent_in(store, "1001", InCall).await?;
    let counters = |a: Agent| (a.state, a.last_call_end_ms, a.calls_today, a.calls_day);

    assert!(store.finish_agent_call("1001", 1_000, DAY1, 0).await? == Transition::Moved);
    let a = get(store, "1001").await?;
    assert_eq!((&a.current_call, &a.current_node), (&None, &None));
    assert_eq!(counters(a), (WrapUp, Some(1_000), 1, Some(DAY1.to_owned())));
    // Only a call in progress can finish.
    assert!(!(store.finish_agent_call("1001", 1_100, DAY1, 0).await? == Transition::Moved));

    assert!(store.record_sale("1001", DAY1).await?);
    assert_eq!(
        counters(get(store, "1001").await?),
        (WrapUp, Some(1_000), 2, Some(DAY1.to_owned()))
    );

    for (from, to) in [(WrapUp, Available), (Available, InCall)] {
        assert!(
            store
                .transition_agent("1001", &[from], to, 1_500, Some(("c", "n")))
                .await?
        );
    }
    assert!(store.finish_agent_call("1001", 2_000, DAY1, 0).await? == Transition::Moved);
    assert_eq!(get(store, "1001").await?.calls_today, 3);

    // A new day starts again from 1, for sales as for calls.
    assert!(store.record_sale("1001", DAY2).await?);
    assert_eq!(
        counters(get(store, "1001").await?),
        (WrapUp, Some(2_000), 1, Some(DAY2.to_owned()))
    );
    Ok(())
}

async fn config_writes_bump_version(store: &Store) -> Result<(), StoreError> {
    new_agent(store, "1001").await?;
    assert_eq!(store.config_version().await?, 1);
    assert!(store.set_daily_limit("1001", Some(3)).await?);
    assert_eq!(get(store, "1001").await?.daily_limit, Some(3));
    assert!(store.set_daily_limit("1001", None).await?);
    assert_eq!(get(store, "1001").await?.daily_limit, None);
    assert!(!store.set_daily_limit("nobody", Some(1)).await?);
    assert_eq!(store.config_version().await?, 3);

    // Runtime changes leave the version alone.
    assert!(store.login_agent("1001", "d1", 200).await?);
    assert!(store.set_paused("1001", true, 300).await?);
    assert!(store.set_paused("1001", false, 300).await?);
    assert!(
        store
            .transition_agent("1001", &[Available], InCall, 400, Some(("c", "n")))
            .await?
    );
    assert!(store.finish_agent_call("1001", 500, DAY1, 0).await? == Transition::Moved);
    assert!(store.record_sale("1001", DAY1).await?);
    assert!(store.logout_agent("1001", 600).await?);
    assert_eq!(store.config_version().await?, 3);

    assert!(store.delete_agent("1001").await?);
    assert!(!store.delete_agent("1001").await?);
    assert_eq!(store.agent("1001").await?, None);
    assert_eq!(store.config_version().await?, 4);
    Ok(())
}

async fn pin_hash_upgrade_is_guarded_and_not_a_config_change(
    store: &Store,
) -> Result<(), StoreError> {
    store
        .upsert_agent(&Agent::new("1001", "Alice", "old", 100))
        .await?;
    let version = store.config_version().await?;
    assert!(!store.upgrade_agent_pin_hash("1001", "other", "new").await?);
    assert!(!store.upgrade_agent_pin_hash("nobody", "old", "new").await?);
    assert_eq!(get(store, "1001").await?.pin_hash, "old");
    assert!(store.upgrade_agent_pin_hash("1001", "old", "new").await?);
    assert_eq!(get(store, "1001").await?.pin_hash, "new");
    assert_eq!(store.config_version().await?, version);
    Ok(())
}

async fn release_node_agents_frees_only_that_node(store: &Store) -> Result<(), StoreError> {
    agent_in(store, "a1", Reserved).await?;
    agent_in(store, "a2", InCall).await?;
    agent_in(store, "a3", Available).await?;
    assert!(store.set_paused("a2", true, 500).await?);
    agent_in(store, "b1", Available).await?;
    assert!(
        store
            .transition_agent("b1", &[Available], Ringing, 500, Some(("cb", "node-b")))
            .await?
    );

    assert_eq!(store.release_node_agents("node-a", 1_000).await?, 2);
    let state = |a: Agent| (a.state, a.state_since_ms, a.current_call, a.current_node);
    assert_eq!(
        state(get(store, "a1").await?),
        (Available, 1_000, None, None)
    );
    assert_eq!(state(get(store, "a2").await?), (Paused, 1_000, None, None));
    assert_eq!(
        state(get(store, "b1").await?),
        (
            Ringing,
            500,
            Some("cb".to_owned()),
            Some("node-b".to_owned())
        )
    );
    assert_eq!(get(store, "a3").await?.state, Available);
    assert_eq!(store.release_node_agents("node-a", 2_000).await?, 0);
    Ok(())
}

async fn concurrent_transitions_have_one_winner(store: &Store) -> Result<(), StoreError> {
    agent_in(store, "1001", Available).await?;
    for round in 0..10 {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..8 {
            let store = store.clone();
            tasks.spawn(async move {
                let call = format!("call-{i}");
                let won = store
                    .transition_agent("1001", &[Available], Reserved, 1_000, Some((&call, "n")))
                    .await?;
                Ok::<_, StoreError>(won.then_some(call))
            });
        }
        let mut winners = Vec::new();
        while let Some(res) = tasks.join_next().await {
            winners.extend(res.expect("transition task")?);
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        assert_eq!(get(store, "1001").await?.current_call, winners.pop());
        assert!(
            store
                .transition_agent("1001", &[Reserved], Available, 1_000, None)
                .await?
        );
    }
    Ok(())
}

async fn concurrent_logins_leave_one_agent_on_the_device(store: &Store) -> Result<(), StoreError> {
    let exts: Vec<String> = (0..8).map(|i| format!("10{i}")).collect();
    for ext in &exts {
        new_agent(store, ext).await?;
    }
    let mut tasks = tokio::task::JoinSet::new();
    for ext in exts.clone() {
        let store = store.clone();
        tasks.spawn(async move {
            let ok = store.login_agent(&ext, "shared", 1_000).await?;
            Ok::<_, StoreError>(ok.then_some(ext))
        });
    }
    let mut succeeded = HashSet::new();
    while let Some(res) = tasks.join_next().await {
        succeeded.extend(res.expect("login task")?);
    }
    let holders: Vec<Agent> = store
        .agents()
        .await?
        .into_iter()
        .filter(|a| a.state != LoggedOut)
        .collect();
    assert_eq!(holders.len(), 1, "{holders:?}");
    assert_eq!(holders[0].device.as_deref(), Some("shared"));
    assert!(succeeded.contains(&holders[0].extension));
    Ok(())
}

#[test]
fn utc_days_across_epoch_leap_day_and_today() {
    use crate::utc_day;
    assert_eq!(utc_day(0), "1970-01-01");
    assert_eq!(utc_day(86_399_999), "1970-01-01");
    assert_eq!(utc_day(86_400_000), "1970-01-02");
    assert_eq!(utc_day(951_782_400_000), "2000-02-29");
    assert_eq!(utc_day(1_795_440_000_000), "2026-11-23");
    assert_eq!(utc_day(-1), "1969-12-31");
}
