//! The report queries. Each returns, or hands to a callback as it streams, one row per
//! dimension and UTC bucket of the window.

use futures_util::TryStreamExt as _;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Flavour, Store, StoreError};

/// The time window and bucket of a report: `[from_ms, to_ms)`, buckets of `bucket_ms` from
/// the epoch (a row's bucket is `time / bucket_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from_ms: i64,
    pub to_ms: i64,
    /// At least 1.
    pub bucket_ms: i64,
}

/// Which calls a CDR report counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallFilter {
    All,
    /// Calls an agent took.
    Agent(String),
    /// Calls that waited in a queue (the last one, when a call moved on to a fallback queue).
    Queue(String),
}

/// Queued calls of one queue entered in one bucket, and what became of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueRow {
    pub queue: String,
    pub bucket: i64,
    /// `enqueue` events.
    pub offered: i64,
    /// Of those, answered by an agent.
    pub answered: i64,
    /// Answered within the service-level threshold.
    pub within_sl: i64,
    /// Sum of the answered calls' waits (enqueue to answer).
    pub wait_ms: i64,
    /// Answered calls whose conversation ended (`complete`), and the sum of their talk times.
    pub completed: i64,
    pub talk_ms: i64,
    /// Callers who hung up while waiting or being offered.
    pub abandoned: i64,
    /// Calls that reached the queue's maximum wait (then its fallback: voicemail, a queue,
    /// hang-up).
    pub timed_out: i64,
}

/// An agent's answered queue calls in one bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentRow {
    pub agent: String,
    pub bucket: i64,
    pub answered: i64,
    pub completed: i64,
    pub talk_ms: i64,
}

/// Calls from one NANP area code started in one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AreaHour {
    /// The three digits after `+1` (or `1`, or the first three of ten digits); not checked.
    pub npa: [u8; 3],
    pub bucket: i64,
    pub calls: i64,
}

/// One caller's calls in a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerRow {
    /// The part of `From` before `@`: `sip:+15551234567`.
    pub caller: String,
    pub calls: i64,
    /// Of those, taken by an agent.
    pub answered: i64,
    pub first_ms: i64,
    pub last_ms: i64,
}

/// Queued calls by entry bucket, from the summary `queue_calls` (one row per call and queue).
const QUEUE_ROWS: &str = "\
SELECT queue, enqueued_at_ms / $3 AS b, COUNT(*), \
    SUM(CASE WHEN answered_at_ms IS NULL THEN 0 ELSE 1 END), \
    SUM(CASE WHEN answered_at_ms - enqueued_at_ms <= $4 THEN 1 ELSE 0 END), \
    CAST(COALESCE(SUM(answered_at_ms - enqueued_at_ms), 0) AS BIGINT), \
    SUM(CASE WHEN completed_at_ms IS NULL OR answered_at_ms IS NULL THEN 0 ELSE 1 END), \
    CAST(COALESCE(SUM(completed_at_ms - answered_at_ms), 0) AS BIGINT), \
    SUM(CASE WHEN outcome = 'abandon' THEN 1 ELSE 0 END), \
    SUM(CASE WHEN outcome = 'timeout' THEN 1 ELSE 0 END) \
FROM queue_calls \
WHERE enqueued_at_ms >= $1 AND enqueued_at_ms < $2 AND ($5 = '' OR queue = $5) \
GROUP BY queue, enqueued_at_ms / $3";

/// Answered queued calls by agent and answer bucket.
const AGENT_ROWS: &str = "\
SELECT agent, answered_at_ms / $3 AS b, COUNT(*), \
    SUM(CASE WHEN completed_at_ms IS NULL THEN 0 ELSE 1 END), \
    CAST(COALESCE(SUM(completed_at_ms - answered_at_ms), 0) AS BIGINT) \
FROM queue_calls \
WHERE answered_at_ms >= $1 AND answered_at_ms < $2 AND agent IS NOT NULL \
    AND ($4 = '' OR agent = $4) \
GROUP BY agent, answered_at_ms / $3";

/// The NANP area code of a caller written `sip:+1NPANXXXXXX@`, `sip:1NPA…@` or `sip:NPA…@`.
const NPA: &str = "\
CASE WHEN from_uri LIKE 'sip:+1__________@%' THEN substr(from_uri, 7, 3) \
     WHEN from_uri LIKE 'sip:1__________@%' THEN substr(from_uri, 6, 3) \
     WHEN from_uri LIKE 'sip:__________@%' THEN substr(from_uri, 5, 3) END";

/// The caller: the part of `From` before `@` (as in migration 0010's index).
pub(super) fn caller_expr(flavour: Flavour) -> &'static str {
    match flavour {
        Flavour::Postgres => "split_part(from_uri, '@', 1)",
        Flavour::Sqlite => {
            "(CASE WHEN instr(from_uri, '@') > 0 \
             THEN substr(from_uri, 1, instr(from_uri, '@') - 1) ELSE from_uri END)"
        }
    }
}

/// `AND …` for a CDR filter, its value bound as `$3` (empty for [`CallFilter::All`]).
pub(super) fn cdr_filter(filter: &CallFilter) -> (&'static str, &str) {
    match filter {
        CallFilter::All => ("AND $3 = ''", ""),
        CallFilter::Agent(a) => ("AND agent = $3", a),
        CallFilter::Queue(q) => ("AND queue = $3", q),
    }
}

pub(super) fn check(w: &Window) -> Result<(), StoreError> {
    if w.bucket_ms < 1 || w.to_ms < w.from_ms {
        return Err(StoreError::InvalidArgument {
            what: "report window",
            reason: "the bucket must be positive and the window must not end before it starts",
        });
    }
    Ok(())
}

impl Store {
    /// Queued calls per queue (or only `queue`) and bucket of entry: offered, answered,
    /// answered within `sl_ms`, waits, talk times, abandoned, timed out.
    pub async fn report_queues(
        &self,
        w: Window,
        queue: Option<&str>,
        sl_ms: i64,
    ) -> Result<Vec<QueueRow>, StoreError> {
        const WHAT: &str = "report queues";
        check(&w)?;
        let rows = sqlx::query(QUEUE_ROWS)
            .bind(w.from_ms)
            .bind(w.to_ms)
            .bind(w.bucket_ms)
            .bind(sl_ms)
            .bind(queue.unwrap_or(""))
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        rows.iter()
            .map(|r| {
                Ok(QueueRow {
                    queue: r.try_get(0)?,
                    bucket: r.try_get(1)?,
                    offered: r.try_get(2)?,
                    answered: r.try_get(3)?,
                    within_sl: r.try_get(4)?,
                    wait_ms: r.try_get(5)?,
                    completed: r.try_get(6)?,
                    talk_ms: r.try_get(7)?,
                    abandoned: r.try_get(8)?,
                    timed_out: r.try_get(9)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::query(WHAT))
    }

    /// Answered queue calls per agent (or only `agent`) and bucket of answer, with talk times.
    pub async fn report_agents(
        &self,
        w: Window,
        agent: Option<&str>,
    ) -> Result<Vec<AgentRow>, StoreError> {
        const WHAT: &str = "report agents";
        check(&w)?;
        let rows = sqlx::query(AGENT_ROWS)
            .bind(w.from_ms)
            .bind(w.to_ms)
            .bind(w.bucket_ms)
            .bind(agent.unwrap_or(""))
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        rows.iter()
            .map(|r| {
                Ok(AgentRow {
                    agent: r.try_get(0)?,
                    bucket: r.try_get(1)?,
                    answered: r.try_get(2)?,
                    completed: r.try_get(3)?,
                    talk_ms: r.try_get(4)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::query(WHAT))
    }

    /// Calls (CDRs by start time) per bucket: the heatmap.
    pub async fn report_call_buckets(
        &self,
        w: Window,
        filter: &CallFilter,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        const WHAT: &str = "report calls per bucket";
        check(&w)?;
        let (cond, value) = cdr_filter(filter);
        let sql = format!(
            "SELECT started_at_ms / $4 AS b, COUNT(*) FROM cdrs \
             WHERE started_at_ms >= $1 AND started_at_ms < $2 {cond} GROUP BY started_at_ms / $4"
        );
        let rows = sqlx::query(&sql)
            .bind(w.from_ms)
            .bind(w.to_ms)
            .bind(value)
            .bind(w.bucket_ms)
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::query(WHAT))
    }

    /// Calls from NANP numbers per area code and bucket, handed to `each` as they stream.
    pub async fn report_area_buckets(
        &self,
        w: Window,
        filter: &CallFilter,
        mut each: impl FnMut(AreaHour) + Send,
    ) -> Result<(), StoreError> {
        const WHAT: &str = "report calls per area code";
        check(&w)?;
        let (cond, value) = cdr_filter(filter);
        let sql = format!(
            "SELECT npa, b, COUNT(*) FROM (SELECT {NPA} AS npa, started_at_ms / $4 AS b FROM cdrs \
             WHERE started_at_ms >= $1 AND started_at_ms < $2 {cond} \
             AND from_uri LIKE 'sip:%') t WHERE npa IS NOT NULL GROUP BY npa, b"
        );
        let mut rows = sqlx::query(&sql)
            .bind(w.from_ms)
            .bind(w.to_ms)
            .bind(value)
            .bind(w.bucket_ms)
            .fetch(self.pool());
        while let Some(row) = rows.try_next().await.map_err(StoreError::query(WHAT))? {
            let npa: String = row.try_get(0).map_err(StoreError::query(WHAT))?;
            let Ok(npa) = <[u8; 3]>::try_from(npa.as_bytes()) else {
                continue;
            };
            each(AreaHour {
                npa,
                bucket: row.try_get(1).map_err(StoreError::query(WHAT))?,
                calls: row.try_get(2).map_err(StoreError::query(WHAT))?,
            });
        }
        Ok(())
    }

    /// The `limit` callers with the most calls started in the window (at least `min_calls`),
    /// most calls first.
    pub async fn report_top_callers(
        &self,
        w: Window,
        min_calls: i64,
        limit: i64,
    ) -> Result<Vec<CallerRow>, StoreError> {
        check(&w)?;
        let caller = caller_expr(self.flavour());
        let sql = format!(
            "SELECT {caller} AS c, COUNT(*) AS n, \
             SUM(CASE WHEN agent IS NULL THEN 0 ELSE 1 END), MIN(started_at_ms), \
             MAX(started_at_ms) FROM cdrs WHERE started_at_ms >= $1 AND started_at_ms < $2 \
             GROUP BY {caller} HAVING COUNT(*) >= $3 ORDER BY n DESC, c LIMIT $4"
        );
        let query = sqlx::query(&sql)
            .bind(w.from_ms)
            .bind(w.to_ms)
            .bind(min_calls)
            .bind(limit);
        self.caller_rows(query, "report top callers").await
    }

    /// The calls of the callers in `callers` (written as [`CallerRow::caller`]) in the window.
    pub async fn report_caller(
        &self,
        w: Window,
        callers: &[String],
    ) -> Result<Vec<CallerRow>, StoreError> {
        check(&w)?;
        let caller = caller_expr(self.flavour());
        let mut out = Vec::new();
        for c in callers {
            let sql = format!(
                "SELECT {caller} AS c, COUNT(*), SUM(CASE WHEN agent IS NULL THEN 0 ELSE 1 END), \
                 MIN(started_at_ms), MAX(started_at_ms) FROM cdrs \
                 WHERE {caller} = $3 AND started_at_ms >= $1 AND started_at_ms < $2 \
                 GROUP BY {caller}"
            );
            let query = sqlx::query(&sql).bind(w.from_ms).bind(w.to_ms).bind(c);
            out.extend(self.caller_rows(query, "report one caller").await?);
        }
        Ok(out)
    }

    async fn caller_rows<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
        what: &'static str,
    ) -> Result<Vec<CallerRow>, StoreError> {
        let rows = query
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::query(what))?;
        rows.iter()
            .map(caller_from_row)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::query(what))
    }
}

fn caller_from_row(r: &AnyRow) -> Result<CallerRow, sqlx::Error> {
    Ok(CallerRow {
        caller: r.try_get(0)?,
        calls: r.try_get(1)?,
        answered: r.try_get(2)?,
        first_ms: r.try_get(3)?,
        last_ms: r.try_get(4)?,
    })
}

macro_rules! export_sql {
    ($cond:literal) => {
        concat!(
            "SELECT node, call_id, from_uri, to_uri, started_at_ms, answered_at_ms, ",
            "ended_at_ms, hangup_cause, hangup_side, sip_status, redirected_from, agent, queue, ",
            "direction, destination ",
            "FROM cdrs WHERE started_at_ms >= $1 AND started_at_ms < $2 ",
            $cond,
            " ORDER BY started_at_ms, id"
        )
    };
}

impl Store {
    /// The CDRs started in the window (of one agent or queue), by start time, as a stream
    /// that holds one pooled connection until it ends or is dropped: an export of any size
    /// never sits in memory.
    pub fn report_cdrs<'a>(
        &'a self,
        w: Window,
        filter: &'a CallFilter,
    ) -> impl futures_util::Stream<Item = Result<crate::Cdr, StoreError>> + Send + 'a {
        const WHAT: &str = "export call records";
        // Every form takes three parameters; without a filter `$3` is compared to itself.
        let (sql, value) = match filter {
            CallFilter::All => (export_sql!("AND $3 = $3"), ""),
            CallFilter::Agent(a) => (export_sql!("AND agent = $3"), a.as_str()),
            CallFilter::Queue(q) => (export_sql!("AND queue = $3"), q.as_str()),
        };
        sqlx::query(sql)
            .bind(w.from_ms)
            .bind(w.to_ms)
            .bind(value)
            .fetch(self.pool())
            .map_err(|e| StoreError::Query {
                what: WHAT,
                source: e,
            })
            .and_then(|row| async move { cdr_from_row(&row).map_err(StoreError::query(WHAT)) })
    }
}

fn cdr_from_row(r: &AnyRow) -> Result<crate::Cdr, sqlx::Error> {
    Ok(crate::Cdr {
        node: r.try_get(0)?,
        call_id: r.try_get(1)?,
        from_uri: r.try_get(2)?,
        to_uri: r.try_get(3)?,
        started_at_ms: r.try_get(4)?,
        answered_at_ms: r.try_get(5)?,
        ended_at_ms: r.try_get(6)?,
        hangup_cause: crate::decode::enum_col(r, "hangup_cause")?,
        hangup_side: crate::decode::enum_col(r, "hangup_side")?,
        sip_status: r.try_get(9)?,
        redirected_from: r.try_get(10)?,
        agent: r.try_get(11)?,
        queue: r.try_get(12)?,
        // The record key is not part of the export.
        uid: None,
        direction: crate::decode::enum_col(r, "direction")?,
        destination: r.try_get(14)?,
    })
}
