//! Tests for uploaded prompts, on both flavours.

use crate::testdb::flavour_tests;
use crate::{PromptInfo, Store, StoreError};

flavour_tests!(prompts_are_stored_listed_replaced_and_deleted);

fn info(name: &str, samples: i64, at: i64) -> PromptInfo {
    PromptInfo {
        name: name.to_owned(),
        samples,
        uploaded_at_ms: at,
    }
}

async fn prompts_are_stored_listed_replaced_and_deleted(store: &Store) -> Result<(), StoreError> {
    assert_eq!(store.prompts().await?, vec![]);
    assert_eq!(store.prompt_wav("welcome").await?, None);
    // Bytes of every value, a NUL among them, come back as they went in.
    let audio: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    store
        .put_prompt(&info("welcome", 35_000, 1_000), &audio)
        .await?;
    store
        .put_prompt(&info("closed", 8_000, 2_000), b"RIFF")
        .await?;
    assert_eq!(store.config_version().await?, 2);
    assert_eq!(
        store.prompts().await?,
        vec![info("closed", 8_000, 2_000), info("welcome", 35_000, 1_000)]
    );
    assert_eq!(
        store.prompt_wav("welcome").await?,
        Some((audio.clone(), 1_000))
    );

    // A new upload replaces the audio and the upload time.
    store
        .put_prompt(&info("welcome", 4, 3_000), b"next")
        .await?;
    assert_eq!(
        store.prompt_wav("welcome").await?,
        Some((b"next".to_vec(), 3_000))
    );
    assert_eq!(store.config_version().await?, 3);

    assert!(store.delete_prompt("closed").await?);
    assert!(!store.delete_prompt("closed").await?);
    assert_eq!(store.config_version().await?, 4);
    assert_eq!(store.prompts().await?, vec![info("welcome", 4, 3_000)]);
    Ok(())
}
