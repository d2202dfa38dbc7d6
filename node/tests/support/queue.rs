//! The cluster queue from a test's side: a blocking handle on the store to provision agents,
//! queues and members (as the admin API will) and to read agent state and queue events; and
//! checks over the events: who answered each call, overlapping calls of one agent, and calls
//! answered out of their enqueue order.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use callfleet_store::{
    Agent, AgentState, Fallback, Member, Queue, QueueEvent, QueueEventKind, Store,
};

use super::wait_until;

/// The store on its own small runtime, for synchronous tests (they hold `serial()`, a std
/// mutex, which must not live across an `.await`).
pub struct Db {
    pub store: Store,
    rt: tokio::runtime::Runtime,
}

impl Db {
    pub fn connect(url: &str) -> Db {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let store = rt
            .block_on(Store::connect(url))
            .unwrap_or_else(|e| panic!("open the store at {url}: {e}"));
        Db { store, rt }
    }

    /// Runs a store future to its end.
    pub fn block<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Creates agent `ext` (logged out) with `pin`.
    pub fn add_agent(&self, ext: &str, pin: &str) {
        let hash = callfleet_store::pin::hash(ext, pin).expect("hash the PIN");
        let agent = Agent::new(ext, &format!("agent {ext}"), &hash, callfleet::now_ms());
        self.block(self.store.upsert_agent(&agent))
            .expect("upsert agent");
    }

    pub fn add_queue(&self, q: &Queue) {
        self.block(self.store.upsert_queue(q))
            .expect("upsert queue");
    }

    pub fn add_member(&self, m: &Member) {
        self.block(self.store.upsert_member(m))
            .expect("upsert member");
    }

    pub fn login(&self, ext: &str, device: &str) {
        let ok = self
            .block(self.store.login_agent(ext, device, callfleet::now_ms()))
            .expect("log agent in");
        assert!(ok, "agent {ext} could not log in on {device}");
    }

    pub fn agent(&self, ext: &str) -> Agent {
        self.block(self.store.agent(ext))
            .expect("read agent")
            .unwrap_or_else(|| panic!("no agent {ext}"))
    }

    /// Whether `device` has a live registration.
    pub fn registered(&self, device: &str) -> bool {
        self.block(self.store.registrations(device, callfleet::now_ms()))
            .map(|r| !r.is_empty())
            .unwrap_or(false)
    }

    /// Queue events since `since_ms`, oldest first.
    pub fn events(&self, since_ms: i64) -> Vec<QueueEvent> {
        self.block(self.store.queue_events(None, since_ms))
            .expect("read queue events")
    }

    /// Waits until `node` reloaded the configuration at its current version (after the
    /// test's writes); panics with the node's log if it did not within 10 s.
    pub fn wait_reloaded(&self, node: &super::NodeProc) {
        let version = self
            .block(self.store.config_version())
            .expect("config version");
        let reloaded = wait_until(Duration::from_secs(10), || {
            node.log_text()
                .contains(&format!("configuration reloaded version={version}"))
        });
        assert!(reloaded.is_some(), "no reload:\n{}", node.log_text());
    }

    /// Waits until every agent in `exts` is `available`; false if one is not within `limit`.
    pub fn wait_available(&self, exts: &[&str], limit: Duration) -> bool {
        wait_until(limit, || {
            exts.iter()
                .all(|e| self.agent(e).state == AgentState::Available)
        })
        .is_some()
    }
}

/// A queue with test defaults: 10 s ring timeout, 2 min maximum wait, no announcements,
/// 300 ms wrap-up, hang up at timeout.
pub fn queue(name: &str, strategy: &str) -> Queue {
    Queue {
        name: name.into(),
        strategy: strategy.parse().expect("a ring strategy"),
        ring_timeout_ms: 10_000,
        max_wait_ms: 120_000,
        announce_interval_ms: 0,
        moh_class: "default".into(),
        wrapup_ms: 300,
        fallback: Fallback::Hangup,
        fallback_target: None,
        rr_last: None,
        recording: Default::default(),
        recording_prompt: false,
    }
}

/// A member at `tier` and `position`, weight 1, not VIP-allowed.
pub fn member(queue: &str, agent: &str, tier: i64, position: i64) -> Member {
    Member {
        queue: queue.into(),
        agent: agent.into(),
        tier,
        vip_allowed: false,
        weight: 1,
        position,
    }
}

/// What the events say about one queued call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    pub call_id: String,
    pub queue: String,
    /// Node that enqueued the call.
    pub node: String,
    pub enqueued_ms: Option<i64>,
    /// Agents offered the call, in order.
    pub offers: Vec<String>,
    /// (time, agent) of every answer: exactly one for a served call.
    pub answers: Vec<(i64, String)>,
    pub completed_ms: Option<i64>,
    /// `abandon` / `timeout` events.
    pub lost: Vec<QueueEventKind>,
}

impl Trace {
    /// The agent that answered, if exactly one did.
    pub fn agent(&self) -> Option<&str> {
        match self.answers.as_slice() {
            [(_, a)] => Some(a),
            _ => None,
        }
    }
}

/// Groups events by call, in enqueue order (calls with no enqueue event last).
pub fn traces(events: &[QueueEvent]) -> Vec<Trace> {
    let mut by_call: BTreeMap<&str, Trace> = BTreeMap::new();
    for e in events {
        let t = by_call.entry(&e.call_id).or_insert_with(|| Trace {
            call_id: e.call_id.clone(),
            queue: e.queue.clone(),
            ..Trace::default()
        });
        let agent = e.agent.clone().unwrap_or_default();
        match e.event {
            QueueEventKind::Enqueue => {
                t.enqueued_ms = Some(e.at_ms);
                t.node = e.node.clone();
            }
            QueueEventKind::Offer => t.offers.push(agent),
            QueueEventKind::Answer => t.answers.push((e.at_ms, agent)),
            QueueEventKind::Complete => t.completed_ms = Some(e.at_ms),
            QueueEventKind::Abandon | QueueEventKind::Timeout => t.lost.push(e.event),
            _ => {}
        }
    }
    let mut out: Vec<Trace> = by_call.into_values().collect();
    out.sort_by_key(|t| (t.enqueued_ms.is_none(), t.enqueued_ms, t.call_id.clone()));
    out
}

/// Pairs of calls one agent talked on at the same time (answer to complete; a call with no
/// complete event lasts forever), described for an assertion message.
pub fn overlaps(traces: &[Trace]) -> Vec<String> {
    let mut per_agent: BTreeMap<&str, Vec<(i64, i64, &str)>> = BTreeMap::new();
    for t in traces {
        for (at, agent) in &t.answers {
            let end = t.completed_ms.unwrap_or(i64::MAX);
            per_agent
                .entry(agent)
                .or_default()
                .push((*at, end, &t.call_id));
        }
    }
    let mut out = vec![];
    for (agent, mut calls) in per_agent {
        calls.sort();
        for w in calls.windows(2) {
            let ((s1, e1, c1), (s2, e2, c2)) = (w[0], w[1]);
            if s2 < e1 {
                out.push(format!(
                    "agent {agent}: {c1} [{s1}, {e1}] overlaps {c2} [{s2}, {e2}]"
                ));
            }
        }
    }
    out
}

/// Pairs of answered calls answered in the opposite order of their enqueue times.
pub fn inversions(traces: &[Trace]) -> usize {
    let served: Vec<(i64, i64)> = traces
        .iter()
        .filter_map(|t| Some((t.enqueued_ms?, t.answers.first()?.0)))
        .collect();
    let mut n = 0;
    for (i, a) in served.iter().enumerate() {
        for b in &served[i + 1..] {
            if (a.0 < b.0 && a.1 > b.1) || (b.0 < a.0 && b.1 > a.1) {
                n += 1;
            }
        }
    }
    n
}

/// The cluster's SIP domain the test nodes of [`moh_node`] are configured with
/// (`sip.domains`); never resolved.
pub const DOMAIN: &str = "pbx.example.com";

/// One main node, `main-a` at `ip`, on a fresh PostgreSQL database named `tag`, its music on
/// hold a `moh` Hz tone, recordings (of queues whose policy records) kept in its folder, its
/// SIP domain [`DOMAIN`], up and writing its heartbeat: its working directory, database,
/// process and a handle on its store.
pub fn moh_node(
    tag: &str,
    ip: &str,
    moh: f32,
) -> (std::path::PathBuf, super::Pg, super::NodeProc, Db) {
    let dir = super::workdir(tag);
    let pg = super::Pg::fresh(tag);
    super::audio::write_tone_wav(&dir.join("moh").join("hold.wav"), moh, 5.0);
    // Recordings (of queues whose policy records) in the test's own folder.
    let extra = format!(
        "[recording]\ndir = \"{}\"\nmin_free_mb = 1\n",
        dir.join("recordings").display()
    );
    let mut node = super::NodeProc::configure(
        &dir,
        super::NodeSpec {
            name: "main-a",
            role: "main",
            ip,
            db: &pg.url,
            capacity: 20,
            extra: &extra,
        },
    );
    with_domain(&node.config);
    node.spawn();
    super::wait_alive(&node, 1);
    let db = Db::connect(&pg.url);
    (dir, pg, node, db)
}

/// Adds `sip.domains = [DOMAIN]` to the node config at `config`.
pub fn with_domain(config: &std::path::Path) {
    let text = std::fs::read_to_string(config).expect("read the node config");
    let text = text.replacen("[sip]\n", &format!("[sip]\ndomains = [\"{DOMAIN}\"]\n"), 1);
    std::fs::write(config, text).expect("write the node config");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(at_ms: i64, call: &str, agent: Option<&str>, event: &str) -> QueueEvent {
        QueueEvent {
            id: 0,
            at_ms,
            queue: "q".into(),
            call_id: call.into(),
            node: "n".into(),
            agent: agent.map(str::to_string),
            event: event.parse().expect("a queue event kind"),
            detail: None,
            uid: None,
        }
    }

    /// (events, overlaps, inversions)
    #[test]
    fn overlaps_and_inversions_from_events() {
        let cases: Vec<(Vec<QueueEvent>, usize, usize)> = vec![
            (vec![], 0, 0),
            // one agent, back to back, in order
            (
                vec![
                    ev(0, "a", None, "enqueue"),
                    ev(1, "b", None, "enqueue"),
                    ev(2, "a", Some("x"), "answer"),
                    ev(5, "a", Some("x"), "complete"),
                    ev(6, "b", Some("x"), "answer"),
                    ev(9, "b", Some("x"), "complete"),
                ],
                0,
                0,
            ),
            // one agent on two calls at once, served out of order
            (
                vec![
                    ev(0, "a", None, "enqueue"),
                    ev(1, "b", None, "enqueue"),
                    ev(2, "b", Some("x"), "answer"),
                    ev(3, "a", Some("x"), "answer"),
                    ev(5, "a", Some("x"), "complete"),
                    ev(9, "b", Some("x"), "complete"),
                ],
                1,
                1,
            ),
            // two agents at once is fine; a call never completed overlaps the next one
            (
                vec![
                    ev(0, "a", None, "enqueue"),
                    ev(1, "b", None, "enqueue"),
                    ev(2, "c", None, "enqueue"),
                    ev(3, "a", Some("x"), "answer"),
                    ev(4, "b", Some("y"), "answer"),
                    ev(8, "c", Some("y"), "answer"),
                ],
                1,
                0,
            ),
        ];
        for (i, (events, want_overlaps, want_inversions)) in cases.iter().enumerate() {
            let t = traces(events);
            assert_eq!(overlaps(&t).len(), *want_overlaps, "case {i}: {t:?}");
            assert_eq!(inversions(&t), *want_inversions, "case {i}: {t:?}");
        }
    }
}
