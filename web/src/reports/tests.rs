//! The report pages through the router, with sessions on an in-memory SQLite store holding a
//! small history: every report, its CSV, its filters refused, departments on the admin pages
//! and over the CRM API, and the streamed call-record export.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use callfleet_store::{Cdr, Queue, QueueEvent, Store, User, UserRole};
use tower::ServiceExt;

use crate::api::{router, AppState, NodeApi};
use crate::auth::{self, SESSION_COOKIE};
use crate::metrics::Metrics;

struct Node;

impl NodeApi for Node {
    crate::testing::no_node_basics!();
}

const ADMIN: &str = "admin-session";
const SUPERVISOR: &str = "sup-session";
const CSRF: &str = "the-csrf";

/// 2026-12-07 (a Monday) 14:00 UTC, 09:00 in New York.
const T0: i64 = 1_796_652_000_000;

fn queue(name: &str) -> Queue {
    Queue {
        name: name.into(),
        strategy: "ringall".parse().expect("a strategy"),
        ring_timeout_ms: 15_000,
        max_wait_ms: 120_000,
        announce_interval_ms: 0,
        moh_class: "default".into(),
        wrapup_ms: 0,
        fallback: "hangup".parse().expect("a fallback"),
        fallback_target: None,
        rr_last: None,
        recording: Default::default(),
        recording_prompt: false,
    }
}

fn ev(call: &str, queue: &str, at: i64, what: &str, agent: Option<&str>) -> QueueEvent {
    QueueEvent {
        id: 0,
        at_ms: at,
        queue: queue.into(),
        call_id: call.into(),
        node: "n1".into(),
        agent: agent.map(Into::into),
        event: what.parse().expect("a queue event kind"),
        detail: None,
        uid: None,
    }
}

fn cdr(id: usize, from: &str, start: i64, agent: Option<&str>, queue: &str) -> Cdr {
    Cdr {
        node: "n1".into(),
        call_id: format!("c{id}"),
        from_uri: from.into(),
        to_uri: format!("sip:{queue}@10.0.0.1"),
        started_at_ms: start,
        answered_at_ms: Some(start),
        ended_at_ms: start + 60_000,
        hangup_cause: "normal".parse().expect("a hangup cause"),
        hangup_side: "caller".parse().expect("a hangup side"),
        sip_status: 200,
        redirected_from: None,
        agent: agent.map(Into::into),
        queue: Some(queue.into()),
        uid: None,
        direction: Default::default(),
        destination: None,
    }
}

fn caller_leg(c: &Cdr, lost: i64, jitter_us: i64) -> callfleet_store::LegQualityRow {
    callfleet_store::LegQualityRow {
        node: c.node.clone(),
        call_id: c.call_id.clone(),
        started_at_ms: c.started_at_ms,
        leg: callfleet_store::CallLeg::Caller,
        ended_at_ms: c.ended_at_ms,
        codec: "PCMU".into(),
        packets_in: 1000 - lost,
        bytes_in: 160_000,
        packets_out: 1000,
        bytes_out: 160_000,
        expected: 1000,
        lost,
        duplicates: 0,
        out_of_order: 0,
        jitter_us,
        jitter_max_us: 2 * jitter_us,
        longest_gap_ms: 40,
        rtcp_sent: 10,
        rtcp_received: 10,
        peer_fraction_lost: None,
        peer_lost: None,
        peer_jitter_us: None,
        rtt_us: None,
    }
}

async fn app() -> (axum::Router, Store) {
    let store = Store::connect("sqlite::memory:").await.expect("sqlite");
    store.migrate().await.expect("migrate");
    for (name, role, session) in [
        ("ada", UserRole::Admin, ADMIN),
        ("sam", UserRole::Supervisor, SUPERVISOR),
    ] {
        let user = User {
            name: name.to_owned(),
            password_hash: "x".to_owned(),
            role,
            device: None,
            created_at_ms: 1,
        };
        store.upsert_user(&user).await.expect("user");
        let id = auth::sha256_hex(session.as_bytes());
        store
            .insert_session(&id, name, CSRF, 1, i64::MAX / 2)
            .await
            .expect("session");
    }
    for q in ["sales", "support"] {
        store.upsert_queue(&queue(q)).await.expect("queue");
    }
    // Sales: 4 calls at 09:00 New York, 2 answered (10 s and 30 s), 1 abandoned, 1 timed out.
    // Support: 2 calls, 1 answered.
    let mut events = Vec::new();
    for (i, outcome) in ["answer10", "answer30", "abandon", "timeout"]
        .iter()
        .enumerate()
    {
        let id = format!("s{i}");
        let at = T0 + i as i64 * 1000;
        events.push(ev(&id, "sales", at, "enqueue", None));
        match *outcome {
            "answer10" | "answer30" => {
                let wait = if *outcome == "answer10" {
                    10_000
                } else {
                    30_000
                };
                events.push(ev(&id, "sales", at + wait, "answer", Some("1001")));
                events.push(ev(
                    &id,
                    "sales",
                    at + wait + 90_000,
                    "complete",
                    Some("1001"),
                ));
            }
            other => events.push(ev(&id, "sales", at + 5000, other, None)),
        }
    }
    events.push(ev("p0", "support", T0, "enqueue", None));
    events.push(ev("p0", "support", T0 + 5000, "answer", Some("1002")));
    events.push(ev("p1", "support", T0, "enqueue", None));
    events.push(ev("p1", "support", T0 + 9000, "abandon", None));
    // CDRs: New York callers at 18:30 local (23:30 UTC), a California caller at 09:00 local,
    // one caller three times.
    let evening = T0 + 9 * 3_600_000 + 1_800_000;
    let cdrs = vec![
        cdr(
            1,
            "sip:+12125550101@carrier",
            evening,
            Some("1001"),
            "sales",
        ),
        cdr(
            2,
            "sip:+12125550101@carrier",
            evening + 60_000,
            Some("1001"),
            "sales",
        ),
        cdr(
            3,
            "sip:+12125550101@carrier",
            evening + 120_000,
            None,
            "sales",
        ),
        cdr(
            4,
            "sip:+13105550199@carrier",
            T0 + 3 * 3_600_000,
            Some("1001"),
            "sales",
        ),
        cdr(5, "sip:+33123456789@carrier", T0, Some("1002"), "support"),
    ];
    store.insert_history(&cdrs, &events).await.expect("history");
    // RTP figures of the callers' legs: New York 2 % loss, California none, France 5 %.
    for (c, lost, jitter_us) in [
        (&cdrs[0], 20, 4_000),
        (&cdrs[3], 0, 2_000),
        (&cdrs[4], 50, 30_000),
    ] {
        store
            .upsert_leg_quality(&caller_leg(c, lost, jitter_us))
            .await
            .expect("quality");
    }
    let state = AppState::new(Arc::new(Node), Metrics::new(), None, store.clone())
        .with_trust_loopback(false);
    (router(state), store)
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn call(
    app: &axum::Router,
    session: Option<&str>,
    method: &str,
    path: &str,
    body: &str,
    json: bool,
) -> Reply {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(s) = session {
        req = req
            .header(header::COOKIE, format!("{SESSION_COOKIE}={s}"))
            .header(auth::CSRF_HEADER, CSRF);
    }
    let ct = if json {
        "application/json"
    } else {
        "application/x-www-form-urlencoded"
    };
    let req = req
        .header(header::CONTENT_TYPE, ct)
        .body(Body::from(body.to_owned()))
        .expect("request");
    let res = app.clone().oneshot(req).await.expect("infallible");
    let status = res.status();
    let headers = res.headers().clone();
    let body = axum::body::to_bytes(res.into_body(), 16 << 20)
        .await
        .expect("body");
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn get(app: &axum::Router, path: &str) -> Reply {
    call(app, Some(SUPERVISOR), "GET", path, "", false).await
}

const DAY: &str = "from=2026-12-07&to=2026-12-07&tz=America/New_York";

#[tokio::test]
async fn queue_report_page_chart_and_csv() {
    let (app, _) = app().await;
    let r = get(&app, &format!("/reports/queues?{DAY}&interval=day&sl=20")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("csp")
        .contains("script-src 'none'"));
    assert!(
        r.body.contains(
            "6 calls offered, 3 answered, 2 abandoned, 1 timed out; service level 33.3 %"
        ),
        "{}",
        r.body
    );
    assert!(r.body.contains("<svg viewBox"), "a chart");
    assert!(r.body.contains(r#"aria-current="page">Reports"#));
    let csv = get(
        &app,
        &format!("/reports/queues.csv?{DAY}&interval=day&sl=20"),
    )
    .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(
        lines[0],
        "interval,queue,offered,answered,abandoned,timed out,service level %,ASA s,AHT s"
    );
    // Sales: 4 offered, 2 answered (1 within 20 s), ASA 20 s, AHT 90 s.
    assert_eq!(lines[1], "2026-12-07,sales,4,2,1,1,25,20,90");
    assert_eq!(lines[2], "2026-12-07,support,2,1,1,0,50,5,");
}

#[tokio::test]
async fn agents_heatmap_evening_and_callers() {
    let (app, _) = app().await;
    let r = get(&app, &format!("/reports/agents.csv?{DAY}")).await;
    assert_eq!(
        r.body.lines().collect::<Vec<_>>(),
        [
            "agent,answered,talk time,average talk s,logged in,paused,occupancy %",
            "1001,2,0:03:00,90,0:00:00,0:00:00,",
            "1002,1,0:00:00,,0:00:00,0:00:00,"
        ]
    );

    let r = get(&app, &format!("/reports/heatmap.csv?{DAY}")).await;
    let lines: Vec<&str> = r.body.lines().collect();
    // Monday: 1 call at 09:00 (the French caller), 1 at 12:00 (California), 3 at 18:00.
    let monday: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(
        (monday[0], monday[10], monday[13], monday[19]),
        ("Mon", "1", "1", "3")
    );
    let page = get(&app, &format!("/reports/heatmap?{DAY}")).await;
    assert!(page.body.contains("Mon 18:00: 3 calls"));

    let r = get(&app, &format!("/reports/evening.csv?{DAY}&agent=1001")).await;
    assert_eq!(
        r.body, "state,calls\r\nNY,2\r\n",
        "the California call was at 09:00 there"
    );
    let r = get(
        &app,
        &format!("/reports/evening.csv?{DAY}&queue=sales&evening=8-10"),
    )
    .await;
    assert_eq!(r.body, "state,calls\r\nCA,1\r\n");

    let r = get(&app, &format!("/reports/callers.csv?{DAY}")).await;
    assert_eq!(
        r.body.lines().nth(1),
        Some("+12125550101,United States,3,2,2026-12-07 18:30,2026-12-07 18:32")
    );
    let r = get(
        &app,
        &format!("/reports/callers?{DAY}&number=%2B1+212+555+0101"),
    )
    .await;
    assert!(
        r.body.contains("+1 212 555 0101 called 3 times"),
        "{}",
        r.body
    );
    let r = get(
        &app,
        &format!("/reports/callers.csv?{DAY}&number=%2B33123456789"),
    )
    .await;
    assert!(r.body.contains("+33123456789,France,1,1"), "{}", r.body);
}

#[tokio::test]
async fn bad_filters_are_refused_with_the_form() {
    let (app, _) = app().await;
    for (q, says) in [
        ("tz=Mars/Olympus", "Unknown time zone"),
        ("from=2026-12-08&to=2026-12-01", "after the last date"),
        ("from=2024-01-01&to=2026-12-01", "at most 400"),
        (
            "interval=15m&from=2026-01-01&to=2026-03-01",
            "15-minute intervals",
        ),
        ("queue=%3Cscript%3E", "Queue &quot;&lt;script&gt;&quot;"),
        ("sl=0", "service-level threshold"),
        ("bogus=1", "could not be read"),
        ("from=yesterday", "not a date"),
    ] {
        let r = get(&app, &format!("/reports/queues?{q}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
        assert!(r.body.contains(says), "{q}: {}", r.body);
        assert!(!r.body.contains("<script>"), "{q}: escaped");
    }
    let r = get(&app, "/reports/evening?agent=1001&queue=sales").await;
    assert!(r.body.contains("not both"));
    let r = get(&app, "/reports/departments?department=nope").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("no department named"));
}

#[tokio::test]
async fn reports_need_a_session() {
    let (app, _) = app().await;
    let r = call(&app, None, "GET", "/reports/queues", "", false).await;
    assert!(r.status.is_redirection(), "{}", r.status);
    assert!(r.headers[header::LOCATION]
        .to_str()
        .expect("location")
        .starts_with("/login"));
    let r = call(&app, None, "GET", "/reports/cdrs.csv", "", false).await;
    assert!(r.status.is_redirection());
    // A supervisor sees reports but not the departments' admin pages.
    let r = get(&app, "/admin/departments").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = get(&app, "/reports").await;
    assert!(r.body.contains("/reports/evening"));
}

#[tokio::test]
async fn departments_on_the_admin_pages_and_the_crm_api() {
    let (app, store) = app().await;
    let r = call(
        &app,
        Some(ADMIN),
        "POST",
        "/admin/departments",
        &format!("csrf={CSRF}&name=front&queues=sales,+support"),
        false,
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let r = call(
        &app,
        Some(ADMIN),
        "POST",
        "/admin/departments",
        &format!("csrf={CSRF}&name=back&queues=nope"),
        false,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains("there is no queue named &quot;nope&quot;"),
        "{}",
        r.body
    );
    let listed = call(&app, Some(ADMIN), "GET", "/admin/departments", "", false).await;
    assert!(listed.body.contains("sales, support"));

    let r = get(&app, &format!("/reports/departments.csv?{DAY}")).await;
    assert_eq!(
        r.body.lines().collect::<Vec<_>>(),
        [
            "department,interval,offered,missed,missed %,abandoned,timed out",
            "front,2026-12-07,6,3,50,2,1"
        ]
    );

    // The CRM API: admins (and tokens) may change departments; supervisors only read.
    let r = call(
        &app,
        Some(ADMIN),
        "PUT",
        "/api/v1/departments/billing",
        r#"{"queues": ["support"]}"#,
        true,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = call(
        &app,
        Some(ADMIN),
        "PUT",
        "/api/v1/departments/billing",
        r#"{"queues": ["gone"]}"#,
        true,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains(r#""code":3"#), "{}", r.body);
    let r = call(
        &app,
        Some(ADMIN),
        "PUT",
        "/api/v1/departments/b%20d",
        r#"{"queues": []}"#,
        true,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = call(
        &app,
        Some(SUPERVISOR),
        "PUT",
        "/api/v1/departments/x",
        r#"{"queues": []}"#,
        true,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = get(&app, "/api/v1/departments").await;
    let list: serde_json::Value = serde_json::from_str(&r.body).expect("json");
    assert_eq!(list.as_array().map(Vec::len), Some(2));
    let r = call(
        &app,
        Some(ADMIN),
        "DELETE",
        "/api/v1/departments/billing",
        "",
        true,
    )
    .await;
    assert_eq!(r.body, r#"{"removed":true}"#);
    assert_eq!(store.departments().await.expect("list").len(), 1);
}

#[tokio::test]
async fn call_records_export_streams_every_row() {
    let (app, store) = app().await;
    let many: Vec<Cdr> = (0..3000)
        .map(|i| {
            cdr(
                100 + i,
                "sip:+12125550101@c",
                T0 + 3_600_000 + i as i64,
                None,
                "support",
            )
        })
        .collect();
    store.insert_history(&many, &[]).await.expect("history");
    let r = get(&app, &format!("/reports/cdrs.csv?{DAY}&queue=support")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers[header::CONTENT_DISPOSITION]
        .to_str()
        .expect("cd")
        .contains("callfleet-cdrs.csv"));
    let lines: Vec<&str> = r.body.lines().collect();
    assert_eq!(
        lines.len(),
        1 + 3001,
        "header, the French call and 3000 more"
    );
    assert!(lines[0].starts_with("node,call_id,from,to,started_at"));
    assert!(lines[0].ends_with(",agent,queue,direction,destination"));
    assert!(lines[1].ends_with(",inbound,"), "{}", lines[1]);
    assert!(
        lines[1].starts_with(
            "n1,c5,sip:+33123456789@carrier,sip:support@10.0.0.1,2026-12-07T14:00:00Z"
        ),
        "{}",
        lines[1]
    );
    let r = get(&app, "/reports/cdrs.csv?tz=nowhere").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn departments_over_xml_rpc() {
    let (app, store) = app().await;
    let call = |body: String| {
        let app = app.clone();
        async move {
            let r = call(&app, Some(ADMIN), "POST", "/RPC2", &body, false).await;
            assert_eq!(r.status, StatusCode::OK);
            r.body
        }
    };
    let set = |name: &str, queues: &[&str]| {
        let items: String = queues
            .iter()
            .map(|q| format!("<value><string>{q}</string></value>"))
            .collect();
        format!(
            "<?xml version=\"1.0\"?><methodCall><methodName>department.set</methodName><params>\
             <param><value><string>{name}</string></value></param>\
             <param><value><array><data>{items}</data></array></value></param></params></methodCall>"
        )
    };
    let body = call(set("front", &["sales", "support"])).await;
    assert!(
        body.contains("<name>queues</name>") && body.contains("support"),
        "{body}"
    );
    let body = call(set("front", &["nope"])).await;
    assert!(
        body.contains("<fault>") && body.contains("<i4>3</i4>"),
        "{body}"
    );
    assert_eq!(
        store
            .department("front")
            .await
            .expect("read")
            .map(|d| d.queues.len()),
        Some(2)
    );
    let list = call(
        "<?xml version=\"1.0\"?><methodCall><methodName>department.list</methodName><params/></methodCall>"
            .to_owned(),
    )
    .await;
    assert!(list.contains("<string>front</string>"), "{list}");
    let removed = call(
        "<?xml version=\"1.0\"?><methodCall><methodName>department.remove</methodName><params>\
         <param><value><string>front</string></value></param></params></methodCall>"
            .to_owned(),
    )
    .await;
    assert!(removed.contains("<boolean>1</boolean>"), "{removed}");
}

#[tokio::test]
async fn quality_by_caller_country() {
    let (app, _) = app().await;
    let r = get(&app, &format!("/reports/quality.csv?{DAY}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body.lines().collect::<Vec<_>>(),
        [
            "country,calls,loss %,average jitter ms,highest jitter ms",
            "United States,2,1,3,8",
            "France,1,5,30,60"
        ]
    );
    let r = get(&app, &format!("/reports/quality.csv?{DAY}&queue=support")).await;
    assert_eq!(r.body.lines().nth(1), Some("France,1,5,30,60"));
    assert_eq!(r.body.lines().count(), 2);
    let page = get(&app, &format!("/reports/quality?{DAY}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("3 calls with RTP figures from 2 countries"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<svg viewBox"), "a chart");
    let both = get(
        &app,
        &format!("/reports/quality?{DAY}&queue=sales&agent=1001"),
    )
    .await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST);
    assert!(both.body.contains("Pick an agent or a queue, not both."));
}

#[tokio::test]
async fn agent_time_from_state_changes() {
    use callfleet_store::{Agent, AgentState::*};
    let (app, store) = app().await;
    let at = |hms: &str| {
        format!("2026-11-02T{hms}Z")
            .parse::<jiff::Timestamp>()
            .expect("a time")
            .as_millisecond()
    };
    store
        .upsert_agent(&Agent::new("3001", "Ann", "h", at("08:00:00")))
        .await
        .expect("agent");
    assert!(store
        .login_agent("3001", "d1", at("14:00:00"))
        .await
        .expect("login"));
    assert!(store
        .set_paused("3001", true, at("15:00:00"))
        .await
        .expect("pause"));
    assert!(store
        .set_paused("3001", false, at("15:30:00"))
        .await
        .expect("unpause"));
    for (from, to, t) in [
        (Available, Reserved, "16:00:00"),
        (Reserved, Ringing, "16:00:05"),
        (Ringing, InCall, "16:00:20"),
    ] {
        let call = (to == Reserved).then_some(("c9", "n1"));
        assert!(store
            .transition_agent("3001", &[from], to, at(t), call)
            .await
            .expect("transition"));
    }
    store
        .finish_agent_call("3001", at("16:30:00"), "2026-11-02", 0)
        .await
        .expect("finish");
    assert!(store
        .logout_agent("3001", at("17:00:00"))
        .await
        .expect("logout"));

    let r = get(
        &app,
        "/reports/agents.csv?from=2026-11-02&to=2026-11-02&tz=UTC",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Logged in 14:00-17:00, paused 30 min; ready 2.5 h, of which talking and wrap-up
    // 59 min 40 s: 39.8 %.
    assert_eq!(
        r.body.lines().nth(1),
        Some("3001,0,0:00:00,,3:00:00,0:30:00,39.8")
    );
    // The afternoon in New York (UTC-5) starts at 05:00 UTC: the same times.
    let r = get(
        &app,
        "/reports/agents.csv?from=2026-11-02&to=2026-11-02&tz=America/New_York&agent=3001",
    )
    .await;
    assert_eq!(
        r.body.lines().nth(1),
        Some("3001,0,0:00:00,,3:00:00,0:30:00,39.8")
    );
    assert_eq!(r.body.lines().count(), 2);
}
