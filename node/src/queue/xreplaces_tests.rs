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

#[test]
fn a_search_asked_of_several_nodes_at_once_takes_the_first_that_holds_the_call() {
    use Answer::{Failed, Took};
    use Heard::{Fail, Late, Take, Wait};
    // (case, nodes asked, answers in the order they arrive, what each one does)
    type Case<'a> = (&'a str, usize, Vec<(Answer, Heard)>);
    let cases: Vec<Case> = vec![
        ("one node takes it", 1, vec![(Took, Take)]),
        (
            "the holder answers first: the silent node's answer comes late",
            2,
            vec![(Took, Take), (Failed(None), Late)],
        ),
        (
            "481s first, then the holder",
            3,
            vec![
                (Failed(Some(481)), Wait),
                (Failed(Some(481)), Wait),
                (Took, Take),
            ],
        ),
        (
            "a silent node and the holder: the holder wins whatever the order",
            2,
            vec![(Failed(None), Wait), (Took, Take)],
        ),
        (
            "the holder refuses: its status, the rest late",
            3,
            vec![
                (Failed(Some(481)), Wait),
                (Failed(Some(403)), Fail(403)),
                (Failed(None), Late),
            ],
        ),
        (
            "a 2xx without a usable leg is a failure of the holder",
            2,
            vec![(Failed(Some(200)), Fail(500)), (Took, Late)],
        ),
        (
            "every node answers 481",
            2,
            vec![(Failed(Some(481)), Wait), (Failed(Some(481)), Fail(481))],
        ),
        (
            "nobody holds it and one node is silent: 408",
            3,
            vec![
                (Failed(Some(481)), Wait),
                (Failed(None), Wait),
                (Failed(Some(481)), Fail(408)),
            ],
        ),
        (
            "the only node is silent",
            1,
            vec![(Failed(None), Fail(408)), (Failed(Some(481)), Late)],
        ),
        (
            "an answer beyond the nodes asked",
            1,
            vec![(Failed(Some(481)), Fail(481)), (Took, Late)],
        ),
        (
            "nothing asked: anything heard is late",
            0,
            vec![(Took, Late)],
        ),
    ];
    for (case, asked, answers) in cases {
        let mut g = Gather::new(asked);
        for (i, (answer, want)) in answers.into_iter().enumerate() {
            assert_eq!(g.hear(answer), want, "{case}: answer {i} {answer:?}");
        }
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

/// Call B's Replaces header, naming the dialog its proofs cover.
const B_HEADER: &str = "b@p1;to-tag=N;from-tag=P";

/// Call B of phone "p1" (2001), the call the proofs are about.
fn call_b() -> Replaces {
    replaces("b@p1", "N", "P")
}

/// A proof by this cluster that phone 2001 takes call B with the INVITE "x1", made at `NOW`.
fn good() -> String {
    let signer = Signer::with_client(ClusterKey::new(SECRET), 7);
    prove(&signer, &call_b(), "2001", "x1", NOW)
}

/// What a believed proof of [`good`] yields.
fn taken() -> Result<(Replaces, String), Forged> {
    Ok((call_b(), "2001".to_string()))
}

fn bad_mac() -> Result<(Replaces, String), Forged> {
    Err(Forged::Refused(Refused::BadMac))
}

/// A verifier of this cluster that takes clocks up to 30 s apart.
fn verifier() -> Verifier {
    Verifier::new(ClusterKey::new(SECRET), Duration::from_secs(30))
}

/// Checks every case, each with a fresh verifier: no case sees another's replay record.
fn run(cases: Vec<Case>) {
    for (header, proof, by, now, want) in cases {
        let got = check(&verifier(), header, proof.as_deref(), by, now);
        assert_eq!(got, want, "{header:?} {proof:?} {by} {now}");
    }
}

/// A proof is believed while the receiver's clock is within 30 s of the signer's.
#[test]
fn a_proof_holds_within_30s_of_the_receivers_clock() {
    assert_eq!(header_value(&call_b()), B_HEADER);
    let good = good();
    assert!(good.starts_with("2001 cf1 "), "{good}");
    let stale = |skew_ms| {
        Err(Forged::Refused(Refused::Stale {
            skew_ms,
            limit_ms: 30_000,
        }))
    };
    run(vec![
        (B_HEADER, Some(good.clone()), "x1", NOW, taken()),
        (B_HEADER, Some(good.clone()), "x1", NOW + 29_000, taken()),
        (B_HEADER, Some(good.clone()), "x1", NOW - 29_000, taken()),
        (
            B_HEADER,
            Some(good.clone()),
            "x1",
            NOW + 31_000,
            stale(31_000),
        ),
        (B_HEADER, Some(good), "x1", NOW - 45_000, stale(45_000)),
    ]);
}

/// A proof binds the cluster's secret, the phone, the dialog and the INVITE: change any and it
/// is refused; without one the INVITE is unsigned.
#[test]
fn a_proof_binds_secret_phone_dialog_and_invite() {
    let good = good();
    let other = Signer::with_client(
        ClusterKey::new("another-cluster-secret-long-enough-9876"),
        7,
    );
    run(vec![
        // No proof: a phone or an attacker sending the INVITE itself.
        (B_HEADER, None, "x1", NOW, Err(Forged::Unsigned)),
        // Another secret, another phone claimed, another dialog named, another INVITE.
        (
            B_HEADER,
            Some(prove(&other, &call_b(), "2001", "x1", NOW)),
            "x1",
            NOW,
            bad_mac(),
        ),
        (
            B_HEADER,
            Some(good.replacen("2001", "2004", 1)),
            "x1",
            NOW,
            bad_mac(),
        ),
        (
            "c@p2;to-tag=N2;from-tag=P2",
            Some(good.clone()),
            "x1",
            NOW,
            bad_mac(),
        ),
        (
            "b@p1;to-tag=P;from-tag=N",
            Some(good.clone()),
            "x1",
            NOW,
            bad_mac(),
        ),
        (
            "b@p1;to-tag=N;from-tag=P;early-only",
            Some(good.clone()),
            "x1",
            NOW,
            bad_mac(),
        ),
        (B_HEADER, Some(good), "x2", NOW, bad_mac()),
    ]);
}

/// Proofs and headers that do not parse are refused as malformed.
#[test]
fn malformed_proofs_and_headers_are_refused() {
    let good = good();
    let malformed = Err(Forged::Refused(Refused::Malformed));
    run(vec![
        (B_HEADER, Some("2001".into()), "x1", NOW, malformed.clone()),
        (
            B_HEADER,
            Some("2001 cf1 1 2".into()),
            "x1",
            NOW,
            malformed.clone(),
        ),
        (
            B_HEADER,
            Some(format!("{} {}", "d".repeat(65), &good[5..])),
            "x1",
            NOW,
            malformed.clone(),
        ),
        (B_HEADER, Some(String::new()), "x1", NOW, malformed),
        (
            "b@p1;to-tag=N",
            Some(good),
            "x1",
            NOW,
            Err(Forged::Malformed),
        ),
    ]);
}

/// The same proof twice at one node: the second is a replay.
#[test]
fn a_proof_is_taken_once() {
    let good = good();
    let v = verifier();
    assert_eq!(check(&v, B_HEADER, Some(&good), "x1", NOW), taken());
    assert_eq!(
        check(&v, B_HEADER, Some(&good), "x1", NOW + 1),
        Err(Forged::Refused(Refused::Replayed))
    );
}

/// Each refusal answers the INVITE with its status.
#[test]
fn forgeries_answer_with_their_status() {
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
