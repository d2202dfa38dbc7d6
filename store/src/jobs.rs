//! Durable background jobs (`jobs`): work that may wait (the MP3 conversion of a recording)
//! and must survive a restart. A worker claims one ready job at a time, atomically (on
//! PostgreSQL `FOR UPDATE SKIP LOCKED`, so workers never wait on each other's rows; SQLite
//! has one writer, so its `UPDATE ... RETURNING` is atomic as it is), for a lease. A job
//! whose lease ran out (its worker died) is ready again. Each claim counts an attempt.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::dburl::Flavour;
use crate::{Store, StoreError};

/// A job to store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewJob {
    /// What to do, e.g. `mp3`.
    pub kind: String,
    /// Its arguments (JSON).
    pub payload: String,
    /// The node that must run it, if only one can (the one holding a file).
    pub node: Option<String>,
    /// Not before.
    pub at_ms: i64,
}

/// A claimed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub payload: String,
    /// Claims so far, this one included.
    pub attempts: i64,
}

/// Where a job stands (`jobs.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Queued,
    Done,
    Failed,
}

impl JobState {
    fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }
}

const INSERT_JOB: &str = "\
INSERT INTO jobs (kind, payload, node, state, attempts, next_at_ms, created_at_ms, updated_at_ms) \
VALUES ($1, $2, $3, 'queued', 0, $4, $4, $4) RETURNING id";

/// The ready job to claim: queued, due, unclaimed or its claim run out, for this node or any.
macro_rules! ready_job {
    () => {
        "SELECT id FROM jobs WHERE state = 'queued' AND next_at_ms <= $3 \
         AND (claimed_until_ms IS NULL OR claimed_until_ms <= $3) \
         AND (node IS NULL OR node = $4) ORDER BY next_at_ms, id LIMIT 1"
    };
}

macro_rules! claim {
    ($lock:literal) => {
        concat!(
            "UPDATE jobs SET claimed_by = $1, claimed_until_ms = $2, attempts = attempts + 1, \
             updated_at_ms = $3 WHERE id = (",
            ready_job!(),
            $lock,
            ") RETURNING id, kind, payload, attempts"
        )
    };
}

impl NewJob {
    pub(crate) async fn insert(&self, tx: &mut Transaction<'_, Any>) -> Result<i64, StoreError> {
        sqlx::query_scalar(INSERT_JOB)
            .bind(&self.kind)
            .bind(&self.payload)
            .bind(self.node.as_deref())
            .bind(self.at_ms)
            .fetch_one(&mut **tx)
            .await
            .map_err(StoreError::write("insert job"))
    }
}

impl Store {
    /// Stores a job; returns its id.
    pub async fn enqueue_job(&self, job: &NewJob) -> Result<i64, StoreError> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(StoreError::write("insert job"))?;
        let id = job.insert(&mut tx).await?;
        tx.commit().await.map_err(StoreError::write("insert job"))?;
        Ok(id)
    }

    /// Claims the next ready job `node` may run, for `worker` until `until_ms`.
    pub async fn claim_job(
        &self,
        worker: &str,
        node: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Option<Job>, StoreError> {
        const WHAT: &str = "claim job";
        let sql = match self.flavour() {
            Flavour::Postgres => claim!(" FOR UPDATE SKIP LOCKED"),
            Flavour::Sqlite => claim!(""),
        };
        let row = sqlx::query(sql)
            .bind(worker)
            .bind(until_ms)
            .bind(now_ms)
            .bind(node)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::write(WHAT))?;
        row.as_ref()
            .map(job_from_row)
            .transpose()
            .map_err(StoreError::query(WHAT))
    }

    /// Ends `worker`'s claim on a job: `Done`, `Failed` (for good), or `Queued` again from
    /// `next_at_ms` with `error` noted. `false` if the claim was no longer the worker's.
    pub async fn settle_job(
        &self,
        id: i64,
        worker: &str,
        state: JobState,
        next_at_ms: i64,
        error: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let res = sqlx::query(
            "UPDATE jobs SET state = $3, next_at_ms = $4, last_error = $5, updated_at_ms = $6, \
             claimed_by = NULL, claimed_until_ms = NULL WHERE id = $1 AND claimed_by = $2",
        )
        .bind(id)
        .bind(worker)
        .bind(state.as_str())
        .bind(next_at_ms)
        .bind(error)
        .bind(now_ms)
        .execute(self.pool())
        .await
        .map_err(StoreError::write("settle job"))?;
        Ok(res.rows_affected() > 0)
    }

    /// Jobs per state (`queued`, `done`, `failed`), for metrics and the doctor.
    pub async fn job_counts(&self) -> Result<(i64, i64, i64), StoreError> {
        const WHAT: &str = "count jobs";
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        let mut counts = (0, 0, 0);
        for row in &rows {
            let state: String = row.try_get("state").map_err(StoreError::query(WHAT))?;
            let n: i64 = row.try_get("n").map_err(StoreError::query(WHAT))?;
            match state.as_str() {
                "queued" => counts.0 = n,
                "done" => counts.1 = n,
                _ => counts.2 += n,
            }
        }
        Ok(counts)
    }
}

fn job_from_row(row: &AnyRow) -> Result<Job, sqlx::Error> {
    Ok(Job {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        payload: row.try_get("payload")?,
        attempts: row.try_get("attempts")?,
    })
}

#[cfg(test)]
mod tests;
