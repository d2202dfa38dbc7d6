use super::*;

const S: i64 = 1000;

#[test]
fn a_drain_ends_when_the_calls_are_done_and_the_peers_had_time_to_see_it() {
    let grace = Duration::from_millis(1500);
    let limit = Duration::from_secs(60);
    let start = 1_000_000;
    // (ms since the drain began, calls in progress, expected)
    let cases = [
        (0, 0, None),
        (1_499, 0, None),
        (1_500, 0, Some(Stop::Drained)),
        (1_500, 1, None),
        (30 * S, 3, None),
        (59_999, 1, None),
        (60 * S, 1, Some(Stop::DrainTimeout)),
        (60 * S, 0, Some(Stop::Drained)),
        (90 * S, 7, Some(Stop::DrainTimeout)),
        // A clock that went backwards is no time passed.
        (-5 * S, 0, None),
    ];
    for (after, calls, want) in cases {
        assert_eq!(
            drain_end(start + after, start, calls, grace, limit),
            want,
            "{after} ms, {calls} calls"
        );
    }
}

#[test]
fn a_zero_drain_timeout_hangs_up_at_once_but_an_idle_node_still_drains() {
    let grace = Duration::from_millis(1500);
    assert_eq!(
        drain_end(10, 10, 2, grace, Duration::ZERO),
        Some(Stop::DrainTimeout)
    );
    assert_eq!(
        drain_end(10, 10, 0, grace, Duration::ZERO),
        Some(Stop::DrainTimeout)
    );
    assert_eq!(grace_of_2s(), Duration::from_millis(2500));
}

fn grace_of_2s() -> Duration {
    grace(Duration::from_secs(2))
}

fn inputs() -> ReadyInputs {
    ReadyInputs {
        draining: false,
        refusing: false,
        shed_level: 0,
        calls: 12,
        capacity: 500,
        beat_ok_ms: 100 * S,
        started_ms: 50 * S,
        now_ms: 101 * S,
        ttl: Duration::from_secs(6),
    }
}

#[test]
fn readiness_names_the_first_reason_a_node_takes_no_calls() {
    let ready = readiness(&inputs());
    assert_eq!(ready.state, ReadyState::Ready);
    assert_eq!(ready.detail, "12 of 500 calls in progress");
    let cases: Vec<(ReadyInputs, ReadyState, &str)> = vec![
        (
            ReadyInputs {
                draining: true,
                ..inputs()
            },
            ReadyState::Draining,
            "no new calls, 12 in progress",
        ),
        (
            ReadyInputs {
                draining: true,
                refusing: true,
                beat_ok_ms: 0,
                ..inputs()
            },
            ReadyState::Draining,
            "exits when they end",
        ),
        (
            ReadyInputs {
                now_ms: 107 * S,
                ..inputs()
            },
            ReadyState::DatabaseUnreachable,
            "no heartbeat written for 7.0 s (heartbeat.ttl 6.0 s)",
        ),
        (
            ReadyInputs {
                beat_ok_ms: 0,
                ..inputs()
            },
            ReadyState::DatabaseUnreachable,
            "no heartbeat written since it started 51.0 s ago",
        ),
        // Just started, no beat written yet: not judged before heartbeat.ttl has passed.
        (
            ReadyInputs {
                beat_ok_ms: 0,
                started_ms: 98 * S,
                ..inputs()
            },
            ReadyState::Ready,
            "12 of 500",
        ),
        (
            ReadyInputs {
                refusing: true,
                shed_level: 3,
                ..inputs()
            },
            ReadyState::Refusing,
            "no new calls: shed level 3, 12 of 500 calls",
        ),
        (
            ReadyInputs {
                refusing: true,
                now_ms: 120 * S,
                ..inputs()
            },
            ReadyState::DatabaseUnreachable,
            "other nodes count this node out",
        ),
        // At the TTL exactly the heartbeat still counts.
        (
            ReadyInputs {
                now_ms: 106 * S,
                ..inputs()
            },
            ReadyState::Ready,
            "calls in progress",
        ),
    ];
    for (input, state, words) in cases {
        let got = readiness(&input);
        assert_eq!(got.state, state, "{input:?}");
        assert!(got.detail.contains(words), "{input:?}: {}", got.detail);
        assert_eq!(got.http_status() == 200, state == ReadyState::Ready);
    }
}
