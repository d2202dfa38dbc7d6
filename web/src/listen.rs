//! Listen-in, whisper and barge over HTTP: `POST /api/v1/calls/{call_id}/listen` on any node (the
//! node finds the call, here or on another node), and `POST /internal/v1/calls/{call_id}/listen`,
//! the route another node forwards to (nodes only: a request signed with the cluster secret).
//!
//! Which phone is dialled is decided by who asks ([`allowed_device`]), as a call centre
//! would: a supervisor's own phone only (the user's `device`, set with
//! `callfleet user add --device`); an admin's own phone too, or any phone when the admin has
//! none; any phone for the node's operator (a signed request or the operator token). The
//! audio of a call never goes to a phone its asker does not sit at.
//!
//! | answer | when |
//! |--------|------|
//! | 202 | the supervisor's phone is being dialled |
//! | 400 | `mode` is not `listen`, `whisper` or `barge`, `device` is not a phone extension, or no phone is named where one must be |
//! | 403 | the phone named is not the asker's own, or a supervisor has no phone set |
//! | 404 | no such call in the cluster |
//! | 409 | the call is not bridged to an agent, the supervisor's phone is not registered, or another supervisor already speaks on it (whisper or barge) |
//! | 503 | the node holding the call cannot be reached |

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use callfleet_store::UserRole;

use crate::api::AppState;
use crate::auth::Principal;

pub use callfleet_vocab::{ListenMode, ListenRequest as ListenBody};

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
        Some(m) => m
            .parse()
            .map_err(|_| "mode must be \"listen\", \"whisper\" or \"barge\"")?,
    };
    if body.device.as_deref().is_some_and(|d| !valid_device(d)) {
        return Err("device must be a phone extension");
    }
    Ok(mode)
}

/// Why a phone may not be dialled for this asker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceRefusal {
    /// The asker has a phone of their own and named another (403).
    NotYours,
    /// A supervisor without a phone set (403).
    NoPhone,
    /// Nobody's own phone to default to, and none named (400).
    Unnamed,
    /// This kind of caller does not listen in (403).
    NotAllowed,
}

impl DeviceRefusal {
    fn response(self) -> Response {
        let (status, reason) = match self {
            DeviceRefusal::NotYours => (
                StatusCode::FORBIDDEN,
                "you may listen in only from your own phone (your user's device)",
            ),
            DeviceRefusal::NoPhone => (
                StatusCode::FORBIDDEN,
                "your user has no phone: an admin sets it with `callfleet user add --device`",
            ),
            DeviceRefusal::Unnamed => (StatusCode::BAD_REQUEST, "device is required"),
            DeviceRefusal::NotAllowed => (StatusCode::FORBIDDEN, "forbidden"),
        };
        tracing::warn!(reason, "listen request refused: device");
        (status, Json(serde_json::json!({ "error": reason }))).into_response()
    }
}

/// The phone to dial for `asker`, who named `asked` (or none): a supervisor's own phone only;
/// an admin's own phone, or any phone when the admin has none; any phone for a node or the
/// operator.
pub fn allowed_device(asker: &Principal, asked: Option<&str>) -> Result<String, DeviceRefusal> {
    let own_only = |own: &str| match asked {
        None => Ok(own.to_owned()),
        Some(d) if d == own => Ok(own.to_owned()),
        Some(_) => Err(DeviceRefusal::NotYours),
    };
    let named = || asked.map(str::to_owned).ok_or(DeviceRefusal::Unnamed);
    match asker {
        Principal::User {
            device: Some(own), ..
        } => own_only(own),
        Principal::User {
            role: UserRole::Supervisor,
            device: None,
            ..
        } => Err(DeviceRefusal::NoPhone),
        Principal::User {
            role: UserRole::Admin,
            device: None,
            ..
        } => named(),
        Principal::Node(_) => named(),
        Principal::Token { .. } => Err(DeviceRefusal::NotAllowed),
    }
}

/// `POST /api/v1/calls/{call_id}/listen`: dials the asker's phone (see [`allowed_device`]) to
/// listen to the call, wherever it is.
pub async fn listen(
    State(state): State<AppState>,
    Extension(asker): Extension<Principal>,
    Path(call_id): Path<String>,
    Json(body): Json<ListenBody>,
) -> Response {
    let mode = match parse(&body) {
        Ok(mode) => mode,
        Err(reason) => return bad_request(reason),
    };
    let device = match allowed_device(&asker, body.device.as_deref()) {
        Ok(device) => device,
        Err(refusal) => return refusal.response(),
    };
    tracing::info!(call_id = %call_id, device = %device, mode = mode.as_str(), actor = %asker.actor(), "listen-in requested");
    match state.api.listen(call_id, device, mode).await {
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
    let Some(device) = body.device else {
        return bad_request("device is required");
    };
    match state.api.listen_here(call_id, device, mode).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests;
