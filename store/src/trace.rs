//! SIP trace per call (`sip_trace`): a call's messages in chunks, each a JSON array of
//! [`TracedMessage`]s compressed with zstd, keyed by the call (node, Call-ID, start time, as on
//! its CDR) and the chunk's number; a chunk written twice is stored once.

use callfleet_vocab::TracedMessage;
use sqlx::Row;

use crate::{Store, StoreError};

/// zstd level of the chunks: fast, and SIP text still shrinks several times.
const LEVEL: i32 = 3;
/// Largest chunk accepted on reading back (decompressed), whatever the row says.
pub const MAX_CHUNK_BYTES: usize = 16 << 20;

/// One stored chunk of a call's trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceChunk {
    pub node: String,
    pub call_id: String,
    pub started_at_ms: i64,
    pub seq: i64,
    pub at_ms: i64,
    /// Messages in the chunk and their size before compression.
    pub messages: i64,
    pub bytes: i64,
    /// Messages left out since the previous chunk because the call reached its budget.
    pub cut: i64,
    /// [`encode`]d messages.
    pub blob: Vec<u8>,
}

/// Why a chunk cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    #[error("cannot write a trace chunk: {0}")]
    Write(#[source] std::io::Error),
    #[error("trace chunk does not decompress: {0}")]
    Decompress(#[source] std::io::Error),
    #[error("trace chunk holds no list of messages: {0}")]
    Json(#[from] serde_json::Error),
}

/// The stored form of `messages`: a JSON array, zstd-compressed.
pub fn encode(messages: &[TracedMessage]) -> Result<Vec<u8>, ChunkError> {
    let json = serde_json::to_vec(messages)?;
    zstd::bulk::compress(&json, LEVEL).map_err(ChunkError::Write)
}

/// The messages of a stored chunk (at most [`MAX_CHUNK_BYTES`] decompressed).
pub fn decode(blob: &[u8]) -> Result<Vec<TracedMessage>, ChunkError> {
    let json = zstd::bulk::decompress(blob, MAX_CHUNK_BYTES).map_err(ChunkError::Decompress)?;
    Ok(serde_json::from_slice(&json)?)
}

const INSERT: &str = "INSERT INTO sip_trace \
     (node, call_id, started_at_ms, seq, at_ms, messages, bytes, cut, blob) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
     ON CONFLICT (node, call_id, started_at_ms, seq) DO NOTHING";

const SELECT_OF_CALL: &str = "SELECT node, call_id, started_at_ms, seq, at_ms, messages, \
     bytes, cut, blob FROM sip_trace WHERE call_id = $1 \
     ORDER BY started_at_ms, node, seq";

/// Deletes the oldest chunks of a node written before a time: up to `$3` of them (and any
/// written in the same millisecond as the last), found through the `at_ms` index.
const DELETE_BEFORE: &str = "DELETE FROM sip_trace WHERE node = $1 AND at_ms < $2 \
     AND at_ms <= COALESCE((SELECT at_ms FROM sip_trace WHERE node = $1 AND at_ms < $2 \
     ORDER BY at_ms LIMIT 1 OFFSET $3), $2)";

impl Store {
    /// Deletes a batch of about `batch` of `node`'s chunks written before `before_ms`, oldest
    /// first: `Ok(n)` chunks deleted, 0 once none is left.
    pub async fn delete_trace_before(
        &self,
        node: &str,
        before_ms: i64,
        batch: i64,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(DELETE_BEFORE)
            .bind(node.to_owned())
            .bind(before_ms)
            .bind(batch.max(1) - 1)
            .execute(self.pool())
            .await
            .map_err(StoreError::write("delete expired SIP traces"))?;
        Ok(done.rows_affected())
    }

    /// Stores chunks in one transaction; `Ok(n)`: how many were new (a chunk already stored
    /// is left as it is).
    pub async fn insert_trace_chunks(&self, chunks: &[TraceChunk]) -> Result<u64, StoreError> {
        const WHAT: &str = "insert SIP trace chunks";
        let mut tx = self.pool().begin().await.map_err(StoreError::query(WHAT))?;
        let mut new = 0;
        for c in chunks {
            let done = sqlx::query(INSERT)
                .bind(&c.node)
                .bind(&c.call_id)
                .bind(c.started_at_ms)
                .bind(c.seq)
                .bind(c.at_ms)
                .bind(c.messages)
                .bind(c.bytes)
                .bind(c.cut)
                .bind(c.blob.clone())
                .execute(&mut *tx)
                .await
                .map_err(StoreError::write(WHAT))?;
            new += done.rows_affected();
        }
        tx.commit().await.map_err(StoreError::query(WHAT))?;
        Ok(new)
    }

    /// The chunks stored for a Call-ID (on any node), oldest call first, in order.
    pub async fn trace_of_call(&self, call_id: &str) -> Result<Vec<TraceChunk>, StoreError> {
        const WHAT: &str = "read a SIP trace";
        let rows = sqlx::query(SELECT_OF_CALL)
            .bind(call_id.to_owned())
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        rows.iter()
            .map(|r| {
                Ok(TraceChunk {
                    node: r.try_get(0)?,
                    call_id: r.try_get(1)?,
                    started_at_ms: r.try_get(2)?,
                    seq: r.try_get(3)?,
                    at_ms: r.try_get(4)?,
                    messages: r.try_get(5)?,
                    bytes: r.try_get(6)?,
                    cut: r.try_get(7)?,
                    blob: r.try_get(8)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::query(WHAT))
    }
}

#[cfg(test)]
mod tests;
