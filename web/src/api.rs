//! Routes and handlers of a node's HTTP API: `/healthz`, `/api/v1/*` and `/metrics`.
//!
//! | route                       | answer                                              |
//! |-----------------------------|-----------------------------------------------------|
//! | `GET /healthz`              | 200 `ok`                                            |
//! | `GET /readyz`               | 200 / 503 JSON: takes new calls or not, and why ([`crate::ready`]) |
//! | `GET /api/v1/nodes`         | 200 JSON array: the cluster view ([`NodeApi::nodes`]) |
//! | `GET /api/v1/calls`         | 200 JSON array: this node's live calls              |
//! | `GET /api/v1/calls/{id}/quality` | 200 JSON array: the RTP quality of each leg of the calls with this Call-ID, from any node (`call_quality`) |
//! | `POST /api/v1/admin/drain`  | 204 (level `Admin`)                                 |
//! | `GET /api/v1/agents`        | 200 JSON array: agents and their states             |
//! | `POST /api/v1/agents/{ext}/login` `{"device"}` | 204; 404 unknown agent or device; 409 busy (admin) |
//! | `POST /api/v1/agents/{ext}/logout` | 204; 404 unknown agent; 409 in a call (admin)   |
//! | `GET /metrics`              | 200 OpenMetrics text                                |
//! | `POST /api/v1/calls/{id}/listen` `{"device","mode"}` | 202 dialling the supervisor (level `Supervise`; [`crate::listen`]) |
//! | `POST /internal/v1/calls/{id}/listen` | the same for a call held here (level `Internal`) |
//! | `GET, POST /login`, `POST /logout` | panel sessions ([`crate::login`])            |
//! | `GET, POST /admin/*`       | the admin pages (level `AdminPage`; [`crate::admin`]) |
//! | `GET /calls`                | the call legs of the last 24 h with their RTP quality (level `Page`; [`crate::calls`]) |
//! | `GET /provision/{file}`   | a phone's configuration file (its own HTTP Basic credentials or a provisioning token; [`crate::provision`]) |
//! | `POST /api/v1/proxies/{name}/checkin` | 200 JSON: an office proxy's address is now the request's source (its own bearer token; [`crate::proxy`]) |
//! | `GET /admin/proxies` | the office proxies and their last check-in (level `AdminPage`) |
//! | `GET /reports/*`           | the report pages and CSV (level `Page`; [`crate::reports`]); at shed level 1 and up `307` to an idle node or `503` ([`crate::shed`]) |
//!
//! Every route but `/healthz`, `/login`, `/provision/*` and the proxy check-in (which check their own credentials) is mounted behind [`auth::guard`] with an access
//! level ([`Access`]); without credentials the answer is 401, with too few rights 403.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};

use crate::auth::{self, Access, Principal};
use crate::error::ApiError;
use crate::metrics::Metrics;

/// A boxed, sendable future: what [`NodeApi`] methods return so the trait stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Header carrying the signature of a request signed with the cluster secret (other nodes,
/// the CLI): see `callfleet_sign`.
pub const SIGNATURE_HEADER: &str = callfleet_sign::HEADER;

/// What the HTTP layer needs from the running node.
pub trait NodeApi: Send + Sync + 'static {
    /// Snapshot of the cluster view, already JSON (an array of node objects).
    fn nodes(&self) -> serde_json::Value;
    /// Live calls of this node (a JSON array of `LiveCall`).
    fn calls(&self) -> BoxFuture<'static, Result<serde_json::Value, ApiError>>;
    /// Marks this node draining: it takes no new calls and lets current ones finish.
    fn drain(&self) -> BoxFuture<'static, Result<(), ApiError>>;
    /// Agents and their states (a JSON array).
    fn agents(&self) -> BoxFuture<'static, Result<serde_json::Value, ApiError>>;
    /// Logs agent `ext` in on phone `device` (hot-desking).
    fn agent_login(&self, ext: String, device: String) -> BoxFuture<'static, Result<(), ApiError>>;
    /// Logs agent `ext` out.
    fn agent_logout(&self, ext: String) -> BoxFuture<'static, Result<(), ApiError>>;
    /// Dials phone `device` to listen to (or whisper on) call `call_id`, wherever in the
    /// cluster it is held; `Ok` once the phone is being dialled.
    fn listen(
        &self,
        call_id: String,
        device: String,
        mode: crate::listen::ListenMode,
    ) -> BoxFuture<'static, Result<(), ApiError>> {
        let _ = (call_id, device, mode);
        Box::pin(async { Err(listen_unsupported()) })
    }
    /// The `devices` row for phone `ext` with `password`: its HA1 digests for this node's
    /// `sip.realm`, made the way `callfleet device add` makes them (the admin pages store it).
    fn device_credentials(
        &self,
        ext: &str,
        display_name: &str,
        password: &str,
    ) -> Result<callfleet_store::Device, ApiError> {
        let _ = (ext, display_name, password);
        let cause = std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "this node does not make device credentials",
        );
        Err(ApiError::internal("make device credentials", cause))
    }
    /// The SIP addresses of the live main nodes (this one included), for the registrars a
    /// provisioned phone gets ([`crate::provision`]); empty when the node has no cluster view.
    fn registrars(&self) -> Vec<std::net::SocketAddr> {
        Vec::new()
    }
    /// Whether this node takes new calls now, for `GET /readyz`; `None` when it cannot say
    /// (the route then answers 404).
    fn readiness(&self) -> Option<crate::ready::Readiness> {
        None
    }
    /// This node's name (`node.name`): whose files this node serves itself.
    fn node_name(&self) -> String {
        String::new()
    }
    /// `GET path` on node `holder`, signed with the cluster secret, with the asker's `Range`
    /// header; its answer streamed back as it comes (status, type, length, range).
    fn forward_get(
        &self,
        holder: String,
        path: String,
        range: Option<String>,
    ) -> BoxFuture<'static, Result<axum::response::Response, ApiError>> {
        let _ = (holder, path, range);
        Box::pin(async {
            let cause = std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "this node does not forward requests",
            );
            Err(ApiError::internal("forward to another node", cause))
        })
    }
    /// The cluster view as a shed redirect needs it (this node included); empty when the node
    /// has none (heavy reports are then refused at shed level 1 and up).
    fn shed_peers(&self) -> Vec<crate::shed::Peer> {
        Vec::new()
    }
    /// The SIP trace of call `call_id` while it is in progress, wherever in the cluster it is
    /// held (asked of the holding node over signed HTTP); `None` when no node holds it.
    fn live_trace(
        &self,
        call_id: String,
    ) -> BoxFuture<'static, Result<Option<callfleet_vocab::CallTrace>, ApiError>> {
        let _ = call_id;
        Box::pin(async { Ok(None) })
    }
    /// [`NodeApi::live_trace`] for a call held by this node only (asked by another node).
    fn live_trace_here(
        &self,
        call_id: String,
    ) -> BoxFuture<'static, Option<callfleet_vocab::CallTrace>> {
        let _ = call_id;
        Box::pin(async { None })
    }
    /// [`NodeApi::listen`] for a call held by this node only (asked by another node).
    fn listen_here(
        &self,
        call_id: String,
        device: String,
        mode: crate::listen::ListenMode,
    ) -> BoxFuture<'static, Result<(), ApiError>> {
        let _ = (call_id, device, mode);
        Box::pin(async { Err(listen_unsupported()) })
    }
}

/// What a node without listen-in answers.
fn listen_unsupported() -> ApiError {
    let cause = std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "this node does not serve listen-in",
    );
    ApiError::internal("listen in on a call", cause)
}

/// Body of `POST /api/v1/agents/{ext}/login`.
#[derive(Debug, serde::Deserialize)]
pub struct LoginBody {
    /// The phone (device extension) to log in on.
    pub device: String,
}

/// State shared by every handler; cheap to clone (`Arc`s).
#[derive(Clone)]
pub struct AppState {
    /// The node behind the API.
    pub api: Arc<dyn NodeApi>,
    /// The node's metrics registry, served on `/metrics`.
    pub metrics: Metrics,
    /// Checks requests signed with the cluster secret (other nodes, the CLI) and remembers
    /// the ones taken; `None` without a secret: no signed request is taken.
    pub nodes: Option<Arc<callfleet_sign::Verifier>>,
    /// Refused credentials per source address.
    pub strikes: Arc<callfleet_sign::Strikes>,
    /// The node's operator token (`cfo_…`), taken from this host only; `None`: none.
    pub operator_token: Option<String>,
    /// The shared database: users, sessions, tokens, and what the panel and the CRM API read
    /// and tune (agents, queues, members, VIP callers).
    pub store: callfleet_store::Store,
    /// The panel's cluster snapshot, filled once per second by the node's snapshot task
    /// ([`crate::snapshot::run`]); panel pages and streams read only this.
    pub panel: crate::snapshot::Hub,
    /// Whether a loopback peer counts as the node's operator (`http.trust_loopback`).
    pub trust_loopback: bool,
    /// Failed-login counters of this node.
    pub limiter: Arc<crate::auth::LoginLimiter>,
    /// Where login passwords are checked ([`crate::login::LOGIN_SLOTS`] at once at most).
    pub password_checks: Arc<crate::login::PasswordChecks>,
    /// The XML-RPC methods `/RPC2` dispatches to ([`crate::rpc::handlers`]).
    pub rpc: dxr_server::HandlerMap,
    /// Whether the node serves HTTPS itself: every response carries HSTS, every cookie
    /// `Secure`, and only an `https://` origin is the node's own ([`crate::tls`]).
    pub tls: bool,
    /// The node's shed level and what a shed request is told ([`crate::shed`]).
    pub shed: crate::shed::Shed,
    /// Phones that configure themselves (`GET /provision/{file}`, [`crate::provision`]).
    pub provisioning: crate::provision::Provisioning,
}

impl AppState {
    /// Bundles the node, its metrics, the cluster secret (`None` or empty: no signed request
    /// is taken) and the shared database. The secret's strength is the config's to check.
    pub fn new(
        api: Arc<dyn NodeApi>,
        metrics: Metrics,
        secret: Option<String>,
        store: callfleet_store::Store,
    ) -> Self {
        let provisioning = crate::provision::Provisioning::new(
            secret.as_deref(),
            crate::provision::Policy::default(),
        );
        let nodes = secret.filter(|s| !s.trim().is_empty()).map(|s| {
            let key = callfleet_sign::ClusterKey::new(&s);
            Arc::new(callfleet_sign::Verifier::new(key, callfleet_sign::WINDOW))
        });
        Self {
            api,
            metrics,
            nodes,
            strikes: Arc::new(callfleet_sign::Strikes::default()),
            operator_token: None,
            panel: crate::snapshot::Hub::new(),
            trust_loopback: true,
            limiter: Arc::new(crate::auth::LoginLimiter::default()),
            password_checks: Arc::new(crate::login::PasswordChecks::default()),
            rpc: crate::rpc::handlers(&store),
            store,
            tls: false,
            shed: crate::shed::Shed::default(),
            provisioning,
        }
    }

    /// Sets where provisioned phones' extensions come from and how many a source may make
    /// (`[provisioning]`).
    pub fn with_provisioning(mut self, policy: crate::provision::Policy) -> Self {
        self.provisioning = self.provisioning.with_policy(policy);
        self
    }

    /// Marks the node as serving HTTPS itself (`http.tls_cert`): HSTS, `Secure` cookies, and
    /// `https://` as the only origin of its own pages.
    pub fn with_tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// Shares the node's shed level and its settings with the handlers.
    pub fn with_shed(mut self, shed: crate::shed::Shed) -> Self {
        self.shed = shed;
        self
    }

    /// Sets whether loopback peers count as the node's operator (default: yes).
    pub fn with_trust_loopback(mut self, trust: bool) -> Self {
        self.trust_loopback = trust;
        self
    }

    /// Sets the operator token this node takes from its own host (`cfo_…`).
    pub fn with_operator_token(mut self, token: String) -> Self {
        self.operator_token = Some(token);
        self
    }
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("metrics", &self.metrics)
            .field("nodes", &self.nodes)
            .field(
                "operator_token",
                &self.operator_token.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

/// The node's HTTP router.
///
/// Serve it with `into_make_service_with_connect_info::<SocketAddr>()` so admin routes can see
/// the peer address; without it every admin request needs the secret.
pub fn router(state: AppState) -> Router {
    let tls = state.tls;
    let guarded = |routes: Router<AppState>, access: Access| -> Router<AppState> {
        routes.route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            move |s: State<AppState>, r: axum::extract::Request, n: axum::middleware::Next| {
                auth::guard(s, access, r, n)
            },
        ))
    };
    let read = Router::new()
        .route("/api/v1/nodes", get(nodes))
        .route("/api/v1/calls", get(calls))
        .route("/api/v1/calls/{call_id}/quality", get(call_quality))
        .route("/api/v1/agents", get(agents))
        .route("/metrics", get(metrics));
    let operate = Router::new()
        .route("/api/v1/agents/{ext}/login", post(agent_login))
        .route("/api/v1/agents/{ext}/logout", post(agent_logout));
    let admin = Router::new().route("/api/v1/admin/drain", post(drain));
    let supervise = Router::new().route(
        "/api/v1/calls/{call_id}/listen",
        post(crate::listen::listen),
    );
    let internal = Router::new()
        .route(
            "/internal/v1/calls/{call_id}/listen",
            post(crate::listen::listen_internal),
        )
        .merge(crate::trace::internal_routes())
        .merge(crate::playback::internal_routes());
    let router = Router::new()
        .route("/healthz", get(healthz))
        .merge(crate::ready::routes())
        .merge(crate::login::public_routes())
        .merge(crate::provision::routes())
        .merge(crate::proxy::routes())
        .merge(guarded(read, Access::Read))
        .merge(guarded(operate, Access::Operate))
        .merge(guarded(admin, Access::Admin))
        .merge(guarded(supervise, Access::Supervise))
        .merge(guarded(internal, Access::Internal))
        .merge(guarded(crate::login::session_routes(), Access::Page))
        .merge(guarded(crate::admin::routes(), Access::AdminPage))
        .merge(guarded(crate::proxy::admin_routes(), Access::AdminPage))
        .merge(guarded(crate::crm::read_routes(), Access::Read))
        .merge(guarded(crate::crm::operate_routes(), Access::Operate))
        .merge(guarded(crate::crm::tune_routes(), Access::Tune))
        .merge(guarded(crate::rpc::routes(), Access::Tune))
        .merge(guarded(crate::panel::page_routes(), Access::Page))
        .merge(guarded(crate::calls::page_routes(), Access::Page))
        .merge(guarded(crate::trace::page_routes(), Access::Page))
        .merge(guarded(crate::trace::read_routes(), Access::Read))
        .merge(guarded(crate::playback::page_routes(), Access::Page))
        .merge(guarded(crate::reports::routes(), Access::Page))
        .merge(guarded(
            crate::reports::heavy_routes().route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                crate::shed::gate,
            )),
            Access::Page,
        ))
        .merge(guarded(
            crate::reports::departments::read_routes(),
            Access::Read,
        ))
        .merge(guarded(
            crate::reports::departments::tune_routes(),
            Access::Tune,
        ))
        .merge(guarded(crate::panel::read_routes(), Access::Read))
        .merge(crate::panel::public_routes())
        .with_state(state);
    if tls {
        router.layer(axum::middleware::map_response(crate::tls::https_headers))
    } else {
        router
    }
}

async fn healthz() -> &'static str {
    "ok"
}

async fn nodes(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.api.nodes())
}

async fn calls(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(state.api.calls().await?))
}

/// The stored quality of the legs of the call(s) with this Call-ID (an empty array for a call
/// still in progress or unknown: legs are stored when their media stops).
async fn call_quality(
    State(state): State<AppState>,
    Path(call_id): Path<String>,
) -> Result<Json<Vec<callfleet_store::LegQualityRow>>, ApiError> {
    let rows = state
        .store
        .quality_of_call(&call_id)
        .await
        .map_err(|e| ApiError::unavailable("database", e))?;
    Ok(Json(rows))
}

async fn drain(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<StatusCode, ApiError> {
    state.api.drain().await?;
    tracing::info!(actor = %principal.actor(), "node marked draining over HTTP");
    Ok(StatusCode::NO_CONTENT)
}

async fn agents(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(state.api.agents().await?))
}

async fn agent_login(
    State(state): State<AppState>,
    Path(ext): Path<String>,
    Extension(principal): Extension<Principal>,
    Json(body): Json<LoginBody>,
) -> Result<StatusCode, ApiError> {
    tracing::info!(actor = %principal.actor(), agent = %ext, device = %body.device, "agent login requested");
    state.api.agent_login(ext, body.device).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn agent_logout(
    State(state): State<AppState>,
    Path(ext): Path<String>,
    Extension(principal): Extension<Principal>,
) -> Result<StatusCode, ApiError> {
    tracing::info!(actor = %principal.actor(), agent = %ext, "agent logout requested");
    state.api.agent_logout(ext).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let text = state
        .metrics
        .encode()
        .map_err(|err| ApiError::internal("encode metrics", err))?;
    let content_type = HeaderValue::from_static(Metrics::CONTENT_TYPE);
    Ok(([(header::CONTENT_TYPE, content_type)], text))
}

#[cfg(test)]
mod roles;
#[cfg(test)]
mod tests;
