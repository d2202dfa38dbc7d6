use std::time::Duration;

use callfleet_sign::ClusterKey;

use super::*;

const SECRET: &str = "a-cluster-secret-long-enough-for-tests-0123";
const NOW: u64 = 1_800_000_000_000;

fn replaces(call_id: &str, to: &str, from: &str) -> Replaces {
    Replaces {
        call_id: call_id.into(),
        to_tag: to.into(),
        from_tag: from.into(),
        early_only: false,
    }
}

#[test]
fn aims() {
    let ours = Ours {
        addrs: vec![
            "127.0.85.2:5060".parse().unwrap(),
            "127.0.85.2:5061".parse().unwrap(),
        ],
        domains: vec![],
    };
    // The live nodes as the balancer sees them: this one, and two others.
    let live: Vec<SocketAddr> = vec![
        "127.0.85.2:5060".parse().unwrap(),
        "127.0.85.1:5060".parse().unwrap(),
        "127.0.85.3:5070".parse().unwrap(),
    ];
    let b = "b%40p1%3Bto-tag%3DN%3Bfrom-tag%3DP";
    let refer = |host: &str| format!("<sip:1002@{host}?Replaces={b}>");
    let node = |a: &str| {
        Ok(Aim::Node(Remote {
            addr: a.parse().unwrap(),
            user: "1002".into(),
            replaces: replaces("b@p1", "N", "P"),
        }))
    };
    let other = |h: &str| Err(Refusal::OtherHost(h.into()));
    let cases: Vec<(Option<String>, Result<Aim, Refusal>)> = vec![
        (Some(refer("127.0.85.2")), Ok(Aim::Here)),
        (Some(refer("127.0.85.2:5061;transport=tls")), Ok(Aim::Here)),
        (Some(refer("127.0.85.1")), node("127.0.85.1:5060")),
        (Some(refer("127.0.85.1:5060")), node("127.0.85.1:5060")),
        (Some(refer("127.0.85.3:5070")), node("127.0.85.3:5070")),
        // A live node's IP on another port, a host no node has, a name: nothing dialled.
        (Some(refer("127.0.85.3")), other("127.0.85.3")),
        (Some(refer("127.0.85.1:5999")), other("127.0.85.1:5999")),
        (Some(refer("192.0.2.9")), other("192.0.2.9")),
        (Some(refer("pbx.example.com")), other("pbx.example.com")),
        // Malformed: the Replaces of a call elsewhere, no Replaces, no user, not SIP.
        (
            Some("<sip:1002@127.0.85.1?Replaces=b%3Bto-tag%3DN>".into()),
            Err(Refusal::Malformed),
        ),
        (
            Some("<sip:1002@127.0.85.1>".into()),
            Err(Refusal::Malformed),
        ),
        (
            Some(format!("<sip:127.0.85.1?Replaces={b}>")),
            Err(Refusal::Malformed),
        ),
        (
            Some(format!("<tel:1002?Replaces={b}>")),
            Err(Refusal::Malformed),
        ),
        (None, Err(Refusal::Malformed)),
    ];
    for (refer_to, want) in cases {
        assert_eq!(aim(refer_to.as_deref(), &ours, &live), want, "{refer_to:?}");
    }
    // With no other live node, another node's address is refused too.
    assert_eq!(
        aim(Some(&refer("127.0.85.1")), &ours, &ours.addrs),
        other("127.0.85.1")
    );
}

#[test]
fn domain_aims() {
    let ours = Ours {
        addrs: vec![
            "127.0.85.2:5060".parse().unwrap(),
            "127.0.85.2:5061".parse().unwrap(),
        ],
        domains: vec!["pbx.example.com".into()],
    };
    let live: Vec<SocketAddr> = vec![
        "127.0.85.2:5060".parse().unwrap(),
        "127.0.85.1:5060".parse().unwrap(),
        "127.0.85.3:5070".parse().unwrap(),
    ];
    let b = "b%40p1%3Bto-tag%3DN%3Bfrom-tag%3DP";
    let refer = |host: &str| format!("<sip:1002@{host}?Replaces={b}>");
    let other = |h: &str| Err(Refusal::OtherHost(h.into()));
    // The domain: this node's calls first, then the other live nodes, each once.
    let cluster = |addrs: &[&str]| {
        Ok(Aim::Cluster(
            addrs
                .iter()
                .map(|a| Remote {
                    addr: a.parse().unwrap(),
                    user: "1002".into(),
                    replaces: replaces("b@p1", "N", "P"),
                })
                .collect(),
        ))
    };
    let both = ["127.0.85.1:5060", "127.0.85.3:5070"];
    let cases: Vec<(Option<String>, Result<Aim, Refusal>)> = vec![
        (Some(refer("127.0.85.2")), Ok(Aim::Here)),
        (Some(refer("pbx.example.com")), cluster(&both)),
        (Some(refer("PBX.example.com:5060")), cluster(&both)),
        (
            Some(refer("pbx.example.com:5061;transport=tls")),
            cluster(&both),
        ),
        (Some(refer("pbx.example.net")), other("pbx.example.net")),
        (
            Some(refer("node1.pbx.example.com")),
            other("node1.pbx.example.com"),
        ),
        (
            Some("<sip:1002@pbx.example.com?Replaces=b%3Bto-tag%3DN>".into()),
            Err(Refusal::Malformed),
        ),
    ];
    for (refer_to, want) in cases {
        assert_eq!(aim(refer_to.as_deref(), &ours, &live), want, "{refer_to:?}");
    }
    // With no other live node, the domain means this node only.
    assert_eq!(
        aim(Some(&refer("pbx.example.com")), &ours, &ours.addrs),
        cluster(&[])
    );
    // A node listed twice by the balancer is asked once.
    let twice: Vec<SocketAddr> = vec![live[1], live[0], live[1], live[2]];
    assert_eq!(
        aim(Some(&refer("pbx.example.com")), &ours, &twice),
        cluster(&both)
    );
    // Without domains configured, the name is another host.
    let bare = Ours {
        addrs: ours.addrs.clone(),
        domains: vec![],
    };
    assert_eq!(
        aim(Some(&refer("pbx.example.com")), &bare, &live),
        other("pbx.example.com")
    );
}

#[test]
fn cluster_search_steps() {
    let cases = [
        (Some(481), Search::Next),
        (None, Search::Next),
        (Some(403), Search::Stop(403)),
        (Some(486), Search::Stop(486)),
        (Some(503), Search::Stop(503)),
        (Some(200), Search::Stop(500)),
        (Some(100), Search::Stop(500)),
    ];
    for (status, want) in cases {
        assert_eq!(search_step(status), want, "{status:?}");
    }
    assert_eq!(search_end(false), 481);
    assert_eq!(search_end(true), 408);
    let found: Result<(), Refusal> = Ok(());
    assert!(!ask_others(&found));
    assert!(ask_others::<()>(&Err(Refusal::NoSuchDialog)));
    for refused in [
        Refusal::OtherPhone,
        Refusal::EarlyOnly,
        Refusal::NotBridged,
        Refusal::Malformed,
        Refusal::OtherHost("x".into()),
    ] {
        assert!(!ask_others::<()>(&Err(refused.clone())), "{refused:?}");
    }
}

/// (Replaces header, proof, the INVITE's Call-ID, the receiver's clock, expected)
type Case<'a> = (
    &'a str,
    Option<String>,
    &'a str,
    u64,
    Result<(Replaces, String), Forged>,
);

#[test]
fn proofs_with_an_injected_clock() {
    let b = replaces("b@p1", "N", "P");
    let b_header = header_value(&b);
    assert_eq!(b_header, "b@p1;to-tag=N;from-tag=P");
    let signer = Signer::with_client(ClusterKey::new(SECRET), 7);
    let other = Signer::with_client(
        ClusterKey::new("another-cluster-secret-long-enough-9876"),
        7,
    );
    let verifier = || Verifier::new(ClusterKey::new(SECRET), Duration::from_secs(30));
    let good = prove(&signer, &b, "2001", "x1", NOW);
    assert!(good.starts_with("2001 cf1 "), "{good}");
    let ok = Ok((b.clone(), "2001".to_string()));
    let stale = |skew_ms| {
        Err(Forged::Refused(Refused::Stale {
            skew_ms,
            limit_ms: 30_000,
        }))
    };
    let bad = Err(Forged::Refused(Refused::BadMac));
    let malformed = Err(Forged::Refused(Refused::Malformed));
    // (Replaces header, proof, the INVITE's Call-ID, the receiver's clock, expected)
    let cases: Vec<Case> = vec![
        (&b_header, Some(good.clone()), "x1", NOW, ok.clone()),
        (
            &b_header,
            Some(good.clone()),
            "x1",
            NOW + 29_000,
            ok.clone(),
        ),
        (
            &b_header,
            Some(good.clone()),
            "x1",
            NOW - 29_000,
            ok.clone(),
        ),
        (
            &b_header,
            Some(good.clone()),
            "x1",
            NOW + 31_000,
            stale(31_000),
        ),
        (
            &b_header,
            Some(good.clone()),
            "x1",
            NOW - 45_000,
            stale(45_000),
        ),
        // No proof: a phone or an attacker sending the INVITE itself.
        (&b_header, None, "x1", NOW, Err(Forged::Unsigned)),
        // Another secret, another phone claimed, another dialog named, another INVITE.
        (
            &b_header,
            Some(prove(&other, &b, "2001", "x1", NOW)),
            "x1",
            NOW,
            bad.clone(),
        ),
        (
            &b_header,
            Some(good.replacen("2001", "2004", 1)),
            "x1",
            NOW,
            bad.clone(),
        ),
        (
            "c@p2;to-tag=N2;from-tag=P2",
            Some(good.clone()),
            "x1",
            NOW,
            bad.clone(),
        ),
        (
            "b@p1;to-tag=P;from-tag=N",
            Some(good.clone()),
            "x1",
            NOW,
            bad.clone(),
        ),
        (
            "b@p1;to-tag=N;from-tag=P;early-only",
            Some(good.clone()),
            "x1",
            NOW,
            bad.clone(),
        ),
        (&b_header, Some(good.clone()), "x2", NOW, bad.clone()),
        // Malformed proofs and headers.
        (&b_header, Some("2001".into()), "x1", NOW, malformed.clone()),
        (
            &b_header,
            Some("2001 cf1 1 2".into()),
            "x1",
            NOW,
            malformed.clone(),
        ),
        (
            &b_header,
            Some(format!("{} {}", "d".repeat(65), &good[5..])),
            "x1",
            NOW,
            malformed.clone(),
        ),
        (&b_header, Some(String::new()), "x1", NOW, malformed),
        (
            "b@p1;to-tag=N",
            Some(good.clone()),
            "x1",
            NOW,
            Err(Forged::Malformed),
        ),
    ];
    for (header, proof, by, now, want) in cases {
        // A fresh verifier each: no case sees another's replay record.
        let got = check(&verifier(), header, proof.as_deref(), by, now);
        assert_eq!(got, want, "{header:?} {proof:?} {by} {now}");
    }
    // The same proof twice at one node: the second is a replay.
    let v = verifier();
    assert_eq!(check(&v, &b_header, Some(&good), "x1", NOW), ok);
    assert_eq!(
        check(&v, &b_header, Some(&good), "x1", NOW + 1),
        Err(Forged::Refused(Refused::Replayed))
    );
    assert_eq!(Forged::Unsigned.status(), 403);
    assert_eq!(Forged::Refused(Refused::BadMac).status(), 403);
    assert_eq!(Forged::Malformed.status(), 400);
}

#[test]
fn checked_replaces_are_judged_like_the_same_node_case() {
    use super::super::attended::{judge, Candidate};
    use rsipstack::dialog::DialogId;
    let lookup = |d: &DialogId| match (d.call_id.as_str(), d.local_tag.as_str()) {
        ("b@p1", "N") => Some(Candidate {
            device: "2001".into(),
            bridged: true,
        }),
        ("r@p1", "N") => Some(Candidate {
            device: "2001".into(),
            bridged: false,
        }),
        ("c@p2", "N") => Some(Candidate {
            device: "2004".into(),
            bridged: true,
        }),
        _ => None,
    };
    let id = |c: &str| DialogId {
        call_id: c.into(),
        local_tag: "N".into(),
        remote_tag: "P".into(),
    };
    let early = Replaces {
        early_only: true,
        ..replaces("b@p1", "N", "P")
    };
    let cases = [
        (replaces("b@p1", "N", "P"), Ok(id("b@p1"))),
        (replaces("c@p2", "N", "P"), Err(Refusal::OtherPhone)),
        (replaces("r@p1", "N", "P"), Err(Refusal::NotBridged)),
        (replaces("zz", "N", "P"), Err(Refusal::NoSuchDialog)),
        (early, Err(Refusal::EarlyOnly)),
    ];
    for (r, want) in cases {
        assert_eq!(judge(&r, "2001", lookup), want, "{r:?}");
    }
}

#[test]
fn notify_statuses() {
    let cases = [
        (Some(200), 200),
        (Some(202), 200),
        (Some(481), 481),
        (Some(403), 403),
        (Some(503), 503),
        (Some(603), 603),
        (Some(180), 500),
        (Some(999), 500),
        (None, 408),
    ];
    for (status, want) in cases {
        assert_eq!(outcome_status(status), want, "{status:?}");
    }
}
