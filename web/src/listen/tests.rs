//! The listen routes through the whole router (guard included), with a fake node.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::{to_bytes, Body};
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use axum::response::Response;
use tower::ServiceExt;

use callfleet_store::{User, UserRole};

use super::{allowed_device, DeviceRefusal, ListenMode};
use crate::api::{router, AppState, BoxFuture, NodeApi, SIGNATURE_HEADER};
use crate::auth::{self, NodeProof, Principal, CSRF_HEADER, SESSION_COOKIE};
use crate::error::ApiError;
use crate::metrics::Metrics;

const SECRET: &str = "listen-test-cluster-secret-0123456789ab";
const CSRF: &str = "csrf-1";

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
    crate::testing::no_node_basics!();
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

/// Panel users, each logged in with session `s-NAME`: (name, role, own phone).
const USERS: [(&str, UserRole, Option<&str>); 4] = [
    ("sue", UserRole::Supervisor, Some("2009")),
    ("nod", UserRole::Supervisor, None),
    ("ada", UserRole::Admin, Some("2001")),
    ("root", UserRole::Admin, None),
];

async fn state(node: &Arc<Node>, secret: Option<&str>) -> AppState {
    let store = callfleet_store::Store::connect("sqlite::memory:")
        .await
        .expect("in-memory SQLite");
    store.migrate().await.expect("migrate in-memory SQLite");
    for (name, role, device) in USERS {
        store
            .upsert_user(&User {
                name: name.to_owned(),
                // Never checked here: the sessions below are made directly.
                password_hash: "$argon2id$unused".to_owned(),
                role,
                device: device.map(str::to_owned),
                created_at_ms: 1,
            })
            .await
            .expect("user");
        let id = auth::sha256_hex(format!("s-{name}").as_bytes());
        store
            .insert_session(&id, name, CSRF, 1, i64::MAX / 2)
            .await
            .expect("session");
    }
    AppState::new(
        node.clone(),
        Metrics::new(),
        secret.map(str::to_owned),
        store,
    )
}

/// Who sends a test request.
#[derive(Debug, Clone, Copy)]
enum As<'a> {
    Nobody,
    /// A logged-in user, by name.
    User(&'a str),
    /// Signed with this secret.
    Signed(&'a str),
    /// The clear-text secret header of earlier versions.
    Legacy(&'a str),
}

async fn post(
    state: AppState,
    uri: &str,
    body: &str,
    peer: &str,
    asker: As<'_>,
) -> (StatusCode, String) {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("content-type", "application/json");
    request = match asker {
        As::Nobody => request,
        As::User(name) => request
            .header("cookie", format!("{SESSION_COOKIE}=s-{name}"))
            .header(CSRF_HEADER, CSRF),
        As::Signed(secret) => {
            let signer = callfleet_sign::Signer::new(callfleet_sign::ClusterKey::new(secret));
            request.header(
                SIGNATURE_HEADER,
                signer.sign_now("POST", uri, body.as_bytes()),
            )
        }
        As::Legacy(secret) => request.header("x-callfleet-secret", secret),
    };
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
    // An admin without a phone of their own names the phone.
    let admin = As::User("root");
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
            StatusCode::ACCEPTED,
        ),
        (
            "held",
            r#"{"device":"2001","mode":"shout"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "held",
            r#"{"device":"","mode":"listen"}"#,
            StatusCode::BAD_REQUEST,
        ),
        ("held", r#"{"device":"20 01"}"#, StatusCode::BAD_REQUEST),
        ("held", r#"{"mode":"listen"}"#, StatusCode::BAD_REQUEST),
    ];
    for (call, body, want) in cases {
        let uri = format!("/api/v1/calls/{call}/listen");
        let (status, text) = post(state(&node, None).await, &uri, body, local, admin).await;
        assert_eq!(status, want, "{call} {body}: {text}");
        if status == StatusCode::BAD_REQUEST {
            assert!(text.contains("\"error\""), "{text}");
        }
    }
    let modes: Vec<ListenMode> = node.asked().into_iter().map(|a| a.3).collect();
    use ListenMode::*;
    assert_eq!(
        modes,
        [Listen, Whisper, Listen, Listen, Listen, Barge],
        "bad input never reaches the node"
    );
    // A Call-ID with characters that need escaping arrives decoded.
    let (status, _) = post(
        state(&node, None).await,
        "/api/v1/calls/a%40b%2Fc/listen",
        r#"{"device":"2001"}"#,
        local,
        admin,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        node.asked().last().map(|a| a.1.clone()),
        Some("a@b/c".to_owned())
    );
}

#[tokio::test]
async fn audio_goes_only_to_the_askers_own_phone() {
    let node = Arc::new(Node::default());
    let uri = "/api/v1/calls/held/listen";
    let remote = "10.1.2.3:40000";
    // (asker, body, status, phone dialled)
    let cases = [
        (
            As::User("sue"),
            r#"{"device":"2009"}"#,
            StatusCode::ACCEPTED,
            Some("2009"),
        ),
        (
            As::User("sue"),
            r#"{"mode":"whisper"}"#,
            StatusCode::ACCEPTED,
            Some("2009"),
        ),
        // A supervisor sends a call's audio to somebody else's phone: refused.
        (
            As::User("sue"),
            r#"{"device":"2666"}"#,
            StatusCode::FORBIDDEN,
            None,
        ),
        (
            As::User("nod"),
            r#"{"device":"2666"}"#,
            StatusCode::FORBIDDEN,
            None,
        ),
        (As::User("nod"), r#"{}"#, StatusCode::FORBIDDEN, None),
        (
            As::User("ada"),
            r#"{"device":"2666"}"#,
            StatusCode::FORBIDDEN,
            None,
        ),
        (As::User("ada"), r#"{}"#, StatusCode::ACCEPTED, Some("2001")),
        (
            As::User("root"),
            r#"{"device":"2666"}"#,
            StatusCode::ACCEPTED,
            Some("2666"),
        ),
        (
            As::Signed(SECRET),
            r#"{"device":"2777"}"#,
            StatusCode::ACCEPTED,
            Some("2777"),
        ),
        (As::Signed(SECRET), r#"{}"#, StatusCode::BAD_REQUEST, None),
    ];
    for (asker, body, want, dialled) in cases {
        let before = node.asked().len();
        let (status, text) = post(state(&node, Some(SECRET)).await, uri, body, remote, asker).await;
        assert_eq!(status, want, "{asker:?} {body}: {text}");
        let asked = node.asked();
        let got = asked.get(before).map(|a| a.2.as_str());
        assert_eq!(got, dialled, "{asker:?} {body}");
    }
}

#[test]
fn the_phone_rule() {
    let user = |role, device: Option<&str>| Principal::User {
        name: "u".into(),
        role,
        device: device.map(str::to_owned),
        csrf: String::new(),
    };
    let sup = user(UserRole::Supervisor, Some("2009"));
    let sup_none = user(UserRole::Supervisor, None);
    let admin = user(UserRole::Admin, Some("2001"));
    let admin_none = user(UserRole::Admin, None);
    let node = Principal::Node(NodeProof::Signed);
    let operator = Principal::Node(NodeProof::OperatorToken);
    let token = Principal::Token { name: "crm".into() };
    let cases: Vec<(&Principal, Option<&str>, Result<&str, DeviceRefusal>)> = vec![
        (&sup, None, Ok("2009")),
        (&sup, Some("2009"), Ok("2009")),
        (&sup, Some("2010"), Err(DeviceRefusal::NotYours)),
        (&sup_none, None, Err(DeviceRefusal::NoPhone)),
        (&sup_none, Some("2009"), Err(DeviceRefusal::NoPhone)),
        (&admin, None, Ok("2001")),
        (&admin, Some("2002"), Err(DeviceRefusal::NotYours)),
        (&admin_none, Some("2002"), Ok("2002")),
        (&admin_none, None, Err(DeviceRefusal::Unnamed)),
        (&node, Some("2003"), Ok("2003")),
        (&node, None, Err(DeviceRefusal::Unnamed)),
        (&operator, Some("2004"), Ok("2004")),
        (&token, Some("2005"), Err(DeviceRefusal::NotAllowed)),
    ];
    for (asker, asked, want) in cases {
        assert_eq!(
            allowed_device(asker, asked),
            want.map(str::to_owned),
            "{asker:?} {asked:?}"
        );
    }
}

#[tokio::test]
async fn the_internal_route_admits_only_signed_requests() {
    let node = Arc::new(Node::default());
    let uri = "/internal/v1/calls/held/listen";
    let body = r#"{"device":"2001","mode":"whisper"}"#;
    let remote = "10.1.2.3:40000";
    let local = "127.0.0.1:40000";
    let cases = [
        // (peer, configured secret, asker, status)
        (remote, Some(SECRET), As::Nobody, StatusCode::UNAUTHORIZED),
        (remote, None, As::Nobody, StatusCode::UNAUTHORIZED),
        (
            remote,
            Some(SECRET),
            As::Signed("guess-guess-guess-guess-guess-guess"),
            StatusCode::UNAUTHORIZED,
        ),
        (remote, None, As::Signed(SECRET), StatusCode::UNAUTHORIZED),
        (
            remote,
            Some(SECRET),
            As::Legacy(SECRET),
            StatusCode::FORBIDDEN,
        ),
        (
            remote,
            Some(SECRET),
            As::User("root"),
            StatusCode::FORBIDDEN,
        ),
        (local, Some(SECRET), As::Nobody, StatusCode::UNAUTHORIZED),
        (
            remote,
            Some(SECRET),
            As::Signed(SECRET),
            StatusCode::ACCEPTED,
        ),
        (
            local,
            Some(SECRET),
            As::Signed(SECRET),
            StatusCode::ACCEPTED,
        ),
    ];
    for (peer, secret, asker, want) in cases {
        let (status, text) = post(state(&node, secret).await, uri, body, peer, asker).await;
        assert_eq!(status, want, "{peer} {secret:?} {asker:?}: {text}");
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
