//! `GET /readyz`: whether this node takes new calls now (200) or not (503), and why, for
//! `callfleet health`, keepalived and load balancers. Public, like `/healthz`: it tells a
//! state, never data.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::api::AppState;

pub use callfleet_vocab::{Readiness, ReadyState};

/// `/readyz`, open to everyone.
pub fn routes() -> Router<AppState> {
    Router::new().route("/readyz", get(readyz))
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.api.readiness() {
        Some(ready) => {
            let status = StatusCode::from_u16(ready.http_status())
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            (status, Json(ready)).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": "this node does not report readiness"})),
        )
            .into_response(),
    }
}
