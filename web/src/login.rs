//! `GET /login`, `POST /login`, `POST /logout`: panel sessions.
//!
//! A login checks the argon2id hash off the async workers (`spawn_blocking`), then stores a
//! new session (SHA-256 of a random id) and sets `cf_session` (HttpOnly, SameSite=Strict).
//! Failed logins are counted per client address and per name ([`LoginLimiter`]); over the
//! limit the answer is 429 with `Retry-After`, before any password is checked.
//!
//! [`LoginLimiter`]: crate::auth::LoginLimiter

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Form, Router};

use crate::api::AppState;
use crate::auth::{self, Principal, SESSION_COOKIE, SESSION_TTL};
use crate::error::ApiError;
use crate::panel::html::escape;

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
    Html(page(None, q.next.as_deref().unwrap_or("/")))
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

/// Only local absolute paths, so a crafted link cannot send a user elsewhere after login.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/",
    }
}

async fn login(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Form(form): Form<LoginForm>,
) -> Response {
    let addr = peer.map(|Extension(ConnectInfo(a))| a.ip());
    let next = safe_next(form.next.as_deref()).to_owned();
    if let Err(wait) = state.limiter.check(addr, &form.name) {
        tracing::warn!(?addr, name = %form.name, "login refused: too many failures");
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            Html(page(
                Some("Too many failed logins. Wait a few minutes and try again."),
                &next,
            )),
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return response;
    }
    let user = match state.store.user(&form.name).await {
        Ok(user) => user,
        Err(e) => return ApiError::unavailable("database", e).into_response(),
    };
    // Check a hash even for an unknown name, so timing does not tell which names exist.
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| DUMMY_HASH.to_owned());
    let password = form.password;
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    let user = match (ok, user) {
        (true, Some(user)) => user,
        _ => {
            state.limiter.failed(addr, &form.name);
            tracing::warn!(?addr, name = %form.name, "login failed");
            return (
                StatusCode::UNAUTHORIZED,
                Html(page(Some("Wrong name or password."), &next)),
            )
                .into_response();
        }
    };
    state.limiter.succeeded(&user.name);
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
    let mut response = Redirect::to(&next).into_response();
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

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        for (given, want) in [
            (Some("/"), "/"),
            (Some("/admin/queues?x=1"), "/admin/queues?x=1"),
            (Some("//evil.example/"), "/"),
            (Some("https://evil.example/"), "/"),
            (Some("/\\evil"), "/"),
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
