//! Agent selection for the cluster queue (sans-IO): from one snapshot of the waiting calls, the
//! free agents, the queue members and the queue rules, which agents are offered to which call.
//!
//! Every node runs [`assign`] on the same SQL rows and gets the same answer (for the same rng
//! seed, or for strategies that use no randomness), then acts only on its own calls.
//!
//! Rules, in order:
//! 1. Calls are served one after the other in the global order (priority, enqueue time, entry
//!    id), across all queues ([`serving_order`]); each takes agents from what earlier calls left.
//! 2. An agent is eligible for a call when it is free and a member of the call's queue.
//! 3. VIP call: when a VIP-allowed member of the queue is logged in (free or busy), only free
//!    VIP-allowed members are eligible, and with none free the call waits; when no VIP-allowed
//!    member is logged in, the call is served like any other.
//! 4. Tiers: an agent's effective tier is its member tier, or [`LAST_TIER`] once it has reached
//!    its daily limit; only the best effective tier with an eligible agent is offered.
//! 5. The queue's [`Strategy`] picks within that tier; ties go to the lower extension.
//!
//! A call with no eligible agent waits and later calls go on; they cannot take an agent it
//! could have had, because it would have taken that agent first.

mod strategy;

use std::collections::{BTreeMap, HashMap, HashSet};

use rand::Rng;

pub use strategy::Strategy;

/// The effective tier of an agent that has reached its daily limit: rings only when nobody of a
/// better tier is free.
pub const LAST_TIER: u32 = u32::MAX;

/// A call waiting in the cluster queue (a `queue_entries` row in state `waiting`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// Entry id (`queue_entries.id`).
    pub id: i64,
    pub queue: String,
    /// The node holding the call.
    pub node: String,
    pub call_id: String,
    /// Caller number.
    pub caller: String,
    /// Lower is served first.
    pub priority: i64,
    /// The caller is on the queue's VIP list.
    pub vip: bool,
    pub enqueued_at_ms: i64,
}

/// An agent that may take a call now: logged in, available, not paused, not in wrap-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreeAgent {
    /// Agent extension.
    pub ext: String,
    /// End of the agent's last call (`None`: no call yet), for `leastrecent`.
    pub last_call_end_ms: Option<i64>,
    /// Calls handled today.
    pub calls_today: u32,
    /// Calls after which the agent drops to [`LAST_TIER`] for the rest of the day.
    pub daily_limit: Option<u32>,
}

/// An agent's membership of a queue (a `queue_members` row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub queue: String,
    /// Agent extension.
    pub agent: String,
    /// 0 is the best tier.
    pub tier: u32,
    /// May take calls from the queue's VIP callers.
    pub vip_allowed: bool,
    /// Weight for `wrandom` (0 counts as 1).
    pub weight: u32,
    /// Order for `linear` and `rrmemory` (then extension).
    pub position: u32,
}

/// A queue's selection rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRules {
    pub strategy: Strategy,
    /// The agent last offered a call of this queue, for `rrmemory`.
    pub rr_last: Option<String>,
}

/// Agents offered to one waiting call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The call's entry id.
    pub entry_id: i64,
    pub queue: String,
    /// The node holding the call: only that node acts on the assignment.
    pub node: String,
    pub call_id: String,
    /// One agent, or every agent of the tier for `ringall` (in member order).
    pub agents: Vec<String>,
    /// How long the call had waited at `now_ms` (0 if enqueued later): for the `offer` event
    /// and metrics, never for the choice itself.
    pub waited_ms: i64,
}

/// An eligible (member, free agent) pair with its effective tier.
#[derive(Debug, Clone, Copy)]
struct Candidate<'a> {
    member: &'a Member,
    agent: &'a FreeAgent,
    tier: u32,
}

impl<'a> Candidate<'a> {
    /// Member order: (position, extension).
    fn order_key(&self) -> (u32, &'a str) {
        (self.member.position, self.member.agent.as_str())
    }
}

/// The tier an agent rings in for a queue: its member tier, or [`LAST_TIER`] once
/// `calls_today` has reached the daily limit.
pub fn effective_tier(member: &Member, agent: &FreeAgent) -> u32 {
    match agent.daily_limit {
        Some(limit) if agent.calls_today >= limit => LAST_TIER,
        _ => member.tier,
    }
}

/// Waiting calls in serving order: priority, then enqueue time, then entry id.
pub fn serving_order(calls: &[Waiting]) -> Vec<&Waiting> {
    let mut order: Vec<&Waiting> = calls.iter().collect();
    order.sort_by_key(|c| order_key(c));
    order
}

fn order_key(call: &Waiting) -> (i64, i64, i64) {
    (call.priority, call.enqueued_at_ms, call.id)
}

/// Calls of the same queue ahead of entry `entry_id` in serving order (0: it is next), or
/// `None` if that entry is not among `calls`. For "you are next" / "N calls ahead" prompts.
pub fn position_in_queue(calls: &[Waiting], entry_id: i64) -> Option<usize> {
    let me = calls.iter().find(|c| c.id == entry_id)?;
    let key = order_key(me);
    Some(
        calls
            .iter()
            .filter(|c| c.queue == me.queue && order_key(c) < key)
            .count(),
    )
}

/// Offers free agents to waiting calls (see the module rules). `logged_in` holds the extensions
/// of every logged-in agent, busy or free (free agents count as logged in even if absent);
/// it decides whether a VIP call waits for a VIP-allowed member. Calls of a queue missing from
/// `queues` wait. Returns one [`Assignment`] per served call, in serving order.
pub fn assign(
    calls: &[Waiting],
    agents: &[FreeAgent],
    queues: &HashMap<String, QueueRules>,
    members: &[Member],
    logged_in: &HashSet<String>,
    now_ms: i64,
    rng: &mut impl Rng,
) -> Vec<Assignment> {
    let mut free: BTreeMap<&str, &FreeAgent> = BTreeMap::new();
    for agent in agents {
        free.entry(agent.ext.as_str()).or_insert(agent);
    }
    let online: HashSet<&str> = logged_in
        .iter()
        .map(String::as_str)
        .chain(free.keys().copied())
        .collect();
    let mut by_queue: HashMap<&str, Vec<&Member>> = HashMap::new();
    for m in members {
        by_queue.entry(m.queue.as_str()).or_default().push(m);
    }
    for list in by_queue.values_mut() {
        list.sort_by_key(|m| (m.position, m.agent.as_str()));
    }
    // rrmemory cursors moved this round: a second call of a queue goes on after the agent just
    // offered, as the next round would once the dispatcher has stored it as `rr_last`.
    let mut rr_moved: HashMap<&str, &str> = HashMap::new();
    let mut out = Vec::new();
    for call in serving_order(calls) {
        let Some(rules) = queues.get(&call.queue) else {
            continue;
        };
        let queue_members = by_queue
            .get(call.queue.as_str())
            .map_or(&[][..], Vec::as_slice);
        let candidates = best_tier(eligible(call, queue_members, &free, &online));
        if candidates.is_empty() {
            continue;
        }
        let last = rr_moved
            .get(call.queue.as_str())
            .copied()
            .or(rules.rr_last.as_deref());
        let rr_last = last.and_then(|ext| {
            queue_members
                .iter()
                .find(|m| m.agent == ext)
                .map(|m| (m.position, m.agent.as_str()))
        });
        let picked = strategy::pick(rules.strategy, &candidates, rr_last, rng);
        let Some(&final_pick) = picked.last() else {
            continue;
        };
        rr_moved.insert(call.queue.as_str(), final_pick);
        for ext in &picked {
            free.remove(ext);
        }
        out.push(Assignment {
            entry_id: call.id,
            queue: call.queue.clone(),
            node: call.node.clone(),
            call_id: call.call_id.clone(),
            agents: picked.into_iter().map(str::to_string).collect(),
            waited_ms: now_ms.saturating_sub(call.enqueued_at_ms).max(0),
        });
    }
    out
}

/// Free members of the call's queue that may take it, in member order, with their tiers.
fn eligible<'a>(
    call: &Waiting,
    queue_members: &[&'a Member],
    free: &BTreeMap<&str, &'a FreeAgent>,
    online: &HashSet<&str>,
) -> Vec<Candidate<'a>> {
    let vip_only = call.vip
        && queue_members
            .iter()
            .any(|m| m.vip_allowed && online.contains(m.agent.as_str()));
    queue_members
        .iter()
        .filter(|m| m.vip_allowed || !vip_only)
        .filter_map(|&member| {
            let agent = *free.get(member.agent.as_str())?;
            Some(Candidate {
                member,
                agent,
                tier: effective_tier(member, agent),
            })
        })
        .collect()
}

/// Keeps only the candidates of the best (lowest) effective tier.
fn best_tier(mut candidates: Vec<Candidate<'_>>) -> Vec<Candidate<'_>> {
    if let Some(best) = candidates.iter().map(|c| c.tier).min() {
        candidates.retain(|c| c.tier == best);
    }
    candidates
}

#[cfg(test)]
mod tests;
