//! Tests for the cluster queue, on both flavours.

use crate::testdb::flavour_tests;
use crate::{EntryState, NewEntry, QueueEntry, Store, StoreError};
use EntryState::*;

flavour_tests!(
    enqueue_orders_across_queues,
    enqueue_twice_is_duplicate,
    entry_state_machine,
    remove_entries,
    concurrent_claims_have_one_winner,
);

#[test]
fn entry_state_text_round_trips() {
    for state in EntryState::ALL {
        assert_eq!(state.as_str().parse::<EntryState>(), Ok(state));
        assert_eq!(state.to_string(), state.as_str());
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(json, format!("\"{}\"", state.as_str()));
    }
    let err = "queued".parse::<EntryState>().unwrap_err();
    assert_eq!(
        (err.kind, err.value.as_str()),
        ("queue entry state", "queued")
    );
}

fn new(queue: &str, node: &str, call_id: &str, priority: i64, at: i64) -> NewEntry {
    NewEntry {
        queue: queue.to_owned(),
        node: node.to_owned(),
        call_id: call_id.to_owned(),
        caller: format!("caller-{call_id}"),
        priority,
        vip: false,
        enqueued_at_ms: at,
    }
}

fn stored(id: i64, e: &NewEntry, state: EntryState, offered_to: Option<&str>) -> QueueEntry {
    QueueEntry {
        id,
        queue: e.queue.clone(),
        node: e.node.clone(),
        call_id: e.call_id.clone(),
        caller: e.caller.clone(),
        priority: e.priority,
        vip: e.vip,
        enqueued_at_ms: e.enqueued_at_ms,
        state,
        offered_to: offered_to.map(str::to_owned),
    }
}

async fn enqueue_orders_across_queues(store: &Store) -> Result<(), StoreError> {
    let late_vip = NewEntry {
        vip: true,
        ..new("support", "main-b", "c1", 0, 5_000)
    };
    let entries = [
        new("sales", "main-a", "c2", 1, 1_000),
        late_vip,
        new("sales", "main-a", "c3", 1, 1_000), // same time: by id
        new("support", "main-b", "c4", 1, 500),
    ];
    let mut ids = Vec::new();
    for e in &entries {
        ids.push(store.enqueue(e).await?);
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
    let want = |order: [usize; 4]| -> Vec<QueueEntry> {
        order
            .iter()
            .map(|&i| stored(ids[i], &entries[i], Waiting, None))
            .collect()
    };
    assert_eq!(store.waiting_entries().await?, want([1, 3, 0, 2]));
    assert_eq!(
        store.entry(ids[1]).await?,
        Some(stored(ids[1], &entries[1], Waiting, None))
    );
    assert_eq!(store.entry(-1).await?, None);

    // Entries being offered leave the waiting list but stay in `entries`.
    assert!(store.claim_entry(ids[3], "1001").await?);
    let waiting = store.waiting_entries().await?;
    assert_eq!(
        waiting.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![ids[1], ids[0], ids[2]]
    );
    let all = store.entries().await?;
    assert_eq!(all.len(), 4);
    assert_eq!(all[1], stored(ids[3], &entries[3], Offering, Some("1001")));

    // A bridged entry stays in `entries` but leaves the open ones (what dispatch reads).
    assert!(store.claim_entry(ids[0], "1002").await?);
    assert!(store.bridge_entry(ids[0], "1002").await?);
    let open: Vec<(i64, EntryState)> = store
        .open_entries()
        .await?
        .iter()
        .map(|e| (e.id, e.state))
        .collect();
    assert_eq!(
        open,
        vec![(ids[1], Waiting), (ids[3], Offering), (ids[2], Waiting)]
    );
    assert_eq!(store.entries().await?.len(), 4);
    assert_eq!(store.entry_nodes().await?, vec!["main-a", "main-b"]);
    store.remove_node_entries("main-b").await?;
    assert_eq!(store.entry_nodes().await?, vec!["main-a"]);
    Ok(())
}

async fn enqueue_twice_is_duplicate(store: &Store) -> Result<(), StoreError> {
    let e = new("sales", "main-a", "c1", 0, 1_000);
    store.enqueue(&e).await?;
    let res = store
        .enqueue(&new("support", "main-a", "c1", 0, 2_000))
        .await;
    assert!(matches!(res, Err(StoreError::Duplicate { .. })), "{res:?}");
    // The same Call-ID on another node is another call.
    store
        .enqueue(&new("sales", "main-b", "c1", 0, 3_000))
        .await?;
    assert_eq!(store.entries().await?.len(), 2);
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Claim(&'static str),
    Unclaim,
    Bridge(&'static str),
}

async fn entry_state_machine(store: &Store) -> Result<(), StoreError> {
    let e = new("sales", "main-a", "c1", 0, 1_000);
    let id = store.enqueue(&e).await?;
    // (operation, changed?, state after, offered_to after)
    let steps = [
        (Op::Unclaim, false, Waiting, None),
        (Op::Bridge("1001"), false, Waiting, None),
        (Op::Claim("1001,1002"), true, Offering, Some("1001,1002")),
        (Op::Claim("1003"), false, Offering, Some("1001,1002")),
        (Op::Unclaim, true, Waiting, None),
        (Op::Claim("1003"), true, Offering, Some("1003")),
        (Op::Bridge("1003"), true, Bridged, Some("1003")),
        (Op::Bridge("1004"), false, Bridged, Some("1003")),
        (Op::Unclaim, false, Bridged, Some("1003")),
        (Op::Claim("1004"), false, Bridged, Some("1003")),
    ];
    for (i, (op, changed, state, offered_to)) in steps.into_iter().enumerate() {
        let got = match op {
            Op::Claim(agents) => store.claim_entry(id, agents).await?,
            Op::Unclaim => store.unclaim_entry(id).await?,
            Op::Bridge(agent) => store.bridge_entry(id, agent).await?,
        };
        assert_eq!(got, changed, "step {i}: {op:?}");
        assert_eq!(
            store.entry(id).await?,
            Some(stored(id, &e, state, offered_to)),
            "step {i}: {op:?}"
        );
    }
    // No entry, no change.
    assert!(!store.claim_entry(id + 100, "1001").await?);
    assert!(!store.unclaim_entry(id + 100).await?);
    assert!(!store.bridge_entry(id + 100, "1001").await?);
    Ok(())
}

async fn remove_entries(store: &Store) -> Result<(), StoreError> {
    let a1 = store.enqueue(&new("sales", "main-a", "c1", 0, 1)).await?;
    let a2 = store.enqueue(&new("sales", "main-a", "c2", 0, 2)).await?;
    let b1 = store.enqueue(&new("sales", "main-b", "c3", 0, 3)).await?;
    assert!(store.claim_entry(a2, "1001").await?);
    assert!(store.remove_entry(a1).await?);
    assert!(!store.remove_entry(a1).await?);
    assert_eq!(store.remove_node_entries("main-a").await?, 1);
    assert_eq!(store.remove_node_entries("main-a").await?, 0);
    let left: Vec<i64> = store.entries().await?.iter().map(|e| e.id).collect();
    assert_eq!(left, vec![b1]);
    Ok(())
}

async fn concurrent_claims_have_one_winner(store: &Store) -> Result<(), StoreError> {
    let id = store.enqueue(&new("sales", "main-a", "c1", 0, 1)).await?;
    for round in 0..10 {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..8 {
            let store = store.clone();
            tasks.spawn(async move {
                let agents = format!("agent-{i}");
                let won = store.claim_entry(id, &agents).await?;
                Ok::<_, StoreError>(won.then_some(agents))
            });
        }
        let mut winners = Vec::new();
        while let Some(res) = tasks.join_next().await {
            winners.extend(res.expect("claim task")?);
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let entry = store.entry(id).await?.expect("entry exists");
        assert_eq!((entry.state, entry.offered_to), (Offering, winners.pop()));
        assert!(store.unclaim_entry(id).await?);
    }
    Ok(())
}
