//! Tests for the shared balancer: pending counts across decisions, view swaps, snapshots.

use std::collections::HashMap;

use super::*;
use crate::testutil::{node, NodeExt, NOW};

const ME: &str = "main-a";

fn balancer(role: Role) -> Balancer {
    Balancer::new(ME, role, LbConfig::default())
}

/// This node cannot take calls, so every unmarked INVITE is redirected or refused.
fn full() -> LocalLoad {
    LocalLoad {
        calls: 100,
        capacity: 100,
        refusing: false,
        draining: false,
    }
}

fn idle() -> LocalLoad {
    LocalLoad {
        calls: 0,
        capacity: 100,
        refusing: false,
        draining: false,
    }
}

fn three_equal_peers() -> Vec<NodeStatus> {
    vec![
        node("main-b", 12, 0, 100),
        node("main-c", 13, 0, 100),
        node("extra-d", 14, 0, 100).role(Role::Extra),
    ]
}

/// Runs `n` decisions and counts them: redirect targets by name, plus "handle" and "refuse".
fn tally(lb: &Balancer, n: usize, local: LocalLoad) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for _ in 0..n {
        let key = match lb.decide(false, local) {
            Decision::Handle => "handle".to_owned(),
            Decision::Refuse => "refuse".to_owned(),
            Decision::Redirect { name, .. } => name,
        };
        *counts.entry(key).or_default() += 1;
    }
    counts
}

#[test]
fn defaults_match_the_config_reference() {
    let config = LbConfig::default();
    assert_eq!(
        (config.ttl, config.band),
        (Duration::from_secs(6), DEFAULT_BAND)
    );
    let lb = balancer(Role::Main);
    assert_eq!(
        (lb.self_name(), lb.role(), lb.config()),
        (ME, Role::Main, config)
    );
}

#[test]
fn pending_spreads_a_burst_across_equal_nodes() {
    let lb = balancer(Role::Main);
    lb.replace_view(three_equal_peers(), NOW);
    let counts = tally(&lb, 100, full());
    for name in ["main-b", "main-c", "extra-d"] {
        let got = counts.get(name).copied().unwrap_or(0);
        assert!(got >= 25, "{name} got {got} of 100: {counts:?}");
        assert_eq!(lb.pending(name) as usize, got, "{name}");
    }
    assert_eq!(counts.values().sum::<usize>(), 100);
}

#[test]
fn redirect_carries_the_target_sip_address() {
    let lb = balancer(Role::Main);
    lb.replace_view(vec![node("main-b", 12, 0, 100)], NOW);
    let want = Decision::Redirect {
        name: "main-b".to_owned(),
        sip: "127.0.0.12:5060".parse().expect("literal address"),
    };
    assert_eq!(lb.decide(false, full()), want);
}

#[test]
fn replace_view_resets_pending() {
    let lb = balancer(Role::Main);
    let rows = vec![node("main-b", 12, 0, 10)];
    lb.replace_view(rows.clone(), NOW);
    let counts = tally(&lb, 12, full());
    assert_eq!(
        (counts.get("main-b"), counts.get("refuse")),
        (Some(&10), Some(&2)),
        "{counts:?}"
    );
    assert_eq!(lb.pending("main-b"), 10);

    lb.replace_view(rows, NOW + 2_000);
    assert_eq!(lb.pending("main-b"), 0);
    assert_eq!(tally(&lb, 1, full()).get("main-b"), Some(&1));
}

fn answer(calls: u32, capacity: u32) -> ProbeLoad {
    ProbeLoad {
        calls,
        capacity,
        shed_level: 0,
        draining: false,
        refusing: false,
    }
}

/// One step of a database outage as a main node lives it.
enum Step {
    /// The heartbeat table read at NOW + ms gave these rows.
    Read(i64, Vec<NodeStatus>),
    /// The read at NOW + ms failed.
    Hold(i64),
    /// The peer answered a probe at NOW + ms with (calls, capacity).
    Answer(&'static str, i64, u32, u32),
    /// The probes found these peers down.
    Down(&'static [&'static str]),
    /// The next `n` decisions for a full node go: (redirects by name, refused).
    Decide(usize, &'static [(&'static str, usize)], usize),
    /// The pending count of the peer.
    Pending(&'static str, u32),
}

fn run(what: &str, steps: Vec<Step>) {
    let lb = balancer(Role::Main);
    for (i, step) in steps.into_iter().enumerate() {
        match step {
            Step::Read(at, rows) => lb.replace_view(rows, NOW + at),
            Step::Hold(at) => lb.hold(NOW + at),
            Step::Answer(peer, at, calls, capacity) => {
                lb.answered(peer, answer(calls, capacity), NOW + at)
            }
            Step::Down(names) => lb.set_down(names.iter().map(|n| n.to_string()).collect()),
            Step::Decide(n, redirects, refused) => {
                let counts = tally(&lb, n, full());
                let mut want: HashMap<String, usize> = redirects
                    .iter()
                    .map(|(name, n)| (name.to_string(), *n))
                    .collect();
                if refused > 0 {
                    want.insert("refuse".to_owned(), refused);
                }
                assert_eq!(counts, want, "{what}: step {i}");
            }
            Step::Pending(peer, want) => assert_eq!(lb.pending(peer), want, "{what}: step {i}"),
        }
    }
}

#[test]
fn a_database_outage_as_a_main_node_lives_it() {
    use Step::*;
    let two = || vec![node("main-b", 12, 0, 10), node("main-c", 13, 0, 10)];
    let cases: Vec<(&str, Vec<Step>)> = vec![
        (
            "without answers, a held view ages out like the heartbeats",
            vec![
                Read(0, two()),
                Decide(2, &[("main-b", 1), ("main-c", 1)], 0),
                Hold(5_999),
                Pending("main-b", 1),
                Decide(2, &[("main-b", 1), ("main-c", 1)], 0),
                Hold(6_000),
                Decide(1, &[], 1),
            ],
        ),
        (
            "peers that answer stay, long after the TTL, with the answered load",
            vec![
                Read(0, two()),
                Hold(2_000),
                Answer("main-b", 59_500, 2, 10),
                Answer("main-c", 59_500, 6, 10),
                Hold(60_000),
                Decide(4, &[("main-b", 4)], 0),
                Pending("main-b", 4),
                Decide(2, &[("main-b", 1), ("main-c", 1)], 0),
            ],
        ),
        (
            "an answer while held takes effect at once and restarts the pending count",
            vec![
                Read(0, two()),
                Hold(2_000),
                Decide(2, &[("main-b", 1), ("main-c", 1)], 0),
                Answer("main-b", 2_500, 9, 10),
                Pending("main-b", 0),
                Pending("main-c", 1),
                Decide(2, &[("main-c", 2)], 0),
            ],
        ),
        (
            "a peer that stops answering is out by the probes, then by age",
            vec![
                Read(0, two()),
                Hold(2_000),
                Answer("main-b", 9_000, 0, 10),
                Answer("main-c", 9_000, 0, 10),
                Down(&["main-c"]),
                Hold(9_500),
                Decide(2, &[("main-b", 2)], 0),
                Down(&[]),
                Answer("main-b", 15_500, 0, 10),
                Hold(16_000),
                Decide(2, &[("main-b", 2)], 0),
            ],
        ),
        (
            "answers do not outvote heartbeats when the table is read",
            vec![
                Read(0, two()),
                Answer("main-b", 500, 0, 10),
                Decide(2, &[("main-b", 1), ("main-c", 1)], 0),
                Read(
                    7_000,
                    vec![
                        node("main-b", 12, 0, 10),
                        node("main-c", 13, 0, 10).aged(-7_000),
                    ],
                ),
                Answer("main-b", 7_500, 0, 10),
                Decide(2, &[("main-c", 2)], 0),
            ],
        ),
    ];
    for (what, steps) in cases {
        run(what, steps);
    }
}

#[test]
fn held_reports_whether_the_last_read_failed() {
    let lb = balancer(Role::Main);
    assert!(!lb.held());
    lb.replace_view(vec![node("main-b", 12, 0, 10)], NOW);
    lb.hold(NOW + 2_000);
    assert!(lb.held());
    lb.replace_view(vec![node("main-b", 12, 0, 10)], NOW + 4_000);
    assert!(!lb.held());
}

#[test]
fn empty_balancer_handles_what_it_can() {
    let lb = balancer(Role::Main);
    assert_eq!(lb.decide(false, idle()), Decision::Handle);
    assert_eq!(lb.decide(false, full()), Decision::Refuse);
    assert!(lb.snapshot(NOW).is_empty());
}

#[test]
fn marked_and_extra_never_redirect_nor_count_pending() {
    for (role, marked) in [
        (Role::Main, true),
        (Role::Extra, false),
        (Role::Extra, true),
    ] {
        let lb = balancer(role);
        lb.replace_view(three_equal_peers(), NOW);
        let busy = LocalLoad {
            calls: 99,
            ..idle()
        };
        assert_eq!(
            lb.decide(marked, busy),
            Decision::Handle,
            "{role} marked={marked}"
        );
        assert_eq!(
            lb.decide(marked, full()),
            Decision::Refuse,
            "{role} marked={marked}"
        );
        assert_eq!(
            lb.pending("main-b") + lb.pending("main-c") + lb.pending("extra-d"),
            0
        );
    }
}

#[test]
fn clones_share_view_and_pending() {
    let lb = balancer(Role::Main);
    let other = lb.clone();
    other.replace_view(vec![node("main-b", 12, 0, 10)], NOW);
    tally(&lb, 4, full());
    assert_eq!(other.pending("main-b"), 4);
    assert!(Arc::ptr_eq(&lb.view(), &other.view()));
}

#[test]
fn concurrent_decisions_count_every_redirect() {
    let lb = balancer(Role::Main);
    lb.replace_view(
        three_equal_peers()
            .into_iter()
            .map(|mut n| {
                n.capacity = 10_000;
                n
            })
            .collect(),
        NOW,
    );
    std::thread::scope(|s| {
        for _ in 0..4 {
            let lb = lb.clone();
            s.spawn(move || tally(&lb, 300, full()));
        }
    });
    let pending: Vec<u32> = ["main-b", "main-c", "extra-d"]
        .iter()
        .map(|n| lb.pending(n))
        .collect();
    assert_eq!(pending.iter().sum::<u32>(), 1_200, "{pending:?}");
    let (min, max) = (pending.iter().min(), pending.iter().max());
    assert!(
        max.zip(min).is_some_and(|(max, min)| max - min <= 1),
        "uneven under contention: {pending:?}"
    );
}

#[test]
fn snapshot_reports_every_node_at_request_time() {
    let lb = balancer(Role::Main);
    let rows = vec![
        node("main-c", 13, 5, 10).draining(),
        node("main-b", 12, 0, 10),
        node("extra-d", 14, 1, 10).aged(4_000),
    ];
    lb.replace_view(rows, NOW);
    tally(&lb, 2, full());
    let got: Vec<_> = lb
        .snapshot(NOW + 3_000)
        .into_iter()
        .map(|r| (r.name, r.alive, r.accepting, r.pending, r.heartbeat_age_ms))
        .collect();
    let want = [
        ("extra-d".to_owned(), false, false, 1, 7_000),
        ("main-b".to_owned(), true, true, 1, 3_000),
        ("main-c".to_owned(), true, false, 0, 3_000),
    ];
    assert_eq!(got, want);
}

#[test]
fn dedicated_redirector_sends_everything_away_while_peers_can_take_it() {
    let config = LbConfig {
        prefer_self: false,
        ..LbConfig::default()
    };
    let b = Balancer::new(ME, Role::Main, config);
    b.replace_view(vec![node("peer", 13, 0, 2)], NOW);
    let idle = LocalLoad {
        calls: 0,
        capacity: 10,
        refusing: false,
        draining: false,
    };
    assert!(matches!(b.decide(false, idle), Decision::Redirect { .. }));
    assert!(matches!(b.decide(false, idle), Decision::Redirect { .. }));
    // The peer is full (2 pending on capacity 2): the redirector keeps the call.
    assert_eq!(b.decide(false, idle), Decision::Handle);
}

/// A small deterministic random source for the simulation (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Exponentially distributed with the given mean.
    fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.next()).ln()
    }
}

/// What a simulated steady load gave: per-node means and how the samples spread.
#[derive(Debug)]
struct Spread {
    means: Vec<f64>,
    /// Share of samples (one a second) with every node within ±25 % of the average, or within
    /// ±2 calls when the average is under 20.
    within: f64,
    redirect_ratio: f64,
}

/// Simulates `concurrent` calls on average (Poisson arrivals, exponential holding times of
/// `hold_s`) arriving at main-a, with main-b and extra-c as peers of capacity 500; heartbeats
/// every 2 s. Returns the spread over `minutes` after a warm-up.
fn simulate(concurrent: f64, hold_s: f64, minutes: u32, seed: u64, band: Band) -> Spread {
    const STEP_MS: i64 = 100;
    const BEAT_MS: i64 = 2_000;
    let names = ["main-a", "main-b", "extra-c"];
    let config = LbConfig {
        band,
        ..LbConfig::default()
    };
    let lb = Balancer::new("main-a", Role::Main, config);
    let mut rng = Rng(seed);
    // Per node: the end times (ms) of its calls.
    let mut calls: Vec<Vec<i64>> = vec![Vec::new(); 3];
    let rate_per_ms = concurrent / hold_s / 1000.0;
    let warmup_ms = 5 * 60_000;
    let end_ms = warmup_ms + i64::from(minutes) * 60_000;
    let mut next_arrival = rng.exp(1.0 / rate_per_ms) as i64;
    let (mut offered, mut redirected) = (0u64, 0u64);
    let (mut samples, mut good) = (0u64, 0u64);
    let mut sums = [0f64; 3];
    let mut now = 0i64;
    while now < end_ms {
        for ends in calls.iter_mut() {
            ends.retain(|&e| e > now);
        }
        if now % BEAT_MS == 0 {
            let rows = names[1..]
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let mut row = node(name, 12 + i as u8, calls[i + 1].len() as u32, 500);
                    row.updated_at_ms = NOW + now;
                    if *name == "extra-c" {
                        row.role = Role::Extra;
                    }
                    row
                })
                .collect();
            lb.replace_view(rows, NOW + now);
        }
        while next_arrival <= now {
            let local = LocalLoad {
                calls: calls[0].len() as u32,
                capacity: 500,
                refusing: false,
                draining: false,
            };
            let target = match lb.decide(false, local) {
                Decision::Handle => 0,
                Decision::Redirect { name, .. } => {
                    redirected += 1;
                    names.iter().position(|n| *n == name).unwrap_or(0)
                }
                Decision::Refuse => usize::MAX,
            };
            offered += 1;
            if let Some(ends) = calls.get_mut(target) {
                ends.push(now + (rng.exp(hold_s) * 1000.0) as i64);
            }
            next_arrival += (rng.exp(1.0 / rate_per_ms) as i64).max(1);
        }
        if now >= warmup_ms && now % 1_000 == 0 {
            let counts: Vec<f64> = calls.iter().map(|c| c.len() as f64).collect();
            let mean = counts.iter().sum::<f64>() / 3.0;
            let ok = if mean < 20.0 {
                counts.iter().all(|c| (c - mean).abs() <= 2.0)
            } else {
                counts.iter().all(|c| (c - mean).abs() <= 0.25 * mean)
            };
            samples += 1;
            good += u64::from(ok);
            for (sum, c) in sums.iter_mut().zip(&counts) {
                *sum += c;
            }
        }
        now += STEP_MS;
    }
    Spread {
        means: sums.iter().map(|s| s / samples as f64).collect(),
        within: good as f64 / samples as f64,
        redirect_ratio: redirected as f64 / offered as f64,
    }
}

/// The carrier sends every call to main-a; with the default band the calls still spread evenly
/// (each node's mean within max/min 1.2, or ±2 calls of the average under 20 each; nine samples
/// in ten within ±25 %, or ±2 calls, of the average: 15–25 each at 60 calls), while main-a
/// redirects little more than the two thirds an even spread needs.
#[test]
fn steady_load_spreads_evenly_over_three_nodes() {
    for (concurrent, seed) in [(15.0, 1), (60.0, 2), (300.0, 3), (900.0, 4)] {
        let spread = simulate(concurrent, 120.0, 30, seed, DEFAULT_BAND);
        let (lo, hi) = spread
            .means
            .iter()
            .fold((f64::MAX, 0f64), |(lo, hi), &m| (lo.min(m), hi.max(m)));
        let avg = spread.means.iter().sum::<f64>() / 3.0;
        let even = if avg < 20.0 {
            spread.means.iter().all(|m| (m - avg).abs() <= 2.0)
        } else {
            hi / lo <= 1.2
        };
        assert!(even, "{concurrent} calls: {spread:?}");
        assert!(spread.within >= 0.9, "{concurrent} calls: {spread:?}");
        assert!(
            (0.55..=0.70).contains(&spread.redirect_ratio),
            "{concurrent} calls: {spread:?}"
        );
    }
}
