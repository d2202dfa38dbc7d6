//! `/metrics` through `oneshot` requests over the memory backend.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use std::sync::LazyLock;

use callfleet_sign::{ClusterKey, Signer};

use crate::backend::Backend;
use crate::{router, Auth};

const SECRET: &str = "lockd-metrics-test-secret-0123456789abcdef";

/// Signs the lock requests (`/metrics` itself needs no credentials).
static SIGNER: LazyLock<Signer> = LazyLock::new(|| Signer::new(ClusterKey::new(SECRET)));

fn app(backend: Backend) -> axum::Router {
    router(backend, Auth::new(ClusterKey::new(SECRET)))
}

async fn send(app: &axum::Router, method: &str, path: &str, body: &str) -> (StatusCode, String) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    if path.starts_with("/v1/") {
        req = req.header(
            callfleet_sign::HEADER,
            SIGNER.sign_now(method, path, body.as_bytes()),
        );
    }
    let req = req.body(Body::from(body.to_owned())).expect("request");
    let resp = app.clone().oneshot(req).await.expect("answer");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
}

#[tokio::test]
async fn leases_are_counted_by_outcome() {
    let app = app(Backend::memory());
    let (status, _) = send(&app, "GET", "/metrics", "").await;
    assert_eq!(status, StatusCode::OK);

    let take = r#"{"owner":"a","ttl_ms":5000}"#;
    let (status, body) = send(&app, "POST", "/v1/locks/agent:1", take).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token: serde_json::Value = serde_json::from_str(&body).expect("json");
    let token = token["token"].as_u64().expect("token");
    let (status, _) = send(
        &app,
        "POST",
        "/v1/locks/agent:1",
        r#"{"owner":"b","ttl_ms":5000}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let renew = format!(r#"{{"owner":"a","token":{token},"ttl_ms":5000}}"#);
    assert_eq!(
        send(&app, "PUT", "/v1/locks/agent:1", &renew).await.0,
        StatusCode::OK
    );
    let wrong = format!(r#"{{"owner":"b","token":{token}}}"#);
    assert_eq!(
        send(&app, "DELETE", "/v1/locks/agent:1", &wrong).await.0,
        StatusCode::CONFLICT
    );
    let release = format!(r#"{{"owner":"a","token":{token}}}"#);
    assert_eq!(
        send(&app, "DELETE", "/v1/locks/agent:1", &release).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(send(&app, "GET", "/healthz", "").await.0, StatusCode::OK);

    let (status, text) = send(&app, "GET", "/metrics", "").await;
    assert_eq!(status, StatusCode::OK);
    let cases = [
        ("lockd_leases_granted_total{op=\"acquire\"}", 1.0),
        ("lockd_leases_granted_total{op=\"renew\"}", 1.0),
        ("lockd_leases_refused_total{op=\"acquire\"}", 1.0),
        ("lockd_leases_refused_total{op=\"renew\"}", 0.0),
        ("lockd_leases_refused_total{op=\"release\"}", 1.0),
        ("lockd_leases_released_total", 1.0),
        ("lockd_backend_errors_total{op=\"acquire\"}", 0.0),
        ("lockd_request_duration_seconds_count{op=\"acquire\"}", 2.0),
        ("lockd_request_duration_seconds_count{op=\"release\"}", 2.0),
        ("lockd_request_duration_seconds_count{op=\"health\"}", 1.0),
        ("lockd_request_duration_seconds_count{op=\"metrics\"}", 1.0),
    ];
    for (series, want) in cases {
        assert_eq!(value(&text, series), Some(want), "{series} in\n{text}");
    }
    assert!(!text.contains("agent:1"), "no key becomes a label");
}

#[tokio::test]
async fn backend_errors_are_counted() {
    // Nothing listens on port 9 of this host's loopback (discard): every command fails.
    let app = app(Backend::from_url("memcached://127.0.0.1:9").expect("url"));
    let (status, _) = send(
        &app,
        "POST",
        "/v1/locks/agent:1",
        r#"{"owner":"a","ttl_ms":5000}"#,
    )
    .await;
    assert!(status.is_server_error(), "{status}");
    let (_, text) = send(&app, "GET", "/metrics", "").await;
    assert_eq!(
        value(&text, "lockd_backend_errors_total{op=\"acquire\"}"),
        Some(1.0),
        "{text}"
    );
}
