//! Signing and verifying: what passes, what is refused, the replay window.

use std::time::Duration;

use super::*;
use crate::Signer;

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const NOW: u64 = 1_700_000_000_000;

fn pair() -> (Signer, Verifier) {
    (
        Signer::with_client(ClusterKey::new(SECRET), 0xfeed),
        Verifier::new(ClusterKey::new(SECRET), Duration::from_secs(30)),
    )
}

#[test]
fn a_signed_request_passes_once() {
    let (s, v) = pair();
    let h = s.sign("POST", "/v1/locks/agent:1001", b"{\"owner\":\"a\"}", NOW);
    assert!(
        h.starts_with("cf1 1700000000000 000000000000feed 1 "),
        "{h}"
    );
    assert_eq!(
        v.verify(
            h.as_bytes(),
            "POST",
            "/v1/locks/agent:1001",
            b"{\"owner\":\"a\"}",
            NOW
        ),
        Ok(())
    );
    assert_eq!(
        v.verify(
            h.as_bytes(),
            "POST",
            "/v1/locks/agent:1001",
            b"{\"owner\":\"a\"}",
            NOW
        ),
        Err(Refused::Replayed)
    );
}

#[test]
fn anything_changed_is_refused() {
    let (s, v) = pair();
    let body = b"{\"owner\":\"a\",\"token\":7}";
    let h = s.sign("DELETE", "/v1/locks/agent:1001", body, NOW);
    let other = Signer::with_client(ClusterKey::new("another secret of thirty-two chars!"), 1);
    let foreign = other.sign("DELETE", "/v1/locks/agent:1001", body, NOW);
    // (header, method, target, body, now, expected)
    type Case<'a> = (&'a str, &'a str, &'a str, &'a [u8], u64, Refused);
    let cases: Vec<Case> = vec![
        (&h, "PUT", "/v1/locks/agent:1001", body, NOW, Refused::BadMac),
        (&h, "DELETE", "/v1/locks/agent:1002", body, NOW, Refused::BadMac),
        (&h, "DELETE", "/v1/locks/agent:1001", b"{\"owner\":\"a\",\"token\":8}", NOW, Refused::BadMac),
        (&foreign, "DELETE", "/v1/locks/agent:1001", body, NOW, Refused::BadMac),
        (&h, "DELETE", "/v1/locks/agent:1001", body, NOW + 30_001, Refused::Stale { skew_ms: 30_001, limit_ms: 30_000 }),
        (&h, "DELETE", "/v1/locks/agent:1001", body, NOW - 30_001, Refused::Stale { skew_ms: 30_001, limit_ms: 30_000 }),
        ("", "DELETE", "/v1/locks/agent:1001", body, NOW, Refused::Malformed),
        ("cf2 1 000000000000feed 1 00", "DELETE", "/", body, NOW, Refused::Malformed),
        ("cf1 -1 000000000000feed 1 0000000000000000000000000000000000000000000000000000000000000000", "DELETE", "/", body, NOW, Refused::Malformed),
        ("cf1 1700000000000 feed 1 0000000000000000000000000000000000000000000000000000000000000000", "DELETE", "/", body, NOW, Refused::Malformed),
        ("cf1 1700000000000 000000000000feed 1 zz00000000000000000000000000000000000000000000000000000000000000", "DELETE", "/", body, NOW, Refused::Malformed),
        ("cf1 1700000000000 000000000000feed 1 0000000000000000000000000000000000000000000000000000000000000000 x", "DELETE", "/", body, NOW, Refused::Malformed),
    ];
    for (header, method, target, body, now, want) in cases {
        assert_eq!(
            v.verify(header.as_bytes(), method, target, body, now),
            Err(want.clone()),
            "{header} {method} {target} at {now}"
        );
    }
    // Nothing refused above was taken: the genuine request still passes, and only those with
    // a valid MAC made a record.
    assert_eq!(v.clients(), 0);
    assert_eq!(
        v.verify(
            h.as_bytes(),
            "DELETE",
            "/v1/locks/agent:1001",
            body,
            NOW + 29_000
        ),
        Ok(())
    );
    assert_eq!(
        v.verify(&[0xff, 0xfe], "GET", "/", b"", NOW),
        Err(Refused::Malformed)
    );
}

#[test]
fn out_of_order_within_the_window_passes_once_each() {
    let (s, v) = pair();
    let sign = |seq| s.sign_seq("POST", "/x", b"", NOW, seq);
    // (sequence number, expected) in arrival order
    let cases = [
        (10, Ok(())),
        (12, Ok(())),
        (11, Ok(())),
        (11, Err(Refused::Replayed)),
        (10, Err(Refused::Replayed)),
        (12 + 4095, Ok(())),
        // 12 is now the oldest number the window holds, 11 just fell off it.
        (12, Err(Refused::Replayed)),
        (13, Ok(())),
        (11, Err(Refused::Replayed)),
        (100_000, Ok(())),
        (13 + 4095, Err(Refused::Replayed)),
        (99_999, Ok(())),
        (100_000 - 4096, Err(Refused::Replayed)),
        (100_000 - 4095, Ok(())),
    ];
    for (seq, want) in cases {
        assert_eq!(
            v.verify(sign(seq).as_bytes(), "POST", "/x", b"", NOW),
            want,
            "seq {seq}"
        );
    }
}

#[test]
fn shifting_keeps_every_bit_in_its_place() {
    for d in [1, 5, 63, 64, 65, 127, 128, 1000, 4095, 4096, 9999] {
        let mut bits = [0u64; WORDS];
        let marks = [0u64, 1, 62, 63, 64, 200, 4000, 4095];
        for m in marks {
            bits[(m / 64) as usize] |= 1 << (m % 64);
        }
        shift(&mut bits, d);
        for i in 0..REPLAY_BITS {
            let set = bits[(i / 64) as usize] & (1 << (i % 64)) != 0;
            let want = i >= d && marks.contains(&(i - d));
            assert_eq!(set, want, "shift {d}, bit {i}");
        }
    }
}

#[test]
fn records_are_forgotten_once_their_requests_are_stale() {
    let (s, v) = pair();
    let old = s.sign("POST", "/x", b"", NOW);
    assert_eq!(v.verify(old.as_bytes(), "POST", "/x", b"", NOW), Ok(()));
    let other = Signer::with_client(ClusterKey::new(SECRET), 2);
    let later = other.sign("POST", "/x", b"", NOW + 31_000);
    assert_eq!(
        v.verify(later.as_bytes(), "POST", "/x", b"", NOW + 31_000),
        Ok(())
    );
    assert_eq!(v.clients(), 1, "the first client's record went");
    // Its old request, replayed now, is refused for its age.
    assert!(matches!(
        v.verify(old.as_bytes(), "POST", "/x", b"", NOW + 31_000),
        Err(Refused::Stale { .. })
    ));
}

#[test]
fn too_many_clients_are_refused_not_forgotten() {
    let v = Verifier::new(ClusterKey::new(SECRET), Duration::from_secs(30));
    for client in 0..MAX_CLIENTS as u64 {
        let s = Signer::with_client(ClusterKey::new(SECRET), client);
        assert_eq!(
            v.verify(
                s.sign("GET", "/", b"", NOW).as_bytes(),
                "GET",
                "/",
                b"",
                NOW
            ),
            Ok(())
        );
    }
    let s = Signer::with_client(ClusterKey::new(SECRET), u64::MAX);
    assert_eq!(
        v.verify(
            s.sign("GET", "/", b"", NOW).as_bytes(),
            "GET",
            "/",
            b"",
            NOW
        ),
        Err(Refused::TooManyClients)
    );
    // A known client goes on.
    let s = Signer::with_client(ClusterKey::new(SECRET), 7);
    assert_eq!(
        v.verify(
            s.sign_seq("GET", "/", b"", NOW, 2).as_bytes(),
            "GET",
            "/",
            b"",
            NOW
        ),
        Ok(())
    );
}
