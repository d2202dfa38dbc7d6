//! `StoreError`: what failed in the store, and whether trying again may help.

use std::path::PathBuf;

use sqlx::error::ErrorKind;

/// Everything the store can fail with. Messages name the failed step; the
/// cause is in `source()` (print the chain, e.g. anyhow's `{:#}`). URLs in
/// messages are always redacted: a password never reaches a log.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL scheme is neither `postgres`/`postgresql` nor `sqlite`.
    #[error("unsupported database URL scheme {scheme:?} (expected postgres://, postgresql:// or sqlite:)")]
    UnsupportedUrl { scheme: String },

    /// The URL has a supported scheme but cannot be used.
    #[error("invalid database URL {url_redacted}: {reason}")]
    InvalidUrl {
        url_redacted: String,
        reason: &'static str,
    },

    /// The directory meant to hold the SQLite file could not be created.
    #[error("create directory {} for the SQLite database", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },

    /// The SQLite database file could not be created private to its owner.
    #[error("create the SQLite database file {} (readable by its owner only)", path.display())]
    CreateFile {
        path: PathBuf,
        source: std::io::Error,
    },

    /// Opening the pool (the first connection) failed.
    #[error("connect to {url_redacted}")]
    Connect {
        url_redacted: String,
        source: sqlx::Error,
    },

    /// Applying the embedded migrations failed.
    #[error("run database migrations")]
    Migrate { source: sqlx::migrate::MigrateError },

    /// A statement failed; `what` names the store operation.
    #[error("database query failed: {what}")]
    Query {
        what: &'static str,
        source: sqlx::Error,
    },

    /// A write would create a second row with the same key (e.g. a second
    /// queue entry for one node and Call-ID).
    #[error("{what}: the row already exists")]
    Duplicate {
        what: &'static str,
        source: sqlx::Error,
    },

    /// A write names a row that does not exist (e.g. a queue member of an
    /// unknown queue or agent, a VIP caller of an unknown queue).
    #[error("{what}: a row it refers to does not exist")]
    MissingReference {
        what: &'static str,
        source: sqlx::Error,
    },

    /// A write breaks a rule of the schema (e.g. an unknown queue strategy,
    /// a negative tier); the cause names the constraint.
    #[error("{what}: value not allowed by the schema")]
    InvalidValue {
        what: &'static str,
        source: sqlx::Error,
    },

    /// A read was asked with arguments it cannot answer (e.g. a report window that ends
    /// before it starts); nothing was sent to the database.
    #[error("{what}: {reason}")]
    InvalidArgument {
        what: &'static str,
        reason: &'static str,
    },
}

/// A text column or argument that names none of an enum's variants.
pub use callfleet_vocab::ParseEnumError;

impl StoreError {
    /// Wraps a query error with the name of the operation that ran it.
    pub(crate) fn query(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| StoreError::Query { what, source }
    }

    /// Like [`StoreError::query`], for statements that write: constraint
    /// violations become [`StoreError::Duplicate`],
    /// [`StoreError::MissingReference`] or [`StoreError::InvalidValue`].
    pub(crate) fn write(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| {
            let kind = match &source {
                sqlx::Error::Database(db) => db.kind(),
                _ => ErrorKind::Other,
            };
            match kind {
                ErrorKind::UniqueViolation => StoreError::Duplicate { what, source },
                ErrorKind::ForeignKeyViolation => StoreError::MissingReference { what, source },
                ErrorKind::CheckViolation | ErrorKind::NotNullViolation => {
                    StoreError::InvalidValue { what, source }
                }
                _ => StoreError::Query { what, source },
            }
        }
    }

    /// True when the same call may succeed if retried later: the server was
    /// unreachable, the pool was exhausted, or the database was busy. False
    /// for errors that will repeat (bad URL, bad SQL, constraint violations).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Connect { source, .. } | StoreError::Query { source, .. } => {
                sqlx_is_transient(source)
            }
            StoreError::UnsupportedUrl { .. }
            | StoreError::InvalidUrl { .. }
            | StoreError::CreateDir { .. }
            | StoreError::CreateFile { .. }
            | StoreError::Migrate { .. }
            | StoreError::Duplicate { .. }
            | StoreError::MissingReference { .. }
            | StoreError::InvalidValue { .. }
            | StoreError::InvalidArgument { .. } => false,
        }
    }
}

/// Classifies a driver error. Database error codes are told apart by shape:
/// PostgreSQL SQLSTATEs have five characters, SQLite extended result codes
/// are decimal numbers of at most four digits.
pub(crate) fn sqlx_is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(db) => match db.code() {
            Some(code) if code.len() == 5 => pg_code_is_transient(&code),
            Some(code) => code
                .parse::<i32>()
                .is_ok_and(|c| matches!(c & 0xff, SQLITE_BUSY | SQLITE_LOCKED)),
            None => false,
        },
        _ => false,
    }
}

const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;

/// SQLSTATE class 08 (connection exception), serialization failure,
/// deadlock, and server shutting down / starting up.
fn pg_code_is_transient(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "40001" | "40P01" | "57P01" | "57P03")
}

#[cfg(test)]
mod tests;
