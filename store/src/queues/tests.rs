//! Tests for queues, members and VIP callers, on both flavours.

use crate::testdb::flavour_tests;
use crate::{Agent, Fallback, Member, Queue, Store, StoreError, Strategy, VipCaller};

flavour_tests!(
    queue_lifecycle_keeps_rr_last,
    queue_values_are_checked,
    members_lifecycle,
    member_rules_are_checked,
    vip_callers,
);

fn queue(name: &str, strategy: &str) -> Queue {
    Queue {
        name: name.to_owned(),
        strategy: strategy.parse().expect("a ring strategy"),
        ring_timeout_ms: 15_000,
        max_wait_ms: 300_000,
        announce_interval_ms: 30_000,
        moh_class: "default".to_owned(),
        wrapup_ms: 5_000,
        fallback: Fallback::Voicemail,
        fallback_target: Some("1001".to_owned()),
        rr_last: None,
        recording: Default::default(),
        recording_prompt: false,
    }
}

fn member(queue: &str, agent: &str, tier: i64, position: i64) -> Member {
    Member {
        queue: queue.to_owned(),
        agent: agent.to_owned(),
        tier,
        vip_allowed: false,
        weight: 1,
        position,
    }
}

async fn agents(store: &Store, exts: &[&str]) -> Result<(), StoreError> {
    for ext in exts {
        store.upsert_agent(&Agent::new(ext, ext, "h", 0)).await?;
    }
    Ok(())
}

async fn queue_lifecycle_keeps_rr_last(store: &Store) -> Result<(), StoreError> {
    assert_eq!(store.queue("sales").await?, None);
    let sales = queue("sales", "rrmemory");
    let support = Queue {
        fallback: Fallback::Hangup,
        fallback_target: None,
        ..queue("support", "ringall")
    };
    store.upsert_queue(&support).await?;
    store.upsert_queue(&sales).await?;
    assert_eq!(store.queues().await?, vec![sales.clone(), support]);
    assert_eq!(store.config_version().await?, 2);

    // Round-robin memory is runtime: no version bump, kept by updates.
    assert!(store.set_rr_last("sales", "1002").await?);
    assert!(!store.set_rr_last("nobody", "1002").await?);
    assert_eq!(store.config_version().await?, 2);
    let update = Queue {
        strategy: Strategy::Linear,
        wrapup_ms: 0,
        rr_last: Some("ignored".to_owned()),
        ..sales.clone()
    };
    store.upsert_queue(&update).await?;
    let want = Queue {
        rr_last: Some("1002".to_owned()),
        ..update
    };
    assert_eq!(store.queue("sales").await?, Some(want));
    assert_eq!(store.config_version().await?, 3);

    assert!(store.delete_queue("sales").await?);
    assert!(!store.delete_queue("sales").await?);
    assert_eq!(store.queue("sales").await?, None);
    assert_eq!(store.config_version().await?, 4);
    Ok(())
}

async fn queue_values_are_checked(store: &Store) -> Result<(), StoreError> {
    // Every strategy and fallback is stored and read back as itself.
    for s in Strategy::ALL {
        store.upsert_queue(&queue(s.as_str(), s.as_str())).await?;
        assert_eq!(store.queue(s.as_str()).await?.map(|q| q.strategy), Some(s));
    }
    for fallback in Fallback::ALL {
        let q = Queue {
            fallback,
            ..queue("fb", "ringall")
        };
        store.upsert_queue(&q).await?;
    }
    let version = store.config_version().await?;
    let bad = [
        Queue {
            ring_timeout_ms: -1,
            ..queue("q", "ringall")
        },
        Queue {
            max_wait_ms: -1,
            ..queue("q", "ringall")
        },
    ];
    for q in bad {
        let res = store.upsert_queue(&q).await;
        assert!(
            matches!(res, Err(StoreError::InvalidValue { .. })),
            "{q:?}: {res:?}"
        );
    }
    assert_eq!(store.queue("q").await?, None);
    assert_eq!(store.config_version().await?, version, "failed writes");
    Ok(())
}

async fn members_lifecycle(store: &Store) -> Result<(), StoreError> {
    agents(store, &["1001", "1002", "1003"]).await?;
    store.upsert_queue(&queue("sales", "linear")).await?;
    store.upsert_queue(&queue("support", "ringall")).await?;
    let s3 = member("sales", "1003", 0, 1);
    let s1 = Member {
        vip_allowed: true,
        weight: 5,
        ..member("sales", "1001", 1, 2)
    };
    let s2 = member("sales", "1002", 0, 1);
    let u1 = member("support", "1001", 0, 0);
    for m in [&u1, &s1, &s3, &s2] {
        store.upsert_member(m).await?;
    }
    let v = store.config_version().await?;
    assert_eq!(v, 5 + 4);
    // By queue, position, agent.
    let sales = vec![s2.clone(), s3.clone(), s1.clone()];
    assert_eq!(store.members(Some("sales")).await?, sales);
    let mut all = sales;
    all.push(u1.clone());
    assert_eq!(store.members(None).await?, all);
    assert_eq!(store.members(Some("nobody")).await?, vec![]);

    // Replacing and re-tiering.
    let s2b = Member {
        position: 9,
        ..s2.clone()
    };
    store.upsert_member(&s2b).await?;
    assert!(store.set_tier("sales", "1002", 3).await?);
    assert!(!store.set_tier("sales", "9999", 3).await?);
    assert!(!store.set_tier("support", "1002", 3).await?);
    assert_eq!(store.config_version().await?, v + 2);
    let s2c = Member { tier: 3, ..s2b };
    assert_eq!(
        store.members(Some("sales")).await?,
        vec![s3.clone(), s1, s2c]
    );

    // Deleting a member, an agent, a queue.
    assert!(store.delete_member("sales", "1001").await?);
    assert!(!store.delete_member("sales", "1001").await?);
    assert!(store.delete_agent("1003").await?);
    assert!(store.delete_queue("support").await?);
    assert_eq!(store.config_version().await?, v + 5);
    assert_eq!(
        store.members(None).await?,
        vec![Member {
            tier: 3,
            position: 9,
            ..s2
        }]
    );
    Ok(())
}

async fn member_rules_are_checked(store: &Store) -> Result<(), StoreError> {
    agents(store, &["1001"]).await?;
    store.upsert_queue(&queue("sales", "wrandom")).await?;
    let version = store.config_version().await?;
    let missing = [
        member("nobody", "1001", 0, 0),
        member("sales", "9999", 0, 0),
    ];
    for m in missing {
        let res = store.upsert_member(&m).await;
        assert!(
            matches!(res, Err(StoreError::MissingReference { .. })),
            "{m:?}: {res:?}"
        );
    }
    let invalid = [
        member("sales", "1001", -1, 0),
        Member {
            weight: -1,
            ..member("sales", "1001", 0, 0)
        },
    ];
    for m in invalid {
        let res = store.upsert_member(&m).await;
        assert!(
            matches!(res, Err(StoreError::InvalidValue { .. })),
            "{m:?}: {res:?}"
        );
    }
    assert_eq!(store.members(None).await?, vec![]);
    assert_eq!(store.config_version().await?, version);
    Ok(())
}

async fn vip_callers(store: &Store) -> Result<(), StoreError> {
    store.upsert_queue(&queue("sales", "ringall")).await?;
    store.upsert_queue(&queue("support", "ringall")).await?;
    let v = store.config_version().await?;
    let res = store.add_vip("+3312345", "nobody").await;
    assert!(
        matches!(res, Err(StoreError::MissingReference { .. })),
        "{res:?}"
    );

    assert!(store.add_vip("+3312345", "sales").await?);
    assert!(!store.add_vip("+3312345", "sales").await?);
    assert!(store.add_vip("+3300000", "support").await?);
    assert!(store.add_vip("+3399999", "sales").await?);
    assert_eq!(store.config_version().await?, v + 3);

    // (number, queue, vip?)
    let cases = [
        ("+3312345", "sales", true),
        ("+3312345", "support", false),
        ("+3300000", "support", true),
        ("+33", "sales", false),
    ];
    for (number, queue, want) in cases {
        assert_eq!(store.is_vip(number, queue).await?, want, "{number} {queue}");
    }
    let vip = |number: &str, queue: &str| VipCaller {
        number: number.to_owned(),
        queue: queue.to_owned(),
    };
    assert_eq!(
        store.vips().await?,
        vec![
            vip("+3312345", "sales"),
            vip("+3399999", "sales"),
            vip("+3300000", "support"),
        ]
    );

    assert!(store.remove_vip("+3312345", "sales").await?);
    assert!(!store.remove_vip("+3312345", "sales").await?);
    assert!(!store.is_vip("+3312345", "sales").await?);
    // Deleting a queue deletes its VIP callers.
    assert!(store.delete_queue("support").await?);
    assert_eq!(store.vips().await?, vec![vip("+3399999", "sales")]);
    assert_eq!(store.config_version().await?, v + 5);
    Ok(())
}
