use super::*;

#[test]
fn a_hash_is_salted_argon2id_with_small_parameters() {
    let a = hash("1001", "1234").expect("hash");
    let b = hash("1001", "1234").expect("hash");
    assert!(a.starts_with("$argon2id$v=19$m=4096,t=3,p=1$"), "{a}");
    assert_ne!(a, b, "a random salt per hash");
    assert!(!a.contains("1234"));
}

#[test]
fn verify_tells_right_from_wrong_for_every_stored_form() {
    let argon = hash("1001", "1234").expect("hash");
    let legacy = legacy_sha256("1001", "1234");
    let cases: &[(&str, &str, &str, &str)] = &[
        // (ext, pin, stored, expected)
        ("1001", "1234", &argon, "right"),
        ("1001", "1235", &argon, "wrong"),
        ("1002", "1234", &argon, "wrong"), // bound to the agent
        ("1001", "1234", &legacy, "upgrade"),
        ("1001", "4321", &legacy, "wrong"),
        ("1002", "1234", &legacy, "wrong"),
    ];
    for (ext, pin, stored, want) in cases {
        let got = verify(ext, pin, stored).expect("verifies");
        let kind = match &got {
            PinCheck::Wrong => "wrong",
            PinCheck::Right => "right",
            PinCheck::RightUpgrade { new_hash } => {
                assert_eq!(
                    verify(ext, pin, new_hash).expect("new hash"),
                    PinCheck::Right
                );
                "upgrade"
            }
        };
        assert_eq!(kind, *want, "{ext}:{pin} against {stored}");
        assert_eq!(got.is_right(), *want != "wrong");
    }
}

#[test]
fn legacy_hashes_are_the_old_rule_in_any_hex_case() {
    // sha256("a:b"), the value the old dialplan and admin pages stored.
    let old = "6783a31eabf68ccc0660f935c0826282bdd2241f3a80a9f2d10d59aea9ebb5d8";
    assert_eq!(legacy_sha256("a", "b"), old);
    assert!(verify("a", "b", &old.to_ascii_uppercase())
        .expect("verifies")
        .is_right());
}

#[test]
fn malformed_stored_values_are_errors_not_matches() {
    for stored in ["", "1234", "$argon2id$garbage", &"g".repeat(64)] {
        assert!(
            matches!(verify("1001", "1234", stored), Err(PinError::Malformed)),
            "{stored:?}"
        );
    }
}
