//! The CRM operations, written once: queue and agent status, hot-desk login and logout,
//! pause, tiers, daily limits, sales, VIP callers and the cluster's live calls.
//!
//! [`rpc`](crate::rpc) serves them over XML-RPC at `/RPC2` and [`routes`] over JSON under
//! `/api/v1`; both map a [`CrmError`] to the same stable numeric [`CrmError::code`]
//! (documented in `docs/api/xmlrpc.md`).
//!
//! Every operation reads and writes the shared database through [`Store`], so a change made
//! through any node is seen by every node: configuration writes (tiers, daily limits, VIP
//! callers) bump the config version in their own transaction, and runtime writes (login,
//! logout, pause, sales) change agent rows that every node's dispatcher reads fresh each round.
//!
//! # JSON routes and the access level each needs
//!
//! | route | level | answer |
//! |-------|-------|--------|
//! | `GET /api/v1/queues` | read | array of [`QueueInfo`] |
//! | `GET /api/v1/queues/{name}/stats` | read | [`QueueStats`] |
//! | `GET /api/v1/agents/{ext}` | read | [`AgentStatus`] |
//! | `POST /api/v1/agents/{ext}/pause` `{"paused": bool}` | operate | [`AgentStatus`] |
//! | `PUT /api/v1/agents/{ext}/tiers/{queue}` `{"tier": n}` | tune | [`AgentStatus`] |
//! | `PUT /api/v1/agents/{ext}/daily-limit` `{"limit": n \| null}` | tune | [`AgentStatus`] |
//! | `POST /api/v1/agents/{ext}/sales` | tune | `{"calls_today": n}` |
//! | `PUT /api/v1/vip/{queue}/{number}` | tune | `{"added": bool}` |
//! | `DELETE /api/v1/vip/{queue}/{number}` | tune | `{"removed": bool}` |
//! | `GET /api/v1/calls/live` | read | array of [`CallInfo`], cluster-wide |
//!
//! Hot-desk login and logout stay at `POST /api/v1/agents/{ext}/login` and `/logout`
//! (see [`api`](crate::api)). Errors answer `{"error": "...", "code": n}` with the status of
//! [`CrmError::status`].

use std::collections::{HashMap, HashSet};

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use callfleet_store::{utc_day, Agent, AgentState, EntryState, Store, StoreError, Strategy};
use serde::{Deserialize, Serialize};

use callfleet_vocab::{now_ms, uri_user};

use crate::api::AppState;
use crate::names::{self, Kind};

/// Longest name of anything accepted, in bytes (extensions and devices: 32, see
/// [`crate::names`]).
pub const MAX_NAME_LEN: usize = names::MAX_NAME;

/// Highest tier accepted (0 is the best tier).
pub const MAX_TIER: i64 = 1000;

/// Highest daily limit accepted.
pub const MAX_DAILY_LIMIT: i64 = 1_000_000;

/// Why a CRM operation failed. Each kind has a stable numeric [`code`](CrmError::code), the
/// XML-RPC fault code and the `code` of a JSON error body.
#[derive(Debug, thiserror::Error)]
pub enum CrmError {
    /// A parameter is missing, of the wrong type or out of range (code 1).
    #[error("bad parameter `{param}`: {reason}")]
    BadParameter {
        /// The parameter's name, as documented.
        param: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No agent has this extension (code 2).
    #[error("unknown agent {ext:?}")]
    UnknownAgent {
        /// The extension asked for.
        ext: String,
    },
    /// No queue has this name (code 3).
    #[error("unknown queue {queue:?}")]
    UnknownQueue {
        /// The queue asked for.
        queue: String,
    },
    /// No phone (device) has this extension (code 4).
    #[error("unknown device {device:?}")]
    UnknownDevice {
        /// The device asked for.
        device: String,
    },
    /// The agent, or the phone's current agent, is tied to a call (code 5).
    #[error("conflict: {reason}")]
    Conflict {
        /// Shown to the client.
        reason: &'static str,
    },
    /// The shared database cannot be reached; worth retrying (code 6).
    #[error("database unavailable")]
    Unavailable {
        /// Why.
        #[source]
        source: StoreError,
    },
    /// The agent is not a member of the queue (code 7).
    #[error("agent {ext:?} is not a member of queue {queue:?}")]
    NotMember {
        /// The agent.
        ext: String,
        /// The queue.
        queue: String,
    },
    /// A database operation failed for a reason retrying will not fix (code 8).
    #[error("internal error")]
    Internal {
        /// Why.
        #[source]
        source: StoreError,
    },
}

impl CrmError {
    /// The stable numeric code of this kind of failure.
    pub fn code(&self) -> i32 {
        match self {
            Self::BadParameter { .. } => 1,
            Self::UnknownAgent { .. } => 2,
            Self::UnknownQueue { .. } => 3,
            Self::UnknownDevice { .. } => 4,
            Self::Conflict { .. } => 5,
            Self::Unavailable { .. } => 6,
            Self::NotMember { .. } => 7,
            Self::Internal { .. } => 8,
        }
    }

    /// The HTTP status a JSON request failing this way is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadParameter { .. } => StatusCode::BAD_REQUEST,
            Self::UnknownAgent { .. }
            | Self::UnknownQueue { .. }
            | Self::UnknownDevice { .. }
            | Self::NotMember { .. } => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A parameter failed validation.
    pub fn bad(param: &'static str, reason: &'static str) -> Self {
        Self::BadParameter { param, reason }
    }

    /// Classifies a store failure: a statement or connection that failed is
    /// [`CrmError::Unavailable`] (the database is down, busy or closed); a write the schema
    /// refused, which validation should have caught, is [`CrmError::Internal`].
    pub(crate) fn store(source: StoreError) -> Self {
        match source {
            StoreError::Query { .. } | StoreError::Connect { .. } => Self::Unavailable { source },
            _ if source.is_transient() => Self::Unavailable { source },
            _ => Self::Internal { source },
        }
    }

    /// Logs the cause where it matters (the client sees only the message).
    pub(crate) fn log(&self, via: &'static str) {
        match self {
            Self::Unavailable { .. } | Self::Internal { .. } => tracing::error!(
                error = self as &(dyn std::error::Error + 'static),
                via,
                "CRM request failed"
            ),
            _ => tracing::debug!(error = %self, via, "CRM request refused"),
        }
    }
}

impl IntoResponse for CrmError {
    fn into_response(self) -> Response {
        self.log("json");
        let body = serde_json::json!({ "error": self.to_string(), "code": self.code() });
        (self.status(), Json(body)).into_response()
    }
}

/// A queue as `queue.list()` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueInfo {
    /// What callers dial.
    pub name: String,
    /// The agent selection strategy.
    pub strategy: Strategy,
    /// How many agents are members.
    pub members: i64,
    /// Which calls are recorded: `never`, `always`, or a percentage (`"0"` to `"100"`).
    pub recording: callfleet_store::RecordingPolicy,
}

/// `queue.stats(queue)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueStats {
    /// The queue.
    pub queue: String,
    /// Callers waiting for an agent (agents may be ringing for them), on any node.
    pub waiting: i64,
    /// Seconds the longest-waiting of them has waited; 0 with none.
    pub longest_wait_s: i64,
    /// Logged-in members free to take a call.
    pub agents_available: i64,
    /// Logged-in members reserved, ringing, on a call or in wrap-up.
    pub agents_busy: i64,
    /// Logged-in members with their paused flag set.
    pub agents_paused: i64,
    /// At least one member is logged in and not paused.
    pub serving: bool,
}

/// One membership in [`AgentStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    /// The queue.
    pub queue: String,
    /// 0 is the best tier.
    pub tier: i64,
    /// May take the queue's VIP callers.
    pub vip_allowed: bool,
}

/// `agent.status(ext)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentStatus {
    /// Agent number.
    pub extension: String,
    /// Display name.
    pub name: String,
    /// `logged_out`, `available`, `reserved`, `ringing`, `in_call`, `wrap_up` or `paused`.
    pub state: String,
    /// The phone the agent is logged in on.
    pub device: Option<String>,
    /// The paused flag (kept across logout).
    pub paused: bool,
    /// Calls handled plus sales recorded today (UTC).
    pub calls_today: i64,
    /// After this many the agent drops to the queue's last tier; absent = no limit.
    pub daily_limit: Option<i64>,
    /// Seconds in the current state.
    pub state_for_s: i64,
    /// Node holding the agent's current call.
    pub current_node: Option<String>,
    /// Queues the agent answers, by queue name.
    pub queues: Vec<Membership>,
}

/// One live call in `call.list()`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallInfo {
    /// Node holding the call.
    pub node: String,
    /// SIP Call-ID.
    pub call_id: String,
    /// The caller's number.
    pub caller: String,
    /// The number dialled.
    pub dialled: String,
    /// The queue the call waits or waited in.
    pub queue: Option<String>,
    /// The agent on (or ringing for) the call.
    pub agent: Option<String>,
    /// The node answered the call.
    pub answered: bool,
    /// Seconds since the call arrived.
    pub duration_s: i64,
}

/// Checks the name in parameter `param` by the rule of its `kind`: the one rule the admin
/// forms apply too ([`crate::names`]).
pub fn check_name(param: &'static str, kind: Kind, value: &str) -> Result<(), CrmError> {
    names::check(kind, value).map_err(|e| CrmError::bad(param, e.reason()))
}

/// Checks a tier: 0 (best) to [`MAX_TIER`].
pub fn check_tier(tier: i64) -> Result<u32, CrmError> {
    if !(0..=MAX_TIER).contains(&tier) {
        return Err(CrmError::bad("tier", "must be between 0 and 1000"));
    }
    u32::try_from(tier).map_err(|_| CrmError::bad("tier", "must be between 0 and 1000"))
}

/// Checks a daily limit: absent (no limit) or 0 to [`MAX_DAILY_LIMIT`].
pub fn check_daily_limit(limit: Option<i64>) -> Result<Option<u32>, CrmError> {
    const REASON: &str = "must be between 0 and 1000000, or nil for no limit";
    limit
        .map(|n| {
            if (0..=MAX_DAILY_LIMIT).contains(&n) {
                u32::try_from(n).map_err(|_| CrmError::bad("limit", REASON))
            } else {
                Err(CrmError::bad("limit", REASON))
            }
        })
        .transpose()
}

/// `queue.list()`: every queue, by name.
pub async fn queue_list(store: &Store) -> Result<Vec<QueueInfo>, CrmError> {
    let queues = store.queues().await.map_err(CrmError::store)?;
    let members = store.members(None).await.map_err(CrmError::store)?;
    let mut counts: HashMap<&str, i64> = HashMap::new();
    for m in &members {
        *counts.entry(m.queue.as_str()).or_default() += 1;
    }
    Ok(queues
        .iter()
        .map(|q| QueueInfo {
            name: q.name.clone(),
            strategy: q.strategy,
            members: counts.get(q.name.as_str()).copied().unwrap_or(0),
            recording: q.recording,
        })
        .collect())
}

/// `queue.stats(queue)`: who waits and who can answer, cluster-wide.
pub async fn queue_stats(store: &Store, queue: &str) -> Result<QueueStats, CrmError> {
    check_name("queue", Kind::Queue, queue)?;
    require_queue(store, queue).await?;
    let now = now_ms();
    let entries = store.open_entries().await.map_err(CrmError::store)?;
    let members = store.members(Some(queue)).await.map_err(CrmError::store)?;
    let agents = store.agents().await.map_err(CrmError::store)?;
    let waiting: Vec<i64> = entries
        .iter()
        .filter(|e| e.queue == queue)
        .map(|e| e.enqueued_at_ms)
        .collect();
    let longest_wait_s = waiting
        .iter()
        .min()
        .map_or(0, |since| (now - since).max(0) / 1000);
    let members: HashSet<&str> = members.iter().map(|m| m.agent.as_str()).collect();
    let mut stats = QueueStats {
        queue: queue.to_owned(),
        waiting: i64::try_from(waiting.len()).unwrap_or(i64::MAX),
        longest_wait_s,
        agents_available: 0,
        agents_busy: 0,
        agents_paused: 0,
        serving: false,
    };
    for agent in agents
        .iter()
        .filter(|a| a.device.is_some() && members.contains(a.extension.as_str()))
    {
        if agent.paused || agent.state == AgentState::Paused {
            stats.agents_paused += 1;
        } else {
            stats.serving = true;
        }
        match agent.state {
            AgentState::Available if !agent.paused => stats.agents_available += 1,
            AgentState::Reserved
            | AgentState::Ringing
            | AgentState::InCall
            | AgentState::WrapUp => stats.agents_busy += 1,
            AgentState::Available | AgentState::Paused | AgentState::LoggedOut => {}
        }
    }
    Ok(stats)
}

/// `agent.status(ext)`.
pub async fn agent_status(store: &Store, ext: &str) -> Result<AgentStatus, CrmError> {
    check_name("ext", Kind::Extension, ext)?;
    let agent = require_agent(store, ext).await?;
    let members = store.members(None).await.map_err(CrmError::store)?;
    let now = now_ms();
    let today = utc_day(now);
    Ok(AgentStatus {
        calls_today: if agent.calls_day.as_deref() == Some(today.as_str()) {
            agent.calls_today
        } else {
            0
        },
        state: agent.state.as_str().to_owned(),
        state_for_s: (now - agent.state_since_ms).max(0) / 1000,
        queues: members
            .into_iter()
            .filter(|m| m.agent == agent.extension)
            .map(|m| Membership {
                queue: m.queue,
                tier: m.tier,
                vip_allowed: m.vip_allowed,
            })
            .collect(),
        extension: agent.extension,
        name: agent.name,
        device: agent.device,
        paused: agent.paused,
        daily_limit: agent.daily_limit,
        current_node: agent.current_node,
    })
}

/// `agent.login(ext, device)`: hot-desk login; another agent on that phone is logged out.
pub async fn agent_login(store: &Store, ext: &str, device: &str) -> Result<(), CrmError> {
    check_name("ext", Kind::Extension, ext)?;
    check_name("device", Kind::Extension, device)?;
    require_agent(store, ext).await?;
    if store
        .device(device)
        .await
        .map_err(CrmError::store)?
        .is_none()
    {
        return Err(CrmError::UnknownDevice {
            device: device.to_owned(),
        });
    }
    if !store
        .login_agent(ext, device, now_ms())
        .await
        .map_err(CrmError::store)?
    {
        return Err(CrmError::Conflict {
            reason: "the agent or the phone's current agent is in a call",
        });
    }
    tracing::info!(agent = %ext, device = %device, "agent logged in through the CRM API");
    Ok(())
}

/// `agent.logout(ext)`: refused while the agent is in a call.
pub async fn agent_logout(store: &Store, ext: &str) -> Result<(), CrmError> {
    check_name("ext", Kind::Extension, ext)?;
    require_agent(store, ext).await?;
    if !store
        .logout_agent(ext, now_ms())
        .await
        .map_err(CrmError::store)?
    {
        return Err(CrmError::Conflict {
            reason: "the agent is in a call",
        });
    }
    tracing::info!(agent = %ext, "agent logged out through the CRM API");
    Ok(())
}

/// `agent.pause(ext, paused)`: sets or clears the paused flag (an agent on a call finishes it
/// first; the flag applies when it would next become available).
pub async fn agent_pause(store: &Store, ext: &str, paused: bool) -> Result<(), CrmError> {
    check_name("ext", Kind::Extension, ext)?;
    if !store
        .set_paused(ext, paused, now_ms())
        .await
        .map_err(CrmError::store)?
    {
        return Err(CrmError::UnknownAgent {
            ext: ext.to_owned(),
        });
    }
    tracing::info!(agent = %ext, paused, "agent pause set through the CRM API");
    Ok(())
}

/// `agent.setTier(ext, queue, tier)`: moves a member to another tier (0 is the best).
pub async fn agent_set_tier(
    store: &Store,
    ext: &str,
    queue: &str,
    tier: i64,
) -> Result<(), CrmError> {
    check_name("ext", Kind::Extension, ext)?;
    check_name("queue", Kind::Queue, queue)?;
    let tier = check_tier(tier)?;
    if store
        .set_tier(queue, ext, tier)
        .await
        .map_err(CrmError::store)?
    {
        tracing::info!(agent = %ext, queue = %queue, tier, "tier set through the CRM API");
        return Ok(());
    }
    require_agent(store, ext).await?;
    require_queue(store, queue).await?;
    Err(CrmError::NotMember {
        ext: ext.to_owned(),
        queue: queue.to_owned(),
    })
}

/// `agent.setDailyLimit(ext, n)`: sets (`Some`) or clears (`None`) the daily limit.
pub async fn agent_set_daily_limit(
    store: &Store,
    ext: &str,
    limit: Option<i64>,
) -> Result<(), CrmError> {
    check_name("ext", Kind::Extension, ext)?;
    let limit = check_daily_limit(limit)?;
    if !store
        .set_daily_limit(ext, limit)
        .await
        .map_err(CrmError::store)?
    {
        return Err(CrmError::UnknownAgent {
            ext: ext.to_owned(),
        });
    }
    tracing::info!(agent = %ext, ?limit, "daily limit set through the CRM API");
    Ok(())
}

/// `agent.recordSale(ext)`: counts a sale toward the daily limit; returns today's count.
pub async fn agent_record_sale(store: &Store, ext: &str) -> Result<i64, CrmError> {
    check_name("ext", Kind::Extension, ext)?;
    let today = utc_day(now_ms());
    if !store
        .record_sale(ext, &today)
        .await
        .map_err(CrmError::store)?
    {
        return Err(CrmError::UnknownAgent {
            ext: ext.to_owned(),
        });
    }
    let agent = require_agent(store, ext).await?;
    let count = if agent.calls_day.as_deref() == Some(today.as_str()) {
        agent.calls_today
    } else {
        0
    };
    tracing::info!(agent = %ext, calls_today = count, "sale recorded through the CRM API");
    Ok(count)
}

/// `vip.add(number, queue)`: returns `false` if the number was a VIP caller of the queue
/// already.
pub async fn vip_add(store: &Store, number: &str, queue: &str) -> Result<bool, CrmError> {
    check_name("number", Kind::Number, number)?;
    check_name("queue", Kind::Queue, queue)?;
    require_queue(store, queue).await?;
    let added = match store.add_vip(number, queue).await {
        Ok(added) => added,
        // The queue was deleted between our check and the insert.
        Err(StoreError::MissingReference { .. }) => {
            return Err(CrmError::UnknownQueue {
                queue: queue.to_owned(),
            })
        }
        Err(e) => return Err(CrmError::store(e)),
    };
    tracing::info!(number = %number, queue = %queue, added, "VIP caller added through the CRM API");
    Ok(added)
}

/// `vip.remove(number, queue)`: returns `false` if the number was not a VIP caller of it.
pub async fn vip_remove(store: &Store, number: &str, queue: &str) -> Result<bool, CrmError> {
    check_name("number", Kind::Number, number)?;
    check_name("queue", Kind::Queue, queue)?;
    require_queue(store, queue).await?;
    let removed = store
        .remove_vip(number, queue)
        .await
        .map_err(CrmError::store)?;
    tracing::info!(number = %number, queue = %queue, removed, "VIP caller removed through the CRM API");
    Ok(removed)
}

/// `call.list()`: live calls on every node, oldest first, with their queue and agent.
pub async fn call_list(store: &Store) -> Result<Vec<CallInfo>, CrmError> {
    let calls = store.live_calls(None).await.map_err(CrmError::store)?;
    let entries = store.entries().await.map_err(CrmError::store)?;
    let agents = store.agents().await.map_err(CrmError::store)?;
    let now = now_ms();
    let entries: HashMap<(&str, &str), _> = entries
        .iter()
        .map(|e| ((e.node.as_str(), e.call_id.as_str()), e))
        .collect();
    let agents: HashMap<(&str, &str), &Agent> = agents
        .iter()
        .filter_map(|a| Some(((a.current_node.as_deref()?, a.current_call.as_deref()?), a)))
        .collect();
    Ok(calls
        .iter()
        .map(|c| {
            let key = (c.node.as_str(), c.call_id.as_str());
            let entry = entries.get(&key);
            let agent = agents.get(&key).map(|a| a.extension.clone()).or_else(|| {
                entry
                    .filter(|e| e.state == EntryState::Bridged)
                    .and_then(|e| e.offered_to.clone())
            });
            CallInfo {
                node: c.node.clone(),
                call_id: c.call_id.clone(),
                caller: entry
                    .map_or_else(|| uri_user(&c.from_uri).to_owned(), |e| e.caller.clone()),
                dialled: uri_user(&c.to_uri).to_owned(),
                queue: entry.map(|e| e.queue.clone()),
                agent,
                answered: c.answered_at_ms.is_some(),
                duration_s: (now - c.started_at_ms).max(0) / 1000,
            }
        })
        .collect())
}

async fn require_agent(store: &Store, ext: &str) -> Result<Agent, CrmError> {
    store
        .agent(ext)
        .await
        .map_err(CrmError::store)?
        .ok_or_else(|| CrmError::UnknownAgent {
            ext: ext.to_owned(),
        })
}

async fn require_queue(store: &Store, queue: &str) -> Result<(), CrmError> {
    match store.queue(queue).await.map_err(CrmError::store)? {
        Some(_) => Ok(()),
        None => Err(CrmError::UnknownQueue {
            queue: queue.to_owned(),
        }),
    }
}

/// Every JSON route of the CRM operations: [`read_routes`], [`operate_routes`] and
/// [`tune_routes`] together.
pub fn routes() -> Router<AppState> {
    read_routes().merge(operate_routes()).merge(tune_routes())
}

/// Routes of level **read**: queues, queue stats, an agent's status, live calls.
pub fn read_routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/queues", get(json_queue_list))
        .route("/api/v1/queues/{name}/stats", get(json_queue_stats))
        .route("/api/v1/agents/{ext}", get(json_agent_status))
        .route("/api/v1/calls/live", get(json_call_list))
}

/// Routes of level **operate** (like hot-desk login and logout): pause.
pub fn operate_routes() -> Router<AppState> {
    Router::new().route("/api/v1/agents/{ext}/pause", post(json_pause))
}

/// Routes of level **tune**: tiers, daily limits, sales, VIP callers.
pub fn tune_routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/agents/{ext}/tiers/{queue}", put(json_set_tier))
        .route(
            "/api/v1/agents/{ext}/daily-limit",
            put(json_set_daily_limit),
        )
        .route("/api/v1/agents/{ext}/sales", post(json_record_sale))
        .route(
            "/api/v1/vip/{queue}/{number}",
            put(json_vip_add).delete(json_vip_remove),
        )
}

/// Body of `POST /api/v1/agents/{ext}/pause`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseBody {
    /// Set (`true`) or clear (`false`) the paused flag.
    pub paused: bool,
}

/// Body of `PUT /api/v1/agents/{ext}/tiers/{queue}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierBody {
    /// 0 (best) to 1000.
    pub tier: i64,
}

/// Body of `PUT /api/v1/agents/{ext}/daily-limit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DailyLimitBody {
    /// 0 to 1000000, or `null` for no limit; the field is required.
    pub limit: Option<i64>,
}

/// A JSON body that does not parse is a bad `body` parameter (code 1), like a bad XML-RPC
/// parameter.
fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, CrmError> {
    body.map(|Json(b)| b).map_err(|rejection| {
        tracing::debug!(%rejection, "CRM JSON body refused");
        CrmError::bad("body", "not the JSON object this route takes")
    })
}

async fn json_queue_list(State(state): State<AppState>) -> Result<Json<Vec<QueueInfo>>, CrmError> {
    Ok(Json(queue_list(&state.store).await?))
}

async fn json_queue_stats(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<QueueStats>, CrmError> {
    Ok(Json(queue_stats(&state.store, &name).await?))
}

async fn json_agent_status(
    State(state): State<AppState>,
    Path(ext): Path<String>,
) -> Result<Json<AgentStatus>, CrmError> {
    Ok(Json(agent_status(&state.store, &ext).await?))
}

async fn json_pause(
    State(state): State<AppState>,
    Path(ext): Path<String>,
    payload: Result<Json<PauseBody>, JsonRejection>,
) -> Result<Json<AgentStatus>, CrmError> {
    let payload = body(payload)?;
    agent_pause(&state.store, &ext, payload.paused).await?;
    Ok(Json(agent_status(&state.store, &ext).await?))
}

async fn json_set_tier(
    State(state): State<AppState>,
    Path((ext, queue)): Path<(String, String)>,
    payload: Result<Json<TierBody>, JsonRejection>,
) -> Result<Json<AgentStatus>, CrmError> {
    let payload = body(payload)?;
    agent_set_tier(&state.store, &ext, &queue, payload.tier).await?;
    Ok(Json(agent_status(&state.store, &ext).await?))
}

async fn json_set_daily_limit(
    State(state): State<AppState>,
    Path(ext): Path<String>,
    payload: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<AgentStatus>, CrmError> {
    // `{"limit": null}` clears the limit, so the field must be present, not merely nullable.
    let value = body(payload)?;
    if value.get("limit").is_none() {
        return Err(CrmError::bad("limit", "missing; send null for no limit"));
    }
    let payload: DailyLimitBody = serde_json::from_value(value)
        .map_err(|_| CrmError::bad("limit", "must be an integer or null"))?;
    agent_set_daily_limit(&state.store, &ext, payload.limit).await?;
    Ok(Json(agent_status(&state.store, &ext).await?))
}

async fn json_record_sale(
    State(state): State<AppState>,
    Path(ext): Path<String>,
) -> Result<Json<serde_json::Value>, CrmError> {
    let count = agent_record_sale(&state.store, &ext).await?;
    Ok(Json(serde_json::json!({ "calls_today": count })))
}

async fn json_vip_add(
    State(state): State<AppState>,
    Path((queue, number)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, CrmError> {
    let added = vip_add(&state.store, &number, &queue).await?;
    Ok(Json(serde_json::json!({ "added": added })))
}

async fn json_vip_remove(
    State(state): State<AppState>,
    Path((queue, number)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, CrmError> {
    let removed = vip_remove(&state.store, &number, &queue).await?;
    Ok(Json(serde_json::json!({ "removed": removed })))
}

async fn json_call_list(State(state): State<AppState>) -> Result<Json<Vec<CallInfo>>, CrmError> {
    Ok(Json(call_list(&state.store).await?))
}

#[cfg(test)]
pub(crate) mod tests;
