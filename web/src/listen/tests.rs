//! The listen routes through the whole router (guard included), with a fake node.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::{to_bytes, Body};
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use axum::response::Response;
use tower::ServiceExt;

use super::ListenMode;
use crate::api::{router, AppState, BoxFuture, NodeApi, SECRET_HEADER};
use crate::error::ApiError;
use crate::metrics::Metrics;

/// A node holding call `held`; records the listen requests that reach it.
#[derive(Default)]
struct Node {
    /// (route, call, device, mode)
    asked: Mutex<Vec<(&'static str, String, String, ListenMode)>>,
}

fn outcome(call_id: &str) -> Result<(), ApiError> {
    match call_id {
        "held" => Ok(()),
        "queued" => Err(ApiError::Conflict {
            reason: "call is not bridged to an agent",
        }),
        _ => Err(ApiError::NotFound { what: "call" }),
    }
}

impl NodeApi for Node {
    fn nodes(&self) -> serde_json::Value {
        serde_json::json!([])
    }
    fn calls(&self) -> BoxFuture<'static, Result<serde_json::Value, ApiError>> {
        Box::pin(async { Ok(serde_json::json!([])) })
    }
    fn drain(&self) -> BoxFuture<'static, Result<(), ApiError>> {
        Box::pin(async { Ok(()) })
    }
    fn agents(&self) -> BoxFuture<'static, Result<serde_json::Value, ApiError>> {
        Box::pin(async { Ok(serde_json::json!([])) })
    }
    fn agent_login(&self, _: String, _: String) -> BoxFuture<'static, Result<(), ApiError>> {
        Box::pin(async { Ok(()) })
    }
    fn agent_logout(&self, _: String) -> BoxFuture<'static, Result<(), ApiError>> {
        Box::pin(async { Ok(()) })
    }
    fn listen(
        &self,
        call_id: String,
        device: String,
        mode: ListenMode,
    ) -> BoxFuture<'static, Result<(), ApiError>> {
        let r = outcome(&call_id);
        self.record("public", call_id, device, mode);
        Box::pin(async move { r })
    }
    fn listen_here(
        &self,
        call_id: String,
        device: String,
        mode: ListenMode,
    ) -> BoxFuture<'static, Result<(), ApiError>> {
        let r = outcome(&call_id);
        self.record("internal", call_id, device, mode);
        Box::pin(async move { r })
    }
}

impl Node {
    fn record(&self, route: &'static str, call: String, device: String, mode: ListenMode) {
        self.asked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((route, call, device, mode));
    }

    fn asked(&self) -> Vec<(&'static str, String, String, ListenMode)> {
        self.asked.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

async fn state(node: &Arc<Node>, secret: Option<&str>) -> AppState {
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

async fn post(
    state: AppState,
    uri: &str,
    body: &str,
    peer: &str,
    secret: Option<&str>,
) -> (StatusCode, String) {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(secret) = secret {
        request = request.header(SECRET_HEADER, secret);
    }
    let mut request = request
        .body(Body::from(body.to_owned()))
        .expect("valid request");
    let addr: SocketAddr = peer.parse().expect("peer address");
    request.extensions_mut().insert(ConnectInfo(addr));
    let response: Response = router(state).oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = to_bytes(response.into_body(), 1 << 20).await.expect("body");
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn listen_requests_map_outcomes_and_bad_input_to_statuses() {
    let node = Arc::new(Node::default());
    let local = "127.0.0.1:40000";
    let cases = [
        (
            "held",
            r#"{"device":"2001","mode":"listen"}"#,
            StatusCode::ACCEPTED,
        ),
        (
            "held",
            r#"{"device":"2001","mode":"whisper"}"#,
            StatusCode::ACCEPTED,
        ),
        ("held", r#"{"device":"2001"}"#, StatusCode::ACCEPTED),
        ("gone", r#"{"device":"2001"}"#, StatusCode::NOT_FOUND),
        ("queued", r#"{"device":"2001"}"#, StatusCode::CONFLICT),
        (
            "held",
            r#"{"device":"2001","mode":"barge"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "held",
            r#"{"device":"","mode":"listen"}"#,
            StatusCode::BAD_REQUEST,
        ),
        ("held", r#"{"device":"20 01"}"#, StatusCode::BAD_REQUEST),
    ];
    for (call, body, want) in cases {
        let uri = format!("/api/v1/calls/{call}/listen");
        let (status, text) = post(state(&node, None).await, &uri, body, local, None).await;
        assert_eq!(status, want, "{call} {body}: {text}");
        if status == StatusCode::BAD_REQUEST {
            assert!(text.contains("\"error\""), "{text}");
        }
    }
    let modes: Vec<ListenMode> = node.asked().into_iter().map(|a| a.3).collect();
    use ListenMode::*;
    assert_eq!(
        modes,
        [Listen, Whisper, Listen, Listen, Listen],
        "bad input never reaches the node"
    );
    // A Call-ID with characters that need escaping arrives decoded.
    let (status, _) = post(
        state(&node, None).await,
        "/api/v1/calls/a%40b%2Fc/listen",
        r#"{"device":"2001"}"#,
        local,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        node.asked().last().map(|a| a.1.clone()),
        Some("a@b/c".to_owned())
    );
}

#[tokio::test]
async fn the_internal_route_admits_only_nodes() {
    let node = Arc::new(Node::default());
    let uri = "/internal/v1/calls/held/listen";
    let body = r#"{"device":"2001","mode":"whisper"}"#;
    let remote = "10.1.2.3:40000";
    let cases = [
        // (peer, configured secret, presented secret, status)
        (remote, Some("s3cret"), None, StatusCode::UNAUTHORIZED),
        (remote, None, None, StatusCode::UNAUTHORIZED),
        (remote, Some("s3cret"), Some("guess"), StatusCode::FORBIDDEN),
        (remote, None, Some("s3cret"), StatusCode::FORBIDDEN),
        (remote, Some("s3cret"), Some("s3cret"), StatusCode::ACCEPTED),
        ("127.0.0.1:40000", None, None, StatusCode::ACCEPTED),
    ];
    for (peer, secret, presented, want) in cases {
        let (status, text) = post(state(&node, secret).await, uri, body, peer, presented).await;
        assert_eq!(status, want, "{peer} {secret:?} {presented:?}: {text}");
    }
    let asked = node.asked();
    assert_eq!(
        asked.len(),
        2,
        "only admitted requests reach the node: {asked:?}"
    );
    assert!(asked.iter().all(|a| a
        == &(
            "internal",
            "held".to_owned(),
            "2001".to_owned(),
            ListenMode::Whisper
        )));
}
