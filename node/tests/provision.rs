//! Phones that configure themselves, with real peers: two main nodes share a database; an admin
//! makes a provisioning token with `callfleet provision token add`; a request as a Yealink phone
//! makes it (Basic credentials, its User-Agent) gets a new device extension and a file naming
//! both main nodes; then baresip registers with the user name and password from that file, and
//! an agent logs in on it with `*11`. Later fetches use the phone's own credentials from the
//! file; a Grandstream phone gets the next extension from the other node; requests without the
//! credentials get 401/404 and make nothing. Nodes on 127.0.56.x.

mod support;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use callfleet_store::{Registration, Store};
use support::phone::Phone;
use support::{wait_until, workdir, NodeProc, NodeSpec};

/// baresip 1.0 only knows MD5; short registrations so it refreshes within the test.
const EXTRA: &str = "[registrar]\nmin_expires = 5\nmax_expires = 10\ndefault_expires = 10\n\
                     algorithms = [\"MD5\"]\n[provisioning]\nextensions = \"7100-7199\"\n";

const YEALINK_UA: &str = "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc";
const GRANDSTREAM_UA: &str = "Grandstream Model HW GXP2170 SW 1.0.11.3 DevId 000b82000001";

fn callfleet(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_callfleet"))
        .args(args)
        .output()
        .expect("run callfleet");
    assert!(
        out.status.success(),
        "callfleet {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn basic(user: &str, password: &str) -> String {
    let raw = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// Where the phones' HTTP requests and baresip come from.
const PHONE_IP: &str = "127.0.56.101";

/// A GET as phones send it (HTTP/1.1, Host, User-Agent, optional Authorization): (status,
/// headers, body). Bounded by a 5 s read timeout.
fn phone_get(
    addr: SocketAddr,
    path: &str,
    agent: &str,
    auth: Option<&str>,
) -> (u16, String, String) {
    // From the phone's own address, as the node logs and counts it.
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("a socket");
    let phone: SocketAddr = format!("{PHONE_IP}:0").parse().expect("phone addr");
    socket
        .bind(&phone.into())
        .expect("bind the phone's address");
    socket
        .connect_timeout(&addr.into(), Duration::from_secs(2))
        .expect("connect");
    let mut s: TcpStream = socket.into();
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: {agent}\r\nAccept: */*\r\n{auth}\
         Connection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut buf = String::new();
    s.read_to_string(&mut buf).expect("read the answer");
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

fn value(text: &str, key: &str) -> String {
    let prefix = format!("{key} = ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{key} missing in:\n{text}"))
        .trim()
        .to_owned()
}

fn element(text: &str, name: &str) -> String {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = text
        .find(&open)
        .unwrap_or_else(|| panic!("<{name}> missing in:\n{text}"))
        + open.len();
    let len = text[start..].find(&close).expect("closed element");
    text[start..start + len].to_owned()
}

fn with_store<T>(db: &str, f: impl AsyncFnOnce(&Store) -> T) -> T {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = Store::connect(db).await.expect("open the test database");
        let out = f(&store).await;
        store.close().await;
        out
    })
}

fn bindings(db: &str, aor: &str) -> Vec<Registration> {
    with_store(db, async |s| {
        s.registrations(aor, callfleet::now_ms())
            .await
            .expect("read registrations")
    })
}

fn device_count(db: &str) -> usize {
    with_store(db, async |s| s.devices().await.expect("devices").len())
}

#[test]
fn a_phone_provisions_itself_and_registers_with_what_it_was_served() {
    let dir = workdir("provision-baresip");
    let db = format!("sqlite://{}", dir.join("cluster.db").display());
    let node = |name, ip| {
        NodeProc::start(
            &dir,
            NodeSpec {
                name,
                role: "main",
                ip,
                db: &db,
                capacity: 10,
                extra: EXTRA,
            },
        )
    };
    let a = node("main-a", "127.0.56.1");
    let b = node("main-b", "127.0.56.2");
    let both = wait_until(Duration::from_secs(10), || {
        [&a, &b]
            .iter()
            .all(|n| n.nodes().as_array().is_some_and(|v| v.len() == 2))
    });
    assert!(
        both.is_some(),
        "the mains do not see each other: {}",
        a.nodes()
    );

    let config = a.config.to_str().expect("utf-8 path");
    let token = callfleet(&[
        "provision",
        "token",
        "add",
        "--config",
        config,
        "--name",
        "office",
    ]);
    let token = token.trim();
    assert!(token.starts_with("cfp_") && token.len() == 68, "{token:?}");

    // An attacker without the token: challenged, refused, nothing made.
    let file = "/provision/001565aabbcc.cfg";
    let attempts: [(&str, Option<String>, u16); 5] = [
        (file, None, 401),
        (file, Some(basic("admin", "cfp_0000")), 401),
        (file, Some(basic("001565aabbcc", "guess")), 401),
        ("/provision/y000000000028.cfg", Some(basic("x", token)), 404),
        (
            "/provision/001565aabbcc.cfg%00",
            Some(basic("x", token)),
            404,
        ),
    ];
    for (path, auth, want) in attempts {
        let (status, head, _) = phone_get(a.http, path, YEALINK_UA, auth.as_deref());
        assert_eq!(status, want, "{path} {auth:?}: {head}");
        if want == 401 {
            let challenge = "www-authenticate: basic realm=\"callfleet provisioning\"";
            assert!(head.to_ascii_lowercase().contains(challenge), "{head}");
        }
    }
    assert_eq!(device_count(&db), 0, "refused requests made a device");
    let refusals = a.log_text().matches("provisioning request refused").count();
    assert_eq!(refusals, 1, "one log line per source:\n{}", a.log_text());

    // The phone's first fetch, with the token its DHCP option 66 URL or installer gave it.
    let (status, head, first) = phone_get(a.http, file, YEALINK_UA, Some(&basic("", token)));
    assert_eq!(status, 200, "{head}\n{}", a.log_text());
    assert!(head.contains("text/plain"), "{head}");
    let ext = value(&first, "account.1.user_name");
    assert_eq!(ext, "7100");
    assert_eq!(value(&first, "account.1.auth_name"), ext);
    let mut servers: Vec<String> = (1..=2)
        .map(|i| {
            let ip = value(&first, &format!("account.1.sip_server.{i}.address"));
            let port = value(&first, &format!("account.1.sip_server.{i}.port"));
            format!("{ip}:{port}")
        })
        .collect();
    let primary: SocketAddr = servers[0].parse().expect("a registrar address");
    servers.sort();
    assert_eq!(
        servers,
        ["127.0.56.1:5060", "127.0.56.2:5060"],
        "every main node"
    );
    assert_eq!(value(&first, "account.1.codec.pcmu.enable"), "1");
    assert_eq!(value(&first, "account.1.codec.pcma.enable"), "1");
    let password = value(&first, "account.1.password");
    let user = value(&first, "static.auto_provision.server.username");
    let own = value(&first, "static.auto_provision.server.password");
    assert_eq!(user, "001565aabbcc");
    assert_eq!(
        value(&first, "static.auto_provision.server.url"),
        "http://127.0.56.1:8080/provision/"
    );

    // Later fetches use the phone's own credentials, at either node; the token opens it no more.
    for n in [&a, &b] {
        let (status, _, again) = phone_get(n.http, file, YEALINK_UA, Some(&basic(&user, &own)));
        assert_eq!(status, 200, "{}", n.name);
        assert_eq!(value(&again, "account.1.password"), password, "{}", n.name);
    }
    let (status, _, _) = phone_get(b.http, file, YEALINK_UA, Some(&basic("x", token)));
    assert_eq!(
        status, 403,
        "a token does not open a provisioned phone's file"
    );

    // A Grandstream phone at the other node gets the next extension.
    let (status, head, xml) = phone_get(
        b.http,
        "/provision/cfg000b82000001.xml",
        GRANDSTREAM_UA,
        Some(&basic("provision", token)),
    );
    assert_eq!(status, 200, "{head}\n{}", b.log_text());
    assert_eq!(element(&xml, "P35"), "7101");
    let mut gs = [element(&xml, "P47"), element(&xml, "P2312")];
    gs.sort();
    assert_eq!(gs, ["127.0.56.1:5060", "127.0.56.2:5060"]);
    assert_eq!(
        (element(&xml, "P57"), element(&xml, "P58")),
        ("0".into(), "8".into())
    );

    let listed = callfleet(&["provision", "list", "--config", config]);
    assert!(
        listed.contains("001565aabbcc\t7100\tyealink\t127.0.56.101\toffice"),
        "{listed}"
    );
    assert!(
        listed.contains("000b82000001\t7101\tgrandstream"),
        "{listed}"
    );

    // baresip registers with the served extension and password at the served primary.
    let phone = Phone::start_with_ctrl_at(&dir, PHONE_IP, &ext, &password, primary, 4056);
    let registered = wait_until(Duration::from_secs(15), || !bindings(&db, &ext).is_empty());
    assert!(
        registered.is_some(),
        "baresip did not register with the served credentials; phone log:\n{}",
        phone.log()
    );
    let b0 = &bindings(&db, &ext)[0];
    assert_eq!(b0.received, "127.0.56.101:5060");
    assert!(b0.user_agent.contains("baresip"), "{}", b0.user_agent);
    // And keeps refreshing (the node grants 10 s).
    let first_expiry = b0.expires_at_ms;
    let refreshed = wait_until(Duration::from_secs(15), || {
        bindings(&db, &ext)
            .first()
            .is_some_and(|r| r.expires_at_ms > first_expiry)
    });
    assert!(
        refreshed.is_some(),
        "no refresh; phone log:\n{}",
        phone.log()
    );

    // The served credentials also authenticate the phone's own calls: an agent logs in on it
    // (until then it is no agent's phone, so no queue call rings it).
    with_store(&db, async |s| {
        let pin = callfleet_store::pin::hash("1001", "1234").expect("hash the PIN");
        let agent = callfleet_store::Agent::new("1001", "Ada", &pin, callfleet::now_ms());
        s.upsert_agent(&agent).await.expect("add agent 1001");
    });
    phone.dial(&format!("sip:*11*1001*1234@{primary}"));
    let logged_in = wait_until(Duration::from_secs(15), || {
        with_store(&db, async |s| s.agent("1001").await.ok().flatten())
            .is_some_and(|a| a.device.as_deref() == Some(ext.as_str()))
    });
    assert!(
        logged_in.is_some(),
        "agent 1001 did not log in on {ext}; phone log:\n{}",
        phone.log()
    );

    // The token revoked: no new phone; provisioned phones keep their own credentials.
    callfleet(&[
        "provision",
        "token",
        "remove",
        "--config",
        config,
        "--name",
        "office",
    ]);
    let (status, _, _) = phone_get(
        a.http,
        "/provision/001565000002.cfg",
        YEALINK_UA,
        Some(&basic("x", token)),
    );
    assert_eq!(status, 401);
    let (status, _, _) = phone_get(a.http, file, YEALINK_UA, Some(&basic(&user, &own)));
    assert_eq!(status, 200);
    assert_eq!(device_count(&db), 2);
}
