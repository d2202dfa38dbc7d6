use std::time::Duration;

use super::*;
use crate::registrar::digest::{ha1, NonceCount};

const REALM: &str = "callfleet";
const URI: &str = "sip:127.0.0.11:5060";
const T0: i64 = 1_700_000_000_000;
const TTL: Duration = Duration::from_secs(300);

fn auth(instance: u64) -> Authenticator {
    let mint = NonceMint::new(b"cluster secret", instance, TTL);
    Authenticator::new(REALM.into(), Algorithm::ALL.to_vec(), mint)
}

/// The nonce of the first challenge `a` writes.
fn nonce_of(a: &Authenticator, now_ms: i64) -> String {
    let header = &a.challenges(now_ms, 7, false)[0];
    let start = header.find("nonce=\"").expect("nonce") + 7;
    header[start..start + 80].to_string()
}

/// What a phone sends: a `REGISTER` digest for `user`/`password` with count `nc`.
fn phone(alg: Algorithm, user: &str, password: &str, nonce: &str, nc: u32) -> Credentials {
    let mut c = Credentials {
        username: user.into(),
        realm: REALM.into(),
        nonce: nonce.into(),
        uri: URI.into(),
        response: String::new(),
        algorithm: alg,
        qop: Some("auth".into()),
        nc: Some(NonceCount::parse(&format!("{nc:08x}")).expect("nc")),
        cnonce: Some("0a4f113b".into()),
        opaque: None,
    };
    c.response = c.expected_response(&ha1(alg, user, REALM, password), "REGISTER");
    c
}

fn stored(alg: Algorithm) -> String {
    ha1(alg, "1001", REALM, "secret")
}

fn accept() -> Verdict {
    Verdict::Accept {
        username: "1001".into(),
    }
}

fn stale(why: ChallengeWhy) -> Verdict {
    Verdict::Challenge { stale: true, why }
}

#[test]
fn challenges_offer_sha256_then_md5_on_one_nonce() {
    let a = auth(1);
    let c = a.challenges(T0, 9, false);
    assert_eq!(c.len(), 2);
    assert!(c[0].contains("algorithm=SHA-256"), "{}", c[0]);
    assert!(c[1].contains("algorithm=MD5"), "{}", c[1]);
    assert!(c
        .iter()
        .all(|h| h.contains("qop=\"auth\"") && !h.contains("stale")));
    assert_eq!(c[0].replace("SHA-256", "MD5"), c[1], "same nonce");
    assert!(a.challenges(T0, 9, true)[0].ends_with(", stale=true"));
}

#[test]
fn one_nonce_serves_counts_past_nine_and_refuses_replays() {
    let a = auth(1);
    let nonce = nonce_of(&a, T0);
    let h = stored(Algorithm::Md5);
    let check = |nc: u32, at: i64| {
        let c = phone(Algorithm::Md5, "1001", "secret", &nonce, nc);
        a.verify(&c, Some(&h), "REGISTER", true, at)
    };
    for nc in 1..=9 {
        assert_eq!(check(nc, T0 + i64::from(nc)), accept(), "nc={nc:08x}");
    }
    assert_eq!(check(0x0a, T0 + 10), accept(), "nc=0000000a after 00000009");
    assert_eq!(
        check(0x0a, T0 + 11),
        stale(ChallengeWhy::Replayed),
        "replayed nc"
    );
    assert_eq!(
        check(0x09, T0 + 12),
        stale(ChallengeWhy::Replayed),
        "older nc"
    );
    assert_eq!(check(0x0c, T0 + 13), accept());
}

#[test]
fn verdicts() {
    let a = auth(1);
    let nonce = nonce_of(&a, T0);
    let old = nonce_of(&a, T0 - 301_000);
    let foreign = nonce_of(&auth(2), T0);
    let mut tampered = nonce.clone().into_bytes();
    tampered[10] = if tampered[10] == b'f' { b'e' } else { b'f' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let (md5, sha) = (stored(Algorithm::Md5), stored(Algorithm::Sha256));
    let forbid = |why| Verdict::Forbidden { why };
    let no_qop = Credentials {
        qop: None,
        ..phone(Algorithm::Md5, "1001", "secret", &nonce, 1)
    };
    let qop_int = Credentials {
        qop: Some("auth-int".into()),
        ..phone(Algorithm::Md5, "1001", "secret", &nonce, 1)
    };
    for (name, creds, ha1, uri_ok, want) in [
        (
            "sha-256",
            phone(Algorithm::Sha256, "1001", "secret", &nonce, 1),
            Some(&sha),
            true,
            accept(),
        ),
        (
            "md5 after sha-256 on the same nonce",
            phone(Algorithm::Md5, "1001", "secret", &nonce, 2),
            Some(&md5),
            true,
            accept(),
        ),
        (
            "wrong password",
            phone(Algorithm::Md5, "1001", "guess", &nonce, 2),
            Some(&md5),
            true,
            forbid(Refused::WrongResponse),
        ),
        (
            "unknown user",
            phone(Algorithm::Md5, "1009", "secret", &nonce, 1),
            None,
            true,
            forbid(Refused::UnknownUser),
        ),
        (
            "no ha1 stored",
            phone(Algorithm::Md5, "1001", "secret", &nonce, 3),
            Some(&String::new()),
            true,
            forbid(Refused::NoHa1ForAlgorithm),
        ),
        (
            "ha1 of the other algorithm",
            phone(Algorithm::Sha256, "1001", "secret", &nonce, 3),
            Some(&md5),
            true,
            forbid(Refused::WrongResponse),
        ),
        (
            "stale nonce",
            phone(Algorithm::Md5, "1001", "secret", &old, 1),
            Some(&md5),
            true,
            stale(ChallengeWhy::Expired),
        ),
        (
            "stale nonce, wrong password",
            phone(Algorithm::Md5, "1001", "guess", &old, 1),
            Some(&md5),
            true,
            forbid(Refused::WrongResponse),
        ),
        (
            "another node's nonce",
            phone(Algorithm::Md5, "1001", "secret", &foreign, 1),
            Some(&md5),
            true,
            stale(ChallengeWhy::OtherInstance),
        ),
        (
            "tampered nonce",
            phone(Algorithm::Md5, "1001", "secret", &tampered, 1),
            Some(&md5),
            true,
            Verdict::Challenge {
                stale: false,
                why: ChallengeWhy::BadNonce,
            },
        ),
        (
            "uri of another request",
            phone(Algorithm::Md5, "1001", "secret", &nonce, 4),
            Some(&md5),
            false,
            Verdict::BadRequest {
                why: "digest uri is not the Request-URI",
            },
        ),
        (
            "no qop",
            no_qop,
            Some(&md5),
            true,
            forbid(Refused::QopRequired),
        ),
        (
            "qop auth-int",
            qop_int,
            Some(&md5),
            true,
            forbid(Refused::QopRequired),
        ),
    ] {
        assert_eq!(
            a.verify(&creds, ha1.map(String::as_str), "REGISTER", uri_ok, T0),
            want,
            "{name}"
        );
    }
}

#[test]
fn algorithms_not_offered_are_refused() {
    let mint = NonceMint::new(b"s", 1, TTL);
    let a = Authenticator::new(REALM.into(), vec![Algorithm::Md5], mint);
    assert_eq!(a.challenges(T0, 1, false).len(), 1);
    let nonce = nonce_of(&a, T0);
    let c = phone(Algorithm::Sha256, "1001", "secret", &nonce, 1);
    assert_eq!(
        a.verify(&c, Some(&stored(Algorithm::Sha256)), "REGISTER", true, T0),
        Verdict::Forbidden {
            why: Refused::NoHa1ForAlgorithm
        }
    );
}

#[test]
fn a_refused_request_does_not_use_up_its_count() {
    let a = auth(1);
    let nonce = nonce_of(&a, T0);
    let h = stored(Algorithm::Md5);
    let wrong = phone(Algorithm::Md5, "1001", "guess", &nonce, 5);
    assert!(matches!(
        a.verify(&wrong, Some(&h), "REGISTER", true, T0),
        Verdict::Forbidden { .. }
    ));
    let right = phone(Algorithm::Md5, "1001", "secret", &nonce, 5);
    assert_eq!(a.verify(&right, Some(&h), "REGISTER", true, T0), accept());
}
