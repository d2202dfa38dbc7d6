//! Tests for numbers, on both flavours.

use callfleet_vocab::DestKind;

use crate::testdb::flavour_tests;
use crate::{Destination, Number, Store, StoreError};

flavour_tests!(number_lifecycle_bumps_config);

fn number(n: &str, open: &str, at: i64) -> Number {
    Number {
        number: n.to_owned(),
        open: open.parse().expect("destination"),
        closed: Destination::new(DestKind::Message, "goodbye"),
        time_zone: "Europe/Paris".into(),
        open_hours: "mon-fri 09:00-17:00".into(),
        holidays: "2026-12-25".into(),
        created_at_ms: at,
    }
}

async fn number_lifecycle_bumps_config(store: &Store) -> Result<(), StoreError> {
    assert_eq!(store.numbers().await?, vec![]);
    store
        .upsert_number(&number("0800100", "queue:sales", 1_000))
        .await?;
    store
        .upsert_number(&number("0800050", "menu:main", 2_000))
        .await?;
    assert_eq!(store.config_version().await?, 2);

    // An update replaces the routing and keeps the creation time.
    let mut changed = number("0800100", "agent:1001", 9_999);
    changed.closed = Destination::new(DestKind::Voicemail, "1001");
    changed.open_hours = String::new();
    store.upsert_number(&changed).await?;
    changed.created_at_ms = 1_000;
    assert_eq!(
        store.numbers().await?,
        vec![number("0800050", "menu:main", 2_000), changed]
    );
    assert_eq!(store.config_version().await?, 3);

    assert!(store.delete_number("0800050").await?);
    assert_eq!(store.config_version().await?, 4);
    assert!(!store.delete_number("0800050").await?);
    assert_eq!(store.config_version().await?, 4);
    assert_eq!(store.numbers().await?.len(), 1);
    Ok(())
}

#[test]
fn destinations_read_and_write_as_kind_colon_target() {
    let d: Destination = "queue: sales ".parse().expect("parse");
    assert_eq!(d, Destination::new(DestKind::Queue, "sales"));
    assert_eq!(d.to_string(), "queue:sales");
    for bad in ["sales", "queue:", "ring:x", ":x"] {
        assert!(bad.parse::<Destination>().is_err(), "{bad}");
    }
}
