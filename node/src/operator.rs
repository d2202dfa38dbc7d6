//! The node's operator token: written at every start to `http.operator_token_file` (mode
//! 0600, owned by the node's user), so a program on the node's host that can read that file
//! (curl run by root or by the node's user) may change what a loopback peer alone may only
//! read. A new token at every start; the file is removed when the node stops.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The token file while the node runs; removed on drop.
#[derive(Debug)]
pub struct TokenFile {
    path: PathBuf,
}

impl TokenFile {
    /// Writes a fresh token to `path` (through a file beside it, renamed over it, so the file
    /// is never seen half-written or with wider permissions) and returns it.
    pub fn create(path: &Path) -> anyhow::Result<(String, TokenFile)> {
        let token = format!(
            "{}{}",
            callfleet_web::auth::OPERATOR_PREFIX,
            callfleet_web::auth::random_hex(32)
        );
        let name = path
            .file_name()
            .with_context(|| format!("{} names no file", path.display()))?;
        let tmp = path.with_file_name(format!(
            ".{}.{}.tmp",
            name.to_string_lossy(),
            std::process::id()
        ));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options.open(&tmp).and_then(|mut f| {
            writeln!(f, "{token}")?;
            f.sync_all()
        });
        if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
            // Best effort: the temporary file may not even exist.
            let _ = std::fs::remove_file(&tmp);
            return Err(e)
                .with_context(|| format!("write the operator token to {}", path.display()));
        }
        Ok((
            token,
            TokenFile {
                path: path.to_path_buf(),
            },
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TokenFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::debug!(file = %self.path.display(), error = %e, "cannot remove the operator token file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_file_is_private_fresh_and_removed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("main-a.operator-token");
        let (first, file) = TokenFile::create(&path).expect("write");
        assert!(
            first.starts_with("cfo_") && first.len() == 4 + 64,
            "{first}"
        );
        assert_eq!(std::fs::read_to_string(&path).expect("read").trim(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        drop(file);
        assert!(!path.exists(), "removed at stop");
        let (second, _file) = TokenFile::create(&path).expect("write again");
        assert_ne!(first, second, "a new token at every start");
        let err = TokenFile::create(&dir.path().join("missing/dir/token"))
            .expect_err("no such directory")
            .to_string();
        assert!(err.contains("missing/dir/token"), "{err}");
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("list").count(),
            1,
            "no temporary file left behind"
        );
    }
}
