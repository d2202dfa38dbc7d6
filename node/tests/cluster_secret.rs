//! The cluster secret at work, attacked from an address of its own (127.0.61.99) as from a
//! host on the nodes' network: a real `callfleet lockd` refuses to read holders, hold keys or
//! release leases without a request signed with the secret (a captured request cannot be
//! replayed, a guessed token changes nothing), and a real node refuses the clear-text secret,
//! wrong and replayed signatures, then turns the address away; meanwhile the lease's holder and
//! the node's own callers carry on. Addresses: 127.0.61.x.

mod support;

use std::time::Duration;

use callfleet_lockd::{ClusterKey, LockClient};
use support::http::{exchange, exchange_from, header};
use support::lockd::Lockd;
use support::{workdir, NodeProc, NodeSpec};

const ATTACKER: &str = "127.0.61.99";
const KEY: &str = "agent:1001";

/// A lock request from the attacker's address: (status, body).
fn lockd_request(lockd: &Lockd, method: &str, body: &str, extra: &str) -> (u16, String) {
    let head =
        format!("{method} /v1/locks/{KEY} HTTP/1.0\r\nContent-Type: application/json{extra}");
    let (status, _, body) = exchange_from(ATTACKER, lockd.listen, &head, body);
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockd_serves_only_requests_signed_with_the_cluster_secret() {
    let dir = workdir("cluster-secret-lockd");
    let lockd = Lockd::start(&dir, "127.0.61.10:7070", "memory");
    let node = LockClient::new([&lockd.url], ClusterKey::new(support::SECRET)).unwrap();
    let lease = node
        .acquire(KEY, "main-a/call-7f3a@10.0.0.5", Duration::from_secs(60))
        .await
        .unwrap()
        .expect("the node takes the agent's lease");
    let token = lease.token();

    // Read the holder (and the live Call-ID in it): an acquire answers 409 with the holder,
    // but only to a signed request.
    let (status, body) = lockd_request(&lockd, "POST", r#"{"owner":"x","ttl_ms":3600000}"#, "");
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains("call-7f3a"), "the holder leaked: {body}");
    // Release it by guessing the token (tokens are ordered, so near the last one seen).
    for guess in token.saturating_sub(2)..=token + 2 {
        let release = format!(r#"{{"owner":"main-a/call-7f3a@10.0.0.5","token":{guess}}}"#);
        let (status, body) = lockd_request(&lockd, "DELETE", &release, "");
        assert_eq!(status, 401, "release with token {guess}: {body}");
    }
    // Hold it for an hour by renewing it.
    let renew =
        format!(r#"{{"owner":"main-a/call-7f3a@10.0.0.5","token":{token},"ttl_ms":3600000}}"#);
    let (status, _) = lockd_request(&lockd, "PUT", &renew, "");
    assert_eq!(status, 401);
    // With a secret of its own, or the secret's example placeholder.
    let forged = callfleet_sign::Signer::new(ClusterKey::new(callfleet_sign::EXAMPLE_SECRET));
    let path = format!("/v1/locks/{KEY}");
    let signature = forged.sign_now("PUT", &path, renew.as_bytes());
    let (status, body) = lockd_request(
        &lockd,
        "PUT",
        &renew,
        &format!("\r\nX-Callfleet-Signature: {signature}"),
    );
    assert_eq!(status, 401, "{body}");
    // Replay a request the node really sent (captured on the wire): a renew of 1 s.
    let captured_body =
        format!(r#"{{"owner":"main-a/call-7f3a@10.0.0.5","token":{token},"ttl_ms":60000}}"#);
    let captured = support::signer().sign_now("PUT", &path, captured_body.as_bytes());
    let (status, _, body) = exchange(
        lockd.listen,
        &format!("PUT {path} HTTP/1.0\r\nContent-Type: application/json\r\nX-Callfleet-Signature: {captured}"),
        &captured_body,
    );
    assert_eq!(status, 200, "the genuine request is served: {body}");
    let (status, body) = lockd_request(
        &lockd,
        "PUT",
        &captured_body,
        &format!("\r\nX-Callfleet-Signature: {captured}"),
    );
    assert_eq!(status, 401, "a replay: {body}");
    assert!(body.contains("already received"), "{body}");
    // By now the attacker's address is turned away without its requests being read.
    let mut turned_away = None;
    for _ in 0..12 {
        let (status, _) = lockd_request(&lockd, "POST", r#"{"owner":"x","ttl_ms":1}"#, "");
        if status == 429 {
            turned_away = Some(());
            break;
        }
        assert_eq!(status, 401);
    }
    assert!(turned_away.is_some(), "the attacker is never turned away");
    let (status, headers, _) = exchange_from(
        ATTACKER,
        lockd.listen,
        "POST /v1/locks/other HTTP/1.0\r\nContent-Type: application/json",
        r#"{"owner":"x","ttl_ms":1}"#,
    );
    assert_eq!(status, 429);
    assert!(header(&headers, "retry-after").is_some());
    let log = std::fs::read_to_string(&lockd.log).unwrap_or_default();
    assert!(log.contains("turning this address away"), "{log}");

    // Nothing of the node's was touched: its lease is still its own, then released by it.
    let other = LockClient::new([&lockd.url], ClusterKey::new(support::SECRET)).unwrap();
    assert_eq!(
        other
            .try_acquire(KEY, "main-b", Duration::from_secs(5))
            .await
            .unwrap(),
        callfleet_lockd::Acquire::Held {
            holder: Some("main-a/call-7f3a@10.0.0.5".into())
        },
        "a node (signed) sees the holder"
    );
    assert!(node.renew(&lease, Duration::from_secs(60)).await.unwrap());
    assert!(node.release(&lease).await.unwrap());
}

fn start_node(dir: &std::path::Path) -> NodeProc {
    NodeProc::start(
        dir,
        NodeSpec {
            name: "secret-a",
            role: "main",
            ip: "127.0.61.1",
            db: &format!("sqlite://{}", dir.join("cluster.db").display()),
            capacity: 10,
            extra: "",
        },
    )
}

#[test]
fn a_node_takes_only_fresh_requests_signed_with_the_cluster_secret() {
    let dir = workdir("cluster-secret-node");
    let node = start_node(&dir);
    let drain = "POST /api/v1/admin/drain HTTP/1.0";
    let listen = "/internal/v1/calls/c1/listen";
    let listen_body = r#"{"device":"2001","mode":"whisper"}"#;
    let attack = |head: &str, body: &str| {
        let (status, _, text) = exchange_from(ATTACKER, node.http, head, body);
        (status, text)
    };

    // The secret itself, sent as earlier versions did: refused, even though it is right.
    let (status, body) = attack(
        &format!("{drain}\r\nX-Callfleet-Secret: {}", support::SECRET),
        "",
    );
    assert_eq!(status, 403, "{body}");
    let (status, _) = attack(
        &format!(
            "POST {listen} HTTP/1.0\r\nContent-Type: application/json\r\nX-Callfleet-Secret: {}",
            support::SECRET
        ),
        listen_body,
    );
    assert_eq!(status, 403);
    // Signed with another secret; signed for another body; no signature.
    let forged =
        callfleet_sign::Signer::new(ClusterKey::new("a guess of thirty-two characters or more"));
    let signature = forged.sign_now("POST", "/api/v1/admin/drain", b"");
    let (status, _) = attack(
        &format!("{drain}\r\nX-Callfleet-Signature: {signature}"),
        "",
    );
    assert_eq!(status, 401);
    let other_body = support::signer().sign_now("POST", listen, br#"{"device":"2001"}"#);
    let (status, _) = attack(
        &format!("POST {listen} HTTP/1.0\r\nContent-Type: application/json\r\nX-Callfleet-Signature: {other_body}"),
        listen_body,
    );
    assert_eq!(status, 401);
    let (status, _) = attack(
        &format!("POST {listen} HTTP/1.0\r\nContent-Type: application/json"),
        listen_body,
    );
    assert_eq!(status, 401);
    // A request another node really sent, captured and sent again.
    let captured = support::signer().sign_now("GET", "/api/v1/nodes", b"");
    let (status, _, _) = exchange(
        node.http,
        &format!("GET /api/v1/nodes HTTP/1.0\r\nX-Callfleet-Signature: {captured}"),
        "",
    );
    assert_eq!(status, 200, "the genuine request is served");
    let (status, body) = attack(
        &format!("GET /api/v1/nodes HTTP/1.0\r\nX-Callfleet-Signature: {captured}"),
        "",
    );
    assert_eq!(status, 401, "a replay: {body}");
    // Past 10 refusals the address is turned away, even with a genuine signature.
    let mut last = 0;
    for _ in 0..10 {
        (last, _) = attack(
            &format!("{drain}\r\nX-Callfleet-Signature: {signature}"),
            "",
        );
        if last == 429 {
            break;
        }
    }
    assert_eq!(last, 429, "the attacker is never turned away");
    let genuine = support::signer().sign_now("GET", "/api/v1/nodes", b"");
    let (status, _) = attack(
        &format!("GET /api/v1/nodes HTTP/1.0\r\nX-Callfleet-Signature: {genuine}"),
        "",
    );
    assert_eq!(status, 429);
    assert!(node.log_text().contains("turning this address away"));

    // The node is untouched and serves its own: not draining, and the CLI (signed with the
    // config's secret, from another address) still drains it.
    let view = node.nodes();
    assert_eq!(view[0]["draining"], false, "{view}");
    let (ok, out, err) = support::cli(&node, &["node", "drain"], "");
    assert!(ok && out.contains("is draining"), "{out}{err}");
}
