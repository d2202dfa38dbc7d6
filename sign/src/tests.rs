//! Strength rule and key derivation.

use super::*;

#[test]
fn weak_secrets_are_refused() {
    for (secret, want) in [
        ("", Err(WeakSecret::TooShort { chars: 0 })),
        ("change-me", Err(WeakSecret::TooShort { chars: 9 })),
        (
            "0123456789abcdef0123456789abcde",
            Err(WeakSecret::TooShort { chars: 31 }),
        ),
        // Spaces around do not count.
        (
            "  0123456789abcdef0123456789abcde  ",
            Err(WeakSecret::TooShort { chars: 31 }),
        ),
        (EXAMPLE_SECRET, Err(WeakSecret::Example)),
        ("0123456789abcdef0123456789abcdef", Ok(())),
        ("ééééééééééééééééééééééééééééééé€", Ok(())),
    ] {
        assert_eq!(check_strength(secret), want, "{secret:?}");
        assert_eq!(ClusterKey::strong(secret).err(), want.err(), "{secret:?}");
    }
}

#[test]
fn the_example_placeholder_is_long_enough_to_be_refused_by_name() {
    assert!(EXAMPLE_SECRET.len() >= MIN_SECRET_CHARS);
}

#[test]
fn debug_shows_nothing_of_the_key() {
    let key = ClusterKey::new("0123456789abcdef0123456789abcdef");
    assert_eq!(format!("{key:?}"), "ClusterKey(<redacted>)");
}
