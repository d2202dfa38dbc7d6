use super::*;
use callfleet_vocab::TraceTransport;

const SEC: Duration = Duration::from_secs(1);

fn limits() -> Limits {
    Limits {
        budget: 1_000,
        flush_every: 2 * SEC,
        pending_for: 5 * SEC,
        pending_max: 4,
        grace: 30 * SEC,
    }
}

fn msg(first: &str, call_id: &str) -> TracedMessage {
    TracedMessage {
        at_us: 1,
        transport: TraceTransport::Udp,
        src: "127.0.0.1:5060".parse().expect("addr"),
        dst: "127.0.0.2:5060".parse().expect("addr"),
        text: format!("{first}\r\nVia: SIP/2.0/UDP h\r\nCall-ID: {call_id}\r\n\r\n"),
    }
}

fn begin(call_id: &str) -> Event {
    Event::Begin {
        call_id: call_id.into(),
        started_at_ms: 7,
    }
}

fn labels(chunk: &Chunk) -> Vec<String> {
    chunk.messages.iter().map(TracedMessage::label).collect()
}

#[test]
fn call_ids_are_read_from_the_head_in_either_form() {
    let cases = [
        ("INVITE x SIP/2.0\r\nCall-ID: a@b\r\n\r\n", Some("a@b")),
        ("INVITE x SIP/2.0\r\ni:  c@d \r\n\r\n", Some("c@d")),
        ("INVITE x SIP/2.0\r\ncall-id:e\r\n\r\n", Some("e")),
        ("INVITE x SIP/2.0\r\nCall-ID:\r\n\r\n", None),
        ("INVITE x SIP/2.0\r\n\r\nCall-ID: body", None),
        ("Call-ID: first-line", None),
        ("", None),
    ];
    for (text, want) in cases {
        assert_eq!(call_id_of(text), want, "{text:?}");
    }
}

#[test]
fn the_invite_before_admission_and_an_agent_leg_join_the_call() {
    let t0 = Instant::now();
    let mut c = Collector::new(limits());
    // The carrier's INVITE is read before the call is admitted; the agent's INVITE leaves
    // before its leg is linked.
    assert!(c
        .on(Event::Message(msg("INVITE sip:q SIP/2.0", "carrier")), t0)
        .is_empty());
    let tied = c.on(begin("carrier"), t0);
    assert_eq!(tied.len(), 1);
    assert_eq!(tied[0].0, "carrier");
    c.on(Event::Message(msg("SIP/2.0 100 Trying", "carrier")), t0);
    c.on(
        Event::Message(msg("INVITE sip:agent SIP/2.0", "agent-leg")),
        t0,
    );
    let tied = c.on(
        Event::Link {
            leg: "agent-leg".into(),
            call_id: "carrier".into(),
        },
        t0,
    );
    assert_eq!(tied.len(), 1, "the agent's INVITE joins when linked");
    let tied = c.on(Event::Message(msg("SIP/2.0 200 OK", "agent-leg")), t0);
    assert_eq!(tied[0].0, "carrier");
    // Nothing is due before flush_every.
    assert!(c.tick(t0 + SEC).is_empty());
    let chunks = c.tick(t0 + 2 * SEC);
    assert_eq!(chunks.len(), 1);
    assert_eq!(
        labels(&chunks[0]),
        ["INVITE", "100 Trying", "INVITE", "200 OK"]
    );
    assert_eq!((chunks[0].seq, chunks[0].started_at_ms), (0, 7));
    // Nothing new: no chunk.
    assert!(c.tick(t0 + 5 * SEC).is_empty());
    let live = c.live("carrier", "n1").expect("live");
    assert!(live.live);
    assert_eq!(live.messages.len(), 4);
    assert_eq!(c.take_counts().kept, 4);
}

#[test]
fn an_ended_call_is_cut_at_once_then_kept_for_its_grace_then_let_go() {
    let t0 = Instant::now();
    let mut c = Collector::new(limits());
    c.on(begin("c1"), t0);
    c.on(Event::Message(msg("BYE sip:x SIP/2.0", "c1")), t0);
    c.on(
        Event::End {
            call_id: "c1".into(),
        },
        t0,
    );
    let first = c.tick(t0);
    assert_eq!(first.len(), 1, "an ended call's chunk is due at once");
    assert_eq!(labels(&first[0]), ["BYE"]);
    // The 200 to the BYE comes after the end: a second chunk.
    c.on(Event::Message(msg("SIP/2.0 200 OK", "c1")), t0 + SEC);
    assert!(!c.live("c1", "n").expect("in grace").live);
    let second = c.tick(t0 + SEC);
    assert_eq!((second.len(), second[0].seq), (1, 1));
    assert!(c.tick(t0 + 30 * SEC).is_empty());
    assert_eq!(c.sizes(), (0, 0), "let go after the grace");
    assert!(c.live("c1", "n").is_none());
    // A late retransmission is of no call now.
    c.on(Event::Message(msg("SIP/2.0 200 OK", "c1")), t0 + 31 * SEC);
    c.tick(t0 + 40 * SEC);
    assert_eq!(c.take_counts().unmatched, 1);
}

#[test]
fn messages_past_the_budget_are_cut_and_counted() {
    let t0 = Instant::now();
    let mut c = Collector::new(Limits {
        budget: 150,
        ..limits()
    });
    c.on(begin("c1"), t0);
    let one = msg("INVITE sip:x SIP/2.0", "c1");
    let size = one.text.len();
    assert!(size * 2 <= 150 && size * 3 > 150, "{size}");
    for _ in 0..5 {
        c.on(Event::Message(one.clone()), t0);
    }
    c.on(
        Event::End {
            call_id: "c1".into(),
        },
        t0,
    );
    let chunks = c.tick(t0);
    assert_eq!((chunks[0].messages.len(), chunks[0].cut), (2, 3));
    assert_eq!(chunks[0].bytes, size * 2);
    assert_eq!(c.live("c1", "n").expect("grace").cut, 3);
    let counts = c.take_counts();
    assert_eq!((counts.kept, counts.cut), (2, 3));
}

#[test]
fn messages_of_no_call_wait_a_while_within_a_bound() {
    let t0 = Instant::now();
    let mut c = Collector::new(limits());
    for i in 0..6 {
        c.on(
            Event::Message(msg("OPTIONS sip:x SIP/2.0", &format!("o{i}"))),
            t0,
        );
    }
    c.on(Event::Message(msg("garbage without a call id", "")), t0);
    assert_eq!(c.sizes(), (0, 4), "at most pending_max wait");
    assert_eq!(c.take_counts().unmatched, 3);
    assert!(c.tick(t0 + 4 * SEC).is_empty());
    assert_eq!(c.sizes(), (0, 4));
    c.tick(t0 + 5 * SEC);
    assert_eq!(c.sizes(), (0, 0));
    assert_eq!(c.take_counts().unmatched, 4);
    // A link to an unknown call ties nothing.
    assert!(c
        .on(
            Event::Link {
                leg: "l".into(),
                call_id: "nope".into()
            },
            t0
        )
        .is_empty());
}

#[test]
fn a_new_call_with_an_ended_calls_call_id_starts_afresh() {
    let t0 = Instant::now();
    let mut c = Collector::new(limits());
    c.on(begin("c1"), t0);
    c.on(Event::Message(msg("BYE sip:x SIP/2.0", "c1")), t0);
    c.on(
        Event::End {
            call_id: "c1".into(),
        },
        t0,
    );
    // Within the first call's grace, before its chunk was cut, the Call-ID comes again.
    c.on(
        Event::Begin {
            call_id: "c1".into(),
            started_at_ms: 99,
        },
        t0 + SEC,
    );
    c.on(Event::Message(msg("INVITE sip:x SIP/2.0", "c1")), t0 + SEC);
    c.on(
        Event::End {
            call_id: "c1".into(),
        },
        t0 + SEC,
    );
    let chunks = c.tick(t0 + SEC);
    let got: Vec<_> = chunks
        .iter()
        .map(|ch| (ch.started_at_ms, ch.seq, labels(ch)))
        .collect();
    assert_eq!(
        got,
        [
            (7, 0, vec!["BYE".to_string()]),
            (99, 0, vec!["INVITE".to_string()])
        ]
    );
    // A live call's Call-ID is never taken over.
    c.on(begin("c2"), t0);
    c.on(Event::Message(msg("INVITE sip:y SIP/2.0", "c2")), t0);
    c.on(begin("c2"), t0);
    assert_eq!(c.live("c2", "n").expect("live").messages.len(), 1);
}
