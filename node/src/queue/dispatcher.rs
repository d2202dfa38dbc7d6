//! The dispatcher: a few times a second it reads the cluster queue and the agents from SQL,
//! computes the assignment of free agents to waiting calls (`acd::assign`: every node gets the
//! same answer from the same rows), and hands each of this node's calls its agents. Calls of
//! other nodes are left to their nodes, so a free agent always goes to the call that is first
//! cluster-wide, whichever node holds it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use callfleet_store::AgentState;
use rand::SeedableRng;
use tracing::debug;

use callfleet_lb::Balancer;
use callfleet_lockd::LockClient;
use callfleet_store::Store;
use tokio_util::sync::CancellationToken;

use super::{Local, Snapshot};
use crate::acd::{self, FreeAgent, QueueRules, Waiting};
use crate::now_ms;
use crate::realtime::Realtime;

/// How often the dispatcher looks.
pub const INTERVAL: Duration = Duration::from_millis(250);

/// What the dispatcher uses of the node, and nothing more: built by the node once its store,
/// balancer, configuration cache, lock client and local queue exist.
#[derive(Clone)]
pub struct Dispatcher {
    /// This node's name (`node.name`).
    pub me: String,
    pub store: Store,
    /// The cluster view: which nodes are alive.
    pub balancer: Balancer,
    /// The queues' rules, for the longest wrap-up.
    pub realtime: Arc<Realtime>,
    /// Agent leases, taken before freeing a stranded agent.
    pub locks: LockClient,
    /// This node's waiting calls, handed their agents.
    pub local: Arc<Local>,
    /// Stops the loop.
    pub stopping: CancellationToken,
}

pub async fn run(d: Dispatcher) {
    if let Err(e) = release_own_wrap_ups(&d).await {
        debug!(error = %e, "cannot free agents left in wrap-up by an earlier run");
    }
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rounds: u64 = 0;
    loop {
        tokio::select! {
            _ = d.stopping.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = round(&d).await {
            debug!(error = %e, "dispatcher round failed");
        }
        rounds += 1;
        if rounds.is_multiple_of(RECOVER_EVERY) {
            if let Err(e) = recover_stranded(&d).await {
                debug!(error = %e, "stranded-agent check failed");
            }
        }
    }
}

/// A node whose heartbeat is older than twice the TTL (or that is not in the view at all): its
/// calls are gone. Twice the TTL, so a short database hiccup at that node costs it nothing.
fn long_dead(view: &callfleet_lb::ClusterView, name: &str) -> bool {
    match view.get(name) {
        Some(n) => n.heartbeat_age_ms(view.built_at_ms()) > 2 * view.ttl().as_millis() as i64,
        None => true,
    }
}

/// A seed that depends only on the rows the assignment is computed from.
fn seed(calls: &[Waiting], free: &[FreeAgent]) -> u64 {
    use std::hash::{Hash, Hasher};
    // FNV-style fold: stable across processes and builds (unlike std's RandomState).
    let mut h = StableHasher(0xcbf2_9ce4_8422_2325);
    for c in calls {
        c.id.hash(&mut h);
    }
    for a in free {
        a.ext.hash(&mut h);
        a.calls_today.hash(&mut h);
    }
    h.finish()
}

struct StableHasher(u64);

impl std::hash::Hasher for StableHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Rounds between two looks for agents stranded by a dead node.
const RECOVER_EVERY: u64 = 8;

/// States in which an agent is tied to a call (and its node) until that node lets it go.
const TIED: [AgentState; 4] = [
    AgentState::Reserved,
    AgentState::Ringing,
    AgentState::InCall,
    AgentState::WrapUp,
];

/// A node starting again: agents its earlier run left in wrap-up are free now (the node's
/// start frees the ones it left reserved, ringing or in a call). Runs before any call of this
/// run can have reached its wrap-up.
async fn release_own_wrap_ups(d: &Dispatcher) -> Result<(), callfleet_store::StoreError> {
    let me = d.me.as_str();
    for a in d.store.agents().await? {
        if a.state != AgentState::WrapUp || a.current_node.as_deref() != Some(me) {
            continue;
        }
        let freed = d
            .store
            .transition_agent(
                &a.extension,
                &[AgentState::WrapUp],
                AgentState::Available,
                now_ms(),
                None,
            )
            .await?;
        if freed {
            tracing::info!(agent = %a.extension, "agent freed from a wrap-up of an earlier run");
        }
    }
    Ok(())
}

/// A wrap-up lasting this much longer than the longest `wrapup_ms` of any queue was not ended
/// by its node (the database failed then): any node frees the agent, once the lease is free.
const WRAP_UP_OVERDUE_MS: i64 = 120_000;

/// Agents left ringing, in a call or in wrap-up by a node that died (its heartbeat went stale)
/// are put back to available once their lease can be taken, i.e. once the dead node's lease
/// expired; the queue entries of such a node are deleted (its calls are gone). An agent whose
/// wrap-up is overdue is freed the same way, whichever node it is tied to.
async fn recover_stranded(d: &Dispatcher) -> Result<(), callfleet_store::StoreError> {
    let view = d.balancer.view();
    let me = d.me.as_str();
    if !view.alive(me) {
        return Ok(()); // our own view is not fresh: judge nobody
    }
    let mut dead: Vec<String> = d
        .store
        .entries()
        .await?
        .into_iter()
        .map(|e| e.node)
        .filter(|n| n != me && long_dead(&view, n))
        .collect();
    dead.sort();
    dead.dedup();
    for n in dead {
        let gone = d.store.remove_node_entries(&n).await?;
        if gone > 0 {
            tracing::info!(dead_node = %n, entries = gone, "queue entries of a node that died deleted");
        }
    }
    let longest_wrap_up = d
        .realtime
        .get()
        .queues
        .values()
        .map(|q| q.wrapup_ms)
        .max()
        .unwrap_or(0);
    let now = now_ms();
    for a in d.store.agents().await? {
        let Some(why) = stranded(&a, me, |n| long_dead(&view, n), longest_wrap_up, now) else {
            continue;
        };
        let orphaned = why == Stranded::DeadNode;
        let owner = a.current_node.as_deref().unwrap_or("");
        let key = super::agent_key(&a.extension);
        let lease = match d
            .locks
            .acquire(&key, &format!("{me}:recover"), Duration::from_secs(5))
            .await
        {
            Ok(Some(l)) => l,
            _ => continue, // still leased by the dead node, or lockd unreachable: next time
        };
        let from: &[AgentState] = if orphaned {
            &TIED
        } else {
            &[AgentState::WrapUp]
        };
        // Under the new lease's token: the dead node, should it come back, is fenced off.
        let freed = d
            .store
            .transition_agent_fenced(
                &a.extension,
                from,
                AgentState::Available,
                now_ms(),
                None,
                super::fence::token(&lease),
            )
            .await?
            == callfleet_store::Transition::Moved;
        if freed && orphaned {
            tracing::info!(agent = %a.extension, dead_node = owner, "agent freed from a node that died");
        } else if freed {
            tracing::info!(agent = %a.extension, "agent freed from an overdue wrap-up");
        }
        if let Err(e) = d.locks.release(&lease).await {
            debug!(agent = %a.extension, error = %e, "cannot release the recovery lease (it expires by itself)");
        }
    }
    Ok(())
}

/// Why an agent is to be freed by the stranded-agent check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stranded {
    /// Tied to a call of another node that is long dead.
    DeadNode,
    /// In wrap-up far longer than any queue's wrap-up lasts.
    OverdueWrapUp,
}

/// Whether agent `a` is stranded, as seen by node `me` at `now_ms`; `dead(node)` says whether
/// a node is long dead.
fn stranded(
    a: &callfleet_store::Agent,
    me: &str,
    dead: impl Fn(&str) -> bool,
    longest_wrap_up_ms: i64,
    now_ms: i64,
) -> Option<Stranded> {
    let owner = a.current_node.as_deref().unwrap_or("");
    if TIED.contains(&a.state) && !owner.is_empty() && owner != me && dead(owner) {
        return Some(Stranded::DeadNode);
    }
    let overdue = a.state == AgentState::WrapUp
        && now_ms - a.state_since_ms > longest_wrap_up_ms.max(0) + WRAP_UP_OVERDUE_MS;
    overdue.then_some(Stranded::OverdueWrapUp)
}

async fn round(d: &Dispatcher) -> Result<(), callfleet_store::StoreError> {
    let view = d.balancer.view();
    let me = d.me.as_str();
    // Calls held by a node that died are gone with it: they must not keep agents from the
    // living (`recover_stranded` deletes them once the node is silent for twice the TTL).
    let entries: Vec<_> = d
        .store
        .waiting_entries()
        .await?
        .into_iter()
        .filter(|e| e.node == me || view.alive(&e.node))
        .collect();
    d.local.set_snapshot(Snapshot {
        order: entries.iter().map(|e| (e.id, e.queue.clone())).collect(),
    });
    if !entries.iter().any(|e| e.node == me) {
        return Ok(());
    }
    let agents = d.store.agents().await?;
    let members = d.store.members(None).await?;
    let queues = d.store.queues().await?;
    let calls = waiting(&entries);
    let now = now_ms();
    let logged_in: HashSet<String> = agents
        .iter()
        .filter(|a| a.device.is_some())
        .map(|a| a.extension.clone())
        .collect();
    // Agents whose phones this node found unregistered are left out while their backoff
    // runs (`reach`): offered, they would only be skipped again.
    let free = free_agents(&agents, now, |ext| d.local.unreachable(ext, now));
    if free.is_empty() {
        return Ok(());
    }
    let rules = queue_rules(&queues);
    let members = acd_members(&members);
    // Every node must draw the same random choices from the same rows: seed from them.
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed(&calls, &free));
    for a in acd::assign(&calls, &free, &rules, &members, &logged_in, now, &mut rng) {
        if a.node == me && d.local.deliver(&a) {
            if let Some(last) = a.agents.last() {
                // A hint for the next round-robin turn, not a record: never replayed late.
                if let Err(e) = d.store.set_rr_last(&a.queue, last).await {
                    debug!(queue = %a.queue, error = %e, "round-robin position not saved");
                }
            }
        }
    }
    Ok(())
}

/// The waiting calls as agent selection sees them.
fn waiting(entries: &[callfleet_store::QueueEntry]) -> Vec<Waiting> {
    entries
        .iter()
        .map(|e| Waiting {
            id: e.id,
            queue: e.queue.clone(),
            node: e.node.clone(),
            call_id: e.call_id.clone(),
            caller: e.caller.clone(),
            priority: e.priority,
            vip: e.vip,
            enqueued_at_ms: e.enqueued_at_ms,
        })
        .collect()
}

/// The agents that may be offered a call at `now_ms`: logged in on a phone, available, not
/// paused, and not `unreachable`; their calls today counted only if today is `now_ms`'s UTC
/// day.
fn free_agents(
    agents: &[callfleet_store::Agent],
    now_ms: i64,
    unreachable: impl Fn(&str) -> bool,
) -> Vec<FreeAgent> {
    let today = callfleet_store::utc_day(now_ms);
    agents
        .iter()
        .filter(|a| a.device.is_some() && a.state == AgentState::Available && !a.paused)
        .filter(|a| !unreachable(&a.extension))
        .map(|a| FreeAgent {
            ext: a.extension.clone(),
            last_call_end_ms: a.last_call_end_ms,
            calls_today: if a.calls_day.as_deref() == Some(today.as_str()) {
                a.calls_today as u32
            } else {
                0
            },
            daily_limit: a.daily_limit.map(|l| l as u32),
        })
        .collect()
}

/// Each queue's strategy and round-robin position, by name.
fn queue_rules(queues: &[callfleet_store::Queue]) -> HashMap<String, QueueRules> {
    queues
        .iter()
        .map(|q| {
            let rules = QueueRules {
                strategy: q.strategy,
                rr_last: q.rr_last.clone(),
            };
            (q.name.clone(), rules)
        })
        .collect()
}

/// The queues' members as agent selection sees them.
fn acd_members(members: &[callfleet_store::Member]) -> Vec<acd::Member> {
    members
        .iter()
        .map(|m| acd::Member {
            queue: m.queue.clone(),
            agent: m.agent.clone(),
            tier: m.tier as u32,
            vip_allowed: m.vip_allowed,
            weight: m.weight as u32,
            position: m.position as u32,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use callfleet_store::Agent;

    fn agent(state: AgentState, node: Option<&str>, since_ms: i64) -> Agent {
        let mut a = Agent::new("7001", "a", "x", 0);
        a.state = state;
        a.current_node = node.map(str::to_string);
        a.state_since_ms = since_ms;
        a
    }

    #[test]
    fn free_agents_are_logged_in_available_unpaused_and_reachable() {
        use AgentState::*;
        let now = 10 * 86_400_000 + 3_600_000;
        let today = callfleet_store::utc_day(now);
        // (extension, state, device, paused, calls counted on day, offered with calls today)
        type Row<'a> = (
            &'a str,
            AgentState,
            bool,
            bool,
            Option<&'a str>,
            Option<u32>,
        );
        let rows: Vec<Row> = vec![
            (
                "7001",
                Available,
                true,
                false,
                Some(today.as_str()),
                Some(4),
            ),
            ("7002", Available, true, false, Some("1970-01-01"), Some(0)),
            ("7003", Available, false, false, None, None),
            ("7004", Available, true, true, None, None),
            ("7005", InCall, true, false, None, None),
            ("7006", WrapUp, true, false, None, None),
            ("7007", Available, true, false, None, None),
        ];
        let agents: Vec<Agent> = rows
            .iter()
            .map(|(ext, state, device, paused, day, _)| {
                let mut a = Agent::new(ext, "a", "x", 0);
                a.state = *state;
                a.device = device.then(|| format!("dev-{ext}"));
                a.paused = *paused;
                a.calls_today = 4;
                a.calls_day = day.map(str::to_string);
                a
            })
            .collect();
        // 7007's phone was found unregistered: left out while its backoff runs.
        let free = free_agents(&agents, now, |ext| ext == "7007");
        let got: Vec<(&str, u32)> = free
            .iter()
            .map(|f| (f.ext.as_str(), f.calls_today))
            .collect();
        let want: Vec<(&str, u32)> = rows
            .iter()
            .filter_map(|(ext, .., offered)| offered.map(|n| (*ext, n)))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn agents_of_dead_nodes_and_overdue_wrap_ups_are_stranded() {
        use AgentState::*;
        let dead = |n: &str| n == "dead";
        let now = 1_000_000;
        let longest = 30_000;
        let overdue = now - longest - WRAP_UP_OVERDUE_MS - 1;
        let cases = [
            // (state, node, state since, expected)
            (InCall, Some("dead"), now, Some(Stranded::DeadNode)),
            (Ringing, Some("dead"), now, Some(Stranded::DeadNode)),
            (Reserved, Some("dead"), now, Some(Stranded::DeadNode)),
            (WrapUp, Some("dead"), now, Some(Stranded::DeadNode)),
            (WrapUp, Some("alive"), now, None),
            (WrapUp, Some("me"), now, None),
            (WrapUp, None, now, None),
            (
                WrapUp,
                Some("alive"),
                overdue,
                Some(Stranded::OverdueWrapUp),
            ),
            (WrapUp, Some("me"), overdue, Some(Stranded::OverdueWrapUp)),
            (WrapUp, None, overdue, Some(Stranded::OverdueWrapUp)),
            (WrapUp, Some("alive"), overdue + 2, None),
            (InCall, Some("alive"), overdue, None),
            (InCall, Some("me"), overdue, None),
            (Available, Some("dead"), overdue, None),
            (Paused, Some("dead"), overdue, None),
            (LoggedOut, None, overdue, None),
        ];
        for (i, (state, node, since, want)) in cases.into_iter().enumerate() {
            let a = agent(state, node, since);
            assert_eq!(
                stranded(&a, "me", dead, longest, now),
                want,
                "case {i}: {state:?} on {node:?}"
            );
        }
    }
}
