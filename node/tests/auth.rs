//! Users, sessions, CSRF, API tokens and login rate limiting on a running node (SQLite),
//! through real HTTP. Addresses: 127.0.15.x.

mod support;

use std::net::SocketAddr;

use support::http::{exchange, header};
use support::{cli, NodeProc, NodeSpec};

fn login(addr: SocketAddr, name: &str, password: &str) -> (u16, Vec<(String, String)>, String) {
    let form = format!("name={name}&password={password}&next=%2F");
    exchange(
        addr,
        "POST /login HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded",
        &form,
    )
}

#[test]
fn users_sessions_tokens_and_rate_limits_work_over_http() {
    let dir = support::workdir("auth");
    let db = format!("sqlite://{}/cluster.db", dir.display());
    let mut node = NodeProc::start(
        &dir,
        NodeSpec {
            name: "auth-a",
            role: "main",
            ip: "127.0.15.11",
            db: &db,
            capacity: 10,
            extra: "",
        },
    );
    // Everything in tests is loopback: switch off loopback trust so the node treats this test
    // like a remote browser or CRM.
    node.terminate();
    let text = std::fs::read_to_string(&node.config).expect("read config");
    std::fs::write(
        &node.config,
        text.replacen("[http]\n", "[http]\ntrust_loopback = false\n", 1),
    )
    .expect("write config");
    node.spawn();
    let http = node.http;

    // Users are made with the CLI; a short password and a bad role are refused.
    let (ok, _, err) = cli(
        &node,
        &["user", "add", "--name", "sam", "--role", "boss"],
        "longpassword\n",
    );
    assert!(!ok && err.contains("admin or supervisor"), "{err}");
    let (ok, _, err) = cli(
        &node,
        &["user", "add", "--name", "sam", "--role", "supervisor"],
        "short\n",
    );
    assert!(!ok && err.contains("too short"), "{err}");
    let (ok, out, err) = cli(
        &node,
        &[
            "user",
            "add",
            "--name",
            "sam",
            "--role",
            "supervisor",
            "--device",
            "2001",
        ],
        "sam-password\n",
    );
    assert!(ok, "{out}{err}");
    let (ok, out, _) = cli(&node, &["user", "list"], "");
    assert!(ok && out.contains("sam\tsupervisor\t2001"), "{out}");

    // Without credentials: API 401, panel page sends to the login page.
    let (status, _, _) = exchange(http, "GET /api/v1/nodes HTTP/1.0", "");
    assert_eq!(status, 401);
    let (status, h, _) = exchange(http, "GET /login HTTP/1.0", "");
    assert_eq!(status, 200, "{h:?}");

    // Wrong password: 401; right one: a session cookie, HttpOnly and SameSite.
    let (status, _, body) = login(http, "sam", "nope-nope");
    assert_eq!(status, 401);
    assert!(body.contains("Wrong name or password"), "{body}");
    let (status, h, _) = login(http, "sam", "sam-password");
    assert_eq!(status, 303, "{h:?}");
    let set_cookie = header(&h, "set-cookie").expect("set-cookie").to_owned();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    let cookie = set_cookie
        .split(';')
        .next()
        .expect("cookie pair")
        .to_owned();
    let (status, _, body) = exchange(
        http,
        &format!("GET /api/v1/agents HTTP/1.0\r\nCookie: {cookie}"),
        "",
    );
    assert_eq!(status, 200, "{body}");
    // A supervisor may not drain the node, and a session needs its CSRF token to change things.
    let (status, _, _) = exchange(
        http,
        &format!("POST /api/v1/admin/drain HTTP/1.0\r\nCookie: {cookie}"),
        "",
    );
    assert_eq!(status, 403);
    let (status, _, body) = exchange(
        http,
        &format!("POST /api/v1/agents/9999/logout HTTP/1.0\r\nCookie: {cookie}"),
        "",
    );
    assert_eq!(status, 403, "no CSRF token: {body}");
    // Logging out ends the session on the server.
    let (status, _, _) = exchange(
        http,
        &format!("POST /logout HTTP/1.0\r\nCookie: {cookie}\r\nX-CSRF-Token: wrong"),
        "",
    );
    assert_eq!(status, 403);

    // CRM tokens: shown once, accepted as Bearer and as Basic password, revocable.
    let (ok, token, err) = cli(&node, &["token", "add", "--name", "crm"], "");
    assert!(ok, "{err}");
    let token = token.trim().to_owned();
    assert!(token.starts_with("cft_"), "{token}");
    let (ok, _, err) = cli(&node, &["token", "add", "--name", "crm"], "");
    assert!(!ok && err.contains("exists"), "{err}");
    let (status, _, _) = exchange(
        http,
        &format!("GET /api/v1/nodes HTTP/1.0\r\nAuthorization: Bearer {token}"),
        "",
    );
    assert_eq!(status, 200);
    let (status, _, _) = exchange(
        http,
        &format!("GET /api/v1/nodes HTTP/1.0\r\nAuthorization: Bearer {token}x"),
        "",
    );
    assert_eq!(status, 401);
    let (status, _, _) = exchange(
        http,
        &format!("POST /api/v1/admin/drain HTTP/1.0\r\nAuthorization: Bearer {token}"),
        "",
    );
    assert_eq!(status, 403, "a CRM token cannot drain a node");
    let (ok, _, err) = cli(&node, &["token", "remove", "--name", "crm"], "");
    assert!(ok, "{err}");
    let (status, _, _) = exchange(
        http,
        &format!("GET /api/v1/nodes HTTP/1.0\r\nAuthorization: Bearer {token}"),
        "",
    );
    assert_eq!(status, 401, "a revoked token is refused at once");

    // Password guessing: after 5 failures for one name the node answers 429 with Retry-After,
    // even for the right password, without checking it.
    for _ in 0..5 {
        assert_eq!(login(http, "sam", "guess-guess").0, 401);
    }
    let (status, h, _) = login(http, "sam", "sam-password");
    assert_eq!(status, 429);
    let retry: u64 = header(&h, "retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!(retry >= 1, "{retry}");

    // The node never panicked through all of it.
    assert!(!node.log_text().contains("panicked"), "{}", node.log_text());
}
