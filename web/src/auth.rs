//! Who is asking, and may they: users with sessions, CRM API tokens, other nodes, and the
//! operator on the node's own host.
//!
//! Every request but `/healthz` and the login page goes through [`guard`] for the access level
//! its route was mounted with ([`Access`]). The guard works out the [`Principal`], in this order:
//!
//! 1. the `cf_session` cookie of a logged-in panel user (argon2id passwords, sessions in SQL so
//!    any node recognises them); state-changing requests of a session must also carry its CSRF
//!    token (header `X-CSRF-Token`, or a form field `csrf`, or for a `multipart/form-data`
//!    upload the query parameter `csrf`);
//! 2. a request a browser marks as coming from a page of another site (`Origin` not this
//!    node's, `Sec-Fetch-Site: cross-site` or `same-site`: see [`edge`]) is identified by its
//!    session only, so a page elsewhere never borrows a token, a signature or this host's trust;
//! 3. a request signed with the cluster secret (`X-Callfleet-Signature`, `callfleet_sign`:
//!    other nodes and the CLI), checked over method, target, body and time, once;
//! 4. the node's operator token (`Authorization: Bearer cfo_…`, the file the node writes at
//!    start, readable by its user only), from this host only;
//! 5. a CRM API token, as `Authorization: Bearer cft_…` or as the password of HTTP Basic auth;
//! 6. a program on this host with nothing else (a loopback peer, not forwarded by a proxy,
//!    addressed to an address rather than a name), when `http.trust_loopback` is on (the
//!    default): it may read, never change anything.
//!
//! The clear-text `X-Callfleet-Secret` header of earlier versions is refused. A wrong
//! signature, operator token or API token counts against its source address ([`Strikes`]):
//! past 10 in a minute the address gets 429 without its credentials being looked at.
//!
//! Panel pages ([`Access::Page`], [`Access::AdminPage`]) want a user: anyone else is sent to
//! `/login`. The other levels answer 401 without credentials and 403 with too few rights.
//!
//! | level       | supervisor | admin | CRM token | signed (node, CLI) | operator token | loopback |
//! |-------------|:---------:|:-----:|:---------:|:------------------:|:--------------:|:--------:|
//! | `Read`      | yes | yes | yes | yes | yes | yes |
//! | `Operate`   | yes | yes | yes | yes | yes | no  |
//! | `Supervise` | yes | yes | no  | yes | yes | no  |
//! | `Tune`      | no  | yes | yes | yes | yes | no  |
//! | `Admin`     | no  | yes | no  | yes | yes | no  |
//! | `Internal`  | no  | no  | no  | yes | no  | no  |
//! | `Page`      | yes | yes | no  | no (→ `/login`) | no (→ `/login`) | no (→ `/login`) |
//! | `AdminPage` | no  | yes | no  | no (→ `/login`) | no (→ `/login`) | no (→ `/login`) |
//!
//! [`Strikes`]: callfleet_sign::Strikes

pub mod edge;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::body::Body;
use axum::extract::{ConnectInfo, OriginalUri, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use callfleet_store::{ApiToken, Session, UserRole};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use callfleet_vocab::now_ms;

use crate::api::AppState;
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
/// Prefix of the node's operator token.
pub const OPERATOR_PREFIX: &str = "cfo_";
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

/// How a node, or the operator of a node, proved it is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeProof {
    /// A request signed with the cluster secret: another node, or the CLI.
    Signed,
    /// The node's operator token, from this host.
    OperatorToken,
    /// A program on this host with no credentials (`http.trust_loopback`): reads only.
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
    /// Another node, the CLI, or a program on the node's own host.
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
            Principal::Node(NodeProof::Signed) => !matches!(access, Page | AdminPage),
            Principal::Node(NodeProof::OperatorToken) => {
                !matches!(access, Page | AdminPage | Internal)
            }
            Principal::Node(NodeProof::Loopback) => matches!(access, Read),
        }
    }

    /// A name for logs and audit events: `user:NAME`, `token:NAME`, `node` or `operator`.
    pub fn actor(&self) -> String {
        match self {
            Principal::User { name, .. } => format!("user:{name}"),
            Principal::Token { name } => format!("token:{name}"),
            Principal::Node(NodeProof::Signed) => "node".to_owned(),
            Principal::Node(_) => "operator".to_owned(),
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
    let (principal, request) = match identify(&state, request, peer).await {
        Ok((Some(principal), request)) => (principal, request),
        Ok((None, request)) if page => return to_login(&request),
        Ok((None, _)) => return unauthorized(),
        Err(response) => return *response,
    };
    if !principal.allows(access) {
        if page && !matches!(principal, Principal::User { .. }) {
            return to_login(&request);
        }
        if principal == Principal::Node(NodeProof::Loopback) {
            return loopback_may_only_read();
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

/// Works out who sent `request` from `peer`: `Ok((None, _))` when nobody is identified, `Err`
/// with the answer when credentials were presented and refused. A signed request's body is
/// read (to check the signature over it) and put back.
pub async fn identify(
    state: &AppState,
    request: Request,
    peer: Option<SocketAddr>,
) -> Result<(Option<Principal>, Request), Box<Response>> {
    // Owned: a borrow of the request would make this future !Send (the body is not Sync).
    let headers = request.headers().clone();
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        if let Some(session) = session(state, id).await.map_err(boxed)? {
            let user = Principal::User {
                name: session.user,
                role: session.role,
                device: session.device,
                csrf: session.csrf,
            };
            return Ok((Some(user), request));
        }
    }
    if edge::cross_site(&headers, state.tls) {
        // A page of another site: whatever else it carries is not its own to use.
        return Ok((None, request));
    }
    let presents = headers.contains_key(callfleet_sign::HEADER)
        || headers.contains_key(callfleet_sign::LEGACY_SECRET_HEADER)
        || headers.contains_key(header::AUTHORIZATION);
    if presents {
        if let Some(ip) = peer.map(|p| p.ip()) {
            if let Err(wait) = state.strikes.check(ip, std::time::Instant::now()) {
                return Err(Box::new(too_many_failures(wait)));
            }
        }
    }
    if headers.contains_key(callfleet_sign::LEGACY_SECRET_HEADER) {
        return Err(Box::new(refuse(
            state,
            peer,
            "the clear-text cluster secret header is no longer accepted: requests are signed (X-Callfleet-Signature)",
            ApiError::Forbidden { peer },
        )));
    }
    if let Some(signature) = headers.get(callfleet_sign::HEADER) {
        return verify_signed(state, request, signature.as_bytes(), peer)
            .await
            .map(|request| (Some(Principal::Node(NodeProof::Signed)), request));
    }
    if let Some(token) = presented_token(&headers) {
        return match check_any_token(state, &token, &headers, peer).await {
            Ok(principal) => Ok((Some(principal), request)),
            Err(response) => Err(response),
        };
    }
    if state.trust_loopback && edge::direct_loopback(&headers, peer) {
        return Ok((Some(Principal::Node(NodeProof::Loopback)), request));
    }
    Ok((None, request))
}

/// An operator token from this host, or a CRM token; anything else presented is refused.
async fn check_any_token(
    state: &AppState,
    token: &str,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Result<Principal, Box<Response>> {
    if token.starts_with(OPERATOR_PREFIX) {
        let local = edge::direct_loopback(headers, peer);
        let matches = state
            .operator_token
            .as_deref()
            .is_some_and(|t| constant_time_eq(t.as_bytes(), token.as_bytes()));
        if local && matches {
            return Ok(Principal::Node(NodeProof::OperatorToken));
        }
        let why = if matches {
            "the operator token is only taken from this node's own host"
        } else {
            "operator token refused"
        };
        return Err(Box::new(refuse(state, peer, why, ApiError::Unauthorized)));
    }
    match check_token(state, token).await.map_err(boxed)? {
        Some(name) => Ok(Principal::Token { name }),
        None => Err(Box::new(refuse(
            state,
            peer,
            "API token refused",
            ApiError::Unauthorized,
        ))),
    }
}

/// Largest body a signed request may have (the body is read to check the signature).
const MAX_SIGNED_BODY: usize = 64 * 1024;

/// Checks a signed request: its body is read and put back.
async fn verify_signed(
    state: &AppState,
    request: Request,
    signature: &[u8],
    peer: Option<SocketAddr>,
) -> Result<Request, Box<Response>> {
    let Some(verifier) = state.nodes.as_deref() else {
        return Err(Box::new(refuse(
            state,
            peer,
            "a signed request, but this node has no cluster secret",
            ApiError::Unauthorized,
        )));
    };
    let target = request
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| request.uri().clone(), |OriginalUri(uri)| uri.clone());
    let target = target
        .path_and_query()
        .map_or_else(|| target.path().to_owned(), |pq| pq.as_str().to_owned());
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_SIGNED_BODY).await else {
        return Err(Box::new(
            (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response(),
        ));
    };
    let checked = verifier.verify(
        signature,
        parts.method.as_str(),
        &target,
        &bytes,
        callfleet_sign::now_ms(),
    );
    match checked {
        Ok(()) => Ok(Request::from_parts(parts, Body::from(bytes))),
        Err(e) => Err(Box::new(refuse(
            state,
            peer,
            &format!("signed request refused: {e}"),
            ApiError::Unauthorized,
        ))),
    }
}

/// Counts a refused credential against its source and answers `error`; logged on the
/// source's first refusal in a window and when it is turned away, not at every attempt.
fn refuse(state: &AppState, peer: Option<SocketAddr>, why: &str, error: ApiError) -> Response {
    let strike = peer.map(|p| state.strikes.strike(p.ip(), std::time::Instant::now()));
    match strike {
        Some(callfleet_sign::Strike::LimitReached) => {
            tracing::warn!(
                ?peer,
                reason = why,
                "too many refused credentials: turning this address away for a minute"
            )
        }
        Some(callfleet_sign::Strike::Again) => {
            tracing::debug!(?peer, reason = why, "credentials refused")
        }
        _ => tracing::warn!(?peer, reason = why, "credentials refused"),
    }
    let mut response = error.into_response();
    if response.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"callfleet\""),
        );
    }
    response
}

fn too_many_failures(wait: Duration) -> Response {
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        axum::Json(
            serde_json::json!({ "error": "too many refused credentials from this address" }),
        ),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&wait.as_secs().to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// What a program on this host without credentials gets for anything but reading.
fn loopback_may_only_read() -> Response {
    let mut response = (
        StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({
            "error": "changes need credentials, from this host too: the node's operator token \
                      (Authorization: Bearer, from the file http.operator_token_file), \
                      `callfleet node drain --config FILE`, a CRM token or a login"
        })),
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"callfleet\""),
    );
    response
}

fn boxed(e: ApiError) -> Box<Response> {
    Box::new(e.into_response())
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
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("multipart/form-data") {
        // A form with a file: the token is in its action's query (the body is not read here).
        let query = request.uri().query().unwrap_or("");
        let fields: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
        let ok = fields
            .iter()
            .any(|(k, v)| k == CSRF_FIELD && constant_time_eq(v.as_bytes(), expected.as_bytes()));
        return if ok {
            Ok(request)
        } else {
            Err(Box::new(csrf_refused()))
        };
    }
    if !content_type.starts_with("application/x-www-form-urlencoded") {
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
/// password guessing. A login counts as failed from before its password is checked
/// ([`LoginLimiter::begin`]) until it succeeds, so concurrent guesses cannot all pass the
/// check before any is counted. Each node counts its own; memory stays bounded.
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

fn addr_key(addr: IpAddr) -> String {
    format!("a:{addr}")
}

fn name_key(name: &str) -> String {
    format!("n:{name}")
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

    /// A login attempt of `name` from `addr` at `now`: `Err(retry_after)` when the address or
    /// the name has failed too often lately; else the attempt is counted as a failure at once,
    /// until [`LoginLimiter::succeeded`] or [`LoginLimiter::undo`] says otherwise.
    pub fn begin(&self, addr: Option<IpAddr>, name: &str, now: Instant) -> Result<(), Duration> {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let over = |map: &HashMap<String, (Instant, u32)>, key: &str, limit: u32| {
            let (start, count) = map.get(key)?;
            let elapsed = now.saturating_duration_since(*start);
            (elapsed < self.window && *count >= limit).then(|| self.window - elapsed)
        };
        let by_addr = addr.and_then(|a| over(&map, &addr_key(a), self.per_addr));
        let by_name = over(&map, &name_key(name), self.per_name);
        if let Some(wait) = by_addr.into_iter().chain(by_name).max() {
            return Err(wait.max(Duration::from_secs(1)));
        }
        if map.len() >= LIMITER_KEYS {
            let window = self.window;
            map.retain(|_, (start, _)| now.saturating_duration_since(*start) < window);
        }
        for key in addr.map(addr_key).into_iter().chain([name_key(name)]) {
            let entry = map.entry(key).or_insert((now, 0));
            if now.saturating_duration_since(entry.0) >= self.window {
                *entry = (now, 0);
            }
            entry.1 = entry.1.saturating_add(1);
        }
        Ok(())
    }

    /// Takes back the count of an attempt whose password was never checked (the node was
    /// busy).
    pub fn undo(&self, addr: Option<IpAddr>, name: &str) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for key in addr.map(addr_key).into_iter().chain([name_key(name)]) {
            if let Some(entry) = map.get_mut(&key) {
                entry.1 = entry.1.saturating_sub(1);
            }
        }
    }

    /// A login succeeded: its attempt was no failure, and the name's failures are forgotten.
    pub fn succeeded(&self, addr: Option<IpAddr>, name: &str) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = addr.and_then(|a| map.get_mut(&addr_key(a))) {
            entry.1 = entry.1.saturating_sub(1);
        }
        map.remove(&name_key(name));
    }
}

#[cfg(test)]
mod tests;
