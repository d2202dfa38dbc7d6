//! Queues and who answers them: queue rules, members with their tiers,
//! and the VIP callers of each queue. All of it is configuration (every
//! write bumps the config version) except `rr_last`, the round-robin
//! memory the dispatcher moves on every offer.

use callfleet_vocab::{Fallback, RecordingPolicy, Strategy};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::decode::{bool_col, enum_col};
use crate::{Store, StoreError};

/// One row of `queues`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queue {
    /// Primary key; also what callers dial.
    pub name: String,
    /// How the queue picks among its free members.
    pub strategy: Strategy,
    /// How long an offered agent rings.
    pub ring_timeout_ms: i64,
    /// How long a caller waits before the fallback.
    pub max_wait_ms: i64,
    /// Position announcements every this often; 0 = never.
    pub announce_interval_ms: i64,
    pub moh_class: String,
    /// Wrap-up time after each call.
    pub wrapup_ms: i64,
    /// Where a caller goes at maximum wait.
    pub fallback: Fallback,
    /// Mailbox or queue name for `voicemail` / `queue`.
    pub fallback_target: Option<String>,
    /// Runtime: the agent `rrmemory` offered last.
    pub rr_last: Option<String>,
    /// Which bridged calls are recorded.
    #[serde(default)]
    pub recording: RecordingPolicy,
    /// Whether callers hear "this call may be recorded" before they queue (only when the
    /// policy may record).
    #[serde(default)]
    pub recording_prompt: bool,
}

/// An agent's membership of a queue (`queue_members`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub queue: String,
    pub agent: String,
    /// 0 = best; a tier rings only when no better tier has a free agent.
    pub tier: i64,
    /// May take calls from the queue's VIP callers.
    pub vip_allowed: bool,
    /// Share of calls under `wrandom`.
    pub weight: i64,
    /// Order under `linear` and `rrmemory`.
    pub position: i64,
}

/// A caller number treated as VIP in one queue (`vip_callers`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VipCaller {
    pub number: String,
    pub queue: String,
}

/// A new queue starts with no round-robin memory; an update keeps it.
const UPSERT_QUEUE: &str = "\
INSERT INTO queues (name, strategy, ring_timeout_ms, max_wait_ms, announce_interval_ms, \
    moh_class, wrapup_ms, fallback, fallback_target, rr_last, recording, recording_prompt) \
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10, $11) \
ON CONFLICT (name) DO UPDATE SET \
    strategy = excluded.strategy, ring_timeout_ms = excluded.ring_timeout_ms, \
    max_wait_ms = excluded.max_wait_ms, announce_interval_ms = excluded.announce_interval_ms, \
    moh_class = excluded.moh_class, wrapup_ms = excluded.wrapup_ms, \
    fallback = excluded.fallback, fallback_target = excluded.fallback_target, \
    recording = excluded.recording, recording_prompt = excluded.recording_prompt";

macro_rules! queue_select {
    () => {
        "SELECT name, strategy, ring_timeout_ms, max_wait_ms, announce_interval_ms, moh_class, \
         wrapup_ms, fallback, fallback_target, rr_last, recording, recording_prompt FROM queues"
    };
}

const UPSERT_MEMBER: &str = "\
INSERT INTO queue_members (queue, agent, tier, vip_allowed, weight, position) \
VALUES ($1, $2, $3, $4, $5, $6) \
ON CONFLICT (queue, agent) DO UPDATE SET \
    tier = excluded.tier, vip_allowed = excluded.vip_allowed, weight = excluded.weight, \
    position = excluded.position";

macro_rules! member_select {
    () => {
        "SELECT queue, agent, tier, vip_allowed, weight, position FROM queue_members"
    };
}

impl Store {
    /// Creates a queue or replaces its rules (an existing queue keeps its
    /// `rr_last`; `queue.rr_last` is ignored). An unknown strategy or
    /// fallback, or a negative time, is [`StoreError::InvalidValue`]. Bumps
    /// the config version in the same transaction.
    pub async fn upsert_queue(&self, queue: &Queue) -> Result<(), StoreError> {
        let statement = sqlx::query(UPSERT_QUEUE)
            .bind(&queue.name)
            .bind(queue.strategy.as_str())
            .bind(queue.ring_timeout_ms)
            .bind(queue.max_wait_ms)
            .bind(queue.announce_interval_ms)
            .bind(&queue.moh_class)
            .bind(queue.wrapup_ms)
            .bind(queue.fallback.as_str())
            .bind(queue.fallback_target.as_deref())
            .bind(queue.recording.to_string())
            .bind(i64::from(queue.recording_prompt));
        self.config_write("upsert queue", statement).await?;
        Ok(())
    }

    /// The queue with this name, if any.
    pub async fn queue(&self, name: &str) -> Result<Option<Queue>, StoreError> {
        const WHAT: &str = "read queue";
        let row = sqlx::query(concat!(queue_select!(), " WHERE name = $1"))
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        row.as_ref()
            .map(queue_from_row)
            .transpose()
            .map_err(StoreError::query(WHAT))
    }

    /// All queues, by name.
    pub async fn queues(&self) -> Result<Vec<Queue>, StoreError> {
        const WHAT: &str = "list queues";
        let rows = sqlx::query(concat!(queue_select!(), " ORDER BY name"))
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        rows.iter()
            .map(queue_from_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::query(WHAT))
    }

    /// Deletes a queue with its members and VIP callers; returns `false` if
    /// there was none. Calls waiting in it are left to finish. Bumps the
    /// config version when a queue was deleted.
    pub async fn delete_queue(&self, name: &str) -> Result<bool, StoreError> {
        let statement = sqlx::query("DELETE FROM queues WHERE name = $1").bind(name);
        Ok(self.config_write("delete queue", statement).await? > 0)
    }

    /// Records the agent `rrmemory` offered last. Runtime state: does not
    /// bump the config version. Returns `false` if there is no such queue.
    pub async fn set_rr_last(&self, queue: &str, agent: &str) -> Result<bool, StoreError> {
        let res = sqlx::query("UPDATE queues SET rr_last = $2 WHERE name = $1")
            .bind(queue)
            .bind(agent)
            .execute(self.pool())
            .await
            .map_err(StoreError::write("set rr_last"))?;
        Ok(res.rows_affected() > 0)
    }

    /// Adds an agent to a queue or replaces its membership. An unknown
    /// queue or agent is [`StoreError::MissingReference`]. Bumps the config
    /// version in the same transaction.
    pub async fn upsert_member(&self, member: &Member) -> Result<(), StoreError> {
        let statement = sqlx::query(UPSERT_MEMBER)
            .bind(&member.queue)
            .bind(&member.agent)
            .bind(member.tier)
            .bind(i64::from(member.vip_allowed))
            .bind(member.weight)
            .bind(member.position);
        self.config_write("upsert queue member", statement).await?;
        Ok(())
    }

    /// Removes an agent from a queue; returns `false` if it was not a
    /// member. Bumps the config version when a row was deleted.
    pub async fn delete_member(&self, queue: &str, agent: &str) -> Result<bool, StoreError> {
        let statement = sqlx::query("DELETE FROM queue_members WHERE queue = $1 AND agent = $2")
            .bind(queue)
            .bind(agent);
        Ok(self.config_write("delete queue member", statement).await? > 0)
    }

    /// Members of one queue, or of all queues with `None`, by queue, then
    /// position, then agent.
    pub async fn members(&self, queue: Option<&str>) -> Result<Vec<Member>, StoreError> {
        const WHAT: &str = "list queue members";
        let rows = match queue {
            Some(queue) => {
                sqlx::query(concat!(
                    member_select!(),
                    " WHERE queue = $1 ORDER BY queue, position, agent"
                ))
                .bind(queue)
                .fetch_all(self.pool())
                .await
            }
            None => {
                sqlx::query(concat!(
                    member_select!(),
                    " ORDER BY queue, position, agent"
                ))
                .fetch_all(self.pool())
                .await
            }
        }
        .map_err(StoreError::query(WHAT))?;
        rows.iter()
            .map(member_from_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::query(WHAT))
    }

    /// Moves a member to another tier; returns `false` if the agent is not
    /// a member of the queue. Bumps the config version when it is.
    pub async fn set_tier(&self, queue: &str, agent: &str, tier: u32) -> Result<bool, StoreError> {
        let statement =
            sqlx::query("UPDATE queue_members SET tier = $3 WHERE queue = $1 AND agent = $2")
                .bind(queue)
                .bind(agent)
                .bind(i64::from(tier));
        Ok(self.config_write("set member tier", statement).await? > 0)
    }

    /// Makes `number` a VIP caller of `queue`; returns `false` if it was one
    /// already. An unknown queue is [`StoreError::MissingReference`]. Bumps
    /// the config version when a row was added.
    pub async fn add_vip(&self, number: &str, queue: &str) -> Result<bool, StoreError> {
        let statement = sqlx::query(
            "INSERT INTO vip_callers (number, queue) VALUES ($1, $2) \
             ON CONFLICT (number, queue) DO NOTHING",
        )
        .bind(number)
        .bind(queue);
        Ok(self.config_write("add vip caller", statement).await? > 0)
    }

    /// Removes a VIP caller; returns `false` if there was none. Bumps the
    /// config version when a row was deleted.
    pub async fn remove_vip(&self, number: &str, queue: &str) -> Result<bool, StoreError> {
        let statement = sqlx::query("DELETE FROM vip_callers WHERE number = $1 AND queue = $2")
            .bind(number)
            .bind(queue);
        Ok(self.config_write("remove vip caller", statement).await? > 0)
    }

    /// Whether `number` is a VIP caller of `queue`.
    pub async fn is_vip(&self, number: &str, queue: &str) -> Result<bool, StoreError> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM vip_callers WHERE number = $1 AND queue = $2")
                .bind(number)
                .bind(queue)
                .fetch_optional(self.pool())
                .await
                .map_err(StoreError::query("check vip caller"))?;
        Ok(found.is_some())
    }

    /// All VIP callers, by queue, then number.
    pub async fn vips(&self) -> Result<Vec<VipCaller>, StoreError> {
        const WHAT: &str = "list vip callers";
        let rows = sqlx::query("SELECT number, queue FROM vip_callers ORDER BY queue, number")
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        rows.iter()
            .map(|row| {
                Ok(VipCaller {
                    number: row.try_get("number")?,
                    queue: row.try_get("queue")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::query(WHAT))
    }
}

fn queue_from_row(row: &AnyRow) -> Result<Queue, sqlx::Error> {
    Ok(Queue {
        name: row.try_get("name")?,
        strategy: enum_col(row, "strategy")?,
        ring_timeout_ms: row.try_get("ring_timeout_ms")?,
        max_wait_ms: row.try_get("max_wait_ms")?,
        announce_interval_ms: row.try_get("announce_interval_ms")?,
        moh_class: row.try_get("moh_class")?,
        wrapup_ms: row.try_get("wrapup_ms")?,
        fallback: enum_col(row, "fallback")?,
        fallback_target: row.try_get("fallback_target")?,
        rr_last: row.try_get("rr_last")?,
        recording: enum_col(row, "recording")?,
        recording_prompt: bool_col(row, "recording_prompt")?,
    })
}

fn member_from_row(row: &AnyRow) -> Result<Member, sqlx::Error> {
    Ok(Member {
        queue: row.try_get("queue")?,
        agent: row.try_get("agent")?,
        tier: row.try_get("tier")?,
        vip_allowed: bool_col(row, "vip_allowed")?,
        weight: row.try_get("weight")?,
        position: row.try_get("position")?,
    })
}

#[cfg(test)]
mod tests;
