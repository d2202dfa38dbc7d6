//! The role table over the whole router: every route, every kind of caller, and what each may
//! do, written out here from the product's policy rather than computed from `Principal::allows`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use callfleet_store::{Store, User, UserRole};
use tower::ServiceExt;

use super::{router, AppState, SIGNATURE_HEADER};
use crate::auth::{self, Access, CSRF_HEADER, SESSION_COOKIE};
use crate::crm::tests::NoNode;
use crate::metrics::Metrics;

/// Every kind of caller the guard tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    BadToken,
    /// Signed with another secret.
    WrongSignature,
    /// The right secret, in clear, as earlier versions sent it.
    LegacySecret,
    ExpiredSession,
    Crm,
    Supervisor,
    Admin,
    /// Signed with the cluster secret: another node, the CLI.
    Signed,
    /// The operator token, from this host.
    Operator,
    /// A program on this host with no credentials.
    Loopback,
    /// A page of another site in a browser on this host, with the operator token (as a
    /// browser would send cached credentials).
    CrossSite,
    /// A reverse proxy on this host passing on someone's request.
    Forwarded,
}

const CALLERS: [Caller; 13] = [
    Caller::Anonymous,
    Caller::BadToken,
    Caller::WrongSignature,
    Caller::LegacySecret,
    Caller::ExpiredSession,
    Caller::Crm,
    Caller::Supervisor,
    Caller::Admin,
    Caller::Signed,
    Caller::Operator,
    Caller::Loopback,
    Caller::CrossSite,
    Caller::Forwarded,
];

/// The policy: who may use a route of each level.
fn may(access: Access, caller: Caller) -> bool {
    use Caller::*;
    let allowed: &[Caller] = match access {
        Access::Read => &[Crm, Supervisor, Admin, Signed, Operator, Loopback],
        Access::Operate => &[Crm, Supervisor, Admin, Signed, Operator],
        Access::Supervise => &[Supervisor, Admin, Signed, Operator],
        Access::Tune => &[Crm, Admin, Signed, Operator],
        Access::Admin => &[Admin, Signed, Operator],
        Access::Internal => &[Signed],
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
    ("GET", "/api/v1/calls/abc@host/quality", Access::Read),
    ("GET", "/calls", Access::Page),
    ("GET", "/api/v1/calls/abc@host/trace", Access::Read),
    ("GET", "/api/v1/calls/abc@host/trace.pcap", Access::Read),
    ("GET", "/calls/abc@host/trace", Access::Page),
    ("GET", "/internal/v1/calls/abc@host/trace", Access::Internal),
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
const SECRET: &str = "roles-test-cluster-secret-0123456789abc";
const OPERATOR: &str = "cfo_roles_operator_token";

async fn fixture() -> Fixture {
    let store = Store::connect("sqlite::memory:")
        .await
        .expect("in-memory SQLite");
    store.migrate().await.expect("migrate");
    // The supervisor's own phone is the one the listen body names; the admin has none.
    for (name, role, device) in [
        ("sam", UserRole::Supervisor, Some("2001")),
        ("ada", UserRole::Admin, None),
    ] {
        store
            .upsert_user(&User {
                name: name.to_owned(),
                password_hash: auth::hash_password("pw").expect("hash"),
                role,
                device: device.map(str::to_owned),
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
        Some(SECRET.to_owned()),
        store,
    )
    .with_operator_token(OPERATOR.to_owned());
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
    let body = if method == "GET" {
        ""
    } else {
        r#"{"device":"2001"}"#
    };
    let mut b = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).expect("method"))
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::HOST, "127.0.0.11:8080");
    // Callers refused for their credentials each come from an address of their own: their
    // failures count against it, and must not turn the others away.
    let mut peer: SocketAddr = "192.0.2.9:40000".parse().expect("addr");
    let loopback: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
    let sign = |secret: &str| {
        let signer = callfleet_sign::Signer::new(callfleet_sign::ClusterKey::new(secret));
        signer.sign_now(method, path, body.as_bytes())
    };
    let cookie = |id: &str| format!("{SESSION_COOKIE}={id}");
    b = match caller {
        Caller::Anonymous => b,
        Caller::BadToken => {
            peer = "192.0.2.1:40000".parse().expect("addr");
            b.header(header::AUTHORIZATION, "Bearer cft_000000000000_nope")
        }
        Caller::WrongSignature => {
            peer = "192.0.2.2:40000".parse().expect("addr");
            b.header(
                SIGNATURE_HEADER,
                sign("another-cluster-secret-0123456789abcdef"),
            )
        }
        Caller::LegacySecret => {
            peer = "192.0.2.3:40000".parse().expect("addr");
            b.header("x-callfleet-secret", SECRET)
        }
        Caller::ExpiredSession => b.header(header::COOKIE, cookie(EXPIRED_SESSION)),
        Caller::Crm => b.header(header::AUTHORIZATION, format!("Bearer {}", fx.crm_token)),
        Caller::Supervisor => b
            .header(header::COOKIE, cookie(SUPERVISOR_SESSION))
            .header(CSRF_HEADER, CSRF),
        Caller::Admin => b
            .header(header::COOKIE, cookie(ADMIN_SESSION))
            .header(CSRF_HEADER, CSRF),
        Caller::Signed => b.header(SIGNATURE_HEADER, sign(SECRET)),
        Caller::Operator => {
            peer = loopback;
            b.header(header::AUTHORIZATION, format!("Bearer {OPERATOR}"))
        }
        Caller::Loopback => {
            peer = loopback;
            b
        }
        Caller::CrossSite => {
            peer = loopback;
            b.header(header::AUTHORIZATION, format!("Bearer {OPERATOR}"))
                .header(header::ORIGIN, "http://evil.example")
        }
        Caller::Forwarded => {
            peer = loopback;
            b.header("x-forwarded-for", "203.0.113.7")
        }
    };
    let mut req = b.body(Body::from(body)).expect("request");
    req.extensions_mut().insert(ConnectInfo(peer));
    req
}

fn refused(status: StatusCode, location: Option<&str>) -> bool {
    status == StatusCode::UNAUTHORIZED
        || status == StatusCode::FORBIDDEN
        || status == StatusCode::TOO_MANY_REQUESTS
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
