//! The memcached backend's own paths against the real memcached (127.0.0.1:11211 or
//! `CALLFLEET_TEST_MEMCACHED`): renew and release in one round trip from the remembered CAS
//! value, and the fallback to reading when what is remembered is stale. (The lease rules seen
//! from outside are in `tests/memcached.rs`.)

use std::time::Duration;

use super::*;
use crate::request::MAX_KEY_LEN;

fn backend() -> MemcachedBackend {
    let addr =
        std::env::var("CALLFLEET_TEST_MEMCACHED").unwrap_or_else(|_| "127.0.0.1:11211".into());
    MemcachedBackend::new(addr)
}

fn key(k: &str) -> LockKey {
    LockKey::parse(&format!("t{:016x}:{k}", rand::random::<u64>())).unwrap()
}

fn owner(o: &str) -> Owner {
    Owner::parse(o).unwrap()
}

fn ttl(ms: u64) -> Ttl {
    Ttl::from_ms(ms).unwrap()
}

async fn granted(b: &MemcachedBackend, k: &LockKey, o: &str, ms: u64) -> u64 {
    match b.acquire(k, &owner(o), ttl(ms)).await.unwrap() {
        AcquireOutcome::Granted(g) => g.token,
        other => panic!("{o} wanted {k}, got {other:?}"),
    }
}

/// `mg` commands `b` has sent for `k` so far.
async fn reads(b: &MemcachedBackend, k: &LockKey) -> usize {
    b.mc.conn(&item_key(k)).await.unwrap().reads()
}

#[tokio::test]
async fn an_uncontended_lease_is_never_read() {
    let b = backend();
    let (k, a) = (key("agent:1"), owner("a"));
    let t = granted(&b, &k, "a", 10_000).await;
    let before = reads(&b, &k).await;
    assert!(matches!(
        b.renew(&k, &a, t, ttl(10_000)).await.unwrap(),
        RenewOutcome::Renewed(_)
    ));
    assert_eq!(
        b.release(&k, &a, t).await.unwrap(),
        ReleaseOutcome::Released
    );
    let t2 = granted(&b, &k, "a", 10_000).await;
    assert!(t2 > t);
    assert_eq!(
        b.release(&k, &a, t2).await.unwrap(),
        ReleaseOutcome::Released
    );
    assert_eq!(
        reads(&b, &k).await,
        before,
        "acquire, renew and release wrote blind"
    );
    assert_eq!(
        b.written.get(&item_key(&k), "a", t2),
        None,
        "forgotten on release"
    );
}

/// What another lockd (or time) did to the lease of `a` between its acquire and its next
/// request through the first lockd.
#[derive(Debug, Clone, Copy)]
enum Meanwhile {
    Nothing,
    RenewedElsewhere,
    ReleasedAndRetaken,
    Expired,
    ExpiredAndRetaken,
    /// The remembered CAS value came from a connection since replaced (as after a memcached
    /// restart); nothing else changed.
    Reconnected,
}

/// Two lockd sharing memcached; `a` took a key through the first, then `meanwhile` happened.
async fn lease_of_a(meanwhile: Meanwhile) -> (MemcachedBackend, MemcachedBackend, LockKey, u64) {
    use Meanwhile::*;
    let (first, other) = (backend(), backend());
    let (k, a) = (key("agent:1"), owner("a"));
    let short = matches!(meanwhile, Expired | ExpiredAndRetaken);
    let t = granted(&first, &k, "a", if short { 50 } else { 10_000 }).await;
    match meanwhile {
        Nothing => {}
        RenewedElsewhere => {
            let renewed = other.renew(&k, &a, t, ttl(10_000)).await.unwrap();
            assert!(matches!(renewed, RenewOutcome::Renewed(_)));
        }
        ReleasedAndRetaken => {
            assert_eq!(
                other.release(&k, &a, t).await.unwrap(),
                ReleaseOutcome::Released
            );
            granted(&other, &k, "b", 10_000).await;
        }
        Expired => tokio::time::sleep(Duration::from_millis(60)).await,
        ExpiredAndRetaken => {
            tokio::time::sleep(Duration::from_millis(60)).await;
            granted(&other, &k, "b", 10_000).await;
        }
        Reconnected => {
            let item = item_key(&k);
            let mut known = first.written.get(&item, "a", t).unwrap();
            known.cas = known.cas.on_another_connection();
            first.written.remember(&item, known, wall_ms());
        }
    }
    (first, other, k, t)
}

/// Whoever holds `k` now, as an acquire by a third owner finds out.
async fn holder(b: &MemcachedBackend, k: &LockKey) -> Option<String> {
    match b.acquire(k, &owner("c"), ttl(10_000)).await.unwrap() {
        AcquireOutcome::Held { holder } => Some(holder),
        AcquireOutcome::Granted(_) => None,
    }
}

#[tokio::test]
async fn a_release_falls_back_to_reading_when_what_it_remembers_is_stale() {
    use Meanwhile::*;
    let b = || Some("b".to_owned());
    // (meanwhile, outcome, reads it took, who holds the key after)
    let cases = [
        (Nothing, ReleaseOutcome::Released, 0, None),
        (RenewedElsewhere, ReleaseOutcome::Released, 1, None),
        (
            ReleasedAndRetaken,
            ReleaseOutcome::Lost { holder: b() },
            1,
            b(),
        ),
        (Expired, ReleaseOutcome::Lost { holder: None }, 0, None),
        (
            ExpiredAndRetaken,
            ReleaseOutcome::Lost { holder: b() },
            1,
            b(),
        ),
        (Reconnected, ReleaseOutcome::Released, 1, None),
    ];
    for (meanwhile, want, want_reads, after) in cases {
        let (first, _other, k, t) = lease_of_a(meanwhile).await;
        let before = reads(&first, &k).await;
        assert_eq!(
            first.release(&k, &owner("a"), t).await.unwrap(),
            want,
            "{meanwhile:?}"
        );
        assert_eq!(
            reads(&first, &k).await - before,
            want_reads,
            "{meanwhile:?}"
        );
        assert_eq!(holder(&first, &k).await, after, "{meanwhile:?}");
    }
}

#[tokio::test]
async fn a_renew_falls_back_to_reading_when_what_it_remembers_is_stale() {
    use Meanwhile::*;
    let b = || Some("b".to_owned());
    // (meanwhile, lost to (None: renewed), reads it took)
    let cases = [
        (Nothing, None, 0),
        (RenewedElsewhere, None, 1),
        (ReleasedAndRetaken, Some(b()), 1),
        (Expired, Some(None), 1),
        (ExpiredAndRetaken, Some(b()), 1),
        (Reconnected, None, 1),
    ];
    for (meanwhile, lost, want_reads) in cases {
        let (first, _other, k, t) = lease_of_a(meanwhile).await;
        let a = owner("a");
        let before = reads(&first, &k).await;
        match (first.renew(&k, &a, t, ttl(10_000)).await.unwrap(), &lost) {
            (RenewOutcome::Renewed(g), None) => assert_eq!(g.token, t),
            (RenewOutcome::Lost { holder }, Some(want)) => assert_eq!(&holder, want),
            (got, _) => panic!("{meanwhile:?}: {got:?}, wanted lost to {lost:?}"),
        }
        assert_eq!(
            reads(&first, &k).await - before,
            want_reads,
            "{meanwhile:?}"
        );
        if lost.is_none() {
            // Renewed, it is remembered afresh: the release needs no read.
            let before = reads(&first, &k).await;
            assert_eq!(
                first.release(&k, &a, t).await.unwrap(),
                ReleaseOutcome::Released
            );
            assert_eq!(reads(&first, &k).await, before, "{meanwhile:?}");
        }
    }
}

#[tokio::test]
async fn tokens_drawn_by_failed_acquires_are_skipped() {
    let b = backend();
    let k = key("agent:1");
    let t1 = granted(&b, &k, "a", 10_000).await;
    for _ in 0..3 {
        let held = b.acquire(&k, &owner("b"), ttl(1000)).await.unwrap();
        assert_eq!(held, AcquireOutcome::Held { holder: "a".into() });
    }
    b.release(&k, &owner("a"), t1).await.unwrap();
    let t2 = granted(&b, &k, "b", 10_000).await;
    // Three draws were wasted by the failed acquires (more if other tests drew meanwhile).
    assert!(t2 >= t1 + 4, "{t1} then {t2}");
}

#[test]
fn item_lifetimes_cover_the_lease() {
    let cases = [
        (1, 2),
        (999, 2),
        (1000, 2),
        (1001, 3),
        (1500, 3),
        (3_600_000, 3601),
    ];
    for (ttl_ms, secs) in cases {
        assert_eq!(exptime(Ttl::from_ms(ttl_ms).unwrap()), secs, "{ttl_ms} ms");
    }
}

#[test]
fn the_longest_key_fits_memcached() {
    let key = LockKey::parse(&"k".repeat(MAX_KEY_LEN)).unwrap();
    assert!(item_key(&key).len() <= 250);
    // No lock key maps onto the counter.
    assert!(!COUNTER.starts_with(PREFIX));
}
