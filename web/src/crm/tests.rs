use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::http::{Method, Request, StatusCode};
use callfleet_store::{Agent, AgentState, Device, LiveCall, Member, NewEntry, Queue, Store};
use tower::ServiceExt;

use super::*;
use crate::metrics::Metrics;

/// A database with queue `sales` (members 1001 at tier 0 VIP-allowed, 1002 at tier 1),
/// queue `support` (no members), agents 1001, 1002, 1003 (member of nothing) and phones
/// 2001, 2002.
pub(crate) async fn seeded_store() -> Store {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    for name in ["sales", "support"] {
        store
            .upsert_queue(&Queue {
                name: name.into(),
                strategy: callfleet_store::Strategy::RingAll,
                ring_timeout_ms: 15_000,
                max_wait_ms: 60_000,
                announce_interval_ms: 0,
                moh_class: "default".into(),
                wrapup_ms: 0,
                fallback: callfleet_store::Fallback::Hangup,
                fallback_target: None,
                rr_last: None,
                recording: Default::default(),
                recording_prompt: false,
            })
            .await
            .unwrap();
    }
    for ext in ["1001", "1002", "1003"] {
        store
            .upsert_agent(&Agent::new(ext, &format!("Agent {ext}"), "x", 1))
            .await
            .unwrap();
    }
    for (agent, tier, vip_allowed) in [("1001", 0, true), ("1002", 1, false)] {
        store
            .upsert_member(&Member {
                queue: "sales".into(),
                agent: agent.into(),
                tier,
                vip_allowed,
                weight: 1,
                position: 0,
            })
            .await
            .unwrap();
    }
    for ext in ["2001", "2002"] {
        store
            .upsert_device(&Device {
                extension: ext.into(),
                ha1_md5: "x".into(),
                ha1_sha256: "x".into(),
                realm: "callfleet".into(),
                display_name: ext.into(),
                created_at_ms: 1,
            })
            .await
            .unwrap();
    }
    store
}

/// A node that answers every request with success and nothing in it, so that only the code
/// under test (the CRM operations, the guard, the panel) can refuse.
pub(crate) use crate::testing::NoNode;

pub(crate) fn app_state(store: Store) -> AppState {
    AppState::new(Arc::new(NoNode), Metrics::new(), None, store)
}

#[test]
fn names_are_checked_by_the_rule_the_admin_forms_use() {
    let long = "1".repeat(crate::names::MAX_EXTENSION + 1);
    let ok = "1".repeat(crate::names::MAX_EXTENSION);
    let long_queue = "q".repeat(MAX_NAME_LEN + 1);
    let cases: [(&str, Kind, &str, bool); 12] = [
        ("ext", Kind::Extension, "1001", true),
        ("ext", Kind::Extension, &ok, true),
        ("ext", Kind::Extension, "", false),
        ("ext", Kind::Extension, &long, false),
        ("ext", Kind::Extension, "10 01", false),
        ("ext", Kind::Extension, "10\u{0}01", false),
        ("ext", Kind::Extension, "1001@host", false),
        ("device", Kind::Extension, "2001.b", true),
        ("number", Kind::Number, "+4930123", true),
        ("number", Kind::Number, "sip:caller", false),
        ("queue", Kind::Queue, "sales+vip", true),
        ("queue", Kind::Queue, &long_queue, false),
    ];
    for (param, kind, value, want_ok) in cases {
        let got = check_name(param, kind, value);
        assert_eq!(got.is_ok(), want_ok, "{param} {value:?}");
        // The admin forms decide the same for the same kind of name.
        assert_eq!(
            crate::admin::form::name("field", kind, value).is_ok(),
            want_ok,
            "admin form: {value:?}"
        );
        if let Err(e) = got {
            assert_eq!(e.code(), 1);
            assert!(e.to_string().contains(&format!("`{param}`")), "{e}");
        }
    }
}

#[test]
fn tiers_and_limits_are_checked() {
    assert_eq!(check_tier(0).unwrap(), 0);
    assert_eq!(check_tier(MAX_TIER).unwrap(), 1000);
    for bad in [-1, MAX_TIER + 1, i64::MIN] {
        let e = check_tier(bad).unwrap_err();
        assert_eq!(
            (e.code(), e.to_string().contains("`tier`")),
            (1, true),
            "{bad}"
        );
    }
    assert_eq!(check_daily_limit(None).unwrap(), None);
    assert_eq!(check_daily_limit(Some(0)).unwrap(), Some(0));
    assert_eq!(
        check_daily_limit(Some(MAX_DAILY_LIMIT)).unwrap(),
        Some(1_000_000)
    );
    for bad in [-1, MAX_DAILY_LIMIT + 1] {
        let e = check_daily_limit(Some(bad)).unwrap_err();
        assert_eq!(
            (e.code(), e.to_string().contains("`limit`")),
            (1, true),
            "{bad}"
        );
    }
}

#[test]
fn codes_and_statuses_are_stable() {
    let cases = [
        (CrmError::bad("ext", "x"), 1, StatusCode::BAD_REQUEST),
        (
            CrmError::UnknownAgent { ext: "1".into() },
            2,
            StatusCode::NOT_FOUND,
        ),
        (
            CrmError::UnknownQueue { queue: "q".into() },
            3,
            StatusCode::NOT_FOUND,
        ),
        (
            CrmError::UnknownDevice { device: "d".into() },
            4,
            StatusCode::NOT_FOUND,
        ),
        (CrmError::Conflict { reason: "r" }, 5, StatusCode::CONFLICT),
        (
            CrmError::NotMember {
                ext: "1".into(),
                queue: "q".into(),
            },
            7,
            StatusCode::NOT_FOUND,
        ),
    ];
    for (e, code, status) in cases {
        assert_eq!((e.code(), e.status()), (code, status), "{e}");
    }
}

#[tokio::test]
async fn login_logout_and_pause_change_queue_stats() {
    let store = seeded_store().await;
    let stats = queue_stats(&store, "sales").await.unwrap();
    assert_eq!(
        (stats.agents_available, stats.agents_paused, stats.serving),
        (0, 0, false)
    );

    let refused = [
        (agent_login(&store, "9999", "2001").await, 2),
        (agent_login(&store, "1001", "9999").await, 4),
        (agent_login(&store, "", "2001").await, 1),
        (agent_logout(&store, "9999").await, 2),
        (agent_pause(&store, "9999", true).await, 2),
    ];
    for (i, (got, code)) in refused.into_iter().enumerate() {
        assert_eq!(got.unwrap_err().code(), code, "case {i}");
    }

    agent_login(&store, "1001", "2001").await.unwrap();
    agent_login(&store, "1002", "2002").await.unwrap();
    let stats = queue_stats(&store, "sales").await.unwrap();
    assert_eq!(
        (
            stats.agents_available,
            stats.agents_busy,
            stats.agents_paused,
            stats.serving
        ),
        (2, 0, 0, true)
    );
    agent_pause(&store, "1001", true).await.unwrap();
    agent_pause(&store, "1002", true).await.unwrap();
    let stats = queue_stats(&store, "sales").await.unwrap();
    assert_eq!(
        (stats.agents_available, stats.agents_paused, stats.serving),
        (0, 2, false)
    );
    let status = agent_status(&store, "1001").await.unwrap();
    assert_eq!(
        (
            status.state.as_str(),
            status.device.as_deref(),
            status.paused
        ),
        ("paused", Some("2001"), true)
    );
    agent_pause(&store, "1002", false).await.unwrap();
    assert!(queue_stats(&store, "sales").await.unwrap().serving);

    // An agent tied to a call can be neither logged out nor displaced from its phone.
    assert!(store
        .transition_agent(
            "1002",
            &[AgentState::Available],
            AgentState::InCall,
            5,
            Some(("call-1", "node-a")),
        )
        .await
        .unwrap());
    assert_eq!(agent_logout(&store, "1002").await.unwrap_err().code(), 5);
    assert_eq!(
        agent_login(&store, "1003", "2002")
            .await
            .unwrap_err()
            .code(),
        5
    );
    assert_eq!(queue_stats(&store, "sales").await.unwrap().agents_busy, 1);
    agent_logout(&store, "1001").await.unwrap();
    assert_eq!(
        agent_status(&store, "1001").await.unwrap().state,
        "logged_out"
    );
}

#[tokio::test]
async fn tuning_writes_bump_the_config_version() {
    let store = seeded_store().await;
    let mut version = store.config_version().await.unwrap();
    let mut bumped = |now: i64, what: &str| {
        assert!(now > version, "{what} did not bump the config version");
        version = now;
    };

    agent_set_tier(&store, "1002", "sales", 0).await.unwrap();
    bumped(store.config_version().await.unwrap(), "setTier");
    agent_set_daily_limit(&store, "1001", Some(3))
        .await
        .unwrap();
    bumped(store.config_version().await.unwrap(), "setDailyLimit");
    agent_set_daily_limit(&store, "1001", None).await.unwrap();
    bumped(store.config_version().await.unwrap(), "clear daily limit");
    assert!(vip_add(&store, "+4930", "sales").await.unwrap());
    bumped(store.config_version().await.unwrap(), "vip.add");
    assert!(vip_remove(&store, "+4930", "sales").await.unwrap());
    bumped(store.config_version().await.unwrap(), "vip.remove");

    let status = agent_status(&store, "1002").await.unwrap();
    assert_eq!(
        status.queues,
        vec![Membership {
            queue: "sales".into(),
            tier: 0,
            vip_allowed: false
        }]
    );
    assert_eq!(
        agent_status(&store, "1001").await.unwrap().daily_limit,
        None
    );
}

#[tokio::test]
async fn tuning_refusals_have_their_codes() {
    let store = seeded_store().await;
    let cases = [
        (agent_set_tier(&store, "1003", "sales", 1).await, 7),
        (agent_set_tier(&store, "9999", "sales", 1).await, 2),
        (agent_set_tier(&store, "1001", "nope", 1).await, 3),
        (agent_set_tier(&store, "1001", "sales", -1).await, 1),
        (agent_set_daily_limit(&store, "9999", Some(1)).await, 2),
        (agent_set_daily_limit(&store, "1001", Some(-5)).await, 1),
        (vip_add(&store, "+4930", "nope").await.map(|_| ()), 3),
        (vip_add(&store, "", "sales").await.map(|_| ()), 1),
        (vip_remove(&store, "+4930", "nope").await.map(|_| ()), 3),
        (agent_record_sale(&store, "9999").await.map(|_| ()), 2),
        (queue_stats(&store, "nope").await.map(|_| ()), 3),
        (agent_status(&store, "9999").await.map(|_| ()), 2),
    ];
    for (i, (got, code)) in cases.into_iter().enumerate() {
        assert_eq!(got.unwrap_err().code(), code, "case {i}");
    }
    assert!(vip_add(&store, "+4930", "sales").await.unwrap());
    assert!(!vip_add(&store, "+4930", "sales").await.unwrap());
    assert!(vip_remove(&store, "+4930", "sales").await.unwrap());
    assert!(!vip_remove(&store, "+4930", "sales").await.unwrap());
}

#[tokio::test]
async fn sales_count_toward_today() {
    let store = seeded_store().await;
    assert_eq!(agent_record_sale(&store, "1001").await.unwrap(), 1);
    assert_eq!(agent_record_sale(&store, "1001").await.unwrap(), 2);
    assert_eq!(agent_status(&store, "1001").await.unwrap().calls_today, 2);
    assert_eq!(agent_status(&store, "1002").await.unwrap().calls_today, 0);
}

#[tokio::test]
async fn live_calls_show_queue_agent_and_caller() {
    let store = seeded_store().await;
    let now = now_ms();
    for (node, call_id, from, answered) in [
        ("node-a", "c1", "sip:+4930111@carrier", Some(now)),
        ("node-b", "c2", "\"X\" <sip:+4930222@carrier>", None),
        ("node-b", "c3", "sip:+4930333@carrier", Some(now)),
    ] {
        store
            .insert_live_call(&LiveCall {
                node: node.into(),
                call_id: call_id.into(),
                from_uri: from.into(),
                to_uri: "sip:sales@10.0.0.1".into(),
                state: if answered.is_some() {
                    "answered"
                } else {
                    "ringing"
                }
                .into(),
                started_at_ms: now - 5_000,
                answered_at_ms: answered,
                redirected_from: None,
            })
            .await
            .unwrap();
    }
    for call_id in ["c1", "c3"] {
        store
            .enqueue(&NewEntry {
                queue: "sales".into(),
                node: if call_id == "c1" { "node-a" } else { "node-b" }.into(),
                call_id: call_id.into(),
                caller: format!("+4930{call_id}"),
                priority: 0,
                vip: false,
                enqueued_at_ms: now - 4_000,
            })
            .await
            .unwrap();
    }
    agent_login(&store, "1001", "2001").await.unwrap();
    assert!(store
        .transition_agent(
            "1001",
            &[AgentState::Available],
            AgentState::InCall,
            now,
            Some(("c1", "node-a")),
        )
        .await
        .unwrap());

    let calls = call_list(&store).await.unwrap();
    let by_id: HashMap<&str, &CallInfo> = calls.iter().map(|c| (c.call_id.as_str(), c)).collect();
    let c1 = by_id["c1"];
    assert_eq!(
        (
            c1.node.as_str(),
            c1.caller.as_str(),
            c1.queue.as_deref(),
            c1.agent.as_deref(),
            c1.answered,
            c1.dialled.as_str()
        ),
        (
            "node-a",
            "+4930c1",
            Some("sales"),
            Some("1001"),
            true,
            "sales"
        )
    );
    assert!(c1.duration_s >= 4, "{c1:?}");
    let c2 = by_id["c2"];
    assert_eq!(
        (
            c2.caller.as_str(),
            c2.queue.as_deref(),
            c2.agent.as_deref(),
            c2.answered
        ),
        ("+4930222", None, None, false)
    );
    assert_eq!(
        (by_id["c3"].queue.as_deref(), by_id["c3"].agent.as_deref()),
        (Some("sales"), None)
    );
    let stats = queue_stats(&store, "sales").await.unwrap();
    assert_eq!((stats.waiting, stats.agents_busy), (2, 1));
    assert!(stats.longest_wait_s >= 4, "{stats:?}");
}

#[tokio::test]
async fn database_down_is_code_6() {
    let store = seeded_store().await;
    store.close().await;
    let cases = [
        queue_list(&store).await.map(|_| ()),
        agent_status(&store, "1001").await.map(|_| ()),
        agent_pause(&store, "1001", true).await,
        call_list(&store).await.map(|_| ()),
    ];
    for (i, got) in cases.into_iter().enumerate() {
        let e = got.unwrap_err();
        assert_eq!(
            (e.code(), e.to_string()),
            (6, "database unavailable".into()),
            "case {i}"
        );
    }
}

async fn send(
    app: Router,
    method: Method,
    uri: &str,
    body: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let request = request
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, json)
}

#[tokio::test]
async fn json_routes_answer_results_and_coded_errors() {
    let store = seeded_store().await;
    let app = routes().with_state(app_state(store.clone()));
    let ok = StatusCode::OK;
    let cases: [(Method, &str, Option<&str>, StatusCode, serde_json::Value); 16] = [
        (
            Method::GET,
            "/api/v1/queues",
            None,
            ok,
            serde_json::json!([
            {"name": "sales", "strategy": "ringall", "members": 2, "recording": "never"},
            {"name": "support", "strategy": "ringall", "members": 0, "recording": "never"}]),
        ),
        (
            Method::GET,
            "/api/v1/queues/nope/stats",
            None,
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "unknown queue \"nope\"", "code": 3}),
        ),
        (
            Method::POST,
            "/api/v1/agents/1001/pause",
            Some(r#"{"paused":"yes"}"#),
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "bad parameter `body`: not the JSON object this route takes", "code": 1}),
        ),
        (
            Method::POST,
            "/api/v1/agents/9999/pause",
            Some(r#"{"paused":true}"#),
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "unknown agent \"9999\"", "code": 2}),
        ),
        (
            Method::PUT,
            "/api/v1/agents/1003/tiers/sales",
            Some(r#"{"tier":1}"#),
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "agent \"1003\" is not a member of queue \"sales\"", "code": 7}),
        ),
        (
            Method::PUT,
            "/api/v1/agents/1001/tiers/sales",
            Some(r#"{"tier":-1}"#),
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "bad parameter `tier`: must be between 0 and 1000", "code": 1}),
        ),
        (
            Method::PUT,
            "/api/v1/agents/1001/daily-limit",
            Some("{}"),
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "bad parameter `limit`: missing; send null for no limit", "code": 1}),
        ),
        (
            Method::PUT,
            "/api/v1/agents/1001/daily-limit",
            Some(r#"{"limit":"x"}"#),
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "bad parameter `limit`: must be an integer or null", "code": 1}),
        ),
        (
            Method::POST,
            "/api/v1/agents/1001/sales",
            None,
            ok,
            serde_json::json!({"calls_today": 1}),
        ),
        (
            Method::PUT,
            "/api/v1/vip/sales/+4930",
            None,
            ok,
            serde_json::json!({"added": true}),
        ),
        (
            Method::PUT,
            "/api/v1/vip/sales/+4930",
            None,
            ok,
            serde_json::json!({"added": false}),
        ),
        (
            Method::DELETE,
            "/api/v1/vip/sales/+4930",
            None,
            ok,
            serde_json::json!({"removed": true}),
        ),
        (
            Method::PUT,
            "/api/v1/vip/nope/+4930",
            None,
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "unknown queue \"nope\"", "code": 3}),
        ),
        (
            Method::GET,
            "/api/v1/calls/live",
            None,
            ok,
            serde_json::json!([]),
        ),
        (
            Method::GET,
            "/api/v1/queues/sales/stats",
            None,
            ok,
            serde_json::json!({
            "queue": "sales", "waiting": 0, "longest_wait_s": 0, "agents_available": 0,
            "agents_busy": 0, "agents_paused": 0, "serving": false}),
        ),
        (
            Method::PUT,
            "/api/v1/agents/1001/daily-limit",
            Some(r#"{"limit":null}"#),
            ok,
            serde_json::Value::Null,
        ),
    ];
    for (method, uri, body, want_status, want) in cases {
        let (status, json) = send(app.clone(), method.clone(), uri, body).await;
        assert_eq!(status, want_status, "{method} {uri} {json}");
        if !want.is_null() {
            assert_eq!(json, want, "{method} {uri}");
        }
    }

    let (status, json) = send(
        app.clone(),
        Method::PUT,
        "/api/v1/agents/1002/tiers/sales",
        Some(r#"{"tier":4}"#),
    )
    .await;
    assert_eq!(status, ok);
    assert_eq!(json["queues"][0]["tier"], 4);
    let (_, json) = send(
        app.clone(),
        Method::PUT,
        "/api/v1/agents/1002/daily-limit",
        Some(r#"{"limit":7}"#),
    )
    .await;
    assert_eq!(json["daily_limit"], 7);
    let (_, json) = send(
        app.clone(),
        Method::POST,
        "/api/v1/agents/1002/pause",
        Some(r#"{"paused":true}"#),
    )
    .await;
    assert_eq!(json["paused"], true);
    let (status, json) = send(app, Method::GET, "/api/v1/agents/1002", None).await;
    assert_eq!(status, ok);
    assert_eq!(
        (
            json["extension"].as_str(),
            json["state"].as_str(),
            json.get("device")
        ),
        (
            Some("1002"),
            Some("logged_out"),
            Some(&serde_json::Value::Null)
        )
    );
}
