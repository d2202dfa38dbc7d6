//! The cluster queue: one row per call waiting in a queue, whichever node
//! holds it. Every node reads the same rows in the same order (priority,
//! enqueue time, id) and claims an entry with a guarded UPDATE before
//! ringing agents for it, so an entry is offered by one node at a time.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::decode::{bool_col, enum_col};
use crate::{ParseEnumError, Store, StoreError};

/// Where a queued call is: `waiting` → `offering` (agents ringing) →
/// `bridged` (an agent answered), or back to `waiting` if nobody answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    Waiting,
    Offering,
    Bridged,
}

impl EntryState {
    pub const ALL: [EntryState; 3] = [
        EntryState::Waiting,
        EntryState::Offering,
        EntryState::Bridged,
    ];

    /// The form stored in `queue_entries.state` and used by serde.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::Waiting => "waiting",
            EntryState::Offering => "offering",
            EntryState::Bridged => "bridged",
        }
    }
}

impl FromStr for EntryState {
    type Err = ParseEnumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EntryState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| ParseEnumError {
                kind: "queue entry state",
                value: s.to_owned(),
            })
    }
}

impl fmt::Display for EntryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A call joining a queue (see [`Store::enqueue`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEntry {
    pub queue: String,
    /// Node holding the call.
    pub node: String,
    pub call_id: String,
    /// Caller number.
    pub caller: String,
    /// Lower is served first.
    pub priority: i64,
    pub vip: bool,
    pub enqueued_at_ms: i64,
}

/// One row of `queue_entries`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    pub id: i64,
    pub queue: String,
    pub node: String,
    pub call_id: String,
    pub caller: String,
    pub priority: i64,
    pub vip: bool,
    pub enqueued_at_ms: i64,
    pub state: EntryState,
    /// While `offering`: the agents rung, comma-separated; once `bridged`:
    /// the agent who answered.
    pub offered_to: Option<String>,
}

const INSERT_ENTRY: &str = "\
INSERT INTO queue_entries (queue, node, call_id, caller, priority, vip, enqueued_at_ms, \
    state, offered_to) \
VALUES ($1, $2, $3, $4, $5, $6, $7, 'waiting', NULL) \
RETURNING id";

macro_rules! entry_select {
    () => {
        "SELECT id, queue, node, call_id, caller, priority, vip, enqueued_at_ms, state, \
         offered_to FROM queue_entries"
    };
}

/// Service order, the same on every node.
macro_rules! entry_order {
    () => {
        " ORDER BY priority, enqueued_at_ms, id"
    };
}

impl Store {
    /// Adds a waiting call to the cluster queue; returns its id. A second
    /// entry for the same `(node, call_id)` is [`StoreError::Duplicate`].
    pub async fn enqueue(&self, entry: &NewEntry) -> Result<i64, StoreError> {
        sqlx::query_scalar(INSERT_ENTRY)
            .bind(&entry.queue)
            .bind(&entry.node)
            .bind(&entry.call_id)
            .bind(&entry.caller)
            .bind(entry.priority)
            .bind(i64::from(entry.vip))
            .bind(entry.enqueued_at_ms)
            .fetch_one(self.pool())
            .await
            .map_err(StoreError::write("enqueue call"))
    }

    /// The entry with this id, if any.
    pub async fn entry(&self, id: i64) -> Result<Option<QueueEntry>, StoreError> {
        const WHAT: &str = "read queue entry";
        let row = sqlx::query(concat!(entry_select!(), " WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        row.as_ref()
            .map(entry_from_row)
            .transpose()
            .map_err(StoreError::query(WHAT))
    }

    /// Waiting entries of all queues, in service order: priority, then
    /// enqueue time, then id.
    pub async fn waiting_entries(&self) -> Result<Vec<QueueEntry>, StoreError> {
        self.list_entries(
            "list waiting queue entries",
            concat!(entry_select!(), " WHERE state = 'waiting'", entry_order!()),
        )
        .await
    }

    /// Entries not yet bridged (`waiting` or `offering`), in service order: what the
    /// dispatcher's rounds read, several times a second, whatever the number of calls in
    /// conversation (their `bridged` rows stay in SQL).
    pub async fn open_entries(&self) -> Result<Vec<QueueEntry>, StoreError> {
        self.list_entries(
            "list open queue entries",
            concat!(
                entry_select!(),
                " WHERE state IN ('waiting', 'offering')",
                entry_order!()
            ),
        )
        .await
    }

    /// The nodes holding entries in any state, each once, by name.
    pub async fn entry_nodes(&self) -> Result<Vec<String>, StoreError> {
        const WHAT: &str = "list the nodes of queue entries";
        let rows = sqlx::query("SELECT DISTINCT node FROM queue_entries ORDER BY node")
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("node"))
            .collect::<Result<_, _>>()
            .map_err(StoreError::query(WHAT))
    }

    /// Entries in every state, in service order.
    pub async fn entries(&self) -> Result<Vec<QueueEntry>, StoreError> {
        self.list_entries(
            "list queue entries",
            concat!(entry_select!(), entry_order!()),
        )
        .await
    }

    async fn list_entries(
        &self,
        what: &'static str,
        sql: &'static str,
    ) -> Result<Vec<QueueEntry>, StoreError> {
        let rows = sqlx::query(sql)
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::query(what))?;
        rows.iter()
            .map(entry_from_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::query(what))
    }

    /// `waiting` → `offering` to `agents` (comma-separated), if and only if
    /// the entry is waiting: of several concurrent claims exactly one wins.
    pub async fn claim_entry(&self, id: i64, agents: &str) -> Result<bool, StoreError> {
        self.move_entry(
            "claim queue entry",
            "UPDATE queue_entries SET state = 'offering', offered_to = $2 \
             WHERE id = $1 AND state = 'waiting'",
            id,
            Some(agents),
        )
        .await
    }

    /// `offering` → `waiting` (nobody answered); `false` unless offering.
    pub async fn unclaim_entry(&self, id: i64) -> Result<bool, StoreError> {
        self.move_entry(
            "unclaim queue entry",
            "UPDATE queue_entries SET state = 'waiting', offered_to = NULL \
             WHERE id = $1 AND state = 'offering'",
            id,
            None,
        )
        .await
    }

    /// `offering` → `bridged` to `agent`, who answered; `false` unless
    /// offering.
    pub async fn bridge_entry(&self, id: i64, agent: &str) -> Result<bool, StoreError> {
        self.move_entry(
            "bridge queue entry",
            "UPDATE queue_entries SET state = 'bridged', offered_to = $2 \
             WHERE id = $1 AND state = 'offering'",
            id,
            Some(agent),
        )
        .await
    }

    /// Runs one guarded entry update; `$2` is bound only when given.
    async fn move_entry(
        &self,
        what: &'static str,
        sql: &'static str,
        id: i64,
        offered_to: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut statement = sqlx::query(sql).bind(id);
        if let Some(offered_to) = offered_to {
            statement = statement.bind(offered_to);
        }
        let res = statement
            .execute(self.pool())
            .await
            .map_err(StoreError::write(what))?;
        Ok(res.rows_affected() > 0)
    }

    /// Removes an entry (the call left the queue); `false` if there was none.
    pub async fn remove_entry(&self, id: i64) -> Result<bool, StoreError> {
        let res = sqlx::query("DELETE FROM queue_entries WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(StoreError::query("remove queue entry"))?;
        Ok(res.rows_affected() > 0)
    }

    /// Removes every entry of `node` (left over from its previous run);
    /// returns how many.
    pub async fn remove_node_entries(&self, node: &str) -> Result<u64, StoreError> {
        let res = sqlx::query("DELETE FROM queue_entries WHERE node = $1")
            .bind(node)
            .execute(self.pool())
            .await
            .map_err(StoreError::query("remove node queue entries"))?;
        Ok(res.rows_affected())
    }
}

fn entry_from_row(row: &AnyRow) -> Result<QueueEntry, sqlx::Error> {
    Ok(QueueEntry {
        id: row.try_get("id")?,
        queue: row.try_get("queue")?,
        node: row.try_get("node")?,
        call_id: row.try_get("call_id")?,
        caller: row.try_get("caller")?,
        priority: row.try_get("priority")?,
        vip: bool_col(row, "vip")?,
        enqueued_at_ms: row.try_get("enqueued_at_ms")?,
        state: enum_col(row, "state")?,
        offered_to: row.try_get("offered_to")?,
    })
}

#[cfg(test)]
mod tests;
