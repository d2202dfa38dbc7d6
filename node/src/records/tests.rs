//! The writer against a real (SQLite) database: in order, idempotent, a refused record does
//! not hold the others back, and what the database could not take survives in the spool.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use callfleet_store::{LiveCall, Store};
use callfleet_web::Metrics;
use tokio_util::sync::CancellationToken;

use super::frame::tests::cdr;
use super::*;

async fn store(dir: &Path) -> Store {
    let url = format!("sqlite://{}", dir.join("db.sqlite").display());
    let store = Store::connect(&url).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
}

fn setup(store: &Store, dir: &Path, metrics: &Metrics) -> Setup {
    let (spool, _) = Spool::open(&dir.join("spool"), "main-a", 1 << 20).expect("spool");
    Setup {
        store: store.clone(),
        node: "main-a".into(),
        generation: 1,
        spool,
        reports: Reports {
            metrics: metrics.clone(),
            gauge: Arc::new(crate::alerts::SpoolGauge::default()),
        },
    }
}

fn count(metrics: &Metrics, outcome: &str) -> u64 {
    let text = metrics.encode().expect("encode");
    let series = format!("callfleet_records_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(u64::MAX)
}

async fn stop(task: tokio::task::JoinHandle<()>, token: CancellationToken) {
    token.cancel();
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("the writer stops")
        .expect("the writer ran");
}

fn call_ids(cdrs: &[callfleet_store::Cdr]) -> Vec<String> {
    cdrs.iter().map(|c| c.call_id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_reach_the_database_in_order_and_a_refused_one_is_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path()).await;
    // The database refuses one CDR for good (as a constraint would).
    sqlx_exec(
        dir.path(),
        "CREATE TRIGGER poison BEFORE INSERT ON cdrs WHEN NEW.call_id = 'call-2@host' \
         BEGIN SELECT RAISE(ABORT, 'refused'); END",
    )
    .await;
    let metrics = Metrics::new();
    let token = CancellationToken::new();
    let (rec, task) = start(setup(&store, dir.path(), &metrics), token.clone()).await;
    let live = LiveCall {
        node: "main-a".into(),
        call_id: "live-1".into(),
        from_uri: "sip:a@h".into(),
        to_uri: "sip:b@h".into(),
        state: "ringing".into(),
        started_at_ms: 1,
        answered_at_ms: None,
        redirected_from: None,
    };
    rec.send(Record::Live(live));
    rec.send(Record::Answered {
        call_id: "live-1".into(),
        at_ms: 2,
    });
    for n in 1..=3 {
        rec.send(cdr(n));
    }
    stop(task, token).await;
    assert_eq!(
        call_ids(&store.cdrs_since(0).await.expect("cdrs")),
        ["call-1@host", "call-3@host"]
    );
    let calls = store.live_calls(None).await.expect("live");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].answered_at_ms, Some(2));
    assert_eq!(count(&metrics, "rejected"), 1);
    assert_eq!(count(&metrics, "written"), 4);
    let (spool, opened) = Spool::open(&dir.path().join("spool"), "main-a", 1 << 20).expect("spool");
    assert_eq!((opened.records, spool.bytes()), (0, 0), "spool empty");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_the_database_did_not_take_are_replayed_once_at_the_next_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = store(dir.path()).await;
    // The first run's database goes away before anything is written.
    db.close().await;
    let metrics = Metrics::new();
    let token = CancellationToken::new();
    let (rec, task) = start(setup(&db, dir.path(), &metrics), token.clone()).await;
    for n in 1..=3 {
        rec.send(cdr(n));
    }
    stop(task, token).await;
    assert_eq!(count(&metrics, "written"), 0);

    // The next start: one of them reached the database after all (an answer lost on the
    // way); the replay stores the other two and does not store that one twice.
    let db = store(dir.path()).await;
    let Record::Cdr(second) = cdr(2) else {
        unreachable!()
    };
    assert!(db.insert_cdr(&second).await.expect("insert").is_some());
    let metrics = Metrics::new();
    let token = CancellationToken::new();
    let (rec, task) = start(setup(&db, dir.path(), &metrics), token.clone()).await;
    rec.send(cdr(4));
    stop(task, token).await;
    let mut ids = call_ids(&db.cdrs_since(0).await.expect("cdrs"));
    ids.sort();
    assert_eq!(
        ids,
        ["call-1@host", "call-2@host", "call-3@host", "call-4@host"]
    );
    assert_eq!(count(&metrics, "duplicate"), 1);
    assert_eq!(count(&metrics, "written"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_events_and_cdrs_get_keys_of_their_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path()).await;
    let metrics = Metrics::new();
    let token = CancellationToken::new();
    let (rec, task) = start(setup(&store, dir.path(), &metrics), token.clone()).await;
    assert_eq!(rec.cdr_key(7), "main-a/1/7");
    let ev = callfleet_store::QueueEvent {
        id: 0,
        at_ms: 1,
        queue: "q".into(),
        call_id: "c".into(),
        node: "main-a".into(),
        agent: None,
        event: callfleet_store::QueueEventKind::Enqueue,
        detail: None,
        uid: None,
    };
    rec.send(Record::QueueEvent(ev.clone()));
    rec.send(Record::QueueEvent(ev));
    stop(task, token).await;
    let events = store.queue_events(None, 0).await.expect("events");
    let keys: Vec<Option<String>> = events.into_iter().map(|e| e.uid).collect();
    assert_eq!(
        keys,
        [
            Some("main-a/1/q0".to_string()),
            Some("main-a/1/q1".to_string())
        ]
    );
}

/// Runs `sql` on the test database over a connection of its own.
async fn sqlx_exec(dir: &Path, sql: &str) {
    use sqlx::Connection as _;
    let url = format!("sqlite://{}", dir.join("db.sqlite").display());
    let mut conn = sqlx::AnyConnection::connect(&url).await.expect("connect");
    sqlx::query(sql).execute(&mut conn).await.expect("exec");
}

/// While the database is slow to answer a write (here: SQLite locked by another connection,
/// so the write waits for its busy timeout), records sent meanwhile still reach the disk at
/// once: a crash then loses none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_reach_the_spool_while_a_write_hangs() {
    use sqlx::Connection as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path()).await;
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let mut locker = sqlx::AnyConnection::connect(&url).await.expect("connect");
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut locker)
        .await
        .expect("lock the database");
    let metrics = Metrics::new();
    let token = CancellationToken::new();
    let (rec, task) = start(setup(&store, dir.path(), &metrics), token.clone()).await;
    let file = dir.path().join("spool").join("main-a.spool");
    let lines = || {
        std::fs::read(&file)
            .map(|b| b.iter().filter(|&&c| c == b'\n').count())
            .unwrap_or(0)
    };
    rec.send(cdr(1));
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while lines() < 1 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The writer is now waiting on the locked database with the first record.
    rec.send(cdr(2));
    rec.send(cdr(3));
    while lines() < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        lines(),
        3,
        "all three on disk while the first write still waits"
    );
    assert_eq!(
        count(&metrics, "written"),
        0,
        "the database is still locked"
    );
    sqlx::query("ROLLBACK")
        .execute(&mut locker)
        .await
        .expect("unlock");
    drop(locker);
    stop(task, token).await;
    assert_eq!(
        call_ids(&store.cdrs_since(0).await.expect("cdrs")),
        ["call-1@host", "call-2@host", "call-3@host"]
    );
}
