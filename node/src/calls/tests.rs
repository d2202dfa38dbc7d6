use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use super::*;

fn call(call_id: &str, tx: &str) -> Admit {
    Admit {
        call_id: call_id.into(),
        from_uri: "sip:a@x".into(),
        to_uri: "sip:100@y".into(),
        peer: "127.0.0.1".parse().expect("ip"),
        redirected_from: None,
        tx_key: tx.into(),
    }
}

fn counting(n: &Arc<AtomicUsize>) -> GiveUp {
    let n = n.clone();
    Box::new(move || {
        n.fetch_add(1, Ordering::Relaxed);
    })
}

#[test]
fn a_live_call_id_is_admitted_once_and_each_call_has_its_own_uid() {
    let t = CallTable::default();
    let given_up = Arc::new(AtomicUsize::new(0));
    let a = t
        .admit(call("a", "tx-a"), 1, counting(&given_up))
        .expect("a");
    assert_eq!(
        t.admit(call("a", "tx-a2"), 2, counting(&given_up)).err(),
        Some(Refused::CallIdInUse)
    );
    let b = t
        .admit(call("b", "tx-b"), 3, counting(&given_up))
        .expect("b");
    assert_ne!(a, b);
    assert_eq!(t.active(), 2);
    let e = t.set_state(a, CallState::Answered, 10).expect("present");
    assert_eq!(e.answered_at_ms, Some(10));
    assert_eq!(t.snapshot("n").len(), 2);
    assert!(t.remove(a).is_some());
    assert!(t.remove(a).is_none(), "a call ends once");
    assert_eq!(t.active(), 1);
    // The Call-ID is free again once its call ended; the new call gets a new number.
    let a2 = t
        .admit(call("a", "tx-a3"), 4, counting(&given_up))
        .expect("a again");
    assert!(a2 > b);
    assert_eq!(given_up.load(Ordering::Relaxed), 0);
}

#[test]
fn a_claimed_admission_is_never_given_up_and_an_unclaimed_one_is() {
    let t = CallTable::default();
    let given_up = Arc::new(AtomicUsize::new(0));
    let a = t
        .admit(call("a", "tx-a"), 1, counting(&given_up))
        .expect("a");
    t.admit(call("b", "tx-b"), 1, counting(&given_up))
        .expect("b");
    assert_eq!(t.claim("tx-a"), Some(a));
    assert_eq!(t.claim("tx-a"), None, "claimed once");
    assert_eq!(t.claim("tx-unknown"), None);
    let gone = t.expire_pending(Duration::ZERO);
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].0.call_id, "b");
    for (_, give_up) in gone {
        give_up();
    }
    assert_eq!(given_up.load(Ordering::Relaxed), 1);
    assert_eq!(t.active(), 1);
    assert!(t.contains("a") && !t.contains("b"));
    assert_eq!(
        t.claim("tx-b"),
        None,
        "a given-up admission cannot be claimed"
    );
    assert!(t.expire_pending(Duration::ZERO).is_empty());
}

#[test]
fn served_details_follow_the_call_id_to_its_call() {
    let t = CallTable::default();
    let a = t.admit(call("a", "tx-a"), 1, Box::new(|| {})).expect("a");
    t.set_served("a", Some("sales"), None);
    t.set_served("a", Some("sales"), Some("1001"));
    t.set_served("nobody", Some("x"), None);
    // Transferred on, to a queue and its agent: the call stays the first agent's.
    t.set_served("a", Some("support"), None);
    t.set_served("a", Some("support"), Some("1003"));
    let e = t.remove(a).expect("a");
    assert_eq!(
        (e.queue.as_deref(), e.agent.as_deref()),
        (Some("sales"), Some("1001"))
    );
}

#[test]
fn the_caller_of_a_live_call_is_noted_by_call_id() {
    let t = CallTable::default();
    let given_up = Arc::new(AtomicUsize::new(0));
    t.admit(call("b", "tx-b"), 1, counting(&given_up))
        .expect("b");
    assert_eq!(t.caller("b"), (None, None));
    let source = "127.0.0.1:5060".parse().expect("addr");
    t.set_caller("b", Some(source), Some("2001".into()));
    assert_eq!(t.caller("b"), (Some(source), Some("2001".into())));
    assert_eq!(t.caller("gone"), (None, None));
    t.set_caller("gone", Some(source), None);
    assert_eq!(t.caller("gone"), (None, None));
}
