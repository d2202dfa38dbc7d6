//! Tests for IVR menus, on both flavours.

use std::collections::BTreeMap;

use callfleet_vocab::DestKind;

use crate::testdb::flavour_tests;
use crate::{Destination, IvrMenu, Store, StoreError};

flavour_tests!(menu_and_choices_are_written_together);

fn menu(name: &str, choices: &[(char, &str)]) -> IvrMenu {
    IvrMenu {
        name: name.to_owned(),
        prompt: "welcome.wav".into(),
        timeout_ms: 5_000,
        repeats: 3,
        invalid: Destination::new(DestKind::Message, "goodbye"),
        choices: choices
            .iter()
            .map(|(d, to)| (*d, to.parse().expect("destination")))
            .collect::<BTreeMap<_, _>>(),
        moh_class: "calm".into(),
        created_at_ms: 1_000,
    }
}

async fn menu_and_choices_are_written_together(store: &Store) -> Result<(), StoreError> {
    assert_eq!(store.menus().await?, vec![]);
    let main = menu(
        "main",
        &[
            ('1', "queue:sales"),
            ('2', "menu:billing"),
            ('#', "number:0800"),
        ],
    );
    let billing = menu("billing", &[('0', "menu:main")]);
    store.upsert_menu(&main).await?;
    store.upsert_menu(&billing).await?;
    assert_eq!(store.config_version().await?, 2);
    assert_eq!(store.menus().await?, vec![billing.clone(), main]);

    // Saving replaces the choices as a whole.
    let main = menu("main", &[('9', "agent:1001")]);
    store.upsert_menu(&main).await?;
    assert_eq!(store.menus().await?, vec![billing, main.clone()]);
    assert_eq!(store.config_version().await?, 3);

    // Deleting a menu deletes its choices (and they do not show under a new one).
    assert!(store.delete_menu("billing").await?);
    assert!(!store.delete_menu("billing").await?);
    assert_eq!(store.config_version().await?, 4);
    store.upsert_menu(&menu("billing", &[])).await?;
    assert_eq!(store.menus().await?, vec![menu("billing", &[]), main]);
    Ok(())
}
