//! The one name rule, table by table: what each kind accepts and refuses.

use super::{check, Kind, NameError};

#[test]
fn each_kind_accepts_its_characters_and_lengths() {
    use Kind::*;
    let long32 = "1".repeat(32);
    let long33 = "1".repeat(33);
    let long64 = "a".repeat(64);
    let long65 = "a".repeat(65);
    for (kind, value, ok) in [
        (Extension, "1001", true),
        (Extension, "ext-1_a.b+c", true),
        (Extension, long32.as_str(), true),
        (Extension, long33.as_str(), false),
        (Extension, "10 01", false),
        (Extension, "1001@host", false),
        (Extension, "<b>", false),
        (Extension, "10\u{0}01", false),
        (Extension, "ü", false),
        (Queue, "sales", true),
        (Queue, "sales+vip.2", true),
        (Queue, long64.as_str(), true),
        (Queue, long65.as_str(), false),
        (Queue, "sa les", false),
        (Queue, "sales/1", false),
        (Queue, "sales\t", false),
        (User, "ada@example.org", true),
        (User, "a+b", false),
        (Carrier, "trunk-1.b_2", true),
        (Carrier, "trunk+1", false),
        (Number, "+4930123", true),
        (Number, "*31#", true),
        (Number, "0 30", false),
        (Number, "sip:caller", false),
        (Class, "default", true),
        (Class, "../etc", false),
    ] {
        assert_eq!(check(kind, value).is_ok(), ok, "{kind:?} {value:?}");
    }
}

#[test]
fn refusals_say_the_rule() {
    assert_eq!(check(Kind::Queue, ""), Err(NameError::Empty));
    assert_eq!(NameError::Empty.reason(), "must not be empty");
    let e = check(Kind::Extension, "a b").expect_err("space");
    assert_eq!(e, NameError::Rule(Kind::Extension));
    assert_eq!(
        e.to_string(),
        "use 1 to 32 letters, digits, '-', '_', '.' or '+'"
    );
    assert_eq!(e.reason(), e.to_string());
    for kind in [
        Kind::Extension,
        Kind::Queue,
        Kind::User,
        Kind::Carrier,
        Kind::Number,
        Kind::Class,
    ] {
        // The words match the rule: the length and every extra character are named.
        let rule = kind.rule();
        assert!(rule.contains(&kind.max().to_string()), "{rule}");
        for c in kind.extra().chars() {
            assert!(rule.contains(&format!("'{c}'")), "{kind:?}: {rule}");
        }
    }
}
