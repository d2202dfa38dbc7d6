//! The JSON bodies of the lockd HTTP API, shared by the server and [`crate::LockClient`].
//!
//! | request | body | answers |
//! |---|---|---|
//! | `POST /v1/locks/{key}` | [`AcquireRequest`] | 200 [`LeaseResponse`], 409 [`ConflictResponse`] |
//! | `PUT /v1/locks/{key}` | [`RenewRequest`] | 200 [`LeaseResponse`], 409 [`ConflictResponse`] |
//! | `DELETE /v1/locks/{key}` | [`ReleaseRequest`] | 204, 409 [`ConflictResponse`] |
//! | `GET /healthz` | | 200 [`HealthResponse`], 503 [`ErrorResponse`] |
//!
//! Any request can also get 400 (bad key, JSON or values) or 503 (backend down) with an
//! [`ErrorResponse`]. The lock requests must carry `X-Callfleet-Signature`
//! (`callfleet_sign`): without a valid one the answer is 401 (`unauthenticated`), and 429
//! (`too_many_failures`, with `Retry-After`) to a source address past 10 refusals a minute.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcquireRequest {
    pub owner: String,
    pub ttl_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewRequest {
    pub owner: String,
    pub token: u64,
    pub ttl_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    pub owner: String,
    pub token: u64,
}

/// A lease granted (acquire) or extended (renew).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseResponse {
    /// Fencing token: larger than every token an earlier holder of the key got.
    pub token: u64,
    /// Lifetime left when lockd answered.
    pub expires_in_ms: u64,
}

/// 409: the key is held by someone else (`holder`), or the caller's lease is gone (`null`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictResponse {
    pub holder: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthResponse {
    /// Always `"ok"`.
    pub status: String,
    /// `memory` or `memcached`.
    pub backend: String,
}

/// 4xx/5xx: `error` is a stable code (`bad_request`, `not_found`, `unauthenticated`,
/// `too_many_failures`, `backend_unavailable`, `backend_error`), `message` says what was wrong
/// for a human.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: String,
    pub message: String,
}
