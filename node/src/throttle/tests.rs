use super::*;

const MIN: i64 = 60_000;

fn policy() -> Policy {
    // 5 failures in 15 min: 15 min ban, doubling up to 2 h.
    Policy::new(
        5,
        Duration::from_secs(15 * 60),
        Duration::from_secs(15 * 60),
        Duration::from_secs(2 * 3600),
    )
}

/// One step of a scenario: at `t` (minutes), from source `src` about `subject`.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// A failed check; the bans expected to start.
    Fail(i64, &'static str, &'static str, &'static [(Scope, i64)]),
    /// A successful check.
    Ok(i64, &'static str, &'static str),
    /// What `check` says.
    Gate(i64, &'static str, &'static str, Option<Scope>),
}

fn run(name: &str, steps: &[Step]) {
    run_with(name, policy(), steps)
}

/// Sources are their own peers here (see `trust_is_per_peer_not_per_source` for finer peers).
fn run_with(name: &str, policy: Policy, steps: &[Step]) {
    let mut t: Throttle<String> = Throttle::new(policy);
    for (i, step) in steps.iter().enumerate() {
        match *step {
            Step::Fail(at, src, subject, want) => {
                let got = t.failure(&src.to_string(), subject, at * MIN);
                let got: Vec<(Scope, i64)> = got
                    .iter()
                    .map(|b| (b.scope, (b.until_ms - at * MIN) / MIN))
                    .collect();
                assert_eq!(got, want, "{name}: step {i} {step:?}");
            }
            Step::Ok(at, src, subject) => {
                t.success(&src.to_string(), &src.to_string(), subject, at * MIN)
            }
            Step::Gate(at, src, subject, want) => {
                let got = match t.check(&src.to_string(), &src.to_string(), subject, at * MIN) {
                    Gate::Open => None,
                    Gate::Banned { scope, .. } | Gate::Busy { scope } => Some(scope),
                };
                assert_eq!(got, want, "{name}: step {i} {step:?}");
            }
        }
    }
}

use Scope::{Source as Src, Subject as Sub};
use Step::{Fail, Gate as G, Ok as Good};

#[test]
fn five_failures_ban_the_source_and_the_subject_for_fifteen_minutes() {
    run(
        "five",
        &[
            Fail(0, "a", "1001", &[]),
            Fail(1, "a", "1001", &[]),
            Fail(2, "a", "1001", &[]),
            Fail(3, "a", "1001", &[]),
            G(3, "a", "1001", None),
            Fail(4, "a", "1001", &[(Src, 15), (Sub, 15)]),
            // Logged once: more failures during the ban start nothing.
            Fail(5, "a", "1001", &[]),
            G(5, "a", "1001", Some(Src)),
            G(5, "a", "1002", Some(Src)),
            G(5, "b", "1001", Some(Sub)),
            G(5, "b", "1002", None),
            G(18, "a", "1001", Some(Src)),
            G(19, "a", "1001", None),
        ],
    );
}

#[test]
fn failures_outside_the_window_do_not_add_up() {
    run(
        "window",
        &[
            Fail(0, "a", "1001", &[]),
            Fail(1, "a", "1001", &[]),
            Fail(2, "a", "1001", &[]),
            Fail(3, "a", "1001", &[]),
            // 16 minutes after the first: a new window.
            Fail(16, "a", "1001", &[]),
            Fail(17, "a", "1001", &[]),
            G(17, "a", "1001", None),
        ],
    );
}

#[test]
fn repeated_bans_double_up_to_the_maximum_and_are_forgotten_after_it() {
    let five = |at: i64, bans: &'static [(Scope, i64)]| {
        [
            Fail(at, "a", "x1", &[]),
            Fail(at, "a", "x2", &[]),
            Fail(at, "a", "x3", &[]),
            Fail(at, "a", "x4", &[]),
            Fail(at, "a", "x5", bans),
        ]
    };
    let mut steps = vec![];
    steps.extend(five(0, &[(Src, 15)]));
    steps.extend(five(15, &[(Src, 30)]));
    steps.extend(five(45, &[(Src, 60)]));
    steps.extend(five(105, &[(Src, 120)]));
    steps.extend(five(225, &[(Src, 120)])); // capped at max_ban
                                            // More than max_ban after the last ban ended: a first offence again.
    steps.extend(five(345 + 121, &[(Src, 15)]));
    run("backoff", &steps);
}

#[test]
fn without_trust_a_success_only_resets_the_subject() {
    run(
        "no trust",
        &[
            Good(0, "p", "1001"),
            Fail(1, "a1", "1001", &[]),
            Fail(1, "a2", "1001", &[]),
            Fail(1, "a3", "1001", &[]),
            Fail(1, "a4", "1001", &[]),
            Good(1, "p", "1001"),
            Fail(2, "a5", "1001", &[]),
            Fail(2, "p", "1001", &[]),
            Fail(2, "p", "1001", &[]),
            Fail(2, "p", "1001", &[]),
            Fail(2, "p", "1001", &[(Sub, 15)]),
            // Hot-desk PINs: the phone the agent used before is refused like any other.
            G(3, "p", "1001", Some(Sub)),
            G(3, "b", "1002", None),
        ],
    );
}

#[test]
fn a_success_resets_the_subject_and_trusts_its_peer_but_not_others() {
    run_with(
        "trust",
        policy().trusting(Duration::from_secs(7 * 24 * 3600)),
        &[
            // The real phone "p" succeeds for 1001.
            Good(0, "p", "1001"),
            // A typo, then a success: the subject's count starts over.
            Fail(1, "p", "1001", &[]),
            Good(1, "p", "1001"),
            // Attackers from five places guess at 1001: the subject is banned.
            Fail(2, "a1", "1001", &[]),
            Fail(2, "a2", "1001", &[]),
            Fail(2, "a3", "1001", &[]),
            Fail(2, "a4", "1001", &[]),
            Fail(2, "a5", "1001", &[(Sub, 15)]),
            G(3, "a6", "1001", Some(Sub)),
            // The trusted phone still gets through, and nobody else's subject is touched.
            G(3, "p", "1001", None),
            G(3, "a6", "1002", None),
            // The source count is not reset by a success for one subject.
            Fail(4, "q", "2001", &[]),
            Fail(4, "q", "2002", &[]),
            Fail(4, "q", "2003", &[]),
            Fail(4, "q", "2004", &[]),
            Good(4, "q", "2005"),
            Fail(4, "q", "2006", &[(Src, 15)]),
            // q is trusted for 2005 only.
            G(5, "q", "2005", None),
            G(5, "q", "2007", Some(Src)),
        ],
    );
}

#[test]
fn memory_stays_bounded_under_a_flood_of_sources() {
    let mut p = policy().trusting(Duration::from_secs(3600));
    p.cap = 1000;
    let mut t: Throttle<IpAddr> = Throttle::new(p);
    for i in 0..20_000u32 {
        let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        t.failure(&ip, "1001", i64::from(i));
        t.success(&ip, &ip, &format!("s{i}"), i64::from(i));
    }
    let (sources, subjects, trusted) = t.sizes();
    assert!(sources <= 1000, "{sources}");
    assert!(subjects <= 1000, "{subjects}");
    assert!(trusted <= 1000, "{trusted}");
    // The flood banned the subject it aimed at.
    let last = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    assert!(matches!(
        t.check(&last, &last, "1001", 20_000),
        Gate::Banned {
            scope: Scope::Subject,
            ..
        }
    ));
}

#[test]
fn trust_is_per_peer_not_per_source() {
    // As the registrar uses it: bans per IP address, trust per address and port.
    let p = policy().trusting(Duration::from_secs(60));
    let mut t: Throttle<IpAddr, std::net::SocketAddr> = Throttle::new(p);
    let nat: IpAddr = "203.0.113.9".parse().expect("ip");
    let phone: std::net::SocketAddr = "203.0.113.9:5060".parse().expect("addr");
    let other: std::net::SocketAddr = "203.0.113.9:40000".parse().expect("addr");
    t.success(&nat, &phone, "1001", 0);
    let mut bans = vec![];
    for i in 0..5 {
        bans.extend(t.failure(&nat, "1001", i));
    }
    assert_eq!(
        bans.iter().map(|b| b.scope).collect::<Vec<_>>(),
        [Scope::Source, Scope::Subject]
    );
    assert_eq!(t.check(&nat, &phone, "1001", 10), Gate::Open);
    assert!(matches!(
        t.check(&nat, &other, "1001", 10),
        Gate::Banned {
            scope: Scope::Source,
            ..
        }
    ));
    assert!(matches!(
        t.check(&nat, &phone, "1002", 10),
        Gate::Banned {
            scope: Scope::Source,
            ..
        }
    ));
    // Trust runs out (the ban does not, yet).
    assert!(matches!(
        t.check(&nat, &phone, "1001", 60_001),
        Gate::Banned { .. }
    ));
}

#[test]
fn concurrent_checks_get_no_more_than_the_failures_left() {
    // Five failures allowed: a burst of ten concurrent guesses gets five checks.
    let mut t: Throttle<String> = Throttle::new(policy());
    let (a, s) = ("a".to_string(), "1001");
    let gates: Vec<Gate> = (0..10).map(|_| t.admit(&a, &a, s, 0)).collect();
    assert!(gates[..5].iter().all(|g| *g == Gate::Open), "{gates:?}");
    assert!(
        gates[5..].iter().all(|g| *g
            == Gate::Busy {
                scope: Scope::Source
            }),
        "{gates:?}"
    );
    // Another source guessing at the same subject is held back too.
    let b = "b".to_string();
    assert_eq!(
        t.admit(&b, &b, s, 0),
        Gate::Busy {
            scope: Scope::Subject
        }
    );
    // An abandoned check (no verdict) gives its place back; a success resets the subject.
    t.abandon(&a, s);
    t.success(&a, &a, s, 0);
    assert_eq!(t.admit(&b, &b, "1002", 0), Gate::Open);
    t.abandon(&b, "1002");
    // The three left fail: 3 failures + 0 pending, two more allowed.
    let mut bans = vec![];
    for _ in 0..3 {
        bans.extend(t.failure(&a, s, 1));
    }
    assert!(bans.is_empty(), "{bans:?}");
    assert_eq!(t.admit(&a, &a, s, 2), Gate::Open);
    assert_eq!(t.admit(&a, &a, s, 2), Gate::Open);
    assert_eq!(
        t.admit(&a, &a, s, 2),
        Gate::Busy {
            scope: Scope::Source
        }
    );
    bans.extend(t.failure(&a, s, 3));
    bans.extend(t.failure(&a, s, 3));
    assert_eq!(
        bans.iter().map(|b| b.scope).collect::<Vec<_>>(),
        [Scope::Source, Scope::Subject]
    );
    assert!(matches!(
        t.check(&a, &a, "other", 4),
        Gate::Banned {
            scope: Scope::Source,
            until_ms: 900_003
        }
    ));
}

/// What is done before a gate is asked for: at minute 0, `fails` checks from `src` about
/// `subject` that fail, then `pending` more admitted and still in flight.
type Setup = (&'static str, &'static str, u32, u32);

/// A table row: name, setup, the (source, subject) asked about, at minute, the gate wanted.
type Row = (
    &'static str,
    &'static [Setup],
    (&'static str, &'static str),
    i64,
    Gate,
);

#[test]
fn busy_is_told_apart_from_banned() {
    // max_failures 5 (window and first ban 15 min). Each row: setup, then the gate for
    // (source, subject) at `at` minutes.
    let busy = |scope| Gate::Busy { scope };
    let banned = |scope, min: i64| Gate::Banned {
        scope,
        until_ms: min * MIN,
    };
    #[rustfmt::skip]
    let rows: &[Row] = &[
        ("nothing yet", &[], ("a", "1001"), 0, Gate::Open),
        ("4 in flight", &[("a", "1001", 0, 4)], ("a", "1001"), 0, Gate::Open),
        ("5 in flight: busy", &[("a", "1001", 0, 5)], ("a", "1001"), 0, busy(Src)),
        ("5 in flight, other subject: the source is busy", &[("a", "1001", 0, 5)], ("a", "1002"), 0, busy(Src)),
        ("5 in flight, other source: the subject is busy", &[("a", "1001", 0, 5)], ("b", "1001"), 0, busy(Sub)),
        ("5 in flight, unrelated", &[("a", "1001", 0, 5)], ("b", "1002"), 0, Gate::Open),
        ("3 failed + 1 in flight", &[("a", "1001", 3, 1)], ("a", "1001"), 1, Gate::Open),
        ("3 failed + 2 in flight: busy", &[("a", "1001", 3, 2)], ("a", "1001"), 1, busy(Src)),
        ("4 failed + 1 in flight: busy", &[("a", "1001", 4, 1)], ("a", "1001"), 1, busy(Src)),
        ("failures out of the window no longer count", &[("a", "1001", 4, 1)], ("a", "1001"), 16, Gate::Open),
        ("5 failed: banned, not busy", &[("a", "1001", 5, 0)], ("a", "1001"), 1, banned(Src, 15)),
        ("5 failed: the subject is banned", &[("a", "1001", 5, 0)], ("b", "1001"), 1, banned(Sub, 15)),
        ("5 failed: the source is banned for others", &[("a", "1001", 5, 0)], ("a", "1002"), 1, banned(Src, 15)),
        ("the ban is over", &[("a", "1001", 5, 0)], ("a", "1001"), 16, Gate::Open),
        (
            "a banned source beats a busy subject",
            &[("a", "x1", 5, 0), ("b", "1001", 0, 5)],
            ("a", "1001"), 1, banned(Src, 15),
        ),
        (
            "a banned subject beats a busy source",
            &[("b", "1001", 5, 0), ("c", "y", 0, 5)],
            ("c", "1001"), 1, banned(Sub, 15),
        ),
    ];
    for (name, setup, (src, subject), at, want) in rows {
        let mut t: Throttle<String> = Throttle::new(policy());
        for &(s, sub, fails, pending) in setup.iter() {
            let s = s.to_string();
            for _ in 0..fails {
                assert_eq!(t.admit(&s, &s, sub, 0), Gate::Open, "{name}: setup");
                t.failure(&s, sub, 0);
            }
            for _ in 0..pending {
                assert_eq!(t.admit(&s, &s, sub, 0), Gate::Open, "{name}: setup");
            }
        }
        let src = src.to_string();
        assert_eq!(t.check(&src, &src, subject, at * MIN), *want, "{name}");
        assert_eq!(
            t.admit(&src, &src, subject, at * MIN).is_open(),
            want.is_open(),
            "{name}: admit agrees with check"
        );
    }
}

#[test]
fn ipv6_sources_count_by_their_64_prefix() {
    let cases = [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::"),
        ("2001:db8:1:2::1", "2001:db8:1:2::"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
    ];
    for (ip, want) in cases {
        let ip: IpAddr = ip.parse().expect("test address");
        assert_eq!(source_key(ip).to_string(), want, "{ip}");
    }
}
