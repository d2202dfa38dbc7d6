//! Database URLs: which flavour a URL names, how to print it without its
//! password, and where a SQLite URL puts its file.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::StoreError;

/// The database behind a [`Store`](crate::Store), chosen by URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavour {
    /// `postgres://` or `postgresql://`
    Postgres,
    /// `sqlite:` (`sqlite:///abs.db`, `sqlite://relative.db`, `sqlite::memory:`)
    Sqlite,
}

impl Flavour {
    /// The flavour a URL's scheme names.
    pub fn from_url(url: &str) -> Result<Flavour, StoreError> {
        let scheme = url.split_once(':').map_or("", |(s, _)| s);
        match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Ok(Flavour::Postgres),
            "sqlite" => Ok(Flavour::Sqlite),
            _ => Err(StoreError::UnsupportedUrl {
                scheme: scheme.to_owned(),
            }),
        }
    }

    /// `"postgres"` or `"sqlite"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Flavour::Postgres => "postgres",
            Flavour::Sqlite => "sqlite",
        }
    }
}

impl fmt::Display for Flavour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The URL with any password replaced by `***`, both the one in the user
/// info (`postgres://user:secret@host`) and a `password=` query parameter.
/// When in doubt (odd characters in the password) it hides too much rather
/// than too little.
pub fn redact_url(url: &str) -> String {
    let url = redact_userinfo(url);
    match url.split_once('?') {
        Some((head, query)) => {
            let pairs: Vec<String> = query.split('&').map(redact_pair).collect();
            format!("{head}?{}", pairs.join("&"))
        }
        None => url,
    }
}

/// Hides everything between the first `:` after `scheme://` and the last
/// `@`, so a password holding `/`, `?` or `@` is hidden whole. SQLite URLs
/// have no user info (but may have `@` and `:` in file names).
fn redact_userinfo(url: &str) -> String {
    if matches!(Flavour::from_url(url), Ok(Flavour::Sqlite)) {
        return url.to_owned();
    }
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let Some(at) = url[start..].rfind('@').map(|i| start + i) else {
        return url.to_owned();
    };
    let Some(colon) = url[start..at].find(':').map(|i| start + i) else {
        return url.to_owned();
    };
    format!("{}:***{}", &url[..colon], &url[at..])
}

fn redact_pair(pair: &str) -> String {
    match pair.split_once('=') {
        Some((k, _))
            if k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("sslpassword") =>
        {
            format!("{k}=***")
        }
        _ => pair.to_owned(),
    }
}

/// Where a SQLite URL points, and the URL to hand to the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SqliteTarget {
    /// A private in-memory database: it lives as long as its one connection.
    Memory { url: String },
    /// A file. `create`: the file (and its directory) may be created
    /// (`mode=rwc`, the default); `read_only`: `mode=ro`. `url` has an
    /// absolute path and carries `mode=rwc` unless the caller chose a mode.
    File {
        path: PathBuf,
        create: bool,
        read_only: bool,
        url: String,
    },
}

/// The database file a `sqlite:` URL names (relative paths resolved against the current
/// directory); `None` for other URLs and in-memory databases.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    match sqlite_target(url, &cwd).ok()? {
        SqliteTarget::File { path, .. } => Some(path),
        SqliteTarget::Memory { .. } => None,
    }
}

/// Reads a `sqlite:` URL. Relative paths are resolved against `cwd`.
pub(crate) fn sqlite_target(url: &str, cwd: &Path) -> Result<SqliteTarget, StoreError> {
    let invalid = |reason| StoreError::InvalidUrl {
        url_redacted: redact_url(url),
        reason,
    };
    let rest = url
        .strip_prefix("sqlite:")
        .ok_or(invalid("not a sqlite: URL"))?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (db, params) = match rest.split_once('?') {
        Some((db, params)) => (db, params),
        None => (rest, ""),
    };
    let mode = params
        .split('&')
        .find_map(|kv| kv.strip_prefix("mode="))
        .map(str::to_owned);
    if db == ":memory:" || mode.as_deref() == Some("memory") {
        return Ok(SqliteTarget::Memory {
            url: url.to_owned(),
        });
    }
    if db.is_empty() {
        return Err(invalid(
            "no file path (use sqlite:///abs/path.db, sqlite://relative.db or sqlite::memory:)",
        ));
    }
    let path = cwd.join(db);
    let (create, params) = match mode.as_deref() {
        None if params.is_empty() => (true, "mode=rwc".to_owned()),
        None => (true, format!("{params}&mode=rwc")),
        Some(m) => (m == "rwc", params.to_owned()),
    };
    let read_only = mode.as_deref() == Some("ro");
    let url = format!("sqlite://{}?{params}", path.display());
    Ok(SqliteTarget::File {
        path,
        create,
        read_only,
        url,
    })
}

#[cfg(test)]
mod tests;
