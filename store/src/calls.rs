//! Calls: the live-call table (one row per call in progress) and the
//! append-only call detail records.

use callfleet_vocab::{CallDirection, HangupCause, HangupSide};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::decode::enum_col;
use crate::{Store, StoreError};

/// A call in progress on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveCall {
    pub node: String,
    /// SIP Call-ID; unique per node.
    pub call_id: String,
    pub from_uri: String,
    pub to_uri: String,
    /// `"ringing"` or `"answered"`.
    pub state: String,
    pub started_at_ms: i64,
    pub answered_at_ms: Option<i64>,
    /// Name of the node that redirected the call here, if any.
    pub redirected_from: Option<String>,
}

/// Call detail record, written once when a call ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cdr {
    pub node: String,
    pub call_id: String,
    pub from_uri: String,
    pub to_uri: String,
    pub started_at_ms: i64,
    pub answered_at_ms: Option<i64>,
    pub ended_at_ms: i64,
    /// Why the call ended.
    pub hangup_cause: HangupCause,
    /// Who ended it.
    pub hangup_side: HangupSide,
    /// Final SIP status sent or received (200 for an answered call).
    pub sip_status: i64,
    pub redirected_from: Option<String>,
    /// The agent who took the call, if it reached one.
    pub agent: Option<String>,
    /// The queue the call waited in, if any.
    pub queue: Option<String>,
    /// The record's own key, set by the node (unique; `None` on rows older than keys): a
    /// second write of the same key is recognised and changes nothing.
    #[serde(default)]
    pub uid: Option<String>,
    /// Inbound (answered by the node) or outbound (a phone dialled out through the trunk).
    #[serde(default)]
    pub direction: CallDirection,
    /// The external number an outbound call dialled (E.164, `+4930...`); `None` inbound.
    #[serde(default)]
    pub destination: Option<String>,
}

const UPSERT_LIVE_CALL: &str = "\
INSERT INTO live_calls (node, call_id, from_uri, to_uri, state, started_at_ms, \
    answered_at_ms, redirected_from) \
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
ON CONFLICT (node, call_id) DO UPDATE SET \
    from_uri = excluded.from_uri, to_uri = excluded.to_uri, state = excluded.state, \
    started_at_ms = excluded.started_at_ms, answered_at_ms = excluded.answered_at_ms, \
    redirected_from = excluded.redirected_from";

/// The `live_calls` columns in [`live_call_from_row`] order, as a literal
/// for `concat!`.
macro_rules! live_call_columns {
    () => {
        "node, call_id, from_uri, to_uri, state, started_at_ms, answered_at_ms, redirected_from"
    };
}

const SELECT_LIVE_CALLS: &str = concat!(
    "SELECT ",
    live_call_columns!(),
    " FROM live_calls ORDER BY started_at_ms, node, call_id"
);

const SELECT_LIVE_CALLS_OF_NODE: &str = concat!(
    "SELECT ",
    live_call_columns!(),
    " FROM live_calls WHERE node = $1 ORDER BY started_at_ms, call_id"
);

const INSERT_CDR: &str = "\
INSERT INTO cdrs (node, call_id, from_uri, to_uri, started_at_ms, answered_at_ms, \
    ended_at_ms, hangup_cause, hangup_side, sip_status, redirected_from, agent, queue, uid, \
    direction, destination) \
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
ON CONFLICT (uid) DO NOTHING \
RETURNING id";

const SELECT_CDRS: &str = "\
SELECT node, call_id, from_uri, to_uri, started_at_ms, answered_at_ms, ended_at_ms, \
    hangup_cause, hangup_side, sip_status, redirected_from, agent, queue, uid, direction, \
    destination \
FROM cdrs WHERE ended_at_ms >= $1 ORDER BY ended_at_ms, id";

impl Store {
    /// Records a call in progress. Idempotent: a second insert of the same
    /// `(node, call_id)` replaces the row.
    pub async fn insert_live_call(&self, call: &LiveCall) -> Result<(), StoreError> {
        sqlx::query(UPSERT_LIVE_CALL)
            .bind(&call.node)
            .bind(&call.call_id)
            .bind(&call.from_uri)
            .bind(&call.to_uri)
            .bind(&call.state)
            .bind(call.started_at_ms)
            .bind(call.answered_at_ms)
            .bind(call.redirected_from.as_deref())
            .execute(self.pool())
            .await
            .map_err(StoreError::query("insert live call"))?;
        Ok(())
    }

    /// Marks a live call answered at `at_ms`. Returns `false` if there is no
    /// such call.
    pub async fn update_live_call_answered(
        &self,
        node: &str,
        call_id: &str,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        let res = sqlx::query(
            "UPDATE live_calls SET state = 'answered', answered_at_ms = $3 \
             WHERE node = $1 AND call_id = $2",
        )
        .bind(node)
        .bind(call_id)
        .bind(at_ms)
        .execute(self.pool())
        .await
        .map_err(StoreError::query("mark live call answered"))?;
        Ok(res.rows_affected() > 0)
    }

    /// Removes a live call (it ended). Returns `false` if there was none.
    pub async fn delete_live_call(&self, node: &str, call_id: &str) -> Result<bool, StoreError> {
        let res = sqlx::query("DELETE FROM live_calls WHERE node = $1 AND call_id = $2")
            .bind(node)
            .bind(call_id)
            .execute(self.pool())
            .await
            .map_err(StoreError::query("delete live call"))?;
        Ok(res.rows_affected() > 0)
    }

    /// Removes every live call of `node` (left over from its previous run);
    /// returns how many.
    pub async fn clear_live_calls(&self, node: &str) -> Result<u64, StoreError> {
        let res = sqlx::query("DELETE FROM live_calls WHERE node = $1")
            .bind(node)
            .execute(self.pool())
            .await
            .map_err(StoreError::query("clear live calls"))?;
        Ok(res.rows_affected())
    }

    /// Live calls of one node, or of all nodes with `None`, oldest first.
    pub async fn live_calls(&self, node: Option<&str>) -> Result<Vec<LiveCall>, StoreError> {
        const WHAT: &str = "list live calls";
        let rows = match node {
            Some(node) => {
                sqlx::query(SELECT_LIVE_CALLS_OF_NODE)
                    .bind(node)
                    .fetch_all(self.pool())
                    .await
            }
            None => sqlx::query(SELECT_LIVE_CALLS).fetch_all(self.pool()).await,
        }
        .map_err(StoreError::query(WHAT))?;
        rows.iter()
            .map(live_call_from_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::query(WHAT))
    }

    /// Appends a call detail record; returns its id (increasing), or `None` when a record
    /// with the same `uid` is already stored (nothing is written: replays are idempotent).
    pub async fn insert_cdr(&self, cdr: &Cdr) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar(INSERT_CDR)
            .bind(&cdr.node)
            .bind(&cdr.call_id)
            .bind(&cdr.from_uri)
            .bind(&cdr.to_uri)
            .bind(cdr.started_at_ms)
            .bind(cdr.answered_at_ms)
            .bind(cdr.ended_at_ms)
            .bind(cdr.hangup_cause.as_str())
            .bind(cdr.hangup_side.as_str())
            .bind(cdr.sip_status)
            .bind(cdr.redirected_from.as_deref())
            .bind(cdr.agent.as_deref())
            .bind(cdr.queue.as_deref())
            .bind(cdr.uid.as_deref())
            .bind(cdr.direction.as_str())
            .bind(cdr.destination.as_deref())
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::write("insert cdr"))
    }

    /// Records of calls that ended at or after `since_ms`, oldest first.
    pub async fn cdrs_since(&self, since_ms: i64) -> Result<Vec<Cdr>, StoreError> {
        const WHAT: &str = "list cdrs";
        let rows = sqlx::query(SELECT_CDRS)
            .bind(since_ms)
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        rows.iter()
            .map(cdr_from_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::query(WHAT))
    }
}

fn live_call_from_row(row: &AnyRow) -> Result<LiveCall, sqlx::Error> {
    Ok(LiveCall {
        node: row.try_get("node")?,
        call_id: row.try_get("call_id")?,
        from_uri: row.try_get("from_uri")?,
        to_uri: row.try_get("to_uri")?,
        state: row.try_get("state")?,
        started_at_ms: row.try_get("started_at_ms")?,
        answered_at_ms: row.try_get("answered_at_ms")?,
        redirected_from: row.try_get("redirected_from")?,
    })
}

fn cdr_from_row(row: &AnyRow) -> Result<Cdr, sqlx::Error> {
    Ok(Cdr {
        node: row.try_get("node")?,
        call_id: row.try_get("call_id")?,
        from_uri: row.try_get("from_uri")?,
        to_uri: row.try_get("to_uri")?,
        started_at_ms: row.try_get("started_at_ms")?,
        answered_at_ms: row.try_get("answered_at_ms")?,
        ended_at_ms: row.try_get("ended_at_ms")?,
        hangup_cause: enum_col(row, "hangup_cause")?,
        hangup_side: enum_col(row, "hangup_side")?,
        sip_status: row.try_get("sip_status")?,
        redirected_from: row.try_get("redirected_from")?,
        agent: row.try_get("agent")?,
        queue: row.try_get("queue")?,
        uid: row.try_get("uid")?,
        direction: enum_col(row, "direction")?,
        destination: row.try_get("destination")?,
    })
}

#[cfg(test)]
mod tests;
