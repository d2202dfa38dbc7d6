//! Tests for the config version, on both flavours.

use crate::testdb::flavour_tests;
use crate::{Store, StoreError};

flavour_tests!(starts_at_zero_and_bumps, concurrent_bumps_are_not_lost);

async fn starts_at_zero_and_bumps(store: &Store) -> Result<(), StoreError> {
    assert_eq!(store.config_version().await?, 0);
    assert_eq!(store.bump_config_version().await?, 1);
    assert_eq!(store.bump_config_version().await?, 2);
    assert_eq!(store.config_version().await?, 2);
    Ok(())
}

async fn concurrent_bumps_are_not_lost(store: &Store) -> Result<(), StoreError> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.spawn(async move { store.bump_config_version().await });
    }
    let mut seen = Vec::new();
    while let Some(res) = tasks.join_next().await {
        seen.push(res.expect("bump task")?);
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=8).collect::<Vec<i64>>());
    assert_eq!(store.config_version().await?, 8);
    Ok(())
}
