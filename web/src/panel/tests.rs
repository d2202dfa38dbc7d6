use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use callfleet_store::AgentState;
use futures_util::StreamExt;
use tower::ServiceExt;

use super::html::{clock, escape, page, Viewer};
use super::*;
use crate::crm::tests::NoNode;
use crate::metrics::Metrics;
use crate::snapshot::{AgentCall, AgentView, CallView, NodeView, QueueView, Snapshot};

const EVIL: &str = "<script>alert('x')</script>\"&";

/// A snapshot whose every user-controlled text is hostile.
fn evil_snapshot() -> Snapshot {
    Snapshot {
        seq: 3,
        taken_at_ms: 1_000,
        served_by: EVIL.into(),
        stale: false,
        stale_since_ms: None,
        service_level_s: 20,
        nodes: vec![NodeView {
            name: EVIL.into(),
            role: EVIL.into(),
            alive: true,
            heartbeat_age_ms: 0,
            calls: 1,
            capacity: 10,
            cpu_pct: 1.0,
            load1: 0.5,
            shed_level: 0,
            draining: false,
            refusing: false,
            spark_calls: vec![None; 60],
            spark_cpu: vec![None; 60],
        }],
        queues: vec![QueueView {
            name: EVIL.into(),
            strategy: callfleet_store::Strategy::RingAll,
            waiting: 1,
            longest_wait_ms: Some(65_000),
            members: 1,
            available: 0,
            busy: 1,
            paused: 0,
            logged_out: 0,
            by_state: [0; 7],
            answered_today: 4,
            abandoned_today: 1,
            transferred_today: 0,
            service_level: Some(0.75),
            recent_calls: 4,
            recent_service_level: Some(0.5),
        }],
        agents: vec![AgentView {
            extension: "1001\"><img src=x>".into(),
            name: EVIL.into(),
            state: AgentState::InCall,
            state_for_ms: 3_000,
            device: Some("2001".into()),
            paused: false,
            calls_today: 2,
            queues: vec![EVIL.into()],
            call: Some(AgentCall {
                call_id: EVIL.into(),
                node: EVIL.into(),
                caller: Some(EVIL.into()),
                queue: Some(EVIL.into()),
                duration_ms: 3_000,
            }),
        }],
        calls: vec![CallView {
            node: EVIL.into(),
            call_id: "abc\"'<>@host".into(),
            caller: EVIL.into(),
            dialled: EVIL.into(),
            state: "talking".into(),
            queue: Some(EVIL.into()),
            agent: Some(EVIL.into()),
            duration_ms: 3_723_000,
            wait_ms: None,
        }],
        alerts: vec![callfleet_store::ActiveAlert {
            kind: callfleet_store::AlertKind::ServiceLevelLow,
            subject: EVIL.into(),
            node: None,
            severity: callfleet_store::Severity::Warning,
            message: EVIL.into(),
            raised_at_ms: 0,
            updated_at_ms: 0,
            reported_by: EVIL.into(),
        }],
    }
}

#[test]
fn escape_covers_the_five_html_specials() {
    assert_eq!(
        escape("<a href=\"x\">Tom & Jerry's</a>"),
        "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;"
    );
    assert_eq!(escape("plain 1001 é"), "plain 1001 é");
    assert_eq!(escape(""), "");
}

#[test]
fn clock_formats_durations() {
    let cases = [
        (0, "0:00"),
        (999, "0:00"),
        (65_000, "1:05"),
        (3_723_000, "1:02:03"),
        (-5, "0:00"),
    ];
    for (ms, want) in cases {
        assert_eq!(clock(ms), want, "{ms}");
    }
}

#[test]
fn the_page_escapes_every_value_from_the_database() {
    let viewer = Viewer {
        name: Some(EVIL.into()),
        csrf: Some("tok\"en".into()),
        device: Some("20\"01".into()),
        admin: false,
    };
    let html = page(&viewer, Some(&evil_snapshot()));
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(!html.contains("<img"), "{html}");
    assert!(!html.contains("'x'"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;"));
    assert!(html.contains("<meta name=\"csrf\" content=\"tok&quot;en\">"));
    assert!(html.contains("value=\"20&quot;01\""));
    assert!(html.contains("data-testid=\"agent-1001&quot;&gt;&lt;img src=x&gt;\""));
    assert!(html.contains("data-testid=\"call-abc&quot;&#39;&lt;&gt;@host\""));
    // The only script is the external one.
    assert_eq!(html.matches("<script").count(), 1);
    assert!(html.contains("<script src=\"/static/panel.js\" defer></script>"));
    assert!(html.contains("1:02:03"), "call duration");
    assert!(html.contains("75 %"), "service level");
    assert!(html.contains("data-state=\"in_call\""));
}

#[test]
fn the_page_without_a_session_or_snapshot_has_no_csrf_and_says_it_waits() {
    let html = page(&Viewer::default(), None);
    assert!(!html.contains("name=\"csrf\""));
    assert!(html.contains("waiting for the first snapshot"));
    for id in [
        "nodes-body",
        "queues-body",
        "agents-grid",
        "calls-body",
        "my-device",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
    }
}

#[test]
fn a_busy_agent_cannot_be_logged_out_from_the_page() {
    let html = page(&Viewer::default(), Some(&evil_snapshot()));
    let logout = html
        .split("data-action=\"logout\"")
        .nth(1)
        .and_then(|rest| rest.split('>').next())
        .unwrap_or_default();
    assert!(logout.contains("disabled"), "{logout}");
}

#[test]
fn only_a_talking_call_can_be_listened_to_or_whispered_into_from_the_page() {
    for (state, enabled) in [
        ("talking", true),
        ("ringing", false),
        ("waiting", false),
        ("answered", false),
    ] {
        let mut snapshot = evil_snapshot();
        snapshot.calls[0].state = state.into();
        let html = page(&Viewer::default(), Some(&snapshot));
        for action in ["listen", "whisper"] {
            let button = html
                .split(&format!("data-action=\"{action}\""))
                .nth(1)
                .and_then(|rest| rest.split('>').next())
                .expect("the call row has the button");
            assert_eq!(
                !button.contains("disabled"),
                enabled,
                "{action} {state}: {button}"
            );
        }
    }
}

/// The next whole event (up to its blank line), or `None` when the stream ended.
async fn read_event(body: &mut axum::body::BodyDataStream) -> Option<String> {
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .expect("event within 5 s");
        match chunk {
            Some(Ok(bytes)) => text.push_str(&String::from_utf8_lossy(&bytes)),
            _ => return None,
        }
    }
    Some(text)
}

async fn app_state() -> AppState {
    let store = callfleet_store::Store::connect("sqlite::memory:")
        .await
        .expect("in-memory SQLite");
    AppState::new(Arc::new(NoNode), Metrics::new(), None, store)
}

async fn get(state: AppState, uri: &str) -> axum::response::Response {
    routes()
        .with_state(state)
        .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
        .await
        .expect("infallible")
}

#[tokio::test]
async fn static_files_and_page_have_their_types_and_policy() {
    let state = app_state().await;
    state.panel.publish(evil_snapshot());
    let cases = [
        ("/", "text/html; charset=utf-8"),
        ("/static/panel.js", "text/javascript; charset=utf-8"),
        ("/static/panel.css", "text/css; charset=utf-8"),
        ("/api/v1/panel/snapshot", "application/json"),
    ];
    for (uri, want) in cases {
        let response = get(state.clone(), uri).await;
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        assert_eq!(content_type, Some(want), "{uri}");
    }
    let response = get(state.clone(), "/").await;
    let csp = response
        .headers()
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.contains("data-testid=\"queue-&lt;script&gt;"),
        "{body}"
    );
}

#[tokio::test]
async fn events_stream_the_current_snapshot_then_each_new_one_and_end_on_close() {
    let state = app_state().await;
    state.panel.publish(evil_snapshot());
    let response = get(state.clone(), "/api/v1/panel/events").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    assert!(
        state
            .metrics
            .encode()
            .expect("encode")
            .contains("callfleet_panel_viewers 1"),
        "one viewer counted"
    );
    let mut body = response.into_body().into_data_stream();
    let first = read_event(&mut body).await.expect("first event");
    assert!(first.starts_with("event: snapshot\n"), "{first}");
    assert!(first.contains("\nid: 3\n"), "{first}");
    let data = first
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .expect("data line");
    let json: serde_json::Value = serde_json::from_str(data).expect("snapshot JSON");
    assert_eq!(json["agents"][0]["name"], EVIL, "JSON carries the raw text");

    let mut next = evil_snapshot();
    next.seq = 4;
    state.panel.publish(next);
    let second = read_event(&mut body).await.expect("second event");
    assert!(second.contains("\nid: 4\n"), "{second}");

    state.panel.close();
    assert!(
        read_event(&mut body).await.is_none(),
        "stream ends when the node stops"
    );
    drop(body);
    assert!(
        state
            .metrics
            .encode()
            .expect("encode")
            .contains("callfleet_panel_viewers 0"),
        "viewer counted out"
    );
}

#[tokio::test]
async fn a_signed_in_user_gets_name_csrf_and_phone_on_the_page() {
    let state = app_state().await;
    let principal = crate::auth::Principal::User {
        name: "sue<".into(),
        role: callfleet_store::UserRole::Supervisor,
        device: Some("2001".into()),
        csrf: "c5rf".into(),
    };
    let response = routes()
        .with_state(state)
        .layer(axum::Extension(principal))
        .oneshot(Request::get("/").body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.contains("<meta name=\"csrf\" content=\"c5rf\">"),
        "{body}"
    );
    assert!(body.contains("<span id=\"user\">sue&lt;</span>"), "{body}");
    assert!(body.contains("value=\"2001\""), "{body}");
    assert!(
        body.contains("name=\"csrf\" value=\"c5rf\""),
        "logout form carries the token"
    );
}

/// Slowed streams send one snapshot per this in the test (under `read_event`'s 5 s).
const SLOW: Duration = Duration::from_secs(2);

/// Virtual time between the first event of a stream and the next one, published at once.
async fn gap_between_events(level: u8) -> Duration {
    let mut state = app_state().await;
    state.shed.panel_interval = SLOW;
    state.shed.gate.set(level);
    state.panel.publish(evil_snapshot());
    tokio::time::pause();
    let response = get(state.clone(), "/api/v1/panel/events").await;
    let mut body = response.into_body().into_data_stream();
    read_event(&mut body).await.expect("first event");
    let first = tokio::time::Instant::now();
    let mut next = evil_snapshot();
    next.seq = 4;
    state.panel.publish(next);
    let second = read_event(&mut body).await.expect("second event");
    assert!(second.contains("\nid: 4\n"), "{second}");
    let gap = first.elapsed();
    tokio::time::resume();
    gap
}

#[tokio::test]
async fn the_stream_slows_down_while_the_node_sheds_load() {
    assert_eq!(
        gap_between_events(0).await,
        Duration::ZERO,
        "level 0: at once"
    );
    let slowed = gap_between_events(1).await;
    assert!(
        slowed >= SLOW && slowed < SLOW + Duration::from_secs(1),
        "level 1: one snapshot per {SLOW:?}, got {slowed:?}"
    );
}
