//! Shedding the reporting load: at shed level 1 or more a heavy report request (a report page
//! with results, a CSV export) is sent with `307 Temporary Redirect` to the least-loaded idle
//! node's same URL, or refused with `503` and `Retry-After` when no node is idle. The panel's
//! event stream slows down at the same levels ([`Shed::panel_interval`]).
//!
//! The choice is pure ([`decide`] over the cluster view the node hands over as [`Peer`]s);
//! [`gate`] is the thin middleware around it.
//!
//! **No loops**: the redirect adds `shed_from=<this node>` to the query; a request carrying it
//! is never sent on again: the node answers it, or refuses it when it is busy too.
//!
//! **Sessions**: sessions live in SQL, so a session is good on every node, but the browser
//! sends its cookie (host-only, `SameSite=Strict`) only to the host that set it. Behind one
//! host name (a load balancer in front of the nodes) nothing changes for the user; when nodes
//! are reached by their own addresses the user lands on the idle node's login page once, and
//! goes on to the same report after logging in.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use callfleet_vocab::{ShedGate, Work};

use crate::api::AppState;
use crate::metrics::shed::ShedAction;

/// The query parameter a shed redirect adds: the node that sent the request on.
pub const MARKER: &str = "shed_from";

/// What the HTTP layer knows of shedding: the node's level and what a shed request is told.
#[derive(Debug, Clone)]
pub struct Shed {
    /// This node's name (the redirect's [`MARKER`]).
    pub me: String,
    /// The node's level (set by its heartbeat task).
    pub gate: ShedGate,
    /// `Retry-After` of a refused report request.
    pub retry_after: Duration,
    /// At level 1 or more the panel's event stream sends at most one snapshot per this.
    pub panel_interval: Duration,
}

impl Default for Shed {
    fn default() -> Self {
        Self {
            me: String::new(),
            gate: ShedGate::new(),
            retry_after: Duration::from_secs(30),
            panel_interval: Duration::from_secs(5),
        }
    }
}

/// A node of the cluster view, as far as a shed redirect cares.
#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    /// Its name.
    pub name: String,
    /// `http://ip:port` or `https://ip:port` (from its services), without a trailing slash.
    pub base: String,
    /// Its shed level.
    pub level: u8,
    /// Its calls over capacity (1.0 = full).
    pub utilisation: f32,
    /// Its CPU in percent.
    pub cpu_pct: f32,
    /// Its heartbeat is fresh.
    pub alive: bool,
    /// It is draining (about to stop).
    pub draining: bool,
}

/// What to do with a heavy report request.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Answer it here.
    Serve,
    /// Send it on: the full URL (with [`MARKER`]).
    Redirect {
        /// The target node's name.
        to: String,
        /// Where.
        url: String,
    },
    /// Refuse it (503): no idle node, or it was sent here already.
    Refuse,
}

/// The idle node to send a report to: alive, not draining, at level 0, not `me`; the least
/// loaded by calls over capacity, then CPU, then name (so every node picks the same).
pub fn choose<'a>(me: &str, peers: &'a [Peer]) -> Option<&'a Peer> {
    peers
        .iter()
        .filter(|p| p.name != me && p.alive && !p.draining && p.level == 0)
        .min_by(|a, b| {
            a.utilisation
                .total_cmp(&b.utilisation)
                .then(a.cpu_pct.total_cmp(&b.cpu_pct))
                .then_with(|| a.name.cmp(&b.name))
        })
}

/// The verdict on a heavy report request for `path` with `query` (without `?`) at shed
/// `level` on node `me`.
pub fn decide(level: u8, me: &str, peers: &[Peer], path: &str, query: &str) -> Verdict {
    if Work::HeavyReport.allowed_at(level) {
        return Verdict::Serve;
    }
    if was_sent(query) {
        return Verdict::Refuse;
    }
    let Some(peer) = choose(me, peers) else {
        return Verdict::Refuse;
    };
    let marker = serde_urlencoded::to_string([(MARKER, me)]).unwrap_or_default();
    let url = if query.is_empty() {
        format!("{}{path}?{marker}", peer.base)
    } else {
        format!("{}{path}?{query}&{marker}", peer.base)
    };
    Verdict::Redirect {
        to: peer.name.clone(),
        url,
    }
}

/// Whether the query carries [`MARKER`]: another node sent this request here.
pub fn was_sent(query: &str) -> bool {
    query
        .split('&')
        .any(|pair| pair.split('=').next() == Some(MARKER))
}

/// The query without [`MARKER`] (for links the page offers: a new request may be sent on).
pub fn strip_marker(query: &str) -> String {
    query
        .split('&')
        .filter(|pair| !pair.is_empty() && pair.split('=').next() != Some(MARKER))
        .collect::<Vec<_>>()
        .join("&")
}

/// Middleware of the heavy report routes: serves, redirects or refuses per [`decide`].
pub async fn gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let level = state.shed.gate.level();
    if Work::HeavyReport.allowed_at(level) {
        return next.run(request).await;
    }
    let peers = state.api.shed_peers();
    let uri = request.uri();
    let verdict = decide(
        level,
        &state.shed.me,
        &peers,
        uri.path(),
        uri.query().unwrap_or(""),
    );
    match verdict {
        Verdict::Serve => next.run(request).await,
        Verdict::Redirect { to, url } => {
            state.metrics.shed().action(ShedAction::ReportRedirected);
            tracing::debug!(level, to = %to, path = %uri.path(), "heavy report sent to an idle node");
            redirect(&url)
        }
        Verdict::Refuse => {
            state.metrics.shed().action(ShedAction::ReportRefused);
            tracing::debug!(level, path = %uri.path(), "heavy report refused: no idle node");
            refuse(request.headers(), state.shed.retry_after)
        }
    }
}

fn redirect(url: &str) -> Response {
    match HeaderValue::from_str(url) {
        Ok(location) => (
            StatusCode::TEMPORARY_REDIRECT,
            [
                (header::LOCATION, location),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
        )
            .into_response(),
        // A peer address always makes a valid header; refuse rather than panic if not.
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// How a refused request is answered: for a browser, a page; for a program asking for JSON,
/// JSON; else plain text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// `text/html`.
    Html,
    /// `application/json`.
    Json,
    /// `text/plain`.
    Text,
}

/// The body a request's `Accept` asks for.
pub fn body_for(headers: &HeaderMap) -> Body {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains("text/html") {
        Body::Html
    } else if accept.contains("application/json") {
        Body::Json
    } else {
        Body::Text
    }
}

const REFUSED: &str =
    "Every node of the cluster is busy, and reports wait so that calls do not suffer.";

/// `503` with `Retry-After` and a body for who is asking.
pub fn refuse(headers: &HeaderMap, retry_after: Duration) -> Response {
    let secs = retry_after.as_secs().max(1);
    let (content_type, body) = match body_for(headers) {
        Body::Html => (
            "text/html; charset=utf-8",
            format!(
                "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
                 <title>Reports are paused</title></head><body><main>\
                 <h1>Reports are paused</h1><p>{REFUSED}</p>\
                 <p>Try again in {secs} seconds. Calls, the panel and the admin pages work as \
                 usual.</p><p><a href=\"/reports\">All reports</a></p></main></body></html>\n"
            ),
        ),
        Body::Json => (
            "application/json",
            serde_json::json!({ "error": REFUSED, "retry_after_s": secs }).to_string(),
        ),
        Body::Text => (
            "text/plain; charset=utf-8",
            format!("{REFUSED} Try again in {secs} seconds.\n"),
        ),
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::RETRY_AFTER, HeaderValue::from(secs)),
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests;
