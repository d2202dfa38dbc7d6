//! [`ApiError`]: what an HTTP handler can fail with, mapped to a status and a clean JSON body.

use std::net::SocketAddr;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Any error a [`NodeApi`](crate::NodeApi) implementation wraps as the cause of an [`ApiError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Failure of an HTTP request.
///
/// The client sees only [`ApiError::public_message`]; the cause (`source`) is logged where the
/// error is turned into a response, never sent over the wire.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A dependency the request needs cannot be reached (e.g. the database); worth retrying.
    #[error("{what} unavailable")]
    Unavailable {
        /// The dependency, e.g. `"database"`.
        what: &'static str,
        /// Why it is unavailable.
        #[source]
        source: BoxError,
    },
    /// An operation inside the node failed.
    #[error("{what} failed")]
    Internal {
        /// The operation, e.g. `"list live calls"`.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: BoxError,
    },
    /// The request cannot be carried out in the current state (e.g. the agent is in a call).
    #[error("conflict: {reason}")]
    Conflict {
        /// Shown to the client.
        reason: &'static str,
    },
    /// The named thing does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. `"agent"`.
        what: &'static str,
    },
    /// No credentials, or credentials nobody issued (401).
    #[error("authentication required")]
    Unauthorized,
    /// The request's principal may not use this route, or a wrong cluster secret was sent.
    #[error("admin request refused (peer {peer:?})")]
    Forbidden {
        /// The peer address, when the server was run with connect info.
        peer: Option<SocketAddr>,
    },
}

impl ApiError {
    /// A dependency (`what`, e.g. `"database"`) cannot be reached: 503.
    pub fn unavailable(what: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            what,
            source: source.into(),
        }
    }

    /// An operation (`what`) failed inside the node: 500.
    pub fn internal(what: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Internal {
            what,
            source: source.into(),
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
        }
    }

    /// What the client is told: no causes, paths or addresses.
    pub fn public_message(&self) -> String {
        match self {
            Self::Unavailable { what, .. } => format!("{what} unavailable"),
            Self::Internal { .. } => "internal error".to_owned(),
            Self::Forbidden { .. } => "forbidden".to_owned(),
            Self::Unauthorized => "authentication required".to_owned(),
            Self::Conflict { reason } => (*reason).to_owned(),
            Self::NotFound { what } => format!("{what} not found"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            Self::Forbidden { peer } => tracing::warn!(?peer, "request refused"),
            Self::Unauthorized => tracing::debug!("request without valid credentials"),
            Self::Conflict { .. } | Self::NotFound { .. } => {
                tracing::debug!(error = %self, "request refused")
            }
            _ => tracing::error!(
                error = &self as &(dyn std::error::Error + 'static),
                status = status.as_u16(),
                "HTTP request failed"
            ),
        }
        let body = serde_json::json!({ "error": self.public_message() });
        (status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests;
