//! The supervisor panel: a server-rendered page, a small script and a Server-Sent Events
//! stream of the cluster snapshot (see [`crate::snapshot`]). The same on every node; no build
//! step (the script and style sheet are compiled into the binary).
//!
//! | route | access | answer |
//! |-------|--------|--------|
//! | `GET /` | page (supervisors and admins with a session) | the panel page, first painted from the current snapshot |
//! | `GET /api/v1/panel/events` | read | `text/event-stream`: an event `snapshot` (the whole snapshot as JSON, `id` = its `seq`) at once and at each new snapshot (at shed level 1 and up at most one per `shed.panel_interval`, 5 s), a comment keep-alive every 10 s; ends when the node stops |
//! | `GET /api/v1/panel/snapshot` | read | the current snapshot as JSON (`null` before the first read) |
//! | `GET /static/panel.js`, `GET /static/panel.css` | public | the page's script and style sheet |
//!
//! [`routes`] has them all; [`page_routes`], [`read_routes`] and [`public_routes`] are the
//! same routes split by access level, for the router to guard each group.
//!
//! The page's buttons call routes of the JSON API: pause and unpause
//! (`POST /api/v1/agents/{ext}/pause` `{"paused": bool}`), force logout
//! (`POST /api/v1/agents/{ext}/logout`, refused with 409 while the agent holds a call: the
//! button is disabled then) and listen-in (`POST /api/v1/calls/{call_id}/listen`
//! `{"device": <my phone>, "mode": "listen"}`, enabled while the call is talking to an agent),
//! each with the session's `X-CSRF-Token`.
//!
//! Viewers never touch SQL: the page and every stream read the [`Hub`](crate::snapshot::Hub)
//! in [`AppState`], which the node's snapshot task fills once per second.

pub mod html;
pub mod strip;

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use futures_util::stream::{self, Stream};
use tokio::sync::watch;

use crate::api::AppState;
use crate::auth::Principal;
use crate::metrics::ViewerGuard;
use crate::snapshot::Frame;

/// The page's script, served as `/static/panel.js`.
pub const PANEL_JS: &str = include_str!("../static/panel.js");
/// The page's style sheet, served as `/static/panel.css`.
pub const PANEL_CSS: &str = include_str!("../static/panel.css");

/// Scripts and styles only from this node; no inline script; not framed.
const CSP: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Keep-alive comment interval on the event stream (proxies drop idle connections).
const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// Every panel route (access levels in the module table).
pub fn routes() -> Router<AppState> {
    page_routes().merge(read_routes()).merge(public_routes())
}

/// Access level page: `GET /`.
pub fn page_routes() -> Router<AppState> {
    Router::new().route("/", get(page))
}

/// Access level read: the snapshot stream and the snapshot as JSON.
pub fn read_routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/panel/events", get(events))
        .route("/api/v1/panel/snapshot", get(snapshot_json))
}

/// Public: the page's script and style sheet.
pub fn public_routes() -> Router<AppState> {
    Router::new()
        .route("/static/panel.js", get(script))
        .route("/static/panel.css", get(style))
}

/// `GET /`: the page, painted from the current snapshot, with the user's name, CSRF token and
/// phone when the request carries a session.
async fn page(State(state): State<AppState>, principal: Option<Extension<Principal>>) -> Response {
    let frame = state.panel.current();
    let viewer = match principal {
        Some(Extension(Principal::User {
            name,
            device,
            csrf,
            role,
        })) => html::Viewer {
            name: Some(name),
            csrf: Some(csrf),
            device,
            admin: role == callfleet_store::UserRole::Admin,
        },
        _ => html::Viewer::default(),
    };
    let body = html::page(&viewer, frame.snapshot.as_deref());
    (
        [
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        Html(body),
    )
        .into_response()
}

/// `GET /api/v1/panel/snapshot`: the current snapshot as JSON.
async fn snapshot_json(State(state): State<AppState>) -> Response {
    let frame = state.panel.current();
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        frame.json.to_string(),
    )
        .into_response()
}

/// `GET /api/v1/panel/events`: the snapshot stream.
async fn events(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let viewer = Viewer {
        rx: state.panel.subscribe(),
        _counted: state.metrics.panel_viewer(),
        first: true,
        shed: state.shed.clone(),
        sent: None,
    };
    Sse::new(snapshot_stream(viewer)).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

/// One open stream: its receiver, and its place in `callfleet_panel_viewers` while it lives.
struct Viewer {
    rx: watch::Receiver<Frame>,
    _counted: ViewerGuard,
    first: bool,
    /// At shed level 1 or more, at most one snapshot per `shed.panel_interval`.
    shed: crate::shed::Shed,
    /// When the last snapshot was sent.
    sent: Option<tokio::time::Instant>,
}

impl Viewer {
    /// Waits out the rest of the slow interval while the node sheds load.
    async fn pace(&self) {
        if self.shed.gate.level() == 0 {
            return;
        }
        if let Some(sent) = self.sent {
            tokio::time::sleep_until(sent + self.shed.panel_interval).await;
        }
    }
}

/// The current snapshot at once (when there is one), then each new one; ends when the node
/// is stopping. Each event reuses the JSON serialised once by the snapshot task.
fn snapshot_stream(viewer: Viewer) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(viewer, |mut v| async move {
        loop {
            if v.first {
                v.first = false;
            } else {
                v.pace().await;
                if v.rx.changed().await.is_err() {
                    return None;
                }
            }
            let frame = v.rx.borrow_and_update().clone();
            if frame.closing {
                return None;
            }
            if let Some(snapshot) = &frame.snapshot {
                let event = Event::default()
                    .event("snapshot")
                    .id(snapshot.seq.to_string())
                    .data(&*frame.json);
                v.sent = Some(tokio::time::Instant::now());
                return Some((Ok(event), v));
            }
        }
    })
}

async fn script() -> impl IntoResponse {
    static_file("text/javascript; charset=utf-8", PANEL_JS)
}

async fn style() -> impl IntoResponse {
    static_file("text/css; charset=utf-8", PANEL_CSS)
}

fn static_file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests;
