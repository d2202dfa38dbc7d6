//! Tests for live calls and CDRs, on both flavours.

use crate::testdb::flavour_tests;
use crate::{CallDirection, Cdr, HangupCause, HangupSide, LiveCall, Store, StoreError};

flavour_tests!(
    live_call_lifecycle,
    live_calls_by_node_and_clear,
    insert_live_call_twice_replaces,
    cdrs_round_trip_optional_fields,
    an_unknown_stored_cause_is_a_decode_error,
);

fn ringing(node: &str, call_id: &str, started_at_ms: i64) -> LiveCall {
    LiveCall {
        node: node.to_owned(),
        call_id: call_id.to_owned(),
        from_uri: "sip:alice@127.0.0.1".to_owned(),
        to_uri: "sip:moh@127.0.0.11".to_owned(),
        state: "ringing".to_owned(),
        started_at_ms,
        answered_at_ms: None,
        redirected_from: None,
    }
}

async fn live_call_lifecycle(store: &Store) -> Result<(), StoreError> {
    let call = ringing("main-a", "c1@host", 1_000);
    store.insert_live_call(&call).await?;
    assert_eq!(store.live_calls(Some("main-a")).await?, vec![call.clone()]);

    assert!(
        store
            .update_live_call_answered("main-a", "c1@host", 1_500)
            .await?
    );
    let answered = LiveCall {
        state: "answered".to_owned(),
        answered_at_ms: Some(1_500),
        ..call
    };
    assert_eq!(store.live_calls(Some("main-a")).await?, vec![answered]);

    assert!(
        !store
            .update_live_call_answered("main-a", "other", 1_500)
            .await?
    );
    assert!(
        !store
            .update_live_call_answered("main-b", "c1@host", 1_500)
            .await?
    );
    assert!(store.delete_live_call("main-a", "c1@host").await?);
    assert!(!store.delete_live_call("main-a", "c1@host").await?);
    assert_eq!(store.live_calls(None).await?, vec![]);
    Ok(())
}

async fn live_calls_by_node_and_clear(store: &Store) -> Result<(), StoreError> {
    let a1 = ringing("a", "x", 3_000);
    let a2 = LiveCall {
        redirected_from: Some("main-b".to_owned()),
        ..ringing("a", "y", 1_000)
    };
    let b1 = ringing("b", "x", 2_000);
    for call in [&a1, &a2, &b1] {
        store.insert_live_call(call).await?;
    }
    assert_eq!(
        store.live_calls(None).await?,
        vec![a2.clone(), b1.clone(), a1.clone()]
    );
    assert_eq!(store.live_calls(Some("a")).await?, vec![a2, a1]);
    assert_eq!(store.live_calls(Some("nobody")).await?, vec![]);
    assert_eq!(store.clear_live_calls("a").await?, 2);
    assert_eq!(store.clear_live_calls("a").await?, 0);
    assert_eq!(store.live_calls(None).await?, vec![b1]);
    Ok(())
}

async fn insert_live_call_twice_replaces(store: &Store) -> Result<(), StoreError> {
    let first = ringing("a", "x", 1_000);
    let again = LiveCall {
        state: "answered".to_owned(),
        answered_at_ms: Some(1_200),
        redirected_from: Some("main-b".to_owned()),
        ..ringing("a", "x", 1_100)
    };
    store.insert_live_call(&first).await?;
    store.insert_live_call(&again).await?;
    assert_eq!(store.live_calls(None).await?, vec![again]);
    Ok(())
}

async fn cdrs_round_trip_optional_fields(store: &Store) -> Result<(), StoreError> {
    let cancelled = Cdr {
        node: "main-a".to_owned(),
        call_id: "c1".to_owned(),
        from_uri: "sip:alice@127.0.0.1".to_owned(),
        to_uri: "sip:moh@127.0.0.11".to_owned(),
        started_at_ms: 1_000,
        answered_at_ms: None,
        ended_at_ms: 2_000,
        hangup_cause: HangupCause::Cancelled,
        hangup_side: HangupSide::Caller,
        sip_status: 487,
        redirected_from: None,
        agent: None,
        queue: Some("sales".to_owned()),
        uid: Some("main-a/1/1".to_owned()),
        direction: CallDirection::Inbound,
        destination: None,
    };
    let answered = Cdr {
        call_id: "c2".to_owned(),
        node: "extra-1".to_owned(),
        answered_at_ms: Some(1_100),
        ended_at_ms: 9_000,
        hangup_cause: HangupCause::Normal,
        hangup_side: HangupSide::Agent,
        sip_status: 200,
        redirected_from: Some("main-a".to_owned()),
        agent: Some("1001".to_owned()),
        uid: None,
        ..cancelled.clone()
    };
    // Inserted out of end order: listing is by `ended_at_ms`.
    let id_answered = store.insert_cdr(&answered).await?;
    let id_cancelled = store.insert_cdr(&cancelled).await?;
    assert!(id_cancelled > id_answered, "ids increase");
    // A record written again under its key is not stored twice; rows without a key are
    // never taken for one another.
    let outbound = Cdr {
        call_id: "c3".to_owned(),
        ended_at_ms: 9_500,
        hangup_cause: HangupCause::Busy,
        hangup_side: HangupSide::Callee,
        sip_status: 486,
        agent: Some("1001".to_owned()),
        queue: None,
        uid: Some("main-a/1/3".to_owned()),
        direction: CallDirection::Outbound,
        destination: Some("+4930123456".to_owned()),
        ..cancelled.clone()
    };
    store.insert_cdr(&outbound).await?;
    let replayed = Cdr {
        ended_at_ms: 3_000,
        ..cancelled.clone()
    };
    assert_eq!(store.insert_cdr(&replayed).await?, None, "same uid");

    assert_eq!(
        store.cdrs_since(0).await?,
        vec![cancelled.clone(), answered.clone(), outbound.clone()]
    );
    assert_eq!(
        store.cdrs_since(2_000).await?,
        vec![cancelled, answered.clone(), outbound.clone()]
    );
    assert_eq!(
        store.cdrs_since(2_001).await?,
        vec![answered.clone(), outbound.clone()]
    );
    assert_eq!(store.cdrs_since(9_001).await?, vec![outbound]);
    assert_eq!(store.cdrs_since(9_501).await?, vec![]);
    let keyless = store.insert_cdr(&answered).await?;
    assert!(keyless > id_cancelled, "a second keyless row is a new row");
    assert_eq!(store.cdrs_since(0).await?.len(), 4);
    Ok(())
}

/// A CDR whose cause names no `HangupCause` (written by hand, or by a later version) is
/// reported as a decode error of its column: an error, never a panic or a guessed cause.
async fn an_unknown_stored_cause_is_a_decode_error(store: &Store) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO cdrs (node, call_id, from_uri, to_uri, started_at_ms, answered_at_ms, \
         ended_at_ms, hangup_cause, hangup_side, sip_status) \
         VALUES ('main-a', 'c9', 'sip:a@x', 'sip:b@x', 1, NULL, 2, 'martian', 'caller', 500)",
    )
    .execute(store.pool())
    .await
    .map_err(StoreError::query("insert a hand-made cdr"))?;
    match store.cdrs_since(0).await {
        Err(StoreError::Query { source, .. }) => {
            let text = source.to_string();
            assert!(text.contains("hangup_cause"), "{text}");
            assert!(text.contains("martian"), "{text}");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    Ok(())
}
