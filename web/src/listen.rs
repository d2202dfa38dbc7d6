//! Listen-in and whisper over HTTP: `POST /api/v1/calls/{call_id}/listen` on any node (the
//! node finds the call, here or on another node), and `POST /internal/v1/calls/{call_id}/listen`,
//! the route another node forwards to (nodes only: the cluster secret or a loopback peer).
//!
//! | answer | when |
//! |--------|------|
//! | 202 | the supervisor's phone is being dialled |
//! | 400 | `mode` is not `listen` or `whisper`, or `device` is not a phone extension |
//! | 404 | no such call in the cluster |
//! | 409 | the call is not bridged to an agent, the supervisor's phone is not registered, or someone already whispers on it |
//! | 503 | the node holding the call cannot be reached |

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::api::AppState;

/// What the supervisor hears and says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenMode {
    /// The supervisor hears the caller and the agent; nobody hears the supervisor.
    Listen,
    /// As `Listen`, and the agent (only) also hears the supervisor.
    Whisper,
}

impl ListenMode {
    /// `"listen"` or `"whisper"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ListenMode::Listen => "listen",
            ListenMode::Whisper => "whisper",
        }
    }

    /// Reads `"listen"` or `"whisper"`.
    pub fn parse(s: &str) -> Option<ListenMode> {
        match s {
            "listen" => Some(ListenMode::Listen),
            "whisper" => Some(ListenMode::Whisper),
            _ => None,
        }
    }
}

/// Body of both listen routes.
#[derive(Debug, serde::Deserialize)]
pub struct ListenBody {
    /// The supervisor's phone (device extension).
    pub device: String,
    /// `"listen"` (the default) or `"whisper"`.
    #[serde(default)]
    pub mode: Option<String>,
}

/// A device extension as phones register it: 1 to 32 letters, digits, `_`, `-`, `.` or `+`.
fn valid_device(device: &str) -> bool {
    (1..=32).contains(&device.len())
        && device
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.+".contains(c))
}

fn bad_request(reason: &'static str) -> Response {
    tracing::debug!(reason, "listen request refused");
    let body = serde_json::json!({ "error": reason });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// Checks the body: the mode and the device, or why it is refused.
fn parse(body: &ListenBody) -> Result<ListenMode, &'static str> {
    let mode = match body.mode.as_deref() {
        None => ListenMode::Listen,
        Some(m) => ListenMode::parse(m).ok_or("mode must be \"listen\" or \"whisper\"")?,
    };
    if !valid_device(&body.device) {
        return Err("device must be a phone extension");
    }
    Ok(mode)
}

/// `POST /api/v1/calls/{call_id}/listen`: dials `device` to listen to the call, wherever it is.
pub async fn listen(
    State(state): State<AppState>,
    Path(call_id): Path<String>,
    Json(body): Json<ListenBody>,
) -> Response {
    let mode = match parse(&body) {
        Ok(mode) => mode,
        Err(reason) => return bad_request(reason),
    };
    tracing::info!(call_id = %call_id, device = %body.device, mode = mode.as_str(), "listen-in requested");
    match state.api.listen(call_id, body.device, mode).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /internal/v1/calls/{call_id}/listen`: the same for a call held by this node, asked by
/// the node that took the request.
pub async fn listen_internal(
    State(state): State<AppState>,
    Path(call_id): Path<String>,
    Json(body): Json<ListenBody>,
) -> Response {
    let mode = match parse(&body) {
        Ok(mode) => mode,
        Err(reason) => return bad_request(reason),
    };
    match state.api.listen_here(call_id, body.device, mode).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests;
