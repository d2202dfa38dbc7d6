//! The HTTP edge of a real node attacked from where a page in a browser, a reverse proxy or a
//! crafted link stands: a page of another site cannot act through the host's loopback trust
//! (`/RPC2` as a `text/plain` form, the drain), a proxied or DNS-rebound request is not the
//! host's, a program on the host without credentials only reads, the login sends a browser
//! only to this site's paths, and a supervisor's listen-in goes only to their own phone.
//! Meanwhile curl with the operator token and the CLI still work. Addresses: 127.0.62.x.

mod support;

use std::net::SocketAddr;

use support::http::{exchange, header};
use support::phone::device_add;
use support::queue::Db;
use support::{cli, user_add, workdir, NodeProc, NodeSpec};

/// A node on SQLite with the default `trust_loopback = true`.
fn start(dir: &std::path::Path, name: &str, ip: &str) -> (NodeProc, String) {
    let db = format!("sqlite://{}", dir.join("cluster.db").display());
    let node = NodeProc::start(
        dir,
        NodeSpec {
            name,
            role: "main",
            ip,
            db: &db,
            capacity: 10,
            extra: "",
        },
    );
    (node, db)
}

/// The XML-RPC call a page would post to log agent `ext` out.
fn rpc_logout(ext: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?><methodCall><methodName>agent.logout</methodName>\
         <params><param><value><string>{ext}</string></value></param></params></methodCall>"
    )
}

#[test]
fn a_page_in_a_browser_on_the_node_s_host_cannot_act_as_its_operator() {
    let dir = workdir("http-edge-loopback");
    let (node, db) = start(&dir, "edge-a", "127.0.62.1");
    let http = node.http;
    device_add(&node, "2001", "pw-2001", false);
    let store = Db::connect(&db);
    store.add_agent("1001", "1234");
    store.login("1001", "2001");
    let token = node.operator_token();

    // A page of evil.example posts forms at the node (a browser sends text/plain and
    // urlencoded forms without asking first); with cross-site markers, with an opaque
    // origin, without markers (an old browser), and carrying the operator token.
    let forms = [
        "Origin: http://evil.example\r\nSec-Fetch-Site: cross-site".to_owned(),
        "Origin: null\r\nSec-Fetch-Site: cross-site".to_owned(),
        "Origin: http://127.0.62.1:8081\r\nSec-Fetch-Site: same-site".to_owned(),
        String::new(),
        format!("Origin: http://evil.example\r\nAuthorization: Bearer {token}"),
    ];
    for markers in &forms {
        let sep = if markers.is_empty() { "" } else { "\r\n" };
        let head = format!("POST /RPC2 HTTP/1.0\r\nContent-Type: text/plain{sep}{markers}");
        let (status, _, body) = exchange(http, &head, &rpc_logout("1001"));
        assert_eq!(status, 401, "/RPC2 with {markers:?}: {body}");
        let head = format!(
            "POST /api/v1/admin/drain HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded{sep}{markers}"
        );
        let (status, _, body) = exchange(http, &head, "a=1");
        assert_eq!(status, 401, "drain with {markers:?}: {body}");
        let head = format!("POST /api/v1/agents/1001/logout HTTP/1.0{sep}{markers}");
        let (status, _, _) = exchange(http, &head, "");
        assert_eq!(status, 401, "logout with {markers:?}");
    }
    // A local reverse proxy passing on someone's request, and a page whose own name resolves
    // to the node (DNS rebinding), even with the operator token: nobody's.
    for extra in [
        "X-Forwarded-For: 203.0.113.9",
        "Forwarded: for=203.0.113.9",
        "X-Real-IP: 203.0.113.9",
        "Host: evil.example:8080",
    ] {
        let (status, _, _) = exchange(http, &format!("GET /api/v1/calls HTTP/1.0\r\n{extra}"), "");
        assert_eq!(status, 401, "read with {extra}");
        let head = format!(
            "POST /api/v1/admin/drain HTTP/1.0\r\n{extra}\r\nAuthorization: Bearer {token}"
        );
        let (status, _, _) = exchange(http, &head, "");
        assert_eq!(status, 401, "drain with {extra}");
    }

    // Nothing happened: the agent is still logged in, the node is not draining.
    let agent = store.agent("1001");
    assert_eq!(agent.device.as_deref(), Some("2001"), "{agent:?}");
    assert_eq!(node.nodes()[0]["draining"], false);

    // What the host's operator does still works: curl reads; curl with the operator token
    // changes; the CLI drains.
    let (status, _, _) = exchange(http, "GET /api/v1/nodes HTTP/1.0", "");
    assert_eq!(status, 200);
    let (status, body) = node.post_json("/api/v1/agents/1001/logout", "");
    assert_eq!(status, 204, "{body}");
    assert_eq!(store.agent("1001").device, None);
    let (status, body) = node.post_json("/api/v1/agents/1001/login", r#"{"device":"2001"}"#);
    assert_eq!(status, 204, "{body}");
    let (ok, out, err) = cli(&node, &["node", "drain"], "");
    assert!(ok && out.contains("is draining"), "{out}{err}");
}

/// Logs in with `next`, as a form posts it (`next_form` is already form-encoded): the
/// redirect's `Location`.
fn login_to(http: SocketAddr, next_form: &str) -> String {
    let (status, headers, body) = exchange(
        http,
        "POST /login HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded",
        &format!("name=ada&password=ada-password-1&next={next_form}"),
    );
    assert_eq!(status, 303, "login with next={next_form}: {body}");
    header(&headers, "location").unwrap_or_default().to_owned()
}

#[test]
fn after_login_the_browser_goes_only_to_a_path_of_this_site() {
    let dir = workdir("http-edge-redirect");
    let (node, _) = start(&dir, "edge-b", "127.0.62.2");
    user_add(&node, "ada", "admin", "ada-password-1", None);
    // (next as the form sends it, where the browser is sent)
    let cases = [
        ("%2Fadmin%2Fqueues%3Fx%3D1", "/admin/queues?x=1"),
        ("%2F", "/"),
        // `/%09/evil.example/`, the reported link, and the tab itself.
        ("%2F%2509%2Fevil.example%2F", "/"),
        ("%2F%09%2Fevil.example%2F", "/"),
        ("%2F%0A%2Fevil.example%2F", "/"),
        ("%2F%2Fevil.example%2F", "/"),
        ("%2F%5Cevil.example", "/"),
        ("%5C%5Cevil.example", "/"),
        ("%2F%255Cevil.example", "/"),
        ("%2F%252F%252Fevil.example", "/"),
        ("https%3A%2F%2Fevil.example%2F", "/"),
        ("javascript%3Aalert(1)", "/"),
        ("", "/"),
    ];
    for (next, want) in cases {
        assert_eq!(login_to(node.http, next), want, "next={next}");
    }
    // The login page a crafted link opens carries no foreign target either.
    let (status, _, body) = exchange(node.http, "GET /login?next=%2F%2Fevil.example HTTP/1.0", "");
    assert_eq!(status, 200);
    assert!(!body.contains("evil.example"), "{body}");
    assert!(body.contains("name=\"next\" value=\"/\""), "{body}");
}

/// A logged-in panel user: the session cookie and its CSRF token (from the panel page).
fn session(http: SocketAddr, name: &str, password: &str) -> (String, String) {
    let (status, headers, body) = exchange(
        http,
        "POST /login HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded",
        &format!("name={name}&password={password}&next=%2F"),
    );
    assert_eq!(status, 303, "{name} logs in: {body}");
    let cookie = header(&headers, "set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let (status, _, page) = exchange(http, &format!("GET / HTTP/1.0\r\nCookie: {cookie}"), "");
    assert_eq!(status, 200);
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("a csrf field") + marker.len();
    let len = page[start..].find('"').expect("the end of the csrf value");
    (cookie, page[start..start + len].to_owned())
}

#[test]
fn a_supervisor_s_listen_in_goes_only_to_their_own_phone() {
    let dir = workdir("http-edge-listen");
    let (node, _) = start(&dir, "edge-c", "127.0.62.3");
    for (name, role, device) in [
        ("sue", "supervisor", Some("2009")),
        ("nod", "supervisor", None),
        ("ada", "admin", Some("2001")),
        ("root", "admin", None),
    ] {
        user_add(&node, name, role, &format!("{name}-password-1"), device);
    }
    // No call `c-none` exists: a request that passes the phone rule gets 404 for the call,
    // one that does not gets 403 before the call is looked for.
    // (user, body, status)
    let cases = [
        ("sue", r#"{"device":"2666","mode":"listen"}"#, 403),
        ("sue", r#"{"device":"2666","mode":"whisper"}"#, 403),
        ("nod", r#"{"device":"2666"}"#, 403),
        ("ada", r#"{"device":"2666"}"#, 403),
        ("sue", r#"{"device":"2009"}"#, 404),
        ("sue", r#"{"mode":"listen"}"#, 404),
        ("ada", r#"{}"#, 404),
        ("root", r#"{"device":"2666"}"#, 404),
    ];
    for (name, body, want) in cases {
        let (cookie, csrf) = session(node.http, name, &format!("{name}-password-1"));
        let head = format!(
            "POST /api/v1/calls/c-none/listen HTTP/1.0\r\nContent-Type: application/json\r\n\
             Cookie: {cookie}\r\nX-CSRF-Token: {csrf}"
        );
        let (status, _, text) = exchange(node.http, &head, body);
        assert_eq!(status, want, "{name} {body}: {text}");
    }
    let log = node.log_text();
    assert!(
        log.contains("listen request refused: device"),
        "the refusals are logged"
    );
}
