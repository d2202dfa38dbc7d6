use rsipstack::sip::SipMessage;

use super::*;

const NOW: i64 = 1_700_000_000_000;
const LIMITS: Limits = Limits {
    min_expires: 60,
    max_expires: 3600,
    default_expires: 1800,
};

fn meta(call_id: &str, cseq: i64, expires: Option<u64>) -> Meta {
    Meta {
        expires,
        call_id: call_id.into(),
        cseq,
        received: "127.0.0.41:5060".into(),
        transport: "udp".into(),
        user_agent: "phone".into(),
        node: "main-a".into(),
    }
}

fn contact(uri: &str, expires: Option<u64>) -> ContactReq {
    ContactReq {
        uri: uri.into(),
        expires,
    }
}

fn list(items: &[(&str, Option<u64>)]) -> Contacts {
    Contacts::List(items.iter().map(|(u, e)| contact(u, *e)).collect())
}

fn binding(uri: &str, call_id: &str, cseq: i64, secs: i64) -> Registration {
    Registration {
        aor: "1001".into(),
        contact: uri.into(),
        received: "127.0.0.41:5060".into(),
        transport: "udp".into(),
        expires_at_ms: NOW + secs * 1000,
        user_agent: "phone".into(),
        node: "main-a".into(),
        call_id: call_id.into(),
        cseq,
    }
}

/// (contact, seconds left) of the bindings after, sorted.
fn left(plan: &Plan) -> Vec<(String, i64)> {
    let mut v: Vec<_> = plan
        .bindings
        .iter()
        .map(|b| (b.contact.clone(), (b.expires_at_ms - NOW) / 1000))
        .collect();
    v.sort();
    v
}

/// Sorted like [`left`].
fn pairs(items: &[(&str, i64)]) -> Vec<(String, i64)> {
    let mut v: Vec<_> = items.iter().map(|(c, s)| (c.to_string(), *s)).collect();
    v.sort();
    v
}

#[test]
fn bindings_follow_rfc3261_section_10_3() {
    let a = "sip:1001@127.0.0.41";
    let b = "sip:1001@10.0.0.9:5062";
    let existing = vec![binding(a, "c1", 5, 100), binding(b, "c2", 1, 100)];
    type Case<'a> = (&'a str, Contacts, Meta, Vec<(String, i64)>);
    let cases: Vec<Case> = vec![
        (
            "query lists",
            Contacts::Query,
            meta("c9", 1, None),
            pairs(&[(a, 100), (b, 100)]),
        ),
        (
            "default expiry",
            list(&[("sip:new@h", None)]),
            meta("c9", 1, None),
            pairs(&[(a, 100), (b, 100), ("sip:new@h", 1800)]),
        ),
        (
            "Expires header",
            list(&[("sip:new@h", None)]),
            meta("c9", 1, Some(120)),
            pairs(&[(a, 100), (b, 100), ("sip:new@h", 120)]),
        ),
        (
            "contact param wins",
            list(&[("sip:new@h", Some(90))]),
            meta("c9", 1, Some(120)),
            pairs(&[(a, 100), (b, 100), ("sip:new@h", 90)]),
        ),
        (
            "clamped to max",
            list(&[("sip:new@h", Some(7200))]),
            meta("c9", 1, None),
            pairs(&[(a, 100), (b, 100), ("sip:new@h", 3600)]),
        ),
        (
            "huge clamped",
            list(&[("sip:new@h", Some(u64::from(u32::MAX)))]),
            meta("c9", 1, None),
            pairs(&[(a, 100), (b, 100), ("sip:new@h", 3600)]),
        ),
        (
            "refresh same call-id",
            list(&[(a, Some(600))]),
            meta("c1", 6, None),
            pairs(&[(a, 600), (b, 100)]),
        ),
        (
            "other call-id, lower cseq",
            list(&[(a, Some(600))]),
            meta("c7", 1, None),
            pairs(&[(a, 600), (b, 100)]),
        ),
        (
            "expires 0 removes one",
            list(&[(a, Some(0))]),
            meta("c1", 6, None),
            pairs(&[(b, 100)]),
        ),
        (
            "header 0 removes one",
            list(&[(b, None)]),
            meta("c2", 2, Some(0)),
            pairs(&[(a, 100)]),
        ),
        (
            "0 for an unknown contact",
            list(&[("sip:x@h", Some(0))]),
            meta("c9", 1, None),
            pairs(&[(a, 100), (b, 100)]),
        ),
        (
            "several at once",
            list(&[("sip:x@h", Some(60)), (a, Some(0))]),
            meta("c1", 9, None),
            pairs(&[("sip:x@h", 60), (b, 100)]),
        ),
        (
            "wildcard",
            Contacts::Wildcard,
            meta("c9", 1, Some(0)),
            vec![],
        ),
    ];
    for (name, contacts, meta, want) in cases {
        let plan = plan("1001", &contacts, &meta, &existing, LIMITS, NOW)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(left(&plan), want, "{name}");
    }
}

#[test]
fn refusals() {
    let a = "sip:1001@127.0.0.41";
    let existing = vec![binding(a, "c1", 5, 100)];
    let out_of_order = Refusal::OutOfOrder { contact: a.into() };
    for (name, contacts, meta, want) in [
        (
            "too brief",
            list(&[("sip:n@h", Some(59))]),
            meta("c9", 1, None),
            Refusal::IntervalTooBrief { min_expires: 60 },
        ),
        (
            "too brief by header",
            list(&[("sip:n@h", None)]),
            meta("c9", 1, Some(1)),
            Refusal::IntervalTooBrief { min_expires: 60 },
        ),
        (
            "one of two too brief",
            list(&[("sip:n@h", Some(600)), ("sip:m@h", Some(30))]),
            meta("c9", 1, None),
            Refusal::IntervalTooBrief { min_expires: 60 },
        ),
        (
            "same cseq again",
            list(&[(a, Some(600))]),
            meta("c1", 5, None),
            out_of_order.clone(),
        ),
        (
            "lower cseq",
            list(&[(a, Some(600))]),
            meta("c1", 4, None),
            out_of_order.clone(),
        ),
        (
            "late removal",
            list(&[(a, Some(0))]),
            meta("c1", 3, None),
            out_of_order.clone(),
        ),
        (
            "late wildcard",
            Contacts::Wildcard,
            meta("c1", 2, Some(0)),
            out_of_order,
        ),
        (
            "wildcard without Expires",
            Contacts::Wildcard,
            meta("c9", 1, None),
            Refusal::BadRequest {
                why: "Contact: * needs Expires: 0",
            },
        ),
        (
            "wildcard with Expires 60",
            Contacts::Wildcard,
            meta("c9", 1, Some(60)),
            Refusal::BadRequest {
                why: "Contact: * needs Expires: 0",
            },
        ),
    ] {
        assert_eq!(
            plan("1001", &contacts, &meta, &existing, LIMITS, NOW),
            Err(want),
            "{name}"
        );
    }
}

#[test]
fn a_refused_request_changes_nothing() {
    let plan = plan(
        "1001",
        &list(&[("sip:n@h", Some(600)), ("sip:m@h", Some(30))]),
        &meta("c9", 1, None),
        &[],
        LIMITS,
        NOW,
    );
    assert!(plan.is_err(), "no partial plan: {plan:?}");
}

#[test]
fn changes_are_the_writes_to_make() {
    let a = "sip:1001@127.0.0.41";
    let existing = vec![binding(a, "c1", 5, 100)];
    let p = plan(
        "1001",
        &list(&[(a, Some(0)), ("sip:n@h", None)]),
        &meta("c1", 6, None),
        &existing,
        LIMITS,
        NOW,
    )
    .expect("plan");
    assert_eq!(p.changes.len(), 2);
    assert_eq!(p.changes[0], Change::Remove { contact: a.into() });
    let Change::Upsert(reg) = &p.changes[1] else {
        panic!("expected an upsert: {:?}", p.changes[1])
    };
    assert_eq!(
        (
            reg.aor.as_str(),
            reg.call_id.as_str(),
            reg.cseq,
            reg.expires_at_ms
        ),
        ("1001", "c1", 6, NOW + 1_800_000)
    );
    assert_eq!(
        (reg.received.as_str(), reg.node.as_str()),
        ("127.0.0.41:5060", "main-a")
    );
    let all = plan(
        "1001",
        &Contacts::Wildcard,
        &meta("c2", 1, Some(0)),
        &existing,
        LIMITS,
        NOW,
    )
    .expect("wildcard");
    assert_eq!(all.changes, vec![Change::RemoveAll]);
}

fn request(headers: &str) -> Request {
    let text = format!(
        "REGISTER sip:127.0.0.11 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.41;branch=z9hG4bK1\r\n\
         From: <sip:1001@127.0.0.11>;tag=a\r\nTo: <sip:1001@127.0.0.11>\r\nCall-ID: c\r\n\
         CSeq: 1 REGISTER\r\n{headers}Content-Length: 0\r\n\r\n"
    );
    match SipMessage::try_from(text.as_str()) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("test request does not parse: {other:?}"),
    }
}

#[test]
fn contacts_are_read_from_the_request() {
    let c = |uri: &str, e: Option<u64>| contact(uri, e);
    for (headers, want) in [
        ("", Ok(Contacts::Query)),
        ("Contact: *\r\nExpires: 0\r\n", Ok(Contacts::Wildcard)),
        (
            "Contact: <sip:1001@127.0.0.41:5060>;expires=60\r\n",
            Ok(Contacts::List(vec![c(
                "sip:1001@127.0.0.41:5060",
                Some(60),
            )])),
        ),
        (
            "Contact: \"Desk\" <sip:a@h>, <sip:b@h;transport=tcp>;q=0.5\r\nm: sip:c@h\r\n",
            Ok(Contacts::List(vec![
                c("sip:a@h", None),
                c("sip:b@h;transport=TCP", None),
                c("sip:c@h", None),
            ])),
        ),
        (
            "Contact: *, <sip:a@h>\r\n",
            Err(Refusal::BadRequest {
                why: "Contact: * must be the only contact",
            }),
        ),
        (
            "Contact: <sip:a@h>;expires=soon\r\n",
            Err(Refusal::BadRequest {
                why: "expires is not a number of seconds",
            }),
        ),
    ] {
        assert_eq!(contacts(&request(headers)), want, "{headers:?}");
    }
}

#[test]
fn expires_header_is_read() {
    for (headers, want) in [
        ("", Ok(None)),
        ("Expires: 0\r\n", Ok(Some(0))),
        ("Expires: 3600\r\n", Ok(Some(3600))),
        ("Expires: 99999999999\r\n", Ok(Some(u64::from(u32::MAX)))),
        (
            "Expires: -1\r\n",
            Err(Refusal::BadRequest {
                why: "expires is not a number of seconds",
            }),
        ),
    ] {
        assert_eq!(expires_header(&request(headers)), want, "{headers:?}");
    }
}
