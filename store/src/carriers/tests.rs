//! Tests for carriers, on both flavours.

use crate::testdb::flavour_tests;
use crate::{Carrier, Store, StoreError};

flavour_tests!(carrier_lifecycle_bumps_config);

fn carrier(name: &str, network: &str, at: i64) -> Carrier {
    Carrier {
        name: name.to_owned(),
        network: network.to_owned(),
        created_at_ms: at,
    }
}

async fn carrier_lifecycle_bumps_config(store: &Store) -> Result<(), StoreError> {
    assert_eq!(store.carriers().await?, vec![]);
    store
        .upsert_carrier(&carrier("zeta", "203.0.113.0/24", 1_000))
        .await?;
    store
        .upsert_carrier(&carrier("alpha", "2001:db8::/32", 2_000))
        .await?;
    assert_eq!(store.config_version().await?, 2);

    // An update replaces the network and keeps the creation time.
    store
        .upsert_carrier(&carrier("zeta", "198.51.100.7/32", 9_999))
        .await?;
    assert_eq!(
        store.carriers().await?,
        vec![
            carrier("alpha", "2001:db8::/32", 2_000),
            carrier("zeta", "198.51.100.7/32", 1_000),
        ]
    );
    assert_eq!(store.config_version().await?, 3);

    assert!(store.delete_carrier("alpha").await?);
    assert_eq!(store.config_version().await?, 4);
    // Deleting what is not there changes nothing, the version included.
    assert!(!store.delete_carrier("alpha").await?);
    assert_eq!(store.config_version().await?, 4);
    assert_eq!(
        store.carriers().await?,
        vec![carrier("zeta", "198.51.100.7/32", 1_000)]
    );
    Ok(())
}
