//! Admin forms: parsing and validation rules (pure), and the pages through the router with an
//! admin session on an in-memory SQLite store.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use callfleet_store::{Device, Store, User, UserRole};
use tower::ServiceExt;

use super::form::{self, Fields, Problems};
use super::view::seg;
use crate::api::{router, AppState, BoxFuture, NodeApi};
use crate::auth::{self, Principal, SESSION_COOKIE};
use crate::error::ApiError;
use crate::metrics::Metrics;

const EVIL: &str = "<script>x</script>";

fn f(pairs: &[(&str, &str)]) -> Fields {
    Fields::from_pairs(pairs.iter().copied())
}

/// The one field with a problem (the test fails if there are more or none).
fn only(problems: Problems) -> form::Invalid {
    assert_eq!(problems.0.len(), 1, "{problems}");
    problems.0.into_iter().next().expect("one problem")
}

fn queue_form(extra: &[(&str, &str)]) -> Fields {
    let mut pairs = vec![
        ("strategy", "ringall"),
        ("ring_timeout_s", "15"),
        ("max_wait_s", "60"),
        ("announce_interval_s", "30"),
        ("moh_class", "default"),
        ("wrapup_s", "2"),
        ("fallback", "hangup"),
    ];
    for (k, v) in extra {
        pairs.retain(|(key, _)| key != k);
        pairs.push((k, v));
    }
    f(&pairs)
}

#[test]
fn form_bodies_parse_and_checkboxes_read_as_ticked_or_not() {
    let fields = Fields::parse(b"name=sales+team&vip_allowed=on&pin=%201%20&csrf=t").expect("form");
    assert_eq!(fields.get("name"), "sales team");
    assert!(fields.checked("vip_allowed"));
    assert!(!fields.checked("missing"));
    assert_eq!(fields.get("pin"), "1", "trimmed");
    assert_eq!(fields.raw("pin"), " 1 ", "raw keeps what was typed");
    assert_eq!(fields.get("absent"), "");
}

#[test]
fn a_queue_form_becomes_a_queue() {
    let q = form::queue(&queue_form(&[]), "sales").expect("valid");
    assert_eq!(
        (
            q.name.as_str(),
            q.strategy.as_str(),
            q.ring_timeout_ms,
            q.max_wait_ms
        ),
        ("sales", "ringall", 15_000, 60_000)
    );
    assert_eq!((q.announce_interval_ms, q.wrapup_ms), (30_000, 2_000));
    assert_eq!((q.fallback.as_str(), q.fallback_target), ("hangup", None));
    // Optional fields take their defaults.
    let q = form::queue(
        &queue_form(&[
            ("announce_interval_s", ""),
            ("wrapup_s", ""),
            ("moh_class", ""),
        ]),
        "sales",
    )
    .expect("valid");
    assert_eq!(
        (q.announce_interval_ms, q.wrapup_ms, q.moh_class.as_str()),
        (0, 0, "default")
    );
    // A target given to `hangup` is dropped; voicemail and queue keep theirs.
    let q = form::queue(&queue_form(&[("fallback_target", "1001")]), "sales").expect("valid");
    assert_eq!(q.fallback_target, None);
    let q = form::queue(
        &queue_form(&[("fallback", "voicemail"), ("fallback_target", "1001")]),
        "sales",
    )
    .expect("valid");
    assert_eq!(q.fallback_target.as_deref(), Some("1001"));
    let q = form::queue(
        &queue_form(&[("fallback", "queue"), ("fallback_target", "support")]),
        "sales",
    )
    .expect("valid");
    assert_eq!(q.fallback_target.as_deref(), Some("support"));
}

#[test]
fn bad_queue_forms_say_which_field_and_why() {
    for (name, extra, field, says) in [
        ("", vec![], "name", "required"),
        ("sa les", vec![], "name", "letters, digits"),
        (EVIL, vec![], "name", "letters, digits"),
        (
            "sales",
            vec![("strategy", "fastest")],
            "strategy",
            "unknown strategy \"fastest\"",
        ),
        (
            "sales",
            vec![("ring_timeout_s", "-5")],
            "ring_timeout_s",
            "must not be negative",
        ),
        (
            "sales",
            vec![("ring_timeout_s", "0.5")],
            "ring_timeout_s",
            "between 1 and 600 seconds",
        ),
        (
            "sales",
            vec![("ring_timeout_s", "")],
            "ring_timeout_s",
            "required",
        ),
        (
            "sales",
            vec![("max_wait_s", "-1")],
            "max_wait_s",
            "must not be negative",
        ),
        (
            "sales",
            vec![("max_wait_s", "soon")],
            "max_wait_s",
            "not a number of seconds",
        ),
        (
            "sales",
            vec![("max_wait_s", "86401")],
            "max_wait_s",
            "between 0 and 86400 seconds",
        ),
        (
            "sales",
            vec![("wrapup_s", "-100")],
            "wrapup_s",
            "must not be negative",
        ),
        (
            "sales",
            vec![("wrapup_s", "1.2345")],
            "wrapup_s",
            "at most three decimals",
        ),
        (
            "sales",
            vec![("announce_interval_s", "99999999999999999999")],
            "announce_interval_s",
            "not a number of seconds",
        ),
        (
            "sales",
            vec![("fallback", "transfer")],
            "fallback",
            "unknown fallback",
        ),
        (
            "sales",
            vec![("fallback", "voicemail")],
            "fallback_target",
            "required for fallback \"voicemail\"",
        ),
        (
            "sales",
            vec![("fallback", "queue")],
            "fallback_target",
            "required for fallback \"queue\"",
        ),
        (
            "sales",
            vec![("fallback", "queue"), ("fallback_target", "sales")],
            "fallback_target",
            "itself",
        ),
        (
            "sales",
            vec![("fallback", "voicemail"), ("fallback_target", "1 001")],
            "fallback_target",
            "letters, digits",
        ),
        (
            "sales",
            vec![("moh_class", "../etc")],
            "moh_class",
            "letters, digits",
        ),
    ] {
        let err =
            only(form::queue(&queue_form(&extra), name).expect_err(&format!("{name} {extra:?}")));
        assert_eq!(err.field, field, "{name} {extra:?}: {err}");
        assert!(err.to_string().contains(says), "{name} {extra:?}: {err}");
    }
}

#[test]
fn every_bad_field_of_a_form_is_reported_at_once() {
    let problems = form::queue(
        &queue_form(&[
            ("strategy", "x"),
            ("ring_timeout_s", "0"),
            ("max_wait_s", "-1"),
            ("fallback", "voicemail"),
        ]),
        "a b",
    )
    .expect_err("four bad fields");
    assert_eq!(
        problems.fields(),
        [
            "name",
            "strategy",
            "ring_timeout_s",
            "max_wait_s",
            "fallback_target"
        ]
    );
    assert!(problems.on("max_wait_s").is_some() && problems.on("wrapup_s").is_none());
}

#[test]
fn seconds_are_typed_and_shown_and_kept_in_milliseconds() {
    for (ms, shown) in [
        (0, "0"),
        (20_000, "20"),
        (1_500, "1.5"),
        (250, "0.25"),
        (1_001, "1.001"),
        (86_400_000, "86400"),
    ] {
        assert_eq!(form::seconds(ms), shown);
        assert_eq!(
            form::parse_seconds(&form::MAX_WAIT, shown),
            Ok(ms),
            "{shown}"
        );
    }
    for (typed, ms) in [("1.50", 1_500), (".5", 500), ("7.", 7_000), ("007", 7_000)] {
        assert_eq!(
            form::parse_seconds(&form::MAX_WAIT, typed),
            Ok(ms),
            "{typed}"
        );
    }
    assert_eq!(form::parse_seconds(&form::WRAPUP, ""), Ok(0), "default");
    for bad in [".", "1,5", "1e3", "+1", "1 5", "0x10", "1.5s"] {
        let err = form::parse_seconds(&form::MAX_WAIT, bad).expect_err(bad);
        assert_eq!(err.field, "max_wait_s", "{bad}");
    }
    // A queue form round-trips through the page's values.
    let q = form::queue(&queue_form(&[("wrapup_s", "1.5")]), "sales").expect("valid");
    assert_eq!(q.wrapup_ms, 1_500);
}

#[test]
fn members_and_vips() {
    let m = form::member(
        &f(&[
            ("agent", "1001"),
            ("tier", "2"),
            ("vip_allowed", "on"),
            ("weight", "5"),
            ("position", "-3"),
        ]),
        "sales",
    )
    .expect("valid");
    assert_eq!(
        (
            m.queue.as_str(),
            m.agent.as_str(),
            m.tier,
            m.vip_allowed,
            m.weight,
            m.position
        ),
        ("sales", "1001", 2, true, 5, -3)
    );
    let m = form::member(&f(&[("agent", "1001")]), "sales").expect("defaults");
    assert_eq!(
        (m.tier, m.vip_allowed, m.weight, m.position),
        (0, false, 1, 0)
    );
    for (pairs, field) in [
        (vec![("tier", "1")], "agent"),
        (vec![("agent", "1001"), ("tier", "-1")], "tier"),
        (vec![("agent", "1001"), ("tier", "1001")], "tier"),
        (vec![("agent", "1001"), ("weight", "-2")], "weight"),
        (vec![("agent", "1001"), ("position", "x")], "position"),
    ] {
        assert_eq!(
            only(form::member(&f(&pairs), "q").expect_err("invalid")).field,
            field,
            "{pairs:?}"
        );
    }
    let c = form::vip(&f(&[("number", "+4930123")]), "sales").expect("valid");
    assert_eq!((c.number.as_str(), c.queue.as_str()), ("+4930123", "sales"));
    for bad in ["", "0 30", "sip:x"] {
        assert_eq!(
            only(form::vip(&f(&[("number", bad)]), "q").expect_err(bad)).field,
            "number"
        );
    }
}

#[test]
fn agents_store_the_pin_hash_the_dialplan_checks() {
    let a = form::agent(
        &f(&[
            ("extension", "1001"),
            ("name", "Alice"),
            ("pin", "1234"),
            ("daily_limit", "40"),
        ]),
        None,
        5,
    )
    .expect("valid");
    assert!(a.new_pin);
    let a = a.agent;
    assert_eq!(
        (a.extension.as_str(), a.name.as_str(), a.daily_limit),
        ("1001", "Alice", Some(40))
    );
    assert_eq!(a.pin_hash, auth::sha256_hex(b"1001:1234"));
    assert_ne!(a.pin_hash, "1234");
    // The dialplan's known vector: sha256("a:b").
    assert_eq!(
        form::pin_hash("a", "b"),
        "6783a31eabf68ccc0660f935c0826282bdd2241f3a80a9f2d10d59aea9ebb5d8"
    );
    assert_eq!(
        form::agent(&f(&[("extension", "1001"), ("pin", "1")]), None, 0)
            .expect("no limit")
            .agent
            .daily_limit,
        None
    );
    // On the agent's page the extension is the page's, and an empty PIN keeps the PIN.
    let kept = form::agent(
        &f(&[("extension", "9999"), ("name", "Al"), ("pin", "")]),
        Some("1001"),
        0,
    )
    .expect("valid");
    assert_eq!(
        (
            kept.agent.extension.as_str(),
            kept.new_pin,
            kept.agent.pin_hash.as_str()
        ),
        ("1001", false, "")
    );
    let changed = form::agent(&f(&[("pin", "77")]), Some("1001"), 0).expect("valid");
    assert!(changed.new_pin);
    assert_eq!(changed.agent.pin_hash, form::pin_hash("1001", "77"));
    for (pairs, key, field) in [
        (vec![("pin", "1234")], None, "extension"),
        (vec![("extension", "1001"), ("pin", "")], None, "pin"),
        (vec![("extension", "1001"), ("pin", "12a4")], None, "pin"),
        (vec![("pin", "12a4")], Some("1001"), "pin"),
        (
            vec![("extension", "1001"), ("pin", "12345678901234567")],
            None,
            "pin",
        ),
        (
            vec![("extension", "1001"), ("pin", "1"), ("daily_limit", "-1")],
            None,
            "daily_limit",
        ),
        (
            vec![("extension", "1001"), ("pin", "1"), ("name", "a\u{7}b")],
            None,
            "name",
        ),
    ] {
        assert_eq!(
            only(form::agent(&f(&pairs), key, 0).expect_err("invalid")).field,
            field,
            "{pairs:?}"
        );
    }
}

#[test]
fn devices_and_users() {
    let d = form::device(
        &f(&[
            ("extension", "2001"),
            ("name", "Desk"),
            ("password", " pw "),
        ]),
        None,
    )
    .expect("valid");
    assert_eq!(
        (d.extension.as_str(), d.name.as_str(), d.password.as_deref()),
        ("2001", "Desk", Some(" pw "))
    );
    assert!(!format!("{d:?}").contains("pw"), "Debug hides the password");
    let kept = form::device(&f(&[("name", "Hall")]), Some("2001")).expect("keeps the password");
    assert_eq!((kept.extension.as_str(), kept.password), ("2001", None));
    assert_eq!(
        only(form::device(&f(&[("extension", "2001")]), None).expect_err("no password")).field,
        "password"
    );
    assert_eq!(
        only(
            form::device(&f(&[("extension", "20 01"), ("password", "x")]), None).expect_err("ext")
        )
        .field,
        "extension"
    );

    let u = form::user(
        &f(&[
            ("name", "ada"),
            ("role", "admin"),
            ("password", "long-enough"),
            ("device", "2001"),
        ]),
        None,
    )
    .expect("valid");
    assert_eq!(
        (u.name.as_str(), u.role, u.device.as_deref()),
        ("ada", UserRole::Admin, Some("2001"))
    );
    assert!(!format!("{u:?}").contains("long-enough"));
    let kept = form::user(&f(&[("role", "supervisor")]), Some("ada")).expect("keeps");
    assert_eq!((kept.name.as_str(), kept.password), ("ada", None));
    for (pairs, key, field, says) in [
        (
            vec![
                ("name", "ada"),
                ("role", "boss"),
                ("password", "long-enough"),
            ],
            None,
            "role",
            "admin or supervisor",
        ),
        (
            vec![("name", "ada"), ("role", "admin"), ("password", "short")],
            None,
            "password",
            "too short",
        ),
        (
            vec![("role", "admin"), ("password", "short")],
            Some("ada"),
            "password",
            "too short",
        ),
        (
            vec![
                ("name", "a d"),
                ("role", "admin"),
                ("password", "long-enough"),
            ],
            None,
            "name",
            "letters",
        ),
        (
            vec![
                ("name", "ada"),
                ("role", "admin"),
                ("password", "long-enough"),
                ("device", "x y"),
            ],
            None,
            "device",
            "letters",
        ),
    ] {
        let err = only(form::user(&f(&pairs), key).expect_err("invalid"));
        assert_eq!(err.field, field, "{pairs:?}");
        assert!(err.problem.contains(says), "{err}");
    }
}

#[test]
fn carrier_networks_are_checked_and_made_canonical() {
    for (given, want) in [
        ("203.0.113.0/24", "203.0.113.0/24"),
        ("203.0.113.77/24", "203.0.113.0/24"),
        ("127.0.16.9", "127.0.16.9/32"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("2001:db8::1/32", "2001:db8::/32"),
        ("::1", "::1/128"),
    ] {
        assert_eq!(form::cidr(given).as_deref(), Ok(want), "{given}");
    }
    for bad in [
        "",
        "carrier.example",
        "10.0.0.0/33",
        "10.0.0/8",
        "10.0.0.0/",
        "10.0.0.0/-1",
        "::/129",
        "10.0.0.0/8/8",
    ] {
        let err = form::cidr(bad).expect_err(bad);
        assert_eq!(err.field, "network", "{bad}");
    }
    let c = form::carrier(
        &f(&[("name", "trunk-1"), ("network", "198.51.100.0/24")]),
        None,
        9,
    )
    .expect("valid");
    assert_eq!(
        (c.name.as_str(), c.network.as_str(), c.created_at_ms),
        ("trunk-1", "198.51.100.0/24", 9)
    );
    assert_eq!(
        only(form::carrier(&f(&[("name", "x"), ("network", "nope")]), None, 0).expect_err("bad"))
            .field,
        "network"
    );
}

#[test]
fn path_segments_are_percent_encoded() {
    assert_eq!(seg("sales"), "sales");
    assert_eq!(seg("+49 30/1#"), "%2B49%2030%2F1%23");
}

// ---- through the router --------------------------------------------------------------------

struct Node;

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
    fn device_credentials(
        &self,
        ext: &str,
        name: &str,
        password: &str,
    ) -> Result<Device, ApiError> {
        Ok(Device {
            extension: ext.to_owned(),
            ha1_md5: format!("md5({password})"),
            ha1_sha256: format!("sha({password})"),
            realm: "test".to_owned(),
            display_name: name.to_owned(),
            created_at_ms: 0,
        })
    }
}

const ADMIN: &str = "admin-session";
const SUPERVISOR: &str = "sup-session";
const CSRF: &str = "the-csrf";

async fn app() -> (axum::Router, Store) {
    let store = Store::connect("sqlite::memory:").await.expect("sqlite");
    store.migrate().await.expect("migrate");
    for (name, role, session) in [
        ("ada", UserRole::Admin, ADMIN),
        ("sam", UserRole::Supervisor, SUPERVISOR),
    ] {
        store
            .upsert_user(&User {
                name: name.to_owned(),
                password_hash: "x".to_owned(),
                role,
                device: None,
                created_at_ms: 1,
            })
            .await
            .expect("user");
        store
            .insert_session(
                &auth::sha256_hex(session.as_bytes()),
                name,
                CSRF,
                1,
                i64::MAX / 2,
            )
            .await
            .expect("session");
    }
    let state = AppState::new(Arc::new(Node), Metrics::new(), None, store.clone())
        .with_trust_loopback(false);
    (router(state), store)
}

/// What a request got back.
struct Reply {
    status: StatusCode,
    location: String,
    /// The flash cookie set (`cf_flash=...`), if any.
    flash: Option<String>,
    body: String,
}

async fn request(
    app: &axum::Router,
    session: &str,
    method: &str,
    path: &str,
    form: &str,
    flash: Option<&str>,
) -> Reply {
    let mut cookie = format!("{SESSION_COOKIE}={session}");
    if let Some(flash) = flash {
        cookie.push_str("; ");
        cookie.push_str(flash);
    }
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .expect("request");
    let res = app.clone().oneshot(req).await.expect("infallible");
    let status = res.status();
    let location = res
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let flash = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("cf_flash="))
        .and_then(|c| c.split(';').next())
        .map(str::to_owned);
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .expect("body");
    Reply {
        status,
        location,
        flash,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn send(
    app: &axum::Router,
    session: &str,
    method: &str,
    path: &str,
    form: &str,
) -> (StatusCode, String, String) {
    let r = request(app, session, method, path, form, None).await;
    (r.status, r.location, r.body)
}

/// POSTs a form with the CSRF field; expects `303` to `to` and returns the flash message the
/// page it leads to shows.
async fn change(app: &axum::Router, path: &str, form: &str, to: &str) -> String {
    let r = request(
        app,
        ADMIN,
        "POST",
        path,
        &format!("csrf={CSRF}&{form}"),
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.location.as_str()),
        (StatusCode::SEE_OTHER, to),
        "POST {path} {form}: {}",
        r.body
    );
    let flash = r.flash.expect("a flash cookie");
    let page = request(app, ADMIN, "GET", to, "", Some(&flash)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let start = page
        .body
        .find("data-testid=\"flash\">")
        .unwrap_or_else(|| panic!("no flash on {to}: {}", page.body))
        + "data-testid=\"flash\">".len();
    let len = page.body[start..].find('<').expect("end of the flash");
    page.body[start..start + len].to_owned()
}

#[tokio::test]
async fn an_admin_manages_everything_through_the_forms() {
    let (app, store) = app().await;
    let (status, _, body) = send(&app, ADMIN, "GET", "/admin", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("name=\"csrf\" value=\"the-csrf\""), "{body}");

    // A queue, then an agent, a member with tier and VIP, a VIP caller.
    let q = "name=sales&strategy=linear&ring_timeout_s=15&max_wait_s=60&announce_interval_s=0&moh_class=default&wrapup_s=1.5&fallback=hangup";
    let flash = change(&app, "/admin/queues", q, "/admin/queues/sales").await;
    assert_eq!(flash, "Queue sales created.");
    let q_row = store.queue("sales").await.expect("read").expect("queue");
    assert_eq!(
        (q_row.ring_timeout_ms, q_row.max_wait_ms, q_row.wrapup_ms),
        (15_000, 60_000, 1_500),
        "seconds typed, milliseconds stored"
    );
    let (status, _, body) = send(
        &app,
        ADMIN,
        "POST",
        "/admin/queues",
        &format!("csrf={CSRF}&{q}"),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a second queue of that name"
    );
    assert!(body.contains("exists already"), "{body}");
    let flash = change(
        &app,
        "/admin/agents",
        "extension=1001&name=Alice&pin=1234&daily_limit=",
        "/admin/agents",
    )
    .await;
    assert_eq!(flash, "Agent 1001 created.");
    let flash = change(
        &app,
        "/admin/queues/sales/members",
        "agent=1001&tier=2&vip_allowed=on&weight=3&position=1",
        "/admin/queues/sales",
    )
    .await;
    assert_eq!(
        flash,
        "Agent 1001 is a member of sales: tier 2, takes VIP callers."
    );
    change(
        &app,
        "/admin/queues/sales/vips",
        "number=%2B4930",
        "/admin/queues/sales",
    )
    .await;
    let members = store.members(Some("sales")).await.expect("members");
    assert_eq!(
        (
            members[0].agent.as_str(),
            members[0].tier,
            members[0].vip_allowed
        ),
        ("1001", 2, true)
    );
    assert!(store.is_vip("+4930", "sales").await.expect("vip"));
    let (status, _, body) = send(&app, ADMIN, "GET", "/admin/queues/sales", "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("data-testid=\"member-1001\"")
            && body.contains("/admin/queues/sales/vips/%2B4930/delete")
            && body.contains("value=\"1.5\""),
        "{body}"
    );

    // Edit: a voicemail fallback to an agent that does not exist is refused, the message next
    // to the field; to one that does is saved.
    let edit = |target: &str| {
        format!("csrf={CSRF}&strategy=ringall&ring_timeout_s=20&max_wait_s=1&fallback=voicemail&fallback_target={target}")
    };
    let (status, _, body) = send(&app, ADMIN, "POST", "/admin/queues/sales", &edit("9999")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body.contains("<p class=\"problem\" id=\"queue-edit-fallback_target-error\">there is no agent &quot;9999&quot;"),
        "{body}"
    );
    assert!(body.contains("aria-invalid=\"true\""), "{body}");
    assert!(
        body.contains("<a href=\"#queue-edit-fallback_target\">Fallback target: there is no agent"),
        "the summary links to the field: {body}"
    );
    let flash = change(
        &app,
        "/admin/queues/sales",
        &edit("1001")[CSRF.len() + 6..],
        "/admin/queues/sales",
    )
    .await;
    assert_eq!(flash, "Queue sales saved.");
    let q = store.queue("sales").await.expect("read").expect("queue");
    assert_eq!(
        (
            q.strategy.as_str(),
            q.fallback_target.as_deref(),
            q.max_wait_ms
        ),
        ("ringall", Some("1001"), 1_000)
    );
    let (status, _, _) = send(&app, ADMIN, "POST", "/admin/queues/nope", &edit("1001")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = send(&app, ADMIN, "GET", "/admin/queues/nope", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A member of an unknown agent; a bad strategy: the page again, with the message, escaped.
    let (status, _, body) = send(
        &app,
        ADMIN,
        "POST",
        "/admin/queues/sales/members",
        &format!("csrf={CSRF}&agent=7777"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("there is no agent"), "{body}");
    let (status, _, body) = send(
        &app,
        ADMIN,
        "POST",
        "/admin/queues",
        &format!(
            "csrf={CSRF}&name=x&strategy=%3Cb%3E&ring_timeout_s=1&max_wait_s=0&fallback=hangup"
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body.contains("unknown strategy &quot;&lt;b&gt;&quot;") && !body.contains("<b>"),
        "{body}"
    );
    // What was typed is shown again, so nothing is typed twice.
    assert!(
        body.contains("id=\"queue-new-name\" name=\"name\" value=\"x\""),
        "{body}"
    );

    // Phones, users and carriers.
    change(
        &app,
        "/admin/devices",
        "extension=2001&name=Desk&password=pw",
        "/admin/devices",
    )
    .await;
    let d = store.device("2001").await.expect("read").expect("device");
    assert_eq!(
        (d.ha1_md5.as_str(), d.display_name.as_str()),
        ("md5(pw)", "Desk")
    );
    // A new name only: the digests stay.
    change(
        &app,
        "/admin/devices/2001",
        "name=Hall&password=",
        "/admin/devices",
    )
    .await;
    let d = store.device("2001").await.expect("read").expect("device");
    assert_eq!(
        (d.ha1_md5.as_str(), d.display_name.as_str()),
        ("md5(pw)", "Hall")
    );
    change(
        &app,
        "/admin/users",
        "name=bob&role=supervisor&password=bob-password&device=2001",
        "/admin/users",
    )
    .await;
    let bob = store.user("bob").await.expect("read").expect("user");
    assert!(auth::verify_password("bob-password", &bob.password_hash));
    assert_eq!(
        (bob.role, bob.device.as_deref()),
        (UserRole::Supervisor, Some("2001"))
    );
    change(
        &app,
        "/admin/users/bob",
        "role=admin&password=&device=",
        "/admin/users",
    )
    .await;
    let bob = store.user("bob").await.expect("read").expect("user");
    assert!(
        auth::verify_password("bob-password", &bob.password_hash),
        "password kept"
    );
    assert_eq!((bob.role, bob.device), (UserRole::Admin, None));
    change(
        &app,
        "/admin/carriers",
        "name=trunk&network=10.1.2.3%2F16",
        "/admin/carriers",
    )
    .await;
    assert_eq!(
        store.carriers().await.expect("carriers")[0].network,
        "10.1.0.0/16"
    );
    let (status, _, body) = send(
        &app,
        ADMIN,
        "POST",
        "/admin/carriers",
        &format!("csrf={CSRF}&name=t2&network=10.0.0.0%2F40"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("Network: prefix /40"), "{body}");
    // An agent's PIN is kept when its page leaves it empty.
    let before = store.agent("1001").await.expect("read").expect("agent");
    change(
        &app,
        "/admin/agents/1001",
        "name=Alicia&pin=&daily_limit=7",
        "/admin/agents",
    )
    .await;
    let after = store.agent("1001").await.expect("read").expect("agent");
    assert_eq!(
        (
            after.name.as_str(),
            after.daily_limit,
            after.pin_hash == before.pin_hash
        ),
        ("Alicia", Some(7), true)
    );

    // An admin cannot remove itself or take its own admin role away.
    let (status, _, body) = send(&app, ADMIN, "GET", "/admin/users", "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!body.contains("data-testid=\"user-delete-ada\""), "{body}");
    let (status, _, body) = send(
        &app,
        ADMIN,
        "POST",
        "/admin/users/ada/delete",
        &format!("csrf={CSRF}"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("cannot remove yourself"), "{body}");
    let (status, _, body) = send(
        &app,
        ADMIN,
        "POST",
        "/admin/users/ada",
        &format!("csrf={CSRF}&role=supervisor"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("your own admin role"), "{body}");
    assert!(store.user("ada").await.expect("read").is_some());

    // Every delete is asked first (a page with a form, no script), then done.
    for (page, to, flash) in [
        (
            "/admin/users/bob/delete",
            "/admin/users",
            "User bob deleted.",
        ),
        (
            "/admin/carriers/trunk/delete",
            "/admin/carriers",
            "Carrier trunk deleted.",
        ),
        (
            "/admin/devices/2001/delete",
            "/admin/devices",
            "Phone 2001 deleted.",
        ),
        (
            "/admin/queues/sales/vips/%2B4930/delete",
            "/admin/queues/sales",
            "+4930 is no longer a VIP caller of sales.",
        ),
        (
            "/admin/queues/sales/members/1001/delete",
            "/admin/queues/sales",
            "Agent 1001 removed from sales.",
        ),
        (
            "/admin/agents/1001/delete",
            "/admin/agents",
            "Agent 1001 deleted.",
        ),
        (
            "/admin/queues/sales/delete",
            "/admin/queues",
            "Queue sales deleted.",
        ),
    ] {
        let (status, _, body) = send(&app, ADMIN, "GET", page, "").await;
        assert_eq!(status, StatusCode::OK, "{page}: {body}");
        assert!(
            body.contains(&format!(
                "<form method=\"post\" action=\"{page}\" id=\"confirm\">"
            )) && !body.contains("<script"),
            "{page}: {body}"
        );
        assert_eq!(change(&app, page, "", to).await, flash, "{page}");
    }
    assert!(store.queues().await.expect("queues").is_empty());
    assert!(store.agents().await.expect("agents").is_empty());
    assert!(store.carriers().await.expect("carriers").is_empty());
    let (status, _, _) = send(
        &app,
        ADMIN,
        "POST",
        "/admin/agents/1001/delete",
        &format!("csrf={CSRF}"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "deleted already");

    // Without the CSRF field nothing happens.
    let (status, _, _) = send(
        &app,
        ADMIN,
        "POST",
        "/admin/carriers",
        "name=t&network=10.0.0.0%2F8",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(store.carriers().await.expect("carriers").is_empty());
}

#[tokio::test]
async fn a_flash_message_is_shown_once_as_text() {
    let (app, _) = app().await;
    use base64::Engine as _;
    let evil = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(EVIL);
    let r = request(
        &app,
        ADMIN,
        "GET",
        "/admin/queues",
        "",
        Some(&format!("cf_flash={evil}")),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body
            .contains("data-testid=\"flash\">&lt;script&gt;x&lt;/script&gt;</p>")
            && !r.body.contains(EVIL),
        "{}",
        r.body
    );
    assert_eq!(
        r.flash.as_deref(),
        Some("cf_flash="),
        "shown once: the cookie is cleared"
    );
    for junk in ["cf_flash=%%%", "cf_flash=", "cf_flash=__8"] {
        let r = request(&app, ADMIN, "GET", "/admin/queues", "", Some(junk)).await;
        assert_eq!(r.status, StatusCode::OK, "{junk}");
        assert!(
            !r.body.contains("data-testid=\"flash\""),
            "{junk}: {}",
            r.body
        );
    }
}

#[tokio::test]
async fn supervisors_get_403_and_values_are_escaped() {
    let (app, store) = app().await;
    for path in [
        "/admin",
        "/admin/queues",
        "/admin/users",
        "/admin/agents/1/delete",
    ] {
        let (status, _, _) = send(&app, SUPERVISOR, "GET", path, "").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    let (status, _, _) = send(
        &app,
        SUPERVISOR,
        "POST",
        "/admin/carriers",
        &format!("csrf={CSRF}&name=t&network=10.0.0.0%2F8"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let mut agent = callfleet_store::Agent::new("3001", EVIL, "h", 1);
    agent.daily_limit = Some(1);
    store.upsert_agent(&agent).await.expect("agent");
    for path in [
        "/admin/agents",
        "/admin/agents/3001",
        "/admin/agents/3001/delete",
    ] {
        let (status, _, body) = send(&app, ADMIN, "GET", path, "").await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(
            !body.contains(EVIL) && body.contains("&lt;script&gt;") && !body.contains("<script"),
            "{path}: {body}"
        );
    }
}

#[tokio::test]
async fn a_database_that_is_down_shows_a_503_page() {
    let store = Store::connect("sqlite::memory:").await.expect("sqlite");
    store.migrate().await.expect("migrate");
    let state = AppState::new(Arc::new(Node), Metrics::new(), None, store.clone());
    let principal = Principal::User {
        name: "ada".to_owned(),
        role: UserRole::Admin,
        device: None,
        csrf: CSRF.to_owned(),
    };
    // The pages alone, with the principal the guard would have set.
    let app = super::routes()
        .layer(axum::Extension(principal))
        .with_state(state);
    store.close().await;
    for (method, path, form) in [
        ("GET", "/admin", ""),
        ("GET", "/admin/queues", ""),
        ("GET", "/admin/queues/sales", ""),
        ("GET", "/admin/agents/1001/delete", ""),
        ("POST", "/admin/agents", "extension=1001&pin=1"),
        ("POST", "/admin/carriers", "name=t&network=10.0.0.0%2F8"),
        ("POST", "/admin/queues/sales/members", "agent=1001"),
    ] {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .expect("request");
        let res = app.clone().oneshot(req).await.expect("infallible");
        assert_eq!(
            res.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{method} {path}"
        );
        let body = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .expect("body");
        let body = String::from_utf8_lossy(&body);
        assert!(
            body.contains("database is unavailable") && body.contains("<html"),
            "{body}"
        );
    }
}
