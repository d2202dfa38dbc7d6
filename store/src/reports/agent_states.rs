//! Agents' state history (`agent_states`, kept by triggers on `agents`, migration 0015): the
//! changes a report over a window needs to know how long each agent spent in each state.

use futures_util::TryStreamExt as _;
use sqlx::Row;

use crate::decode::enum_col;
use crate::{AgentState, Store, StoreError};

/// An agent's state from `since_ms` until its next change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    pub agent: String,
    pub state: AgentState,
    pub since_ms: i64,
}

/// The changes in the window, and each agent's last change before it (the state it was in
/// when the window opened); ties in time come in the order they were made.
const CHANGES: &str = "\
SELECT agent, state, since_ms, id FROM agent_states \
WHERE since_ms >= $1 AND since_ms < $2 AND ($3 = '' OR agent = $3) \
UNION ALL \
SELECT s.agent, s.state, s.since_ms, s.id FROM agent_states s \
JOIN (SELECT agent, MAX(since_ms) AS m FROM agent_states \
      WHERE since_ms < $1 AND ($3 = '' OR agent = $3) GROUP BY agent) b \
  ON s.agent = b.agent AND s.since_ms = b.m \
ORDER BY 1, 3, 4";

impl Store {
    /// The changes of agents' states (all agents, or `agent`) that tell their states over
    /// `[from_ms, to_ms)`, ordered by agent, then time, handed to `each` as they stream.
    pub async fn report_agent_states(
        &self,
        from_ms: i64,
        to_ms: i64,
        agent: Option<&str>,
        mut each: impl FnMut(StateChange) + Send,
    ) -> Result<(), StoreError> {
        const WHAT: &str = "report agent states";
        let mut rows = sqlx::query(CHANGES)
            .bind(from_ms)
            .bind(to_ms)
            .bind(agent.unwrap_or_default())
            .fetch(self.pool());
        while let Some(r) = rows.try_next().await.map_err(StoreError::query(WHAT))? {
            let change = (|| {
                Ok::<_, sqlx::Error>(StateChange {
                    agent: r.try_get(0)?,
                    state: enum_col(&r, "state")?,
                    since_ms: r.try_get(2)?,
                })
            })()
            .map_err(StoreError::query(WHAT))?;
            each(change);
        }
        Ok(())
    }
}
