//! Tests for the probe's messages: what it sends parses as SIP, and answers are matched.

use super::*;

#[test]
fn the_probe_is_a_valid_options_request() {
    let local: SocketAddr = "127.0.0.11:40000".parse().expect("addr");
    let peer: SocketAddr = "127.0.0.12:5060".parse().expect("addr");
    let text = options("cfp-1-7-0", local, peer);
    match SipMessage::try_from(text.as_bytes()) {
        Ok(SipMessage::Request(r)) => {
            assert_eq!(r.method, rsipstack::sip::Method::Options);
            assert_eq!(crate::sip::front::call_id(&r), Some("cfp-1-7-0"));
        }
        other => panic!("not a request: {other:?}"),
    }
}

#[test]
fn any_response_names_its_call_id_and_requests_do_not() {
    let response = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.11:40000;branch=z9hG4bKx\r\n\
                    From: <sip:probe@127.0.0.11>;tag=a\r\nTo: <sip:127.0.0.12>;tag=b\r\n\
                    Call-ID: cfp-1-7-0\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(call_id(response.as_bytes()).as_deref(), Some("cfp-1-7-0"));
    let forbidden = response.replace("200 OK", "403 Forbidden");
    assert_eq!(call_id(forbidden.as_bytes()).as_deref(), Some("cfp-1-7-0"));
    let local: SocketAddr = "127.0.0.11:40000".parse().expect("addr");
    let request = options("x", local, local);
    assert_eq!(call_id(request.as_bytes()), None);
    assert_eq!(call_id(b"\x00garbage"), None);
}

fn call_id(bytes: &[u8]) -> Option<String> {
    parse_answer(bytes).map(|(id, _)| id)
}

#[test]
fn an_answer_carries_the_peers_load_and_a_bad_one_is_an_error() {
    let response = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.11:40000;branch=z9hG4bKx\r\n\
                    From: <sip:probe@127.0.0.11>;tag=a\r\nTo: <sip:127.0.0.12>;tag=b\r\n\
                    Call-ID: cfp-1-7-0\r\nCSeq: 1 OPTIONS\r\n\
                    X-Callfleet-Load: calls=3;capacity=100;shed=1;draining=0;refusing=1\r\n\
                    Content-Length: 0\r\n\r\n";
    let want = ProbeLoad {
        calls: 3,
        capacity: 100,
        shed_level: 1,
        draining: false,
        refusing: true,
    };
    assert_eq!(
        parse_answer(response.as_bytes()),
        Some(("cfp-1-7-0".to_string(), Some(Ok(want))))
    );
    let bad = response.replace("calls=3", "calls=x");
    assert!(matches!(
        parse_answer(bad.as_bytes()),
        Some((_, Some(Err(_))))
    ));
    let none = response.replace("X-Callfleet-Load", "X-Other");
    assert_eq!(
        parse_answer(none.as_bytes()),
        Some(("cfp-1-7-0".to_string(), None))
    );
}

#[test]
fn a_round_marks_only_its_own_probes_answered_from_their_peers() {
    let b: SocketAddr = "127.0.0.12:5060".parse().expect("addr");
    let c: SocketAddr = "127.0.0.13:5060".parse().expect("addr");
    let sent = |peer: &str, to| Sent {
        peer: peer.into(),
        to,
        answered: false,
    };
    let mut round = Round::default();
    round.sent.insert("a".into(), sent("main-b", b));
    round.sent.insert("b".into(), sent("extra-c", c));
    // Another host naming b's probe (to keep extra-c in, or forge its load) is not an answer.
    assert_eq!(
        round.answered("b", "127.0.0.66:5060".parse().expect("addr")),
        None
    );
    // A peer answering from another port of its address is.
    assert_eq!(
        round.answered("a", "127.0.0.12:40000".parse().expect("addr")),
        Some("main-b")
    );
    assert_eq!(round.answered("stray", b), None);
    assert!(round.sent["a"].answered);
    assert!(!round.sent["b"].answered);
}
