//! Tests for error classification and redaction in messages.

use super::*;
use std::borrow::Cow;
use std::error::Error as _;

/// A database error with a chosen code and kind, as a driver would report it.
#[derive(Debug)]
struct FakeDbError(&'static str, sqlx::error::ErrorKind);

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
        match self.1 {
            ErrorKind::UniqueViolation => ErrorKind::UniqueViolation,
            ErrorKind::ForeignKeyViolation => ErrorKind::ForeignKeyViolation,
            ErrorKind::NotNullViolation => ErrorKind::NotNullViolation,
            ErrorKind::CheckViolation => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

fn db(code: &'static str) -> sqlx::Error {
    sqlx::Error::Database(Box::new(FakeDbError(code, ErrorKind::Other)))
}

fn db_kind(code: &'static str, kind: ErrorKind) -> sqlx::Error {
    sqlx::Error::Database(Box::new(FakeDbError(code, kind)))
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
        StoreError::CreateFile {
            path: "/x/db".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        },
    ];
    for e in cases {
        assert!(!e.is_transient(), "{e}");
    }
}

#[test]
fn write_errors_are_classified_by_kind() {
    type Check = fn(&StoreError) -> bool;
    let cases: Vec<(&str, sqlx::Error, Check)> = vec![
        (
            "unique",
            db_kind("23505", ErrorKind::UniqueViolation),
            |e| matches!(e, StoreError::Duplicate { what: "w", .. }),
        ),
        (
            "foreign key",
            db_kind("787", ErrorKind::ForeignKeyViolation),
            |e| matches!(e, StoreError::MissingReference { what: "w", .. }),
        ),
        ("check", db_kind("23514", ErrorKind::CheckViolation), |e| {
            matches!(e, StoreError::InvalidValue { what: "w", .. })
        }),
        (
            "not null",
            db_kind("1299", ErrorKind::NotNullViolation),
            |e| matches!(e, StoreError::InvalidValue { what: "w", .. }),
        ),
        ("other database error", db("1"), |e| {
            matches!(e, StoreError::Query { what: "w", .. })
        }),
        ("pool timeout", sqlx::Error::PoolTimedOut, |e| {
            matches!(e, StoreError::Query { what: "w", .. }) && e.is_transient()
        }),
    ];
    for (name, source, check) in cases {
        let e = StoreError::write("w")(source);
        assert!(check(&e), "{name}: got {e:?}");
        assert!(e.source().is_some(), "{name}: keeps its cause");
        if !matches!(e, StoreError::Query { .. }) {
            assert!(!e.is_transient(), "{name}: constraint errors repeat");
        }
    }
}

#[test]
fn parse_enum_error_names_kind_and_value() {
    let e = ParseEnumError {
        kind: "agent state",
        value: "asleep".into(),
    };
    assert_eq!(e.to_string(), "unknown agent state \"asleep\"");
}
