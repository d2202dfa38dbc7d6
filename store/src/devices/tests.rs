//! Tests for devices and registrar bindings, on both flavours.

use crate::testdb::flavour_tests;
use crate::{Device, Registration, Store, StoreError};

flavour_tests!(
    device_lifecycle_bumps_config,
    registration_cseq_rules,
    registrations_filter_expired_and_order,
    registration_deletes_and_purge,
);

fn device(ext: &str, name: &str) -> Device {
    Device {
        extension: ext.to_owned(),
        ha1_md5: format!("md5-{ext}"),
        ha1_sha256: format!("sha256-{ext}"),
        realm: "callfleet".to_owned(),
        display_name: name.to_owned(),
        created_at_ms: 1_000,
    }
}

fn reg(aor: &str, contact: &str, call_id: &str, cseq: i64, expires_at_ms: i64) -> Registration {
    Registration {
        aor: aor.to_owned(),
        contact: contact.to_owned(),
        received: "127.0.0.50:5062".to_owned(),
        transport: "udp".to_owned(),
        expires_at_ms,
        user_agent: "baresip".to_owned(),
        node: "main-a".to_owned(),
        call_id: call_id.to_owned(),
        cseq,
    }
}

async fn device_lifecycle_bumps_config(store: &Store) -> Result<(), StoreError> {
    assert_eq!(store.device("1001").await?, None);
    store.upsert_device(&device("1002", "Bob")).await?;
    store.upsert_device(&device("1001", "Alice")).await?;
    assert_eq!(store.config_version().await?, 2);

    // An update replaces credentials and name but keeps the creation time.
    let changed = Device {
        ha1_md5: "new-md5".to_owned(),
        created_at_ms: 9_999,
        ..device("1001", "Alice Desk")
    };
    store.upsert_device(&changed).await?;
    let want = Device {
        created_at_ms: 1_000,
        ..changed
    };
    assert_eq!(store.device("1001").await?, Some(want.clone()));
    assert_eq!(store.devices().await?, vec![want, device("1002", "Bob")]);
    assert_eq!(store.config_version().await?, 3);

    assert!(store.delete_device("1002").await?);
    assert_eq!(store.config_version().await?, 4);
    // Deleting nothing changes nothing, not even the version.
    assert!(!store.delete_device("1002").await?);
    assert_eq!(store.config_version().await?, 4);
    assert_eq!(store.devices().await?.len(), 1);
    Ok(())
}

async fn registration_cseq_rules(store: &Store) -> Result<(), StoreError> {
    let c = "sip:1001@127.0.0.50:5062";
    assert!(
        store
            .upsert_registration(&reg("1001", c, "a", 5, 10_000))
            .await?
    );
    // (call_id, cseq, expires, written?)
    let cases = [
        ("a", 5, 20_000, false), // same Call-ID, same CSeq: a replay
        ("a", 4, 20_000, false), // same Call-ID, older CSeq
        ("a", 6, 20_000, true),  // refresh
        ("b", 1, 30_000, true),  // new Call-ID (phone restarted)
        ("b", 1, 40_000, false),
    ];
    let mut want = reg("1001", c, "a", 5, 10_000);
    for (call_id, cseq, expires, written) in cases {
        let r = reg("1001", c, call_id, cseq, expires);
        assert_eq!(
            store.upsert_registration(&r).await?,
            written,
            "{call_id}/{cseq}"
        );
        if written {
            want = r;
        }
        assert_eq!(store.registrations("1001", 0).await?, vec![want.clone()]);
    }
    assert_eq!(store.config_version().await?, 0, "bindings are not config");
    Ok(())
}

async fn registrations_filter_expired_and_order(store: &Store) -> Result<(), StoreError> {
    let old = reg("1001", "sip:1001@127.0.0.50:5062", "x", 1, 5_000);
    let new = reg("1001", "sip:1001@127.0.0.51:5062", "y", 1, 8_000);
    let other = reg("1002", "sip:1002@127.0.0.52:5062", "z", 1, 9_000);
    for r in [&old, &new, &other] {
        assert!(store.upsert_registration(r).await?);
    }
    // (now_ms, bindings of 1001)
    let cases = [
        (0, vec![new.clone(), old.clone()]),
        (4_999, vec![new.clone(), old.clone()]),
        (5_000, vec![new.clone()]),
        (8_000, vec![]),
    ];
    for (now, want) in cases {
        assert_eq!(store.registrations("1001", now).await?, want, "at {now}");
    }
    assert_eq!(store.registrations("1003", 0).await?, vec![]);
    Ok(())
}

async fn registration_deletes_and_purge(store: &Store) -> Result<(), StoreError> {
    let a1 = reg("1001", "sip:a1", "1", 1, 5_000);
    let a2 = reg("1001", "sip:a2", "2", 1, 9_000);
    let b1 = reg("1002", "sip:b1", "3", 1, 5_000);
    let c1 = reg("1003", "sip:c1", "4", 1, 9_000);
    for r in [&a1, &a2, &b1, &c1] {
        assert!(store.upsert_registration(r).await?);
    }
    assert!(store.delete_registration("1001", "sip:a1").await?);
    assert!(!store.delete_registration("1001", "sip:a1").await?);
    assert!(!store.delete_registration("1002", "sip:a2").await?);
    assert_eq!(store.registrations("1001", 0).await?, vec![a2]);

    assert_eq!(store.delete_registrations("1001").await?, 1);
    assert_eq!(store.delete_registrations("1001").await?, 0);

    assert_eq!(store.purge_expired_registrations(4_999).await?, 0);
    assert_eq!(store.purge_expired_registrations(5_000).await?, 1);
    assert_eq!(store.registrations("1002", 0).await?, vec![]);
    assert_eq!(store.registrations("1003", 0).await?, vec![c1]);
    Ok(())
}
