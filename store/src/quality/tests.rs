//! Tests for per-leg call quality, on both flavours.

use crate::testdb::flavour_tests;
use crate::{CallLeg, LegQualityRow, Store, StoreError};

flavour_tests!(quality_upsert_is_idempotent_and_keyed_by_call_and_leg,);

fn row(node: &str, call_id: &str, started_at_ms: i64, leg: CallLeg) -> LegQualityRow {
    LegQualityRow {
        node: node.to_owned(),
        call_id: call_id.to_owned(),
        started_at_ms,
        leg,
        ended_at_ms: started_at_ms + 60_000,
        codec: "PCMU".to_owned(),
        packets_in: 2_990,
        bytes_in: 514_280,
        packets_out: 3_000,
        bytes_out: 516_000,
        expected: 3_000,
        lost: 150,
        duplicates: 3,
        out_of_order: 40,
        jitter_us: 12_500,
        jitter_max_us: 20_000,
        longest_gap_ms: 95,
        rtcp_sent: 12,
        rtcp_received: 11,
        peer_fraction_lost: Some(12),
        peer_lost: Some(-2),
        peer_jitter_us: Some(1_250),
        rtt_us: None,
    }
}

async fn quality_upsert_is_idempotent_and_keyed_by_call_and_leg(
    store: &Store,
) -> Result<(), StoreError> {
    let caller = row("main-a", "q1@host", 1_000, CallLeg::Caller);
    let agent = LegQualityRow {
        peer_fraction_lost: None,
        peer_lost: None,
        peer_jitter_us: None,
        rtt_us: Some(40_000),
        ..row("main-a", "q1@host", 1_000, CallLeg::Agent)
    };
    store.upsert_leg_quality(&caller).await?;
    store.upsert_leg_quality(&agent).await?;
    // A retried write of the same leg replaces it.
    let retried = LegQualityRow {
        lost: 151,
        ..caller.clone()
    };
    store.upsert_leg_quality(&retried).await?;
    // Another call with the same Call-ID (later start) is its own record.
    let later = row("main-a", "q1@host", 500_000, CallLeg::Caller);
    store.upsert_leg_quality(&later).await?;
    store
        .upsert_leg_quality(&row("main-b", "other@host", 2_000, CallLeg::Caller))
        .await?;
    assert_eq!(
        store.quality_of_call("q1@host").await?,
        vec![agent.clone(), retried.clone(), later.clone()]
    );
    let since = store.quality_since(61_500).await?;
    assert_eq!(since.len(), 2, "{since:?}");
    assert_eq!(since[0].call_id, "other@host");
    assert_eq!(since[1], later);
    assert_eq!("agent".parse::<CallLeg>().ok(), Some(CallLeg::Agent));
    assert!("bridge".parse::<CallLeg>().is_err());
    Ok(())
}
