//! Append-only records of the queues: what happened to each queued call
//! (`queue_events`) and the voicemails left when nobody answered.

use callfleet_vocab::QueueEventKind;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Store, StoreError};

/// One thing that happened to a queued call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEvent {
    /// Set by the database; ignored by [`Store::queue_event`].
    pub id: i64,
    pub at_ms: i64,
    pub queue: String,
    pub call_id: String,
    pub node: String,
    pub agent: Option<String>,
    /// What happened.
    pub event: QueueEventKind,
    pub detail: Option<String>,
    /// The event's own key, set by the node (unique; `None` on rows older than keys): a
    /// second write of the same key is recognised and changes nothing.
    #[serde(default)]
    pub uid: Option<String>,
}

/// A recorded voicemail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Voicemail {
    /// Set by the database; ignored by [`Store::insert_voicemail`].
    pub id: i64,
    /// Mailbox (agent extension).
    pub agent: String,
    pub caller: String,
    /// Audio file on `node`; `(node, path)` is the voicemail's key (unique): a second write
    /// of the same file is recognised and changes nothing.
    pub path: String,
    pub duration_ms: i64,
    pub created_at_ms: i64,
    pub node: String,
}

const INSERT_EVENT: &str = "\
INSERT INTO queue_events (at_ms, queue, call_id, node, agent, event, detail, uid) \
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
ON CONFLICT (uid) DO NOTHING \
RETURNING id";

macro_rules! event_select {
    () => {
        "SELECT id, at_ms, queue, call_id, node, agent, event, detail, uid FROM queue_events"
    };
}

const INSERT_VOICEMAIL: &str = "\
INSERT INTO voicemails (agent, caller, path, duration_ms, created_at_ms, node) \
VALUES ($1, $2, $3, $4, $5, $6) \
ON CONFLICT (node, path) DO NOTHING \
RETURNING id";

macro_rules! voicemail_select {
    () => {
        "SELECT id, agent, caller, path, duration_ms, created_at_ms, node FROM voicemails"
    };
}

impl Store {
    /// Appends a queue event; returns its id (increasing), or `None` when an event with the
    /// same `uid` is already stored (nothing is written: replays are idempotent).
    pub async fn queue_event(&self, event: &QueueEvent) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar(INSERT_EVENT)
            .bind(event.at_ms)
            .bind(&event.queue)
            .bind(&event.call_id)
            .bind(&event.node)
            .bind(event.agent.as_deref())
            .bind(event.event.as_str())
            .bind(event.detail.as_deref())
            .bind(event.uid.as_deref())
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::write("insert queue event"))
    }

    /// Events at or after `since_ms`, of one call or of all with `None`,
    /// oldest first.
    pub async fn queue_events(
        &self,
        call_id: Option<&str>,
        since_ms: i64,
    ) -> Result<Vec<QueueEvent>, StoreError> {
        const WHAT: &str = "list queue events";
        let rows = match call_id {
            Some(call_id) => {
                sqlx::query(concat!(
                    event_select!(),
                    " WHERE at_ms >= $1 AND call_id = $2 ORDER BY at_ms, id"
                ))
                .bind(since_ms)
                .bind(call_id)
                .fetch_all(self.pool())
                .await
            }
            None => {
                sqlx::query(concat!(
                    event_select!(),
                    " WHERE at_ms >= $1 ORDER BY at_ms, id"
                ))
                .bind(since_ms)
                .fetch_all(self.pool())
                .await
            }
        }
        .map_err(StoreError::query(WHAT))?;
        events_from_rows(&rows, WHAT)
    }

    /// Every call's queue events stored after the event `after_id` (ids grow with each insert,
    /// whatever the event's own time), in time order as [`Store::queue_events`] gives them:
    /// what a reader that has taken every event up to that id has not, late writes included.
    pub async fn queue_events_after(&self, after_id: i64) -> Result<Vec<QueueEvent>, StoreError> {
        const WHAT: &str = "list queue events after an id";
        let rows = sqlx::query(concat!(
            event_select!(),
            " WHERE id > $1 ORDER BY at_ms, id"
        ))
        .bind(after_id)
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::query(WHAT))?;
        events_from_rows(&rows, WHAT)
    }

    /// Records a voicemail; returns its id (increasing), or `None` when the same
    /// `(node, path)` is already stored (nothing is written: replays are idempotent).
    pub async fn insert_voicemail(&self, vm: &Voicemail) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar(INSERT_VOICEMAIL)
            .bind(&vm.agent)
            .bind(&vm.caller)
            .bind(&vm.path)
            .bind(vm.duration_ms)
            .bind(vm.created_at_ms)
            .bind(&vm.node)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::write("insert voicemail"))
    }

    /// What mailbox `agent` holds: its number of messages and their total length (ms).
    pub async fn voicemail_usage(&self, agent: &str) -> Result<(i64, i64), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(duration_ms), 0) AS BIGINT) AS ms \
             FROM voicemails WHERE agent = $1",
        )
        .bind(agent)
        .fetch_one(self.pool())
        .await
        .map_err(StoreError::query("read voicemail usage"))?;
        let n: i64 = row
            .try_get("n")
            .map_err(StoreError::query("read voicemail usage"))?;
        let ms: i64 = row
            .try_get("ms")
            .map_err(StoreError::query("read voicemail usage"))?;
        Ok((n, ms))
    }

    /// The voicemail with this id.
    pub async fn voicemail(&self, id: i64) -> Result<Option<Voicemail>, StoreError> {
        const WHAT: &str = "read voicemail";
        let row = sqlx::query(concat!(voicemail_select!(), " WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        row.as_ref()
            .map(voicemail_from_row)
            .transpose()
            .map_err(StoreError::query(WHAT))
    }

    /// The newest voicemails of every mailbox, newest first, at most `limit`.
    pub async fn recent_voicemails(&self, limit: i64) -> Result<Vec<Voicemail>, StoreError> {
        const WHAT: &str = "list recent voicemails";
        let rows = sqlx::query(concat!(
            voicemail_select!(),
            " ORDER BY created_at_ms DESC, id DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::query(WHAT))?;
        rows.iter()
            .map(voicemail_from_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::query(WHAT))
    }

    /// Voicemails of one mailbox, or of all with `None`, oldest first.
    pub async fn voicemails(&self, agent: Option<&str>) -> Result<Vec<Voicemail>, StoreError> {
        const WHAT: &str = "list voicemails";
        let rows = match agent {
            Some(agent) => {
                sqlx::query(concat!(
                    voicemail_select!(),
                    " WHERE agent = $1 ORDER BY created_at_ms, id"
                ))
                .bind(agent)
                .fetch_all(self.pool())
                .await
            }
            None => {
                sqlx::query(concat!(voicemail_select!(), " ORDER BY created_at_ms, id"))
                    .fetch_all(self.pool())
                    .await
            }
        }
        .map_err(StoreError::query(WHAT))?;
        rows.iter()
            .map(voicemail_from_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::query(WHAT))
    }
}

/// The events of a read's rows; an undecodable row fails the read (`what` says which).
fn events_from_rows(rows: &[AnyRow], what: &'static str) -> Result<Vec<QueueEvent>, StoreError> {
    rows.iter()
        .map(event_from_row)
        .collect::<Result<_, _>>()
        .map_err(StoreError::query(what))
}

fn event_from_row(row: &AnyRow) -> Result<QueueEvent, sqlx::Error> {
    Ok(QueueEvent {
        id: row.try_get("id")?,
        at_ms: row.try_get("at_ms")?,
        queue: row.try_get("queue")?,
        call_id: row.try_get("call_id")?,
        node: row.try_get("node")?,
        agent: row.try_get("agent")?,
        event: crate::decode::enum_col(row, "event")?,
        detail: row.try_get("detail")?,
        uid: row.try_get("uid")?,
    })
}

fn voicemail_from_row(row: &AnyRow) -> Result<Voicemail, sqlx::Error> {
    Ok(Voicemail {
        id: row.try_get("id")?,
        agent: row.try_get("agent")?,
        caller: row.try_get("caller")?,
        path: row.try_get("path")?,
        duration_ms: row.try_get("duration_ms")?,
        created_at_ms: row.try_get("created_at_ms")?,
        node: row.try_get("node")?,
    })
}

#[cfg(test)]
mod tests;
