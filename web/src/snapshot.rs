//! The panel's cluster snapshot: one task per node reads SQL once per second and publishes an
//! immutable [`Snapshot`] on a `tokio::sync::watch` channel ([`Hub`]); every panel viewer, the
//! SSE stream and the `/metrics` gauges read that one value, never the database.
//!
//! # What one read is
//!
//! Every [`SnapshotConfig::interval`] (1 s) the task runs, in order: the config version (queues
//! and queue members again only when it moved), heartbeats, heartbeat history
//! since the last read (10 minutes on the first), agents, queue entries,
//! live calls, queue events since the last read (since midnight UTC minus one hour on the
//! first), and the alerts firing. Each read counts once in
//! `callfleet_panel_snapshot_reads_total`, whether it succeeded or not, so 200 viewers cost the
//! database what one does.
//!
//! History and events are read incrementally: the [`Tracker`] keeps the last 10 minutes of
//! heartbeat points and today's per-queue counters. History reads ask only for rows newer than
//! the previous read minus a slack of 30 s, so that rows written a little late or by a node
//! whose clock is a little behind are still seen. Event reads ask for the events stored after
//! the highest id of a read at least 10 s old (`cursor`: ids grow with each insert, so a late
//! write is seen however old its event); in the node's first 10 s, by time with a slack of
//! 60 s. Rows already counted are recognised by their key and skipped.
//!
//! # Rules
//!
//! - **Always reading**: the task reads whether or not anyone watches, so the `/metrics` gauges
//!   are fresh for Prometheus and a new viewer gets a current snapshot at once. The cost is one
//!   read per node per second, the same as one open panel.
//! - **Durations come from row timestamps**: the wait of a call, the time an agent has been in
//!   its state and a call's duration are `taken_at_ms` minus a timestamp of the row, never a
//!   counter ticking in memory; viewers of any node see the same numbers for the same moment.
//! - **A database error keeps the last snapshot**, marked `stale` with the time of the failure,
//!   and counts in `callfleet_panel_snapshot_read_errors_total`; nothing panics, and the next
//!   successful read clears the mark.
//! - **Answered, abandoned and service level are per UTC day** from `queue_events`: `answer`
//!   and `abandon` events since midnight UTC. The service level is the share of today's answered
//!   calls whose wait (the `answer` event's time minus the call's `enqueue` event in that queue)
//!   was at most [`SnapshotConfig::service_level`] (20 s); a call whose enqueue was not seen
//!   counts as answered late. It is `None` while a queue has answered nothing today.
//! - **The recent service level covers the last 15 minutes** ([`SERVICE_WINDOW_MS`]), from the
//!   same events: calls answered, and callers who gave up (abandon, timeout) after waiting past
//!   the threshold; of those, the share answered within it. The alert rule on service level
//!   reads it.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use callfleet_store::{
    ActiveAlert, Agent, AgentState, EntryState, Heartbeat, HeartbeatPoint, LiveCall, Member, Queue,
    QueueEntry, QueueEvent, QueueEventKind, Store, StoreError, Strategy,
};
use serde::Serialize;
use tokio::sync::watch;

use callfleet_vocab::now_ms;

use crate::metrics::Metrics;

mod build;
mod cursor;
mod window;

pub use build::{build, state_index};

use cursor::Cursor;
pub use cursor::EventsFrom;
use window::Recent;
pub use window::ServiceWindow;

/// How far back the node sparklines go.
pub const HISTORY_WINDOW_MS: i64 = 10 * 60 * 1000;
/// Number of sparkline points per node: one per 10 s over [`HISTORY_WINDOW_MS`].
pub const SPARK_POINTS: usize = 60;
const SPARK_BUCKET_MS: i64 = HISTORY_WINDOW_MS / SPARK_POINTS as i64;
/// History points may arrive this late (writer clock behind ours, slow commit).
const HISTORY_SLACK_MS: i64 = 30_000;
/// Queue events may arrive this late (they go through each node's record writer).
const EVENT_SLACK_MS: i64 = 60_000;
/// On the first read of events, look this far before midnight for the enqueues of calls
/// answered after midnight.
const ENQUEUE_LOOKBACK_MS: i64 = 60 * 60 * 1000;
/// Enqueues with no answer, abandon or timeout are forgotten after a day.
const ENQUEUE_FORGET_MS: i64 = 24 * 60 * 60 * 1000;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// The window of the recent service level (what the alert rule compares to its target).
pub const SERVICE_WINDOW_MS: i64 = 15 * 60 * 1000;

/// What the snapshot task needs to know about its node.
#[derive(Debug, Clone)]
pub struct SnapshotConfig {
    /// This node's name (shown as the serving node).
    pub node: String,
    /// A node is alive while its heartbeat is younger than this.
    pub heartbeat_ttl: Duration,
    /// Time between reads.
    pub interval: Duration,
    /// Service-level threshold: calls answered within this wait count as on time.
    pub service_level: Duration,
}

impl SnapshotConfig {
    /// One read per second and a 20 s service level.
    pub fn new(node: &str, heartbeat_ttl: Duration) -> Self {
        Self {
            node: node.to_owned(),
            heartbeat_ttl,
            interval: Duration::from_secs(1),
            service_level: Duration::from_secs(20),
        }
    }
}

/// The whole cluster as one read saw it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Snapshot {
    /// Increases with every snapshot this node publishes (stale ones included).
    pub seq: u64,
    /// Wall clock of the read the data comes from, ms since the UNIX epoch.
    pub taken_at_ms: i64,
    /// The node that read it.
    pub served_by: String,
    /// The last read failed: this is older data.
    pub stale: bool,
    /// When the failing read happened (while `stale`).
    pub stale_since_ms: Option<i64>,
    /// Service-level threshold, seconds.
    pub service_level_s: u64,
    /// Every node with a heartbeat row, by name.
    pub nodes: Vec<NodeView>,
    /// Every configured queue, by name.
    pub queues: Vec<QueueView>,
    /// Every agent, by extension.
    pub agents: Vec<AgentView>,
    /// Live calls of the whole cluster, longest first.
    pub calls: Vec<CallView>,
    /// Alerts firing in the cluster, most severe first.
    pub alerts: Vec<ActiveAlert>,
}

/// One node's row on the panel.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NodeView {
    /// Node name.
    pub name: String,
    /// `main` or `extra`.
    pub role: String,
    /// Heartbeat younger than the TTL.
    pub alive: bool,
    /// Age of its last heartbeat.
    pub heartbeat_age_ms: i64,
    /// Calls in progress.
    pub calls: i64,
    /// Calls it takes at most.
    pub capacity: i64,
    /// CPU, percent.
    pub cpu_pct: f64,
    /// 1-minute load average.
    pub load1: f64,
    /// 0..=3.
    pub shed_level: i64,
    /// Takes no new calls, exits when idle.
    pub draining: bool,
    /// At capacity or over the CPU limit.
    pub refusing: bool,
    /// Calls in progress, the highest per 10 s over the last 10 minutes, oldest first;
    /// `null` where no heartbeat point fell.
    pub spark_calls: Vec<Option<i64>>,
    /// CPU percent, the highest per 10 s, like `spark_calls`.
    pub spark_cpu: Vec<Option<f64>>,
}

/// One queue's row on the panel.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QueueView {
    /// Queue name (what callers dial).
    pub name: String,
    /// Ring strategy.
    pub strategy: Strategy,
    /// Calls waiting or being offered (not yet bridged).
    pub waiting: i64,
    /// Wait of the longest-waiting of those calls.
    pub longest_wait_ms: Option<i64>,
    /// Member agents.
    pub members: i64,
    /// Members by state: `available`.
    pub available: i64,
    /// Members `reserved`, `ringing`, `in_call` or `wrap_up`.
    pub busy: i64,
    /// Members `paused`.
    pub paused: i64,
    /// Members `logged_out`.
    pub logged_out: i64,
    /// Members in each state, in [`AgentState::ALL`] order (for the gauges).
    #[serde(skip)]
    pub by_state: [i64; 7],
    /// Calls answered since midnight UTC.
    pub answered_today: i64,
    /// Callers who hung up waiting or ringing, since midnight UTC.
    pub abandoned_today: i64,
    /// Answered callers an agent's phone transferred on, since midnight UTC.
    pub transferred_today: i64,
    /// Share (0..=1) of today's answered calls answered within the threshold.
    pub service_level: Option<f64>,
    /// Calls of the last 15 minutes that count for the service level: answered, or given up
    /// after waiting past the threshold.
    pub recent_calls: i64,
    /// Share (0..=1) of those answered within the threshold; `None` without such calls.
    pub recent_service_level: Option<f64>,
}

/// One agent's tile on the panel.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AgentView {
    /// Agent number.
    pub extension: String,
    /// Display name.
    pub name: String,
    /// Agent state (`reserved` shows as ringing).
    pub state: AgentState,
    /// Time in the current state.
    pub state_for_ms: i64,
    /// Phone the agent is logged in on.
    pub device: Option<String>,
    /// The paused flag (also set while busy, applies when the agent frees up).
    pub paused: bool,
    /// Calls handled (plus sales) today.
    pub calls_today: i64,
    /// Queues the agent is a member of.
    pub queues: Vec<String>,
    /// The call the agent is reserved for, ringing or talking on.
    pub call: Option<AgentCall>,
}

/// The call on an agent's tile.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AgentCall {
    /// SIP Call-ID.
    pub call_id: String,
    /// Node holding the call.
    pub node: String,
    /// Caller number (user part of the From URI), when the live call is known.
    pub caller: Option<String>,
    /// Queue the call came through, if it was queued.
    pub queue: Option<String>,
    /// Since the agent answered (`in_call`) or was rung (`reserved`, `ringing`).
    pub duration_ms: i64,
}

/// One live call's row on the panel.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CallView {
    /// Node holding the call.
    pub node: String,
    /// SIP Call-ID.
    pub call_id: String,
    /// User part of the From URI.
    pub caller: String,
    /// User part of the Request-URI dialled.
    pub dialled: String,
    /// `waiting` (in a queue), `ringing` (agents offered), `talking` (bridged to an agent),
    /// or the live-call state (`ringing`, `answered`) for calls not in a queue.
    pub state: String,
    /// Queue the call waits or waited in.
    pub queue: Option<String>,
    /// Agent the call is offered to or talking with.
    pub agent: Option<String>,
    /// Since the call arrived.
    pub duration_ms: i64,
    /// Since it entered its queue.
    pub wait_ms: Option<i64>,
}

/// What every SSE stream and page reads: the snapshot and its JSON, serialised once.
#[derive(Debug, Clone, Default)]
pub struct Frame {
    /// `None` until the first read finished.
    pub snapshot: Option<Arc<Snapshot>>,
    /// `snapshot` as JSON (`null` before the first read).
    pub json: Arc<str>,
    /// The node is stopping: streams end.
    pub closing: bool,
}

/// The publishing side of the snapshot; cheap to clone, one per node (held in `AppState`).
#[derive(Debug, Clone)]
pub struct Hub {
    tx: watch::Sender<Frame>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    /// A hub with no snapshot yet.
    pub fn new() -> Self {
        let (tx, _) = watch::channel(Frame {
            snapshot: None,
            json: Arc::from("null"),
            closing: false,
        });
        Self { tx }
    }

    /// The current frame.
    pub fn current(&self) -> Frame {
        self.tx.borrow().clone()
    }

    /// A receiver that sees every frame published from now on.
    pub fn subscribe(&self) -> watch::Receiver<Frame> {
        self.tx.subscribe()
    }

    /// Publishes a snapshot (serialising it once for every viewer).
    pub fn publish(&self, snapshot: Snapshot) {
        let json = match serde_json::to_string(&snapshot) {
            Ok(json) => Arc::from(json),
            Err(err) => {
                tracing::error!(error = %err, "cannot encode the panel snapshot");
                return;
            }
        };
        self.tx.send_replace(Frame {
            snapshot: Some(Arc::new(snapshot)),
            json,
            closing: false,
        });
    }

    /// Tells every stream to end (the node is stopping); the last snapshot stays readable.
    pub fn close(&self) {
        self.tx.send_modify(|frame| frame.closing = true);
    }
}

/// Rows of one read, before they are folded into a snapshot.
#[derive(Debug, Clone, Default)]
pub struct Rows {
    /// `heartbeats` rows.
    pub heartbeats: Vec<Heartbeat>,
    /// `heartbeat_history` rows since the tracker's last read.
    pub history: Vec<HeartbeatPoint>,
    /// `agents` rows.
    pub agents: Vec<Agent>,
    /// `queues` rows.
    pub queues: Vec<Queue>,
    /// `queue_members` rows.
    pub members: Vec<Member>,
    /// `queue_entries` rows.
    pub entries: Vec<QueueEntry>,
    /// `live_calls` rows of every node.
    pub calls: Vec<LiveCall>,
    /// `queue_events` rows since the tracker's last read.
    pub events: Vec<QueueEvent>,
    /// `alerts` rows.
    pub alerts: Vec<ActiveAlert>,
}

/// Today's counters of one queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDay {
    /// `answer` events.
    pub answered: i64,
    /// Of those, answered within the service-level threshold.
    pub answered_in_time: i64,
    /// `abandon` events.
    pub abandoned: i64,
    /// `timeout` events (callers sent to the fallback).
    pub timed_out: i64,
    /// `transfer` events (callers an agent's phone sent on).
    pub transferred: i64,
}

/// What the snapshot task carries from one read to the next: the last 10 minutes of heartbeat
/// points and today's queue counters, with what it needs to read only newer rows.
#[derive(Debug, Clone)]
pub struct Tracker {
    service_level_ms: i64,
    /// Time of the last successful read; `None` before the first.
    last_read_ms: Option<i64>,
    /// Midnight UTC of the day the counters count.
    day_start_ms: i64,
    /// Per node: `at_ms` → (calls, cpu_milli).
    history: BTreeMap<String, BTreeMap<i64, (i64, i64)>>,
    /// Event ids already counted, with their time (forgotten once no read can return them).
    seen_events: HashMap<i64, i64>,
    /// The highest event id of recent reads: where later reads start.
    cursor: Cursor,
    /// (queue, call id) → enqueue time, for the service level.
    enqueued: HashMap<(String, String), i64>,
    today: BTreeMap<String, QueueDay>,
    /// The calls of the last [`SERVICE_WINDOW_MS`] that count for the service level.
    recent: Recent,
}

impl Tracker {
    /// A tracker that has read nothing yet.
    pub fn new(service_level: Duration) -> Self {
        Self {
            service_level_ms: i64::try_from(service_level.as_millis()).unwrap_or(i64::MAX),
            last_read_ms: None,
            day_start_ms: 0,
            history: BTreeMap::new(),
            seen_events: HashMap::new(),
            cursor: Cursor::default(),
            enqueued: HashMap::new(),
            today: BTreeMap::new(),
            recent: Recent::default(),
        }
    }

    /// Heartbeat history is read from here on.
    pub fn history_since(&self, now_ms: i64) -> i64 {
        match self.last_read_ms {
            Some(last) => (last - HISTORY_SLACK_MS).max(now_ms - HISTORY_WINDOW_MS),
            None => now_ms - HISTORY_WINDOW_MS,
        }
    }

    /// Queue events are read from here on.
    pub fn events_since(&self, now_ms: i64) -> i64 {
        let lookback = day_start(now_ms) - ENQUEUE_LOOKBACK_MS;
        match self.last_read_ms {
            Some(last) => (last - EVENT_SLACK_MS).max(lookback),
            None => lookback,
        }
    }

    /// How the read at `now_ms` asks for queue events: after the settled id once a read is
    /// settled (see `cursor`), by time ([`Tracker::events_since`]) until then.
    pub fn events_from(&self, now_ms: i64) -> EventsFrom {
        match self.cursor.settled(now_ms) {
            Some(id) => EventsFrom::AfterId(id),
            None => EventsFrom::Since(self.events_since(now_ms)),
        }
    }

    /// Folds one successful read's history points and events in.
    pub fn apply(&mut self, now_ms: i64, history: &[HeartbeatPoint], events: &[QueueEvent]) {
        let today = day_start(now_ms);
        if today != self.day_start_ms {
            self.day_start_ms = today;
            self.today.clear();
        }
        for point in history {
            self.history
                .entry(point.name.clone())
                .or_default()
                .insert(point.at_ms, (point.calls, point.cpu_milli));
        }
        let keep_from = now_ms - HISTORY_WINDOW_MS;
        self.history.retain(|_, points| {
            *points = points.split_off(&keep_from);
            !points.is_empty()
        });
        for event in events {
            if self.seen_events.insert(event.id, event.at_ms).is_some() {
                continue;
            }
            self.count(event);
        }
        self.last_read_ms = Some(now_ms);
        self.cursor.note(now_ms, events.iter().map(|e| e.id));
        // An id is kept while a read may return it again: by time (reads since a time) or
        // above the settled id (reads after it, a late write of an old event included).
        let forget_before = self.events_since(now_ms) - EVENT_SLACK_MS;
        let settled = self.cursor.settled(now_ms);
        self.seen_events.retain(|id, at_ms| {
            *at_ms >= forget_before || settled.is_some_and(|after| *id > after)
        });
        let forget_before = now_ms - ENQUEUE_FORGET_MS;
        self.enqueued.retain(|_, at_ms| *at_ms >= forget_before);
        self.recent.forget_before(now_ms - SERVICE_WINDOW_MS);
    }

    fn count(&mut self, event: &QueueEvent) {
        let key = (event.queue.clone(), event.call_id.clone());
        let is_today = event.at_ms >= self.day_start_ms;
        match event.event {
            QueueEventKind::Enqueue => {
                self.enqueued.insert(key, event.at_ms);
            }
            QueueEventKind::Answer => {
                let enqueued = self.enqueued.remove(&key);
                let in_time = enqueued.is_some_and(|at| event.at_ms - at <= self.service_level_ms);
                self.recent.note(&event.queue, event.at_ms, in_time);
                if is_today {
                    let day = self.today.entry(event.queue.clone()).or_default();
                    day.answered += 1;
                    if in_time {
                        day.answered_in_time += 1;
                    }
                }
            }
            QueueEventKind::Abandon | QueueEventKind::Timeout => {
                let enqueued = self.enqueued.remove(&key);
                // A caller who gave up within the threshold is not counted against the
                // service level; one whose enqueue was not seen is.
                let short = enqueued.is_some_and(|at| event.at_ms - at <= self.service_level_ms);
                if !short {
                    self.recent.note(&event.queue, event.at_ms, false);
                }
                if is_today {
                    let day = self.today.entry(event.queue.clone()).or_default();
                    if event.event == QueueEventKind::Abandon {
                        day.abandoned += 1;
                    } else {
                        day.timed_out += 1;
                    }
                }
            }
            QueueEventKind::Offer
            | QueueEventKind::NoAnswer
            | QueueEventKind::Complete
            | QueueEventKind::Listen => {}
            QueueEventKind::Transfer => {
                if is_today {
                    self.today
                        .entry(event.queue.clone())
                        .or_default()
                        .transferred += 1;
                }
            }
        }
    }

    /// Calls of `queue` over the last [`SERVICE_WINDOW_MS`] before the last read.
    pub fn queue_window(&self, queue: &str) -> ServiceWindow {
        self.recent.window(queue)
    }

    /// Today's counters of `queue`.
    pub fn queue_day(&self, queue: &str) -> QueueDay {
        self.today.get(queue).copied().unwrap_or_default()
    }

    /// The sparklines of `node` ending at `now_ms`: (calls, CPU percent) per 10 s bucket.
    pub fn sparks(&self, node: &str, now_ms: i64) -> (Vec<Option<i64>>, Vec<Option<f64>>) {
        let mut calls = vec![None; SPARK_POINTS];
        let mut cpu: Vec<Option<i64>> = vec![None; SPARK_POINTS];
        if let Some(points) = self.history.get(node) {
            let start = now_ms - HISTORY_WINDOW_MS;
            for (&at_ms, &(c, milli)) in points.range(start..=now_ms) {
                let bucket = usize::try_from((at_ms - start) / SPARK_BUCKET_MS)
                    .unwrap_or(0)
                    .min(SPARK_POINTS - 1);
                calls[bucket] = Some(calls[bucket].map_or(c, |v: i64| v.max(c)));
                cpu[bucket] = Some(cpu[bucket].map_or(milli, |v| v.max(milli)));
            }
        }
        let cpu = cpu.into_iter().map(|v| v.map(cpu_pct)).collect();
        (calls, cpu)
    }
}

/// Midnight UTC of the day `now_ms` falls in.
pub fn day_start(now_ms: i64) -> i64 {
    now_ms.div_euclid(DAY_MS) * DAY_MS
}

fn cpu_pct(milli: i64) -> f64 {
    milli as f64 / 10.0
}

/// The queues and their members as of a config version. They are configuration (every
/// configuration write bumps the version, in the same transaction), so a read asks for the
/// version and reads them again only when it moved.
#[derive(Debug, Default)]
struct Config {
    version: Option<i64>,
    queues: Vec<Queue>,
    members: Vec<Member>,
}

impl Config {
    /// The version first, then the rows: a change landing between the two is newer than the
    /// version kept, and read again at the next read.
    async fn refresh(&mut self, store: &Store) -> Result<(), StoreError> {
        let version = store.config_version().await?;
        if self.version != Some(version) {
            let queues = store.queues().await?;
            let members = store.members(None).await?;
            *self = Config {
                version: Some(version),
                queues,
                members,
            };
        }
        Ok(())
    }
}

/// One read of everything the panel shows.
async fn read(
    store: &Store,
    tracker: &Tracker,
    config: &mut Config,
    now_ms: i64,
) -> Result<Rows, StoreError> {
    config.refresh(store).await?;
    Ok(Rows {
        heartbeats: store.heartbeats().await?,
        history: store.history(tracker.history_since(now_ms)).await?,
        agents: store.agents().await?,
        queues: config.queues.clone(),
        members: config.members.clone(),
        entries: store.entries().await?,
        calls: store.live_calls(None).await?,
        events: match tracker.events_from(now_ms) {
            EventsFrom::Since(since_ms) => store.queue_events(None, since_ms).await?,
            EventsFrom::AfterId(id) => store.queue_events_after(id).await?,
        },
        alerts: store.active_alerts().await?,
    })
}

/// Copies the snapshot's numbers into the `/metrics` gauges.
fn export(metrics: &Metrics, snapshot: &Snapshot) {
    let mut by_state = [0i64; 7];
    for agent in &snapshot.agents {
        by_state[state_index(agent.state)] += 1;
    }
    metrics.set_agents(&by_state);
    let queues: Vec<crate::metrics::QueueGauges<'_>> = snapshot
        .queues
        .iter()
        .map(|q| crate::metrics::QueueGauges {
            queue: &q.name,
            waiting: q.waiting,
            longest_wait: Duration::from_millis(
                u64::try_from(q.longest_wait_ms.unwrap_or(0)).unwrap_or(0),
            ),
            agents: q.by_state,
        })
        .collect();
    metrics.set_queues(&queues);
}

/// Reads SQL every `cfg.interval` and publishes the snapshot on `hub` until `stop` resolves;
/// then closes the hub so panel streams end. Never panics on database errors: it keeps the
/// last snapshot and marks it stale.
pub async fn run(
    hub: Hub,
    store: Store,
    metrics: Metrics,
    cfg: SnapshotConfig,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut tracker = Tracker::new(cfg.service_level);
    let mut config = Config::default();
    let mut seq = 0u64;
    let mut failing = false;
    let mut tick = tokio::time::interval(cfg.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        let now = now_ms();
        let result = tokio::select! {
            _ = &mut stop => break,
            result = read(&store, &tracker, &mut config, now) => result,
        };
        metrics.panel_snapshot_read(result.is_ok());
        match result {
            Ok(rows) => {
                tracker.apply(now, &rows.history, &rows.events);
                seq += 1;
                let snapshot = build(&cfg, seq, now, &rows, &tracker);
                export(&metrics, &snapshot);
                hub.publish(snapshot);
                if failing {
                    tracing::info!("panel snapshot reads the database again");
                    failing = false;
                }
            }
            Err(err) => {
                if !failing {
                    tracing::warn!(error = %err, "panel snapshot read failed; showing the last one as stale");
                    failing = true;
                }
                if let Some(last) = hub.current().snapshot.filter(|s| !s.stale) {
                    seq += 1;
                    let mut stale = (*last).clone();
                    stale.seq = seq;
                    stale.stale = true;
                    stale.stale_since_ms = Some(now);
                    hub.publish(stale);
                }
            }
        }
    }
    hub.close();
}

#[cfg(test)]
mod tests;
