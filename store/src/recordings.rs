//! Call recordings (`recordings`): one row per recorded conversation, naming the node that
//! holds the file. Written through the node's record writer, keyed by `uid` (a replayed write
//! stores nothing), together with the job that converts it to MP3.

use callfleet_vocab::RecordingFormat;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::decode::enum_col;
use crate::jobs::NewJob;
use crate::{Store, StoreError};

/// One row of `recordings` (`id` is 0 on a row not yet stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingRow {
    pub id: i64,
    /// Unique key given by the recording node.
    pub uid: String,
    /// The node holding the file.
    pub node: String,
    pub call_id: String,
    pub queue: Option<String>,
    pub agent: Option<String>,
    pub caller: String,
    /// The file on `node`.
    pub path: String,
    pub format: RecordingFormat,
    pub duration_ms: i64,
    pub size_bytes: i64,
    /// 20 ms frames lost because the disk did not keep up.
    pub dropped_frames: i64,
    pub started_at_ms: i64,
    pub created_at_ms: i64,
}

macro_rules! recording_select {
    () => {
        "SELECT id, uid, node, call_id, queue, agent, caller, path, format, duration_ms, \
         size_bytes, dropped_frames, started_at_ms, created_at_ms FROM recordings"
    };
}

const INSERT_RECORDING: &str = "\
INSERT INTO recordings (uid, node, call_id, queue, agent, caller, path, format, duration_ms, \
    size_bytes, dropped_frames, started_at_ms, created_at_ms) \
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
ON CONFLICT (uid) DO NOTHING RETURNING id";

impl Store {
    /// Stores a recording and, if it is new, `job` (its conversion) in the same transaction;
    /// returns the new row's id, or `None` when `uid` was already stored (nothing written).
    pub async fn insert_recording(
        &self,
        r: &RecordingRow,
        job: Option<&NewJob>,
    ) -> Result<Option<i64>, StoreError> {
        const WHAT: &str = "insert recording";
        let mut tx = self.pool().begin().await.map_err(StoreError::write(WHAT))?;
        let id: Option<i64> = sqlx::query_scalar(INSERT_RECORDING)
            .bind(&r.uid)
            .bind(&r.node)
            .bind(&r.call_id)
            .bind(r.queue.as_deref())
            .bind(r.agent.as_deref())
            .bind(&r.caller)
            .bind(&r.path)
            .bind(r.format.as_str())
            .bind(r.duration_ms)
            .bind(r.size_bytes)
            .bind(r.dropped_frames)
            .bind(r.started_at_ms)
            .bind(r.created_at_ms)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::write(WHAT))?;
        if let (Some(_), Some(job)) = (id, job) {
            job.insert(&mut tx).await?;
        }
        tx.commit().await.map_err(StoreError::write(WHAT))?;
        Ok(id)
    }

    /// The recording with this id.
    pub async fn recording(&self, id: i64) -> Result<Option<RecordingRow>, StoreError> {
        const WHAT: &str = "read recording";
        let row = sqlx::query(concat!(recording_select!(), " WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        row.as_ref()
            .map(recording_from_row)
            .transpose()
            .map_err(StoreError::query(WHAT))
    }

    /// The recording with this key.
    pub async fn recording_by_uid(&self, uid: &str) -> Result<Option<RecordingRow>, StoreError> {
        const WHAT: &str = "read recording";
        let row = sqlx::query(concat!(recording_select!(), " WHERE uid = $1"))
            .bind(uid)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        row.as_ref()
            .map(recording_from_row)
            .transpose()
            .map_err(StoreError::query(WHAT))
    }

    /// The latest recordings, newest first; of one call with `call_id`.
    pub async fn recordings(
        &self,
        call_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RecordingRow>, StoreError> {
        const WHAT: &str = "list recordings";
        let rows = match call_id {
            Some(c) => {
                sqlx::query(concat!(
                    recording_select!(),
                    " WHERE call_id = $1 ORDER BY created_at_ms DESC, id DESC LIMIT $2"
                ))
                .bind(c)
                .bind(limit)
                .fetch_all(self.pool())
                .await
            }
            None => {
                sqlx::query(concat!(
                    recording_select!(),
                    " ORDER BY created_at_ms DESC, id DESC LIMIT $1"
                ))
                .bind(limit)
                .fetch_all(self.pool())
                .await
            }
        }
        .map_err(StoreError::query(WHAT))?;
        rows.iter()
            .map(recording_from_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::query(WHAT))
    }

    /// Points a recording at its converted file; `false` if there is no such row or it no
    /// longer names `old_path` (it was moved or deleted meanwhile).
    pub async fn set_recording_file(
        &self,
        id: i64,
        old_path: &str,
        path: &str,
        format: RecordingFormat,
        size_bytes: i64,
    ) -> Result<bool, StoreError> {
        let res = sqlx::query(
            "UPDATE recordings SET path = $3, format = $4, size_bytes = $5 \
             WHERE id = $1 AND path = $2",
        )
        .bind(id)
        .bind(old_path)
        .bind(path)
        .bind(format.as_str())
        .bind(size_bytes)
        .execute(self.pool())
        .await
        .map_err(StoreError::write("update recording file"))?;
        Ok(res.rows_affected() > 0)
    }

    /// Recordings held by `node` made before `before_ms`, oldest first, at most `limit`.
    pub async fn recordings_before(
        &self,
        node: &str,
        before_ms: i64,
        limit: i64,
    ) -> Result<Vec<RecordingRow>, StoreError> {
        const WHAT: &str = "list old recordings";
        let rows = sqlx::query(concat!(
            recording_select!(),
            " WHERE node = $1 AND created_at_ms < $2 ORDER BY created_at_ms, id LIMIT $3"
        ))
        .bind(node)
        .bind(before_ms)
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::query(WHAT))?;
        rows.iter()
            .map(recording_from_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::query(WHAT))
    }

    /// Deletes a recording's row; `false` if there was none.
    pub async fn delete_recording(&self, id: i64) -> Result<bool, StoreError> {
        let res = sqlx::query("DELETE FROM recordings WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(StoreError::write("delete recording"))?;
        Ok(res.rows_affected() > 0)
    }
}

fn recording_from_row(row: &AnyRow) -> Result<RecordingRow, sqlx::Error> {
    Ok(RecordingRow {
        id: row.try_get("id")?,
        uid: row.try_get("uid")?,
        node: row.try_get("node")?,
        call_id: row.try_get("call_id")?,
        queue: row.try_get("queue")?,
        agent: row.try_get("agent")?,
        caller: row.try_get("caller")?,
        path: row.try_get("path")?,
        format: enum_col(row, "format")?,
        duration_ms: row.try_get("duration_ms")?,
        size_bytes: row.try_get("size_bytes")?,
        dropped_frames: row.try_get("dropped_frames")?,
        started_at_ms: row.try_get("started_at_ms")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}
