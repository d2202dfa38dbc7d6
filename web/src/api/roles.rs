//! The role table over the whole router: every route, every kind of caller, and what each may
//! do, written out here from the product's policy rather than computed from `Principal::allows`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use callfleet_store::{Store, User, UserRole};
use tower::ServiceExt;

use super::{router, AppState, SECRET_HEADER};
use crate::auth::{self, Access, CSRF_HEADER, SESSION_COOKIE};
use crate::crm::tests::NoNode;
use crate::metrics::Metrics;

/// Every kind of caller the guard tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    BadToken,
    WrongSecret,
    ExpiredSession,
    Crm,
    Supervisor,
    Admin,
    Secret,
    Loopback,
}

const CALLERS: [Caller; 9] = [
    Caller::Anonymous,
    Caller::BadToken,
    Caller::WrongSecret,
    Caller::ExpiredSession,
    Caller::Crm,
    Caller::Supervisor,
    Caller::Admin,
    Caller::Secret,
    Caller::Loopback,
];

/// The policy: who may use a route of each level.
fn may(access: Access, caller: Caller) -> bool {
    use Caller::*;
    let allowed: &[Caller] = match access {
        Access::Read | Access::Operate => &[Crm, Supervisor, Admin, Secret, Loopback],
        Access::Supervise => &[Supervisor, Admin, Secret, Loopback],
        Access::Tune => &[Crm, Admin, Secret, Loopback],
        Access::Admin => &[Admin, Secret, Loopback],
        Access::Internal => &[Secret, Loopback],
        Access::Page => &[Supervisor, Admin],
        Access::AdminPage => &[Admin],
    };
    allowed.contains(&caller)
}

/// Every route of the router but the public ones (`/healthz`, `/readyz`, `/login`, the panel's
/// static script and style), with its level. Add a line with every new route.
const ROUTES: &[(&str, &str, Access)] = &[
    ("GET", "/api/v1/nodes", Access::Read),
    ("GET", "/api/v1/calls", Access::Read),
    ("GET", "/api/v1/agents", Access::Read),
    ("GET", "/metrics", Access::Read),
    ("POST", "/api/v1/agents/1001/login", Access::Operate),
    ("POST", "/api/v1/agents/1001/logout", Access::Operate),
    ("POST", "/api/v1/admin/drain", Access::Admin),
    ("GET", "/admin", Access::AdminPage),
    ("GET", "/admin/queues", Access::AdminPage),
    ("POST", "/admin/queues", Access::AdminPage),
    ("GET", "/admin/queues/sales", Access::AdminPage),
    ("POST", "/admin/queues/sales", Access::AdminPage),
    ("POST", "/admin/queues/sales/delete", Access::AdminPage),
    ("POST", "/admin/queues/sales/members", Access::AdminPage),
    (
        "POST",
        "/admin/queues/sales/members/1001/delete",
        Access::AdminPage,
    ),
    ("POST", "/admin/queues/sales/vips", Access::AdminPage),
    (
        "POST",
        "/admin/queues/sales/vips/%2B4930/delete",
        Access::AdminPage,
    ),
    ("GET", "/admin/agents", Access::AdminPage),
    ("POST", "/admin/agents", Access::AdminPage),
    ("POST", "/admin/agents/1001/delete", Access::AdminPage),
    ("GET", "/admin/devices", Access::AdminPage),
    ("POST", "/admin/devices", Access::AdminPage),
    ("POST", "/admin/devices/2001/delete", Access::AdminPage),
    ("GET", "/admin/users", Access::AdminPage),
    ("POST", "/admin/users", Access::AdminPage),
    ("POST", "/admin/users/bob/delete", Access::AdminPage),
    ("GET", "/admin/carriers", Access::AdminPage),
    ("POST", "/admin/carriers", Access::AdminPage),
    ("POST", "/admin/carriers/trunk/delete", Access::AdminPage),
    // Last: it ends the session it is sent with.
    ("POST", "/logout", Access::Page),
    ("GET", "/api/v1/queues", Access::Read),
    ("GET", "/api/v1/queues/support/stats", Access::Read),
    ("GET", "/api/v1/agents/1001", Access::Read),
    ("GET", "/api/v1/calls/live", Access::Read),
    ("POST", "/api/v1/agents/1001/pause", Access::Operate),
    ("PUT", "/api/v1/agents/1001/tiers/support", Access::Tune),
    ("PUT", "/api/v1/agents/1001/daily-limit", Access::Tune),
    ("POST", "/api/v1/agents/1001/sales", Access::Tune),
    ("PUT", "/api/v1/vip/support/5551234", Access::Tune),
    ("DELETE", "/api/v1/vip/support/5551234", Access::Tune),
    ("POST", "/RPC2", Access::Tune),
    ("GET", "/", Access::Page),
    ("GET", "/api/v1/panel/events", Access::Read),
    ("GET", "/api/v1/panel/snapshot", Access::Read),
    ("POST", "/api/v1/calls/abc@host/listen", Access::Supervise),
    (
        "POST",
        "/internal/v1/calls/abc@host/listen",
        Access::Internal,
    ),
];

struct Fixture {
    state: AppState,
    crm_token: String,
}

const SUPERVISOR_SESSION: &str = "sup-session-id";
const ADMIN_SESSION: &str = "adm-session-id";
const EXPIRED_SESSION: &str = "old-session-id";
const CSRF: &str = "csrf-token-1";

async fn fixture() -> Fixture {
    let store = Store::connect("sqlite::memory:")
        .await
        .expect("in-memory SQLite");
    store.migrate().await.expect("migrate");
    for (name, role) in [("sam", UserRole::Supervisor), ("ada", UserRole::Admin)] {
        store
            .upsert_user(&User {
                name: name.to_owned(),
                password_hash: auth::hash_password("pw").expect("hash"),
                role,
                device: None,
                created_at_ms: 1,
            })
            .await
            .expect("user");
    }
    sessions(&store).await;
    let (row, crm_token) = auth::new_api_token("crm", 1);
    store.insert_api_token(&row).await.expect("token");
    let state = AppState::new(
        Arc::new(NoNode),
        Metrics::new(),
        Some("cluster-secret".to_owned()),
        store,
    );
    Fixture { state, crm_token }
}

/// (Re)creates the test sessions: a route like `/logout` ends the one it is called with.
async fn sessions(store: &Store) {
    let far = i64::MAX / 2;
    for (id, user, expires) in [
        (SUPERVISOR_SESSION, "sam", far),
        (ADMIN_SESSION, "ada", far),
        (EXPIRED_SESSION, "ada", 2),
    ] {
        let hash = auth::sha256_hex(id.as_bytes());
        store.delete_session(&hash).await.expect("delete session");
        store
            .insert_session(&hash, user, CSRF, 1, expires)
            .await
            .expect("session");
    }
}

fn request(fx: &Fixture, method: &str, path: &str, caller: Caller) -> Request<Body> {
    let mut b = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).expect("method"))
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json");
    let mut peer: SocketAddr = "192.0.2.9:40000".parse().expect("addr");
    let cookie = |id: &str| format!("{SESSION_COOKIE}={id}");
    b = match caller {
        Caller::Anonymous => b,
        Caller::BadToken => b.header(header::AUTHORIZATION, "Bearer cft_000000000000_nope"),
        Caller::WrongSecret => b.header(SECRET_HEADER, "not-it"),
        Caller::ExpiredSession => b.header(header::COOKIE, cookie(EXPIRED_SESSION)),
        Caller::Crm => b.header(header::AUTHORIZATION, format!("Bearer {}", fx.crm_token)),
        Caller::Supervisor => b
            .header(header::COOKIE, cookie(SUPERVISOR_SESSION))
            .header(CSRF_HEADER, CSRF),
        Caller::Admin => b
            .header(header::COOKIE, cookie(ADMIN_SESSION))
            .header(CSRF_HEADER, CSRF),
        Caller::Secret => b.header(SECRET_HEADER, "cluster-secret"),
        Caller::Loopback => {
            peer = "127.0.0.1:40000".parse().expect("addr");
            b
        }
    };
    let body = if method == "GET" {
        Body::empty()
    } else {
        Body::from(r#"{"device":"2001"}"#)
    };
    let mut req = b.body(body).expect("request");
    req.extensions_mut().insert(ConnectInfo(peer));
    req
}

fn refused(status: StatusCode, location: Option<&str>) -> bool {
    status == StatusCode::UNAUTHORIZED
        || status == StatusCode::FORBIDDEN
        || (status == StatusCode::SEE_OTHER
            && location.is_some_and(|l| l.starts_with("/login?next=")))
}

#[tokio::test]
async fn every_route_answers_each_caller_by_the_role_table() {
    let fx = fixture().await;
    let app = router(fx.state.clone());
    let mut wrong = Vec::new();
    for &(method, path, access) in ROUTES {
        for caller in CALLERS {
            sessions(&fx.state.store).await;
            let response = app
                .clone()
                .oneshot(request(&fx, method, path, caller))
                .await
                .expect("infallible");
            let status = response.status();
            let location = response
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok());
            let was_refused = refused(status, location);
            if was_refused == may(access, caller) {
                wrong.push(format!(
                    "{method} {path} as {caller:?}: {status} {location:?}"
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "answers against the role table:\n{}",
        wrong.join("\n")
    );
}

#[tokio::test]
async fn a_session_must_send_its_csrf_token_to_change_anything() {
    let fx = fixture().await;
    let app = router(fx.state.clone());
    for (csrf, want) in [
        (None, StatusCode::FORBIDDEN),
        (Some("wrong"), StatusCode::FORBIDDEN),
        (Some(CSRF), StatusCode::NO_CONTENT),
    ] {
        let mut b = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/admin/drain")
            .header(header::COOKIE, format!("{SESSION_COOKIE}={ADMIN_SESSION}"));
        if let Some(csrf) = csrf {
            b = b.header(CSRF_HEADER, csrf);
        }
        let response = app
            .clone()
            .oneshot(b.body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        assert_eq!(response.status(), want, "csrf {csrf:?}");
    }
    // An HTML form may carry the token as a field instead.
    for (form, want) in [
        ("csrf=wrong", StatusCode::FORBIDDEN),
        ("csrf=csrf-token-1", StatusCode::SEE_OTHER),
    ] {
        let req = Request::builder()
            .method(Method::POST)
            .uri("/logout")
            .header(
                header::COOKIE,
                format!("{SESSION_COOKIE}={SUPERVISOR_SESSION}"),
            )
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .expect("request");
        let response = app.clone().oneshot(req).await.expect("infallible");
        assert_eq!(response.status(), want, "form {form}");
    }
}

#[tokio::test]
async fn loopback_is_not_trusted_when_switched_off() {
    let fx = fixture().await;
    let app = router(fx.state.clone().with_trust_loopback(false));
    let response = app
        .oneshot(request(&fx, "GET", "/api/v1/nodes", Caller::Loopback))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn every_route_in_the_table_is_routed() {
    // A typo in the table would make its line pass for the wrong reason (404 is neither
    // allowed nor refused): every line must reach a route.
    let fx = fixture().await;
    let app = router(fx.state.clone());
    for &(method, path, _) in ROUTES {
        let response = app
            .clone()
            .oneshot(request(&fx, method, path, Caller::Anonymous))
            .await
            .expect("infallible");
        assert_ne!(
            response.status(),
            StatusCode::NOT_FOUND,
            "{method} {path} is not routed"
        );
    }
}
