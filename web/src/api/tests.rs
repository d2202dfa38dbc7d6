//! Tests for the router: every route through `oneshot`, with a fake [`NodeApi`] and no socket.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use axum::response::Response;
use serde_json::json;
use tower::ServiceExt;

use super::{router, AppState, BoxFuture, NodeApi, SIGNATURE_HEADER};
use crate::error::ApiError;
use crate::metrics::{Metrics, Outcome};

/// A node whose database is either up or down; counts drain requests that reach it.
struct FakeNode {
    db_up: bool,
    drains: AtomicUsize,
}

impl FakeNode {
    fn new(db_up: bool) -> Arc<Self> {
        Arc::new(Self {
            db_up,
            drains: AtomicUsize::new(0),
        })
    }

    fn db_error(&self) -> Result<(), ApiError> {
        if self.db_up {
            return Ok(());
        }
        let cause = io::Error::new(io::ErrorKind::ConnectionRefused, "pool timed out");
        Err(ApiError::unavailable("database", cause))
    }
}

fn nodes_json() -> serde_json::Value {
    json!([{ "name": "main-a", "role": "main", "alive": true, "calls": 3, "capacity": 500 }])
}

fn calls_json() -> serde_json::Value {
    json!([{ "node": "main-a", "call_id": "abc@127.0.0.1", "state": "answered" }])
}

impl NodeApi for FakeNode {
    fn nodes(&self) -> serde_json::Value {
        nodes_json()
    }

    fn calls(&self) -> BoxFuture<'static, Result<serde_json::Value, ApiError>> {
        let result = self.db_error().map(|()| calls_json());
        Box::pin(async move { result })
    }

    fn drain(&self) -> BoxFuture<'static, Result<(), ApiError>> {
        let result = self.db_error();
        if result.is_ok() {
            self.drains.fetch_add(1, Ordering::SeqCst);
        }
        Box::pin(async move { result })
    }

    fn agents(&self) -> BoxFuture<'static, Result<serde_json::Value, ApiError>> {
        let result = self
            .db_error()
            .map(|()| serde_json::json!([{"extension": "1001", "state": "available"}]));
        Box::pin(async move { result })
    }

    fn agent_login(&self, ext: String, device: String) -> BoxFuture<'static, Result<(), ApiError>> {
        Box::pin(async move {
            match (ext.as_str(), device.as_str()) {
                ("1001", "2001") => Ok(()),
                ("1001", _) => Err(ApiError::NotFound { what: "device" }),
                ("busy", _) => Err(ApiError::Conflict {
                    reason: "agent is in a call",
                }),
                _ => Err(ApiError::NotFound { what: "agent" }),
            }
        })
    }

    fn agent_logout(&self, ext: String) -> BoxFuture<'static, Result<(), ApiError>> {
        Box::pin(async move {
            if ext == "1001" {
                Ok(())
            } else {
                Err(ApiError::Conflict {
                    reason: "agent is in a call",
                })
            }
        })
    }
}

#[tokio::test]
async fn agent_login_and_logout_map_outcomes_to_statuses() {
    let node = FakeNode::new(true);
    let app = router(
        state(&node, None)
            .await
            .with_operator_token(OPERATOR.to_owned()),
    );
    let cases = [
        (
            "/api/v1/agents/1001/login",
            r#"{"device":"2001"}"#,
            StatusCode::NO_CONTENT,
        ),
        (
            "/api/v1/agents/1001/login",
            r#"{"device":"9999"}"#,
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v1/agents/busy/login",
            r#"{"device":"2001"}"#,
            StatusCode::CONFLICT,
        ),
        (
            "/api/v1/agents/1001/login",
            r#"{"dev":"2001"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("/api/v1/agents/1001/logout", "", StatusCode::NO_CONTENT),
        ("/api/v1/agents/busy/logout", "", StatusCode::CONFLICT),
    ];
    for (uri, body, want) in cases {
        let mut req = axum::http::Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {OPERATOR}"))
            .body(axum::body::Body::from(body))
            .unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo::<std::net::SocketAddr>(
                "127.0.0.1:40000".parse().unwrap(),
            ));
        let resp = tower::ServiceExt::oneshot(app.clone(), req).await.unwrap();
        assert_eq!(resp.status(), want, "{uri} {body}");
    }
}

/// A loopback peer: the node's operator on this host.
const LOOPBACK: Option<&str> = Some("127.0.0.1:40000");

async fn state(node: &Arc<FakeNode>, secret: Option<&str>) -> AppState {
    let store = callfleet_store::Store::connect("sqlite::memory:")
        .await
        .expect("in-memory SQLite");
    store.migrate().await.expect("migrate in-memory SQLite");
    AppState::new(
        node.clone(),
        Metrics::new(),
        secret.map(str::to_owned),
        store,
    )
}

/// Sends one request through a fresh router, as if from `peer` (when served with connect info),
/// signed with `secret` when given.
async fn send(
    state: AppState,
    method: Method,
    uri: &str,
    peer: Option<&str>,
    secret: Option<&str>,
) -> Response {
    let headers: Vec<(&str, String)> = secret
        .map(|s| (SIGNATURE_HEADER, signed(s, method.as_str(), uri)))
        .into_iter()
        .collect();
    send_with(state, method, uri, peer, &headers).await
}

/// A signature of `method uri` with an empty body under `secret`.
fn signed(secret: &str, method: &str, uri: &str) -> String {
    callfleet_sign::Signer::new(callfleet_sign::ClusterKey::new(secret)).sign_now(method, uri, b"")
}

/// Sends one request with these headers.
async fn send_with(
    state: AppState,
    method: Method,
    uri: &str,
    peer: Option<&str>,
    headers: &[(&str, String)],
) -> Response {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let mut request = request.body(Body::empty()).expect("valid request");
    if let Some(peer) = peer {
        let addr: SocketAddr = peer.parse().expect("peer address");
        request.extensions_mut().insert(ConnectInfo(addr));
    }
    router(state).oneshot(request).await.expect("infallible")
}

async fn body_text(response: Response) -> String {
    let bytes = to_bytes(response.into_body(), 1 << 20).await.expect("body");
    String::from_utf8(bytes.to_vec()).expect("utf-8 body")
}

fn content_type(response: &Response) -> &str {
    response.headers()[header::CONTENT_TYPE]
        .to_str()
        .expect("ASCII content type")
}

#[tokio::test]
async fn read_routes_answer_status_type_and_body() {
    let node = FakeNode::new(true);
    let cases = [
        ("/healthz", "text/plain; charset=utf-8", "ok".to_owned()),
        (
            "/api/v1/nodes",
            "application/json",
            nodes_json().to_string(),
        ),
        (
            "/api/v1/calls",
            "application/json",
            calls_json().to_string(),
        ),
    ];
    for (uri, want_type, want_body) in cases {
        let response = send(state(&node, None).await, Method::GET, uri, LOOPBACK, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        assert_eq!(content_type(&response), want_type, "{uri}");
        assert_eq!(body_text(response).await, want_body, "{uri}");
    }
}

#[tokio::test]
async fn calls_with_database_down_is_503_json() {
    let node = FakeNode::new(false);
    let response = send(
        state(&node, None).await,
        Method::GET,
        "/api/v1/calls",
        LOOPBACK,
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(content_type(&response), "application/json");
    let body: serde_json::Value =
        serde_json::from_str(&body_text(response).await).expect("JSON body");
    assert_eq!(body, json!({ "error": "database unavailable" }));
}

const SECRET: &str = "api-test-cluster-secret-0123456789abcdef";
const OPERATOR: &str = "cfo_0123456789abcdef";

#[tokio::test]
async fn drain_needs_a_signature_or_the_operator_token_from_this_host() {
    let uri = "/api/v1/admin/drain";
    let sig = |secret: &str| (SIGNATURE_HEADER, signed(secret, "POST", uri));
    let bearer = |token: &str| ("authorization", format!("Bearer {token}"));
    let evil = ("origin", "http://evil.example".to_owned());
    let host = ("host", "127.0.0.11:8080".to_owned());
    let lo = Some("127.0.0.1:40000");
    let remote = Some("192.0.2.10:40000");
    // (peer, configured secret, headers, expected status)
    type Case<'a> = (
        Option<&'a str>,
        Option<&'a str>,
        Vec<(&'a str, String)>,
        StatusCode,
    );
    let cases: Vec<Case> = vec![
        // A program on this host: reads only without credentials.
        (lo, Some(SECRET), vec![], StatusCode::UNAUTHORIZED),
        (
            Some("[::1]:40000"),
            None,
            vec![host.clone()],
            StatusCode::UNAUTHORIZED,
        ),
        // The operator token, from this host only, and not through a proxy or a page.
        (lo, None, vec![bearer(OPERATOR)], StatusCode::NO_CONTENT),
        (
            Some("[::ffff:127.0.0.1]:40000"),
            None,
            vec![host.clone(), bearer(OPERATOR)],
            StatusCode::NO_CONTENT,
        ),
        (
            lo,
            None,
            vec![bearer("cfo_0123456789abcdee")],
            StatusCode::UNAUTHORIZED,
        ),
        (
            remote,
            None,
            vec![bearer(OPERATOR)],
            StatusCode::UNAUTHORIZED,
        ),
        (
            lo,
            None,
            vec![bearer(OPERATOR), ("x-forwarded-for", "203.0.113.9".into())],
            StatusCode::UNAUTHORIZED,
        ),
        (
            lo,
            None,
            vec![bearer(OPERATOR), ("host", "evil.example:8080".into())],
            StatusCode::UNAUTHORIZED,
        ),
        (
            lo,
            None,
            vec![host.clone(), bearer(OPERATOR), evil.clone()],
            StatusCode::UNAUTHORIZED,
        ),
        (
            lo,
            None,
            vec![bearer(OPERATOR), ("sec-fetch-site", "cross-site".into())],
            StatusCode::UNAUTHORIZED,
        ),
        // Signed with the cluster secret: from anywhere, but not from a page.
        (
            remote,
            Some(SECRET),
            vec![sig(SECRET)],
            StatusCode::NO_CONTENT,
        ),
        (
            None,
            Some(SECRET),
            vec![sig(SECRET)],
            StatusCode::NO_CONTENT,
        ),
        (
            Some("127.0.0.13:40000"),
            Some(SECRET),
            vec![sig(SECRET)],
            StatusCode::NO_CONTENT,
        ),
        (
            remote,
            Some(SECRET),
            vec![sig("another-cluster-secret-0123456789abcdef")],
            StatusCode::UNAUTHORIZED,
        ),
        (remote, None, vec![sig(SECRET)], StatusCode::UNAUTHORIZED),
        (
            lo,
            Some(SECRET),
            vec![host.clone(), sig(SECRET), evil.clone()],
            StatusCode::UNAUTHORIZED,
        ),
        (
            remote,
            Some(SECRET),
            vec![(SIGNATURE_HEADER, "cf1 nonsense".into())],
            StatusCode::UNAUTHORIZED,
        ),
        // The clear-text secret of earlier versions, even the right one.
        (
            remote,
            Some(SECRET),
            vec![("x-callfleet-secret", SECRET.into())],
            StatusCode::FORBIDDEN,
        ),
        (
            lo,
            Some(SECRET),
            vec![("x-callfleet-secret", SECRET.into())],
            StatusCode::FORBIDDEN,
        ),
        (remote, Some(SECRET), vec![], StatusCode::UNAUTHORIZED),
        (
            Some("[::ffff:192.0.2.10]:40000"),
            None,
            vec![],
            StatusCode::UNAUTHORIZED,
        ),
        (None, None, vec![], StatusCode::UNAUTHORIZED),
    ];
    for (peer, secret, headers, want) in cases {
        let node = FakeNode::new(true);
        let state = state(&node, secret)
            .await
            .with_operator_token(OPERATOR.to_owned());
        let response = send_with(state, Method::POST, uri, peer, &headers).await;
        let case = format!("peer {peer:?}, secret {secret:?}, headers {headers:?}");
        assert_eq!(response.status(), want, "{case}");
        let drained = usize::from(want == StatusCode::NO_CONTENT);
        assert_eq!(node.drains.load(Ordering::SeqCst), drained, "{case}");
    }
}

#[tokio::test]
async fn a_signed_request_is_taken_once_and_wrong_ones_are_turned_away() {
    let node = FakeNode::new(true);
    let state = state(&node, Some(SECRET)).await;
    let uri = "/api/v1/admin/drain";
    let peer = Some("192.0.2.20:40000");
    let captured = vec![(SIGNATURE_HEADER, signed(SECRET, "POST", uri))];
    let response = send_with(state.clone(), Method::POST, uri, peer, &captured).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let replayed = send_with(
        state.clone(),
        Method::POST,
        uri,
        Some("192.0.2.21:40000"),
        &captured,
    )
    .await;
    assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED, "a replay");
    assert!(body_text(replayed)
        .await
        .contains("authentication required"));
    assert_eq!(node.drains.load(Ordering::SeqCst), 1);
    // Ten wrong signatures from one address, then even a right one from there is refused
    // unread, while another address is served.
    let attacker = Some("192.0.2.66:40000");
    for i in 0..10 {
        let wrong = vec![(
            SIGNATURE_HEADER,
            signed("not-the-secret-but-as-long-as-one!!", "POST", uri),
        )];
        let response = send_with(state.clone(), Method::POST, uri, attacker, &wrong).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let right = vec![(SIGNATURE_HEADER, signed(SECRET, "POST", uri))];
    let response = send_with(state.clone(), Method::POST, uri, attacker, &right).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    let response = send(
        state.clone(),
        Method::POST,
        uri,
        Some("192.0.2.67:40000"),
        Some(SECRET),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    // Reading needs no credentials from this host, so the turned-away address still reads
    // what it could (it sends none).
    let response = send(state, Method::GET, "/api/v1/nodes", LOOPBACK, None).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn drain_with_database_down_is_503() {
    let node = FakeNode::new(false);
    let uri = "/api/v1/admin/drain";
    let state = state(&node, Some(SECRET)).await;
    let response = send(
        state,
        Method::POST,
        uri,
        Some("192.0.2.1:4000"),
        Some(SECRET),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(node.drains.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn wrong_method_or_path_is_rejected() {
    let node = FakeNode::new(true);
    let peer = Some("127.0.0.1:40000");
    let cases = [
        (
            Method::GET,
            "/api/v1/admin/drain",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (Method::POST, "/healthz", StatusCode::METHOD_NOT_ALLOWED),
        (Method::GET, "/api/v1/nope", StatusCode::NOT_FOUND),
    ];
    let operator = [("authorization", format!("Bearer {OPERATOR}"))];
    for (method, uri, want) in cases {
        let state = state(&node, None)
            .await
            .with_operator_token(OPERATOR.to_owned());
        let response = send_with(state, method.clone(), uri, peer, &operator).await;
        assert_eq!(response.status(), want, "{method} {uri}");
    }
    assert_eq!(node.drains.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn metrics_route_serves_openmetrics_text() {
    let node = FakeNode::new(true);
    let state = state(&node, None).await;
    state.metrics.call_outcome(Outcome::Redirected);
    state.metrics.redirect("main-b");
    let response = send(state, Method::GET, "/metrics", LOOPBACK, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(content_type(&response), Metrics::CONTENT_TYPE);
    let text = body_text(response).await;
    for line in [
        "callfleet_calls_total{outcome=\"redirected\"} 1",
        "callfleet_redirects_total{target=\"main-b\"} 1",
        "# EOF",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
}

#[tokio::test]
async fn debug_redacts_the_secret() {
    let node = FakeNode::new(true);
    let state = state(&node, Some("s3cret-of-the-cluster-0123456789abc"))
        .await
        .with_operator_token("cfo_operator".to_owned());
    let debug = format!("{state:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
    assert!(!debug.contains("cfo_operator"), "{debug}");
    assert!(debug.contains("<redacted>"), "{debug}");
}
