//! The panel page: `templates/panel.html` in the layout shared with the admin pages
//! ([`crate::page`]). Every value that comes from the database or a user (agent and queue
//! names, caller numbers, node names, Call-IDs, the user's name) is text the template escapes.
//! The page's first paint is the current snapshot; `panel.js` then redraws the same structure
//! (same ids, classes and `data-testid`s) from each SSE event. [`escape`] is the same escaping
//! for the few pages still built as strings.

use askama::Template;

use crate::page::{Area, Chrome};
use crate::snapshot::{AgentView, CallView, NodeView, QueueView, Snapshot};

/// Who is looking at the page, when the request is authenticated.
#[derive(Debug, Clone, Default)]
pub struct Viewer {
    /// User name, shown in the header.
    pub name: Option<String>,
    /// The session's CSRF token, embedded as `<meta name="csrf">` for the page's POSTs.
    pub csrf: Option<String>,
    /// The user's own phone, pre-filled as the listen-in device.
    pub device: Option<String>,
    /// The user is an admin: the navigation shows the admin pages.
    pub admin: bool,
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// `1:05`, `12:00`, `1:02:03`: a duration in milliseconds as the panel shows it.
pub fn clock(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// The panel page as the template sees it: the layout's [`Chrome`] and the four sections'
/// rows, each value as text (the template escapes them).
#[derive(Template)]
#[template(path = "panel.html")]
struct PanelPage {
    chrome: Chrome,
    status: String,
    status_class: &'static str,
    device: Option<String>,
    service_level_s: u64,
    alerts: Vec<super::strip::AlertRow>,
    nodes: Vec<NodeRow>,
    queues: Vec<QueueRow>,
    agents: Vec<AgentTile>,
    calls: Vec<CallRow>,
}

struct NodeRow {
    name: String,
    class: &'static str,
    role: String,
    state: String,
    calls: String,
    cpu: String,
    load: String,
    shed: String,
}

struct QueueRow {
    name: String,
    waiting: String,
    longest: String,
    available: String,
    busy: String,
    paused: String,
    answered: String,
    abandoned: String,
    transferred: String,
    service_level: String,
}

struct AgentTile {
    ext: String,
    name: String,
    state: String,
    label: &'static str,
    since: String,
    call: Option<String>,
    paused: bool,
    pause_label: &'static str,
    logout_disabled: bool,
}

struct CallRow {
    id: String,
    node: String,
    caller: String,
    dialled: String,
    state: String,
    queue: String,
    agent: String,
    duration: String,
    /// Only a call bridged to an agent can be listened to.
    talking: bool,
}

/// The whole page, through the layout shared with the admin pages.
pub fn page(viewer: &Viewer, snapshot: Option<&Snapshot>) -> String {
    let (status, status_class) = match snapshot {
        None => ("waiting for the first snapshot".to_owned(), "status stale"),
        Some(s) if s.stale => (format!("stale (served by {})", s.served_by), "status stale"),
        Some(s) => (format!("live (served by {})", s.served_by), "status"),
    };
    let empty = Snapshot::default_for_page();
    let s = snapshot.unwrap_or(&empty);
    let page = PanelPage {
        chrome: Chrome {
            title: "Panel".to_owned(),
            area: Area::Panel,
            user: viewer.name.clone(),
            csrf: viewer.csrf.clone(),
            admin: viewer.admin,
            script: Some("/static/panel.js"),
        },
        status,
        status_class,
        device: viewer.device.clone(),
        service_level_s: s.service_level_s,
        alerts: super::strip::rows(&s.alerts, s.taken_at_ms),
        nodes: s.nodes.iter().map(node_row).collect(),
        queues: s.queues.iter().map(queue_row).collect(),
        agents: s.agents.iter().map(agent_tile).collect(),
        calls: s.calls.iter().map(call_row).collect(),
    };
    page.render().unwrap_or_else(|e| {
        // Rendering writes to a String and every value is plain text: this does not happen.
        tracing::error!(error = %e, "cannot render the panel page");
        String::from("<!DOCTYPE html><title>callfleet</title><p>The page cannot be shown.</p>")
    })
}

fn node_row(n: &NodeView) -> NodeRow {
    let mut state = vec![if n.alive { "alive" } else { "dead" }];
    if n.draining {
        state.push("draining");
    }
    if n.refusing {
        state.push("refusing");
    }
    NodeRow {
        name: n.name.clone(),
        class: if n.alive { "alive" } else { "dead" },
        role: n.role.clone(),
        state: state.join(", "),
        calls: format!("{} / {}", n.calls, n.capacity),
        cpu: format!("{:.1} %", n.cpu_pct),
        load: format!("{:.2}", n.load1),
        shed: n.shed_level.to_string(),
    }
}

fn queue_row(q: &QueueView) -> QueueRow {
    QueueRow {
        name: q.name.clone(),
        waiting: q.waiting.to_string(),
        longest: q.longest_wait_ms.map(clock).unwrap_or_else(|| "-".into()),
        available: q.available.to_string(),
        busy: q.busy.to_string(),
        paused: q.paused.to_string(),
        answered: q.answered_today.to_string(),
        abandoned: q.abandoned_today.to_string(),
        transferred: q.transferred_today.to_string(),
        service_level: q
            .service_level
            .map(|v| format!("{:.0} %", v * 100.0))
            .unwrap_or_else(|| "-".into()),
    }
}

fn agent_tile(a: &AgentView) -> AgentTile {
    AgentTile {
        ext: a.extension.clone(),
        name: a.name.clone(),
        state: a.state.to_string(),
        label: a.state.label(),
        since: clock(a.state_for_ms),
        call: a.call.as_ref().map(|call| {
            format!(
                "{} on {} {}",
                call.caller.as_deref().unwrap_or("call"),
                call.node,
                clock(call.duration_ms)
            )
        }),
        paused: a.paused,
        pause_label: if a.paused { "unpause" } else { "pause" },
        logout_disabled: a.state.holds_call() || a.state == callfleet_store::AgentState::LoggedOut,
    }
}

fn call_row(c: &CallView) -> CallRow {
    CallRow {
        id: c.call_id.clone(),
        node: c.node.clone(),
        caller: c.caller.clone(),
        dialled: c.dialled.clone(),
        state: c.state.clone(),
        queue: c.queue.clone().unwrap_or_default(),
        agent: c.agent.clone().unwrap_or_default(),
        duration: clock(c.duration_ms),
        talking: c.state == "talking",
    }
}

impl Snapshot {
    /// An empty snapshot for the page before the first read.
    pub(crate) fn default_for_page() -> Snapshot {
        Snapshot {
            seq: 0,
            taken_at_ms: 0,
            served_by: String::new(),
            stale: true,
            stale_since_ms: None,
            service_level_s: 20,
            nodes: Vec::new(),
            queues: Vec::new(),
            agents: Vec::new(),
            calls: Vec::new(),
            alerts: Vec::new(),
        }
    }
}
