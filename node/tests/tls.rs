//! Encryption (issue 8, item 10), against real nodes and real peers, with a throwaway CA made
//! at test time: the panel and APIs over HTTPS (curl checking the certificate; `Secure`
//! cookie and HSTS; plain HTTP refused; an `http://` origin is another site; a silent
//! connection holds nobody up; the CLI reaches its node over HTTPS), listen-in forwarded from
//! node to node over HTTPS (and refused when the holder's certificate is not trusted), and a
//! baresip phone registering, calling and being rung (as an agent) over SIP/TLS while an
//! attacker sends plain text, garbage and silent connections to the TLS port, and a malformed
//! request (400) and an INVITE from outside the allowlist (403) over TLS. Addresses: 127.0.71.x.

mod support;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use callfleet_store::QueueEventKind;
use support::phone::{device_add, Phone};
use support::queue::{member, queue, Db};
use support::tls::{add_keys, curl, enable_https, enable_sips, sips_exchange, TestCa};
use support::uac::Uac;
use support::{
    cli, http_get, serial, user_add, wait_alive, wait_until, workdir, NodeProc, NodeSpec, Pg,
};

/// A node on SQLite with HTTPS on (certificate of `ca`), not yet started.
fn https_node(dir: &Path, ca: &TestCa, name: &str, ip: &str) -> NodeProc {
    let db = format!("sqlite://{}", dir.join("cluster.db").display());
    let mut node = NodeProc::configure(
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
    enable_https(&mut node, ca, &ca.pem);
    node
}

/// Sends `bytes` on a plain TCP connection to `addr` and reads what comes back until close.
fn plain_exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(12)))
        .expect("timeout");
    s.write_all(bytes).expect("send");
    let mut got = Vec::new();
    // Ends at close (or the read timeout: then what came so far).
    let _closed = s.read_to_end(&mut got);
    got
}

#[test]
fn the_panel_and_apis_are_served_over_https_with_secure_cookies_and_hsts() {
    let dir = workdir("tls-https");
    let ca = TestCa::new(&dir, "cluster");
    let mut node = https_node(&dir, &ca, "tls-a", "127.0.71.1");
    node.spawn();
    user_add(
        &node,
        "sup",
        "supervisor",
        "a long supervisor password",
        None,
    );
    let base = format!("https://{}", node.http);

    // A silent connection (no handshake) holds nobody up.
    let _silent = TcpStream::connect(node.http).expect("connect");

    // The login over HTTPS, the certificate checked against the CA.
    let login = curl(
        Some(&ca.pem),
        &[
            "--data-urlencode",
            "name=sup",
            "--data-urlencode",
            "password=a long supervisor password",
            &format!("{base}/login"),
        ],
    )
    .expect("login over HTTPS");
    assert_eq!(login.status, 303, "{login:?}");
    let cookie = login
        .all("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("cf_session="))
        .unwrap_or_else(|| panic!("a session cookie: {login:?}"))
        .to_string();
    let attrs: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(
        attrs.contains(&"Secure"),
        "the session cookie is Secure: {cookie}"
    );
    assert!(attrs.contains(&"HttpOnly"), "{cookie}");
    assert_eq!(
        login.header("strict-transport-security"),
        Some("max-age=31536000"),
        "HSTS on the login's answer"
    );
    let session = cookie.split(';').next().expect("name=value");

    // The panel with that session; HSTS on every answer (pages, API, metrics).
    let panel = curl(
        Some(&ca.pem),
        &["-H", &format!("Cookie: {session}"), &format!("{base}/")],
    )
    .expect("panel over HTTPS");
    assert_eq!(panel.status, 200, "{}", panel.body);
    assert!(panel.header("strict-transport-security").is_some());
    for path in ["/api/v1/nodes", "/metrics", "/healthz"] {
        let r = curl(Some(&ca.pem), &[&format!("{base}{path}")]).expect(path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_eq!(
            r.header("strict-transport-security"),
            Some("max-age=31536000"),
            "{path}"
        );
    }
    let nodes: serde_json::Value = serde_json::from_str(
        &curl(Some(&ca.pem), &[&format!("{base}/api/v1/nodes")])
            .expect("nodes")
            .body,
    )
    .expect("nodes JSON");
    assert!(
        nodes[0]["services"]
            .as_str()
            .is_some_and(|s| s.contains("https")),
        "the heartbeat says the node serves HTTPS: {nodes}"
    );

    // An `http://` origin is another site now: a form posted from it is refused.
    let forged = curl(
        Some(&ca.pem),
        &[
            "-H",
            &format!("Origin: http://{}", node.http),
            "--data-urlencode",
            "name=sup",
            "--data-urlencode",
            "password=a long supervisor password",
            &format!("{base}/login"),
        ],
    )
    .expect("forged login");
    assert_eq!(forged.status, 403, "{forged:?}");

    // A client that does not trust the CA gets no answer at all (curl: 60).
    let untrusted = curl(None, &[&format!("{base}/healthz")]);
    assert!(matches!(untrusted, Err((60, _))), "{untrusted:?}");
    let other = TestCa::new(&dir, "other");
    let wrong = curl(Some(&other.pem), &[&format!("{base}/healthz")]);
    assert!(matches!(wrong, Err((60, _))), "{wrong:?}");

    // Plain HTTP to the HTTPS port: a plain 400 naming the scheme, then the connection closes.
    let plain = plain_exchange(node.http, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let plain = String::from_utf8_lossy(&plain);
    assert!(
        plain.starts_with("HTTP/1.1 400 ") && plain.contains("HTTPS only"),
        "{plain}"
    );
    // A handshake that is not one: closed, nothing served.
    let garbage = plain_exchange(node.http, b"\x16\x03\x01\x00\x05hello, not a ClientHello");
    assert!(!String::from_utf8_lossy(&garbage).contains("HTTP/1.1 200"));

    // The CLI reaches its node over HTTPS, checking it against `http.ca_file`.
    let (ok, out, err) = cli(&node, &["health"], "");
    assert!(ok, "callfleet health over HTTPS: {out}{err}");
    let (ok, out, err) = cli(&node, &["doctor"], "");
    assert!(ok, "callfleet doctor: {out}{err}");
    assert!(
        out.contains(&format!("node answers on https://{}/healthz", node.http))
            && out.contains("HTTPS certificate")
            && out.contains("CA file"),
        "{out}"
    );
    let (ok, out, err) = cli(&node, &["node", "drain"], "");
    assert!(ok, "callfleet node drain over HTTPS: {out}{err}");
    assert!(
        node.wait_exit(Duration::from_secs(15)).is_some(),
        "the drained node exits:\n{}",
        node.log_text()
    );
}

#[test]
fn a_node_with_a_broken_certificate_does_not_start() {
    let dir = workdir("tls-broken");
    let ca = TestCa::new(&dir, "cluster");
    let node = https_node(&dir, &ca, "tls-b", "127.0.71.2");
    let text = std::fs::read_to_string(&node.config).expect("config");
    let key_line = text
        .lines()
        .find(|l| l.starts_with("tls_key"))
        .expect("tls_key line")
        .to_string();
    // Another certificate's key: the pair does not match.
    let (_, other_key) = ca.issue("unrelated", &["127.0.71.2"]);
    let broken = text.replace(&key_line, &format!("tls_key = \"{}\"", other_key.display()));
    std::fs::write(&node.config, broken).expect("write config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_callfleet"))
        .args(["node", "--config"])
        .arg(&node.config)
        .output()
        .expect("run the node");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("http.tls_key"),
        "the error names the key: {err}"
    );
    let (ok, out, _) = cli(&node, &["doctor"], "");
    assert!(
        !ok && out
            .lines()
            .any(|l| l.starts_with("FAIL") && l.contains("http.tls_key")),
        "doctor names the bad key: {out}"
    );
    let missing = text.replace(&key_line, "tls_key = \"/nonexistent/key.pem\"");
    std::fs::write(&node.config, missing).expect("write config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_callfleet"))
        .args(["node", "--config"])
        .arg(&node.config)
        .output()
        .expect("run the node");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("http.tls_key"),
        "{err}"
    );
}

/// Calls in progress on `node` (its JSON API over plain HTTP).
fn live_calls(node: &NodeProc) -> Vec<serde_json::Value> {
    let (_, body) = http_get(node.http, "/api/v1/calls").expect("GET /api/v1/calls");
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

#[test]
fn a_phone_registers_and_calls_over_sip_tls_and_attacks_on_the_tls_port_disturb_nothing() {
    let dir = workdir("tls-sip");
    let ca = TestCa::new(&dir, "cluster");
    let db_url = format!("sqlite://{}", dir.join("cluster.db").display());
    let mut node = NodeProc::configure(
        &dir,
        NodeSpec {
            name: "tls-s",
            role: "main",
            ip: "127.0.71.3",
            db: &db_url,
            capacity: 10,
            extra: "",
        },
    );
    enable_sips(&node, &ca);
    add_keys(&node, "sip", "tcp_message_timeout = \"2s\"");
    // The carriers' allowlist: the test's caller and the host's own address, not .50.
    let text = std::fs::read_to_string(&node.config).expect("config");
    let text = text.replace(
        "allow = [\"127.0.0.0/8\"]",
        "allow = [\"127.0.71.11/32\", \"127.0.0.1/32\"]",
    );
    std::fs::write(&node.config, text).expect("write config");
    node.spawn();
    let tls: SocketAddr = "127.0.71.3:5061".parse().expect("addr");
    device_add(&node, "2001", "pw-2001-long-enough", false);
    let db = Db::connect(&db_url);
    db.add_agent("1001", "1234");

    // REGISTER over TLS (digest challenge answered on the same connection).
    let phone = Phone::start_tls_with_ctrl(
        &dir,
        "127.0.71.10",
        "2001",
        "pw-2001-long-enough",
        tls,
        4444,
        &ca.pem,
    );
    let registered = wait_until(Duration::from_secs(15), || db.registered("2001"));
    assert!(
        registered.is_some(),
        "no registration over TLS:\n{}",
        phone.log()
    );
    let regs = db
        .block(db.store.registrations("2001", callfleet::now_ms()))
        .expect("registrations");
    assert_eq!(regs[0].transport, "tls", "{regs:?}");

    // The phone's own call over TLS, challenged with 407: the hot-desk login acts on it.
    phone.dial("sip:*11*1001*1234@127.0.71.3:5061;transport=tls");
    let logged_in = wait_until(Duration::from_secs(15), || {
        db.agent("1001").device.as_deref() == Some("2001")
    });
    assert!(
        logged_in.is_some(),
        "hot-desk login over TLS:\n{}",
        phone.log()
    );
    wait_until(Duration::from_secs(10), || live_calls(&node).is_empty());

    // A queue call rings the agent on that phone over its TLS connection, and it answers.
    db.add_queue(&queue("sales", "ringall"));
    db.add_member(&member("sales", "1001", 0, 0));
    db.wait_reloaded(&node);
    let since = callfleet::now_ms();
    let mut uac = Uac::new("127.0.71.11", node.sip);
    let ok = uac
        .answered("sales", "tls-queue-1", Duration::from_secs(5))
        .expect("the node answers the queue call");
    let answered = wait_until(Duration::from_secs(15), || {
        db.events(since)
            .iter()
            .any(|e| e.call_id == "tls-queue-1" && e.event == QueueEventKind::Answer)
    });
    assert!(
        answered.is_some() && phone.calls_with("caller") == 1,
        "the agent's TLS phone was rung and answered:\n{}",
        phone.log()
    );
    uac.in_dialog("BYE", "tls-queue-1", &ok, None);
    let idle = wait_until(Duration::from_secs(10), || live_calls(&node).is_empty());
    assert!(idle.is_some(), "the queue call ended");

    // A call that stays up (music on hold) while the TLS port is attacked.
    phone.dial("sip:500@127.0.71.3:5061;transport=tls");
    let up = wait_until(Duration::from_secs(10), || {
        phone.calls_with("500") == 1 && live_calls(&node).len() == 1
    });
    assert!(up.is_some(), "call over TLS:\n{}", phone.log());
    let malformed_before = node.metric("callfleet_sip_malformed_total");
    let ended_before = phone.log().matches("terminated").count();

    // Plain SIP on the TLS port: no answer, the connection closed.
    let plain = plain_exchange(
        tls,
        b"OPTIONS sip:500@127.0.71.3 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKx\r\n\
          From: <sip:a@b>;tag=1\r\nTo: <sip:500@127.0.71.3>\r\nCall-ID: plain-on-tls\r\n\
          CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(
        !String::from_utf8_lossy(&plain).contains("SIP/2.0"),
        "answered in clear"
    );
    // A handshake record holding garbage, and a connection that never says anything.
    let garbage = plain_exchange(
        tls,
        b"\x16\x03\x01\x00\x20\x01\x00\x00\x1cnot a hello at all........",
    );
    assert!(!String::from_utf8_lossy(&garbage).contains("SIP/2.0"));
    let mut silent = TcpStream::connect(tls).expect("connect");
    silent
        .set_read_timeout(Some(Duration::from_secs(12)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    assert!(
        matches!(silent.read(&mut buf), Ok(0)),
        "a silent connection is closed by the node (sip.tcp_message_timeout)"
    );
    let counted = wait_until(Duration::from_secs(5), || {
        node.metric("callfleet_sip_malformed_total") >= malformed_before + 3.0
    });
    assert!(counted.is_some(), "the refused connections are counted");

    // Over TLS every check of plain SIP applies: a malformed request gets 400, an INVITE
    // from an address outside the carriers' allowlist 403, on their TLS connections.
    let bad = sips_exchange(
        &ca.pem,
        "127.0.71.50",
        tls,
        b"OPTIONS sip:500@127.0.71.3 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.71.50:5061;branch=z9hG4bKb\r\n\
          From: <sip:a@b>;tag=1\r\nTo: <sip:500@127.0.71.3>\r\nCall-ID: bad-over-tls\r\n\
          CSeq: 1 OPTIONS\r\nX-Bare: a\nb\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(bad.starts_with("SIP/2.0 400 "), "{bad}");
    let invite = sips_exchange(
        &ca.pem,
        "127.0.71.50",
        tls,
        b"INVITE sip:500@127.0.71.3 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.71.50:5061;branch=z9hG4bKi\r\n\
          Max-Forwards: 70\r\nFrom: <sip:carrier@127.0.71.50>;tag=9\r\nTo: <sip:500@127.0.71.3>\r\n\
          Call-ID: forbidden-over-tls\r\nCSeq: 1 INVITE\r\nContact: <sip:carrier@127.0.71.50;transport=tls>\r\n\
          Content-Length: 0\r\n\r\n",
    );
    assert!(invite.contains("SIP/2.0 403 "), "{invite}");

    // The call is untouched, and the node still takes the phone's requests over TLS.
    assert_eq!(live_calls(&node).len(), 1, "the call is still up");
    assert_eq!(
        phone.log().matches("terminated").count(),
        ended_before,
        "the phone's call went on:\n{}",
        phone.log()
    );
    let r = phone.command("hangup", "");
    assert_eq!(r["ok"], true, "hangup: {r}");
    let ended = wait_until(Duration::from_secs(10), || live_calls(&node).is_empty());
    assert!(ended.is_some(), "the phone's BYE over TLS ends the call");
    phone.dial("sip:*12@127.0.71.3:5061;transport=tls");
    let logged_out = wait_until(Duration::from_secs(15), || {
        db.agent("1001").device.is_none()
    });
    assert!(
        logged_out.is_some(),
        "hot-desk logout over TLS:\n{}",
        phone.log()
    );
    assert!(!node.log_text().contains("panicked"), "{}", node.log_text());
}

/// A node on `pg` serving HTTPS with a certificate of `ca`, trusting `trust` for other nodes.
fn cluster_node(dir: &Path, pg: &Pg, ca: &TestCa, trust: &Path, name: &str, ip: &str) -> NodeProc {
    let mut node = NodeProc::configure(
        dir,
        NodeSpec {
            name,
            role: "main",
            ip,
            db: &pg.url,
            capacity: 10,
            extra: "",
        },
    );
    enable_https(&mut node, ca, trust);
    node.spawn();
    node
}

#[test]
fn listen_in_is_forwarded_between_nodes_over_https_and_only_to_a_trusted_certificate() {
    let _serial = serial();
    let dir = workdir("tls-listen");
    let pg = Pg::fresh("tls_listen");
    let ca = TestCa::new(&dir, "cluster");
    let other = TestCa::new(&dir, "other");
    // A holds the call; B trusts the cluster's CA; C trusts only another CA.
    let a = cluster_node(&dir, &pg, &ca, &ca.pem, "tls-la", "127.0.71.21");
    let b = cluster_node(&dir, &pg, &ca, &ca.pem, "tls-lb", "127.0.71.22");
    let c = cluster_node(&dir, &pg, &ca, &other.pem, "tls-lc", "127.0.71.23");
    wait_alive(&c, 3);
    let db = Db::connect(&pg.url);
    device_add(&a, "2001", "pw-agent-long-enough", false);
    device_add(&a, "2901", "pw-sup-long-enough", false);
    let agent = Phone::start(&dir, "127.0.71.30", "2001", "pw-agent-long-enough", &a);
    let supervisor =
        Phone::start_with_ctrl(&dir, "127.0.71.31", "2901", "pw-sup-long-enough", &b, 4444);
    for (device, phone) in [("2001", &agent), ("2901", &supervisor)] {
        let ok = wait_until(Duration::from_secs(15), || db.registered(device));
        assert!(ok.is_some(), "{device} did not register:\n{}", phone.log());
    }
    db.add_agent("1001", "1234");
    db.login("1001", "2001");
    db.add_queue(&queue("sales", "ringall"));
    db.add_member(&member("sales", "1001", 0, 0));
    db.wait_reloaded(&a);
    db.wait_reloaded(&b);
    let since = callfleet::now_ms();

    let mut uac = Uac::new("127.0.71.40", a.sip);
    let ok = uac
        .answered("sales", "tls-listen-1", Duration::from_secs(5))
        .expect("node A answers the queue call");
    let to = Uac::media_addr(&ok);
    let talk = std::thread::spawn(move || {
        let heard = uac.talk(to, 1000.0, Duration::from_secs(12));
        (uac, heard)
    });
    let answered = wait_until(Duration::from_secs(10), || {
        db.events(since)
            .iter()
            .any(|e| e.call_id == "tls-listen-1" && e.event == QueueEventKind::Answer)
    });
    assert!(
        answered.is_some(),
        "the agent did not answer (logs in {})",
        dir.display()
    );

    let body = r#"{"device":"2901","mode":"listen"}"#;
    let path = "/api/v1/calls/tls-listen-1/listen";
    // Through C: A's certificate is not signed by a CA C trusts, so C never sends the request.
    let (status, reply) = c.post_json(path, body);
    assert_eq!(status, 503, "{reply}");
    assert!(
        c.log_text().contains("certificate") || reply.contains("certificate"),
        "the refusal names the certificate: {reply}\n{}",
        c.log_text()
    );
    // Through B, over HTTPS to A, which dials the supervisor.
    let (status, reply) = b.post_json(path, body);
    assert_eq!(status, 202, "listen through B over HTTPS: {reply}");
    let joined = wait_until(Duration::from_secs(8), || {
        supervisor.calls_with("caller") == 1
    });
    assert!(
        joined.is_some(),
        "the supervisor's phone took the call:\n{}",
        supervisor.log()
    );
    let listens = || -> Vec<_> {
        db.events(since)
            .into_iter()
            .filter(|e| e.call_id == "tls-listen-1" && e.event == QueueEventKind::Listen)
            .collect()
    };
    wait_until(Duration::from_secs(5), || !listens().is_empty());
    let listens = listens();
    assert_eq!(
        listens.len(),
        1,
        "one listener (B's), none from C: {listens:?}"
    );
    assert_eq!(listens[0].node, "tls-la");
    let (mut uac, _) = talk.join().expect("caller thread");
    uac.in_dialog("BYE", "tls-listen-1", &ok, None);
    drop((agent, supervisor));
}
