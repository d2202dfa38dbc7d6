use super::*;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

fn main_target(ip: &str) -> Step {
    Step::Try(Target {
        uri: format!("sip:sales@{ip}:5060"),
        dest: addr(&format!("{ip}:5060")),
        redirected: false,
    })
}

fn redirect(to: &str) -> Outcome {
    Outcome::Redirect(Some(format!("sip:sales@{to};cfr=main-a")))
}

#[test]
fn responses_are_classified_like_a_carrier_does() {
    for (status, want) in [
        (200, Outcome::Answered),
        (302, Outcome::Redirect(None)),
        (408, Outcome::Unavailable(408)),
        (500, Outcome::Unavailable(500)),
        (503, Outcome::Unavailable(503)),
        (403, Outcome::Refused(403)),
        (486, Outcome::Refused(486)),
        (603, Outcome::Refused(603)),
    ] {
        assert_eq!(Outcome::of(status, None), want, "{status}");
    }
}

/// (outcomes in turn, the steps the carrier takes after each)
#[test]
fn the_route_follows_302s_and_fails_over_across_the_main_nodes() {
    let follow = |to: &str| {
        Step::Try(Target {
            uri: format!("sip:sales@{to};cfr=main-a"),
            dest: addr(to),
            redirected: true,
        })
    };
    let cases: Vec<(Vec<Outcome>, Vec<Step>)> = vec![
        // Answered at once.
        (vec![Outcome::Answered], vec![Step::Talk]),
        // A 302 to the extra node, answered there.
        (
            vec![redirect("127.0.0.13:5060"), Outcome::Answered],
            vec![follow("127.0.0.13:5060"), Step::Talk],
        ),
        // main-a is down (no answer), main-b answers.
        (
            vec![Outcome::Unavailable(408), Outcome::Answered],
            vec![main_target("127.0.0.12"), Step::Talk],
        ),
        // The redirect target is full (503): on to the next main node.
        (
            vec![redirect("127.0.0.13:5060"), Outcome::Unavailable(503)],
            vec![follow("127.0.0.13:5060"), main_target("127.0.0.12")],
        ),
        // Every main node unavailable: give up.
        (
            vec![Outcome::Unavailable(503), Outcome::Unavailable(503)],
            vec![
                main_target("127.0.0.12"),
                Step::GiveUp("no node took the call".into()),
            ],
        ),
        // Refused: no failover.
        (
            vec![Outcome::Refused(403)],
            vec![Step::GiveUp("refused with 403".into())],
        ),
        // A 302 without a usable Contact counts as the node failing.
        (
            vec![
                Outcome::Redirect(None),
                Outcome::Redirect(Some("garbage".into())),
            ],
            vec![
                main_target("127.0.0.12"),
                Step::GiveUp("no node took the call".into()),
            ],
        ),
        // At most three redirects, then the next main node.
        (
            vec![
                redirect("127.0.0.13:5060"),
                redirect("127.0.0.13:5060"),
                redirect("127.0.0.13:5060"),
                redirect("127.0.0.13:5060"),
            ],
            vec![
                follow("127.0.0.13:5060"),
                follow("127.0.0.13:5060"),
                follow("127.0.0.13:5060"),
                main_target("127.0.0.12"),
            ],
        ),
    ];
    for (i, (outcomes, want)) in cases.into_iter().enumerate() {
        let mut route = Route::new(
            vec![addr("127.0.0.11:5060"), addr("127.0.0.12:5060")],
            "sales",
        );
        assert_eq!(route.start(), main_target("127.0.0.11"), "case {i}");
        let got: Vec<Step> = outcomes.iter().map(|o| route.after(o)).collect();
        assert_eq!(got, want, "case {i}");
    }
}

#[test]
fn a_route_without_main_nodes_gives_up() {
    let mut route = Route::new(vec![], "sales");
    assert_eq!(route.start(), Step::GiveUp("no node took the call".into()));
}
