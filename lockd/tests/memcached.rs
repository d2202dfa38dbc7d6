//! The memcached backend against a real memcached (127.0.0.1:11211, or
//! `CALLFLEET_TEST_MEMCACHED`): lease rules, millisecond expiry, token order across lockd
//! instances and restarts, atomic acquire under a crowd, the HTTP API, and recovery after a
//! memcached restart.

// Test code: a panic is a failed test (clippy.toml allows unwrap in #[test] functions; this
// extends it to the helpers around them).
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use callfleet_lockd::{
    AcquireOutcome, Backend, LockClient, LockError, LockKey, Owner, ReleaseOutcome, RenewOutcome,
    Ttl,
};
use support::{http, memcached_url, prefix, Lockd, PrivateMemcached};

fn key(prefix: &str, k: &str) -> LockKey {
    LockKey::parse(&format!("{prefix}:{k}")).unwrap()
}
fn owner(o: &str) -> Owner {
    Owner::parse(o).unwrap()
}
fn ttl(ms: u64) -> Ttl {
    Ttl::from_ms(ms).unwrap()
}
async fn granted(b: &Backend, k: &LockKey, o: &str, ms: u64) -> u64 {
    match b.acquire(k, &owner(o), ttl(ms)).await.unwrap() {
        AcquireOutcome::Granted(g) => {
            assert!(g.expires_in <= Duration::from_millis(ms), "{g:?}");
            assert!(g.expires_in > Duration::from_millis(ms) / 2, "{g:?}");
            g.token
        }
        other => panic!("{o} wanted {k}, got {other:?}"),
    }
}

#[tokio::test]
async fn leases_follow_owner_and_token() {
    let b = Backend::from_url(&memcached_url()).unwrap();
    let p = prefix();
    let k = key(&p, "agent:1001");
    let (a, other) = (owner("main-a"), owner("main-b"));
    let t = granted(&b, &k, "main-a", 10_000).await;
    let held = AcquireOutcome::Held {
        holder: "main-a".into(),
    };
    assert_eq!(b.acquire(&k, &other, ttl(10_000)).await.unwrap(), held);
    assert_eq!(b.acquire(&k, &a, ttl(10_000)).await.unwrap(), held);

    let lost = RenewOutcome::Lost {
        holder: Some("main-a".into()),
    };
    assert_eq!(b.renew(&k, &a, t + 1, ttl(5000)).await.unwrap(), lost);
    assert_eq!(b.renew(&k, &other, t, ttl(5000)).await.unwrap(), lost);
    match b.renew(&k, &a, t, ttl(20_000)).await.unwrap() {
        RenewOutcome::Renewed(g) => {
            assert_eq!((g.token, g.expires_in), (t, Duration::from_secs(20)))
        }
        other => panic!("renew: {other:?}"),
    }

    let lost = ReleaseOutcome::Lost {
        holder: Some("main-a".into()),
    };
    assert_eq!(b.release(&k, &a, t + 1).await.unwrap(), lost);
    assert_eq!(b.release(&k, &other, t).await.unwrap(), lost);
    assert_eq!(
        b.release(&k, &a, t).await.unwrap(),
        ReleaseOutcome::Released
    );
    let gone = ReleaseOutcome::Lost { holder: None };
    assert_eq!(b.release(&k, &a, t).await.unwrap(), gone);
    assert_eq!(
        b.renew(&k, &a, t, ttl(5000)).await.unwrap(),
        RenewOutcome::Lost { holder: None }
    );

    let t2 = granted(&b, &k, "main-b", 10_000).await;
    assert!(t2 > t, "{t2} after {t}");
    // The old holder's token cannot touch the new lease.
    let lost = ReleaseOutcome::Lost {
        holder: Some("main-b".into()),
    };
    assert_eq!(b.release(&k, &a, t).await.unwrap(), lost);
    assert_eq!(
        b.release(&k, &other, t2).await.unwrap(),
        ReleaseOutcome::Released
    );
}

#[tokio::test]
async fn a_lease_ends_at_its_ttl_in_milliseconds() {
    let b = Backend::from_url(&memcached_url()).unwrap();
    let k = key(&prefix(), "agent:1");
    let taken = Instant::now();
    let t = granted(&b, &k, "a", 1500).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let held = AcquireOutcome::Held { holder: "a".into() };
    assert_eq!(b.acquire(&k, &owner("b"), ttl(1500)).await.unwrap(), held);
    let t2 = loop {
        if let AcquireOutcome::Granted(g) = b.acquire(&k, &owner("b"), ttl(1500)).await.unwrap() {
            break g.token;
        }
        assert!(
            taken.elapsed() < Duration::from_secs(4),
            "the lease never ended"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let ended = taken.elapsed();
    // memcached keeps the item 3 s (1.5 s rounded up, plus a second): only the expiry in
    // the record can free the key this early.
    assert!(
        ended >= Duration::from_millis(1500),
        "freed after {ended:?}"
    );
    assert!(
        ended < Duration::from_millis(2300),
        "freed only after {ended:?}"
    );
    assert!(t2 > t);
    // The first holder's late renew and release find it lost.
    let lost = RenewOutcome::Lost {
        holder: Some("b".into()),
    };
    assert_eq!(b.renew(&k, &owner("a"), t, ttl(1500)).await.unwrap(), lost);
}

#[tokio::test]
async fn tokens_increase_across_lockd_instances_and_restarts() {
    let url = memcached_url();
    let k = key(&prefix(), "agent:1");
    let mut lockds = [
        Backend::from_url(&url).unwrap(),
        Backend::from_url(&url).unwrap(),
    ];
    let mut last = 0;
    for round in 0..30 {
        if round % 10 == 9 {
            // lockd 0 restarts: a new backend with its own connections.
            lockds[0] = Backend::from_url(&url).unwrap();
        }
        let b = &lockds[round % 2];
        let t = granted(b, &k, "a", 5000).await;
        assert!(t > last, "round {round}: token {t} after {last}");
        last = t;
        let released = lockds[(round + 1) % 2]
            .release(&k, &owner("a"), t)
            .await
            .unwrap();
        assert_eq!(released, ReleaseOutcome::Released);
    }
}

#[tokio::test]
async fn one_winner_among_concurrent_acquirers() {
    let url = memcached_url();
    let p = prefix();
    for round in 0..10 {
        let k = key(&p, &format!("agent:{round}"));
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let (b, k) = (Backend::from_url(&url).unwrap(), k.clone());
                tokio::spawn(
                    async move { b.acquire(&k, &owner(&format!("n{i}")), ttl(10_000)).await },
                )
            })
            .collect();
        let mut winners = Vec::new();
        let mut holders = Vec::new();
        for (i, task) in tasks.into_iter().enumerate() {
            match task.await.unwrap().unwrap() {
                AcquireOutcome::Granted(_) => winners.push(format!("n{i}")),
                AcquireOutcome::Held { holder } => holders.push(holder),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        assert!(
            holders.iter().all(|h| *h == winners[0]),
            "round {round}: {holders:?} vs {winners:?}"
        );
    }
}

#[tokio::test]
async fn the_http_api_over_memcached() {
    let lockd = Lockd::start("127.0.0.51", Backend::from_url(&memcached_url()).unwrap());
    let client = LockClient::new([&lockd.url], support::key()).unwrap();
    let k = format!("{}:agent:1", prefix());
    let lease = client
        .acquire(&k, "main-a", Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert!(lease.expires_at() <= tokio::time::Instant::now() + Duration::from_secs(5));
    let held = client
        .try_acquire(&k, "main-b", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        held,
        callfleet_lockd::Acquire::Held {
            holder: Some("main-a".into())
        }
    );
    assert!(client.renew(&lease, Duration::from_secs(5)).await.unwrap());
    assert!(client.release(&lease).await.unwrap());
    assert!(!client.release(&lease).await.unwrap());
    assert!(!client.renew(&lease, Duration::from_secs(5)).await.unwrap());
    let health = http()
        .get(format!("{}/healthz", lockd.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn lockd_answers_503_while_memcached_is_down_and_recovers() {
    let mut mc = PrivateMemcached::start();
    let lockd = Lockd::start(
        "127.0.0.52",
        Backend::from_url(&format!("memcached://{}", mc.addr)).unwrap(),
    );
    let client =
        LockClient::with_timeout([&lockd.url], support::key(), Duration::from_secs(3)).unwrap();
    let health = format!("{}/healthz", lockd.url);
    let ttl = Duration::from_secs(5);
    let first = client.acquire("agent:1", "a", ttl).await.unwrap().unwrap();
    assert!(client.release(&first).await.unwrap());

    mc.stop();
    let down = client.acquire("agent:1", "a", ttl).await;
    match down {
        Err(LockError::Unavailable { last, .. }) => {
            assert!(last.to_string().contains("answered 503"), "{last}");
            assert!(last.to_string().contains(&mc.addr), "{last}");
        }
        other => panic!("acquire with memcached down: {other:?}"),
    }
    assert_eq!(http().get(&health).send().await.unwrap().status(), 503);

    // Back on the same address, empty: the pooled connections are dead and the token counter
    // is gone; lockd reconnects, and the new counter starts above the old tokens.
    mc.restart();
    let again = client.acquire("agent:1", "a", ttl).await.unwrap().unwrap();
    assert!(
        again.token() > first.token(),
        "{} after {}",
        again.token(),
        first.token()
    );
    assert_eq!(http().get(&health).send().await.unwrap().status(), 200);
}

/// memcached numbers CAS values afresh after a restart, so the CAS value lockd remembers for
/// a lease granted before it may name a new holder's record after it. The release of the old
/// lease must not delete that record.
#[tokio::test]
async fn a_cas_value_from_before_a_memcached_restart_is_never_used() {
    let mut mc = PrivateMemcached::start();
    let url = format!("memcached://{}", mc.addr);
    let (first, other) = (
        Backend::from_url(&url).unwrap(),
        Backend::from_url(&url).unwrap(),
    );
    let k = key(&prefix(), "agent:1");
    let old = granted(&first, &k, "a", 10_000).await;
    // Empty again, counting CAS values from the start: `other` now takes the key with the
    // same commands `first` sent, so its record is likely to get the very CAS value `first`
    // remembers for the old lease.
    mc.restart();
    let new = granted(&other, &k, "b", 10_000).await;
    assert!(new > old, "{new} after {old}");
    let lost = ReleaseOutcome::Lost {
        holder: Some("b".into()),
    };
    assert_eq!(first.release(&k, &owner("a"), old).await.unwrap(), lost);
    let renewed = first
        .renew(&k, &owner("a"), old, ttl(10_000))
        .await
        .unwrap();
    assert_eq!(
        renewed,
        RenewOutcome::Lost {
            holder: Some("b".into())
        }
    );
    // b's lease is intact.
    let held = AcquireOutcome::Held { holder: "b".into() };
    assert_eq!(
        first.acquire(&k, &owner("c"), ttl(1000)).await.unwrap(),
        held
    );
    assert_eq!(
        other.release(&k, &owner("b"), new).await.unwrap(),
        ReleaseOutcome::Released
    );
}
