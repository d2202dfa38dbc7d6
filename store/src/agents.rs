//! Agents: their configuration (name, PIN hash, daily limit) and their
//! runtime state (logged-in device, call state, calls handled today), with
//! every state change a guarded single-row UPDATE so concurrent nodes cannot
//! both take the same agent.
//!
//! # State rules
//!
//! - An agent is `logged_out` exactly when it holds no device; a device
//!   holds at most one agent (both enforced by the schema).
//! - `reserved`, `ringing` and `in_call` hold a call (`current_call`,
//!   `current_node`); logging in or out is refused in those states.
//! - `paused` is a flag that survives logout; while it is set, an agent that
//!   would become `available` becomes `paused` instead.
//! - `calls_today` counts handled calls plus recorded sales on the day
//!   `calls_day` (a `YYYY-MM-DD` the caller chooses); the first count of a
//!   new day starts again from 1. The daily limit compares against it.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::decode::{bool_col, enum_col};
use crate::{Store, StoreError};

pub use callfleet_vocab::AgentState;

/// The UTC date of `now_ms` as `YYYY-MM-DD`: the day an agent's `calls_today` counts
/// (`calls_day`). Every node and the CRM API use this one rule, so they agree on "today".
pub fn utc_day(now_ms: i64) -> String {
    let days = now_ms.div_euclid(86_400_000);
    // Civil-from-days (Howard Hinnant's algorithm), to avoid a date crate for one format.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}")
}

/// One row of `agents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    /// Agent number, primary key.
    pub extension: String,
    pub name: String,
    /// The PIN as [`crate::pin::hash`] stores it (argon2id; older rows: hex SHA-256 of
    /// `"extension:pin"`, upgraded at the next successful login).
    pub pin_hash: String,
    /// Extension of the device the agent is logged in on.
    pub device: Option<String>,
    pub state: AgentState,
    pub state_since_ms: i64,
    pub last_call_end_ms: Option<i64>,
    /// Handled calls plus recorded sales on `calls_day`.
    pub calls_today: i64,
    /// `YYYY-MM-DD` that `calls_today` counts.
    pub calls_day: Option<String>,
    /// After this many `calls_today` the agent drops to the lowest tier.
    pub daily_limit: Option<i64>,
    pub paused: bool,
    /// Call-ID of the call the agent is reserved for, ringing or talking on.
    pub current_call: Option<String>,
    /// Node holding `current_call`.
    pub current_node: Option<String>,
}

impl Agent {
    /// A new, logged-out agent with no calls, as [`Store::upsert_agent`]
    /// creates it.
    pub fn new(extension: &str, name: &str, pin_hash: &str, now_ms: i64) -> Agent {
        Agent {
            extension: extension.to_owned(),
            name: name.to_owned(),
            pin_hash: pin_hash.to_owned(),
            device: None,
            state: AgentState::LoggedOut,
            state_since_ms: now_ms,
            last_call_end_ms: None,
            calls_today: 0,
            calls_day: None,
            daily_limit: None,
            paused: false,
            current_call: None,
            current_node: None,
        }
    }
}

/// A new row starts logged out; an existing one keeps its runtime columns.
const UPSERT_AGENT: &str = "\
INSERT INTO agents (extension, name, pin_hash, daily_limit, device, state, state_since_ms, \
    calls_today, paused) \
VALUES ($1, $2, $3, $4, NULL, 'logged_out', $5, 0, 0) \
ON CONFLICT (extension) DO UPDATE SET \
    name = excluded.name, pin_hash = excluded.pin_hash, daily_limit = excluded.daily_limit";

macro_rules! agent_select {
    () => {
        "SELECT extension, name, pin_hash, device, state, state_since_ms, last_call_end_ms, \
         calls_today, calls_day, daily_limit, paused, current_call, current_node FROM agents"
    };
}

/// States an agent may log in or out from (it holds no call).
macro_rules! idle_states {
    () => {
        "('available', 'paused', 'wrap_up', 'logged_out')"
    };
}

/// Frees device $2 from any other agent that is not in a call.
const LOGIN_FREE_DEVICE: &str = concat!(
    "UPDATE agents SET device = NULL, state = 'logged_out', state_since_ms = $3, \
     current_call = NULL, current_node = NULL \
     WHERE device = $2 AND extension <> $1 AND state IN ",
    idle_states!()
);

/// Wrap-up continues on the new device; otherwise available unless paused.
const LOGIN: &str = concat!(
    "UPDATE agents SET device = $2, \
     state = CASE WHEN state = 'wrap_up' THEN 'wrap_up' \
         WHEN paused = 1 THEN 'paused' ELSE 'available' END, \
     state_since_ms = CASE WHEN state = 'wrap_up' THEN state_since_ms ELSE $3 END \
     WHERE extension = $1 AND state IN ",
    idle_states!()
);

const LOGOUT: &str = concat!(
    "UPDATE agents SET device = NULL, state = 'logged_out', \
     state_since_ms = CASE WHEN state = 'logged_out' THEN state_since_ms ELSE $2 END, \
     current_call = NULL, current_node = NULL \
     WHERE extension = $1 AND state IN ",
    idle_states!()
);

const SET_PAUSED: &str = "\
UPDATE agents SET paused = $2, \
    state = CASE WHEN $2 = 1 AND state = 'available' THEN 'paused' \
        WHEN $2 = 0 AND state = 'paused' THEN 'available' ELSE state END, \
    state_since_ms = CASE WHEN ($2 = 1 AND state = 'available') OR ($2 = 0 AND state = 'paused') \
        THEN $3 ELSE state_since_ms END \
WHERE extension = $1";

/// The start of a guarded transition; `state IN (...)` placeholders from
/// `$7` on are appended by `transition_sql`.
/// What a guarded agent state change came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Moved,
    /// The agent is not in a state the change starts from (or does not exist).
    Refused,
    /// The agent last changed under a newer lease than the one given: the caller is a stale
    /// holder and must not act for the agent.
    Fenced {
        stored: i64,
    },
}

const TRANSITION_HEAD: &str = "\
UPDATE agents SET \
    state = CASE WHEN $2 = 'available' AND paused = 1 THEN 'paused' ELSE $2 END, \
    state_since_ms = $3, \
    device = CASE WHEN $2 = 'logged_out' THEN NULL ELSE device END, \
    current_call = CASE WHEN $4 = 1 THEN $5 ELSE current_call END, \
    current_node = CASE WHEN $4 = 1 THEN $6 ELSE current_node END, \
    fence = CASE WHEN $7 > fence THEN $7 ELSE fence END \
WHERE extension = $1 AND (device IS NOT NULL OR $2 = 'logged_out') AND ($7 = 0 OR fence <= $7) \
    AND state IN (";

/// Counts one handled unit on day $2, starting again from 1 on a new day.
macro_rules! count_today {
    () => {
        "calls_today = CASE WHEN calls_day = $2 THEN calls_today + 1 ELSE 1 END, calls_day = $2"
    };
}

const FINISH_CALL: &str = concat!(
    "UPDATE agents SET state = 'wrap_up', state_since_ms = $3, last_call_end_ms = $3, ",
    count_today!(),
    ", current_call = NULL, current_node = NULL, \
     fence = CASE WHEN $4 > fence THEN $4 ELSE fence END \
     WHERE extension = $1 AND state = 'in_call' AND ($4 = 0 OR fence <= $4)"
);

const RECORD_SALE: &str = concat!(
    "UPDATE agents SET ",
    count_today!(),
    " WHERE extension = $1"
);

const RELEASE_NODE_AGENTS: &str = "\
UPDATE agents SET state = CASE WHEN paused = 1 THEN 'paused' ELSE 'available' END, \
    state_since_ms = $2, current_call = NULL, current_node = NULL \
WHERE current_node = $1 AND state IN ('reserved', 'ringing', 'in_call')";

/// The guarded transition for `from_len` source states: `$7 .. $(6+from_len)`.
fn transition_sql(from_len: usize) -> String {
    let mut sql = String::from(TRANSITION_HEAD);
    for i in 0..from_len {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("${}", i + 8));
    }
    sql.push(')');
    sql
}

impl Store {
    /// Creates an agent or updates its configuration: `name`, `pin_hash`
    /// and `daily_limit`. The other fields of `agent` are ignored except
    /// `state_since_ms`, the time a new agent is logged out since; an
    /// existing agent keeps its device, state and counters. Bumps the config
    /// version in the same transaction.
    pub async fn upsert_agent(&self, agent: &Agent) -> Result<(), StoreError> {
        let statement = sqlx::query(UPSERT_AGENT)
            .bind(&agent.extension)
            .bind(&agent.name)
            .bind(&agent.pin_hash)
            .bind(agent.daily_limit)
            .bind(agent.state_since_ms);
        self.config_write("upsert agent", statement).await?;
        Ok(())
    }

    /// The agent with this extension, if any.
    pub async fn agent(&self, extension: &str) -> Result<Option<Agent>, StoreError> {
        self.agent_where(
            "read agent",
            concat!(agent_select!(), " WHERE extension = $1"),
            extension,
        )
        .await
    }

    /// The agent logged in on `device`, if any.
    pub async fn agent_on_device(&self, device: &str) -> Result<Option<Agent>, StoreError> {
        self.agent_where(
            "read agent on device",
            concat!(agent_select!(), " WHERE device = $1"),
            device,
        )
        .await
    }

    /// Replaces the agent's stored PIN hash by `new` if it is still `old` (a hot-desk login
    /// upgrading the old SHA-256 form to argon2id, the same PIN); `false` when the row changed
    /// meanwhile (the PIN was set anew) or is gone. The configuration is the same PIN, so the
    /// config version is left alone.
    pub async fn upgrade_agent_pin_hash(
        &self,
        extension: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE agents SET pin_hash = $1 WHERE extension = $2 AND pin_hash = $3")
                .bind(new)
                .bind(extension)
                .bind(old)
                .execute(self.pool())
                .await
                .map_err(StoreError::query("upgrade agent PIN hash"))?;
        Ok(done.rows_affected() > 0)
    }

    async fn agent_where(
        &self,
        what: &'static str,
        sql: &'static str,
        key: &str,
    ) -> Result<Option<Agent>, StoreError> {
        let row = sqlx::query(sql)
            .bind(key)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::query(what))?;
        row.as_ref()
            .map(agent_from_row)
            .transpose()
            .map_err(StoreError::query(what))
    }

    /// All agents, by extension.
    pub async fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        const WHAT: &str = "list agents";
        let rows = sqlx::query(concat!(agent_select!(), " ORDER BY extension"))
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        rows.iter()
            .map(agent_from_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::query(WHAT))
    }

    /// Deletes an agent and its queue memberships; returns `false` if there
    /// was none. Bumps the config version when a row was deleted.
    pub async fn delete_agent(&self, extension: &str) -> Result<bool, StoreError> {
        let statement = sqlx::query("DELETE FROM agents WHERE extension = $1").bind(extension);
        Ok(self.config_write("delete agent", statement).await? > 0)
    }

    /// Sets or clears the daily limit; returns `false` if there is no such
    /// agent. Bumps the config version when the agent exists.
    pub async fn set_daily_limit(
        &self,
        extension: &str,
        limit: Option<u32>,
    ) -> Result<bool, StoreError> {
        let statement = sqlx::query("UPDATE agents SET daily_limit = $2 WHERE extension = $1")
            .bind(extension)
            .bind(limit.map(i64::from));
        Ok(self.config_write("set daily limit", statement).await? > 0)
    }

    /// Logs the agent in on `device`, in one transaction: another agent on
    /// that device is logged out first. The agent becomes `available`
    /// (`paused` if its paused flag is set; an agent in `wrap_up` stays in
    /// it). Returns `false`, changing nothing, when the agent does not exist
    /// or holds a call, or when the device's current agent holds a call.
    /// Runtime state: does not bump the config version.
    pub async fn login_agent(
        &self,
        extension: &str,
        device: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        const WHAT: &str = "log agent in";
        let mut tx = self.pool().begin().await.map_err(StoreError::query(WHAT))?;
        sqlx::query(LOGIN_FREE_DEVICE)
            .bind(extension)
            .bind(device)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::write(WHAT))?;
        let holders: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM agents WHERE device = $2 AND extension <> $1")
                .bind(extension)
                .bind(device)
                .fetch_one(&mut *tx)
                .await
                .map_err(StoreError::query(WHAT))?;
        let logged_in = holders == 0
            && match sqlx::query(LOGIN)
                .bind(extension)
                .bind(device)
                .bind(now_ms)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::write(WHAT))
            {
                Ok(res) => res.rows_affected() > 0,
                // A concurrent login took the device between our check and
                // our update (PostgreSQL, read committed): that one wins.
                Err(StoreError::Duplicate { .. }) => false,
                Err(e) => return Err(e),
            };
        if logged_in {
            tx.commit().await.map_err(StoreError::query(WHAT))?;
        } else {
            tx.rollback().await.map_err(StoreError::query(WHAT))?;
        }
        Ok(logged_in)
    }

    /// Logs the agent out: no device, state `logged_out` (the paused flag is
    /// kept for the next login). Allowed from `available`, `paused`,
    /// `wrap_up` and `logged_out` (a no-op that returns `true`); returns
    /// `false` when the agent does not exist or holds a call (`reserved`,
    /// `ringing`, `in_call`), which is left alone.
    pub async fn logout_agent(&self, extension: &str, now_ms: i64) -> Result<bool, StoreError> {
        let res = sqlx::query(LOGOUT)
            .bind(extension)
            .bind(now_ms)
            .execute(self.pool())
            .await
            .map_err(StoreError::write("log agent out"))?;
        Ok(res.rows_affected() > 0)
    }

    /// Sets or clears the paused flag. An `available` agent becomes
    /// `paused` and a `paused` one `available`; in other states only the
    /// flag changes (it applies when the agent would next become available).
    /// Returns `false` if there is no such agent.
    pub async fn set_paused(
        &self,
        extension: &str,
        paused: bool,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let res = sqlx::query(SET_PAUSED)
            .bind(extension)
            .bind(i64::from(paused))
            .bind(now_ms)
            .execute(self.pool())
            .await
            .map_err(StoreError::write("set agent paused"))?;
        Ok(res.rows_affected() > 0)
    }

    /// Moves the agent to `to` if, and only if, its state is one of `from`:
    /// one `UPDATE .. WHERE state IN (..)`, so of several concurrent callers
    /// exactly one wins. Returns whether the agent moved.
    ///
    /// - `call = Some((call_id, node))` records the call the agent is now
    ///   tied to; with `None` the recorded call is kept when `to` holds a
    ///   call (`reserved`, `ringing`, `in_call`) and cleared otherwise.
    /// - `to = Available` lands on `Paused` while the paused flag is set.
    /// - `to = LoggedOut` also frees the device; any other `to` needs the
    ///   agent to be logged in (a logged-out agent never moves elsewhere).
    /// - An empty `from` matches nothing.
    pub async fn transition_agent(
        &self,
        extension: &str,
        from: &[AgentState],
        to: AgentState,
        now_ms: i64,
        call: Option<(&str, &str)>,
    ) -> Result<bool, StoreError> {
        let moved = self
            .transition_agent_fenced(extension, from, to, now_ms, call, 0)
            .await?;
        Ok(moved == Transition::Moved)
    }

    /// [`Store::transition_agent`] under a lockd lease whose fencing token is `fence` (0: no
    /// lease, nothing checked or stored): refused
    /// ([`Transition::Fenced`]) when the agent last changed under a newer token (this holder's
    /// lease ran out and another node took the agent since), and the token is stored with the
    /// change. Tokens of one agent's lease only ever grow, so the check is one comparison in
    /// the same guarded `UPDATE`.
    pub async fn transition_agent_fenced(
        &self,
        extension: &str,
        from: &[AgentState],
        to: AgentState,
        now_ms: i64,
        call: Option<(&str, &str)>,
        fence: i64,
    ) -> Result<Transition, StoreError> {
        if from.is_empty() {
            return Ok(Transition::Refused);
        }
        let replace_call = call.is_some() || !to.holds_call();
        let sql = transition_sql(from.len());
        let mut statement = sqlx::query(&sql)
            .bind(extension)
            .bind(to.as_str())
            .bind(now_ms)
            .bind(i64::from(replace_call))
            .bind(call.map(|(call_id, _)| call_id))
            .bind(call.map(|(_, node)| node))
            .bind(fence);
        for state in from {
            statement = statement.bind(state.as_str());
        }
        let res = statement
            .execute(self.pool())
            .await
            .map_err(StoreError::write("transition agent"))?;
        if res.rows_affected() > 0 {
            return Ok(Transition::Moved);
        }
        self.why_not_moved(extension, fence).await
    }

    /// After a guarded write changed nothing: whether a newer token stood in the way.
    async fn why_not_moved(&self, extension: &str, fence: i64) -> Result<Transition, StoreError> {
        if fence == 0 {
            return Ok(Transition::Refused);
        }
        let stored: Option<i64> =
            sqlx::query_scalar("SELECT fence FROM agents WHERE extension = $1")
                .bind(extension)
                .fetch_optional(self.pool())
                .await
                .map_err(StoreError::query("read agent fence"))?;
        Ok(match stored {
            Some(stored) if stored > fence => Transition::Fenced { stored },
            _ => Transition::Refused,
        })
    }

    /// Ends the agent's call: `in_call` → `wrap_up`, `last_call_end_ms =
    /// now_ms`, one more call counted for day `today` (`YYYY-MM-DD`; a new
    /// day starts again from 1), call cleared. Returns `false`, changing
    /// nothing, unless the agent was `in_call`.
    ///
    /// `fence` is the token of the lease the call was taken under (0 without one), checked
    /// and stored as by [`Store::transition_agent_fenced`].
    pub async fn finish_agent_call(
        &self,
        extension: &str,
        now_ms: i64,
        today: &str,
        fence: i64,
    ) -> Result<Transition, StoreError> {
        let res = sqlx::query(FINISH_CALL)
            .bind(extension)
            .bind(today)
            .bind(now_ms)
            .bind(fence)
            .execute(self.pool())
            .await
            .map_err(StoreError::write("finish agent call"))?;
        if res.rows_affected() > 0 {
            return Ok(Transition::Moved);
        }
        self.why_not_moved(extension, fence).await
    }

    /// Counts a sale toward the agent's daily limit: `calls_today` + 1 for
    /// day `today`, with the same new-day rule as
    /// [`Store::finish_agent_call`]; state is untouched. Returns `false` if
    /// there is no such agent.
    pub async fn record_sale(&self, extension: &str, today: &str) -> Result<bool, StoreError> {
        let res = sqlx::query(RECORD_SALE)
            .bind(extension)
            .bind(today)
            .execute(self.pool())
            .await
            .map_err(StoreError::write("record sale"))?;
        Ok(res.rows_affected() > 0)
    }

    /// Frees the agents tied to calls of `node` (`reserved`, `ringing`,
    /// `in_call` with `current_node = node`): they become `available` (or
    /// `paused`), call cleared. For a node starting again, whose calls died
    /// with its previous run; returns how many agents were freed.
    pub async fn release_node_agents(&self, node: &str, now_ms: i64) -> Result<u64, StoreError> {
        let res = sqlx::query(RELEASE_NODE_AGENTS)
            .bind(node)
            .bind(now_ms)
            .execute(self.pool())
            .await
            .map_err(StoreError::write("release node agents"))?;
        Ok(res.rows_affected())
    }
}

fn agent_from_row(row: &AnyRow) -> Result<Agent, sqlx::Error> {
    Ok(Agent {
        extension: row.try_get("extension")?,
        name: row.try_get("name")?,
        pin_hash: row.try_get("pin_hash")?,
        device: row.try_get("device")?,
        state: enum_col(row, "state")?,
        state_since_ms: row.try_get("state_since_ms")?,
        last_call_end_ms: row.try_get("last_call_end_ms")?,
        calls_today: row.try_get("calls_today")?,
        calls_day: row.try_get("calls_day")?,
        daily_limit: row.try_get("daily_limit")?,
        paused: bool_col(row, "paused")?,
        current_call: row.try_get("current_call")?,
        current_node: row.try_get("current_node")?,
    })
}

#[cfg(test)]
mod tests;
