//! `GET /readyz`: whether this node takes new calls now (200) or not (503), and why, for
//! `callfleet health`, keepalived and load balancers. Public, like `/healthz`: it tells a
//! state, never data.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::api::AppState;

/// Whether a node takes new calls, as `GET /readyz` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadyState {
    /// Up, writing its heartbeat, taking (or redirecting) new calls.
    Ready,
    /// Draining: no new calls, exiting once its calls have ended.
    Draining,
    /// Refusing new calls (CPU at `lb.refuse_cpu`, or shed level 3).
    Refusing,
    /// Its heartbeat writes fail: the database is unreachable, and other nodes count it out.
    DatabaseUnreachable,
}

impl ReadyState {
    /// The state's name in JSON and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadyState::Ready => "ready",
            ReadyState::Draining => "draining",
            ReadyState::Refusing => "refusing",
            ReadyState::DatabaseUnreachable => "database_unreachable",
        }
    }
}

/// The body of `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    /// The state.
    pub state: ReadyState,
    /// One line for a person: the reason, with the figures behind it.
    pub detail: String,
}

impl Readiness {
    /// The HTTP status `/readyz` answers with: 200 when ready, else 503.
    pub fn status(&self) -> StatusCode {
        if self.state == ReadyState::Ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

/// `/readyz`, open to everyone.
pub fn routes() -> Router<AppState> {
    Router::new().route("/readyz", get(readyz))
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.api.readiness() {
        Some(ready) => (ready.status(), Json(ready)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": "this node does not report readiness"})),
        )
            .into_response(),
    }
}
