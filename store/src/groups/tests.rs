//! Tests for ring groups, on both flavours.

use callfleet_vocab::{DestKind, GroupStrategy, MemberKind};

use crate::testdb::flavour_tests;
use crate::{Destination, GroupMember, RingGroup, Store, StoreError};

flavour_tests!(group_and_members_are_written_together);

fn group(name: &str, strategy: GroupStrategy, members: &[&str]) -> RingGroup {
    RingGroup {
        name: name.to_owned(),
        strategy,
        ring_ms: 15_000,
        members: members.iter().map(|m| m.parse().expect("member")).collect(),
        no_answer: Destination::new(DestKind::Voicemail, "1001"),
        moh_class: String::new(),
        created_at_ms: 1_000,
    }
}

async fn group_and_members_are_written_together(store: &Store) -> Result<(), StoreError> {
    assert_eq!(store.groups().await?, vec![]);
    // Members keep their order (not sorted by kind or extension), and may repeat kinds.
    let sales = group(
        "sales",
        GroupStrategy::Ordered,
        &["device:2002", "agent:1001", "device:2001"],
    );
    assert_eq!(
        sales.members[1],
        GroupMember::new(MemberKind::Agent, "1001")
    );
    let mut office = group("office", GroupStrategy::All, &["agent:1002"]);
    office.moh_class = "jazz".into();
    store.upsert_group(&sales).await?;
    store.upsert_group(&office).await?;
    assert_eq!(store.config_version().await?, 2);
    assert_eq!(store.groups().await?, vec![office.clone(), sales]);

    // Saving replaces the members as a whole and keeps the creation time.
    let mut sales = group("sales", GroupStrategy::All, &["agent:1003"]);
    sales.created_at_ms = 9_000;
    sales.no_answer = Destination::new(DestKind::Message, "goodbye");
    store.upsert_group(&sales).await?;
    sales.created_at_ms = 1_000;
    assert_eq!(store.groups().await?, vec![office, sales.clone()]);
    assert_eq!(store.config_version().await?, 3);

    // Deleting a group deletes its members (and they do not show under a new one).
    assert!(store.delete_group("office").await?);
    assert!(!store.delete_group("office").await?);
    assert_eq!(store.config_version().await?, 4);
    store
        .upsert_group(&group("office", GroupStrategy::All, &[]))
        .await?;
    assert_eq!(
        store.groups().await?,
        vec![group("office", GroupStrategy::All, &[]), sales]
    );
    Ok(())
}
