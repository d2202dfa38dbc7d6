//! Tests for role parsing, printing and serde names.

use super::*;

#[test]
fn parse_print_round_trip() {
    for (text, role) in [("main", Role::Main), ("extra", Role::Extra)] {
        assert_eq!(text.parse::<Role>(), Ok(role), "{text}");
        assert_eq!(role.to_string(), text);
        assert_eq!(role.as_str(), text);
    }
}

#[test]
fn parse_rejects_other_text_with_the_value() {
    for bad in ["", "Main", "MAIN", " main", "extra ", "worker"] {
        let err = bad.parse::<Role>().expect_err(bad);
        assert_eq!(err.value, bad);
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
    }
}

#[test]
fn serde_uses_lowercase_names() {
    for (json, role) in [("\"main\"", Role::Main), ("\"extra\"", Role::Extra)] {
        assert_eq!(serde_json::to_string(&role).ok().as_deref(), Some(json));
        assert_eq!(serde_json::from_str::<Role>(json).ok(), Some(role));
    }
    assert!(serde_json::from_str::<Role>("\"Main\"").is_err());
}
