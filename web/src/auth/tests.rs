//! Unit tests of the pieces the guard is made of.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue};
use base64::Engine as _;

use super::*;

#[test]
fn passwords_hash_with_salt_and_verify() {
    let a = hash_password("correct horse").expect("hash");
    let b = hash_password("correct horse").expect("hash");
    assert!(a.starts_with("$argon2id$"), "{a}");
    assert_ne!(a, b, "random salt");
    assert!(verify_password("correct horse", &a));
    assert!(!verify_password("correct horsE", &a));
    assert!(!verify_password("correct horse", "not a hash"));
    assert!(!verify_password("", ""));
}

#[test]
fn tokens_are_random_and_stored_hashed() {
    let (row, token) = new_api_token("crm", 5);
    let (row2, token2) = new_api_token("crm", 5);
    assert_ne!(token, token2);
    assert_ne!(row.id, row2.id);
    let rest = token.strip_prefix(TOKEN_PREFIX).expect("prefix");
    let (id, secret) = rest.split_once('_').expect("id_secret");
    assert_eq!(id, row.id);
    assert_eq!(secret.len(), 48);
    assert_eq!(row.secret_hash, sha256_hex(secret.as_bytes()));
    assert!(!row.secret_hash.contains(secret));
}

#[test]
fn tokens_are_read_from_bearer_and_basic() {
    let mut h = HeaderMap::new();
    assert_eq!(presented_token(&h), None);
    h.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer cft_a_b"),
    );
    assert_eq!(presented_token(&h).as_deref(), Some("cft_a_b"));
    let basic = base64::engine::general_purpose::STANDARD.encode("crm:cft_c_d");
    h.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Basic {basic}")).expect("header"),
    );
    assert_eq!(presented_token(&h).as_deref(), Some("cft_c_d"));
    for bad in ["Basic !!!", "Basic", "Digest x", "bearer"] {
        h.insert(header::AUTHORIZATION, HeaderValue::from_static(bad));
        assert_eq!(presented_token(&h), None, "{bad}");
    }
}

#[test]
fn cookies_are_found_by_exact_name() {
    let mut h = HeaderMap::new();
    h.append(
        header::COOKIE,
        HeaderValue::from_static("a=1; xcf_session=no"),
    );
    h.append(
        header::COOKIE,
        HeaderValue::from_static("cf_session=yes; b=2"),
    );
    assert_eq!(cookie(&h, SESSION_COOKIE), Some("yes"));
    assert_eq!(cookie(&h, "b"), Some("2"));
    assert_eq!(cookie(&h, "c"), None);
}

#[test]
fn principals_follow_the_policy() {
    let user = |role| Principal::User {
        name: "u".into(),
        role,
        device: None,
        csrf: "c".into(),
    };
    let supervisor = user(UserRole::Supervisor);
    let admin = user(UserRole::Admin);
    let token = Principal::Token { name: "crm".into() };
    let node = Principal::Node(NodeProof::Signed);
    let operator = Principal::Node(NodeProof::OperatorToken);
    let loopback = Principal::Node(NodeProof::Loopback);
    assert!(supervisor.allows(Access::Supervise) && !supervisor.allows(Access::Tune));
    assert!(!supervisor.allows(Access::AdminPage) && !supervisor.allows(Access::Admin));
    assert!(admin.allows(Access::AdminPage) && !admin.allows(Access::Internal));
    assert!(token.allows(Access::Tune) && !token.allows(Access::Supervise));
    assert!(!token.allows(Access::Page) && !token.allows(Access::Admin));
    assert!(node.allows(Access::Internal) && !node.allows(Access::Page));
    assert!(operator.allows(Access::Admin) && !operator.allows(Access::Internal));
    assert!(!operator.allows(Access::Page));
    assert!(loopback.allows(Access::Read));
    for access in [
        Access::Operate,
        Access::Supervise,
        Access::Tune,
        Access::Admin,
        Access::Internal,
        Access::Page,
    ] {
        assert!(
            !loopback.allows(access),
            "a program on this host without credentials: {access:?}"
        );
    }
    assert_eq!(
        (node.actor(), operator.actor()),
        ("node".into(), "operator".into())
    );
    assert_eq!(token.actor(), "token:crm");
    assert_eq!(supervisor.csrf(), Some("c"));
    assert_eq!(node.csrf(), None);
}

#[test]
fn the_limiter_counts_by_address_and_by_name() {
    let limiter = LoginLimiter::new(Duration::from_secs(60), 3, 2);
    let t0 = Instant::now();
    let a = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    let b = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)));
    assert!(limiter.begin(a, "sam", t0).is_ok());
    assert!(limiter.begin(a, "sam", t0).is_ok());
    // Two attempts for the name, counted before any password was checked: from anywhere,
    // "sam" must wait.
    assert!(limiter.begin(b, "sam", t0).is_err());
    assert!(limiter.begin(b, "ada", t0).is_ok());
    assert!(limiter.begin(a, "ada", t0).is_ok());
    // Three attempts from a: any name from a must wait.
    let wait = limiter
        .begin(a, "zoe", t0 + Duration::from_secs(20))
        .expect_err("address over its limit");
    assert_eq!(wait, Duration::from_secs(40));
    // A good login of sam from a: that attempt was no failure, and sam's are forgotten.
    limiter.succeeded(a, "sam");
    assert!(
        limiter.begin(b, "sam", t0).is_ok(),
        "a good login clears the name"
    );
    assert!(
        limiter.begin(a, "zoe", t0).is_ok(),
        "and its attempt is not a failure"
    );
    // An attempt taken back (the node was too busy to check it) does not count.
    limiter.undo(a, "zoe");
    assert!(limiter.begin(a, "eve", t0).is_ok());
    assert!(limiter.begin(a, "eve", t0).is_err());
}

#[test]
fn concurrent_guesses_are_counted_before_any_is_checked() {
    let limiter = LoginLimiter::new(Duration::from_secs(300), 20, 5);
    let t0 = Instant::now();
    // 40 guesses for one name arrive at once, from 40 addresses: 5 get a password check.
    let admitted = (0..40u8)
        .filter(|i| {
            let addr = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, *i)));
            limiter.begin(addr, "admin", t0).is_ok()
        })
        .count();
    assert_eq!(admitted, 5);
}

#[test]
fn the_limiter_window_resets() {
    let limiter = LoginLimiter::new(Duration::from_secs(60), 1, 1);
    let t0 = Instant::now();
    assert!(limiter.begin(None, "sam", t0).is_ok());
    assert!(limiter
        .begin(None, "sam", t0 + Duration::from_secs(59))
        .is_err());
    assert!(limiter
        .begin(None, "sam", t0 + Duration::from_secs(60))
        .is_ok());
}
