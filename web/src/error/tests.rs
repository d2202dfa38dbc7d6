//! Tests for [`ApiError`]'s status codes and the body the client sees.

use std::io;
use std::net::SocketAddr;

use axum::body::to_bytes;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;

use super::ApiError;

/// A cause carrying details that must stay in the logs.
fn secret_cause() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionRefused,
        "connect to 10.9.8.7:5432 as callfleet refused",
    )
}

#[tokio::test]
async fn status_and_json_body_per_variant() {
    let peer: SocketAddr = ([192, 0, 2, 1], 4000).into();
    let cases = [
        (
            ApiError::unavailable("database", secret_cause()),
            StatusCode::SERVICE_UNAVAILABLE,
            "database unavailable",
        ),
        (
            ApiError::internal("list live calls", secret_cause()),
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error",
        ),
        (
            ApiError::Forbidden { peer: Some(peer) },
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
    ];
    for (err, status, message) in cases {
        let response = err.into_response();
        assert_eq!(response.status(), status, "{message}");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/json",
            "{message}"
        );
        let body = to_bytes(response.into_body(), 1024).await.expect("body");
        let text = String::from_utf8(body.to_vec()).expect("utf-8 body");
        assert!(!text.contains("10.9.8.7"), "cause leaked: {text}");
        assert!(!text.contains("192.0.2.1"), "peer leaked: {text}");
        let json: serde_json::Value = serde_json::from_str(&text).expect("JSON body");
        assert_eq!(json, serde_json::json!({ "error": message }));
    }
}

#[test]
fn display_and_source_keep_the_cause_for_logs() {
    let err = ApiError::unavailable("database", secret_cause());
    assert_eq!(err.to_string(), "database unavailable");
    let source = std::error::Error::source(&err).expect("cause kept");
    assert!(source.to_string().contains("10.9.8.7"));
}
