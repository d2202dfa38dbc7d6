//! The admin forms' rules, field by field: what each form accepts, what it refuses and
//! with which message, and how seconds become milliseconds.

use callfleet_store::UserRole;

use super::{self as form, Fields, Problems};

const EVIL: &str = "<script>x</script>";

fn f(pairs: &[(&str, &str)]) -> Fields {
    Fields::from_pairs(pairs.iter().copied())
}

/// The one field with a problem (the test fails if there are more or none).
fn only(problems: Problems) -> form::Invalid {
    assert_eq!(problems.0.len(), 1, "{problems}");
    problems.0.into_iter().next().expect("one problem")
}

fn queue_form(extra: &[(&str, &str)]) -> Fields {
    let mut pairs = vec![
        ("strategy", "ringall"),
        ("ring_timeout_s", "15"),
        ("max_wait_s", "60"),
        ("announce_interval_s", "30"),
        ("moh_class", "default"),
        ("wrapup_s", "2"),
        ("fallback", "hangup"),
    ];
    for (k, v) in extra {
        pairs.retain(|(key, _)| key != k);
        pairs.push((k, v));
    }
    f(&pairs)
}

#[test]
fn form_bodies_parse_and_checkboxes_read_as_ticked_or_not() {
    let fields = Fields::parse(b"name=sales+team&vip_allowed=on&pin=%201%20&csrf=t").expect("form");
    assert_eq!(fields.get("name"), "sales team");
    assert!(fields.checked("vip_allowed"));
    assert!(!fields.checked("missing"));
    assert_eq!(fields.get("pin"), "1", "trimmed");
    assert_eq!(fields.raw("pin"), " 1 ", "raw keeps what was typed");
    assert_eq!(fields.get("absent"), "");
}

#[test]
fn a_queue_form_becomes_a_queue() {
    let q = form::queue(&queue_form(&[]), "sales").expect("valid");
    assert_eq!(
        (
            q.name.as_str(),
            q.strategy.as_str(),
            q.ring_timeout_ms,
            q.max_wait_ms
        ),
        ("sales", "ringall", 15_000, 60_000)
    );
    assert_eq!((q.announce_interval_ms, q.wrapup_ms), (30_000, 2_000));
    assert_eq!((q.fallback.as_str(), q.fallback_target), ("hangup", None));
    // Optional fields take their defaults.
    let q = form::queue(
        &queue_form(&[
            ("announce_interval_s", ""),
            ("wrapup_s", ""),
            ("moh_class", ""),
        ]),
        "sales",
    )
    .expect("valid");
    assert_eq!(
        (q.announce_interval_ms, q.wrapup_ms, q.moh_class.as_str()),
        (0, 0, "default")
    );
    // A target given to `hangup` is dropped; voicemail and queue keep theirs.
    let q = form::queue(&queue_form(&[("fallback_target", "1001")]), "sales").expect("valid");
    assert_eq!(q.fallback_target, None);
    let q = form::queue(
        &queue_form(&[("fallback", "voicemail"), ("fallback_target", "1001")]),
        "sales",
    )
    .expect("valid");
    assert_eq!(q.fallback_target.as_deref(), Some("1001"));
    let q = form::queue(
        &queue_form(&[("fallback", "queue"), ("fallback_target", "support")]),
        "sales",
    )
    .expect("valid");
    assert_eq!(q.fallback_target.as_deref(), Some("support"));
}

#[test]
fn bad_queue_forms_say_which_field_and_why() {
    for (name, extra, field, says) in [
        ("", vec![], "name", "required"),
        ("sa les", vec![], "name", "letters, digits"),
        (EVIL, vec![], "name", "letters, digits"),
        (
            "sales",
            vec![("strategy", "fastest")],
            "strategy",
            "unknown strategy \"fastest\"",
        ),
        (
            "sales",
            vec![("ring_timeout_s", "-5")],
            "ring_timeout_s",
            "must not be negative",
        ),
        (
            "sales",
            vec![("ring_timeout_s", "0.5")],
            "ring_timeout_s",
            "between 1 and 600 seconds",
        ),
        (
            "sales",
            vec![("ring_timeout_s", "")],
            "ring_timeout_s",
            "required",
        ),
        (
            "sales",
            vec![("max_wait_s", "-1")],
            "max_wait_s",
            "must not be negative",
        ),
        (
            "sales",
            vec![("max_wait_s", "soon")],
            "max_wait_s",
            "not a number of seconds",
        ),
        (
            "sales",
            vec![("max_wait_s", "86401")],
            "max_wait_s",
            "between 0 and 86400 seconds",
        ),
        (
            "sales",
            vec![("wrapup_s", "-100")],
            "wrapup_s",
            "must not be negative",
        ),
        (
            "sales",
            vec![("wrapup_s", "1.2345")],
            "wrapup_s",
            "at most three decimals",
        ),
        (
            "sales",
            vec![("announce_interval_s", "99999999999999999999")],
            "announce_interval_s",
            "not a number of seconds",
        ),
        (
            "sales",
            vec![("fallback", "transfer")],
            "fallback",
            "unknown fallback",
        ),
        (
            "sales",
            vec![("fallback", "voicemail")],
            "fallback_target",
            "required for fallback \"voicemail\"",
        ),
        (
            "sales",
            vec![("fallback", "queue")],
            "fallback_target",
            "required for fallback \"queue\"",
        ),
        (
            "sales",
            vec![("fallback", "queue"), ("fallback_target", "sales")],
            "fallback_target",
            "itself",
        ),
        (
            "sales",
            vec![("fallback", "voicemail"), ("fallback_target", "1 001")],
            "fallback_target",
            "letters, digits",
        ),
        (
            "sales",
            vec![("moh_class", "../etc")],
            "moh_class",
            "letters, digits",
        ),
    ] {
        let err =
            only(form::queue(&queue_form(&extra), name).expect_err(&format!("{name} {extra:?}")));
        assert_eq!(err.field, field, "{name} {extra:?}: {err}");
        assert!(err.to_string().contains(says), "{name} {extra:?}: {err}");
    }
}

#[test]
fn every_bad_field_of_a_form_is_reported_at_once() {
    let problems = form::queue(
        &queue_form(&[
            ("strategy", "x"),
            ("ring_timeout_s", "0"),
            ("max_wait_s", "-1"),
            ("fallback", "voicemail"),
        ]),
        "a b",
    )
    .expect_err("four bad fields");
    assert_eq!(
        problems.fields(),
        [
            "name",
            "strategy",
            "ring_timeout_s",
            "max_wait_s",
            "fallback_target"
        ]
    );
    assert!(problems.on("max_wait_s").is_some() && problems.on("wrapup_s").is_none());
}

#[test]
fn seconds_are_typed_and_shown_and_kept_in_milliseconds() {
    for (ms, shown) in [
        (0, "0"),
        (20_000, "20"),
        (1_500, "1.5"),
        (250, "0.25"),
        (1_001, "1.001"),
        (86_400_000, "86400"),
    ] {
        assert_eq!(form::seconds(ms), shown);
        assert_eq!(
            form::parse_seconds(&form::MAX_WAIT, shown),
            Ok(ms),
            "{shown}"
        );
    }
    for (typed, ms) in [("1.50", 1_500), (".5", 500), ("7.", 7_000), ("007", 7_000)] {
        assert_eq!(
            form::parse_seconds(&form::MAX_WAIT, typed),
            Ok(ms),
            "{typed}"
        );
    }
    assert_eq!(form::parse_seconds(&form::WRAPUP, ""), Ok(0), "default");
    for bad in [".", "1,5", "1e3", "+1", "1 5", "0x10", "1.5s"] {
        let err = form::parse_seconds(&form::MAX_WAIT, bad).expect_err(bad);
        assert_eq!(err.field, "max_wait_s", "{bad}");
    }
    // A queue form round-trips through the page's values.
    let q = form::queue(&queue_form(&[("wrapup_s", "1.5")]), "sales").expect("valid");
    assert_eq!(q.wrapup_ms, 1_500);
}

#[test]
fn members_and_vips() {
    let m = form::member(
        &f(&[
            ("agent", "1001"),
            ("tier", "2"),
            ("vip_allowed", "on"),
            ("weight", "5"),
            ("position", "-3"),
        ]),
        "sales",
    )
    .expect("valid");
    assert_eq!(
        (
            m.queue.as_str(),
            m.agent.as_str(),
            m.tier,
            m.vip_allowed,
            m.weight,
            m.position
        ),
        ("sales", "1001", 2, true, 5, -3)
    );
    let m = form::member(&f(&[("agent", "1001")]), "sales").expect("defaults");
    assert_eq!(
        (m.tier, m.vip_allowed, m.weight, m.position),
        (0, false, 1, 0)
    );
    for (pairs, field) in [
        (vec![("tier", "1")], "agent"),
        (vec![("agent", "1001"), ("tier", "-1")], "tier"),
        (vec![("agent", "1001"), ("tier", "1001")], "tier"),
        (vec![("agent", "1001"), ("weight", "-2")], "weight"),
        (vec![("agent", "1001"), ("position", "x")], "position"),
    ] {
        assert_eq!(
            only(form::member(&f(&pairs), "q").expect_err("invalid")).field,
            field,
            "{pairs:?}"
        );
    }
    let c = form::vip(&f(&[("number", "+4930123")]), "sales").expect("valid");
    assert_eq!((c.number.as_str(), c.queue.as_str()), ("+4930123", "sales"));
    for bad in ["", "0 30", "sip:x"] {
        assert_eq!(
            only(form::vip(&f(&[("number", bad)]), "q").expect_err(bad)).field,
            "number"
        );
    }
}

#[test]
fn agents_store_the_pin_hash_the_dialplan_checks() {
    let a = form::agent(
        &f(&[
            ("extension", "1001"),
            ("name", "Alice"),
            ("pin", "1234"),
            ("daily_limit", "40"),
        ]),
        None,
        5,
    )
    .expect("valid");
    assert!(a.new_pin);
    let a = a.agent;
    assert_eq!(
        (a.extension.as_str(), a.name.as_str(), a.daily_limit),
        ("1001", "Alice", Some(40))
    );
    // Stored as the node's hot-desk login checks it: argon2id, salted.
    assert!(a.pin_hash.starts_with("$argon2id$"), "{}", a.pin_hash);
    assert!(callfleet_store::pin::verify("1001", "1234", &a.pin_hash)
        .expect("verifies")
        .is_right());
    assert!(!callfleet_store::pin::verify("1001", "1235", &a.pin_hash)
        .expect("verifies")
        .is_right());
    assert_eq!(
        form::agent(&f(&[("extension", "1001"), ("pin", "1")]), None, 0)
            .expect("no limit")
            .agent
            .daily_limit,
        None
    );
    // On the agent's page the extension is the page's, and an empty PIN keeps the PIN.
    let kept = form::agent(
        &f(&[("extension", "9999"), ("name", "Al"), ("pin", "")]),
        Some("1001"),
        0,
    )
    .expect("valid");
    assert_eq!(
        (
            kept.agent.extension.as_str(),
            kept.new_pin,
            kept.agent.pin_hash.as_str()
        ),
        ("1001", false, "")
    );
    let changed = form::agent(&f(&[("pin", "77")]), Some("1001"), 0).expect("valid");
    assert!(changed.new_pin);
    assert!(
        callfleet_store::pin::verify("1001", "77", &changed.agent.pin_hash)
            .expect("a PIN hash")
            .is_right()
    );
    for (pairs, key, field) in [
        (vec![("pin", "1234")], None, "extension"),
        (vec![("extension", "1001"), ("pin", "")], None, "pin"),
        (vec![("extension", "1001"), ("pin", "12a4")], None, "pin"),
        (vec![("pin", "12a4")], Some("1001"), "pin"),
        (
            vec![("extension", "1001"), ("pin", "12345678901234567")],
            None,
            "pin",
        ),
        (
            vec![("extension", "1001"), ("pin", "1"), ("daily_limit", "-1")],
            None,
            "daily_limit",
        ),
        (
            vec![("extension", "1001"), ("pin", "1"), ("name", "a\u{7}b")],
            None,
            "name",
        ),
    ] {
        assert_eq!(
            only(form::agent(&f(&pairs), key, 0).expect_err("invalid")).field,
            field,
            "{pairs:?}"
        );
    }
}

#[test]
fn devices() {
    let d = form::device(
        &f(&[
            ("extension", "2001"),
            ("name", "Desk"),
            ("password", " pw "),
        ]),
        None,
    )
    .expect("valid");
    assert_eq!(
        (d.extension.as_str(), d.name.as_str(), d.password.as_deref()),
        ("2001", "Desk", Some(" pw "))
    );
    assert!(!format!("{d:?}").contains("pw"), "Debug hides the password");
    let kept = form::device(&f(&[("name", "Hall")]), Some("2001")).expect("keeps the password");
    assert_eq!((kept.extension.as_str(), kept.password), ("2001", None));
    assert_eq!(
        only(form::device(&f(&[("extension", "2001")]), None).expect_err("no password")).field,
        "password"
    );
    assert_eq!(
        only(
            form::device(&f(&[("extension", "20 01"), ("password", "x")]), None).expect_err("ext")
        )
        .field,
        "extension"
    );
}

#[test]
fn users() {
    let u = form::user(
        &f(&[
            ("name", "ada"),
            ("role", "admin"),
            ("password", "long-enough"),
            ("device", "2001"),
        ]),
        None,
    )
    .expect("valid");
    assert_eq!(
        (u.name.as_str(), u.role, u.device.as_deref()),
        ("ada", UserRole::Admin, Some("2001"))
    );
    assert!(!format!("{u:?}").contains("long-enough"));
    let kept = form::user(&f(&[("role", "supervisor")]), Some("ada")).expect("keeps");
    assert_eq!((kept.name.as_str(), kept.password), ("ada", None));
    for (pairs, key, field, says) in [
        (
            vec![
                ("name", "ada"),
                ("role", "boss"),
                ("password", "long-enough"),
            ],
            None,
            "role",
            "admin or supervisor",
        ),
        (
            vec![("name", "ada"), ("role", "admin"), ("password", "short")],
            None,
            "password",
            "too short",
        ),
        (
            vec![("role", "admin"), ("password", "short")],
            Some("ada"),
            "password",
            "too short",
        ),
        (
            vec![
                ("name", "a d"),
                ("role", "admin"),
                ("password", "long-enough"),
            ],
            None,
            "name",
            "letters",
        ),
        (
            vec![
                ("name", "ada"),
                ("role", "admin"),
                ("password", "long-enough"),
                ("device", "x y"),
            ],
            None,
            "device",
            "letters",
        ),
    ] {
        let err = only(form::user(&f(&pairs), key).expect_err("invalid"));
        assert_eq!(err.field, field, "{pairs:?}");
        assert!(err.problem.contains(says), "{err}");
    }
}

#[test]
fn carrier_networks_are_checked_and_made_canonical() {
    for (given, want) in [
        ("203.0.113.0/24", "203.0.113.0/24"),
        ("203.0.113.77/24", "203.0.113.0/24"),
        ("127.0.16.9", "127.0.16.9/32"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("2001:db8::1/32", "2001:db8::/32"),
        ("::1", "::1/128"),
    ] {
        assert_eq!(form::cidr(given).as_deref(), Ok(want), "{given}");
    }
    for bad in [
        "",
        "carrier.example",
        "10.0.0.0/33",
        "10.0.0/8",
        "10.0.0.0/",
        "10.0.0.0/-1",
        "::/129",
        "10.0.0.0/8/8",
    ] {
        let err = form::cidr(bad).expect_err(bad);
        assert_eq!(err.field, "network", "{bad}");
    }
    let c = form::carrier(
        &f(&[("name", "trunk-1"), ("network", "198.51.100.0/24")]),
        None,
        9,
    )
    .expect("valid");
    assert_eq!(
        (c.name.as_str(), c.network.as_str(), c.created_at_ms),
        ("trunk-1", "198.51.100.0/24", 9)
    );
    assert_eq!(
        only(form::carrier(&f(&[("name", "x"), ("network", "nope")]), None, 0).expect_err("bad"))
            .field,
        "network"
    );
}

#[test]
fn a_queue_form_carries_the_recording_policy() {
    use callfleet_store::RecordingPolicy;
    // (typed, policy or the problem's field)
    let cases = [
        ("", Some(RecordingPolicy::Never)),
        ("never", Some(RecordingPolicy::Never)),
        ("always", Some(RecordingPolicy::Always)),
        ("40", Some(RecordingPolicy::Percent(40))),
        ("40%", Some(RecordingPolicy::Percent(40))),
        ("101", None),
        ("sometimes", None),
        (EVIL, None),
    ];
    for (typed, want) in cases {
        let got = form::queue(&queue_form(&[("recording", typed)]), "sales");
        match want {
            Some(p) => assert_eq!(got.expect("valid").recording, p, "{typed:?}"),
            None => {
                let bad = only(got.expect_err("refused"));
                assert_eq!(bad.field, "recording", "{typed:?}");
            }
        }
    }
    let q = form::queue(&queue_form(&[("recording_prompt", "on")]), "sales").expect("valid");
    assert!(q.recording_prompt);
    let q = form::queue(&queue_form(&[]), "sales").expect("valid");
    assert!(!q.recording_prompt);
}
