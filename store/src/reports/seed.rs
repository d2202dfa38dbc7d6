//! Bulk writes of a synthetic call history (`callfleet dev seed`): many rows per statement,
//! one transaction per batch.

use super::StateChange;
use crate::{Cdr, LegQualityRow, QueueEvent, Store, StoreError};

/// Rows per `INSERT` on PostgreSQL (13 parameters each for a CDR, 7 for an event).
const PG_ROWS: usize = 1000;
/// Rows per `INSERT` on SQLite: binding looks each `$N` up by name in a list, so a
/// statement's cost grows with the square of its parameters; a few hundred stay cheap.
const SQLITE_ROWS: usize = 20;

impl Store {
    /// Appends CDRs and queue events in one transaction (ids are the databases'; the events'
    /// `id` is ignored). For seeding a history: nodes write their records one by one.
    pub async fn insert_history(
        &self,
        cdrs: &[Cdr],
        events: &[QueueEvent],
    ) -> Result<(), StoreError> {
        const WHAT: &str = "insert history";
        let rows = match self.flavour() {
            crate::Flavour::Postgres => PG_ROWS,
            crate::Flavour::Sqlite => SQLITE_ROWS,
        };
        let mut tx = self.pool().begin().await.map_err(StoreError::query(WHAT))?;
        for chunk in cdrs.chunks(rows) {
            let sql = values_sql(
                "INSERT INTO cdrs (node, call_id, from_uri, to_uri, started_at_ms, \
                 answered_at_ms, ended_at_ms, hangup_cause, hangup_side, sip_status, \
                 redirected_from, agent, queue) VALUES ",
                13,
                chunk.len(),
            );
            let mut q = sqlx::query(&sql);
            for c in chunk {
                q = q
                    .bind(&c.node)
                    .bind(&c.call_id)
                    .bind(&c.from_uri)
                    .bind(&c.to_uri)
                    .bind(c.started_at_ms)
                    .bind(c.answered_at_ms)
                    .bind(c.ended_at_ms)
                    .bind(c.hangup_cause.as_str())
                    .bind(c.hangup_side.as_str())
                    .bind(c.sip_status)
                    .bind(c.redirected_from.as_deref())
                    .bind(c.agent.as_deref())
                    .bind(c.queue.as_deref());
            }
            q.execute(&mut *tx).await.map_err(StoreError::write(WHAT))?;
        }
        for chunk in events.chunks(rows) {
            let sql = values_sql(
                "INSERT INTO queue_events (at_ms, queue, call_id, node, agent, event, detail) \
                 VALUES ",
                7,
                chunk.len(),
            );
            let mut q = sqlx::query(&sql);
            for e in chunk {
                q = q
                    .bind(e.at_ms)
                    .bind(&e.queue)
                    .bind(&e.call_id)
                    .bind(&e.node)
                    .bind(e.agent.as_deref())
                    .bind(e.event.as_str())
                    .bind(e.detail.as_deref());
            }
            q.execute(&mut *tx).await.map_err(StoreError::write(WHAT))?;
        }
        tx.commit().await.map_err(StoreError::write(WHAT))
    }
}

impl Store {
    /// Appends call legs' RTP figures in one transaction (a history's: nodes upsert theirs
    /// one by one).
    pub async fn insert_quality_history(&self, rows: &[LegQualityRow]) -> Result<(), StoreError> {
        const WHAT: &str = "insert quality history";
        let per = match self.flavour() {
            crate::Flavour::Postgres => PG_ROWS,
            crate::Flavour::Sqlite => SQLITE_ROWS,
        };
        let mut tx = self.pool().begin().await.map_err(StoreError::query(WHAT))?;
        for chunk in rows.chunks(per) {
            let sql = values_sql(
                "INSERT INTO call_quality (node, call_id, started_at_ms, leg, ended_at_ms, \
                 codec, packets_in, bytes_in, packets_out, bytes_out, expected, lost, \
                 duplicates, out_of_order, jitter_us, jitter_max_us, longest_gap_ms, \
                 rtcp_sent, rtcp_received, peer_fraction_lost, peer_lost, peer_jitter_us, \
                 rtt_us) VALUES ",
                23,
                chunk.len(),
            );
            let mut q = sqlx::query(&sql);
            for r in chunk {
                q = q
                    .bind(&r.node)
                    .bind(&r.call_id)
                    .bind(r.started_at_ms)
                    .bind(r.leg.as_str())
                    .bind(r.ended_at_ms)
                    .bind(&r.codec)
                    .bind(r.packets_in)
                    .bind(r.bytes_in)
                    .bind(r.packets_out)
                    .bind(r.bytes_out)
                    .bind(r.expected)
                    .bind(r.lost)
                    .bind(r.duplicates)
                    .bind(r.out_of_order)
                    .bind(r.jitter_us)
                    .bind(r.jitter_max_us)
                    .bind(r.longest_gap_ms)
                    .bind(r.rtcp_sent)
                    .bind(r.rtcp_received)
                    .bind(r.peer_fraction_lost)
                    .bind(r.peer_lost)
                    .bind(r.peer_jitter_us)
                    .bind(r.rtt_us);
            }
            q.execute(&mut *tx).await.map_err(StoreError::write(WHAT))?;
        }
        tx.commit().await.map_err(StoreError::write(WHAT))
    }

    /// Appends agents' state changes in one transaction (a history's: the triggers on
    /// `agents` write the live ones).
    pub async fn insert_state_history(&self, rows: &[StateChange]) -> Result<(), StoreError> {
        const WHAT: &str = "insert agent state history";
        let per = match self.flavour() {
            crate::Flavour::Postgres => PG_ROWS,
            crate::Flavour::Sqlite => SQLITE_ROWS * 4,
        };
        let mut tx = self.pool().begin().await.map_err(StoreError::query(WHAT))?;
        for chunk in rows.chunks(per) {
            let sql = values_sql(
                "INSERT INTO agent_states (agent, state, since_ms) VALUES ",
                3,
                chunk.len(),
            );
            let mut q = sqlx::query(&sql);
            for r in chunk {
                q = q.bind(&r.agent).bind(r.state.as_str()).bind(r.since_ms);
            }
            q.execute(&mut *tx).await.map_err(StoreError::write(WHAT))?;
        }
        tx.commit().await.map_err(StoreError::write(WHAT))
    }

    /// Updates the planner's statistics of the history tables (after a bulk load, so the
    /// report queries are planned on what the tables hold).
    pub async fn analyze_history(&self) -> Result<(), StoreError> {
        for table in [
            "cdrs",
            "queue_events",
            "queue_calls",
            "call_quality",
            "agent_states",
        ] {
            sqlx::query(&format!("ANALYZE {table}"))
                .execute(self.pool())
                .await
                .map_err(StoreError::query("analyze history"))?;
        }
        Ok(())
    }
}

/// `head` followed by `rows` groups of `cols` placeholders: `($1, $2), ($3, $4)`.
fn values_sql(head: &str, cols: usize, rows: usize) -> String {
    let mut sql = String::with_capacity(head.len() + rows * cols * 6);
    sql.push_str(head);
    let mut n = 0;
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..cols {
            n += 1;
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&n.to_string());
        }
        sql.push(')');
    }
    sql
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_are_numbered_across_rows() {
        assert_eq!(super::values_sql("V ", 2, 2), "V ($1, $2), ($3, $4)");
    }
}
