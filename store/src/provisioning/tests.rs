//! Tests for provisioning tokens and provisioned phones, on both flavours.

use crate::testdb::flavour_tests;
use crate::{Device, Provisioned, ProvisionedPhone, ProvisioningToken, Store, StoreError};

flavour_tests!(
    tokens_add_find_remove,
    provision_creates_once_per_mac_and_extension,
    deleting_the_device_forgets_the_phone,
);

fn device(ext: &str) -> Device {
    Device {
        extension: ext.to_owned(),
        ha1_md5: format!("md5-{ext}"),
        ha1_sha256: format!("sha256-{ext}"),
        realm: "callfleet".to_owned(),
        display_name: format!("phone {ext}"),
        created_at_ms: 1_000,
    }
}

fn phone(mac: &str, ext: &str) -> ProvisionedPhone {
    ProvisionedPhone {
        mac: mac.to_owned(),
        extension: ext.to_owned(),
        family: "yealink".to_owned(),
        salt: "00112233445566778899aabbccddeeff".to_owned(),
        source: "127.0.56.9".to_owned(),
        token_name: "office".to_owned(),
        created_at_ms: 1_000,
        fetched_at_ms: 1_000,
    }
}

async fn tokens_add_find_remove(store: &Store) -> Result<(), StoreError> {
    let t = |name: &str, hash: &str| ProvisioningToken {
        name: name.to_owned(),
        token_hash: hash.to_owned(),
        created_at_ms: 5,
    };
    store.add_provisioning_token(&t("office", "h1")).await?;
    store.add_provisioning_token(&t("branch", "h2")).await?;
    assert!(matches!(
        store.add_provisioning_token(&t("office", "h3")).await,
        Err(StoreError::Duplicate { .. })
    ));
    assert_eq!(
        store.provisioning_tokens().await?,
        vec![t("branch", "h2"), t("office", "h1")]
    );
    assert_eq!(
        store.provisioning_token_by_hash("h1").await?.as_deref(),
        Some("office")
    );
    assert_eq!(store.provisioning_token_by_hash("h3").await?, None);
    assert!(store.remove_provisioning_token("office").await?);
    assert!(!store.remove_provisioning_token("office").await?);
    assert_eq!(store.provisioning_token_by_hash("h1").await?, None);
    assert_eq!(store.config_version().await?, 0, "tokens are not config");
    Ok(())
}

async fn provision_creates_once_per_mac_and_extension(store: &Store) -> Result<(), StoreError> {
    let a = phone("001565aabbcc", "7000");
    assert_eq!(
        store.provision_phone(&a, &device("7000")).await?,
        Provisioned::Created
    );
    assert_eq!(store.config_version().await?, 1);
    assert_eq!(
        store.provisioned_phone("001565aabbcc").await?,
        Some(a.clone())
    );
    assert_eq!(store.device("7000").await?, Some(device("7000")));

    // The same MAC again (another node was faster), on a free extension: nothing written.
    assert_eq!(
        store
            .provision_phone(&phone("001565aabbcc", "7001"), &device("7001"))
            .await?,
        Provisioned::MacTaken
    );
    assert_eq!(store.device("7001").await?, None);
    // Another MAC on a taken extension, including one made by hand.
    store.upsert_device(&device("7002")).await?;
    for ext in ["7000", "7002"] {
        assert_eq!(
            store
                .provision_phone(&phone("001565000001", ext), &device(ext))
                .await?,
            Provisioned::ExtensionTaken,
            "{ext}"
        );
    }
    assert_eq!(store.provisioned_phone("001565000001").await?, None);
    assert_eq!(
        store.config_version().await?,
        2,
        "only the hand-made device"
    );

    store.touch_provisioned_phone("001565aabbcc", 9_000).await?;
    let touched = ProvisionedPhone {
        fetched_at_ms: 9_000,
        ..a
    };
    assert_eq!(store.provisioned_phones().await?, vec![touched]);
    assert_eq!(store.config_version().await?, 2, "a fetch is not config");
    Ok(())
}

async fn deleting_the_device_forgets_the_phone(store: &Store) -> Result<(), StoreError> {
    let a = phone("001565aabbcc", "7000");
    store.provision_phone(&a, &device("7000")).await?;
    assert!(store.delete_device("7000").await?);
    assert_eq!(store.provisioned_phone("001565aabbcc").await?, None);
    assert_eq!(store.config_version().await?, 2);
    // The MAC may provision again, and gets the extension back if it is free.
    assert_eq!(
        store.provision_phone(&a, &device("7000")).await?,
        Provisioned::Created
    );
    assert!(!store.delete_device("7999").await?);
    assert_eq!(store.config_version().await?, 3);
    Ok(())
}
