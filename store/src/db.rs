//! `Store`: the pool, connecting by URL (PostgreSQL or SQLite), migrations.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

use crate::dburl::{redact_url, sqlite_target, SqliteTarget};
use crate::error::sqlx_is_transient;
use crate::{Flavour, StoreError};

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");

/// How long a caller waits for a pooled connection (or for the server to
/// accept one) before getting an error. Short: a heartbeat that cannot be
/// written within this is better reported than queued.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
const PG_MAX_CONNECTIONS: u32 = 8;
/// SQLite in WAL mode has one writer at a time; a few readers are enough.
const SQLITE_MAX_CONNECTIONS: u32 = 4;
/// Switching a fresh file to WAL needs an exclusive lock that SQLite's busy
/// timeout does not wait for, so when several nodes open a new file at the
/// same time we retry a few times.
const WAL_ATTEMPTS: u32 = 50;
const WAL_RETRY_DELAY: Duration = Duration::from_millis(100);

/// Handle to the cluster database. Cheap to clone; all clones share one pool.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pool: AnyPool,
    flavour: Flavour,
    url_redacted: String,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("flavour", &self.inner.flavour)
            .field("url", &self.inner.url_redacted)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens a pool for `url` and checks that one connection works.
    ///
    /// - `postgres://user[:password]@host[:port]/db`: a pool of up to 8.
    /// - `sqlite:///abs/path.db`, `sqlite://relative.db` (relative to the
    ///   current directory): the directory (mode 0750) and the file (0600)
    ///   are created if missing, the file is switched to WAL, every
    ///   connection gets `busy_timeout = 5000` and `foreign_keys = ON`; an
    ///   existing file (or its `-wal`, `-shm`) that other users may read
    ///   loses that access, with a warning.
    /// - `sqlite::memory:`: a private database held by a single connection,
    ///   gone when the last clone of the `Store` is dropped.
    ///
    /// Does not migrate: call [`Store::migrate`].
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        // Idempotent: sqlx guards the installation with a `Once`.
        sqlx::any::install_default_drivers();
        let flavour = Flavour::from_url(url)?;
        let url_redacted = redact_url(url);
        let pool = match flavour {
            Flavour::Postgres => AnyPoolOptions::new()
                .max_connections(PG_MAX_CONNECTIONS)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect(url)
                .await
                .map_err(|source| StoreError::Connect {
                    url_redacted: url_redacted.clone(),
                    source,
                })?,
            Flavour::Sqlite => connect_sqlite(url, &url_redacted).await?,
        };
        Ok(Store {
            inner: Arc::new(Inner {
                pool,
                flavour,
                url_redacted,
            }),
        })
    }

    /// Which database this store talks to.
    pub fn flavour(&self) -> Flavour {
        self.inner.flavour
    }

    /// The URL the store was opened with, password hidden.
    pub fn url_redacted(&self) -> &str {
        &self.inner.url_redacted
    }

    /// Applies the embedded migrations of this flavour that are not applied
    /// yet. Safe to run again. On PostgreSQL concurrent runs are serialised
    /// by an advisory lock; on SQLite run it from one process at a time
    /// (e.g. `callfleet migrate` before starting nodes).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.inner.flavour {
            Flavour::Postgres => &POSTGRES_MIGRATIONS,
            Flavour::Sqlite => &SQLITE_MIGRATIONS,
        };
        migrator
            .run(&self.inner.pool)
            .await
            .map_err(|source| StoreError::Migrate { source })
    }

    /// One round trip to the database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.inner.pool)
            .await
            .map_err(StoreError::query("ping"))?;
        Ok(())
    }

    /// Closes the pool: waits for connections in use to be returned, then
    /// closes them all. Later calls on any clone fail.
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }
}

async fn connect_sqlite(url: &str, url_redacted: &str) -> Result<AnyPool, StoreError> {
    let connect_err = |source| StoreError::Connect {
        url_redacted: url_redacted.to_owned(),
        source,
    };
    // An unknown current directory leaves a relative path relative, which
    // the driver then resolves the same way.
    let cwd = std::env::current_dir().unwrap_or_default();
    match sqlite_target(url, &cwd)? {
        SqliteTarget::Memory { url } => {
            // Each connection to `:memory:` opens its own empty database, so
            // the pool holds exactly one connection and never retires it.
            sqlite_pool_options()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect(&url)
                .await
                .map_err(connect_err)
        }
        SqliteTarget::File {
            path,
            create,
            read_only,
            url,
        } => {
            if create {
                private_file(&path)?;
            }
            let pool = sqlite_pool_options()
                .max_connections(SQLITE_MAX_CONNECTIONS)
                .connect(&url)
                .await
                .map_err(connect_err)?;
            if !read_only {
                enable_wal(&pool).await?;
                no_access_for_others(&path);
            }
            Ok(pool)
        }
    }
}

/// Creates the database's directory (0750) and an empty file (0600) when they are missing,
/// before SQLite opens it: SQLite gives its `-wal` and `-shm` files the database's mode.
fn private_file(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        builder.mode(0o750);
        builder
            .create(dir)
            .map_err(|source| StoreError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::CreateFile {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Takes other users' access away from the database file and its `-wal` and `-shm` (files
/// made world-readable by earlier versions); a failure is only logged (a management command
/// run by another member of the group may not change the owner's file).
fn no_access_for_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            let file = PathBuf::from(name);
            let Ok(meta) = std::fs::metadata(&file) else {
                continue;
            };
            let mode = meta.permissions().mode();
            if mode & 0o007 == 0 {
                continue;
            }
            let private = std::fs::Permissions::from_mode(mode & !0o007);
            match std::fs::set_permissions(&file, private) {
                Ok(()) => {
                    tracing::warn!(file = %file.display(), "the database file was open to every user: access for others removed")
                }
                Err(e) => {
                    tracing::warn!(file = %file.display(), error = %e, "the database file is open to every user and its mode cannot be changed: chmod o-rwx it")
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

fn sqlite_pool_options() -> AnyPoolOptions {
    AnyPoolOptions::new()
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute("PRAGMA busy_timeout = 5000").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                Ok(())
            })
        })
}

/// WAL is a property of the file: setting it once, on any connection, is
/// enough for all later ones.
async fn enable_wal(pool: &AnyPool) -> Result<(), StoreError> {
    let mut attempt = 1;
    loop {
        let res = sqlx::query_scalar::<_, String>("PRAGMA journal_mode = WAL")
            .fetch_one(pool)
            .await;
        match res {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(mode) => {
                tracing::warn!(%mode, "SQLite kept its journal mode instead of WAL; readers will wait for writers");
                return Ok(());
            }
            Err(e) if attempt < WAL_ATTEMPTS && sqlx_is_transient(&e) => {
                attempt += 1;
                tokio::time::sleep(WAL_RETRY_DELAY).await;
            }
            Err(source) => {
                return Err(StoreError::Query {
                    what: "set journal_mode = WAL",
                    source,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests;
