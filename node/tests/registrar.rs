//! Phones register with a real node: baresip (a real SIP phone) with the right password
//! registers and keeps refreshing; a wrong password and an unknown extension are refused; and a
//! raw UDP client walks the digest nonce count past 9 on one nonce. Devices are provisioned
//! with `callfleet device add`, as an operator does. Each test runs its own node on 127.0.6.x,
//! except the office burst (thirty phones behind one address registering at once, all
//! served), on 127.0.77.x.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use callfleet::registrar::digest::{ha1, Algorithm};
use callfleet_store::{Registration, Store};
use support::phone::{device_add, Phone};
use support::uac::{header, Resp, Uac};
use support::{wait_until, workdir, NodeProc, NodeSpec};

/// Short registrations so baresip refreshes within seconds (it asks for 60 s; the node grants
/// 10 and baresip refreshes at 90 % of what was granted). baresip 1.0 only knows MD5.
const FAST_MD5: &str =
    "[registrar]\nmin_expires = 5\nmax_expires = 10\ndefault_expires = 10\nalgorithms = [\"MD5\"]\n";

fn node(test: &str, ip: &str, extra: &str) -> (PathBuf, NodeProc, String) {
    let dir = workdir(test);
    let db = format!("sqlite://{}", dir.join("cluster.db").display());
    let n = NodeProc::start(
        &dir,
        NodeSpec {
            name: "reg",
            role: "main",
            ip,
            db: &db,
            capacity: 10,
            extra,
        },
    );
    (dir, n, db)
}

/// `callfleet device add`, the password on the command line or (`None`) on stdin.
/// The live bindings of `aor`, read through the store as the B2BUA will.
fn bindings(db: &str, aor: &str) -> Vec<Registration> {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = Store::connect(db).await.expect("open the test database");
        let now = callfleet::now_ms();
        let rows = store
            .registrations(aor, now)
            .await
            .expect("read registrations");
        store.close().await;
        rows
    })
}

#[test]
fn baresip_registers_and_refreshes() {
    let (dir, n, db) = node("registrar-baresip", "127.0.6.1", FAST_MD5);
    device_add(&n, "1001", "secret", false);
    let phone = Phone::start(&dir, "127.0.6.101", "1001", "secret", &n);

    let registered = wait_until(Duration::from_secs(15), || {
        phone.log().contains("200 OK") && !bindings(&db, "1001").is_empty()
    });
    assert!(
        registered.is_some(),
        "baresip did not register; phone log:\n{}\nnode log:\n{}",
        phone.log(),
        n.log_text()
    );
    let first = bindings(&db, "1001");
    assert_eq!(first.len(), 1, "{first:?}");
    let b = &first[0];
    assert_eq!(b.received, "127.0.6.101:5060", "the source address is kept");
    assert_eq!((b.transport.as_str(), b.node.as_str()), ("udp", "reg"));
    assert!(b.contact.starts_with("sip:1001"), "{}", b.contact);
    assert!(b.user_agent.contains("baresip"), "{}", b.user_agent);
    let left = b.expires_at_ms - callfleet::now_ms();
    assert!(
        (0..=10_000).contains(&left),
        "granted 10 s at most: {left} ms"
    );

    // baresip refreshes before the 10 s run out, on the same nonce with the next nc.
    let refreshed = wait_until(Duration::from_secs(20), || {
        bindings(&db, "1001")
            .first()
            .is_some_and(|r| r.call_id == b.call_id && r.cseq > b.cseq)
    });
    assert!(
        refreshed.is_some(),
        "baresip did not re-register: {:?}\nphone log:\n{}",
        bindings(&db, "1001"),
        phone.log()
    );
    assert!(!phone.log().contains("403"), "{}", phone.log());
}

#[test]
fn wrong_passwords_and_unknown_phones_are_refused() {
    let (dir, n, db) = node("registrar-refused", "127.0.6.2", FAST_MD5);
    device_add(&n, "1001", "secret", true);
    let wrong = Phone::start(&dir, "127.0.6.102", "1001", "not-the-password", &n);
    let unknown = Phone::start(&dir, "127.0.6.103", "1009", "secret", &n);
    let refused = wait_until(Duration::from_secs(15), || {
        wrong.log().contains("403 Forbidden") && unknown.log().contains("403 Forbidden")
    });
    assert!(
        refused.is_some(),
        "both phones should see 403 Forbidden\nwrong password:\n{}\nunknown:\n{}",
        wrong.log(),
        unknown.log()
    );
    assert!(bindings(&db, "1001").is_empty());
    assert!(bindings(&db, "1009").is_empty());
    // The right password (from stdin at `device add`) still works on the same node.
    let right = Phone::start(&dir, "127.0.6.104", "1001", "secret", &n);
    let ok = wait_until(Duration::from_secs(15), || {
        !bindings(&db, "1001").is_empty()
    });
    assert!(ok.is_some(), "phone log:\n{}", right.log());
    assert_eq!(bindings(&db, "1001")[0].received, "127.0.6.104:5060");
}

/// A REGISTER from `uac` for 1001, with `auth` (an Authorization line or "").
fn register(uac: &Uac, cseq: u32, auth: &str) -> Resp {
    send_register(uac, "1001", cseq, auth);
    uac.recv_final(Duration::from_secs(3))
        .unwrap_or_else(|| panic!("no answer to REGISTER CSeq {cseq}"))
}

/// Sends a REGISTER from `uac` for `ext`, with `auth` (an Authorization line or "").
fn send_register(uac: &Uac, ext: &str, cseq: u32, auth: &str) {
    uac.send(&format!(
        "REGISTER sip:{t} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bK-reg-{cseq};rport\r\nMax-Forwards: 70\r\n\
         From: <sip:{ext}@{t}>;tag=raw\r\nTo: <sip:{ext}@{t}>\r\nCall-ID: raw-nc@{l}\r\nCSeq: {cseq} REGISTER\r\n\
         Contact: <sip:{ext}@{l}>\r\nExpires: 120\r\n{auth}Content-Length: 0\r\n\r\n",
        t = uac.target,
        l = uac.local
    ));
}

/// Every value of header `name` in a response.
fn all(resp: &Resp, name: &str) -> Vec<String> {
    resp.text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

fn authorization(uac: &Uac, alg: Algorithm, password: &str, nonce: &str, nc: u32) -> String {
    authorization_as(uac, "1001", alg, password, nonce, nc)
}

fn authorization_as(
    uac: &Uac,
    ext: &str,
    alg: Algorithm,
    password: &str,
    nonce: &str,
    nc: u32,
) -> String {
    let uri = format!("sip:{}", uac.target);
    let h1 = ha1(alg, ext, "callfleet", password);
    let h2 = alg.hash(&format!("REGISTER:{uri}"));
    let nc = format!("{nc:08x}");
    let response = alg.hash(&format!("{h1}:{nonce}:{nc}:c0ffee:auth:{h2}"));
    format!(
        "Authorization: Digest username=\"{ext}\", realm=\"callfleet\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{response}\", algorithm={alg}, qop=auth, nc={nc}, cnonce=\"c0ffee\"\r\n"
    )
}

#[test]
fn nonce_counts_go_past_nine_on_one_nonce() {
    let (_dir, n, db) = node(
        "registrar-nc",
        "127.0.6.3",
        "[registrar]\nalgorithms = [\"SHA-256\", \"MD5\"]\n",
    );
    device_add(&n, "1001", "secret", false);
    let uac = Uac::new("127.0.6.105", n.sip);

    let challenge = register(&uac, 1, "");
    assert_eq!(challenge.status, 401, "{}", challenge.text);
    let offered = all(&challenge, "WWW-Authenticate");
    assert_eq!(offered.len(), 2, "{}", challenge.text);
    assert!(
        offered[0].contains("algorithm=SHA-256"),
        "SHA-256 first: {offered:?}"
    );
    assert!(offered[1].contains("algorithm=MD5"), "{offered:?}");
    assert!(offered.iter().all(|c| c.contains("qop=\"auth\"")));
    let nonce = nonce_of(&offered[0]);

    for nc in 1..=12u32 {
        let auth = authorization(&uac, Algorithm::Sha256, "secret", &nonce, nc);
        let ok = register(&uac, nc + 1, &auth);
        assert_eq!(ok.status, 200, "nc={nc:08x}: {}", ok.text);
        let contact = header(&ok.text, "Contact").expect("the 200 lists the binding");
        assert!(contact.ends_with(";expires=120"), "{contact}");
    }
    let regs = bindings(&db, "1001");
    assert_eq!((regs.len(), regs[0].cseq), (1, 13), "{regs:?}");

    // Replaying nc=0000000c (with a new CSeq) only earns a stale challenge.
    let replay = register(
        &uac,
        14,
        &authorization(&uac, Algorithm::Sha256, "secret", &nonce, 12),
    );
    assert_eq!(replay.status, 401, "{}", replay.text);
    assert!(all(&replay, "WWW-Authenticate")
        .iter()
        .all(|c| c.ends_with("stale=true")));
    // MD5 on the same nonce works too, and a wrong password is a plain 403.
    let md5 = register(
        &uac,
        15,
        &authorization(&uac, Algorithm::Md5, "secret", &nonce, 13),
    );
    assert_eq!(md5.status, 200, "{}", md5.text);
    let wrong = register(
        &uac,
        16,
        &authorization(&uac, Algorithm::Md5, "guess", &nonce, 14),
    );
    assert_eq!(wrong.status, 403, "{}", wrong.text);
    assert!(all(&wrong, "WWW-Authenticate").is_empty());
    assert_eq!(bindings(&db, "1001")[0].cseq, 15);

    // Contact: * with Expires: 0 removes the binding.
    let auth = authorization(&uac, Algorithm::Md5, "secret", &nonce, 15);
    uac.send(&format!(
        "REGISTER sip:{t} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bK-reg-17;rport\r\nMax-Forwards: 70\r\n\
         From: <sip:1001@{t}>;tag=raw\r\nTo: <sip:1001@{t}>\r\nCall-ID: raw-nc@{l}\r\nCSeq: 17 REGISTER\r\n\
         Contact: *\r\nExpires: 0\r\n{auth}Content-Length: 0\r\n\r\n",
        t = uac.target,
        l = uac.local
    ));
    let gone = uac
        .recv_final(Duration::from_secs(3))
        .expect("answer to Contact: *");
    assert_eq!(gone.status, 200, "{}", gone.text);
    assert!(bindings(&db, "1001").is_empty());
}

/// The nonce of a `WWW-Authenticate` value.
fn nonce_of(challenge: &str) -> String {
    challenge
        .split("nonce=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("nonce")
        .to_string()
}

#[test]
fn an_office_behind_one_address_registers_at_once() {
    // Thirty phones, one address (an office behind NAT after a power cut), three times the
    // checks in flight one address is allowed (`max_failures`, 10 by default).
    const PHONES: u32 = 30;
    let (_dir, n, db) = node("registrar-office", "127.0.77.1", "");
    let phones: Vec<(String, Uac)> = (1..=PHONES)
        .map(|i| {
            let ext = (2000 + i).to_string();
            device_add(&n, &ext, "secret", false);
            (ext, Uac::new("127.0.77.2", n.sip))
        })
        .collect();
    let mut nonces = Vec::new();
    for (ext, uac) in &phones {
        send_register(uac, ext, 1, "");
        let challenge = uac
            .recv_final(Duration::from_secs(3))
            .unwrap_or_else(|| panic!("no challenge for {ext}"));
        assert_eq!(challenge.status, 401, "{}", challenge.text);
        nonces.push(nonce_of(&all(&challenge, "WWW-Authenticate")[0]));
    }
    // All the answers go out before any reply is read.
    for ((ext, uac), nonce) in phones.iter().zip(&nonces) {
        let auth = authorization_as(uac, ext, Algorithm::Md5, "secret", nonce, 1);
        send_register(uac, ext, 2, &auth);
    }
    let codes: Vec<(String, u16)> = phones
        .iter()
        .map(|(ext, uac)| {
            let status = uac
                .recv_final(Duration::from_secs(5))
                .map_or(0, |r| r.status);
            (ext.clone(), status)
        })
        .collect();
    assert!(codes.iter().all(|(_, c)| *c == 200), "{codes:?}");
    for (ext, uac) in &phones {
        let regs = bindings(&db, ext);
        assert_eq!(regs.len(), 1, "{ext}: {regs:?}");
        assert_eq!(regs[0].received, uac.local.to_string());
    }
    for series in [
        "callfleet_auth_refused_total{kind=\"register\"}",
        "callfleet_auth_failures_total{kind=\"register\"}",
        "callfleet_auth_busy_total{kind=\"register\",outcome=\"refused\"}",
    ] {
        assert_eq!(n.metric(series), 0.0, "{series}");
    }
}
