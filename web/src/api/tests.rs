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

use super::{router, AppState, BoxFuture, NodeApi, SECRET_HEADER};
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
    let app = router(state(&node, None).await);
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

/// Sends one request through a fresh router, as if from `peer` (when served with connect info).
async fn send(
    state: AppState,
    method: Method,
    uri: &str,
    peer: Option<&str>,
    secret: Option<&str>,
) -> Response {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(secret) = secret {
        request = request.header(SECRET_HEADER, secret);
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

#[tokio::test]
async fn drain_is_admitted_for_loopback_or_secret_only() {
    const SECRET: &str = "s3cret";
    // (peer, configured secret, presented header, expected status)
    let cases = [
        (Some("127.0.0.1:40000"), None, None, StatusCode::NO_CONTENT),
        (
            Some("127.0.0.13:40000"),
            Some(SECRET),
            None,
            StatusCode::NO_CONTENT,
        ),
        (Some("[::1]:40000"), None, None, StatusCode::NO_CONTENT),
        (
            Some("[::ffff:127.0.0.1]:40000"),
            None,
            None,
            StatusCode::NO_CONTENT,
        ),
        (
            Some("192.0.2.10:40000"),
            Some(SECRET),
            Some(SECRET),
            StatusCode::NO_CONTENT,
        ),
        (None, Some(SECRET), Some(SECRET), StatusCode::NO_CONTENT),
        (
            Some("192.0.2.10:40000"),
            Some(SECRET),
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            Some("192.0.2.10:40000"),
            Some(SECRET),
            Some("s3cre"),
            StatusCode::FORBIDDEN,
        ),
        (
            Some("192.0.2.10:40000"),
            Some(SECRET),
            Some("s3cret!"),
            StatusCode::FORBIDDEN,
        ),
        (
            Some("192.0.2.10:40000"),
            None,
            Some(SECRET),
            StatusCode::FORBIDDEN,
        ),
        (
            Some("192.0.2.10:40000"),
            Some(""),
            Some(""),
            StatusCode::FORBIDDEN,
        ),
        (
            Some("[::ffff:192.0.2.10]:40000"),
            None,
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (None, None, None, StatusCode::UNAUTHORIZED),
    ];
    for (peer, secret, presented, want) in cases {
        let node = FakeNode::new(true);
        let state = state(&node, secret).await;
        let uri = "/api/v1/admin/drain";
        let response = send(state, Method::POST, uri, peer, presented).await;
        let case = format!("peer {peer:?}, secret {secret:?}, header {presented:?}");
        assert_eq!(response.status(), want, "{case}");
        let drained = usize::from(want == StatusCode::NO_CONTENT);
        assert_eq!(node.drains.load(Ordering::SeqCst), drained, "{case}");
        let body = body_text(response).await;
        if want == StatusCode::FORBIDDEN {
            assert_eq!(body, json!({ "error": "forbidden" }).to_string(), "{case}");
        } else if want == StatusCode::UNAUTHORIZED {
            let want_body = json!({ "error": "authentication required" }).to_string();
            assert_eq!(body, want_body, "{case}");
        } else {
            assert!(body.is_empty(), "{case}: {body}");
        }
    }
}

#[tokio::test]
async fn drain_with_database_down_is_503() {
    let node = FakeNode::new(false);
    let peer = Some("127.0.0.1:40000");
    let uri = "/api/v1/admin/drain";
    let response = send(state(&node, None).await, Method::POST, uri, peer, None).await;
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
    for (method, uri, want) in cases {
        let response = send(state(&node, None).await, method.clone(), uri, peer, None).await;
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
    let debug = format!("{:?}", state(&node, Some("s3cret")).await);
    assert!(!debug.contains("s3cret"), "{debug}");
    assert!(debug.contains("<redacted>"), "{debug}");
}
