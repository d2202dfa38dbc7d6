//! Agents' state history (`agent_states`, kept by triggers on `agents`, migration 0015): how
//! long each agent spent in each state within a window, summed by the database.

use sqlx::Row;

use super::queries::check;
use super::Window;
use crate::decode::enum_col;
use crate::{AgentState, Store, StoreError};

/// An agent's state from `since_ms` until its next change (a history's row, for seeding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    pub agent: String,
    pub state: AgentState,
    pub since_ms: i64,
}

/// An agent's time in one state within a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateTime {
    pub agent: String,
    pub state: AgentState,
    /// Milliseconds within the window; 0 for a state the agent entered and left in the same
    /// millisecond, or left before the window opened.
    pub ms: i64,
}

/// The time per agent and state within `[$1, $2)`, of every agent or agent `$3`.
///
/// The changes read are those of the window and each agent's last change before it (the
/// state it was in when the window opened; several in its last millisecond all come, the
/// earlier ones lasting nothing). Each change lasts until the agent's next one (ties in time
/// in the order they were made, `id`) or the window's end, clipped to the window; negative
/// spans (the earlier of the ties before the window) count nothing. An agent with any change
/// before the window's end has rows, even if its times are all 0. Only `CASE` clips, so the
/// text serves both databases.
const STATE_TIMES: &str = "\
WITH c AS ( \
    SELECT agent, state, since_ms, id FROM agent_states \
    WHERE since_ms >= $1 AND since_ms < $2 AND ($3 = '' OR agent = $3) \
    UNION ALL \
    SELECT s.agent, s.state, s.since_ms, s.id FROM agent_states s \
    JOIN (SELECT agent, MAX(since_ms) AS m FROM agent_states \
          WHERE since_ms < $1 AND ($3 = '' OR agent = $3) GROUP BY agent) b \
      ON s.agent = b.agent AND s.since_ms = b.m \
), d AS ( \
    SELECT agent, state, \
        CASE WHEN since_ms < $1 THEN $1 ELSE since_ms END AS start_ms, \
        COALESCE(LEAD(since_ms) OVER (PARTITION BY agent ORDER BY since_ms, id), $2) AS end_ms \
    FROM c \
) \
SELECT agent, state, \
    CAST(SUM(CASE WHEN end_ms > start_ms THEN end_ms - start_ms ELSE 0 END) AS BIGINT) AS ms \
FROM d GROUP BY agent, state";

impl Store {
    /// The time each agent (all agents, or `agent`) spent in each state within
    /// `[from_ms, to_ms)` (`bucket_ms` unused): one row per agent and state it was in, in no
    /// particular order. A window that has not ended should end at the present.
    pub async fn report_agent_state_times(
        &self,
        w: Window,
        agent: Option<&str>,
    ) -> Result<Vec<StateTime>, StoreError> {
        const WHAT: &str = "report agent state times";
        check(&w)?;
        let rows = sqlx::query(STATE_TIMES)
            .bind(w.from_ms)
            .bind(w.to_ms)
            .bind(agent.unwrap_or_default())
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        rows.iter()
            .map(|r| {
                Ok(StateTime {
                    agent: r.try_get(0)?,
                    state: enum_col(r, "state")?,
                    ms: r.try_get(2)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::query(WHAT))
    }
}

#[cfg(test)]
mod tests;
