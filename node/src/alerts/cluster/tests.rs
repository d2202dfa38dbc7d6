//! Who sends: two nodes' clusters over one lock backend and one SQLite database, as two main
//! nodes over one lockd and one PostgreSQL.

use std::collections::BTreeSet;
use std::time::Duration;

use callfleet_lockd::LockClient;
use callfleet_store::{AlertKind, Severity, Store};

use super::{lease_key, Cluster};
use crate::alerts::deliver::{Notice, Status};
use crate::alerts::engine::{Condition, Engine, Key, Observation, Timing};

#[test]
fn lease_keys_stay_in_the_lease_alphabet() {
    let cases = [
        (AlertKind::NodeDown, "main-b", "alerts:node_down:main-b"),
        (
            AlertKind::CarrierSilent,
            "Acme Tel=1",
            "alerts:carrier_silent:Acme=20Tel=3D1",
        ),
        (AlertKind::DiskFull, "a /srv", "alerts:disk_full:a=20=2Fsrv"),
    ];
    for (kind, subject, want) in cases {
        let got = lease_key(&Key::new(kind, subject));
        assert_eq!(got, want);
        assert!(callfleet_lockd::LockKey::parse(&got).is_ok(), "{got}");
    }
    let long = lease_key(&Key::new(AlertKind::ServiceLevelLow, "q".repeat(300)));
    assert!(long.len() <= 200, "{long}");
    assert!(callfleet_lockd::LockKey::parse(&long).is_ok(), "{long}");
}

fn engine() -> Engine {
    Engine::new(Timing {
        raise_after: Default::default(),
        clear_after: Duration::ZERO,
        repeat_after: Duration::ZERO,
    })
}

fn down(node: &str) -> Condition {
    Condition {
        key: Key::new(AlertKind::NodeDown, node),
        node: Some(node.to_owned()),
        severity: Severity::Critical,
        message: format!("node {node} stopped heartbeating"),
    }
}

fn seen(conditions: Vec<Condition>) -> Observation {
    Observation {
        known: BTreeSet::from([AlertKind::NodeDown]),
        conditions,
    }
}

async fn store(dir: &tempfile::TempDir) -> Store {
    let url = format!("sqlite://{}/cluster.db", dir.path().display());
    let store = Store::connect(&url).await.expect("open SQLite");
    store.migrate().await.expect("migrate");
    store
}

/// One evaluation on one node: step its engine, settle, return what it sends.
async fn tick(
    engine: &mut Engine,
    cluster: &mut Cluster,
    store: &Store,
    obs: &Observation,
    now_ms: i64,
) -> Vec<Notice> {
    let transitions = engine.step(now_ms, obs);
    let rows = store.active_alerts().await.expect("read alerts");
    cluster
        .settle(engine, &transitions, &rows, &obs.known, now_ms)
        .await
}

#[tokio::test]
async fn two_nodes_send_a_raise_once_and_its_end_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = store(&dir).await;
    let locks = LockClient::in_process();
    let ttl = Duration::from_secs(60);
    let mut a = (
        engine(),
        Cluster::new(locks.clone(), store.clone(), "a", 1, ttl),
    );
    let mut b = (
        engine(),
        Cluster::new(locks.clone(), store.clone(), "b", 1, ttl),
    );

    let dead = seen(vec![down("c")]);
    let sent_a = tick(&mut a.0, &mut a.1, &store, &dead, 1_000).await;
    let sent_b = tick(&mut b.0, &mut b.1, &store, &dead, 1_100).await;
    assert_eq!(sent_a.len(), 1, "a holds the lease and raises: {sent_a:?}");
    assert_eq!(sent_a[0].status, Status::Firing);
    assert_eq!(sent_a[0].node.as_deref(), Some("c"));
    assert!(sent_b.is_empty(), "b finds the lease held: {sent_b:?}");
    let rows = store.active_alerts().await.expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].reported_by, "a");

    // Still down: nothing more from either.
    assert!(tick(&mut a.0, &mut a.1, &store, &dead, 2_000)
        .await
        .is_empty());
    assert!(tick(&mut b.0, &mut b.1, &store, &dead, 2_100)
        .await
        .is_empty());

    // Back: b sees it first but a holds the lease; a ends it.
    let back = seen(vec![]);
    assert!(tick(&mut b.0, &mut b.1, &store, &back, 3_000)
        .await
        .is_empty());
    let ended = tick(&mut a.0, &mut a.1, &store, &back, 3_100).await;
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0].status, Status::Resolved);
    assert_eq!(ended[0].since_ms, 1_000);
    assert!(store.active_alerts().await.expect("rows").is_empty());
    assert!(tick(&mut b.0, &mut b.1, &store, &back, 3_200)
        .await
        .is_empty());
}

#[tokio::test]
async fn a_node_taking_over_a_lease_does_not_raise_again_but_ends_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = store(&dir).await;
    let locks = LockClient::in_process();
    let ttl = Duration::from_secs(60);
    let mut a = (
        engine(),
        Cluster::new(locks.clone(), store.clone(), "a", 1, ttl),
    );
    let mut b = (
        engine(),
        Cluster::new(locks.clone(), store.clone(), "b", 1, ttl),
    );
    let dead = seen(vec![down("c")]);
    assert_eq!(
        tick(&mut a.0, &mut a.1, &store, &dead, 1_000).await.len(),
        1
    );
    assert!(tick(&mut b.0, &mut b.1, &store, &dead, 1_100)
        .await
        .is_empty());
    // a's lease runs out (as when a dies): b takes it over, finds the row, sends nothing.
    a.1.release(&Key::new(AlertKind::NodeDown, "c")).await;
    assert!(tick(&mut b.0, &mut b.1, &store, &dead, 2_000)
        .await
        .is_empty());
    assert!(b.1.held.contains_key(&Key::new(AlertKind::NodeDown, "c")));
    // The end comes from b.
    let ended = tick(&mut b.0, &mut b.1, &store, &seen(vec![]), 3_000).await;
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].status, Status::Resolved);
}

#[tokio::test]
async fn a_row_nobody_sees_firing_any_more_is_ended_by_whoever_gets_the_lease() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = store(&dir).await;
    let locks = LockClient::in_process();
    let mut a = (
        engine(),
        Cluster::new(
            locks.clone(),
            store.clone(),
            "a",
            1,
            Duration::from_secs(60),
        ),
    );
    assert_eq!(
        tick(&mut a.0, &mut a.1, &store, &seen(vec![down("c")]), 1_000)
            .await
            .len(),
        1
    );
    a.1.release(&Key::new(AlertKind::NodeDown, "c")).await;
    // A node started later never saw it firing: the row is an orphan it may end.
    let mut late = (
        engine(),
        Cluster::new(locks, store.clone(), "d", 2, Duration::from_secs(60)),
    );
    let ended = tick(&mut late.0, &mut late.1, &store, &seen(vec![]), 5_000).await;
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].ended_at_ms, Some(5_000));
    // A kind this node could not evaluate (its data unreadable, or the rule off) is never
    // ended by it.
    assert_eq!(
        tick(&mut a.0, &mut a.1, &store, &seen(vec![down("e")]), 6_000)
            .await
            .len(),
        1
    );
    a.1.release(&Key::new(AlertKind::NodeDown, "e")).await;
    let rows = store.active_alerts().await.expect("rows");
    let unknown = BTreeSet::new();
    let sent = late.1.settle(&late.0, &[], &rows, &unknown, 7_000).await;
    assert!(sent.is_empty());
    assert_eq!(store.active_alerts().await.expect("rows").len(), 1);
}
