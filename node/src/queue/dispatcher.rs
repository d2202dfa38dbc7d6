//! The dispatcher: a few times a second it reads the cluster queue and the agents from SQL,
//! computes the assignment of free agents to waiting calls (`acd::assign`: every node gets the
//! same answer from the same rows), and hands each of this node's calls its agents. Calls of
//! other nodes are left to their nodes, so a free agent always goes to the call that is first
//! cluster-wide, whichever node holds it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use callfleet_store::{AgentState, EntryState};
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

/// Whether the calls of `node` keep their places in the cluster queue, as node `me` sees it:
/// its own always; another node's until that node is long dead ([`long_dead`], twice the
/// TTL), the moment `recover_stranded` deletes them. A node whose heartbeat is merely stale (a
/// database hiccup there: writes slow or failing for a few seconds) is very likely still
/// holding its callers, and dropping them would let a later caller of another node overtake
/// them; after a real death its calls keep agents idle for one more TTL at most.
fn keeps_calls(view: &callfleet_lb::ClusterView, me: &str, node: &str) -> bool {
    node == me || !long_dead(view, node)
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
    // living. A node that missed a few heartbeats keeps its calls' places (`keeps_calls`).
    let (entries, offering): (Vec<_>, Vec<_>) = d
        .store
        .open_entries()
        .await?
        .into_iter()
        .filter(|e| keeps_calls(&view, me, &e.node))
        .partition(|e| e.state == EntryState::Waiting);
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
    // runs (`reach`): offered, they would only be skipped again. So are agents held by a call
    // of any node that is being offered them (`held_by_offers`): a later call must not take
    // them before the call ahead has rung them.
    let held = held_by_offers(&offering, &agents);
    let free = free_agents(&agents, now, |ext| {
        held.contains(ext) || d.local.unreachable(ext, now)
    });
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

/// States in which an agent is taken for a call: its node holds its lease for that call.
const TAKEN: [AgentState; 3] = [
    AgentState::Reserved,
    AgentState::Ringing,
    AgentState::InCall,
];

/// The agents held by calls being offered (entries in `offering`), whichever node holds them:
/// an entry leaves `waiting` when its node claims it, a moment before that node has the
/// agents' leases and has moved them to `ringing` (or after one of them was refused or did not
/// answer, until the entry is `waiting` again). Meanwhile those agents still look available;
/// offered to a later call, they could be taken by it first and the earlier caller overtaken.
/// So an offering entry holds the agents it was offered (`offered_to`) until one of them is
/// taken for it (reserved, ringing or talking on its call): from then on the call is being
/// served and the others it was offered are free for later calls.
fn held_by_offers(
    offering: &[callfleet_store::QueueEntry],
    agents: &[callfleet_store::Agent],
) -> HashSet<String> {
    let mut held = HashSet::new();
    for e in offering.iter().filter(|e| e.state == EntryState::Offering) {
        let served = agents.iter().any(|a| {
            TAKEN.contains(&a.state)
                && a.current_call.as_deref() == Some(e.call_id.as_str())
                && a.current_node.as_deref() == Some(e.node.as_str())
        });
        if served {
            continue;
        }
        let offered = e.offered_to.as_deref().unwrap_or("").split(',');
        held.extend(
            offered
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(String::from),
        );
    }
    held
}

/// The agents that may be offered a call at `now_ms`: logged in on a phone, available, not
/// paused, and not `skipped` (unreachable, or held by a call being offered); their calls
/// today counted only if today is `now_ms`'s UTC day.
fn free_agents(
    agents: &[callfleet_store::Agent],
    now_ms: i64,
    skipped: impl Fn(&str) -> bool,
) -> Vec<FreeAgent> {
    let today = callfleet_store::utc_day(now_ms);
    agents
        .iter()
        .filter(|a| a.device.is_some() && a.state == AgentState::Available && !a.paused)
        .filter(|a| !skipped(&a.extension))
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
    use callfleet_store::{Agent, QueueEntry};

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

    fn entry(id: i64, node: &str, state: EntryState, offered_to: Option<&str>) -> QueueEntry {
        QueueEntry {
            id,
            queue: "q".into(),
            node: node.into(),
            call_id: format!("call-{id}"),
            caller: "+1555".into(),
            priority: 0,
            vip: false,
            enqueued_at_ms: id,
            state,
            offered_to: offered_to.map(str::to_string),
        }
    }

    /// An agent in `state`, tied to entry `call`'s call on `node` when given.
    fn tied(ext: &str, state: AgentState, call: Option<(i64, &str)>) -> Agent {
        let mut a = Agent::new(ext, "a", "x", 0);
        a.state = state;
        a.device = Some(format!("dev-{ext}"));
        a.current_call = call.map(|(id, _)| format!("call-{id}"));
        a.current_node = call.map(|(_, node)| node.to_string());
        a
    }

    #[test]
    fn a_call_being_offered_holds_its_agents_until_one_is_taken_for_it() {
        use AgentState::*;
        use EntryState::*;
        // (case, entries, agents, held)
        type Case<'a> = (&'a str, Vec<QueueEntry>, Vec<Agent>, Vec<&'a str>);
        let cases: Vec<Case> = vec![
            (
                "claimed on node b, the agent not leased yet",
                vec![entry(1, "b", Offering, Some("7001"))],
                vec![tied("7001", Available, None)],
                vec!["7001"],
            ),
            (
                "every agent offered to a ringall call, none taken yet",
                vec![entry(1, "b", Offering, Some("7001, 7002,7003"))],
                vec![tied("7001", Available, None), tied("7002", WrapUp, None)],
                vec!["7001", "7002", "7003"],
            ),
            (
                "one agent rings for it: the call is served, the others are free",
                vec![entry(1, "b", Offering, Some("7001,7002"))],
                vec![
                    tied("7001", Ringing, Some((1, "b"))),
                    tied("7002", Available, None),
                ],
                vec![],
            ),
            (
                "reserved or talking for it counts as taken",
                vec![
                    entry(1, "a", Offering, Some("7001,7003")),
                    entry(2, "b", Offering, Some("7002,7004")),
                ],
                vec![
                    tied("7001", Reserved, Some((1, "a"))),
                    tied("7002", InCall, Some((2, "b"))),
                ],
                vec![],
            ),
            (
                "an agent ringing for another call, or the same call id on another node",
                vec![
                    entry(1, "b", Offering, Some("7001")),
                    entry(2, "a", Offering, Some("7002")),
                ],
                vec![
                    tied("7001", Ringing, Some((9, "b"))),
                    tied("7002", Ringing, Some((2, "b"))),
                ],
                vec!["7001", "7002"],
            ),
            (
                "tied to it but back to available or in wrap-up: not taken now",
                vec![entry(1, "b", Offering, Some("7001,7002"))],
                vec![
                    tied("7001", Available, Some((1, "b"))),
                    tied("7002", WrapUp, Some((1, "b"))),
                ],
                vec!["7001", "7002"],
            ),
            (
                "waiting and bridged entries hold nobody",
                vec![
                    entry(1, "b", Waiting, None),
                    entry(2, "b", Bridged, Some("7002")),
                    entry(3, "b", Offering, None),
                    entry(4, "b", Offering, Some(" , ")),
                ],
                vec![tied("7002", Available, None)],
                vec![],
            ),
        ];
        for (case, entries, agents, want) in cases {
            let mut got: Vec<String> = held_by_offers(&entries, &agents).into_iter().collect();
            got.sort();
            assert_eq!(got, want, "{case}");
        }
    }

    /// The race this rule closes: caller 1 (node b) was first and its node claimed it; node a's
    /// round sees the agent still available. Without the hold it would offer caller 2.
    #[test]
    fn a_later_call_does_not_take_the_agent_of_an_earlier_call_being_offered() {
        use AgentState::*;
        use EntryState::*;
        let entries = [
            entry(1, "b", Offering, Some("7001")),
            entry(2, "a", Waiting, None),
        ];
        let agents = [tied("7001", Available, None)];
        let held = held_by_offers(&entries, &agents);
        let free = free_agents(&agents, 0, |ext| held.contains(ext));
        assert!(free.is_empty(), "{free:?}");
        // Once the agent rings for caller 1, nothing is held (and the agent is not free).
        let agents = [tied("7001", Ringing, Some((1, "b")))];
        assert!(held_by_offers(&entries, &agents).is_empty());
        assert!(free_agents(&agents, 0, |_| false).is_empty());
        // Back to waiting (nobody answered): nothing held, the agent goes to caller 1 first.
        let entries = [entry(1, "b", Waiting, None), entry(2, "a", Waiting, None)];
        let agents = [tied("7001", Available, None)];
        let held = held_by_offers(&entries, &agents);
        let free = free_agents(&agents, 0, |ext| held.contains(ext));
        assert_eq!(free.len(), 1);
        let calls = waiting(&entries);
        let members = [acd::Member {
            queue: "q".into(),
            agent: "7001".into(),
            tier: 0,
            vip_allowed: false,
            weight: 1,
            position: 0,
        }];
        let logged_in: HashSet<String> = ["7001".to_string()].into();
        let rules = HashMap::from([(
            "q".to_string(),
            QueueRules {
                strategy: acd::Strategy::RingAll,
                rr_last: None,
            },
        )]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let got = acd::assign(&calls, &free, &rules, &members, &logged_in, 0, &mut rng);
        let got: Vec<(i64, Vec<String>)> =
            got.into_iter().map(|a| (a.entry_id, a.agents)).collect();
        assert_eq!(got, vec![(1, vec!["7001".to_string()])]);
    }

    #[test]
    fn a_node_keeps_its_calls_places_until_it_is_long_dead() {
        let ttl = Duration::from_secs(3);
        let now = 1_000_000;
        let node = |name: &str, beat_age_ms: i64| callfleet_lb::NodeStatus {
            name: name.into(),
            role: callfleet_lb::Role::Main,
            sip: "127.0.0.1:5060".parse().expect("addr"),
            http: "127.0.0.1:8080".parse().expect("addr"),
            generation: 1,
            calls: 0,
            capacity: 10,
            cpu_pct: 0.0,
            load1: 0.0,
            shed_level: 0,
            draining: false,
            refusing: false,
            updated_at_ms: now - beat_age_ms,
            services: String::new(),
            version: String::new(),
            mem_used_kb: 0,
            mem_total_kb: 0,
        };
        // (node, heartbeat age in ms (None: not in the view), keeps its calls)
        let cases = [
            ("fresh", Some(500), true),
            ("stale", Some(3_000), true),
            ("stale-long", Some(6_000), true),
            ("dead", Some(6_001), false),
            ("ahead", Some(-2_000), true),
            ("unknown", None, false),
        ];
        let rows = cases
            .iter()
            .filter_map(|(name, age, _)| age.map(|age| node(name, age)))
            .chain([node("me", 60_000)])
            .collect();
        let view = callfleet_lb::ClusterView::from_rows(rows, now, ttl);
        for (name, age, want) in cases {
            assert_eq!(keeps_calls(&view, "me", name), want, "{name}: {age:?}");
        }
        // This node's own calls, whatever its own heartbeat says.
        assert!(keeps_calls(&view, "me", "me"));
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
