//! Users, sessions, CSRF, API tokens and login rate limiting on a running node (SQLite),
//! through real HTTP. Addresses: 127.0.15.x.

mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{NodeProc, NodeSpec};

/// One HTTP/1.0 exchange: (status, headers in lower case, body).
fn exchange(addr: SocketAddr, head: &str, body: &str) -> (u16, Vec<(String, String)>, String) {
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .expect("connect to the node");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "{head}\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send request");
    let mut buf = String::new();
    s.read_to_string(&mut buf).expect("read response");
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn cli(node: &NodeProc, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_callfleet"))
        .args(args)
        .arg("--config")
        .arg(&node.config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run callfleet");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait for callfleet");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

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
