//! [`Layout`]: where a restored node's parts go under a root directory (`/` on a real host),
//! the same places `install.sh` uses.

use std::path::{Path, PathBuf};

use crate::manifest::{EntryPath, Kind};

/// The installed node's files under `root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `ROOT/usr/local/bin/callfleet`.
    pub fn binary(&self) -> PathBuf {
        self.root.join("usr/local/bin/callfleet")
    }

    /// `ROOT/etc/callfleet`.
    pub fn config_dir(&self) -> PathBuf {
        self.root.join("etc/callfleet")
    }

    /// `ROOT/etc/callfleet/callfleet.toml`: the node's configuration.
    pub fn config(&self) -> PathBuf {
        self.config_dir().join("callfleet.toml")
    }

    /// `ROOT/usr/share/callfleet/moh`.
    pub fn moh_dir(&self) -> PathBuf {
        self.root.join("usr/share/callfleet/moh")
    }

    /// `ROOT/usr/share/callfleet/prompts`.
    pub fn prompts_dir(&self) -> PathBuf {
        self.root.join("usr/share/callfleet/prompts")
    }

    /// `ROOT/var/lib/callfleet`: the node's state (pid file, log when not under systemd,
    /// voicemail, an SQLite database).
    pub fn state_dir(&self) -> PathBuf {
        self.root.join("var/lib/callfleet")
    }

    /// `ROOT/var/lib/callfleet/voicemail`.
    pub fn voicemail_dir(&self) -> PathBuf {
        self.state_dir().join("voicemail")
    }

    /// `ROOT/var/lib/callfleet/callfleet.pid`: the node a restore started.
    pub fn pid_file(&self) -> PathBuf {
        self.state_dir().join("callfleet.pid")
    }

    /// `ROOT/var/lib/callfleet/callfleet.log`: its log.
    pub fn log_file(&self) -> PathBuf {
        self.state_dir().join("callfleet.log")
    }

    /// Where `entry` is installed; `None` for the cluster settings, which are not a file of
    /// their own but the base of the node's configuration.
    pub fn place(&self, entry: &EntryPath) -> Option<PathBuf> {
        match entry.kind() {
            Kind::Binary => Some(self.binary()),
            Kind::ClusterConfig => None,
            Kind::Moh => Some(self.moh_dir().join(entry.moh_relative()?)),
            Kind::Prompt => Some(self.prompts_dir().join(entry.file_name())),
        }
    }

    /// The folders [`Layout::place`] puts files in (a music class's folder is made as its
    /// first file is written), and the state folder.
    pub fn dirs(&self) -> [PathBuf; 5] {
        [
            self.binary()
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| self.root.clone()),
            self.config_dir(),
            self.moh_dir(),
            self.prompts_dir(),
            self.state_dir(),
        ]
    }
}
