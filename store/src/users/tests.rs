//! Tests for users, sessions and API tokens, on both flavours.

use crate::testdb::flavour_tests;
use crate::{ApiToken, Store, StoreError, User, UserRole};

flavour_tests!(
    user_lifecycle,
    sessions_expire_and_die_with_their_user,
    api_tokens_are_unique_by_name,
);

fn user(name: &str, role: UserRole) -> User {
    User {
        name: name.to_owned(),
        password_hash: format!("$argon2id$fake${name}"),
        role,
        device: None,
        created_at_ms: 1_000,
    }
}

async fn user_lifecycle(store: &Store) -> Result<(), StoreError> {
    assert_eq!(store.user("alice").await?, None);
    store
        .upsert_user(&user("bob", UserRole::Supervisor))
        .await?;
    store.upsert_user(&user("alice", UserRole::Admin)).await?;
    let names: Vec<String> = store.users().await?.into_iter().map(|u| u.name).collect();
    assert_eq!(names, ["alice", "bob"]);
    let mut changed = user("bob", UserRole::Admin);
    changed.device = Some("2001".to_owned());
    changed.created_at_ms = 9_999;
    store.upsert_user(&changed).await?;
    let bob = store.user("bob").await?.expect("bob exists");
    assert_eq!(bob.role, UserRole::Admin);
    assert_eq!(bob.device.as_deref(), Some("2001"));
    assert_eq!(bob.created_at_ms, 1_000, "creation time is kept");
    assert!(
        !format!("{bob:?}").contains("argon2"),
        "Debug hides the hash"
    );
    assert!(store.delete_user("bob").await?);
    assert!(!store.delete_user("bob").await?);
    Ok(())
}

async fn sessions_expire_and_die_with_their_user(store: &Store) -> Result<(), StoreError> {
    store
        .upsert_user(&user("sam", UserRole::Supervisor))
        .await?;
    store
        .insert_session("h1", "sam", "c1", 1_000, 5_000)
        .await?;
    store
        .insert_session("h2", "sam", "c2", 1_000, 2_000)
        .await?;
    let s = store.session("h1", 1_500).await?.expect("live session");
    assert_eq!(
        (s.user.as_str(), s.role, s.csrf.as_str()),
        ("sam", UserRole::Supervisor, "c1")
    );
    assert_eq!(
        store.session("h2", 2_000).await?,
        None,
        "expired at its deadline"
    );
    assert_eq!(store.session("nope", 1_500).await?, None);
    assert_eq!(store.purge_sessions(2_000).await?, 1);
    // A password change (upsert) ends every session of the user.
    store
        .upsert_user(&user("sam", UserRole::Supervisor))
        .await?;
    assert_eq!(store.session("h1", 1_500).await?, None);
    store
        .insert_session("h3", "sam", "c3", 1_000, 5_000)
        .await?;
    assert!(store.delete_session("h3").await?);
    assert!(!store.delete_session("h3").await?);
    store
        .insert_session("h4", "sam", "c4", 1_000, 5_000)
        .await?;
    assert!(store.delete_user("sam").await?);
    assert_eq!(store.session("h4", 1_500).await?, None);
    Ok(())
}

async fn api_tokens_are_unique_by_name(store: &Store) -> Result<(), StoreError> {
    let token = ApiToken {
        id: "abc".to_owned(),
        secret_hash: "f00d".to_owned(),
        name: "crm".to_owned(),
        created_at_ms: 7,
    };
    store.insert_api_token(&token).await?;
    let again = ApiToken {
        id: "def".to_owned(),
        ..token.clone()
    };
    assert!(store.insert_api_token(&again).await.is_err(), "name taken");
    assert_eq!(store.api_token("abc").await?, Some(token.clone()));
    assert!(
        !format!("{token:?}").contains("f00d"),
        "Debug hides the hash"
    );
    assert_eq!(store.api_tokens().await?.len(), 1);
    assert!(store.delete_api_token("crm").await?);
    assert_eq!(store.api_token("abc").await?, None);
    Ok(())
}
