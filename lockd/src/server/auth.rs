//! Every lock request must be signed with the cluster secret (`callfleet_sign`): an
//! unsigned, wrongly signed, stale or replayed request gets 401 before any backend sees it, and
//! a source address that keeps sending them gets 429 for the rest of a minute.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use callfleet_sign::{ClusterKey, Strike, Strikes, Verifier, HEADER, WINDOW};

use super::error_response;

/// Largest request body read for its signature: lock requests are well under 1 KiB.
const MAX_BODY: usize = 16 * 1024;

/// What lockd checks requests with: the cluster's key, the replay record, and failures per
/// source address.
#[derive(Debug)]
pub struct Auth {
    verifier: Verifier,
    strikes: Strikes,
}

impl Auth {
    /// Requests signed with `key`, within [`WINDOW`] of this host's clock.
    pub fn new(key: ClusterKey) -> Arc<Self> {
        Arc::new(Self {
            verifier: Verifier::new(key, WINDOW),
            strikes: Strikes::default(),
        })
    }
}

/// The middleware in front of the lock routes.
pub(super) async fn authenticate(
    State(auth): State<Arc<Auth>>,
    request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    if let Some(ip) = peer {
        if let Err(wait) = auth.strikes.check(ip, Instant::now()) {
            let mut response = error_response(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_failures",
                "too many unauthenticated requests from this address".into(),
            );
            if let Ok(v) = HeaderValue::from_str(&wait.as_secs().to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return response;
        }
    }
    let Some(signature) = request.headers().get(HEADER).cloned() else {
        return refuse(
            &auth,
            peer,
            "the request is not signed with the cluster secret",
        );
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "bad_request",
            format!("a lock request body is at most {MAX_BODY} bytes"),
        );
    };
    let target = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path(), |pq| pq.as_str());
    let now = callfleet_sign::now_ms();
    match auth.verifier.verify(
        signature.as_bytes(),
        parts.method.as_str(),
        target,
        &bytes,
        now,
    ) {
        Ok(()) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(e) => refuse(&auth, peer, &e.to_string()),
    }
}

/// 401, counted against the source; logged on its first refusal in a window and when it is
/// turned away, so a flood does not flood the log.
fn refuse(auth: &Auth, peer: Option<IpAddr>, why: &str) -> Response {
    if let Some(ip) = peer {
        match auth.strikes.strike(ip, Instant::now()) {
            Strike::First => tracing::warn!(peer = %ip, reason = why, "lock request refused"),
            Strike::LimitReached => {
                tracing::warn!(peer = %ip, "too many refused lock requests: turning this address away for a minute")
            }
            Strike::Again => tracing::debug!(peer = %ip, reason = why, "lock request refused"),
        }
    }
    error_response(StatusCode::UNAUTHORIZED, "unauthenticated", why.to_owned()).into_response()
}
