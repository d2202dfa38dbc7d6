//! The pure rules of the ring group form.

use callfleet_store::{DestKind, Destination, GroupMember, GroupStrategy, MemberKind};

use super::*;

fn fields(pairs: &[(&str, &str)]) -> Fields {
    Fields::from_pairs(pairs.iter().copied())
}

#[test]
fn a_group_form_becomes_a_row() {
    let g = check(
        &fields(&[
            ("name", "office"),
            ("strategy", "ordered"),
            ("ring_s", "12.5"),
            ("members", "device:2002, agent:1001,device:2001"),
            ("no_answer", "voicemail:1001"),
            ("moh_class", "jazz"),
        ]),
        None,
        7,
    )
    .expect("valid");
    assert_eq!(g.name, "office");
    assert_eq!(g.strategy, GroupStrategy::Ordered);
    assert_eq!(g.ring_ms, 12_500);
    assert_eq!(
        g.members,
        vec![
            GroupMember::new(MemberKind::Device, "2002"),
            GroupMember::new(MemberKind::Agent, "1001"),
            GroupMember::new(MemberKind::Device, "2001"),
        ]
    );
    assert_eq!(g.no_answer, Destination::new(DestKind::Voicemail, "1001"));
    assert_eq!((g.moh_class.as_str(), g.created_at_ms), ("jazz", 7));
    // The defaults: all, 20 s, no members, goodbye, the default class; the key wins.
    let g = check(&fields(&[("name", "x")]), Some("sales"), 0).expect("valid");
    assert_eq!(g.name, "sales");
    assert_eq!(g.strategy, GroupStrategy::All);
    assert_eq!(g.ring_ms, 20_000);
    assert!(g.members.is_empty());
    assert_eq!(g.no_answer, Destination::new(DestKind::Message, "goodbye"));
    assert_eq!(g.moh_class, "default");
    // A group may be the destination of a number or a menu key.
    assert_eq!(
        destination("open", "group:sales").expect("valid"),
        Destination::new(DestKind::Group, "sales")
    );
    // The form shows what it was saved with.
    let again = check(&Groups::values(&g), None, 0).expect("valid");
    assert_eq!(again, g);
}

#[test]
fn every_bad_field_of_a_group_is_named() {
    let p = check(
        &fields(&[
            ("name", "a b"),
            ("strategy", "ringall"),
            ("ring_s", "0"),
            ("members", "agent:1001 phone:2001"),
            ("no_answer", "group:"),
            ("moh_class", "../x"),
        ]),
        None,
        0,
    )
    .expect_err("invalid");
    let mut got = p.fields();
    got.sort_unstable();
    assert_eq!(
        got,
        vec![
            "members",
            "moh_class",
            "name",
            "no_answer",
            "ring_s",
            "strategy"
        ]
    );
}

#[test]
fn members_in_order_each_once() {
    let cases: [(&str, Result<usize, &str>); 7] = [
        ("", Ok(0)),
        ("agent:1001", Ok(1)),
        ("agent:1001 device:1001", Ok(2)),
        ("agent:1001,\ndevice:2001\t device:2002", Ok(3)),
        ("agent:1001, agent:1001", Err("named twice")),
        ("1001", Err("agent:EXTENSION")),
        ("device:20 01", Err("agent:EXTENSION")),
    ];
    for (value, want) in cases {
        match (members(value), want) {
            (Ok(m), Ok(n)) => assert_eq!(m.len(), n, "{value:?}"),
            (Err(e), Err(text)) => assert!(e.to_string().contains(text), "{value:?}: {e}"),
            (got, want) => panic!("{value:?}: got {got:?}, want {want:?}"),
        }
    }
    let many: Vec<String> = (0..=MAX_MEMBERS).map(|i| format!("device:{i}")).collect();
    assert!(members(&many.join(",")).is_err());
}
