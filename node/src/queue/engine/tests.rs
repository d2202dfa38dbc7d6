//! The queued-call lifecycle, table-driven: each case is a script of (time, event, the
//! actions expected), run on one machine; time is given, never slept.

use super::*;
use Action::*;
use QueueEventKind as K;

const RULES: Rules = Rules {
    max_wait_ms: 60_000,
    announce_every_ms: 20_000,
    wrapup_ms: 5_000,
    record: false,
};

fn ev(kind: K) -> Action {
    Log {
        kind,
        agent: None,
        detail: None,
        at_ms: None,
    }
}

fn ev_agent(kind: K, agent: &str) -> Action {
    Log {
        kind,
        agent: Some(agent.into()),
        detail: None,
        at_ms: None,
    }
}

fn no_answer(agent: &str, status: u16) -> Action {
    Log {
        kind: K::NoAnswer,
        agent: Some(agent.into()),
        detail: Some(status.to_string()),
        at_ms: None,
    }
}

fn offered(agents: &[&str]) -> Event {
    Event::Offered {
        taken: agents.iter().map(|a| a.to_string()).collect(),
    }
}

fn answered(agent: &str) -> Event {
    Event::Answered {
        agent: agent.into(),
    }
}

fn not_answered(agent: &str, status: u16) -> Event {
    Event::NotAnswered {
        agent: agent.into(),
        status,
    }
}

fn released(agent: &str) -> Action {
    Release {
        agent: agent.into(),
        from: AgentState::Ringing,
    }
}

fn caller_bye() -> Ended {
    Ended::new(HangupCause::Normal, HangupSide::Caller)
}

fn complete(agent: &str, side: &str) -> Action {
    Log {
        kind: K::Complete,
        agent: Some(agent.into()),
        detail: Some(side.into()),
        at_ms: None,
    }
}

type Step = (i64, Event, Vec<Action>);

/// The caller bridged to `agent`, the conversation open to listeners (not recorded).
fn bridge(agent: &str) -> Vec<Action> {
    vec![
        Bridge(agent.into()),
        Open(Leg::Listeners),
        ev_agent(K::Answer, agent),
    ]
}

/// Runs `steps` on a call that entered at 0 (not VIP); checks each step's actions and the
/// final phase.
fn run(name: &str, steps: Vec<Step>, last: Phase) {
    let (mut call, first) = QueuedCall::enter(RULES, 0, false);
    let enqueued = Log {
        kind: K::Enqueue,
        agent: None,
        detail: None,
        at_ms: Some(0),
    };
    assert_eq!(first, vec![enqueued, Moh], "{name}: enter");
    for (i, (at, event, want)) in steps.into_iter().enumerate() {
        let got = call.on(at, event.clone());
        assert_eq!(got, want, "{name}: step {i} at {at} ms: {event:?}");
    }
    assert_eq!(call.phase(), &last, "{name}: final phase");
}

#[test]
fn lifecycle() {
    let bridged = |a: &str| Phase::Bridged { agent: a.into() };
    let cases: Vec<(&str, Vec<Step>, Phase)> = vec![
        (
            "one agent answers, the caller hangs up, wrap-up",
            vec![
                (1_000, offered(&["7001"]), vec![ev_agent(K::Offer, "7001")]),
                (4_000, answered("7001"), bridge("7001")),
                (
                    30_000,
                    Event::CallerEnded(caller_bye()),
                    vec![
                        Bye(Leg::Agent("7001".into())),
                        Close(Leg::Listeners),
                        WrapUp {
                            agent: "7001".into(),
                            until_ms: 35_000,
                        },
                        complete("7001", "caller"),
                        Dequeue,
                        End(caller_bye()),
                    ],
                ),
            ],
            Phase::Over,
        ),
        (
            "the agent hangs up first",
            vec![
                (1_000, offered(&["7001"]), vec![ev_agent(K::Offer, "7001")]),
                (2_000, answered("7001"), bridge("7001")),
                (
                    9_000,
                    Event::AgentEnded { hung_up: true },
                    vec![
                        Bye(Leg::Caller),
                        Close(Leg::Listeners),
                        WrapUp {
                            agent: "7001".into(),
                            until_ms: 14_000,
                        },
                        complete("7001", "agent"),
                        Dequeue,
                        End(Ended::new(HangupCause::Normal, HangupSide::Agent)),
                    ],
                ),
            ],
            Phase::Over,
        ),
        (
            "the agent's leg fails while bridged",
            vec![
                (1_000, offered(&["7001"]), vec![ev_agent(K::Offer, "7001")]),
                (2_000, answered("7001"), bridge("7001")),
                (
                    3_000,
                    Event::AgentEnded { hung_up: false },
                    vec![
                        Bye(Leg::Caller),
                        Close(Leg::Listeners),
                        WrapUp {
                            agent: "7001".into(),
                            until_ms: 8_000,
                        },
                        complete("7001", "node"),
                        Dequeue,
                        End(Ended::new(HangupCause::AgentLegFailed, HangupSide::Node)),
                    ],
                ),
            ],
            Phase::Over,
        ),
        (
            "ring-all race: first answer wins, the others are cancelled, then the bridge",
            vec![
                (
                    1_000,
                    offered(&["7001", "7002", "7003"]),
                    vec![
                        ev_agent(K::Offer, "7001"),
                        ev_agent(K::Offer, "7002"),
                        ev_agent(K::Offer, "7003"),
                    ],
                ),
                (
                    3_000,
                    answered("7002"),
                    vec![Cancel("7001".into()), Cancel("7003".into())],
                ),
                (
                    3_010,
                    not_answered("7001", 487),
                    vec![no_answer("7001", 487), released("7001")],
                ),
                // 7003's 200 crossed our CANCEL: that leg gets a BYE.
                (
                    3_020,
                    answered("7003"),
                    vec![
                        Bye(Leg::Agent("7003".into())),
                        released("7003"),
                        Bridge("7002".into()),
                        Open(Leg::Listeners),
                        ev_agent(K::Answer, "7002"),
                    ],
                ),
                // Late or repeated news of settled legs changes nothing.
                (3_030, not_answered("7003", 487), vec![]),
                (3_040, answered("7001"), vec![]),
            ],
            bridged("7002"),
        ),
        (
            "nobody answers: released, back to waiting, offered again",
            vec![
                (
                    1_000,
                    offered(&["7001", "7002"]),
                    vec![ev_agent(K::Offer, "7001"), ev_agent(K::Offer, "7002")],
                ),
                (
                    11_000,
                    not_answered("7001", 408),
                    vec![no_answer("7001", 408), released("7001")],
                ),
                (
                    11_000,
                    not_answered("7002", 486),
                    vec![no_answer("7002", 486), released("7002"), Unclaim, Moh],
                ),
                (12_000, offered(&["7003"]), vec![ev_agent(K::Offer, "7003")]),
            ],
            Phase::Offering {
                ringing: vec!["7003".into()],
                winner: None,
                caller_gone: None,
            },
        ),
        (
            "an offer of which no agent could be taken",
            vec![(1_000, offered(&[]), vec![Unclaim, Moh])],
            Phase::Waiting { announcing: false },
        ),
        (
            "announcements every interval, music again after each",
            vec![
                (19_999, Event::Tick, vec![]),
                (20_000, Event::Tick, vec![Announce]),
                (24_000, Event::PromptDone, vec![Moh]),
                (24_500, Event::PromptDone, vec![]),
                // A late tick skips the missed announcement: the next is at 60 s.
                (41_000, Event::Tick, vec![Announce]),
                (45_000, Event::Tick, vec![]),
            ],
            Phase::Waiting { announcing: true },
        ),
        (
            "maximum wait: timeout, out of the queue, fallback",
            vec![
                (59_999, Event::Tick, vec![Announce]),
                (60_000, Event::Tick, vec![ev(K::Timeout), Dequeue, Fallback]),
                (60_001, Event::CallerEnded(caller_bye()), vec![]),
            ],
            Phase::Over,
        ),
        (
            "the caller abandons while waiting",
            vec![(
                5_000,
                Event::CallerEnded(caller_bye()),
                vec![ev(K::Abandon), Dequeue, End(caller_bye())],
            )],
            Phase::Over,
        ),
        (
            "the caller abandons while agents ring: all cancelled and released",
            vec![
                (
                    1_000,
                    offered(&["7001", "7002"]),
                    vec![ev_agent(K::Offer, "7001"), ev_agent(K::Offer, "7002")],
                ),
                (
                    2_000,
                    Event::CallerEnded(caller_bye()),
                    vec![Cancel("7001".into()), Cancel("7002".into())],
                ),
                (
                    2_010,
                    not_answered("7001", 487),
                    vec![no_answer("7001", 487), released("7001")],
                ),
                // An answer crossing the CANCEL after the caller left: BYE, released.
                (
                    2_020,
                    answered("7002"),
                    vec![
                        Bye(Leg::Agent("7002".into())),
                        released("7002"),
                        ev(K::Abandon),
                        Dequeue,
                        End(caller_bye()),
                    ],
                ),
            ],
            Phase::Over,
        ),
        (
            "the caller leaves after an answer, before the others settled",
            vec![
                (
                    1_000,
                    offered(&["7001", "7002"]),
                    vec![ev_agent(K::Offer, "7001"), ev_agent(K::Offer, "7002")],
                ),
                (2_000, answered("7001"), vec![Cancel("7002".into())]),
                (
                    2_005,
                    Event::CallerEnded(caller_bye()),
                    vec![
                        Cancel("7002".into()),
                        Bye(Leg::Agent("7001".into())),
                        released("7001"),
                    ],
                ),
                (
                    2_010,
                    not_answered("7002", 487),
                    vec![
                        no_answer("7002", 487),
                        released("7002"),
                        ev(K::Abandon),
                        Dequeue,
                        End(caller_bye()),
                    ],
                ),
            ],
            Phase::Over,
        ),
        (
            "the maximum wait does not cut a ring short; it fires once back to waiting",
            vec![
                (55_000, offered(&["7001"]), vec![ev_agent(K::Offer, "7001")]),
                (61_000, Event::Tick, vec![]),
                (
                    65_000,
                    not_answered("7001", 408),
                    vec![no_answer("7001", 408), released("7001"), Unclaim, Moh],
                ),
                (65_000, Event::Tick, vec![ev(K::Timeout), Dequeue, Fallback]),
            ],
            Phase::Over,
        ),
    ];
    for (name, steps, last) in cases {
        run(name, steps, last);
    }
}

#[test]
fn deadlines() {
    let (mut call, _) = QueuedCall::enter(RULES, 1_000, true);
    assert_eq!(call.deadline(), Some(21_000), "first announcement");
    call.on(21_000, Event::Tick);
    assert_eq!(call.deadline(), Some(41_000));
    call.on(41_000, Event::Tick);
    assert_eq!(call.deadline(), Some(61_000), "the maximum wait, same time");
    call.on(50_000, offered(&["7001"]));
    assert_eq!(call.deadline(), None, "ringing: the legs' own timeouts");
    let quiet = Rules {
        announce_every_ms: 0,
        ..RULES
    };
    let (call, _) = QueuedCall::enter(quiet, 0, false);
    assert_eq!(call.deadline(), Some(60_000), "no announcements");
}

#[test]
fn vip_enqueue_and_queue_rules() {
    // The enqueue event carries the entry's enqueue time, not the time it is written.
    let (_, first) = QueuedCall::enter(RULES, 1_234, true);
    assert_eq!(
        first[0],
        Log {
            kind: K::Enqueue,
            agent: None,
            detail: Some("vip".into()),
            at_ms: Some(1_234),
        }
    );
    let mut q = Queue {
        name: "q".into(),
        strategy: callfleet_store::Strategy::RingAll,
        ring_timeout_ms: 15_000,
        max_wait_ms: 120_000,
        announce_interval_ms: 400,
        moh_class: "default".into(),
        wrapup_ms: -5,
        fallback: callfleet_store::Fallback::Hangup,
        fallback_target: None,
        rr_last: None,
        recording: Default::default(),
        recording_prompt: false,
    };
    let want = Rules {
        max_wait_ms: 120_000,
        announce_every_ms: 1_000,
        wrapup_ms: 0,
        record: false,
    };
    assert_eq!(Rules::of(&q), want, "announcements at most once a second");
    q.announce_interval_ms = 0;
    assert_eq!(Rules::of(&q).announce_every_ms, 0, "never");
}

#[test]
fn direct_calls_start_ringing() {
    let (mut call, first) = QueuedCall::direct(0, vec!["7001".into()]);
    assert_eq!(first, vec![ev_agent(K::Offer, "7001")]);
    let got = call.on(5_000, answered("7001"));
    assert_eq!(got, bridge("7001"));
    let (mut call, _) = QueuedCall::direct(0, vec!["7001".into()]);
    let got = call.on(20_000, not_answered("7001", 408));
    assert_eq!(
        got,
        vec![no_answer("7001", 408), released("7001"), Unclaim, Moh]
    );
    assert_eq!(call.phase(), &Phase::Waiting { announcing: false });
}

fn transferred(to: TransferTo) -> Event {
    Event::AgentTransferred { to }
}

#[test]
fn the_agent_transfers_the_caller() {
    let support = TransferTo::Queue("support".into());
    let bridge = || {
        vec![
            (1_000, offered(&["7001"]), vec![ev_agent(K::Offer, "7001")]),
            (2_000, answered("7001"), bridge("7001")),
        ]
    };
    let mut blind = bridge();
    blind.extend([
        (
            20_000,
            transferred(support.clone()),
            vec![
                Log {
                    kind: K::Transfer,
                    agent: Some("7001".into()),
                    detail: Some("queue:support".into()),
                    at_ms: None,
                },
                ReferDone("7001".into()),
                Bye(Leg::Agent("7001".into())),
                Close(Leg::Listeners),
                WrapUp {
                    agent: "7001".into(),
                    until_ms: 25_000,
                },
                complete("7001", "agent"),
                Dequeue,
                Transfer(support.clone()),
            ],
        ),
        // The caller is the target's now: its end, the agent's BYE (answering our NOTIFY)
        // or a second REFER change nothing here.
        (21_000, Event::AgentEnded { hung_up: true }, vec![]),
        (
            21_500,
            transferred(TransferTo::Agent("7002".into())),
            vec![],
        ),
        (22_000, Event::CallerEnded(caller_bye()), vec![]),
    ]);
    run("a blind transfer while bridged", blind, Phase::Over);

    // Nothing is bridged: a transfer is not the machine's to take.
    run(
        "a transfer while waiting or ringing",
        vec![
            (1_000, transferred(support.clone()), vec![]),
            (2_000, offered(&["7001"]), vec![ev_agent(K::Offer, "7001")]),
            (3_000, transferred(support), vec![]),
        ],
        Phase::Offering {
            ringing: vec!["7001".into()],
            winner: None,
            caller_gone: None,
        },
    );

    // A direct call (no queue, no wrap-up) transfers the same way, to a number.
    let (mut call, _) = QueuedCall::direct(0, vec!["7001".into()]);
    call.on(1_000, answered("7001"));
    let to = TransferTo::Number("+15550100".into());
    let got = call.on(9_000, transferred(to.clone()));
    assert_eq!(
        got.first(),
        Some(&Log {
            kind: K::Transfer,
            agent: Some("7001".into()),
            detail: Some("number:+15550100".into()),
            at_ms: None,
        })
    );
    assert!(got.contains(&WrapUp {
        agent: "7001".into(),
        until_ms: 9_000
    }));
    assert_eq!(got.last(), Some(&Transfer(to)));
    assert_eq!(call.phase(), &Phase::Over);
}

#[test]
fn the_agent_hands_the_caller_to_its_other_call() {
    let replaced = |by: &str| Event::AgentReplaced { by: by.into() };
    let steps = vec![
        (1_000, offered(&["7001"]), vec![ev_agent(K::Offer, "7001")]),
        (2_000, answered("7001"), bridge("7001")),
        (
            20_000,
            replaced("7002"),
            vec![
                Log {
                    kind: K::Transfer,
                    agent: Some("7001".into()),
                    detail: Some("agent:7002".into()),
                    at_ms: None,
                },
                ReferDone("7001".into()),
                Bye(Leg::Agent("7001".into())),
                Close(Leg::Listeners),
                WrapUp {
                    agent: "7001".into(),
                    until_ms: 25_000,
                },
                complete("7001", "agent"),
                Replace("7002".into()),
                Open(Leg::Listeners),
            ],
        ),
        // Bridged to 7002 now: its end ends the call, and 7002 wraps up.
        (
            30_000,
            Event::AgentEnded { hung_up: true },
            vec![
                Bye(Leg::Caller),
                Close(Leg::Listeners),
                WrapUp {
                    agent: "7002".into(),
                    until_ms: 35_000,
                },
                complete("7002", "agent"),
                Dequeue,
                End(Ended::new(HangupCause::Normal, HangupSide::Agent)),
            ],
        ),
    ];
    run("an attended transfer while bridged", steps, Phase::Over);
    // Nothing is bridged: not the machine's to take.
    let (mut call, _) = QueuedCall::direct(0, vec!["7001".into()]);
    assert_eq!(call.on(1_000, replaced("7002")), vec![]);
}

#[test]
fn a_recorded_call_opens_and_closes_its_recorder_with_the_conversation() {
    let rules = RULES.recorded(true);
    let answered_7001 = vec![
        Bridge("7001".into()),
        Open(Leg::Listeners),
        Open(Leg::Recorder),
        ev_agent(K::Answer, "7001"),
    ];
    let closed = [Close(Leg::Recorder), Close(Leg::Listeners)];
    let wrap = |agent: &str, until_ms| WrapUp {
        agent: agent.into(),
        until_ms,
    };
    // (what ends the conversation, the actions from the end's first up to the wrap-up).
    let support = TransferTo::Queue("support".into());
    let cases: Vec<(&str, Event, Vec<Action>)> = vec![
        (
            "the caller hangs up",
            Event::CallerEnded(caller_bye()),
            vec![Bye(Leg::Agent("7001".into()))],
        ),
        (
            "the agent hangs up",
            Event::AgentEnded { hung_up: true },
            vec![Bye(Leg::Caller)],
        ),
        (
            "the agent transfers blind",
            Event::AgentTransferred { to: support },
            vec![
                Log {
                    kind: K::Transfer,
                    agent: Some("7001".into()),
                    detail: Some("queue:support".into()),
                    at_ms: None,
                },
                ReferDone("7001".into()),
                Bye(Leg::Agent("7001".into())),
            ],
        ),
    ];
    for (name, end, before) in cases {
        let (mut call, _) = QueuedCall::enter(rules, 0, false);
        call.on(1_000, offered(&["7001"]));
        assert_eq!(call.on(2_000, answered("7001")), answered_7001, "{name}");
        let got = call.on(10_000, end);
        let mut want = before;
        want.extend(closed.clone());
        want.push(wrap("7001", 15_000));
        assert_eq!(got[..want.len()], want[..], "{name}: {got:?}");
    }

    // An attended transfer: the first conversation's recording is closed, the second gets
    // one of its own, and the listeners follow the new leg.
    let (mut call, _) = QueuedCall::enter(rules, 0, false);
    call.on(1_000, offered(&["7001"]));
    call.on(2_000, answered("7001"));
    let got = call.on(10_000, Event::AgentReplaced { by: "7002".into() });
    let at = |a: &Action| got.iter().position(|g| g == a).expect("present");
    assert!(at(&Close(Leg::Recorder)) < at(&wrap("7001", 15_000)));
    assert!(at(&Close(Leg::Listeners)) < at(&Replace("7002".into())));
    assert_eq!(
        got[at(&Replace("7002".into()))..],
        [
            Replace("7002".into()),
            Open(Leg::Listeners),
            Open(Leg::Recorder)
        ]
    );
    let got = call.on(20_000, Event::AgentEnded { hung_up: true });
    assert_eq!(
        got[..4],
        [
            Bye(Leg::Caller),
            Close(Leg::Recorder),
            Close(Leg::Listeners),
            wrap("7002", 25_000)
        ]
    );
    // Abandoned before anyone answered: nothing was opened, nothing to close.
    let (mut call, _) = QueuedCall::enter(rules, 0, false);
    call.on(1_000, offered(&["7001"]));
    let got = call.on(2_000, Event::CallerEnded(caller_bye()));
    assert!(
        !got.iter().any(|a| matches!(a, Open(_) | Close(_))),
        "{got:?}"
    );
}
