//! Test support: a fresh, migrated database of each flavour per test, and
//! `flavour_tests!` to run one check against both.
//!
//! PostgreSQL tests need a server: `CALLFLEET_TEST_PG` (default
//! `postgres://postgres@127.0.0.1`, a server URL without a database). Each
//! test creates its own database `cf_test_*` there and drops it at the end.
//! An unreachable server fails the test; it is never skipped.

use std::error::Error;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{redact_url, Store};

const PG_ENV: &str = "CALLFLEET_TEST_PG";
const PG_DEFAULT: &str = "postgres://postgres@127.0.0.1";

/// A migrated store that lives as long as the test.
pub(crate) struct TestDb {
    pub store: Store,
    cleanup: Cleanup,
}

enum Cleanup {
    /// The directory holding the database file, deleted on drop.
    Sqlite {
        _dir: tempfile::TempDir,
    },
    Postgres {
        admin_url: String,
        db: String,
    },
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("create temp dir for SQLite test database");
        let url = format!("sqlite://{}/cluster.db", dir.path().display());
        let store = Store::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("open SQLite test database: {}", chain(&e)));
        store
            .migrate()
            .await
            .unwrap_or_else(|e| panic!("migrate SQLite test database: {}", chain(&e)));
        TestDb {
            store,
            cleanup: Cleanup::Sqlite { _dir: dir },
        }
    }

    pub async fn postgres() -> TestDb {
        let server = pg_server_url();
        let admin_url = format!("{server}/postgres");
        let admin = Store::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("{}", pg_unreachable(&server, &e)));
        let db = unique_db_name();
        sqlx::query(&format!("CREATE DATABASE {db}"))
            .execute(admin.pool())
            .await
            .unwrap_or_else(|e| panic!("create test database {db}: {}", chain(&e)));
        admin.close().await;
        // From here on `Drop` removes the database, even if the test panics.
        let mut testdb = TestDb {
            store: Store::connect(&format!("{server}/{db}"))
                .await
                .unwrap_or_else(|e| panic!("connect to test database {db}: {}", chain(&e))),
            cleanup: Cleanup::Postgres { admin_url, db },
        };
        if let Err(e) = testdb.store.migrate().await {
            let msg = format!("migrate PostgreSQL test database: {}", chain(&e));
            drop_pg_db(&mut testdb);
            panic!("{msg}");
        }
        testdb
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        drop_pg_db(self);
    }
}

/// Drops the test's PostgreSQL database from a thread with its own runtime
/// (`drop` cannot await on the test's). `WITH (FORCE)` ends the connections
/// the store still holds. Never panics: this may run during a panic.
fn drop_pg_db(testdb: &mut TestDb) {
    let Cleanup::Postgres { admin_url, db } = &mut testdb.cleanup else {
        return;
    };
    if db.is_empty() {
        return;
    }
    let (admin_url, db) = (admin_url.clone(), std::mem::take(db));
    let name = db.clone();
    let joined = std::thread::spawn(move || -> Result<(), Box<dyn Error + Send + Sync>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let admin = Store::connect(&admin_url).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                .execute(admin.pool())
                .await?;
            admin.close().await;
            Ok(())
        })
    })
    .join();
    match joined {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("warning: drop test database {name}: {}", chain(&*e)),
        Err(_) => eprintln!("warning: drop test database {name}: cleanup thread panicked"),
    }
}

fn pg_server_url() -> String {
    std::env::var(PG_ENV)
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| PG_DEFAULT.to_owned())
        .trim_end_matches('/')
        .to_owned()
}

fn pg_unreachable(server: &str, e: &dyn Error) -> String {
    format!(
        "PostgreSQL is not reachable at {} ({}).\n\
         The callfleet-store tests run against both SQLite and PostgreSQL. Install and start \
         PostgreSQL (e.g. `apt-get install postgresql && service postgresql start`) with trust \
         auth for user `postgres` on 127.0.0.1, or set {PG_ENV} to a server URL without a \
         database, e.g. postgres://user:password@127.0.0.1:5432",
        redact_url(server),
        chain(e)
    )
}

fn unique_db_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "cf_test_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// An error and its causes, `: `-separated.
pub(crate) fn chain(e: &dyn Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// `flavour_tests!(check_a, check_b)`: for each
/// `async fn check_a(store: &Store) -> Result<(), StoreError>` in scope, a
/// module `check_a` with the tests `sqlite` and `postgres`, each on its own
/// fresh, migrated database.
macro_rules! flavour_tests {
    ($($check:ident),+ $(,)?) => {$(
        mod $check {
            #[tokio::test]
            async fn sqlite() {
                let db = $crate::testdb::TestDb::sqlite().await;
                if let Err(e) = super::$check(&db.store).await {
                    panic!("{}", $crate::testdb::chain(&e));
                }
            }

            #[tokio::test]
            async fn postgres() {
                let db = $crate::testdb::TestDb::postgres().await;
                if let Err(e) = super::$check(&db.store).await {
                    panic!("{}", $crate::testdb::chain(&e));
                }
            }
        }
    )+};
}
pub(crate) use flavour_tests;
