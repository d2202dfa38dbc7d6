//! Tests for heartbeats, history and the drain flag, on both flavours.

use crate::testdb::flavour_tests;
use crate::{Heartbeat, HeartbeatPoint, Store, StoreError};

flavour_tests!(
    upsert_twice_keeps_one_row_and_two_points,
    booleans_round_trip,
    prune_history_removes_old_points,
    older_generation_is_fenced,
    draining_is_sticky_within_a_generation,
);

fn beat(name: &str, generation: i64, seq: i64, at_ms: i64) -> Heartbeat {
    Heartbeat {
        name: name.to_owned(),
        role: "main".to_owned(),
        sip_addr: "127.0.0.11:5060".to_owned(),
        http_addr: "127.0.0.11:8080".to_owned(),
        generation,
        seq,
        calls: 3 * seq,
        capacity: 500,
        cpu_milli: 123 + seq,
        load1_milli: 1500 + seq,
        mem_used_kb: 1_000_000,
        mem_total_kb: 8_000_000,
        shed_level: 1,
        draining: false,
        refusing: false,
        services: "sip,media,lb,web".to_owned(),
        version: "0.1.0".to_owned(),
        updated_at_ms: at_ms,
    }
}

fn point(hb: &Heartbeat) -> HeartbeatPoint {
    HeartbeatPoint {
        name: hb.name.clone(),
        at_ms: hb.updated_at_ms,
        calls: hb.calls,
        cpu_milli: hb.cpu_milli,
        load1_milli: hb.load1_milli,
    }
}

async fn upsert_twice_keeps_one_row_and_two_points(store: &Store) -> Result<(), StoreError> {
    let first = beat("main-a", 7, 1, 1_000);
    let second = Heartbeat {
        role: "extra".to_owned(),
        version: "0.2.0".to_owned(),
        ..beat("main-a", 7, 2, 3_000)
    };
    assert!(store.upsert_heartbeat(&first).await?);
    assert!(store.upsert_heartbeat(&second).await?);
    assert_eq!(store.heartbeats().await?, vec![second.clone()]);
    assert_eq!(store.history(0).await?, vec![point(&first), point(&second)]);
    assert_eq!(store.history(2_000).await?, vec![point(&second)]);
    Ok(())
}

async fn booleans_round_trip(store: &Store) -> Result<(), StoreError> {
    let cases = [
        ("n0", false, false),
        ("n1", false, true),
        ("n2", true, false),
        ("n3", true, true),
    ];
    let mut want = Vec::new();
    // Written in reverse so the check also covers ordering by name.
    for (name, draining, refusing) in cases.iter().rev() {
        let hb = Heartbeat {
            draining: *draining,
            refusing: *refusing,
            ..beat(name, 1, 1, 1_000)
        };
        assert!(store.upsert_heartbeat(&hb).await?);
        want.insert(0, hb);
    }
    assert_eq!(store.heartbeats().await?, want);
    Ok(())
}

async fn prune_history_removes_old_points(store: &Store) -> Result<(), StoreError> {
    let beats: Vec<Heartbeat> = [(1, 1_000), (2, 2_000), (3, 3_000)]
        .into_iter()
        .map(|(seq, at)| beat("extra-1", 1, seq, at))
        .collect();
    for hb in &beats {
        assert!(store.upsert_heartbeat(hb).await?);
    }
    assert_eq!(store.prune_history(2_000).await?, 1);
    assert_eq!(store.prune_history(2_000).await?, 0);
    assert_eq!(
        store.history(0).await?,
        vec![point(&beats[1]), point(&beats[2])]
    );
    assert_eq!(store.prune_history(i64::MAX).await?, 2);
    assert_eq!(store.history(0).await?, vec![]);
    // Pruning history never touches the current row.
    assert_eq!(store.heartbeats().await?, vec![beats[2].clone()]);
    Ok(())
}

async fn older_generation_is_fenced(store: &Store) -> Result<(), StoreError> {
    let new = beat("main-b", 200, 1, 5_000);
    let stale = Heartbeat {
        calls: 99,
        ..beat("main-b", 100, 50, 6_000)
    };
    let newer = beat("main-b", 300, 1, 7_000);
    assert!(store.upsert_heartbeat(&new).await?);
    assert!(
        !store.upsert_heartbeat(&stale).await?,
        "stale generation must be fenced"
    );
    assert_eq!(store.heartbeats().await?, vec![new.clone()]);
    assert_eq!(store.history(0).await?, vec![point(&new)]);
    assert!(store.upsert_heartbeat(&newer).await?);
    assert_eq!(store.heartbeats().await?, vec![newer.clone()]);
    Ok(())
}

async fn draining_is_sticky_within_a_generation(store: &Store) -> Result<(), StoreError> {
    assert!(!store.set_draining("nobody", true).await?);
    let name = "main-c";
    assert!(store.upsert_heartbeat(&beat(name, 1, 1, 1_000)).await?);
    let draining = |store: &Store| {
        let store = store.clone();
        async move {
            let rows = store.heartbeats().await?;
            Ok::<_, StoreError>(rows.iter().any(|hb| hb.name == name && hb.draining))
        }
    };

    assert!(store.set_draining(name, true).await?);
    assert!(draining(store).await?);
    // The node's next beat does not know yet; the flag stays.
    assert!(store.upsert_heartbeat(&beat(name, 1, 2, 2_000)).await?);
    assert!(draining(store).await?);
    // Clearing it explicitly works.
    assert!(store.set_draining(name, false).await?);
    assert!(!draining(store).await?);
    // A beat that says draining sets it, a later one of the same run cannot clear it.
    let own = Heartbeat {
        draining: true,
        ..beat(name, 1, 3, 3_000)
    };
    assert!(store.upsert_heartbeat(&own).await?);
    assert!(store.upsert_heartbeat(&beat(name, 1, 4, 4_000)).await?);
    assert!(draining(store).await?);
    // A restart (new generation) starts from the beat's value.
    assert!(store.upsert_heartbeat(&beat(name, 2, 1, 5_000)).await?);
    assert!(!draining(store).await?);
    Ok(())
}
