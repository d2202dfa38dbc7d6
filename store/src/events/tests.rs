//! Tests for queue events and voicemails, on both flavours.

use crate::testdb::flavour_tests;
use crate::{QueueEvent, QueueEventKind, Store, StoreError, Voicemail};

flavour_tests!(queue_events_by_call_and_time, voicemails_by_mailbox);

fn event(call_id: &str, at_ms: i64, what: &str) -> QueueEvent {
    let what: QueueEventKind = what.parse().expect("a queue event kind");
    QueueEvent {
        id: 0,
        at_ms,
        queue: "sales".to_owned(),
        call_id: call_id.to_owned(),
        node: "main-a".to_owned(),
        agent: None,
        event: what,
        detail: None,
        uid: Some(format!("main-a/1/{call_id}/{at_ms}/{what}")),
    }
}

async fn queue_events_by_call_and_time(store: &Store) -> Result<(), StoreError> {
    let answer = QueueEvent {
        agent: Some("1001".to_owned()),
        detail: Some("after 12 s".to_owned()),
        ..event("c1", 2_000, "answer")
    };
    // Inserted out of time order; `c1`'s two events at 1 000 keep id order.
    let written = [
        answer,
        event("c1", 1_000, "enqueue"),
        event("c2", 1_500, "enqueue"),
        event("c1", 1_000, "offer"),
    ];
    let mut stored = Vec::new();
    for e in &written {
        let id = store.queue_event(e).await?.expect("a new event");
        stored.push(QueueEvent { id, ..e.clone() });
    }
    // Written again (a replay), an event is recognised by its key and not stored twice.
    assert_eq!(store.queue_event(&written[1]).await?, None);
    let pick =
        |idx: &[usize]| -> Vec<QueueEvent> { idx.iter().map(|&i| stored[i].clone()).collect() };
    // (call, since, events)
    let cases = [
        (None, 0, pick(&[1, 3, 2, 0])),
        (None, 1_500, pick(&[2, 0])),
        (Some("c1"), 0, pick(&[1, 3, 0])),
        (Some("c1"), 1_001, pick(&[0])),
        (Some("c2"), 0, pick(&[2])),
        (Some("c3"), 0, vec![]),
        (None, 2_001, vec![]),
    ];
    for (call, since, want) in cases {
        assert_eq!(
            store.queue_events(call, since).await?,
            want,
            "{call:?} {since}"
        );
    }
    // After an id: the events stored later, whatever their time, in time order.
    let cases = [
        (0, pick(&[1, 3, 2, 0])),
        (stored[0].id, pick(&[1, 3, 2])),
        (stored[1].id, pick(&[3, 2])),
        (stored[2].id, pick(&[3])),
        (stored[3].id, vec![]),
    ];
    for (after, want) in cases {
        assert_eq!(
            store.queue_events_after(after).await?,
            want,
            "after {after}"
        );
    }
    Ok(())
}

async fn voicemails_by_mailbox(store: &Store) -> Result<(), StoreError> {
    let vm = |agent: &str, at: i64| Voicemail {
        id: 0,
        agent: agent.to_owned(),
        caller: "+3312345".to_owned(),
        path: format!("/var/lib/callfleet/voicemail/{agent}-{at}.wav"),
        duration_ms: 4_200,
        created_at_ms: at,
        node: "main-a".to_owned(),
    };
    let mut stored = Vec::new();
    for v in [vm("1001", 3_000), vm("1002", 2_000), vm("1001", 1_000)] {
        let id = store.insert_voicemail(&v).await?.expect("a new voicemail");
        stored.push(Voicemail { id, ..v });
    }
    // The same file of the same node written again (a replay) is not stored twice.
    assert_eq!(store.insert_voicemail(&stored[1]).await?, None);
    assert!(stored[0].id < stored[1].id && stored[1].id < stored[2].id);
    let [a3, b2, a1] = [&stored[0], &stored[1], &stored[2]].map(Clone::clone);
    assert_eq!(
        store.voicemails(Some("1001")).await?,
        vec![a1.clone(), a3.clone()]
    );
    assert_eq!(store.voicemails(Some("1003")).await?, vec![]);
    assert_eq!(store.voicemails(None).await?, vec![a1, b2, a3]);
    assert_eq!(store.voicemail_usage("1001").await?, (2, 8_400));
    assert_eq!(store.voicemail_usage("1002").await?, (1, 4_200));
    assert_eq!(store.voicemail_usage("1003").await?, (0, 0));
    Ok(())
}
