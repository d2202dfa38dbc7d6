//! Tests for URL flavour detection, redaction and SQLite targets.

use super::*;

#[test]
fn flavour_from_url() {
    let cases = [
        ("postgres://u@127.0.0.1/db", Some(Flavour::Postgres)),
        ("postgresql://u@127.0.0.1/db", Some(Flavour::Postgres)),
        ("POSTGRES://u@h/db", Some(Flavour::Postgres)),
        ("sqlite:///var/lib/x.db", Some(Flavour::Sqlite)),
        ("sqlite://x.db", Some(Flavour::Sqlite)),
        ("sqlite::memory:", Some(Flavour::Sqlite)),
        ("mysql://u@h/db", None),
        ("/var/lib/x.db", None),
        ("", None),
    ];
    for (url, want) in cases {
        assert_eq!(Flavour::from_url(url).ok(), want, "{url}");
    }
}

#[test]
fn unsupported_scheme_is_named() {
    match Flavour::from_url("mysql://root:pw@h/db") {
        Err(StoreError::UnsupportedUrl { scheme }) => assert_eq!(scheme, "mysql"),
        other => panic!("want UnsupportedUrl, got {other:?}"),
    }
}

#[test]
fn redaction() {
    let cases = [
        (
            "postgres://u:secret@h:5432/db",
            "postgres://u:***@h:5432/db",
        ),
        ("postgres://u@h/db", "postgres://u@h/db"),
        (
            "postgres://u:p%40ss@h/db?sslmode=disable",
            "postgres://u:***@h/db?sslmode=disable",
        ),
        ("postgres://u:a:b@h/db", "postgres://u:***@h/db"),
        (
            "postgres://h/db?user=u&password=secret",
            "postgres://h/db?user=u&password=***",
        ),
        (
            "postgres://h/db?PASSWORD=x&sslpassword=y",
            "postgres://h/db?PASSWORD=***&sslpassword=***",
        ),
        ("postgres://u:pw@h", "postgres://u:***@h"),
        ("postgres://u:pa/ss@h/db", "postgres://u:***@h/db"),
        ("postgres://u:pa?ss@h/db", "postgres://u:***@h/db"),
        ("postgres://u:p@ss@h/db", "postgres://u:***@h/db"),
        ("postgres://u@h:5432/db", "postgres://u@h:5432/db"),
        ("sqlite:///var/lib/a@b:c.db", "sqlite:///var/lib/a@b:c.db"),
        ("sqlite::memory:", "sqlite::memory:"),
    ];
    for (url, want) in cases {
        assert_eq!(redact_url(url), want, "{url}");
    }
}

#[test]
fn sqlite_targets() {
    let cwd = Path::new("/srv/cf");
    let file = |path: &str, create, url: &str| SqliteTarget::File {
        path: PathBuf::from(path),
        create,
        read_only: url.ends_with("mode=ro"),
        url: url.to_owned(),
    };
    let cases = [
        (
            "sqlite:///var/lib/cf/cluster.db",
            file(
                "/var/lib/cf/cluster.db",
                true,
                "sqlite:///var/lib/cf/cluster.db?mode=rwc",
            ),
        ),
        (
            "sqlite://cluster.db",
            file(
                "/srv/cf/cluster.db",
                true,
                "sqlite:///srv/cf/cluster.db?mode=rwc",
            ),
        ),
        (
            "sqlite://data/c.db",
            file(
                "/srv/cf/data/c.db",
                true,
                "sqlite:///srv/cf/data/c.db?mode=rwc",
            ),
        ),
        (
            "sqlite:c.db",
            file("/srv/cf/c.db", true, "sqlite:///srv/cf/c.db?mode=rwc"),
        ),
        (
            "sqlite:///a.db?cache=shared",
            file("/a.db", true, "sqlite:///a.db?cache=shared&mode=rwc"),
        ),
        (
            "sqlite:///a.db?mode=ro",
            file("/a.db", false, "sqlite:///a.db?mode=ro"),
        ),
        (
            "sqlite:///a.db?mode=rwc",
            file("/a.db", true, "sqlite:///a.db?mode=rwc"),
        ),
        (
            "sqlite::memory:",
            SqliteTarget::Memory {
                url: "sqlite::memory:".into(),
            },
        ),
        (
            "sqlite://:memory:",
            SqliteTarget::Memory {
                url: "sqlite://:memory:".into(),
            },
        ),
        (
            "sqlite://?mode=memory",
            SqliteTarget::Memory {
                url: "sqlite://?mode=memory".into(),
            },
        ),
    ];
    for (url, want) in cases {
        assert_eq!(sqlite_target(url, cwd).ok(), Some(want), "{url}");
    }
}

#[test]
fn sqlite_target_without_path_is_invalid() {
    for url in [
        "sqlite://",
        "sqlite:",
        "sqlite://?cache=shared",
        "postgres://h/db",
    ] {
        assert!(
            matches!(
                sqlite_target(url, Path::new("/")),
                Err(StoreError::InvalidUrl { .. })
            ),
            "{url}"
        );
    }
}
