//! A phone that registered over SIP/TCP is rung as an agent on its registration's connection
//! (RFC 3261 §18.1.1, RFC 5626 practice): a baresip phone registers over TCP only, is logged
//! in as an agent, and a SIPp carrier call to the queue rings it, it answers, the call record
//! names the agent, and the caller's BYE ends the phone's call on the same connection. Rung
//! over UDP (to the connection's source port) it would never ring. Addresses: 127.0.75.x.

mod support;

use std::time::Duration;

use callfleet_store::{CallLeg, QueueEventKind};
use support::phone::{device_add, Phone};
use support::queue::{member, queue, Db};
use support::{carrier_calls, wait_until, workdir, Burst, NodeProc, NodeSpec};

#[test]
fn a_phone_registered_over_tcp_is_rung_on_its_connection_and_answers_a_queue_call() {
    let dir = workdir("tcp-phone");
    let db_url = format!("sqlite://{}", dir.join("tcp.db").display());
    let node = NodeProc::start(
        &dir,
        NodeSpec {
            name: "tcp-a",
            role: "main",
            ip: "127.0.75.1",
            db: &db_url,
            capacity: 10,
            extra: "",
        },
    );
    device_add(&node, "2001", "pw-2001-long-enough", false);
    let db = Db::connect(&db_url);
    db.add_agent("1001", "1234");
    db.add_queue(&queue("sales", "ringall"));
    db.add_member(&member("sales", "1001", 0, 0));

    let phone = Phone::start_tcp(&dir, "127.0.75.10", "2001", "pw-2001-long-enough", node.sip);
    let registered = wait_until(Duration::from_secs(15), || db.registered("2001"));
    assert!(
        registered.is_some(),
        "no registration over TCP:\n{}",
        phone.log()
    );
    let regs = db
        .block(db.store.registrations("2001", callfleet::now_ms()))
        .expect("registrations");
    assert_eq!(regs[0].transport, "tcp", "{regs:?}");
    db.login("1001", "2001");
    assert!(
        db.wait_available(&["1001"], Duration::from_secs(10)),
        "agent 1001 is not available"
    );
    db.wait_reloaded(&node);

    // One carrier call to the queue, held 6 s after the node answers, then BYE from SIPp.
    let since = callfleet::now_ms();
    let stats = carrier_calls(
        &dir,
        "tcp-queue",
        node.sip,
        "sales",
        ("127.0.75.20", 5070),
        Burst {
            calls: 1,
            every_ms: 1000,
            hold_ms: 6000,
        },
    );
    assert_eq!(stats.successful, 1, "the carrier call: {stats:?}");
    let answered = wait_until(Duration::from_secs(10), || {
        db.events(since)
            .iter()
            .any(|e| e.event == QueueEventKind::Answer && e.agent.as_deref() == Some("1001"))
    });
    assert!(
        answered.is_some(),
        "agent 1001 answered over TCP: {:?}\nphone:\n{}",
        db.events(since),
        phone.log()
    );
    assert_eq!(
        phone.calls_with("sipp"),
        1,
        "the phone established the call:\n{}",
        phone.log()
    );
    let cdr = wait_until(Duration::from_secs(10), || {
        db.block(db.store.cdrs_since(since))
            .unwrap_or_default()
            .iter()
            .any(|c| c.agent.as_deref() == Some("1001") && c.answered_at_ms.is_some())
    });
    assert!(
        cdr.is_some(),
        "a call record naming the agent: {:?}",
        db.block(db.store.cdrs_since(since))
    );
    // SIPp's BYE ends the agent's leg with our BYE on the same TCP connection.
    let ended = wait_until(Duration::from_secs(10), || {
        phone
            .log()
            .lines()
            .any(|l| l.contains("Call with sip:sipp@") && l.contains("terminated"))
    });
    assert!(ended.is_some(), "the phone's call ended:\n{}", phone.log());
    // Audio flowed: the node received the phone's tone on the agent's leg and relayed it to the
    // caller (about 50 packets a second for the 6 s the call was held; at least 3 s of it).
    let heard = wait_until(Duration::from_secs(10), || {
        let rows = db.block(db.store.quality_since(since)).unwrap_or_default();
        let leg = |l: CallLeg| rows.iter().find(|q| q.leg == l).cloned();
        matches!(
            (leg(CallLeg::Agent), leg(CallLeg::Caller)),
            (Some(a), Some(c)) if a.packets_in >= 150 && c.packets_out >= 150
        )
    });
    assert!(
        heard.is_some(),
        "RTP from the TCP phone: {:?}",
        db.block(db.store.quality_since(since))
    );
    assert!(!node.log_text().contains("panicked"), "{}", node.log_text());
}
