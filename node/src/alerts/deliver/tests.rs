//! What a notification says: the JSON, the signature, the e-mail's subject and body, the
//! filter by severity and the backoff between attempts.

use std::time::Duration;

use callfleet_store::{AlertKind, Severity};

use super::email::{body, subject};
use super::{backoff, signature, Batch, Notice, Status};
use crate::alerts::engine::{Change, Key, Transition};

fn transition(change: Change, kind: AlertKind, subject: &str, severity: Severity) -> Transition {
    Transition {
        change,
        key: Key::new(kind, subject),
        node: Some(subject.to_owned()),
        severity,
        message: format!("node {subject} stopped heartbeating"),
        since_ms: 1_717_401_600_000, // 2024-06-03T08:00:00Z
    }
}

fn down(change: Change, node: &str) -> Notice {
    Notice::from_transition(
        &transition(change, AlertKind::NodeDown, node, Severity::Critical),
        1_717_401_660_000,
    )
}

#[test]
fn the_signature_is_hmac_sha256_of_the_body() {
    // RFC 4231, test case 2.
    assert_eq!(
        signature(b"Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn the_json_names_the_alert_and_its_node() {
    let batch = Batch::new(
        "main-a",
        1_717_401_660_000,
        vec![down(Change::Raised, "main-b")],
    );
    let json: serde_json::Value =
        serde_json::from_slice(&serde_json::to_vec(&batch).expect("encodes")).expect("json");
    assert_eq!(
        json,
        serde_json::json!({
            "source": "callfleet",
            "sent_by": "main-a",
            "sent_at_ms": 1_717_401_660_000i64,
            "alerts": [{
                "status": "firing",
                "change": "raised",
                "kind": "node_down",
                "subject": "main-b",
                "node": "main-b",
                "severity": "critical",
                "message": "node main-b stopped heartbeating",
                "since_ms": 1_717_401_600_000i64,
                "ended_at_ms": null,
            }],
        })
    );
    let resolved = down(Change::Resolved, "main-b");
    assert_eq!(resolved.status, Status::Resolved);
    assert_eq!(resolved.ended_at_ms, Some(1_717_401_660_000));
}

#[test]
fn subjects_and_bodies() {
    let one = Batch::new("main-a", 1_717_401_660_000, vec![down(Change::Raised, "b")]);
    assert_eq!(
        subject(&one),
        "[callfleet] CRITICAL: node b stopped heartbeating"
    );
    let text = body(&one);
    assert!(
        text.contains("CRITICAL: node b stopped heartbeating\n"),
        "{text}"
    );
    assert!(text.contains("kind node_down, subject b\n"), "{text}");
    assert!(text.contains("since 2024-06-03T08:00:00Z\n"), "{text}");
    assert!(
        text.contains("Sent by node main-a at 2024-06-03T08:01:00Z."),
        "{text}"
    );

    let back = Batch::new(
        "main-a",
        1_717_401_660_000,
        vec![down(Change::Resolved, "b")],
    );
    assert_eq!(
        subject(&back),
        "[callfleet] RESOLVED: node b stopped heartbeating"
    );
    assert!(body(&back).contains("resolved 2024-06-03T08:01:00Z"));

    let reminder = Batch::new("main-a", 0, vec![down(Change::Reminder, "b")]);
    assert_eq!(
        subject(&reminder),
        "[callfleet] CRITICAL (still firing): node b stopped heartbeating"
    );

    let mixed = Batch::new(
        "main-a",
        0,
        vec![
            down(Change::Raised, "b"),
            down(Change::Raised, "c"),
            down(Change::Resolved, "d"),
        ],
    );
    assert_eq!(
        subject(&mixed),
        "[callfleet] 2 firing, 1 resolved: node b stopped heartbeating"
    );
}

#[test]
fn channels_get_only_what_is_severe_enough() {
    let disk = Notice::from_transition(
        &transition(
            Change::Raised,
            AlertKind::DiskFull,
            "a /srv",
            Severity::Warning,
        ),
        0,
    );
    let batch = Batch::new("a", 0, vec![disk.clone(), down(Change::Raised, "b")]);
    assert_eq!(batch.at_least(Severity::Warning), Some(batch.clone()));
    let critical = batch.at_least(Severity::Critical).expect("one critical");
    assert_eq!(critical.alerts.len(), 1);
    assert_eq!(critical.alerts[0].kind, AlertKind::NodeDown);
    let warnings_only = Batch::new("a", 0, vec![disk]);
    assert_eq!(warnings_only.at_least(Severity::Critical), None);
}

#[test]
fn backoff_doubles_up_to_thirty_seconds() {
    let got: Vec<u64> = (1..=8).map(|a| backoff(a).as_secs()).collect();
    assert_eq!(got, vec![1, 2, 4, 8, 16, 30, 30, 30]);
    assert_eq!(backoff(u32::MAX), Duration::from_secs(30));
}

#[test]
fn the_relay_ca_file_must_hold_a_pem_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = rcgen::KeyPair::generate().expect("key");
    let ca = rcgen::CertificateParams::new(Vec::<String>::new())
        .expect("params")
        .self_signed(&key)
        .expect("self-sign");
    let cases = [
        ("ca.pem", Some(ca.pem()), None),
        ("missing.pem", None, Some("read alerts.email.ca_file")),
        ("empty.pem", Some(String::new()), Some("no PEM certificate")),
        (
            "key.pem",
            Some(key.serialize_pem()),
            Some("no PEM certificate"),
        ),
        (
            "broken.pem",
            Some("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n".into()),
            Some("broken.pem"),
        ),
    ];
    for (name, text, want_err) in cases {
        let path = dir.path().join(name);
        if let Some(text) = text {
            std::fs::write(&path, text).expect("write");
        }
        let got = super::email::load_ca(&path)
            .map(|_| ())
            .map_err(|e| e.to_string());
        match want_err {
            None => assert_eq!(got, Ok(()), "{name}"),
            Some(needle) => assert!(
                got.as_ref().is_err_and(|e| e.contains(needle)),
                "{name}: {got:?}"
            ),
        }
    }
}
