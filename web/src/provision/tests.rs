//! Provisioning: the pure rules as tables, then the route over an in-memory database as a
//! phone and an attacker would use it.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use base64::Engine as _;
use callfleet_store::{Device, Store};
use tower::ServiceExt;

use super::rules::*;
use super::*;
use crate::api::NodeApi;
use crate::error::ApiError;
use crate::metrics::Metrics;

fn mac(s: &str) -> Mac {
    Mac::parse(s).expect("a MAC")
}

#[test]
fn file_names_say_family_and_mac() {
    let y = Some(Family::Yealink);
    let g = Some(Family::Grandstream);
    let cases: [(&str, Option<Family>, &str); 14] = [
        ("001565aabbcc.cfg", y, "001565aabbcc"),
        ("001565AABBCC.cfg", y, "001565aabbcc"),
        ("cfg000b82123456.xml", g, "000b82123456"),
        ("cfg000B82123456.xml", g, "000b82123456"),
        ("y000000000000.cfg", None, ""),
        ("001565aabbc.cfg", None, ""),
        ("001565aabbccd.cfg", None, ""),
        ("00:15:65:aa:bb:cc.cfg", None, ""),
        ("001565aabbcg.cfg", None, ""),
        ("001565aabbcc.xml", None, ""),
        ("cfg001565aabbcc", None, ""),
        ("../001565aabbcc.cfg", None, ""),
        ("", None, ""),
        ("+01565aabbcc.cfg", None, ""),
    ];
    for (name, family, want_mac) in cases {
        let got = phone_file(name);
        assert_eq!(got.as_ref().map(|(f, _)| *f), family, "{name:?}");
        if let Some((_, m)) = got {
            assert_eq!(m.as_str(), want_mac, "{name:?}");
        }
    }
}

fn basic(user: &str, password: &str) -> String {
    let raw = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[test]
fn credentials_are_a_phone_s_or_a_token() {
    let m = mac("001565aabbcc");
    let cases: [(Option<String>, Presented); 8] = [
        (None, Presented::Nothing),
        (Some("Bearer x".into()), Presented::Nothing),
        (Some("Basic !!!".into()), Presented::Nothing),
        (Some(basic("001565aabbcc", "")), Presented::Nothing),
        (
            Some(basic("001565aabbcc", "pw")),
            Presented::Phone("pw".into()),
        ),
        (
            Some(basic("001565AABBCC", "pw")),
            Presented::Phone("pw".into()),
        ),
        (
            Some(basic("anything", "cfp_1")),
            Presented::Token("cfp_1".into()),
        ),
        (
            Some(basic("001565aabbcd", "pw")),
            Presented::Token("pw".into()),
        ),
    ];
    for (header, want) in cases {
        assert_eq!(presented(header.as_deref(), &m), want, "{header:?}");
    }
}

#[test]
fn a_token_only_creates_and_a_phone_password_only_opens_its_own_file() {
    let phone = |p: &str| Presented::Phone(p.into());
    let token = |t: &str| Presented::Token(t.into());
    let known = |own: Option<&str>, tok: Option<&str>| Known {
        phone_password: own.map(Into::into),
        token: tok.map(Into::into),
    };
    let refuse = Decision::Refuse;
    let create = Decision::Create {
        token: "office".into(),
    };
    let cases = [
        (
            Presented::Nothing,
            known(None, None),
            refuse(Refusal::NoCredentials),
        ),
        (phone("pw"), known(Some("pw"), None), Decision::Serve),
        (
            phone("px"),
            known(Some("pw"), None),
            refuse(Refusal::BadCredentials),
        ),
        (
            phone("pw"),
            known(None, None),
            refuse(Refusal::BadCredentials),
        ),
        (
            phone("p"),
            known(Some("pw"), None),
            refuse(Refusal::BadCredentials),
        ),
        (
            token("t"),
            known(None, None),
            refuse(Refusal::BadCredentials),
        ),
        (
            token("t"),
            known(Some("pw"), None),
            refuse(Refusal::BadCredentials),
        ),
        (token("t"), known(None, Some("office")), create),
        (
            token("t"),
            known(Some("pw"), Some("office")),
            refuse(Refusal::AlreadyProvisioned),
        ),
    ];
    for (i, (p, k, want)) in cases.into_iter().enumerate() {
        assert_eq!(decide(&p, &k), want, "case {i}");
    }
    let statuses = [
        (Refusal::NotAPhoneFile, 404),
        (Refusal::NoCredentials, 401),
        (Refusal::BadCredentials, 401),
        (Refusal::AlreadyProvisioned, 403),
        (Refusal::TooMany, 429),
        (Refusal::RangeFull, 503),
        (Refusal::BadHost, 400),
    ];
    for (r, status) in statuses {
        assert_eq!(r.status(), status, "{r:?}");
    }
}

#[test]
fn extension_ranges_and_the_lowest_free_one() {
    let r = |a, b| Some(ExtensionRange { first: a, last: b });
    let cases = [
        ("7000-7999", r(7000, 7999)),
        (" 100 - 100 ", r(100, 100)),
        ("7999-7000", None),
        ("7000", None),
        ("a-b", None),
        ("-1-5", None),
        ("0-100000", None),
        ("0-99999", r(0, 99_999)),
    ];
    for (s, want) in cases {
        assert_eq!(ExtensionRange::parse(s), want, "{s:?}");
    }
    let range = ExtensionRange {
        first: 7000,
        last: 7002,
    };
    let taken = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(free_extension(range, &taken(&[])).as_deref(), Some("7000"));
    assert_eq!(
        free_extension(range, &taken(&["7000", "7002", "1001"])).as_deref(),
        Some("7001")
    );
    assert_eq!(
        free_extension(range, &taken(&["7000", "7001", "7002"])),
        None
    );
}

#[test]
fn registrars_are_the_live_mains_rotated_by_mac() {
    let a: SocketAddr = "127.0.56.1:5060".parse().unwrap();
    let b: SocketAddr = "127.0.56.2:5060".parse().unwrap();
    let c: SocketAddr = "127.0.56.3:5060".parse().unwrap();
    let any: SocketAddr = "0.0.0.0:5060".parse().unwrap();
    let mains = [c, a, any, b, a];
    // MAC value modulo 3 picks the first of the sorted list [a, b, c].
    let cases = [
        ("000000000000", vec![a, b]),
        ("000000000001", vec![b, c]),
        ("000000000002", vec![c, a]),
        ("000000000003", vec![a, b]),
    ];
    for (m, want) in cases {
        assert_eq!(registrars(&mac(m), &mains, 2), want, "{m}");
    }
    assert_eq!(registrars(&mac("000000000001"), &[any], 2), vec![]);
    assert_eq!(registrars(&mac("000000000001"), &[b], 2), vec![b]);
}

#[test]
fn base_urls_come_from_a_plain_host() {
    let cases = [
        (
            Some("127.0.56.1:8080"),
            false,
            Some("http://127.0.56.1:8080/provision/"),
        ),
        (
            Some("pbx.example.com"),
            true,
            Some("https://pbx.example.com/provision/"),
        ),
        (
            Some("[::1]:8443"),
            true,
            Some("https://[::1]:8443/provision/"),
        ),
        (Some("evil.com/x?"), false, None),
        (Some("a b"), false, None),
        (Some(""), false, None),
        (None, false, None),
    ];
    for (host, tls, want) in cases {
        assert_eq!(base_url(host, tls).as_deref(), want, "{host:?}");
    }
}

#[test]
fn the_gate_counts_per_source_per_hour_and_logs_once_per_interval() {
    let x: IpAddr = "127.0.56.7".parse().unwrap();
    let y: IpAddr = "127.0.56.8".parse().unwrap();
    let mut gate = Gate::new(2, 600_000);
    // (source, at ms, admitted)
    let admits = [
        (x, 0, true),
        (x, 10, true),
        (x, 20, false),
        (y, 20, true),
        (x, 3_599_999, false),
        (x, 3_600_000, true),
    ];
    for (src, at, want) in admits {
        assert_eq!(gate.admit(src, at), want, "{src} at {at}");
    }
    gate.undo(x);
    assert!(gate.admit(x, 3_600_001));
    // (source, at ms, logged)
    let logs = [
        (x, 0, true),
        (x, 599_999, false),
        (y, 1, true),
        (x, 600_000, true),
        (x, 600_001, false),
    ];
    for (src, at, want) in logs {
        assert_eq!(gate.should_log(src, at), want, "{src} at {at}");
    }
}

#[test]
fn many_sources_keep_the_gate_bounded() {
    let mut gate = Gate::new(1, 600_000);
    for i in 0..5_000u32 {
        let ip = IpAddr::from(i.to_be_bytes());
        gate.admit(ip, 0);
        gate.should_log(ip, 0);
    }
    // A new source while the table is full of current ones is refused, then admitted later.
    let late: IpAddr = "10.0.0.1".parse().unwrap();
    assert!(!gate.admit(late, 1));
    assert!(!gate.should_log(late, 1));
    assert!(gate.admit(late, 3_600_000));
    assert!(gate.should_log(late, 600_000));
}

#[test]
fn passwords_depend_on_secret_mac_and_salt() {
    let p = Provisioning::new(Some("s".repeat(40).as_str()), Policy::default());
    let m = mac("001565aabbcc");
    let (sip, own) = p.passwords(&m, "salt").unwrap();
    assert_eq!((sip.len(), own.len()), (24, 32));
    assert_ne!(sip, own[..24]);
    assert_eq!(p.passwords(&m, "salt"), Some((sip.clone(), own.clone())));
    assert_ne!(p.passwords(&m, "salt2").unwrap().0, sip);
    assert_ne!(p.passwords(&mac("001565aabbcd"), "salt").unwrap().0, sip);
    let other = Provisioning::new(Some("t".repeat(40).as_str()), Policy::default());
    assert_ne!(other.passwords(&m, "salt").unwrap().0, sip);
    assert_eq!(
        Provisioning::new(None, Policy::default()).passwords(&m, "salt"),
        None
    );
    assert_eq!(
        Provisioning::new(Some(" "), Policy::default()).passwords(&m, "salt"),
        None
    );
    assert!(!format!("{p:?}").contains("ssss"));
}

fn file() -> PhoneFile {
    PhoneFile {
        mac: mac("001565aabbcc"),
        extension: "7000".into(),
        sip_password: "sippw".into(),
        registrars: vec![
            "127.0.56.1:5060".parse().unwrap(),
            "127.0.56.2:5070".parse().unwrap(),
        ],
        base_url: "https://pbx.example.com/provision/".into(),
        phone_password: "ownpw".into(),
    }
}

#[test]
fn yealink_file_carries_account_servers_codecs_and_its_own_credentials() {
    let text = render(Family::Yealink, &file()).unwrap();
    for line in [
        "#!version:1.0.0.1",
        "account.1.user_name = 7000",
        "account.1.auth_name = 7000",
        "account.1.password = sippw",
        "account.1.sip_server.1.address = 127.0.56.1",
        "account.1.sip_server.1.port = 5060",
        "account.1.sip_server.2.address = 127.0.56.2",
        "account.1.sip_server.2.port = 5070",
        "account.1.codec.pcmu.enable = 1",
        "account.1.codec.pcma.enable = 1",
        "account.1.codec.g722.enable = 0",
        "account.1.dtmf.type = 1",
        "static.auto_provision.server.url = https://pbx.example.com/provision/",
        "static.auto_provision.server.username = 001565aabbcc",
        "static.auto_provision.server.password = ownpw",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} missing:\n{text}");
    }
    assert!(text.starts_with("#!version"), "{text}");
}

#[test]
fn grandstream_file_carries_the_same_in_p_values() {
    let text = render(Family::Grandstream, &file()).unwrap();
    for element in [
        "<mac>001565aabbcc</mac>",
        "<P35>7000</P35>",
        "<P36>7000</P36>",
        "<P34>sippw</P34>",
        "<P47>127.0.56.1:5060</P47>",
        "<P2312>127.0.56.2:5070</P2312>",
        "<P57>0</P57>",
        "<P58>8</P58>",
        "<P212>2</P212>",
        "<P237>pbx.example.com/provision</P237>",
        "<P1360>001565aabbcc</P1360>",
        "<P1361>ownpw</P1361>",
    ] {
        assert!(text.contains(element), "{element} missing:\n{text}");
    }
    assert!(text.starts_with("<?xml"), "{text}");
}

/// A node whose live mains are two fixed addresses and that makes devices without digests.
struct Mains;

impl NodeApi for Mains {
    crate::testing::no_node_basics!();
    fn registrars(&self) -> Vec<SocketAddr> {
        vec![
            "127.0.56.1:5060".parse().unwrap(),
            "127.0.56.2:5060".parse().unwrap(),
        ]
    }
    fn device_credentials(&self, ext: &str, name: &str, pw: &str) -> Result<Device, ApiError> {
        Ok(Device {
            extension: ext.into(),
            ha1_md5: format!("md5({pw})"),
            ha1_sha256: String::new(),
            realm: "callfleet".into(),
            display_name: name.into(),
            created_at_ms: 0,
        })
    }
}

const SECRET: &str = "0123456789abcdef0123456789abcdef";

async fn app(per_hour: u32, last: u32) -> (axum::Router, Store) {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let policy = Policy {
        extensions: ExtensionRange { first: 7000, last },
        new_per_source_per_hour: per_hour,
    };
    let state = AppState::new(
        Arc::new(Mains),
        Metrics::new(),
        Some(SECRET.into()),
        store.clone(),
    )
    .with_provisioning(policy);
    (crate::api::router(state), store)
}

async fn get(
    app: &axum::Router,
    path: &str,
    auth: Option<String>,
    from: &str,
) -> (StatusCode, String) {
    let mut req = Request::get(path).header(header::HOST, "127.0.56.1:8080");
    if let Some(a) = auth {
        req = req.header(header::AUTHORIZATION, a);
    }
    let mut req = req.body(Body::empty()).unwrap();
    let peer: SocketAddr = format!("{from}:40000").parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(peer));
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    if status == StatusCode::UNAUTHORIZED {
        assert_eq!(
            res.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            "Basic realm=\"callfleet provisioning\""
        );
    }
    let body = to_bytes(res.into_body(), 1 << 20).await.unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn value(text: &str, key: &str) -> String {
    let prefix = format!("{key} = ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{key} missing in:\n{text}"))
        .to_owned()
}

async fn add_token(store: &Store) -> String {
    let token = new_token();
    store
        .add_provisioning_token(&callfleet_store::ProvisioningToken {
            name: "office".into(),
            token_hash: token_hash(&token),
            created_at_ms: 1,
        })
        .await
        .unwrap();
    token
}

#[tokio::test]
async fn a_token_creates_a_phone_once_and_its_own_password_fetches_it_again() {
    let (app, store) = app(20, 7999).await;
    let token = add_token(&store).await;
    let from = "127.0.56.9";
    let path = "/provision/001565AABBCC.cfg";
    let (status, first) = get(&app, path, Some(basic("provision", &token)), from).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(value(&first, "account.1.user_name"), "7000");
    assert_eq!(
        value(&first, "account.1.sip_server.1.address"),
        "127.0.56.1"
    );
    assert_eq!(
        value(&first, "account.1.sip_server.2.address"),
        "127.0.56.2"
    );
    assert_eq!(
        value(&first, "static.auto_provision.server.url"),
        "http://127.0.56.1:8080/provision/"
    );
    let sip_password = value(&first, "account.1.password");
    let device = store.device("7000").await.unwrap().unwrap();
    assert_eq!(device.ha1_md5, format!("md5({sip_password})"));
    let phone = store
        .provisioned_phone("001565aabbcc")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (phone.family.as_str(), phone.token_name.as_str()),
        ("yealink", "office")
    );
    assert!(
        !first.contains(&phone.salt),
        "the salt stays in the database"
    );

    // Later fetches: the MAC and the phone's own password, the same file every time.
    let user = value(&first, "static.auto_provision.server.username");
    let own = value(&first, "static.auto_provision.server.password");
    assert_eq!(user, "001565aabbcc");
    let (status, again) = get(&app, path, Some(basic(&user, &own)), from).await;
    assert_eq!((status, again.as_str()), (StatusCode::OK, first.as_str()));
    // The token does not open it again, and a second phone gets the next extension.
    let (status, _) = get(&app, path, Some(basic("provision", &token)), from).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, second) = get(
        &app,
        "/provision/cfg000b82000001.xml",
        Some(basic("x", &token)),
        from,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert!(second.contains("<P35>7001</P35>"), "{second}");
    assert_eq!(store.devices().await.unwrap().len(), 2);
}

#[tokio::test]
async fn without_the_credentials_nothing_is_served_or_created() {
    let (app, store) = app(20, 7999).await;
    let token = add_token(&store).await;
    let from = "127.0.56.10";
    let (status, first) = get(
        &app,
        "/provision/001565aabbcc.cfg",
        Some(basic("p", &token)),
        from,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let own = value(&first, "static.auto_provision.server.password");
    let cases: [(&str, Option<String>, StatusCode); 11] = [
        (
            "/provision/001565aabbcc.cfg",
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "/provision/001565aabbcc.cfg",
            Some(basic("001565aabbcc", "guess")),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "/provision/001565aabbcc.cfg",
            Some(basic("x", "cfp_guess")),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "/provision/001565aabbcc.cfg",
            Some("Digest username=\"x\"".into()),
            StatusCode::UNAUTHORIZED,
        ),
        // Another phone's MAC with this phone's password.
        (
            "/provision/001565aabbcd.cfg",
            Some(basic("001565aabbcd", &own)),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "/provision/cfg001565aabbcc.xml",
            Some(basic("001565aabbcc", "x")),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "/provision/y000000000000.cfg",
            Some(basic("x", &token)),
            StatusCode::NOT_FOUND,
        ),
        (
            "/provision/001565aabbcc.cfg.bak",
            Some(basic("x", &token)),
            StatusCode::NOT_FOUND,
        ),
        (
            "/provision/..%2F001565aabbcc.cfg",
            Some(basic("x", &token)),
            StatusCode::NOT_FOUND,
        ),
        ("/provision/%00.cfg", None, StatusCode::NOT_FOUND),
        ("/provision/%FF%FE.cfg", None, StatusCode::NOT_FOUND),
    ];
    for (path, auth, want) in cases {
        let (status, _) = get(&app, path, auth.clone(), from).await;
        assert_eq!(status, want, "{path} {auth:?}");
    }
    assert_eq!(store.devices().await.unwrap().len(), 1);
    assert_eq!(store.provisioned_phones().await.unwrap().len(), 1);
}

#[tokio::test]
async fn new_phones_are_bounded_per_source_and_by_the_range() {
    let (app, store) = app(2, 7002).await;
    let token = add_token(&store).await;
    let auth = Some(basic("p", &token));
    // (MAC, source, status)
    let cases = [
        ("000000000001", "127.0.56.20", StatusCode::OK),
        ("000000000002", "127.0.56.20", StatusCode::OK),
        ("000000000003", "127.0.56.20", StatusCode::TOO_MANY_REQUESTS),
        ("000000000003", "127.0.56.21", StatusCode::OK),
        (
            "000000000004",
            "127.0.56.21",
            StatusCode::SERVICE_UNAVAILABLE,
        ),
    ];
    for (m, from, want) in cases {
        let (status, body) = get(&app, &format!("/provision/{m}.cfg"), auth.clone(), from).await;
        assert_eq!(status, want, "{m} from {from}: {body}");
    }
    let exts: Vec<String> = store
        .devices()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.extension)
        .collect();
    assert_eq!(exts, ["7000", "7001", "7002"]);
}

#[tokio::test]
async fn without_a_cluster_secret_there_is_no_provisioning() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let token = add_token(&store).await;
    let state = AppState::new(Arc::new(Mains), Metrics::new(), None, store.clone());
    let app = crate::api::router(state);
    let (status, _) = get(
        &app,
        "/provision/001565aabbcc.cfg",
        Some(basic("p", &token)),
        "127.0.56.30",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(store.devices().await.unwrap().is_empty());
}
