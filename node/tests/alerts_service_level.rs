//! A queue's service level below target, end to end: a node on PostgreSQL, an SMTP sink and a
//! webhook receiver of the test's own, callers of our own UAC, an agent on a baresip phone.
//! Two callers wait past the 20 s service-level threshold in a queue nobody serves (its
//! maximum wait is 21 s): 0 % answered in time, below the 50 % target, so `service_level_low`
//! is sent by mail and webhook. Then an agent takes the queue and answers three callers at
//! once: 3 of 5 (60 %) clears the alert, and "resolved" follows.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use callfleet_store::{Queue, QueueEvent, QueueEventKind};
use support::phone::{device_add, Phone};
use support::queue::{member, queue, Db};
use support::sinks::{SmtpSink, WebhookSink};
use support::uac::{Resp, Uac};
use support::{serial, wait_alive, wait_until, workdir, NodeProc, NodeSpec, Pg};

const NET: &str = "127.0.38";
const SECRET: &str = "alert-service-level-secret-0123";
/// The queue's maximum wait: just past the 20 s threshold, so a timed-out caller counts.
const MAX_WAIT_MS: i64 = 21_000;

fn notices(hook: &WebhookSink, kind: &str, status: &str) -> usize {
    hook.delivered()
        .iter()
        .flat_map(|p| p.json()["alerts"].as_array().cloned().unwrap_or_default())
        .filter(|n| n["kind"] == kind && n["status"] == status)
        .count()
}

fn mailed(smtp: &SmtpSink, needle: &str) -> bool {
    smtp.mails().iter().any(|m| m.subject().contains(needle))
}

/// Queue events of `call_id` once one of `kind` is there (or `limit` passed).
fn wait_event(db: &Db, call_id: &str, kind: QueueEventKind, limit: Duration) -> Vec<QueueEvent> {
    let mut events = Vec::new();
    wait_until(limit, || {
        events = db
            .block(db.store.queue_events(Some(call_id), 0))
            .expect("read queue events");
        events.iter().any(|e| e.event == kind)
    });
    events
}

/// A caller from `ip` waiting in queue `sl`: its UAC, Call-ID and 200 OK. A call placed before
/// the node has loaded the queue is not queued: it is hung up and placed again (10 times at
/// most).
fn queued_caller(db: &Db, node: &NodeProc, ip: &str, id: &str) -> (Uac, String, Resp) {
    for attempt in 0..10 {
        let call_id = format!("{id}-{attempt}");
        let mut uac = Uac::new(ip, node.sip);
        let ok = uac
            .answered("sl", &call_id, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("no answer to {call_id}"));
        let events = wait_event(
            db,
            &call_id,
            QueueEventKind::Enqueue,
            Duration::from_secs(2),
        );
        if events.iter().any(|e| e.event == QueueEventKind::Enqueue) {
            return (uac, call_id, ok);
        }
        uac.in_dialog("BYE", &call_id, &ok, None);
    }
    panic!("queue sl never took a call from {ip}");
}

/// Two callers nobody answers: both time out after 21 s.
fn two_callers_time_out(db: &Db, node: &NodeProc) {
    let waiting: Vec<(Uac, String, Resp)> = (0..2)
        .map(|i| {
            queued_caller(
                db,
                node,
                &format!("{NET}.{}", 30 + i),
                &format!("sl-late-{i}"),
            )
        })
        .collect();
    for (_, call_id, _) in &waiting {
        let limit = Duration::from_millis(MAX_WAIT_MS as u64 + 10_000);
        let events = wait_event(db, call_id, QueueEventKind::Timeout, limit);
        assert!(
            events.iter().any(|e| e.event == QueueEventKind::Timeout),
            "{call_id} timed out: {events:?}"
        );
    }
}

/// An agent on a baresip phone takes the queue; three callers are answered at once (well
/// within 20 s), then hang up.
fn three_callers_answered_in_time(db: &Db, node: &NodeProc, dir: &Path) {
    device_add(node, "sl-dev", "pw-sl-dev", false);
    let _phone = Phone::start(dir, &format!("{NET}.40"), "sl-dev", "pw-sl-dev", node);
    let registered = wait_until(Duration::from_secs(15), || db.registered("sl-dev"));
    assert!(registered.is_some(), "the agent's phone registered");
    db.add_agent("201", "1234");
    db.login("201", "sl-dev");
    db.add_member(&member("sl", "201", 1, 1));
    for i in 0..3 {
        let ip = format!("{NET}.{}", 50 + i);
        let (mut uac, call_id, ok) = queued_caller(db, node, &ip, &format!("sl-on-time-{i}"));
        let events = wait_event(
            db,
            &call_id,
            QueueEventKind::Answer,
            Duration::from_secs(15),
        );
        let enqueued = events.iter().find(|e| e.event == QueueEventKind::Enqueue);
        let answered = events.iter().find(|e| e.event == QueueEventKind::Answer);
        let wait_ms = match (enqueued, answered) {
            (Some(e), Some(a)) => a.at_ms - e.at_ms,
            _ => panic!("{call_id} answered by the agent: {events:?}"),
        };
        assert!(wait_ms < 20_000, "{call_id} answered in time: {wait_ms} ms");
        uac.in_dialog("BYE", &call_id, &ok, None);
        let done = wait_event(
            db,
            &call_id,
            QueueEventKind::Complete,
            Duration::from_secs(10),
        );
        assert!(
            done.iter().any(|e| e.event == QueueEventKind::Complete),
            "{call_id} completed: {done:?}"
        );
    }
}

#[test]
fn a_queue_below_its_service_level_is_alerted_then_resolved_once_calls_are_answered() {
    let _serial = serial();
    let dir = workdir("alerts-service-level");
    let pg = Pg::fresh("alerts_service_level");
    let smtp = SmtpSink::start(&format!("{NET}.20:2525"));
    let hook = WebhookSink::start(&format!("{NET}.21:8080"));
    let extra = format!(
        "voicemail_dir = \"{}\"\n\
         [alerts]\ninterval = \"1s\"\nclear_after = \"3s\"\nservice_level_target = 0.5\n\
         service_level_min_calls = 2\n\
         [alerts.email]\nserver = \"{}\"\nport = {}\nfrom = \"cf@example.com\"\n\
         to = [\"oncall@example.com\"]\n\
         [[alerts.webhook]]\nurl = \"{}\"\nsecret = \"{SECRET}\"\n",
        dir.join("voicemail").display(),
        smtp.addr().ip(),
        smtp.addr().port(),
        hook.url()
    );
    // The queue exists before the node starts: it is loaded with the rest of the config.
    let db = Db::connect(&pg.url);
    db.block(db.store.migrate()).expect("migrate");
    db.add_queue(&Queue {
        max_wait_ms: MAX_WAIT_MS,
        ..queue("sl", "ringall")
    });
    let node = NodeProc::start(
        &dir,
        NodeSpec {
            name: "sl-a",
            role: "main",
            ip: &format!("{NET}.1"),
            db: &pg.url,
            capacity: 20,
            extra: &extra,
        },
    );
    wait_alive(&node, 1);

    two_callers_time_out(&db, &node);
    let timed_out = Instant::now();
    let raised = wait_until(Duration::from_secs(15), || {
        notices(&hook, "service_level_low", "firing") == 1
            && mailed(
                &smtp,
                "WARNING: queue sl answered 0 % of 2 calls within 20 s",
            )
    });
    assert!(
        raised.is_some(),
        "service_level_low by webhook and mail: {:#?} {:#?}",
        hook.delivered(),
        smtp.mails()
    );
    let raised_after = timed_out.elapsed();

    three_callers_answered_in_time(&db, &node, &dir);
    let answered = Instant::now();
    let resolved = wait_until(Duration::from_secs(15), || {
        notices(&hook, "service_level_low", "resolved") == 1
            && mailed(&smtp, "RESOLVED: queue sl answered")
    });
    assert!(
        resolved.is_some(),
        "resolved by webhook and mail: {:#?}",
        hook.delivered()
    );
    println!(
        "service level: raised {raised_after:?} after the second caller's timeout, resolved \
         {:?} after the third call answered in time (clear_after 3s)",
        answered.elapsed()
    );
    assert_eq!(notices(&hook, "service_level_low", "firing"), 1);
}
