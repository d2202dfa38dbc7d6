//! Agents' state history (`agent_states`, kept by triggers on `agents` and on itself,
//! migrations 0015 and 0017): how long each agent spent in each state within a window, summed
//! by the database.

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
/// Each change lasts from its `since_ms` until its `end_ms` (the agent's next change, in the
/// order they were written: migration 0017), or the window's end while it is still open,
/// clipped to the window. The rows read are those that reach into the window: begun before its
/// end and ended at or after its start, or still open; a change that ends before it began (the
/// next change written carried an earlier clock) counts nothing. An agent with any change before
/// the window's end has rows (its last such change reaches into the window), even if its times
/// are all 0. One pass over the rows, grouped by agent and state: no sort. Only `CASE` clips,
/// so the text serves both databases.
const STATE_TIMES: &str = "\
SELECT agent, state, \
    CAST(SUM(CASE WHEN e > s THEN e - s ELSE 0 END) AS BIGINT) AS ms \
FROM ( \
    SELECT agent, state, \
        CASE WHEN since_ms < $1 THEN $1 ELSE since_ms END AS s, \
        CASE WHEN end_ms IS NULL OR end_ms > $2 THEN $2 ELSE end_ms END AS e \
    FROM agent_states \
    WHERE since_ms < $2 AND (end_ms >= $1 OR end_ms IS NULL) AND ($3 = '' OR agent = $3) \
) d GROUP BY agent, state";

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
