//! Tests for proxies: the check-in decision (pure), and the table on both flavours.

use std::net::IpAddr;

use super::{checkin_plan, received_prefix, Checkin, CheckinPlan, Proxy};
use crate::testdb::flavour_tests;
use crate::{Registration, Store, StoreError};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an IP address")
}

#[test]
fn a_checkin_moves_only_on_a_new_address() {
    let cases: [(Option<&str>, &str, CheckinPlan); 6] = [
        (
            None,
            "198.51.100.7",
            CheckinPlan::Move {
                from: None,
                to: ip("198.51.100.7"),
            },
        ),
        (Some("198.51.100.7"), "198.51.100.7", CheckinPlan::Keep),
        (
            Some("198.51.100.7"),
            "203.0.113.9",
            CheckinPlan::Move {
                from: Some(ip("198.51.100.7")),
                to: ip("203.0.113.9"),
            },
        ),
        (Some(" 2001:db8::1 "), "2001:db8::1", CheckinPlan::Keep),
        (
            Some("2001:db8::1"),
            "198.51.100.7",
            CheckinPlan::Move {
                from: Some(ip("2001:db8::1")),
                to: ip("198.51.100.7"),
            },
        ),
        (
            Some("not an address"),
            "198.51.100.7",
            CheckinPlan::Move {
                from: None,
                to: ip("198.51.100.7"),
            },
        ),
    ];
    for (previous, source, want) in cases {
        assert_eq!(
            checkin_plan(previous, ip(source)),
            want,
            "{previous:?} {source}"
        );
    }
}

#[test]
fn received_prefixes_end_before_the_port() {
    assert_eq!(received_prefix(ip("127.0.71.41")), "127.0.71.41:");
    assert_eq!(received_prefix(ip("2001:db8::1")), "[2001:db8::1]:");
    // A prefix never matches a longer address: 10.0.0.1: is not the start of 10.0.0.11:...
    assert!(!"10.0.0.11:5060".starts_with(&received_prefix(ip("10.0.0.1"))));
}

flavour_tests!(proxies_add_list_remove, a_new_address_moves_its_bindings);

fn proxy(name: &str, hash: &str) -> Proxy {
    Proxy {
        name: name.to_owned(),
        token_hash: hash.to_owned(),
        address: None,
        last_checkin_ms: None,
        created_at_ms: 5,
    }
}

fn binding(aor: &str, received: &str) -> Registration {
    Registration {
        aor: aor.to_owned(),
        contact: format!("sip:{aor}@192.168.1.20:5060"),
        received: received.to_owned(),
        transport: "udp".to_owned(),
        expires_at_ms: 1_000_000,
        user_agent: "phone".to_owned(),
        node: "main-a".to_owned(),
        call_id: format!("reg-{aor}"),
        cseq: 1,
    }
}

async fn proxies_add_list_remove(store: &Store) -> Result<(), StoreError> {
    store.add_proxy(&proxy("office", "h1")).await?;
    store.add_proxy(&proxy("branch", "h2")).await?;
    for dup in [proxy("office", "h3"), proxy("other", "h1")] {
        assert!(matches!(
            store.add_proxy(&dup).await,
            Err(StoreError::Duplicate { .. })
        ));
    }
    assert_eq!(
        store.proxies().await?,
        vec![proxy("branch", "h2"), proxy("office", "h1")]
    );
    assert_eq!(store.proxy("office").await?, Some(proxy("office", "h1")));
    assert_eq!(store.proxy("nobody").await?, None);
    assert_eq!(store.config_version().await?, 0, "no address yet");
    assert!(store.remove_proxy("office").await?);
    assert!(!store.remove_proxy("office").await?);
    assert_eq!(store.config_version().await?, 1);
    assert_eq!(store.proxies().await?, vec![proxy("branch", "h2")]);
    Ok(())
}

async fn a_new_address_moves_its_bindings(store: &Store) -> Result<(), StoreError> {
    store.add_proxy(&proxy("office", "h1")).await?;
    assert_eq!(
        store.proxy_checkin("nobody", ip("10.0.0.1"), 10).await?,
        None
    );

    let first = store.proxy_checkin("office", ip("10.0.0.1"), 100).await?;
    assert_eq!(
        first,
        Some(Checkin {
            plan: CheckinPlan::Move {
                from: None,
                to: ip("10.0.0.1")
            },
            bindings_moved: 0
        })
    );
    assert_eq!(store.config_version().await?, 1);
    let row = store.proxy("office").await?.expect("the proxy");
    assert_eq!(row.address.as_deref(), Some("10.0.0.1"));
    assert_eq!(row.last_checkin_ms, Some(100));

    // Phones behind it, one phone elsewhere whose address merely starts the same way, and one
    // behind it over TCP (its connection does not survive the move).
    for (aor, received) in [
        ("1001", "10.0.0.1:5060"),
        ("1002", "10.0.0.1:40123"),
        ("1003", "10.0.0.11:5060"),
    ] {
        assert!(store.upsert_registration(&binding(aor, received)).await?);
    }
    let tcp = Registration {
        transport: "tcp".to_owned(),
        ..binding("1004", "10.0.0.1:50000")
    };
    assert!(store.upsert_registration(&tcp).await?);

    let same = store.proxy_checkin("office", ip("10.0.0.1"), 200).await?;
    assert_eq!(
        same,
        Some(Checkin {
            plan: CheckinPlan::Keep,
            bindings_moved: 0
        })
    );
    assert_eq!(store.config_version().await?, 1, "same address: no bump");
    let row = store.proxy("office").await?.expect("the proxy");
    assert_eq!(row.last_checkin_ms, Some(200));

    let moved = store.proxy_checkin("office", ip("10.0.0.2"), 300).await?;
    assert_eq!(
        moved,
        Some(Checkin {
            plan: CheckinPlan::Move {
                from: Some(ip("10.0.0.1")),
                to: ip("10.0.0.2")
            },
            bindings_moved: 2
        })
    );
    assert_eq!(store.config_version().await?, 2);
    let received = |aor: &'static str| async move {
        store
            .registrations(aor, 0)
            .await
            .map(|r| r.into_iter().map(|b| b.received).collect::<Vec<_>>())
    };
    assert_eq!(received("1001").await?, ["10.0.0.2:5060"]);
    assert_eq!(received("1002").await?, ["10.0.0.2:40123"]);
    assert_eq!(received("1003").await?, ["10.0.0.11:5060"], "not behind it");
    assert_eq!(received("1004").await?, ["10.0.0.1:50000"], "TCP stays");

    // To IPv6 and back.
    let v6 = store
        .proxy_checkin("office", ip("2001:db8::7"), 400)
        .await?;
    assert_eq!(v6.map(|c| c.bindings_moved), Some(2));
    assert_eq!(received("1001").await?, ["[2001:db8::7]:5060"]);
    let back = store.proxy_checkin("office", ip("10.0.0.2"), 500).await?;
    assert_eq!(back.map(|c| c.bindings_moved), Some(2));
    assert_eq!(received("1002").await?, ["10.0.0.2:40123"]);
    Ok(())
}
