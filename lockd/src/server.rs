//! The lockd HTTP server: routes, request checks, and how backend outcomes become statuses.
//! Every lock route is behind `auth` (requests signed with the cluster secret); `/healthz`
//! is open and says only whether the backend answers and which kind it is.

mod auth;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use axum::{Json, Router};
use tokio::net::TcpListener;

use crate::api::{
    AcquireRequest, ConflictResponse, ErrorResponse, HealthResponse, LeaseResponse, ReleaseRequest,
    RenewRequest,
};
use crate::backend::{AcquireOutcome, Backend, BackendError, Grant, ReleaseOutcome, RenewOutcome};
use crate::request::{check_token, InvalidRequest, LockKey, Owner, Ttl};

pub use auth::Auth;

/// The lockd routes over `backend`, the lock routes open only to requests signed under
/// `auth` (see [`crate::api`] for the shapes), and `GET /metrics` ([`crate::metrics`],
/// counts and durations only, no key or holder) counting what they do. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` (as [`serve`] does) so failures are
/// counted per source address.
pub fn router(backend: Backend, auth: Arc<Auth>) -> Router {
    let metrics = crate::metrics::Metrics::new();
    let locks = Router::new()
        .route("/v1/locks/{key}", post(acquire).put(renew).delete(release))
        .route_layer(axum::middleware::from_fn_with_state(
            auth,
            auth::authenticate,
        ));
    Router::new()
        .merge(locks)
        .route("/healthz", get(health))
        .fallback(not_found)
        .with_state(backend.metered(&metrics))
        .merge(crate::metrics::routes(metrics.clone()))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            crate::metrics::time_request,
        ))
}

/// The runtime lockd serves on. With one worker (what `callfleet lockd` runs by default) it
/// is a current-thread runtime: requests, their memcached commands and the replies are all
/// handled on the thread that runs it, with no hand-off between threads; measured with
/// `bench/lockd`, that is the cheapest per request, and one thread serves tens of thousands
/// of requests a second. With more, a multi-thread runtime whose threads are named `name`.
pub fn runtime(workers: usize, name: &str) -> io::Result<tokio::runtime::Runtime> {
    if workers <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name(name)
            .enable_all()
            .build()
    }
}

/// Serves the lockd API on `listener` until `shutdown` completes, then lets requests in
/// progress finish.
pub async fn serve<F>(
    listener: TcpListener,
    backend: Backend,
    auth: Arc<Auth>,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    // Replies are small and latency is the point: no Nagle delay.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    let app = router(backend, auth).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn acquire(
    State(backend): State<Backend>,
    key: Result<Path<String>, PathRejection>,
    body: Result<Json<AcquireRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let key = LockKey::parse(&key?.0)?;
    let Json(req) = body?;
    let owner = Owner::parse(&req.owner)?;
    let ttl = Ttl::from_ms(req.ttl_ms)?;
    Ok(match backend.acquire(&key, &owner, ttl).await? {
        AcquireOutcome::Granted(grant) => {
            tracing::debug!(%key, %owner, token = grant.token, "acquired");
            lease(&grant)
        }
        AcquireOutcome::Held { holder } => conflict(Some(holder)),
    })
}

async fn renew(
    State(backend): State<Backend>,
    key: Result<Path<String>, PathRejection>,
    body: Result<Json<RenewRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let key = LockKey::parse(&key?.0)?;
    let Json(req) = body?;
    let owner = Owner::parse(&req.owner)?;
    let token = check_token(req.token)?;
    let ttl = Ttl::from_ms(req.ttl_ms)?;
    Ok(match backend.renew(&key, &owner, token, ttl).await? {
        RenewOutcome::Renewed(grant) => lease(&grant),
        RenewOutcome::Lost { holder } => {
            tracing::debug!(%key, %owner, token, "renew of a lost lease");
            conflict(holder)
        }
    })
}

async fn release(
    State(backend): State<Backend>,
    key: Result<Path<String>, PathRejection>,
    body: Result<Json<ReleaseRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let key = LockKey::parse(&key?.0)?;
    let Json(req) = body?;
    let owner = Owner::parse(&req.owner)?;
    let token = check_token(req.token)?;
    Ok(match backend.release(&key, &owner, token).await? {
        ReleaseOutcome::Released => {
            tracing::debug!(%key, %owner, token, "released");
            StatusCode::NO_CONTENT.into_response()
        }
        ReleaseOutcome::Lost { holder } => conflict(holder),
    })
}

async fn health(State(backend): State<Backend>) -> Result<Json<HealthResponse>, ApiError> {
    backend.check().await?;
    // The kind only: the memcached address is nobody's business who is not a lockd.
    let kind = backend.url().split("://").next().unwrap_or_default();
    Ok(Json(HealthResponse {
        status: "ok".into(),
        backend: kind.into(),
    }))
}

async fn not_found(method: Method, uri: Uri) -> Response {
    let message = format!("no such endpoint: {method} {}", uri.path());
    error_response(StatusCode::NOT_FOUND, "not_found", message)
}

fn lease(grant: &Grant) -> Response {
    let body = LeaseResponse {
        token: grant.token,
        expires_in_ms: u64::try_from(grant.expires_in.as_millis()).unwrap_or(u64::MAX),
    };
    (StatusCode::OK, Json(body)).into_response()
}

fn conflict(holder: Option<String>) -> Response {
    (StatusCode::CONFLICT, Json(ConflictResponse { holder })).into_response()
}

fn error_response(status: StatusCode, error: &str, message: String) -> Response {
    let body = ErrorResponse {
        error: error.into(),
        message,
    };
    (status, Json(body)).into_response()
}

/// Why a request failed: shown to the client as an [`ErrorResponse`]; backend failures are
/// also logged with their cause.
#[derive(Debug)]
enum ApiError {
    Invalid(InvalidRequest),
    Path(PathRejection),
    Json(JsonRejection),
    Backend(BackendError),
}

impl From<InvalidRequest> for ApiError {
    fn from(e: InvalidRequest) -> Self {
        Self::Invalid(e)
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        Self::Path(e)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        Self::Json(e)
    }
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> Self {
        Self::Backend(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let bad = |message| error_response(StatusCode::BAD_REQUEST, "bad_request", message);
        match self {
            Self::Invalid(e) => bad(e.to_string()),
            Self::Path(e) => bad(format!("bad lock key in the path: {}", e.body_text())),
            Self::Json(e) => bad(format!("bad JSON body: {}", e.body_text())),
            Self::Backend(e) => {
                tracing::warn!(error = %chain(&e), "lock backend failed");
                let (status, code) = if e.is_unavailable() {
                    (StatusCode::SERVICE_UNAVAILABLE, "backend_unavailable")
                } else {
                    (StatusCode::INTERNAL_SERVER_ERROR, "backend_error")
                };
                error_response(status, code, e.to_string())
            }
        }
    }
}

/// `e: cause: cause...`, for logs.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests;
