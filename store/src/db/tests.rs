//! Tests for connecting, migrating and SQLite file handling.

use super::*;
use crate::testdb::{chain, flavour_tests};
use crate::Heartbeat;

flavour_tests!(migrate_twice_is_idempotent, ping_answers);

async fn migrate_twice_is_idempotent(store: &Store) -> Result<(), StoreError> {
    // The test database is migrated already: this is the second and third run.
    store.migrate().await?;
    store.migrate().await?;
    let want = match store.flavour() {
        Flavour::Postgres => POSTGRES_MIGRATIONS.iter().count(),
        Flavour::Sqlite => SQLITE_MIGRATIONS.iter().count(),
    };
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(store.pool())
        .await
        .map_err(StoreError::query("count migrations"))?;
    assert_eq!(usize::try_from(applied).ok(), Some(want));
    assert_eq!(store.heartbeats().await?, vec![]);
    Ok(())
}

async fn ping_answers(store: &Store) -> Result<(), StoreError> {
    store.ping().await
}

fn beat(name: &str) -> Heartbeat {
    Heartbeat {
        name: name.to_owned(),
        role: "extra".to_owned(),
        sip_addr: "127.0.0.13:5060".to_owned(),
        http_addr: "127.0.0.13:8080".to_owned(),
        generation: 1,
        seq: 1,
        calls: 0,
        capacity: 10,
        cpu_milli: 0,
        load1_milli: 0,
        mem_used_kb: 0,
        mem_total_kb: 0,
        shed_level: 0,
        draining: false,
        refusing: false,
        services: "sip".to_owned(),
        version: "0".to_owned(),
        updated_at_ms: 1,
    }
}

fn ok<T>(what: &str, r: Result<T, StoreError>) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {}", chain(&e)))
}

#[tokio::test]
async fn sqlite_creates_directories_and_sets_pragmas() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("a/b/cluster.db");
    let store = ok(
        "connect",
        Store::connect(&format!("sqlite://{}", path.display())).await,
    );
    assert_eq!(store.flavour(), Flavour::Sqlite);
    assert!(
        path.is_file(),
        "database file created at {}",
        path.display()
    );

    // Hold several connections at once so more than one is checked.
    let mut conns = Vec::new();
    for _ in 0..3 {
        conns.push(store.pool().acquire().await.expect("acquire connection"));
    }
    for conn in &mut conns {
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&mut **conn)
            .await
            .expect("read busy_timeout");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&mut **conn)
            .await
            .expect("read foreign_keys");
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut **conn)
            .await
            .expect("read journal_mode");
        assert_eq!((busy, fk, journal.as_str()), (5000, 1, "wal"));
    }
}

#[cfg(unix)]
#[tokio::test]
async fn sqlite_files_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("new/cluster.db");
    let store = ok(
        "connect",
        Store::connect(&format!("sqlite://{}", path.display())).await,
    );
    ok("migrate", store.migrate().await);
    let wal = dir.path().join("new/cluster.db-wal");
    let shm = dir.path().join("new/cluster.db-shm");
    // Made by this process: no access for others, whatever the umask adds.
    assert_eq!(mode(&dir.path().join("new")) & 0o007, 0);
    assert_eq!(mode(&dir.path().join("new")) & 0o700, 0o700);
    for f in [&path, &wal, &shm] {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    store.close().await;

    // A file an older version left world-readable loses that on the next open.
    let old = dir.path().join("old.db");
    std::fs::write(&old, b"").expect("create");
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let store = ok(
        "connect",
        Store::connect(&format!("sqlite://{}", old.display())).await,
    );
    assert_eq!(mode(&old), 0o640);
    store.close().await;
}

#[tokio::test]
async fn sqlite_memory_is_one_database() {
    let store = ok("connect", Store::connect("sqlite::memory:").await);
    ok("migrate", store.migrate().await);
    assert!(ok("upsert", store.upsert_heartbeat(&beat("m")).await));
    let reads = (0..4).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.heartbeats().await })
    });
    for read in reads {
        let rows = ok("read", read.await.expect("reader task"));
        assert_eq!(rows, vec![beat("m")]);
    }
}

#[tokio::test]
async fn two_stores_share_one_sqlite_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/shared.db", dir.path().display());
    let a = ok("connect a", Store::connect(&url).await);
    let b = ok("connect b", Store::connect(&url).await);
    ok("migrate a", a.migrate().await);
    ok("migrate b", b.migrate().await);
    assert!(ok("upsert via a", a.upsert_heartbeat(&beat("x")).await));
    assert_eq!(ok("read via b", b.heartbeats().await), vec![beat("x")]);
}

#[tokio::test]
async fn unsupported_scheme_is_refused() {
    match Store::connect("mysql://root:pw@127.0.0.1/db").await {
        Err(StoreError::UnsupportedUrl { scheme }) => assert_eq!(scheme, "mysql"),
        other => panic!("want UnsupportedUrl, got {other:?}"),
    }
}

#[tokio::test]
async fn connect_error_hides_password() {
    // A "server" that hangs up at once: the driver fails without retrying.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local addr").port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    let url = format!("postgres://cf:s3cret@127.0.0.1:{port}/db");
    let err = match Store::connect(&url).await {
        Err(e) => e,
        Ok(_) => panic!("connect to a hang-up server succeeded"),
    };
    let shown = format!("{} / {err:?}", chain(&err));
    assert!(matches!(err, StoreError::Connect { .. }), "{shown}");
    assert!(!shown.contains("s3cret"), "password leaked: {shown}");
    assert!(shown.contains("postgres://cf:***@127.0.0.1"), "{shown}");
}
