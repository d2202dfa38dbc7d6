//! `[records]`: the on-disk spool every call record passes through on its way to the
//! database (see `crate::records`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsSection {
    /// Directory of the spool: `<spool_dir>/<node.name>.spool` and `<node.name>.head`.
    /// Created (mode 0700) when missing; the node does not start without it.
    #[serde(default = "default_spool_dir")]
    pub spool_dir: PathBuf,
    /// Most megabytes (10^6 bytes) the spool may hold. Past 90 % live-call rows are no longer
    /// kept; when full, further records are dropped (each logged and counted).
    #[serde(default = "default_spool_max_mb")]
    pub spool_max_mb: u32,
}

impl Default for RecordsSection {
    fn default() -> Self {
        Self {
            spool_dir: default_spool_dir(),
            spool_max_mb: default_spool_max_mb(),
        }
    }
}

impl RecordsSection {
    /// The spool's capacity in bytes.
    pub fn spool_capacity(&self) -> u64 {
        u64::from(self.spool_max_mb) * 1_000_000
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.spool_max_mb == 0 {
            return Err(ConfigError::Invalid {
                key: "records.spool_max_mb",
                problem: "must be at least 1".to_string(),
            });
        }
        if self.spool_dir.as_os_str().is_empty() {
            return Err(ConfigError::Invalid {
                key: "records.spool_dir",
                problem: "must name a directory".to_string(),
            });
        }
        Ok(())
    }
}

fn default_spool_dir() -> PathBuf {
    PathBuf::from("/var/lib/callfleet/spool")
}

fn default_spool_max_mb() -> u32 {
    256
}
