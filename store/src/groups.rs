//! Ring groups: several phones and agents rung for one caller, all at once or one after
//! another, then a no-answer destination. A group and its members are written together in one
//! transaction that bumps the config version; nodes ring groups from their configuration cache.

use std::fmt;
use std::str::FromStr;

use callfleet_vocab::{GroupStrategy, MemberKind};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::decode::enum_col;
use crate::numbers::{destination_cols, Destination};
use crate::{ParseEnumError, Store, StoreError};

/// One member of a group: an agent's extension or a phone's device extension. Written
/// `kind:extension` on the admin pages (`agent:1001`, `device:2001`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GroupMember {
    pub kind: MemberKind,
    pub extension: String,
}

impl GroupMember {
    pub fn new(kind: MemberKind, extension: impl Into<String>) -> GroupMember {
        GroupMember {
            kind,
            extension: extension.into(),
        }
    }
}

impl fmt::Display for GroupMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.extension)
    }
}

impl FromStr for GroupMember {
    type Err = ParseEnumError;

    /// `kind:extension`; the extension is trimmed and may not be empty.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseEnumError {
            kind: "ring group member",
            value: s.to_owned(),
        };
        let (kind, ext) = s.split_once(':').ok_or_else(bad)?;
        let ext = ext.trim();
        if ext.is_empty() {
            return Err(bad());
        }
        Ok(GroupMember::new(kind.trim().parse()?, ext))
    }
}

/// One row of `ring_groups` with its `ring_group_members`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingGroup {
    pub name: String,
    pub strategy: GroupStrategy,
    /// `all`: how long every member rings; `ordered`: how long each member rings
    /// (milliseconds, > 0).
    pub ring_ms: i64,
    /// The members in ring order.
    pub members: Vec<GroupMember>,
    /// Where the caller goes when nobody answered.
    pub no_answer: Destination,
    /// The music-on-hold class the caller hears while members ring; empty: the default.
    pub moh_class: String,
    pub created_at_ms: i64,
}

const UPSERT_GROUP: &str = "\
INSERT INTO ring_groups (name, strategy, ring_ms, no_answer_kind, no_answer_target, moh_class, \
created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) \
ON CONFLICT (name) DO UPDATE SET strategy = excluded.strategy, ring_ms = excluded.ring_ms, \
no_answer_kind = excluded.no_answer_kind, no_answer_target = excluded.no_answer_target, \
moh_class = excluded.moh_class";

impl Store {
    /// Creates a group or replaces it and all its members (an existing group keeps its
    /// creation time), bumping the config version, in one transaction.
    pub async fn upsert_group(&self, g: &RingGroup) -> Result<(), StoreError> {
        let mut statements = vec![
            sqlx::query(UPSERT_GROUP)
                .bind(&g.name)
                .bind(g.strategy.as_str())
                .bind(g.ring_ms)
                .bind(g.no_answer.kind.as_str())
                .bind(&g.no_answer.target)
                .bind(&g.moh_class)
                .bind(g.created_at_ms),
            sqlx::query("DELETE FROM ring_group_members WHERE group_name = $1").bind(&g.name),
        ];
        for (position, m) in (0_i64..).zip(&g.members) {
            statements.push(
                sqlx::query(
                    "INSERT INTO ring_group_members (group_name, position, kind, target) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&g.name)
                .bind(position)
                .bind(m.kind.as_str())
                .bind(&m.extension),
            );
        }
        self.config_write_all("upsert ring group", statements).await
    }

    /// All groups with their members in order, by name.
    pub async fn groups(&self) -> Result<Vec<RingGroup>, StoreError> {
        const WHAT: &str = "list ring groups";
        let rows = sqlx::query(
            "SELECT name, strategy, ring_ms, no_answer_kind, no_answer_target, moh_class, \
             created_at_ms FROM ring_groups ORDER BY name",
        )
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::query(WHAT))?;
        let mut groups: Vec<RingGroup> = rows
            .iter()
            .map(group_from_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::query(WHAT))?;
        let members = sqlx::query(
            "SELECT group_name, kind, target FROM ring_group_members \
             ORDER BY group_name, position",
        )
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::query(WHAT))?;
        for row in &members {
            let (group, member) = member_from_row(row).map_err(StoreError::query(WHAT))?;
            if let Some(g) = groups.iter_mut().find(|g| g.name == group) {
                g.members.push(member);
            }
        }
        Ok(groups)
    }

    /// Deletes a group and its members; `false` if there was none. Bumps the config version
    /// when a row was deleted.
    pub async fn delete_group(&self, name: &str) -> Result<bool, StoreError> {
        let statement = sqlx::query("DELETE FROM ring_groups WHERE name = $1").bind(name);
        Ok(self.config_write("delete ring group", statement).await? > 0)
    }
}

fn group_from_row(row: &AnyRow) -> Result<RingGroup, sqlx::Error> {
    Ok(RingGroup {
        name: row.try_get("name")?,
        strategy: enum_col(row, "strategy")?,
        ring_ms: row.try_get("ring_ms")?,
        members: Vec::new(),
        no_answer: destination_cols(row, "no_answer_kind", "no_answer_target")?,
        moh_class: row.try_get("moh_class")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

fn member_from_row(row: &AnyRow) -> Result<(String, GroupMember), sqlx::Error> {
    Ok((
        row.try_get("group_name")?,
        GroupMember {
            kind: enum_col(row, "kind")?,
            extension: row.try_get("target")?,
        },
    ))
}

#[cfg(test)]
mod tests;
