//! The panel page as HTML, built as Rust strings: every value that comes from the database or
//! a user (agent and queue names, caller numbers, node names, Call-IDs, the user's name) goes
//! through [`escape`]. The page's first paint is the current snapshot; `panel.js` then redraws
//! the same structure (same ids, classes and `data-testid`s) from each SSE event.

use std::fmt::Write as _;

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

/// The label the BLF grid shows for an agent state (`reserved` shows as ringing).
pub fn state_label(state: &str) -> &'static str {
    match state {
        "logged_out" => "logged out",
        "available" => "available",
        "reserved" | "ringing" => "ringing",
        "in_call" => "in call",
        "wrap_up" => "wrap-up",
        "paused" => "paused",
        _ => "unknown",
    }
}

/// The whole page.
pub fn page(viewer: &Viewer, snapshot: Option<&Snapshot>) -> String {
    let mut h = String::with_capacity(16 * 1024);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    if let Some(csrf) = &viewer.csrf {
        let _ = writeln!(h, "<meta name=\"csrf\" content=\"{}\">", escape(csrf));
    }
    h.push_str("<title>callfleet panel</title>\n");
    // No favicon request (and no 404 in the browser console).
    h.push_str("<link rel=\"icon\" href=\"data:,\">\n");
    h.push_str("<link rel=\"stylesheet\" href=\"/static/panel.css\">\n");
    h.push_str("<script src=\"/static/panel.js\" defer></script>\n</head>\n<body>\n");

    h.push_str("<header>\n<h1>callfleet</h1>\n");
    let (status, class) = match snapshot {
        None => ("waiting for the first snapshot".to_owned(), "status stale"),
        Some(s) if s.stale => (format!("stale (served by {})", s.served_by), "status stale"),
        Some(s) => (format!("live (served by {})", s.served_by), "status"),
    };
    let _ = writeln!(
        h,
        "<span id=\"status\" class=\"{class}\" data-testid=\"status\">{}</span>",
        escape(&status)
    );
    h.push_str("<label>my phone <input id=\"my-device\" data-testid=\"my-device\" size=\"8\"");
    if let Some(device) = &viewer.device {
        let _ = write!(h, " value=\"{}\"", escape(device));
    }
    h.push_str("></label>\n");
    if let Some(name) = &viewer.name {
        let _ = writeln!(
            h,
            "<span id=\"user\">{}</span> <form method=\"post\" action=\"/logout\" class=\"inline\">\
             {}<button type=\"submit\">log out</button></form>",
            escape(name),
            viewer
                .csrf
                .as_ref()
                .map(|t| format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", escape(t)))
                .unwrap_or_default()
        );
    }
    h.push_str(
        "<span id=\"message\" data-testid=\"message\" role=\"status\"></span>\n</header>\n<main>\n",
    );

    let empty = Snapshot::default_for_page();
    let s = snapshot.unwrap_or(&empty);
    h.push_str(&super::strip::alerts(&s.alerts, s.taken_at_ms));

    h.push_str(
        "<section id=\"nodes\">\n<h2>Nodes</h2>\n<table>\n<thead><tr><th>node</th><th>role</th>\
         <th>state</th><th>calls</th><th>CPU</th><th>load</th><th>shed</th>\
         <th>last 10 min</th></tr></thead>\n<tbody id=\"nodes-body\">\n",
    );
    for n in &s.nodes {
        node_row(&mut h, n);
    }
    h.push_str("</tbody>\n</table>\n</section>\n");

    h.push_str(
        "<section id=\"queues\">\n<h2>Queues</h2>\n<table>\n<thead><tr><th>queue</th>\
         <th>waiting</th><th>longest wait</th><th>available</th><th>busy</th><th>paused</th>\
         <th>answered</th><th>abandoned</th>",
    );
    let _ = write!(h, "<th>service level ({} s)</th>", s.service_level_s);
    h.push_str("</tr></thead>\n<tbody id=\"queues-body\">\n");
    for q in &s.queues {
        queue_row(&mut h, q);
    }
    h.push_str("</tbody>\n</table>\n</section>\n");

    h.push_str(
        "<section id=\"agents\">\n<h2>Agents</h2>\n<div id=\"agents-grid\" class=\"grid\">\n",
    );
    for a in &s.agents {
        agent_tile(&mut h, a);
    }
    h.push_str("</div>\n</section>\n");

    h.push_str(
        "<section id=\"calls\">\n<h2>Live calls</h2>\n<table>\n<thead><tr><th>node</th>\
         <th>caller</th><th>dialled</th><th>state</th><th>queue</th><th>agent</th>\
         <th>duration</th><th></th></tr></thead>\n<tbody id=\"calls-body\">\n",
    );
    for c in &s.calls {
        call_row(&mut h, c);
    }
    h.push_str("</tbody>\n</table>\n</section>\n</main>\n</body>\n</html>\n");
    h
}

fn node_row(h: &mut String, n: &NodeView) {
    let mut state = vec![if n.alive { "alive" } else { "dead" }];
    if n.draining {
        state.push("draining");
    }
    if n.refusing {
        state.push("refusing");
    }
    let _ = writeln!(
        h,
        "<tr data-testid=\"node-{name}\" class=\"{cls}\"><td>{name}</td><td>{role}</td>\
         <td>{state}</td><td>{calls} / {cap}</td><td>{cpu:.1} %</td><td>{load:.2}</td>\
         <td>{shed}</td><td class=\"spark\"></td></tr>",
        name = escape(&n.name),
        cls = if n.alive { "alive" } else { "dead" },
        role = escape(&n.role),
        state = state.join(", "),
        calls = n.calls,
        cap = n.capacity,
        cpu = n.cpu_pct,
        load = n.load1,
        shed = n.shed_level,
    );
}

fn queue_row(h: &mut String, q: &QueueView) {
    let _ = writeln!(
        h,
        "<tr data-testid=\"queue-{name}\"><td>{name}</td><td>{waiting}</td><td>{longest}</td>\
         <td>{available}</td><td>{busy}</td><td>{paused}</td><td>{answered}</td>\
         <td>{abandoned}</td><td>{sl}</td></tr>",
        name = escape(&q.name),
        waiting = q.waiting,
        longest = q.longest_wait_ms.map(clock).unwrap_or_else(|| "-".into()),
        available = q.available,
        busy = q.busy,
        paused = q.paused,
        answered = q.answered_today,
        abandoned = q.abandoned_today,
        sl = q
            .service_level
            .map(|v| format!("{:.0} %", v * 100.0))
            .unwrap_or_else(|| "-".into()),
    );
}

fn agent_tile(h: &mut String, a: &AgentView) {
    let state = a.state.as_str();
    let ext = escape(&a.extension);
    let _ = write!(
        h,
        "<div class=\"tile {state}\" data-testid=\"agent-{ext}\" data-state=\"{state}\">\
         <div class=\"who\"><b>{ext}</b> {name}</div><div class=\"what\">{label} {for_}</div>",
        name = escape(&a.name),
        label = state_label(state),
        for_ = clock(a.state_for_ms),
    );
    if let Some(call) = &a.call {
        let _ = write!(
            h,
            "<div class=\"call\">{} on {} {}</div>",
            escape(call.caller.as_deref().unwrap_or("call")),
            escape(&call.node),
            clock(call.duration_ms)
        );
    }
    let busy = a.state.holds_call();
    let pause = if a.paused { "unpause" } else { "pause" };
    let _ = writeln!(
        h,
        "<div class=\"actions\"><button data-action=\"pause\" data-ext=\"{ext}\" \
         data-paused=\"{paused}\" data-testid=\"pause-{ext}\">{pause}</button>\
         <button data-action=\"logout\" data-ext=\"{ext}\" data-testid=\"logout-{ext}\"{dis}>\
         log out</button></div></div>",
        paused = a.paused,
        dis = if busy || a.state.as_str() == "logged_out" {
            " disabled"
        } else {
            ""
        },
    );
}

fn call_row(h: &mut String, c: &CallView) {
    let id = escape(&c.call_id);
    let _ = writeln!(
        h,
        "<tr data-testid=\"call-{id}\" data-call=\"{id}\"><td>{node}</td><td>{caller}</td>\
         <td>{dialled}</td><td>{state}</td><td>{queue}</td><td>{agent}</td><td>{dur}</td>\
         <td><button data-action=\"listen\" data-call=\"{id}\" data-testid=\"listen-{id}\"{dis}>\
         Listen</button> <button data-action=\"whisper\" data-call=\"{id}\" \
         data-testid=\"whisper-{id}\"{dis}>Whisper</button></td></tr>",
        node = escape(&c.node),
        caller = escape(&c.caller),
        dialled = escape(&c.dialled),
        state = escape(&c.state),
        queue = escape(c.queue.as_deref().unwrap_or("")),
        agent = escape(c.agent.as_deref().unwrap_or("")),
        dur = clock(c.duration_ms),
        // Only a call bridged to an agent can be listened to.
        dis = if c.state == "talking" {
            ""
        } else {
            " disabled title=\"listen-in starts once an agent answers\""
        },
    );
}

impl Snapshot {
    /// An empty snapshot for the page before the first read.
    fn default_for_page() -> Snapshot {
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
