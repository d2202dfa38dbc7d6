//! Node heartbeats: the current row per node (which is also the node's
//! static description), the history of load points, and the drain flag.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Store, StoreError};

/// A node's state as written at each beat. One row per node in `heartbeats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Node name, primary key.
    pub name: String,
    /// `"main"` or `"extra"`.
    pub role: String,
    /// e.g. `"127.0.0.11:5060"`.
    pub sip_addr: String,
    /// e.g. `"127.0.0.11:8080"`.
    pub http_addr: String,
    /// New at each start of the node (e.g. ms since epoch at start); fences
    /// off beats from an older process of the same name.
    pub generation: i64,
    /// Increments every beat.
    pub seq: i64,
    /// Calls in progress.
    pub calls: i64,
    pub capacity: i64,
    /// CPU % * 10 (123 = 12.3 %).
    pub cpu_milli: i64,
    /// 1-minute load average * 1000.
    pub load1_milli: i64,
    pub mem_used_kb: i64,
    pub mem_total_kb: i64,
    /// 0..=3.
    pub shed_level: i64,
    pub draining: bool,
    /// At capacity, or CPU over the refuse threshold.
    pub refusing: bool,
    /// Comma-separated, e.g. `"sip,media,lb,web"`.
    pub services: String,
    pub version: String,
    /// Wall clock of the writer, ms since the UNIX epoch.
    pub updated_at_ms: i64,
}

/// One point of a node's load history (one per beat).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatPoint {
    pub name: String,
    pub at_ms: i64,
    pub calls: i64,
    pub cpu_milli: i64,
    pub load1_milli: i64,
}

/// Insert or replace the node's row, unless a newer generation owns it;
/// `draining` is sticky within a generation (see `upsert_heartbeat`).
const UPSERT_HEARTBEAT: &str = "\
INSERT INTO heartbeats (name, role, sip_addr, http_addr, generation, seq, calls, capacity, \
    cpu_milli, load1_milli, mem_used_kb, mem_total_kb, shed_level, draining, refusing, \
    services, version, updated_at_ms) \
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) \
ON CONFLICT (name) DO UPDATE SET \
    role = excluded.role, sip_addr = excluded.sip_addr, http_addr = excluded.http_addr, \
    generation = excluded.generation, seq = excluded.seq, calls = excluded.calls, \
    capacity = excluded.capacity, cpu_milli = excluded.cpu_milli, \
    load1_milli = excluded.load1_milli, mem_used_kb = excluded.mem_used_kb, \
    mem_total_kb = excluded.mem_total_kb, shed_level = excluded.shed_level, \
    draining = CASE WHEN heartbeats.generation = excluded.generation AND heartbeats.draining = 1 \
        THEN 1 ELSE excluded.draining END, \
    refusing = excluded.refusing, services = excluded.services, version = excluded.version, \
    updated_at_ms = excluded.updated_at_ms \
WHERE heartbeats.generation <= excluded.generation";

const INSERT_POINT: &str = "\
INSERT INTO heartbeat_history (name, at_ms, calls, cpu_milli, load1_milli) \
VALUES ($1, $2, $3, $4, $5)";

const SELECT_HEARTBEATS: &str = "\
SELECT name, role, sip_addr, http_addr, generation, seq, calls, capacity, cpu_milli, \
    load1_milli, mem_used_kb, mem_total_kb, shed_level, draining, refusing, services, \
    version, updated_at_ms \
FROM heartbeats ORDER BY name";

const SELECT_HISTORY: &str = "\
SELECT name, at_ms, calls, cpu_milli, load1_milli FROM heartbeat_history \
WHERE at_ms >= $1 ORDER BY at_ms, name";

impl Store {
    /// Writes the node's current row and appends one history point (at
    /// `updated_at_ms`), in one transaction.
    ///
    /// `draining` is sticky within a generation: once set (by the node itself
    /// or by [`Store::set_draining`]) a beat of the same generation cannot
    /// clear it; a beat of a new generation (a restart) sets the beat's value.
    ///
    /// Returns `false`, writing nothing, when the stored row has a newer
    /// `generation`: another process of the same name started after this
    /// one, and this one should stop. Generations must therefore grow across
    /// restarts even if the wall clock steps back (e.g. start from
    /// `max(now_ms, stored generation + 1)`).
    pub async fn upsert_heartbeat(&self, hb: &Heartbeat) -> Result<bool, StoreError> {
        const WHAT: &str = "upsert heartbeat";
        let mut tx = self.pool().begin().await.map_err(StoreError::query(WHAT))?;
        let written = sqlx::query(UPSERT_HEARTBEAT)
            .bind(&hb.name)
            .bind(&hb.role)
            .bind(&hb.sip_addr)
            .bind(&hb.http_addr)
            .bind(hb.generation)
            .bind(hb.seq)
            .bind(hb.calls)
            .bind(hb.capacity)
            .bind(hb.cpu_milli)
            .bind(hb.load1_milli)
            .bind(hb.mem_used_kb)
            .bind(hb.mem_total_kb)
            .bind(hb.shed_level)
            .bind(i64::from(hb.draining))
            .bind(i64::from(hb.refusing))
            .bind(&hb.services)
            .bind(&hb.version)
            .bind(hb.updated_at_ms)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::query(WHAT))?
            .rows_affected()
            > 0;
        if !written {
            tx.rollback().await.map_err(StoreError::query(WHAT))?;
            return Ok(false);
        }
        sqlx::query(INSERT_POINT)
            .bind(&hb.name)
            .bind(hb.updated_at_ms)
            .bind(hb.calls)
            .bind(hb.cpu_milli)
            .bind(hb.load1_milli)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::query("append heartbeat history"))?;
        tx.commit().await.map_err(StoreError::query(WHAT))?;
        Ok(true)
    }

    /// Deletes history points with `at_ms < older_than_ms`; returns how many.
    pub async fn prune_history(&self, older_than_ms: i64) -> Result<u64, StoreError> {
        let res = sqlx::query("DELETE FROM heartbeat_history WHERE at_ms < $1")
            .bind(older_than_ms)
            .execute(self.pool())
            .await
            .map_err(StoreError::query("prune heartbeat history"))?;
        Ok(res.rows_affected())
    }

    /// Every node's current row, by name. Liveness is the reader's call
    /// (compare `updated_at_ms` with its own clock and TTL).
    pub async fn heartbeats(&self) -> Result<Vec<Heartbeat>, StoreError> {
        const WHAT: &str = "list heartbeats";
        let rows = sqlx::query(SELECT_HEARTBEATS)
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        rows.iter()
            .map(heartbeat_from_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::query(WHAT))
    }

    /// History points with `at_ms >= since_ms`, oldest first.
    pub async fn history(&self, since_ms: i64) -> Result<Vec<HeartbeatPoint>, StoreError> {
        const WHAT: &str = "list heartbeat history";
        let rows = sqlx::query(SELECT_HISTORY)
            .bind(since_ms)
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        rows.iter()
            .map(|row| {
                Ok(HeartbeatPoint {
                    name: row.try_get("name")?,
                    at_ms: row.try_get("at_ms")?,
                    calls: row.try_get("calls")?,
                    cpu_milli: row.try_get("cpu_milli")?,
                    load1_milli: row.try_get("load1_milli")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::query(WHAT))
    }

    /// Sets or clears the drain flag on a node's row; once set it survives
    /// the node's later beats until the node restarts or this clears it (see
    /// [`Store::upsert_heartbeat`]). Returns `false` if no node has that name.
    pub async fn set_draining(&self, name: &str, draining: bool) -> Result<bool, StoreError> {
        let res = sqlx::query("UPDATE heartbeats SET draining = $2 WHERE name = $1")
            .bind(name)
            .bind(i64::from(draining))
            .execute(self.pool())
            .await
            .map_err(StoreError::query("set draining"))?;
        Ok(res.rows_affected() > 0)
    }
}

fn heartbeat_from_row(row: &AnyRow) -> Result<Heartbeat, sqlx::Error> {
    Ok(Heartbeat {
        name: row.try_get("name")?,
        role: row.try_get("role")?,
        sip_addr: row.try_get("sip_addr")?,
        http_addr: row.try_get("http_addr")?,
        generation: row.try_get("generation")?,
        seq: row.try_get("seq")?,
        calls: row.try_get("calls")?,
        capacity: row.try_get("capacity")?,
        cpu_milli: row.try_get("cpu_milli")?,
        load1_milli: row.try_get("load1_milli")?,
        mem_used_kb: row.try_get("mem_used_kb")?,
        mem_total_kb: row.try_get("mem_total_kb")?,
        shed_level: row.try_get("shed_level")?,
        draining: row.try_get::<i64, _>("draining")? != 0,
        refusing: row.try_get::<i64, _>("refusing")? != 0,
        services: row.try_get("services")?,
        version: row.try_get("version")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
    })
}

#[cfg(test)]
mod tests;
