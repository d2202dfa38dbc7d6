//! Tests for error classification and redaction in messages.

use super::*;
use std::borrow::Cow;
use std::error::Error as _;

/// A database error with a chosen code, as a driver would report it.
#[derive(Debug)]
struct FakeDbError(&'static str);

impl std::fmt::Display for FakeDbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "fake database error {}", self.0)
    }
}

impl std::error::Error for FakeDbError {}

impl sqlx::error::DatabaseError for FakeDbError {
    fn message(&self) -> &str {
        "fake"
    }
    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(self.0))
    }
    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }
    fn kind(&self) -> sqlx::error::ErrorKind {
        sqlx::error::ErrorKind::Other
    }
}

fn db(code: &'static str) -> sqlx::Error {
    sqlx::Error::Database(Box::new(FakeDbError(code)))
}

#[test]
fn transient_classification() {
    let refused = || std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    let cases: Vec<(&str, sqlx::Error, bool)> = vec![
        ("io", sqlx::Error::Io(refused()), true),
        ("pool timeout", sqlx::Error::PoolTimedOut, true),
        ("pool closed", sqlx::Error::PoolClosed, false),
        ("row not found", sqlx::Error::RowNotFound, false),
        ("sqlite busy", db("5"), true),
        ("sqlite busy snapshot", db("517"), true),
        ("sqlite locked", db("6"), true),
        ("sqlite constraint unique", db("2067"), false),
        ("sqlite generic", db("1"), false),
        ("pg connection failure", db("08006"), true),
        ("pg serialization", db("40001"), true),
        ("pg deadlock", db("40P01"), true),
        ("pg admin shutdown", db("57P01"), true),
        ("pg unique violation", db("23505"), false),
        ("pg undefined table", db("42P01"), false),
    ];
    for (name, source, want) in cases {
        let q = StoreError::Query {
            what: "test",
            source,
        };
        assert_eq!(q.is_transient(), want, "{name}");
    }
}

#[test]
fn connect_error_is_transient_when_io() {
    let e = StoreError::Connect {
        url_redacted: "postgres://u:***@h/db".into(),
        source: sqlx::Error::PoolTimedOut,
    };
    assert!(e.is_transient());
    assert_eq!(e.to_string(), "connect to postgres://u:***@h/db");
    assert!(e.source().is_some());
}

#[test]
fn config_errors_are_not_transient() {
    let cases = [
        StoreError::UnsupportedUrl {
            scheme: "mysql".into(),
        },
        StoreError::InvalidUrl {
            url_redacted: "sqlite://".into(),
            reason: "no path",
        },
        StoreError::CreateDir {
            path: "/x".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        },
    ];
    for e in cases {
        assert!(!e.is_transient(), "{e}");
    }
}
