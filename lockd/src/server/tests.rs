//! The HTTP API through `oneshot` requests (no socket), over the memory backend.

use std::net::SocketAddr;
use std::sync::LazyLock;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use callfleet_sign::{ClusterKey, Signer};
use http_body_util::BodyExt as _;
use serde_json::{json, Value};
use tower::ServiceExt as _;

use super::{router, Auth};
use crate::backend::Backend;

const SECRET: &str = "lockd-unit-test-secret-0123456789abcdef";

/// The signer of every request [`call`] sends.
static SIGNER: LazyLock<Signer> = LazyLock::new(|| Signer::new(ClusterKey::new(SECRET)));

fn app(backend: Backend) -> axum::Router {
    router(backend, Auth::new(ClusterKey::new(SECRET)))
}

/// A request signed by [`SIGNER`].
async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let signature = SIGNER.sign_now(method, path, body.unwrap_or("").as_bytes());
    send(app, method, path, body, Some(&signature), None).await
}

/// A request with `signature` (or none) from `peer` (or no peer address).
async fn send(
    app: &axum::Router,
    method: &str,
    path: &str,
    body: Option<&str>,
    signature: Option<&str>,
    peer: Option<SocketAddr>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    if let Some(signature) = signature {
        req = req.header(callfleet_sign::HEADER, signature);
    }
    let mut req = req.body(Body::from(body.unwrap_or("").to_owned())).unwrap();
    if let Some(peer) = peer {
        req.extensions_mut().insert(ConnectInfo(peer));
    }
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {bytes:?}"))
    };
    (status, value)
}

#[tokio::test]
async fn lease_life_cycle() {
    let app = app(Backend::memory());
    let (status, body) = call(
        &app,
        "POST",
        "/v1/locks/agent:1001",
        Some(r#"{"owner":"main-a","ttl_ms":5000}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["expires_in_ms"], 5000);
    let token = body["token"].as_u64().unwrap();

    let (status, body) = call(
        &app,
        "POST",
        "/v1/locks/agent:1001",
        Some(r#"{"owner":"main-b","ttl_ms":5000}"#),
    )
    .await;
    assert_eq!(
        (status, body),
        (StatusCode::CONFLICT, json!({"holder": "main-a"}))
    );

    let renew = json!({"owner": "main-a", "token": token, "ttl_ms": 8000}).to_string();
    let (status, body) = call(&app, "PUT", "/v1/locks/agent:1001", Some(&renew)).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"token": token, "expires_in_ms": 8000})
        )
    );

    let stale = json!({"owner": "main-a", "token": token - 1, "ttl_ms": 8000}).to_string();
    let (status, body) = call(&app, "PUT", "/v1/locks/agent:1001", Some(&stale)).await;
    assert_eq!(
        (status, body),
        (StatusCode::CONFLICT, json!({"holder": "main-a"}))
    );

    let release = json!({"owner": "main-a", "token": token}).to_string();
    let (status, body) = call(&app, "DELETE", "/v1/locks/agent:1001", Some(&release)).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (status, body) = call(&app, "DELETE", "/v1/locks/agent:1001", Some(&release)).await;
    assert_eq!(
        (status, body),
        (StatusCode::CONFLICT, json!({"holder": null}))
    );
    let (status, body) = call(&app, "PUT", "/v1/locks/agent:1001", Some(&renew)).await;
    assert_eq!(
        (status, body),
        (StatusCode::CONFLICT, json!({"holder": null}))
    );

    let (status, body) = call(
        &app,
        "POST",
        "/v1/locks/agent:1001",
        Some(r#"{"owner":"main-b","ttl_ms":5000}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["token"].as_u64().unwrap() > token);
}

const OK: &str = r#"{"owner":"a","ttl_ms":1000}"#;

async fn bad_request(app: &axum::Router, method: &str, path: &str, body: Option<&str>, says: &str) {
    let (status, got) = call(app, method, path, body).await;
    let what = format!("{method} {path} {body:?}: {got}");
    assert_eq!(status, StatusCode::BAD_REQUEST, "{what}");
    assert_eq!(got["error"], "bad_request", "{what}");
    let message = got["message"].as_str().unwrap();
    assert!(message.contains(says), "{what}: should say {says:?}");
}

#[tokio::test]
async fn bad_keys_get_400_with_a_reason() {
    let app = app(Backend::memory());
    let long = format!("/v1/locks/{}", "k".repeat(201));
    let cases = [
        ("/v1/locks/agent%201001", "the lock key has ' ' at byte 5"),
        ("/v1/locks/agent%0A1", "the lock key has '\\n' at byte 5"),
        ("/v1/locks/a%2Fb", "the lock key has '/' at byte 1"),
        ("/v1/locks/%FF", "bad lock key in the path"),
        (&long, "201 bytes long; the limit is 200"),
    ];
    for (path, says) in cases {
        bad_request(&app, "POST", path, Some(OK), says).await;
    }
}

#[tokio::test]
async fn bad_bodies_get_400_with_a_reason() {
    let app = app(Backend::memory());
    let cases = [
        ("POST", Some("{"), "bad JSON body"),
        ("POST", Some(r#"{"owner":"a"}"#), "missing field `ttl_ms`"),
        (
            "POST",
            Some(r#"{"owner":"a","ttl_ms":1,"x":1}"#),
            "unknown field `x`",
        ),
        (
            "POST",
            Some(r#"{"owner":"a","ttl_ms":-1}"#),
            "bad JSON body",
        ),
        ("POST", None, "Content-Type"),
        (
            "POST",
            Some(r#"{"owner":"a","ttl_ms":0}"#),
            "ttl_ms 0 is out of range 1..=3600000",
        ),
        (
            "POST",
            Some(r#"{"owner":"","ttl_ms":10}"#),
            "the owner is empty",
        ),
        (
            "POST",
            Some(r#"{"owner":"a\u0007","ttl_ms":10}"#),
            "control character",
        ),
        (
            "PUT",
            Some(r#"{"owner":"a","token":0,"ttl_ms":10}"#),
            "token 0 is never issued",
        ),
        (
            "PUT",
            Some(r#"{"owner":"a","ttl_ms":10}"#),
            "missing field `token`",
        ),
        (
            "DELETE",
            Some(r#"{"owner":"a","token":0}"#),
            "token 0 is never issued",
        ),
        ("DELETE", None, "Content-Type"),
    ];
    for (method, body, says) in cases {
        bad_request(&app, method, "/v1/locks/k", body, says).await;
    }
}

#[tokio::test]
async fn health_and_unknown_paths() {
    let app = app(Backend::memory());
    let (status, body) = call(&app, "GET", "/healthz", None).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"status": "ok", "backend": "memory"}))
    );
    let (status, body) = call(&app, "GET", "/v1/nothing", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], "no such endpoint: GET /v1/nothing");
}

#[tokio::test]
async fn a_backend_that_is_down_gets_503() {
    // Nothing listens on port 1: every connection is refused at once.
    let app = app(Backend::from_url("memcached://127.0.0.1:1").unwrap());
    let cases = [
        ("GET", "/healthz", None),
        ("POST", "/v1/locks/k", Some(OK)),
        (
            "PUT",
            "/v1/locks/k",
            Some(r#"{"owner":"a","token":5,"ttl_ms":10}"#),
        ),
        ("DELETE", "/v1/locks/k", Some(r#"{"owner":"a","token":5}"#)),
    ];
    for (method, path, body) in cases {
        let (status, got) = call(&app, method, path, body).await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{method} {path}: {got}"
        );
        assert_eq!(got["error"], "backend_unavailable");
        assert_eq!(got["message"], "cannot connect to memcached at 127.0.0.1:1");
    }
}

#[tokio::test]
async fn only_signed_requests_reach_the_locks() {
    let app = app(Backend::memory());
    let acquire = r#"{"owner":"main-a","ttl_ms":60000}"#;
    let (status, body) = call(&app, "POST", "/v1/locks/agent:1001", Some(acquire)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["token"].as_u64().unwrap();
    let release = json!({"owner": "main-a", "token": token}).to_string();
    let path = "/v1/locks/agent:1001";

    let stranger = Signer::new(ClusterKey::new("not the cluster's secret, but long enough"));
    let now = callfleet_sign::now_ms();
    let replayed = SIGNER.sign_now("PUT", path, br#"{"owner":"main-a","token":1,"ttl_ms":10}"#);
    let (status, _) = send(
        &app,
        "PUT",
        path,
        Some(r#"{"owner":"main-a","token":1,"ttl_ms":10}"#),
        Some(&replayed),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "the original request is served"
    );
    // (what the attacker sends, signature, what the refusal says)
    let cases: Vec<(&str, &str, String, &str)> = vec![
        ("DELETE", &release, String::new(), "not signed"),
        (
            "DELETE",
            &release,
            stranger.sign_now("DELETE", path, release.as_bytes()),
            "does not match",
        ),
        // Signed for another body: the token guessed into a genuine signature.
        (
            "DELETE",
            &release,
            SIGNER.sign_now("DELETE", path, br#"{"owner":"main-a","token":1}"#),
            "does not match",
        ),
        (
            "DELETE",
            &release,
            SIGNER.sign("DELETE", path, release.as_bytes(), now - 31_000),
            "away from this host's clock",
        ),
        (
            "DELETE",
            &release,
            SIGNER.sign("DELETE", path, release.as_bytes(), now + 31_000),
            "away from this host's clock",
        ),
        ("DELETE", &release, "cf1 garbage".to_owned(), "malformed"),
        (
            "PUT",
            r#"{"owner":"main-a","token":1,"ttl_ms":10}"#,
            replayed.clone(),
            "already received",
        ),
        ("POST", acquire, String::new(), "not signed"),
    ];
    for (method, body, signature, says) in cases {
        let signature = (!signature.is_empty()).then_some(signature.as_str());
        let (status, got) = send(&app, method, path, Some(body), signature, None).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {signature:?}: {got}"
        );
        assert_eq!(got["error"], "unauthenticated");
        let message = got["message"].as_str().unwrap();
        assert!(message.contains(says), "{message} should say {says:?}");
        assert!(
            !message.contains("main-a"),
            "a refusal names no holder: {message}"
        );
    }
    // The lease is untouched: its holder still holds it and releases it.
    let (status, body) = call(
        &app,
        "POST",
        path,
        Some(r#"{"owner":"intruder","ttl_ms":10}"#),
    )
    .await;
    assert_eq!(
        (status, body),
        (StatusCode::CONFLICT, json!({"holder": "main-a"}))
    );
    let (status, _) = call(&app, "DELETE", path, Some(&release)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Health stays open (it says nothing of the locks).
    let (status, _) = send(&app, "GET", "/healthz", None, None, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_source_that_keeps_failing_is_turned_away() {
    let app = app(Backend::memory());
    let attacker: SocketAddr = "127.0.0.66:40000".parse().unwrap();
    let node: SocketAddr = "127.0.0.67:40000".parse().unwrap();
    let body = Some(OK);
    for i in 0..10 {
        let (status, _) = send(&app, "POST", "/v1/locks/k", body, None, Some(attacker)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    // Now even a genuine signature from that address is not looked at.
    let signature = SIGNER.sign_now("POST", "/v1/locks/k", OK.as_bytes());
    let (status, got) = send(
        &app,
        "POST",
        "/v1/locks/k",
        body,
        Some(&signature),
        Some(attacker),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{got}");
    assert_eq!(got["error"], "too_many_failures");
    // Another address is served.
    let (status, got) = send(
        &app,
        "POST",
        "/v1/locks/k",
        body,
        Some(&signature),
        Some(node),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{got}");
}
