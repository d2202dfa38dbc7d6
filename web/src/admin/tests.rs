//! The admin pages through the router, with an admin session on an in-memory SQLite store:
//! every form, its flash message, its refusals shown on the page, the confirmation before
//! each delete, escaping, and a database that is down.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use callfleet_store::{Device, Store, User, UserRole};
use tower::ServiceExt;

use super::view::seg;
use crate::api::{router, AppState, NodeApi};
use crate::auth::{self, Principal, SESSION_COOKIE};
use crate::error::ApiError;
use crate::metrics::Metrics;

const EVIL: &str = "<script>x</script>";

#[test]
fn path_segments_are_percent_encoded() {
    assert_eq!(seg("sales"), "sales");
    assert_eq!(seg("+49 30/1#"), "%2B49%2030%2F1%23");
}

// ---- through the router --------------------------------------------------------------------

struct Node;

impl NodeApi for Node {
    crate::testing::no_node_basics!();
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

/// A queue `sales` with agent 1001 as a member (tier 2, VIP) and VIP caller +4930, made with
/// the forms.
async fn sales(app: &axum::Router) {
    let q = "name=sales&strategy=linear&ring_timeout_s=15&max_wait_s=60&announce_interval_s=0&moh_class=default&wrapup_s=1.5&fallback=hangup";
    assert_eq!(
        change(app, "/admin/queues", q, "/admin/queues/sales").await,
        "Queue sales created."
    );
    change(
        app,
        "/admin/agents",
        "extension=1001&name=Alice&pin=1234&daily_limit=",
        "/admin/agents",
    )
    .await;
    assert_eq!(
        change(
            app,
            "/admin/queues/sales/members",
            "agent=1001&tier=2&vip_allowed=on&weight=3&position=1",
            "/admin/queues/sales",
        )
        .await,
        "Agent 1001 is a member of sales: tier 2, takes VIP callers."
    );
    change(
        app,
        "/admin/queues/sales/vips",
        "number=%2B4930",
        "/admin/queues/sales",
    )
    .await;
}

#[tokio::test]
async fn a_queue_with_members_and_vip_callers_is_made_with_the_forms() {
    let (app, store) = app().await;
    let (status, _, body) = send(&app, ADMIN, "GET", "/admin", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("name=\"csrf\" value=\"the-csrf\""), "{body}");

    sales(&app).await;
    let q_row = store.queue("sales").await.expect("read").expect("queue");
    assert_eq!(
        (q_row.ring_timeout_ms, q_row.max_wait_ms, q_row.wrapup_ms),
        (15_000, 60_000, 1_500),
        "seconds typed, milliseconds stored"
    );
    let q =
        "csrf=the-csrf&name=sales&strategy=linear&ring_timeout_s=15&max_wait_s=60&fallback=hangup";
    let (status, _, body) = send(&app, ADMIN, "POST", "/admin/queues", q).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a second queue of that name"
    );
    assert!(body.contains("exists already"), "{body}");
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
}

#[tokio::test]
async fn a_refused_form_shows_each_problem_next_to_its_field() {
    let (app, store) = app().await;
    sales(&app).await;
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
}

#[tokio::test]
async fn a_phone_keeps_its_digests_when_only_its_name_changes() {
    let (app, store) = app().await;
    // Phones.
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
}

#[tokio::test]
async fn users_carriers_and_agents_keep_what_a_form_leaves_empty() {
    let (app, store) = app().await;
    sales(&app).await;
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
}

#[tokio::test]
async fn nobody_removes_themself_or_takes_their_own_admin_role() {
    let (app, store) = app().await;
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
}

#[tokio::test]
async fn every_delete_is_asked_first_then_done() {
    let (app, store) = app().await;
    sales(&app).await;
    for (path, form) in [
        ("/admin/devices", "extension=2001&name=Desk&password=pw"),
        (
            "/admin/users",
            "name=bob&role=supervisor&password=bob-password",
        ),
        ("/admin/carriers", "name=trunk&network=10.1.0.0%2F16"),
    ] {
        change(&app, path, form, path).await;
    }
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
}

#[tokio::test]
async fn a_provisioned_phone_shows_its_mac_and_its_delete_forgets_it() {
    let (app, store) = app().await;
    let device = Device {
        extension: "7000".to_owned(),
        ha1_md5: "m".to_owned(),
        ha1_sha256: "s".to_owned(),
        realm: "test".to_owned(),
        display_name: "provisioned 001565aabbcc".to_owned(),
        created_at_ms: 1,
    };
    let phone = callfleet_store::ProvisionedPhone {
        mac: "001565aabbcc".to_owned(),
        extension: "7000".to_owned(),
        family: "yealink".to_owned(),
        salt: "00".repeat(16),
        source: "127.0.56.9".to_owned(),
        token_name: "office".to_owned(),
        created_at_ms: 1,
        fetched_at_ms: 1,
    };
    store
        .provision_phone(&phone, &device)
        .await
        .expect("provision");
    change(
        &app,
        "/admin/devices",
        "extension=2001&name=Desk&password=pw",
        "/admin/devices",
    )
    .await;
    let (status, _, list) = send(&app, ADMIN, "GET", "/admin/devices", "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.contains(">MAC</th>"), "{list}");
    assert!(list.contains("<td>001565aabbcc</td>"), "{list}");
    let (_, _, confirm) = send(&app, ADMIN, "GET", "/admin/devices/7000/delete", "").await;
    assert!(
        confirm.contains("Phone 001565aabbcc may provision itself again"),
        "{confirm}"
    );
    let flash = change(&app, "/admin/devices/7000/delete", "", "/admin/devices").await;
    assert_eq!(flash, "Phone 7000 deleted.");
    assert_eq!(
        store.provisioned_phone("001565aabbcc").await.expect("read"),
        None
    );
    assert!(store.device("2001").await.expect("read").is_some());
}

#[tokio::test]
async fn without_the_csrf_field_nothing_happens() {
    let (app, store) = app().await;
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

#[tokio::test]
async fn the_proxies_page_lists_addresses_and_check_ins_for_admins_only() {
    let (app, store) = app().await;
    for (name, hash) in [("lyon", "hash-of-lyon"), ("nantes", "hash-of-nantes")] {
        let proxy = callfleet_store::Proxy {
            name: name.into(),
            token_hash: hash.into(),
            address: None,
            last_checkin_ms: None,
            created_at_ms: 1,
        };
        store.add_proxy(&proxy).await.expect("proxy");
    }
    let ip = "198.51.100.7".parse().expect("ip");
    store.proxy_checkin("lyon", ip, 1).await.expect("check-in");
    let (status, _, body) = send(&app, ADMIN, "GET", "/admin/proxies", "").await;
    assert_eq!(status, StatusCode::OK);
    let row = |name: &str| {
        let at = body.find(&format!("proxy-{name}")).expect("a row");
        body[at..].split("</tr>").next().unwrap_or("").to_owned()
    };
    assert!(
        row("lyon").contains("198.51.100.7") && row("lyon").contains(" ago"),
        "{body}"
    );
    assert!(
        row("nantes").contains("none yet") && row("nantes").contains("never"),
        "{body}"
    );
    assert!(!body.contains("hash-of-"), "no token hash on the page");
    let (status, _, _) = send(&app, SUPERVISOR, "GET", "/admin/proxies", "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

mod numbers;
