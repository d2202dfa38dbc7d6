//! The pure rules of the numbers and IVR menus forms.

use callfleet_store::{DestKind, Destination};

use super::*;
use crate::admin::menus;

fn fields(pairs: &[(&str, &str)]) -> Fields {
    Fields::from_pairs(pairs.iter().copied())
}

#[test]
fn a_number_form_becomes_a_row() {
    let n = check(
        &fields(&[
            ("number", "0800100"),
            ("open", "menu:main"),
            ("closed", ""),
            ("time_zone", "Europe/Paris"),
            ("open_hours", "mon-fri 09:00-17:00"),
            ("holidays", "2026-12-25,2026-01-01"),
        ]),
        None,
        7,
    )
    .expect("valid");
    assert_eq!(n.number, "0800100");
    assert_eq!(n.open, Destination::new(DestKind::Menu, "main"));
    assert_eq!(n.closed, Destination::new(DestKind::Message, "goodbye"));
    assert_eq!(n.holidays, "2026-01-01 2026-12-25");
    assert_eq!(n.time_zone, "Europe/Paris");
    assert_eq!(n.created_at_ms, 7);
    // An empty time zone is UTC; on its own page the key wins over the field.
    let n = check(
        &fields(&[("number", "x"), ("open", "queue:sales")]),
        Some("0800"),
        0,
    )
    .expect("valid");
    assert_eq!((n.number.as_str(), n.time_zone.as_str()), ("0800", "UTC"));
}

#[test]
fn every_bad_field_of_a_number_is_named() {
    let p = check(
        &fields(&[
            ("number", "08 00"),
            ("open", "ring:sales"),
            ("closed", "message:../etc/passwd"),
            ("time_zone", "Mars/Olympus"),
            ("open_hours", "mon 17:00-09:00"),
            ("holidays", "2026-02-30"),
        ]),
        None,
        0,
    )
    .expect_err("invalid");
    let mut got = p.fields();
    got.sort_unstable();
    assert_eq!(
        got,
        [
            "closed",
            "holidays",
            "number",
            "open",
            "open_hours",
            "time_zone"
        ]
    );
    let p = check(&fields(&[("number", "1")]), None, 0).expect_err("no open");
    assert_eq!(p.fields(), ["open"]);
}

#[test]
fn destinations_are_checked_by_kind() {
    for ok in [
        "queue:sales",
        "menu:main",
        "agent:1001",
        "voicemail:1001",
        "number:+33100",
        "message:closed.wav",
    ] {
        assert!(destination("open", ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "sales",
        "queue:",
        "queue:a b",
        "agent:1 2",
        "message:.hidden",
        "message:a/b",
    ] {
        assert!(destination("open", bad).is_err(), "{bad}");
    }
}

#[test]
fn a_menu_form_becomes_a_menu_with_its_keys() {
    let m = menus::check(
        &fields(&[
            ("name", "main"),
            ("prompt", "welcome.wav"),
            ("timeout_s", "4.5"),
            ("repeats", "2"),
            ("invalid", "queue:operator"),
            ("key_1", "queue:sales"),
            ("key_star", "menu:main"),
            ("key_hash", ""),
        ]),
        None,
        3,
    )
    .expect("valid");
    assert_eq!(m.timeout_ms, 4_500);
    assert_eq!(m.repeats, 2);
    assert_eq!(m.invalid, Destination::new(DestKind::Queue, "operator"));
    let keys: Vec<(char, String)> = m.choices.iter().map(|(k, d)| (*k, d.to_string())).collect();
    assert_eq!(
        keys,
        [
            ('*', "menu:main".to_owned()),
            ('1', "queue:sales".to_owned())
        ]
    );
    // Defaults: 5 s, three plays, goodbye.
    let m = menus::check(&fields(&[("name", "m"), ("prompt", "p.wav")]), None, 0).expect("valid");
    assert_eq!((m.timeout_ms, m.repeats), (5_000, 3));
    assert_eq!(m.invalid.to_string(), "message:goodbye");
    assert!(m.choices.is_empty());
}

#[test]
fn every_bad_field_of_a_menu_is_named() {
    let p = menus::check(
        &fields(&[
            ("name", ""),
            ("prompt", "../x.wav"),
            ("timeout_s", "0"),
            ("repeats", "11"),
            ("invalid", "nowhere"),
            ("key_3", "queue"),
        ]),
        None,
        0,
    )
    .expect_err("invalid");
    assert_eq!(
        p.fields(),
        ["name", "prompt", "timeout_s", "repeats", "invalid", "key_3"]
    );
}
