//! A snapshot made from one read's rows: the pure part of the panel's view of the cluster.

use super::*;

use callfleet_vocab::uri_user;

/// Builds a snapshot from one read's rows and the tracker (already updated with those rows).
pub fn build(
    cfg: &SnapshotConfig,
    seq: u64,
    now_ms: i64,
    rows: &Rows,
    tracker: &Tracker,
) -> Snapshot {
    let ttl_ms = i64::try_from(cfg.heartbeat_ttl.as_millis()).unwrap_or(i64::MAX);
    let nodes = rows
        .heartbeats
        .iter()
        .map(|hb| node_view(hb, tracker, ttl_ms, now_ms))
        .collect();
    let mut ix = Index::of(rows);
    let queues = rows
        .queues
        .iter()
        .map(|q| queue_view(q, rows, &ix, tracker, now_ms))
        .collect();
    let agents = rows
        .agents
        .iter()
        .map(|a| agent_view(a, &mut ix, now_ms))
        .collect();
    let mut calls: Vec<CallView> = rows
        .calls
        .iter()
        .map(|c| call_view(c, &ix, now_ms))
        .collect();
    calls.sort_by(|a, b| {
        b.duration_ms
            .cmp(&a.duration_ms)
            .then_with(|| a.node.cmp(&b.node))
            .then_with(|| a.call_id.cmp(&b.call_id))
    });
    Snapshot {
        seq,
        taken_at_ms: now_ms,
        served_by: cfg.node.clone(),
        stale: false,
        stale_since_ms: None,
        service_level_s: cfg.service_level.as_secs(),
        nodes,
        queues,
        agents,
        calls,
        alerts: rows.alerts.clone(),
    }
}

/// The rows looked up by key: agents by extension, queue entries and live calls by (node,
/// Call-ID), the agent tied to each call, and each agent's queues.
struct Index<'r> {
    agents_by_ext: HashMap<&'r str, &'r Agent>,
    entry_by_call: HashMap<(&'r str, &'r str), &'r QueueEntry>,
    live_by_call: HashMap<(&'r str, &'r str), &'r LiveCall>,
    agent_by_call: HashMap<(&'r str, &'r str), &'r Agent>,
    /// Taken by each agent's view.
    queues_of: HashMap<&'r str, Vec<String>>,
}

impl<'r> Index<'r> {
    fn of(rows: &'r Rows) -> Index<'r> {
        // The agent tied to each call: the one talking wins over ones still ringing.
        let mut agent_by_call: HashMap<(&str, &str), &Agent> = HashMap::new();
        for agent in &rows.agents {
            if let (Some(call), Some(node)) = (&agent.current_call, &agent.current_node) {
                let slot = agent_by_call.entry((node.as_str(), call.as_str()));
                let slot = slot.or_insert(agent);
                if agent.state == AgentState::InCall {
                    *slot = agent;
                }
            }
        }
        let mut queues_of: HashMap<&str, Vec<String>> = HashMap::new();
        for member in &rows.members {
            queues_of
                .entry(member.agent.as_str())
                .or_default()
                .push(member.queue.clone());
        }
        Index {
            agents_by_ext: rows
                .agents
                .iter()
                .map(|a| (a.extension.as_str(), a))
                .collect(),
            entry_by_call: rows
                .entries
                .iter()
                .map(|e| ((e.node.as_str(), e.call_id.as_str()), e))
                .collect(),
            live_by_call: rows
                .calls
                .iter()
                .map(|c| ((c.node.as_str(), c.call_id.as_str()), c))
                .collect(),
            agent_by_call,
            queues_of,
        }
    }
}

fn node_view(hb: &Heartbeat, tracker: &Tracker, ttl_ms: i64, now_ms: i64) -> NodeView {
    let age = now_ms - hb.updated_at_ms;
    let (spark_calls, spark_cpu) = tracker.sparks(&hb.name, now_ms);
    NodeView {
        name: hb.name.clone(),
        role: hb.role.clone(),
        alive: age < ttl_ms,
        heartbeat_age_ms: age.max(0),
        calls: hb.calls,
        capacity: hb.capacity,
        cpu_pct: cpu_pct(hb.cpu_milli),
        load1: hb.load1_milli as f64 / 1000.0,
        shed_level: hb.shed_level,
        draining: hb.draining,
        refusing: hb.refusing,
        spark_calls,
        spark_cpu,
    }
}

fn queue_view(q: &Queue, rows: &Rows, ix: &Index, tracker: &Tracker, now_ms: i64) -> QueueView {
    let mut waiting = 0;
    let mut longest: Option<i64> = None;
    for e in rows.entries.iter().filter(|e| e.queue == q.name) {
        if e.state != EntryState::Bridged {
            waiting += 1;
            let wait = (now_ms - e.enqueued_at_ms).max(0);
            longest = Some(longest.map_or(wait, |l| l.max(wait)));
        }
    }
    let mut by_state = [0i64; 7];
    let mut members = 0;
    for m in rows.members.iter().filter(|m| m.queue == q.name) {
        if let Some(agent) = ix.agents_by_ext.get(m.agent.as_str()) {
            members += 1;
            by_state[state_index(agent.state)] += 1;
        }
    }
    let count = |s: AgentState| by_state[state_index(s)];
    let day = tracker.queue_day(&q.name);
    let recent = tracker.queue_window(&q.name);
    QueueView {
        name: q.name.clone(),
        strategy: q.strategy,
        waiting,
        longest_wait_ms: longest,
        members,
        available: count(AgentState::Available),
        busy: count(AgentState::Reserved)
            + count(AgentState::Ringing)
            + count(AgentState::InCall)
            + count(AgentState::WrapUp),
        paused: count(AgentState::Paused),
        logged_out: count(AgentState::LoggedOut),
        by_state,
        answered_today: day.answered,
        abandoned_today: day.abandoned,
        transferred_today: day.transferred,
        service_level: (day.answered > 0)
            .then(|| day.answered_in_time as f64 / day.answered as f64),
        recent_calls: recent.counted,
        recent_service_level: (recent.counted > 0)
            .then(|| recent.in_time as f64 / recent.counted as f64),
    }
}

/// An agent's view; takes the agent's queues out of `ix`.
fn agent_view(a: &Agent, ix: &mut Index, now_ms: i64) -> AgentView {
    let call = match (&a.current_call, &a.current_node) {
        (Some(call_id), Some(node)) if a.state.holds_call() => {
            let key = (node.as_str(), call_id.as_str());
            Some(AgentCall {
                call_id: call_id.clone(),
                node: node.clone(),
                caller: ix
                    .live_by_call
                    .get(&key)
                    .map(|c| uri_user(&c.from_uri).to_owned()),
                queue: ix.entry_by_call.get(&key).map(|e| e.queue.clone()),
                duration_ms: (now_ms - a.state_since_ms).max(0),
            })
        }
        _ => None,
    };
    AgentView {
        extension: a.extension.clone(),
        name: a.name.clone(),
        state: a.state,
        state_for_ms: (now_ms - a.state_since_ms).max(0),
        device: a.device.clone(),
        paused: a.paused,
        calls_today: a.calls_today,
        queues: ix
            .queues_of
            .remove(a.extension.as_str())
            .unwrap_or_default(),
        call,
    }
}

fn call_view(c: &LiveCall, ix: &Index, now_ms: i64) -> CallView {
    let key = (c.node.as_str(), c.call_id.as_str());
    let entry = ix.entry_by_call.get(&key);
    let agent = ix
        .agent_by_call
        .get(&key)
        .map(|a| a.extension.clone())
        .or_else(|| {
            entry
                .filter(|e| e.state == EntryState::Bridged)
                .and_then(|e| e.offered_to.clone())
        });
    let state = match entry.map(|e| e.state) {
        Some(EntryState::Waiting) => "waiting".to_owned(),
        Some(EntryState::Offering) => "ringing".to_owned(),
        Some(EntryState::Bridged) => "talking".to_owned(),
        None if agent.is_some() => "talking".to_owned(),
        None => c.state.clone(),
    };
    CallView {
        node: c.node.clone(),
        call_id: c.call_id.clone(),
        caller: uri_user(&c.from_uri).to_owned(),
        dialled: uri_user(&c.to_uri).to_owned(),
        state,
        queue: entry.map(|e| e.queue.clone()),
        agent,
        duration_ms: (now_ms - c.started_at_ms).max(0),
        wait_ms: entry.map(|e| (now_ms - e.enqueued_at_ms).max(0)),
    }
}

/// Index of `state` in [`AgentState::ALL`].
pub fn state_index(state: AgentState) -> usize {
    AgentState::ALL
        .iter()
        .position(|s| *s == state)
        .unwrap_or(0)
}
