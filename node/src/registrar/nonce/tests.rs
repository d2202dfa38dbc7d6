use super::*;

const TTL: Duration = Duration::from_secs(300);
const T0: i64 = 1_700_000_000_000;

fn mint(secret: &str, instance: u64) -> NonceMint {
    NonceMint::new(secret.as_bytes(), instance, TTL)
}

/// Flips one hex digit of `nonce` at `at`.
fn flip(nonce: &str, at: usize) -> String {
    let mut b = nonce.as_bytes().to_vec();
    b[at] = if b[at] == b'0' { b'1' } else { b'0' };
    String::from_utf8(b).expect("hex stays ASCII")
}

#[test]
fn nonces_are_checked_by_mac_age_and_issuer() {
    let a = mint("cluster", 1);
    let nonce = a.issue(T0, 42);
    assert_eq!(nonce.len(), 80);
    assert_ne!(nonce, a.issue(T0, 43), "the salt makes nonces differ");
    let other_node = mint("cluster", 2);
    let other_cluster = mint("other", 1);
    for (name, who, nonce, now, want) in [
        (
            "fresh",
            &a,
            nonce.clone(),
            T0,
            NonceState::Fresh { issued_ms: T0 },
        ),
        (
            "at ttl",
            &a,
            nonce.clone(),
            T0 + 300_000,
            NonceState::Fresh { issued_ms: T0 },
        ),
        (
            "past ttl",
            &a,
            nonce.clone(),
            T0 + 300_001,
            NonceState::Expired,
        ),
        (
            "from the future",
            &a,
            a.issue(T0 + 400_000, 1),
            T0,
            NonceState::Expired,
        ),
        (
            "other node",
            &other_node,
            nonce.clone(),
            T0 + 1,
            NonceState::Foreign,
        ),
        (
            "other node, expired",
            &other_node,
            nonce.clone(),
            T0 + 300_001,
            NonceState::Expired,
        ),
        (
            "other cluster",
            &other_cluster,
            nonce.clone(),
            T0,
            NonceState::Invalid,
        ),
        (
            "tampered time",
            &a,
            flip(&nonce, 15),
            T0,
            NonceState::Invalid,
        ),
        (
            "tampered salt",
            &a,
            flip(&nonce, 40),
            T0,
            NonceState::Invalid,
        ),
        (
            "tampered mac",
            &a,
            flip(&nonce, 79),
            T0,
            NonceState::Invalid,
        ),
        (
            "short",
            &a,
            nonce[..78].to_string(),
            T0,
            NonceState::Invalid,
        ),
        (
            "not hex",
            &a,
            nonce.replace('0', "x"),
            T0,
            NonceState::Invalid,
        ),
        ("empty", &a, String::new(), T0, NonceState::Invalid),
    ] {
        assert_eq!(who.check(&nonce, now), want, "{name}");
    }
}

#[test]
fn instance_ids_differ_by_node_and_start() {
    let a = NonceMint::instance_id("main-a", 1);
    assert_eq!(a, NonceMint::instance_id("main-a", 1));
    assert_ne!(a, NonceMint::instance_id("main-a", 2));
    assert_ne!(a, NonceMint::instance_id("main-b", 1));
}

#[test]
fn nonce_counts_must_increase_past_nine() {
    let mut rec = NcRecord::new(100);
    let mut advance = |user: &str, nc: u32| rec.advance("n1", user, T0, nc, T0, 300_000);
    for nc in 1..=12 {
        assert!(advance("1001", nc), "nc {nc:08x} follows {:08x}", nc - 1);
    }
    for (user, nc, want) in [
        ("1001", 12, false), // replay of the last request
        ("1001", 10, false), // replay of an older one
        ("1001", 14, true),  // a gap is fine (lost requests)
        ("1001", 13, false), // but never back
        ("1002", 1, true),   // counts are per user
        ("1002", 0, false),
    ] {
        assert_eq!(advance(user, nc), want, "{user} nc={nc}");
    }
}

#[test]
fn a_new_entry_needs_nc_above_zero() {
    let mut rec = NcRecord::new(10);
    assert!(!rec.advance("n", "u", T0, 0, T0, 300_000));
    assert!(rec.is_empty());
}

#[test]
fn eviction_raises_a_floor_instead_of_forgetting() {
    let mut rec = NcRecord::new(2);
    assert!(rec.advance("old", "u", T0, 1, T0, 300_000));
    assert!(rec.advance("mid", "u", T0 + 10, 1, T0 + 10, 300_000));
    assert!(rec.advance("new", "u", T0 + 20, 1, T0 + 20, 300_000));
    assert_eq!(rec.len(), 2, "bounded");
    // "old" was evicted: replaying it must not start over at nc=1.
    assert!(!rec.advance("old", "u", T0, 1, T0 + 30, 300_000));
    assert!(!rec.advance("old", "u", T0, 5, T0 + 30, 300_000));
    // Entries still held keep working, and newer nonces are welcome.
    assert!(rec.advance("mid", "u", T0 + 10, 2, T0 + 30, 300_000));
    assert!(rec.advance("newer", "u", T0 + 25, 1, T0 + 30, 300_000));
}

#[test]
fn expired_entries_are_dropped() {
    let mut rec = NcRecord::new(100);
    assert!(rec.advance("a", "u", T0, 1, T0, 1_000));
    assert!(rec.advance("b", "u", T0 + 500, 1, T0 + 500, 1_000));
    assert!(rec.advance("c", "u", T0 + 1_200, 1, T0 + 1_200, 1_000));
    assert_eq!(rec.len(), 2, "a expired");
}
