//! Office VoIP proxies: `POST /api/v1/proxies/{name}/checkin` and the admin page
//! `/admin/proxies`.
//!
//! A proxy (an office's SIP proxy or SBC, whose public address may change) checks in every
//! minute with `Authorization: Bearer <its token>` (made by `callfleet proxy add`, only its
//! SHA-256 is stored). The **source IP address of the check-in** becomes the proxy's address;
//! the body is ignored. An address in the body would let whoever holds the token point the
//! cluster at any host; the source address can only be one the proxy (or a thief of its token)
//! actually sends from, and it is the address the proxy's SIP comes from, since both leave the
//! office through the same NAT. The check-in must therefore reach the node directly: a reverse
//! proxy in front of the nodes would make its own address the proxy's, and `X-Forwarded-For`
//! is not read.
//!
//! On a new address the store moves the bindings received from the old one and bumps the
//! config version ([`callfleet_store::Store::proxy_checkin`]); every node admits the new
//! address within a second or two. One log line says so. A wrong name or token gets `401`
//! (the same answer for both) and counts against the source address like any refused
//! credential (past ten a minute: `429`).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use callfleet_store::{CheckinPlan, Proxy, StoreError};
use callfleet_vocab::now_ms;
use sha2::{Digest as _, Sha256};

use crate::admin::view::{Cell, Section, Table};
use crate::admin::{db, view::Row, Ctx};
use crate::api::AppState;
use crate::auth::{constant_time_eq, Principal};
use crate::page::Area;

/// The prefix of a proxy token.
pub const TOKEN_PREFIX: &str = "cfx_";

/// A new proxy token: `cfx_` and 64 hex digits (256 random bits).
pub fn new_token() -> String {
    format!("{TOKEN_PREFIX}{}", hex::encode(rand::random::<[u8; 32]>()))
}

/// What is stored of a token: its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether `presented` is the token of `proxy` (`None`: no such proxy). The hashes are
/// compared in constant time; an unknown proxy costs the same hash and comparison.
pub fn token_matches(proxy: Option<&Proxy>, presented: &str) -> bool {
    let presented = token_hash(presented);
    let (expected, known) = match proxy {
        Some(p) => (p.token_hash.as_str(), true),
        None => (
            "0000000000000000000000000000000000000000000000000000000000000000",
            false,
        ),
    };
    constant_time_eq(presented.as_bytes(), expected.as_bytes()) && known
}

/// The bearer token of a request, if it carries one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(rest.trim())
        .filter(|t| !t.is_empty() && t.len() <= 256)
}

/// The public check-in route (it checks its own credentials).
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/proxies/{name}/checkin", post(checkin))
}

/// The admin page (level `AdminPage`).
pub fn admin_routes() -> Router<AppState> {
    Router::new().route("/admin/proxies", get(page))
}

/// The answer to a check-in.
#[derive(Debug, serde::Serialize)]
struct Answer {
    name: String,
    address: String,
    /// Whether the address changed with this check-in (true on the first one).
    moved: bool,
    /// Bindings moved from the old address to this one.
    bindings_moved: u64,
}

/// `POST /api/v1/proxies/{name}/checkin`.
async fn checkin(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    // An IPv4 client of a dual-stack listener shows as ::ffff:a.b.c.d: SIP sees a.b.c.d.
    let Some(source) = peer.map(|Extension(ConnectInfo(a))| a.ip().to_canonical()) else {
        return (StatusCode::BAD_REQUEST, "no source address\n").into_response();
    };
    let now = std::time::Instant::now();
    if let Err(wait) = state.strikes.check(source, now) {
        let secs = wait.as_secs().max(1).to_string();
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, secs)],
            "too many refused check-ins\n",
        )
            .into_response();
    }
    let proxy = match state.store.proxy(&name).await {
        Ok(p) => p,
        Err(e) => return unavailable(&name, &e),
    };
    let presented = bearer(&headers).unwrap_or("");
    if !token_matches(proxy.as_ref(), presented) {
        if state.strikes.strike(source, now) == callfleet_sign::Strike::First {
            tracing::warn!(%source, proxy = %name.escape_debug(), "proxy check-in refused: unknown proxy or wrong token");
        }
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "unknown proxy or wrong token\n",
        )
            .into_response();
    }
    let done = match state.store.proxy_checkin(&name, source, now_ms()).await {
        Ok(Some(done)) => done,
        // Removed between the two reads.
        Ok(None) => return (StatusCode::UNAUTHORIZED, "unknown proxy\n").into_response(),
        Err(e) => return unavailable(&name, &e),
    };
    let moved = match done.plan {
        CheckinPlan::Keep => {
            tracing::debug!(proxy = %name, address = %source, "proxy checked in");
            false
        }
        CheckinPlan::Move { from: None, to } => {
            tracing::info!(proxy = %name, address = %to, "proxy checked in from a new address; nodes admit it from now on");
            true
        }
        CheckinPlan::Move {
            from: Some(from),
            to,
        } => {
            tracing::info!(proxy = %name, %from, %to, bindings = done.bindings_moved, "proxy moved: its registrations now point at the new address");
            true
        }
    };
    Json(Answer {
        name,
        address: source.to_string(),
        moved,
        bindings_moved: done.bindings_moved,
    })
    .into_response()
}

fn unavailable(name: &str, e: &StoreError) -> Response {
    tracing::error!(proxy = %name.escape_debug(), error = %e, "proxy check-in: database");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "5")],
        "try again later\n",
    )
        .into_response()
}

/// How a proxy's last check-in reads on the admin page, at `now_ms`.
pub fn last_seen(last_checkin_ms: Option<i64>, now_ms: i64) -> String {
    match last_checkin_ms {
        None => "never".into(),
        Some(at) => format!("{} ago", crate::panel::html::clock(now_ms - at)),
    }
}

/// `GET /admin/proxies`: the proxies, their address and last check-in.
async fn page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    request_headers: HeaderMap,
) -> Response {
    let ctx = Ctx::new(state, &p, &request_headers);
    let proxies = match ctx.state.store.proxies().await {
        Ok(p) => p,
        Err(e) => return ctx.failure("Office proxies", Area::Carriers, &db(e)),
    };
    let mut page = ctx.page("Office proxies", Area::Carriers);
    page.notes.push(
        "SIP proxies of offices whose public address may change. Each checks in every minute \
         (POST /api/v1/proxies/NAME/checkin with its token); nodes take calls and REGISTERs from \
         its last address. Add and remove them with `callfleet proxy add|remove`."
            .into(),
    );
    let now = now_ms();
    let rows = proxies
        .iter()
        .map(|p| Row {
            testid: format!("proxy-{}", p.name),
            cells: vec![
                Cell::Text(p.name.clone()),
                Cell::Text(p.address.clone().unwrap_or_else(|| "none yet".into())),
                Cell::Text(last_seen(p.last_checkin_ms, now)),
            ],
        })
        .collect();
    page.sections.push(Section {
        id: "proxies".into(),
        title: "Proxies".into(),
        table: Some(Table {
            id: "proxies-table".into(),
            headers: vec!["name", "address", "last check-in"],
            rows,
            empty: "No proxies.".into(),
        }),
        ..Section::default()
    });
    ctx.show(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests;
