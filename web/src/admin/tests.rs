//! Admin forms: parsing and validation rules (pure), and the pages through the router with an
//! admin session on an in-memory SQLite store.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use callfleet_store::{Device, Store, User, UserRole};
use tower::ServiceExt;

use super::form::{self, Fields};
use super::html::seg;
use crate::api::{router, AppState, BoxFuture, NodeApi};
use crate::auth::{self, Principal, SESSION_COOKIE};
use crate::error::ApiError;
use crate::metrics::Metrics;

const EVIL: &str = "<script>x</script>";

fn f(pairs: &[(&str, &str)]) -> Fields {
    Fields::from_pairs(pairs.iter().copied())
}

fn queue_form(extra: &[(&str, &str)]) -> Fields {
    let mut pairs = vec![
        ("strategy", "ringall"),
        ("ring_timeout_ms", "15000"),
        ("max_wait_ms", "60000"),
        ("announce_interval_ms", "30000"),
        ("moh_class", "default"),
        ("wrapup_ms", "2000"),
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
            ("announce_interval_ms", ""),
            ("wrapup_ms", ""),
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
            vec![("ring_timeout_ms", "-5")],
            "ring timeout (ms)",
            "must not be negative",
        ),
        (
            "sales",
            vec![("ring_timeout_ms", "10")],
            "ring timeout (ms)",
            "between 1000 and 600000",
        ),
        (
            "sales",
            vec![("ring_timeout_ms", "")],
            "ring timeout (ms)",
            "required",
        ),
        (
            "sales",
            vec![("max_wait_ms", "-1")],
            "max wait (ms)",
            "must not be negative",
        ),
        (
            "sales",
            vec![("max_wait_ms", "soon")],
            "max wait (ms)",
            "not a whole number",
        ),
        (
            "sales",
            vec![("wrapup_ms", "-100")],
            "wrap-up (ms)",
            "must not be negative",
        ),
        (
            "sales",
            vec![("announce_interval_ms", "99999999999999999999")],
            "announce interval (ms)",
            "not a whole number",
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
            "fallback target",
            "required for fallback \"voicemail\"",
        ),
        (
            "sales",
            vec![("fallback", "queue")],
            "fallback target",
            "required for fallback \"queue\"",
        ),
        (
            "sales",
            vec![("fallback", "queue"), ("fallback_target", "sales")],
            "fallback target",
            "itself",
        ),
        (
            "sales",
            vec![("fallback", "voicemail"), ("fallback_target", "1 001")],
            "fallback target",
            "letters, digits",
        ),
        (
            "sales",
            vec![("moh_class", "../etc")],
            "music on hold class",
            "letters, digits",
        ),
    ] {
        let err = form::queue(&queue_form(&extra), name).expect_err(&format!("{name} {extra:?}"));
        assert_eq!(err.field, field, "{name} {extra:?}: {err}");
        assert!(err.to_string().contains(says), "{name} {extra:?}: {err}");
    }
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
            form::member(&f(&pairs), "q").expect_err("invalid").field,
            field,
            "{pairs:?}"
        );
    }
    let c = form::vip(&f(&[("number", "+4930123")]), "sales").expect("valid");
    assert_eq!((c.number.as_str(), c.queue.as_str()), ("+4930123", "sales"));
    assert_eq!(
        form::vip(&f(&[("number", "")]), "q")
            .expect_err("empty")
            .field,
        "number"
    );
    assert_eq!(
        form::vip(&f(&[("number", "0 30")]), "q")
            .expect_err("space")
            .field,
        "number"
    );
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
        5,
    )
    .expect("valid");
    assert_eq!(
        (a.extension.as_str(), a.name.as_str(), a.daily_limit),
        ("1001", "Alice", Some(40))
    );
    // Stored as the node's hot-desk login checks it: argon2id, salted.
    assert!(a.pin_hash.starts_with("$argon2id$"), "{}", a.pin_hash);
    assert!(callfleet_store::pin::verify("1001", "1234", &a.pin_hash)
        .expect("verifies")
        .is_right());
    assert!(!callfleet_store::pin::verify("1001", "1235", &a.pin_hash)
        .expect("verifies")
        .is_right());
    assert_eq!(
        form::agent(&f(&[("extension", "1001"), ("pin", "1")]), 0)
            .expect("no limit")
            .daily_limit,
        None
    );
    for (pairs, field) in [
        (vec![("pin", "1234")], "extension"),
        (vec![("extension", "1001"), ("pin", "")], "PIN"),
        (vec![("extension", "1001"), ("pin", "12a4")], "PIN"),
        (
            vec![("extension", "1001"), ("pin", "12345678901234567")],
            "PIN",
        ),
        (
            vec![("extension", "1001"), ("pin", "1"), ("daily_limit", "-1")],
            "daily limit",
        ),
        (
            vec![("extension", "1001"), ("pin", "1"), ("name", "a\u{7}b")],
            "name",
        ),
    ] {
        assert_eq!(
            form::agent(&f(&pairs), 0).expect_err("invalid").field,
            field,
            "{pairs:?}"
        );
    }
}

#[test]
fn devices_and_users() {
    let d = form::device(&f(&[
        ("extension", "2001"),
        ("name", "Desk"),
        ("password", " pw "),
    ]))
    .expect("valid");
    assert_eq!(
        (d.extension.as_str(), d.name.as_str(), d.password.as_str()),
        ("2001", "Desk", " pw ")
    );
    assert!(!format!("{d:?}").contains("pw"), "Debug hides the password");
    assert_eq!(
        form::device(&f(&[("extension", "2001")]))
            .expect_err("no password")
            .field,
        "password"
    );
    assert_eq!(
        form::device(&f(&[("extension", "20 01"), ("password", "x")]))
            .expect_err("ext")
            .field,
        "extension"
    );

    let u = form::user(&f(&[
        ("name", "ada"),
        ("role", "admin"),
        ("password", "long-enough"),
        ("device", "2001"),
    ]))
    .expect("valid");
    assert_eq!(
        (u.name.as_str(), u.role, u.device.as_deref()),
        ("ada", UserRole::Admin, Some("2001"))
    );
    assert!(!format!("{u:?}").contains("long-enough"));
    for (pairs, field, says) in [
        (
            vec![
                ("name", "ada"),
                ("role", "boss"),
                ("password", "long-enough"),
            ],
            "role",
            "admin or supervisor",
        ),
        (
            vec![("name", "ada"), ("role", "admin"), ("password", "short")],
            "password",
            "too short",
        ),
        (
            vec![
                ("name", "a d"),
                ("role", "admin"),
                ("password", "long-enough"),
            ],
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
            "phone",
            "letters",
        ),
    ] {
        let err = form::user(&f(&pairs)).expect_err("invalid");
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
        9,
    )
    .expect("valid");
    assert_eq!(
        (c.name.as_str(), c.network.as_str(), c.created_at_ms),
        ("trunk-1", "198.51.100.0/24", 9)
    );
    assert_eq!(
        form::carrier(&f(&[("name", "x"), ("network", "nope")]), 0)
            .expect_err("bad")
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

async fn send(
    app: &axum::Router,
    session: &str,
    method: &str,
    path: &str,
    form: &str,
) -> (StatusCode, String, String) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::COOKIE, format!("{SESSION_COOKIE}={session}"))
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
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        location,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[tokio::test]
async fn an_admin_manages_everything_through_the_forms() {
    let (app, store) = app().await;
    let (status, _, body) = send(&app, ADMIN, "GET", "/admin", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("name=\"csrf\" value=\"the-csrf\""), "{body}");

    // A queue, then an agent, a member with tier and VIP, a VIP caller.
    let q = format!("csrf={CSRF}&name=sales&strategy=linear&ring_timeout_ms=15000&max_wait_ms=60000&announce_interval_ms=0&moh_class=default&wrapup_ms=0&fallback=hangup");
    let (status, to, body) = send(&app, ADMIN, "POST", "/admin/queues", &q).await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/admin/queues/sales"),
        "{body}"
    );
    let (status, _, body) = send(&app, ADMIN, "POST", "/admin/queues", &q).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a second queue of that name"
    );
    assert!(body.contains("exists already"), "{body}");
    let (status, _, _) = send(
        &app,
        ADMIN,
        "POST",
        "/admin/agents",
        &format!("csrf={CSRF}&extension=1001&name=Alice&pin=1234&daily_limit="),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = send(
        &app,
        ADMIN,
        "POST",
        "/admin/queues/sales/members",
        &format!("csrf={CSRF}&agent=1001&tier=2&vip_allowed=on&weight=3&position=1"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = send(
        &app,
        ADMIN,
        "POST",
        "/admin/queues/sales/vips",
        &format!("csrf={CSRF}&number=%2B4930"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
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
            && body.contains("/admin/queues/sales/vips/%2B4930/delete"),
        "{body}"
    );

    // Edit: a voicemail fallback to an agent that does not exist is refused, to one that does
    // is saved.
    let edit = |target: &str| {
        format!("csrf={CSRF}&strategy=ringall&ring_timeout_ms=20000&max_wait_ms=1000&fallback=voicemail&fallback_target={target}")
    };
    let (status, _, body) = send(&app, ADMIN, "POST", "/admin/queues/sales", &edit("9999")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body.contains("there is no agent &quot;9999&quot;"),
        "{body}"
    );
    let (status, _, _) = send(&app, ADMIN, "POST", "/admin/queues/sales", &edit("1001")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let q = store.queue("sales").await.expect("read").expect("queue");
    assert_eq!(
        (q.strategy.as_str(), q.fallback_target.as_deref()),
        ("ringall", Some("1001"))
    );
    let (status, _, _) = send(&app, ADMIN, "POST", "/admin/queues/nope", &edit("1001")).await;
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
    let (status, _, body) = send(&app, ADMIN, "POST", "/admin/queues", &format!("csrf={CSRF}&name=x&strategy=%3Cb%3E&ring_timeout_ms=1000&max_wait_ms=0&fallback=hangup")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body.contains("unknown strategy &quot;&lt;b&gt;&quot;") && !body.contains("<b>"),
        "{body}"
    );

    // Phones, users and carriers.
    let (status, _, _) = send(
        &app,
        ADMIN,
        "POST",
        "/admin/devices",
        &format!("csrf={CSRF}&extension=2001&name=Desk&password=pw"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let d = store.device("2001").await.expect("read").expect("device");
    assert_eq!(
        (d.ha1_md5.as_str(), d.display_name.as_str()),
        ("md5(pw)", "Desk")
    );
    let (status, _, _) = send(
        &app,
        ADMIN,
        "POST",
        "/admin/users",
        &format!("csrf={CSRF}&name=bob&role=supervisor&password=bob-password&device=2001"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let bob = store.user("bob").await.expect("read").expect("user");
    assert!(auth::verify_password("bob-password", &bob.password_hash));
    assert_eq!(
        (bob.role, bob.device.as_deref()),
        (UserRole::Supervisor, Some("2001"))
    );
    let (status, _, body) = send(
        &app,
        ADMIN,
        "POST",
        "/admin/carriers",
        &format!("csrf={CSRF}&name=trunk&network=10.1.2.3%2F16"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
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
    assert!(body.contains("network: prefix /40"), "{body}");

    // An admin cannot remove itself; others go.
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
    assert!(store.user("ada").await.expect("read").is_some());
    for path in [
        "/admin/users/bob/delete",
        "/admin/carriers/trunk/delete",
        "/admin/devices/2001/delete",
        "/admin/queues/sales/vips/%2B4930/delete",
        "/admin/queues/sales/members/1001/delete",
        "/admin/agents/1001/delete",
        "/admin/queues/sales/delete",
    ] {
        let (status, _, body) = send(&app, ADMIN, "POST", path, &format!("csrf={CSRF}")).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}: {body}");
    }
    assert!(store.queues().await.expect("queues").is_empty());
    assert!(store.agents().await.expect("agents").is_empty());
    assert!(store.carriers().await.expect("carriers").is_empty());

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
async fn supervisors_get_403_and_values_are_escaped() {
    let (app, store) = app().await;
    for path in ["/admin", "/admin/queues", "/admin/users"] {
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
    let (status, _, body) = send(&app, ADMIN, "GET", "/admin/agents", "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !body.contains(EVIL) && body.contains("&lt;script&gt;"),
        "{body}"
    );
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
        ("GET", "/admin/queues/sales", ""),
        ("POST", "/admin/agents", "extension=1001&pin=1"),
        ("POST", "/admin/carriers", "name=t&network=10.0.0.0%2F8"),
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
