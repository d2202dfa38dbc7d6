//! The role a node plays in the cluster: `main` nodes route carrier INVITEs, `extra` nodes only handle them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

/// The role a node runs with, from its config and its heartbeat row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Decides for each carrier INVITE: handle it here or 302 it to the least-loaded node.
    Main,
    /// Handles what it is sent, answers 503 when it cannot; never redirects.
    Extra,
}

impl Role {
    /// The lowercase name used in config files, heartbeat rows and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Main => "main",
            Role::Extra => "extra",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is neither `main` nor `extra`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown node role {value:?} (expected \"main\" or \"extra\")")]
pub struct ParseRoleError {
    /// The text that failed to parse.
    pub value: String,
}

impl FromStr for Role {
    type Err = ParseRoleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "main" => Ok(Role::Main),
            "extra" => Ok(Role::Extra),
            other => Err(ParseRoleError {
                value: other.to_owned(),
            }),
        }
    }
}
