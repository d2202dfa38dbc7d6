//! The check-in as a proxy (and someone without its token) would send it, against a SQLite
//! store in memory.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use callfleet_store::{Proxy, Registration, Store};
use tower::ServiceExt;

use super::*;
use crate::metrics::Metrics;

use crate::testing::NoNode;

#[test]
fn tokens_are_checked_against_their_hash() {
    let token = new_token();
    assert!(
        token.starts_with(TOKEN_PREFIX) && token.len() == 68,
        "{token}"
    );
    assert_ne!(token, new_token());
    let proxy = Proxy {
        name: "office".into(),
        token_hash: token_hash(&token),
        address: None,
        last_checkin_ms: None,
        created_at_ms: 0,
    };
    assert!(token_matches(Some(&proxy), &token));
    assert!(!token_matches(Some(&proxy), &token[..67]));
    assert!(!token_matches(Some(&proxy), ""));
    assert!(
        !token_matches(Some(&proxy), &proxy.token_hash),
        "the hash is no token"
    );
    assert!(!token_matches(None, &token));
}

#[test]
fn last_check_in_reads_as_time_ago() {
    assert_eq!(last_seen(None, 1_000), "never");
    assert_eq!(last_seen(Some(1_000), 66_000), "1:05 ago");
    assert_eq!(last_seen(Some(5_000), 1_000), "0:00 ago", "a clock behind");
}

async fn app() -> (axum::Router, Store, String) {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let token = new_token();
    store
        .add_proxy(&Proxy {
            name: "office".into(),
            token_hash: token_hash(&token),
            address: None,
            last_checkin_ms: None,
            created_at_ms: 0,
        })
        .await
        .unwrap();
    let state = AppState::new(
        Arc::new(NoNode),
        Metrics::new(),
        Some("0123456789abcdef0123456789abcdef".into()),
        store.clone(),
    );
    (crate::api::router(state), store, token)
}

async fn checkin(
    app: &axum::Router,
    name: &str,
    token: Option<&str>,
    from: &str,
) -> (StatusCode, String) {
    let mut req = Request::post(format!("/api/v1/proxies/{name}/checkin"));
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    // A body naming another address is not read.
    let mut req = req.body(Body::from("{\"addr\":\"192.0.2.66\"}")).unwrap();
    let peer: SocketAddr = match from.contains(':') {
        true => format!("[{from}]:40000"),
        false => format!("{from}:40000"),
    }
    .parse()
    .unwrap();
    req.extensions_mut().insert(ConnectInfo(peer));
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let body = to_bytes(res.into_body(), 1 << 20).await.unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn the_source_address_of_a_check_in_becomes_the_proxys() {
    let (app, store, token) = app().await;
    let (status, body) = checkin(&app, "office", Some(&token), "198.51.100.7").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["address"], "198.51.100.7");
    assert_eq!(json["moved"], true);
    let reg = Registration {
        aor: "1001".into(),
        contact: "sip:1001@192.168.1.20".into(),
        received: "198.51.100.7:5060".into(),
        transport: "udp".into(),
        expires_at_ms: i64::MAX,
        user_agent: String::new(),
        node: "main-a".into(),
        call_id: "c".into(),
        cseq: 1,
    };
    assert!(store.upsert_registration(&reg).await.unwrap());

    let (status, body) = checkin(&app, "office", Some(&token), "198.51.100.7").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("\"moved\":false"), "{body}");

    let (status, body) = checkin(&app, "office", Some(&token), "203.0.113.9").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["address"], "203.0.113.9");
    assert_eq!(json["bindings_moved"], 1);
    let regs = store.registrations("1001", 0).await.unwrap();
    assert_eq!(regs[0].received, "203.0.113.9:5060");
    let row = store.proxy("office").await.unwrap().unwrap();
    assert_eq!(row.address.as_deref(), Some("203.0.113.9"));

    // An IPv4 client of a dual-stack listener: the address SIP sees.
    let (status, body) = checkin(&app, "office", Some(&token), "::ffff:203.0.113.10").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("\"address\":\"203.0.113.10\""), "{body}");
}

#[tokio::test]
async fn wrong_tokens_and_names_move_nothing_and_are_limited() {
    let (app, store, token) = app().await;
    let other = new_token();
    let attempts = [
        ("office", None),
        ("office", Some(other.as_str())),
        ("nobody", Some(token.as_str())),
    ];
    for (name, t) in attempts {
        let (status, body) = checkin(&app, name, t, "192.0.2.1").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name} {t:?}: {body}");
    }
    assert_eq!(store.proxy("office").await.unwrap().unwrap().address, None);
    assert_eq!(store.config_version().await.unwrap(), 0);
    // Ten refusals a minute per source, then 429 even with the right token.
    for _ in 0..7 {
        checkin(&app, "office", Some(&other), "192.0.2.1").await;
    }
    let (status, _) = checkin(&app, "office", Some(&token), "192.0.2.1").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Another source is not affected.
    let (status, _) = checkin(&app, "office", Some(&token), "192.0.2.2").await;
    assert_eq!(status, StatusCode::OK);
}
