//! A logged-in agent whose phone is not registered is skipped when the queue chooses whom to
//! offer: no lease, no `ringing` flip-flop in the agent's state history, one log line (not
//! one per try); the call goes to the agent whose baresip phone is registered.

mod support;

use std::time::Duration;

use callfleet_store::{Agent, AgentState, Member, ReportWindow as Window, Store};
use support::phone::{device_add, Phone};
use support::queue::queue;
use support::uac::Uac;
use support::{wait_until, workdir, NodeProc, NodeSpec};

const NOT_REGISTERED: &str = "agent's phone is not registered";

fn member(agent: &str) -> Member {
    Member {
        queue: "sales".into(),
        agent: agent.into(),
        tier: 0,
        vip_allowed: false,
        weight: 1,
        position: 0,
    }
}

/// Blocks on a future from a synchronous closure of `wait_until`.
fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_without_a_registered_phone_is_skipped_not_rung_in_a_loop() {
    let dir = workdir("absent-phone");
    let db = format!("sqlite://{}", dir.join("cluster.db").display());
    let n = NodeProc::start(
        &dir,
        NodeSpec {
            name: "solo",
            role: "main",
            ip: "127.0.78.11",
            db: &db,
            capacity: 20,
            extra: "",
        },
    );
    // Agent 1001's phone (2001) exists but never registers; 1002's (2002) is a baresip phone.
    device_add(&n, "2001", "phone-secret-a", false);
    device_add(&n, "2002", "phone-secret-b", false);
    let phone = Phone::start(&dir, "127.0.78.41", "2002", "phone-secret-b", &n);
    let store = Store::connect(&db).await.expect("open db");
    let registered = wait_until(Duration::from_secs(10), || {
        block(store.registrations("2002", callfleet::now_ms()))
            .map(|r| !r.is_empty())
            .unwrap_or(false)
    });
    assert!(
        registered.is_some(),
        "phone did not register:\n{}",
        phone.log()
    );
    store
        .upsert_queue(&queue("sales", "ringall"))
        .await
        .unwrap();
    for (ext, name) in [("1001", "Ada"), ("1002", "Bo")] {
        let pin = callfleet_store::pin::hash(ext, "1234").expect("hash the PIN");
        store
            .upsert_agent(&Agent::new(ext, name, &pin, callfleet::now_ms()))
            .await
            .unwrap();
        store.upsert_member(&member(ext)).await.unwrap();
    }
    let (code, body) = n.post_json("/api/v1/agents/1001/login", r#"{"device":"2001"}"#);
    assert_eq!(code, 204, "{body}");
    tokio::time::sleep(Duration::from_millis(1500)).await; // the node reloads its config each second

    // Only the agent without a phone is free: the caller waits through many dispatcher rounds
    // (4 a second) in which that agent would be offered.
    let mut caller = Uac::new("127.0.78.100", n.sip);
    let ok = caller
        .answered("sales", "absent-1", Duration::from_secs(5))
        .expect("the queue answers");
    let skipped_once = wait_until(Duration::from_secs(10), || {
        n.log_text().contains(NOT_REGISTERED)
    });
    assert!(
        skipped_once.is_some(),
        "the agent was never looked at:\n{}",
        n.log_text()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Now the agent with a phone logs in and takes the call.
    let (code, body) = n.post_json("/api/v1/agents/1002/login", r#"{"device":"2002"}"#);
    assert_eq!(code, 204, "{body}");
    let answered_by = |events: &[callfleet_store::QueueEvent]| {
        events
            .iter()
            .find(|e| e.event.to_string() == "answer")
            .and_then(|e| e.agent.clone())
    };
    let mut events = vec![];
    let answered = wait_until(Duration::from_secs(15), || {
        events = block(store.queue_events(Some("absent-1"), 0)).unwrap_or_default();
        answered_by(&events).is_some()
    });
    assert!(
        answered.is_some(),
        "nobody answered: {events:?}\n{}",
        n.log_text()
    );
    assert_eq!(answered_by(&events).as_deref(), Some("1002"), "{events:?}");
    let offered: Vec<_> = events
        .iter()
        .filter(|e| e.event.to_string() == "offer")
        .map(|e| e.agent.clone())
        .collect();
    assert_eq!(offered, [Some("1002".to_string())], "{events:?}");
    caller.in_dialog("BYE", "absent-1", &ok, None);
    let bye = caller
        .recv_final(Duration::from_secs(3))
        .expect("BYE answered");
    assert_eq!(bye.status, 200);

    // The agent without a phone never rang: its history holds no `ringing`, and it is
    // available (logged in) throughout.
    let now = callfleet::now_ms();
    let window = Window {
        from_ms: 0,
        to_ms: now + 1,
        bucket_ms: 1,
    };
    let history = store
        .report_agent_state_times(window, Some("1001"))
        .await
        .expect("agent state history");
    assert!(!history.is_empty(), "the agent has a history: {history:?}");
    assert!(
        history.iter().all(|t| t.state != AgentState::Ringing),
        "the agent without a phone flipped to ringing: {history:?}"
    );
    let a = store.agent("1001").await.unwrap().unwrap();
    assert_eq!(a.state, AgentState::Available, "{a:?}");
    // Said once when it became unreachable, not once per dispatcher round or try.
    let log = n.log_text();
    let lines = log.lines().filter(|l| l.contains(NOT_REGISTERED)).count();
    assert_eq!(lines, 1, "{log}");
}
