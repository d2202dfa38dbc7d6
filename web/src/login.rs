//! `GET /login`, `POST /login`, `POST /logout`: panel sessions.
//!
//! A login checks the argon2id hash off the async workers, on one of [`LOGIN_SLOTS`] threads
//! of its own ([`PasswordChecks`]: each check takes about 19 MiB for a moment), then stores a
//! new session (SHA-256 of a random id) and sets `cf_session` (HttpOnly, SameSite=Strict). A
//! login while every checker is busy gets 503 with `Retry-After` at once, its password
//! unchecked. Logins are
//! counted per client address and per name ([`LoginLimiter`]) as failures before the password
//! is checked (until it proves right), so concurrent guesses cannot all pass the limit; over
//! it the answer is 429 with `Retry-After`. A login form posted from a page of another site
//! (browser cross-site markers) is refused. After a login the browser goes to `next` only when
//! it is a path of this site ([`safe_next`]).
//!
//! [`LoginLimiter`]: crate::auth::LoginLimiter

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Form, Router};

use callfleet_vocab::now_ms;

use crate::api::AppState;
use crate::auth::{self, Principal, SESSION_COOKIE, SESSION_TTL};
use crate::error::ApiError;
use crate::panel::html::escape;

mod checks;

pub use checks::{PasswordChecks, LOGIN_SLOTS};

/// The login routes (public, except logout which needs a session and its CSRF token).
pub fn public_routes() -> Router<AppState> {
    Router::new().route("/login", get(login_page).post(login))
}

/// `POST /logout`, mounted at level `Page`.
pub fn session_routes() -> Router<AppState> {
    Router::new().route("/logout", axum::routing::post(logout))
}

/// Query of `GET /login`.
#[derive(Debug, serde::Deserialize)]
pub struct LoginQuery {
    /// Where to go after logging in (a local path).
    #[serde(default)]
    next: Option<String>,
}

/// Form of `POST /login`.
#[derive(serde::Deserialize)]
pub struct LoginForm {
    name: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

async fn login_page(Query(q): Query<LoginQuery>) -> Html<String> {
    Html(page(None, &safe_next(q.next.as_deref())))
}

fn page(message: Option<&str>, next: &str) -> String {
    let message = message
        .map(|m| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(m)))
        .unwrap_or_default();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>callfleet — log in</title><link rel=\"icon\" href=\"data:,\">\
<style>body{{font-family:system-ui,sans-serif;max-width:22rem;margin:4rem auto;}}\
label{{display:block;margin:.6rem 0}}input{{width:100%;padding:.4rem}}\
.error{{color:#b00}}button{{padding:.5rem 1.2rem}}</style></head><body>\
<h1>callfleet</h1>{message}\
<form method=\"post\" action=\"/login\">\
<input type=\"hidden\" name=\"next\" value=\"{next}\">\
<label>Name <input id=\"name\" name=\"name\" autocomplete=\"username\" required autofocus></label>\
<label>Password <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
<button id=\"login\" type=\"submit\">Log in</button></form></body></html>",
        next = escape(next),
    )
}

/// `next` when it is a path of this site, else `/`: a crafted link cannot send a user
/// elsewhere after logging in. Accepted: `/` then printable ASCII without `\`, not `//` at the
/// start, and the same once percent-decoded (browsers drop tabs and newlines from URLs and
/// read `\` as `/`, so `/%09/evil.example/`, `/\evil` and their encodings would leave the site).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if local_path(n) && percent_decode(n).is_some_and(|d| decoded_local(&d)) => {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// `/`, then printable ASCII without spaces or `\`, and not `//`.
fn local_path(p: &str) -> bool {
    p.starts_with('/')
        && !p.starts_with("//")
        && p.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b'\\')
}

/// Once decoded: still `/` and not `//`, without control characters or `\` (spaces and
/// other characters are what encoded paths are for).
fn decoded_local(p: &str) -> bool {
    p.starts_with('/') && !p.starts_with("//") && !p.chars().any(|c| c.is_control() || c == '\\')
}

/// `s` with `%XX` escapes decoded once; `None` when an escape is broken or the result is not
/// UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn with_retry_after(mut response: Response, wait: Duration) -> Response {
    if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

async fn login(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let addr = peer.map(|Extension(ConnectInfo(a))| a.ip());
    let next = safe_next(form.next.as_deref());
    if auth::edge::cross_site(&headers, state.tls) {
        tracing::warn!(?addr, "login refused: posted from a page of another site");
        let page = Html(page(Some("Log in from this site's own page."), "/"));
        return (StatusCode::FORBIDDEN, page).into_response();
    }
    if let Err(wait) = state.limiter.begin(addr, &form.name, Instant::now()) {
        tracing::warn!(?addr, name = %form.name, "login refused: too many failures");
        let page = Html(page(
            Some("Too many failed logins. Wait a few minutes and try again."),
            &next,
        ));
        return with_retry_after((StatusCode::TOO_MANY_REQUESTS, page).into_response(), wait);
    }
    let Some(slot) = state.password_checks.reserve() else {
        state.limiter.undo(addr, &form.name);
        tracing::debug!(?addr, "login refused: every password check slot is busy");
        let page = Html(page(
            Some("The server is busy. Try again in a moment."),
            &next,
        ));
        let busy = (StatusCode::SERVICE_UNAVAILABLE, page).into_response();
        return with_retry_after(busy, Duration::from_secs(1));
    };
    let user = match state.store.user(&form.name).await {
        Ok(user) => user,
        Err(e) => {
            state.limiter.undo(addr, &form.name);
            return ApiError::unavailable("database", e).into_response();
        }
    };
    // Check a hash even for an unknown name, so timing does not tell which names exist.
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| DUMMY_HASH.to_owned());
    let ok = slot.check(form.password, hash).await.unwrap_or(false);
    let user = match (ok, user) {
        (true, Some(user)) => user,
        _ => {
            tracing::warn!(?addr, name = %form.name, "login failed");
            return (
                StatusCode::UNAUTHORIZED,
                Html(page(Some("Wrong name or password."), &next)),
            )
                .into_response();
        }
    };
    state.limiter.succeeded(addr, &user.name);
    start_session(&state, &user, addr, &next).await
}

/// Stores a new session for `user` and sends the browser to `next` with its cookie.
async fn start_session(
    state: &AppState,
    user: &callfleet_store::User,
    addr: Option<std::net::IpAddr>,
    next: &str,
) -> Response {
    let id = auth::random_hex(32);
    let csrf = auth::random_hex(16);
    let now = now_ms();
    let ttl_ms = i64::try_from(SESSION_TTL.as_millis()).unwrap_or(i64::MAX);
    if let Err(e) = state
        .store
        .insert_session(
            &auth::sha256_hex(id.as_bytes()),
            &user.name,
            &csrf,
            now,
            now.saturating_add(ttl_ms),
        )
        .await
    {
        return ApiError::unavailable("database", e).into_response();
    }
    // Expired sessions go when someone logs in; no timer needed.
    if let Err(e) = state.store.purge_sessions(now).await {
        tracing::warn!(error = %e, "cannot purge expired sessions");
    }
    tracing::info!(user = %user.name, role = %user.role, ?addr, "logged in");
    let cookie = format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_TTL.as_secs()
    );
    let mut response = Redirect::to(next).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

async fn logout(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    headers: HeaderMap,
) -> Response {
    if let Some(id) = auth::cookie(&headers, SESSION_COOKIE) {
        if let Err(e) = state
            .store
            .delete_session(&auth::sha256_hex(id.as_bytes()))
            .await
        {
            return ApiError::unavailable("database", e).into_response();
        }
    }
    if let Some(Extension(p)) = principal {
        tracing::info!(actor = %p.actor(), "logged out");
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("cf_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

/// A valid argon2id hash of a random password nobody knows, checked for unknown names.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$6kbfbLZPpkMqXLFCX3K4wMGD1n0nmuScaeEzbR0dYsk";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        for (given, want) in [
            (Some("/"), "/"),
            (Some("/admin/queues?x=1"), "/admin/queues?x=1"),
            (
                Some("/admin/queues/sales%20desk"),
                "/admin/queues/sales%20desk",
            ),
            (
                Some("/api/v1/calls/a%40b/listen"),
                "/api/v1/calls/a%40b/listen",
            ),
            (Some("//evil.example/"), "/"),
            (Some("///evil.example/"), "/"),
            (Some("https://evil.example/"), "/"),
            (Some("javascript:alert(1)"), "/"),
            (Some("evil.example"), "/"),
            (Some("/\\evil"), "/"),
            (Some("/\\/evil"), "/"),
            (Some("\\\\evil"), "/"),
            // Browsers drop tabs and newlines: these are `//evil.example/` to them.
            (Some("/\t/evil.example/"), "/"),
            (Some("/\n/evil.example/"), "/"),
            (Some("/\r/evil"), "/"),
            (Some("/ /evil"), "/"),
            // The same once more encoded (a form field decoded once, then a link's).
            (Some("/%09/evil.example/"), "/"),
            (Some("/%0a/evil"), "/"),
            (Some("/%2F/evil"), "/"),
            (Some("/%2f%2fevil"), "/"),
            (Some("%2F%2Fevil"), "/"),
            (Some("/%5Cevil"), "/"),
            (Some("/%5c%5cevil"), "/"),
            (Some("/%zz"), "/"),
            (Some("/%"), "/"),
            (Some("/%ff"), "/"),
            (Some("/é"), "/"),
            (Some(""), "/"),
            (None, "/"),
        ] {
            assert_eq!(safe_next(given), want, "{given:?}");
        }
    }

    #[test]
    fn login_page_escapes_next() {
        let html = page(Some("<b>x</b>"), "/\"><script>");
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<b>x</b>"), "{html}");
        assert!(html.contains("&lt;b&gt;x&lt;/b&gt;"));
    }

    #[test]
    fn dummy_hash_parses() {
        assert!(argon2::password_hash::PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!auth::verify_password("", DUMMY_HASH));
    }
}
