//! The admin pages on a two-node cluster (PostgreSQL): an admin logs in on node B and creates
//! a queue, an agent, a member with tier and VIP permission, a VIP caller, a phone, a user and
//! a carrier through the forms; node A sees each of them, and takes calls from the new
//! carrier's network within seconds. Addresses: 127.0.16.x.

mod support;

use std::time::Duration;

use support::http::exchange;
use support::queue::Db;
use support::session::Session;
use support::uac::Uac;
use support::{NodeProc, NodeSpec, Pg};

/// GET signed with the cluster secret (node A's JSON API, as another node would ask).
fn api_get(node: &NodeProc, path: &str) -> serde_json::Value {
    let signature = support::signer().sign_now("GET", path, b"");
    let (status, _, body) = exchange(
        node.http,
        &format!("GET {path} HTTP/1.0\r\nX-Callfleet-Signature: {signature}"),
        "",
    );
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

/// Starts a node whose config lists only the cluster's own addresses as carriers, trusts no
/// loopback peer (the test is a remote browser).
fn start(dir: &std::path::Path, name: &str, ip: &str, db: &str) -> NodeProc {
    let mut node = NodeProc::start(
        dir,
        NodeSpec {
            name,
            role: "main",
            ip,
            db,
            capacity: 20,
            extra: "",
        },
    );
    node.terminate();
    let text = std::fs::read_to_string(&node.config).expect("read config");
    let text = text
        .replacen("[http]\n", "[http]\ntrust_loopback = false\n", 1)
        .replacen(
            "allow = [\"127.0.0.0/8\"]",
            "allow = [\"127.0.16.11/32\", \"127.0.16.12/32\"]",
            1,
        );
    assert!(text.contains("127.0.16.11/32"), "{text}");
    std::fs::write(&node.config, text).expect("write config");
    node.spawn();
    node
}

/// Calls node A from `uac`: the final status (answered calls are hung up at once).
fn call_status(uac: &mut Uac, call_id: &str) -> u16 {
    let (_, cseq) = uac.invite("500", call_id, None, "");
    let until = std::time::Instant::now() + Duration::from_secs(5);
    // Skip late answers to earlier calls (a BYE's 200, a retransmitted 200 OK).
    let resp = loop {
        let Some(left) = until.checked_duration_since(std::time::Instant::now()) else {
            return 0;
        };
        let Some(resp) = uac.recv_final(left) else {
            return 0;
        };
        if resp.header("Call-ID").as_deref() == Some(call_id)
            && resp.header("CSeq").is_some_and(|c| c.ends_with("INVITE"))
        {
            break resp;
        }
    };
    if resp.status == 200 {
        uac.ack(call_id, &resp, cseq);
        uac.in_dialog("BYE", call_id, &resp, None);
        let _ = uac.recv_final(Duration::from_secs(2));
    }
    resp.status
}

#[test]
fn admin_pages_on_one_node_configure_the_whole_cluster() {
    let _serial = support::serial();
    let dir = support::workdir("admin");
    let pg = Pg::fresh("admin");
    let a = start(&dir, "admin-a", "127.0.16.11", &pg.url);
    let b = start(&dir, "admin-b", "127.0.16.12", &pg.url);
    let both = support::wait_until(Duration::from_secs(15), || {
        api_get(&a, "/api/v1/nodes")
            .as_array()
            .is_some_and(|n| n.iter().filter(|n| n["alive"] == true).count() == 2)
    });
    assert!(both.is_some(), "A does not see both nodes alive");
    let db = Db::connect(&pg.url);

    // A caller from a network no config lists is refused by node A.
    let mut caller = Uac::new("127.0.16.50", a.sip);
    assert_eq!(call_status(&mut caller, "admin-before-1"), 403);

    // The first admin is made with the CLI, then logs in on node B's login form.
    support::user_add(&b, "ada", "admin", "ada-password", None);
    let mut ada = Session::login(b.http, "ada", "ada-password").expect("admin login on B");
    ada.fetch_csrf();
    for page in [
        "/admin/queues",
        "/admin/agents",
        "/admin/devices",
        "/admin/users",
        "/admin/carriers",
    ] {
        let (status, body) = ada.get(page);
        assert_eq!(status, 200, "{page}: {body}");
    }

    // An agent, a queue, a member with tier and VIP permission, a VIP caller.
    let (status, to, body) = ada.post(
        "/admin/agents",
        "extension=1001&name=Alice&pin=4321&daily_limit=25",
    );
    assert_eq!((status, to.as_str()), (303, "/admin/agents"), "{body}");
    let (status, _, body) = ada.post(
        "/admin/queues",
        "name=sales&strategy=linear&ring_timeout_s=12&max_wait_s=90\
         &announce_interval_s=0&moh_class=default&wrapup_s=1.5&fallback=voicemail&fallback_target=1001",
    );
    assert_eq!(status, 303, "{body}");
    let (status, _, body) = ada.post(
        "/admin/queues/sales/members",
        "agent=1001&tier=3&vip_allowed=on&weight=2&position=1",
    );
    assert_eq!(status, 303, "{body}");
    let (status, _, body) = ada.post("/admin/queues/sales/vips", "number=%2B4930555");
    assert_eq!(status, 303, "{body}");
    // Bad values are refused with a message on the page, and change nothing.
    let (status, _, body) = ada.post(
        "/admin/queues",
        "name=support&strategy=fastest&ring_timeout_s=-5&max_wait_s=0&fallback=hangup",
    );
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("unknown strategy") && body.contains("must not be negative"),
        "every bad field is named: {body}"
    );
    let (status, _, body) = ada.post("/admin/carriers", "name=bad&network=127.0.16.0%2F99");
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("Network: prefix /99"), "{body}");

    // A phone and a supervisor.
    let (status, _, body) = ada.post(
        "/admin/devices",
        "extension=2001&name=Front+desk&password=phone-secret",
    );
    assert_eq!(status, 303, "{body}");
    let (status, _, body) = ada.post(
        "/admin/users",
        "name=sam&role=supervisor&password=sam-password&device=2001",
    );
    assert_eq!(status, 303, "{body}");

    // Node A sees the queue and the agent with its membership over its JSON API.
    let queues = api_get(&a, "/api/v1/queues");
    let sales = queues
        .as_array()
        .and_then(|qs| qs.iter().find(|q| q["name"] == "sales"))
        .unwrap_or_else(|| panic!("no queue sales on A: {queues}"));
    assert_eq!(sales["strategy"], "linear", "{sales}");
    assert_eq!(sales["members"], 1, "{sales}");
    let agent = api_get(&a, "/api/v1/agents/1001");
    assert_eq!(agent["name"], "Alice", "{agent}");
    assert_eq!(agent["daily_limit"], 25, "{agent}");
    assert_eq!(agent["queues"][0]["queue"], "sales", "{agent}");
    assert_eq!(agent["queues"][0]["tier"], 3, "{agent}");
    assert_eq!(agent["queues"][0]["vip_allowed"], true, "{agent}");
    // What the forms stored is what the dialplan and the registrar check.
    let stored = db
        .block(db.store.agent("1001"))
        .expect("read agent")
        .expect("agent 1001");
    assert!(
        callfleet_store::pin::verify("1001", "4321", &stored.pin_hash)
            .expect("a PIN hash")
            .is_right(),
        "{}",
        stored.pin_hash
    );
    let q = db
        .block(db.store.queue("sales"))
        .expect("read queue")
        .expect("queue sales");
    assert_eq!(
        (
            q.ring_timeout_ms,
            q.max_wait_ms,
            q.wrapup_ms,
            q.fallback.as_str(),
            q.fallback_target.as_deref()
        ),
        (12_000, 90_000, 1_500, "voicemail", Some("1001"))
    );
    assert!(db
        .block(db.store.is_vip("+4930555", "sales"))
        .expect("read vip"));
    let phone = db
        .block(db.store.device("2001"))
        .expect("read device")
        .expect("device 2001");
    use callfleet::registrar::digest::{ha1, Algorithm};
    assert_eq!(
        phone.ha1_md5,
        ha1(Algorithm::Md5, "2001", "callfleet", "phone-secret")
    );
    assert_eq!(
        phone.ha1_sha256,
        ha1(Algorithm::Sha256, "2001", "callfleet", "phone-secret")
    );
    let (ok, out, _) = support::cli(&a, &["device", "list"], "");
    assert!(ok && out.contains("2001\tcallfleet\tFront desk"), "{out}");

    // The supervisor made on B logs in on A; the admin pages are not theirs.
    let sam = Session::login(a.http, "sam", "sam-password").expect("supervisor login on A");
    let (status, _) = sam.get("/");
    assert_eq!(status, 200);
    for page in ["/admin", "/admin/queues", "/admin/carriers"] {
        assert_eq!(sam.get(page).0, 403, "{page}");
    }
    let (status, _, _) = sam.post("/admin/carriers", "name=x&network=127.0.16.0%2F24");
    assert_eq!(status, 403);
    // An admin cannot remove itself.
    let (status, _, body) = ada.post("/admin/users/ada/delete", "");
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("cannot remove yourself"), "{body}");

    // The carrier, added on B: node A takes its calls from its next INVITE on.
    let (status, _, body) = ada.post("/admin/carriers", "name=trunk-b&network=127.0.16.48%2F29");
    assert_eq!(status, 303, "{body}");
    let mut n = 0;
    let took = support::wait_until(Duration::from_secs(15), || {
        n += 1;
        call_status(&mut caller, &format!("admin-after-{n}")) == 200
    });
    let took = took.unwrap_or_else(|| {
        panic!(
            "node A still refuses the new carrier's calls; log:\n{}",
            a.log_text()
        )
    });
    eprintln!("node A admitted the new carrier after {took:?} ({n} attempts)");
    // Removing it closes the door again.
    let (status, _, body) = ada.post("/admin/carriers/trunk-b/delete", "");
    assert_eq!(status, 303, "{body}");
    let refused = support::wait_until(Duration::from_secs(15), || {
        n += 1;
        call_status(&mut caller, &format!("admin-after-{n}")) == 403
    });
    assert!(
        refused.is_some(),
        "node A still takes the removed carrier's calls"
    );

    assert!(!a.log_text().contains("panicked"), "{}", a.log_text());
    assert!(!b.log_text().contains("panicked"), "{}", b.log_text());
}
