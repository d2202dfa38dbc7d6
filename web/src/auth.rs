//! Who is asking, and may they: users with sessions, CRM API tokens, and other nodes.
//!
//! Every request but `/healthz` and the login page goes through [`guard`] for the access level
//! its route was mounted with ([`Access`]). The guard works out the [`Principal`], in this order:
//!
//! 1. the `cf_session` cookie of a logged-in panel user (argon2id passwords, sessions in SQL so
//!    any node recognises them); state-changing requests of a session must also carry its CSRF
//!    token (header `X-CSRF-Token`, or a form field `csrf`);
//! 2. a CRM API token, as `Authorization: Bearer cft_…` or as the password of HTTP Basic auth;
//! 3. the cluster secret in `X-Callfleet-Secret` (node-to-node calls);
//! 4. a loopback peer, the node's own operator, when `http.trust_loopback` is on (the default).
//!
//! Panel pages ([`Access::Page`], [`Access::AdminPage`]) want a user: anyone else is sent to
//! `/login`. The other levels answer 401 without credentials and 403 with too few rights.
//!
//! | level       | supervisor | admin | CRM token | node (secret/loopback) |
//! |-------------|:---------:|:-----:|:---------:|:----------------------:|
//! | `Read`      | yes | yes | yes | yes |
//! | `Operate`   | yes | yes | yes | yes |
//! | `Supervise` | yes | yes | no  | yes |
//! | `Tune`      | no  | yes | yes | yes |
//! | `Admin`     | no  | yes | no  | yes |
//! | `Internal`  | no  | no  | no  | yes |
//! | `Page`      | yes | yes | no  | no (→ `/login`) |
//! | `AdminPage` | no  | yes | no  | no (→ `/login`) |

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use callfleet_store::{ApiToken, Session, UserRole};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use crate::api::{AppState, SECRET_HEADER};
use crate::error::ApiError;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "cf_session";
/// Header carrying a session's CSRF token on state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Form field carrying a session's CSRF token in HTML forms.
pub const CSRF_FIELD: &str = "csrf";
/// How long a login lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Prefix of every CRM API token.
pub const TOKEN_PREFIX: &str = "cft_";
/// Largest form body the CSRF check reads.
const MAX_FORM_BODY: usize = 64 * 1024;

/// The access level a route is mounted with (see the table in the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Any authenticated principal: views of nodes, calls, agents, queues, metrics.
    Read,
    /// Any authenticated principal: agent login, logout, pause.
    Operate,
    /// Supervisors, admins and nodes: listen-in and whisper.
    Supervise,
    /// CRM tokens, admins and nodes: tiers, daily limits, sales, VIP callers.
    Tune,
    /// Admins and nodes: configuration, users, drain.
    Admin,
    /// Other nodes only: the internal API.
    Internal,
    /// A panel page: supervisors and admins with a session.
    Page,
    /// An admin page: admins with a session.
    AdminPage,
}

/// How a node proved it is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeProof {
    /// The cluster secret header.
    Secret,
    /// A loopback peer (`http.trust_loopback`).
    Loopback,
}

/// Who is making a request; the guard puts it into the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A logged-in panel user.
    User {
        /// Login name.
        name: String,
        /// Admin or supervisor.
        role: UserRole,
        /// The user's own phone, if set.
        device: Option<String>,
        /// The session's CSRF token (pages embed it for their forms and scripts).
        csrf: String,
    },
    /// A CRM API token.
    Token {
        /// The token's name.
        name: String,
    },
    /// Another node, or the node's operator on this host.
    Node(NodeProof),
}

impl Principal {
    /// Whether this principal may use a route of level `access`.
    pub fn allows(&self, access: Access) -> bool {
        use Access::*;
        match self {
            Principal::User { role, .. } => match role {
                UserRole::Admin => !matches!(access, Internal),
                UserRole::Supervisor => {
                    matches!(access, Read | Operate | Supervise | Page)
                }
            },
            Principal::Token { .. } => matches!(access, Read | Operate | Tune),
            Principal::Node(_) => !matches!(access, Page | AdminPage),
        }
    }

    /// A name for logs and audit events: `user:NAME`, `token:NAME` or `node`.
    pub fn actor(&self) -> String {
        match self {
            Principal::User { name, .. } => format!("user:{name}"),
            Principal::Token { name } => format!("token:{name}"),
            Principal::Node(_) => "node".to_owned(),
        }
    }

    /// The session's CSRF token, for a user.
    pub fn csrf(&self) -> Option<&str> {
        match self {
            Principal::User { csrf, .. } => Some(csrf),
            _ => None,
        }
    }
}

/// Errors of password hashing and token generation.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// argon2 refused to hash (e.g. a password over its length limit).
    #[error("cannot hash the password: {0}")]
    Hash(argon2::password_hash::Error),
}

/// An argon2id PHC string for `password` (random salt, the crate's default cost).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(AuthError::Hash)
}

/// Whether `password` matches the PHC string `hash`; a malformed hash never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(e) => {
            tracing::warn!(error = %e, "stored password hash is malformed");
            false
        }
    }
}

/// A fresh CRM API token: the row to store and the token to show once (`cft_<id>_<secret>`).
pub fn new_api_token(name: &str, now_ms: i64) -> (ApiToken, String) {
    let id = random_hex(6);
    let secret = random_hex(24);
    let token = format!("{TOKEN_PREFIX}{id}_{secret}");
    let row = ApiToken {
        id,
        secret_hash: sha256_hex(secret.as_bytes()),
        name: name.to_owned(),
        created_at_ms: now_ms,
    };
    (row, token)
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// SHA-256 of `data` as lowercase hex: how session ids and token secrets are stored.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Compares without returning early on the first differing byte.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The middleware of one access level: `router` mounts each group of routes with
/// `axum::middleware::from_fn_with_state(state, move |s, r, n| guard(s, ACCESS, r, n))`.
pub async fn guard(
    State(state): State<AppState>,
    access: Access,
    request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    let page = matches!(access, Access::Page | Access::AdminPage);
    // Owned: a borrow of the request would make this future !Send (the body is not Sync).
    let headers = request.headers().clone();
    let principal = match identify(&state, &headers, peer).await {
        Ok(Some(principal)) => principal,
        Ok(None) if page => return to_login(&request),
        Ok(None) => return unauthorized(),
        Err(e) => return e.into_response(),
    };
    if !principal.allows(access) {
        if page && !matches!(principal, Principal::User { .. }) {
            return to_login(&request);
        }
        tracing::warn!(actor = %principal.actor(), ?access, path = %request.uri().path(), "request refused: role");
        return ApiError::Forbidden { peer }.into_response();
    }
    let request = match check_csrf(&principal, request).await {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let mut request = request;
    request.extensions_mut().insert(principal);
    next.run(request).await
}

/// Works out who sent these headers from this peer; `Ok(None)` when nobody is identified.
pub async fn identify(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Result<Option<Principal>, ApiError> {
    if let Some(id) = cookie(headers, SESSION_COOKIE) {
        if let Some(session) = session(state, id).await? {
            return Ok(Some(Principal::User {
                name: session.user,
                role: session.role,
                device: session.device,
                csrf: session.csrf,
            }));
        }
    }
    if let Some(token) = presented_token(headers) {
        return match check_token(state, &token).await? {
            Some(name) => Ok(Some(Principal::Token { name })),
            None => {
                tracing::warn!(?peer, "API token refused");
                Err(ApiError::Unauthorized)
            }
        };
    }
    if let Some(presented) = headers.get(SECRET_HEADER) {
        match state.secret.as_deref().filter(|s| !s.is_empty()) {
            Some(secret) if constant_time_eq(secret.as_bytes(), presented.as_bytes()) => {
                return Ok(Some(Principal::Node(NodeProof::Secret)));
            }
            _ => {
                tracing::warn!(?peer, "cluster secret refused");
                return Err(ApiError::Forbidden { peer });
            }
        }
    }
    if state.trust_loopback && peer.is_some_and(|addr| addr.ip().to_canonical().is_loopback()) {
        return Ok(Some(Principal::Node(NodeProof::Loopback)));
    }
    Ok(None)
}

async fn session(state: &AppState, id: &str) -> Result<Option<Session>, ApiError> {
    state
        .store
        .session(&sha256_hex(id.as_bytes()), now_ms())
        .await
        .map_err(|e| ApiError::unavailable("database", e))
}

/// The token of `Authorization: Bearer T` or of Basic auth's password.
fn presented_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (_, password) = text.split_once(':')?;
        return Some(password.to_owned());
    }
    None
}

/// The token's name when `token` is a valid, unrevoked API token.
async fn check_token(state: &AppState, token: &str) -> Result<Option<String>, ApiError> {
    let Some((id, secret)) = token
        .strip_prefix(TOKEN_PREFIX)
        .and_then(|rest| rest.split_once('_'))
    else {
        return Ok(None);
    };
    let Some(row) = state
        .store
        .api_token(id)
        .await
        .map_err(|e| ApiError::unavailable("database", e))?
    else {
        return Ok(None);
    };
    let presented = sha256_hex(secret.as_bytes());
    Ok(constant_time_eq(presented.as_bytes(), row.secret_hash.as_bytes()).then_some(row.name))
}

/// The value of cookie `name`, if sent.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// State-changing requests of a session must carry its CSRF token.
async fn check_csrf(principal: &Principal, request: Request) -> Result<Request, Box<Response>> {
    let Some(expected) = principal.csrf() else {
        return Ok(request);
    };
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return Ok(request);
    }
    if let Some(presented) = request.headers().get(CSRF_HEADER) {
        if constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
            return Ok(request);
        }
        return Err(Box::new(csrf_refused()));
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(Box::new(csrf_refused()));
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_FORM_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return Err(Box::new(
                (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response(),
            ))
        }
    };
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
    let ok = fields
        .iter()
        .any(|(k, v)| k == CSRF_FIELD && constant_time_eq(v.as_bytes(), expected.as_bytes()));
    if !ok {
        return Err(Box::new(csrf_refused()));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

fn csrf_refused() -> Response {
    tracing::warn!("request refused: missing or wrong CSRF token");
    (
        StatusCode::FORBIDDEN,
        axum::Json(serde_json::json!({ "error": "missing or wrong CSRF token" })),
    )
        .into_response()
}

fn unauthorized() -> Response {
    let mut response = ApiError::Unauthorized.into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"callfleet\""),
    );
    response
}

fn to_login(request: &Request) -> Response {
    let next = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let target = format!(
        "/login?next={}",
        serde_urlencoded::to_string([("n", next)])
            .map(|s| s.trim_start_matches("n=").to_owned())
            .unwrap_or_default()
    );
    Redirect::to(&target).into_response()
}

/// Counts failed logins per client address and per name, in fixed windows, to slow down
/// password guessing. Each node counts its own; memory stays bounded.
#[derive(Debug)]
pub struct LoginLimiter {
    inner: Mutex<HashMap<String, (Instant, u32)>>,
    window: Duration,
    per_addr: u32,
    per_name: u32,
}

/// Most keys the limiter remembers before it forgets expired windows.
const LIMITER_KEYS: usize = 10_000;

impl Default for LoginLimiter {
    fn default() -> Self {
        Self::new(Duration::from_secs(300), 20, 5)
    }
}

impl LoginLimiter {
    /// At most `per_addr` failures per client address and `per_name` per login name in each
    /// `window`.
    pub fn new(window: Duration, per_addr: u32, per_name: u32) -> Self {
        Self {
            inner: Mutex::new(HashMap::new()),
            window,
            per_addr,
            per_name,
        }
    }

    /// `Err(retry_after)` when this address or name has failed too often lately.
    pub fn check(&self, addr: Option<IpAddr>, name: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let over = |key: String, limit: u32| -> Option<Duration> {
            let (start, count) = map.get(&key)?;
            let elapsed = now.duration_since(*start);
            (elapsed < self.window && *count >= limit).then(|| self.window - elapsed)
        };
        let by_addr = addr.and_then(|a| over(format!("a:{a}"), self.per_addr));
        let by_name = over(format!("n:{name}"), self.per_name);
        match by_addr.into_iter().chain(by_name).max() {
            Some(wait) => Err(wait.max(Duration::from_secs(1))),
            None => Ok(()),
        }
    }

    /// Counts one failed login.
    pub fn failed(&self, addr: Option<IpAddr>, name: &str) {
        let now = Instant::now();
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= LIMITER_KEYS {
            let window = self.window;
            map.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let keys = addr
            .map(|a| format!("a:{a}"))
            .into_iter()
            .chain([format!("n:{name}")]);
        for key in keys {
            let entry = map.entry(key).or_insert((now, 0));
            if now.duration_since(entry.0) >= self.window {
                *entry = (now, 0);
            }
            entry.1 = entry.1.saturating_add(1);
        }
    }

    /// Forgets a name's failures after it logged in.
    pub fn succeeded(&self, name: &str) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&format!("n:{name}"));
    }
}

#[cfg(test)]
mod tests;
