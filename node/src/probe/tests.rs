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
    assert_eq!(
        response_call_id(response.as_bytes()).as_deref(),
        Some("cfp-1-7-0")
    );
    let forbidden = response.replace("200 OK", "403 Forbidden");
    assert_eq!(
        response_call_id(forbidden.as_bytes()).as_deref(),
        Some("cfp-1-7-0")
    );
    let local: SocketAddr = "127.0.0.11:40000".parse().expect("addr");
    let request = options("x", local, local);
    assert_eq!(response_call_id(request.as_bytes()), None);
    assert_eq!(response_call_id(b"\x00garbage"), None);
}

#[test]
fn a_round_marks_only_its_own_probes_answered() {
    let mut round = Round::default();
    round.sent.insert("a".into(), ("main-b".into(), false));
    round.sent.insert("b".into(), ("extra-c".into(), false));
    round.answered("a");
    round.answered("stray");
    assert_eq!(round.sent.get("a"), Some(&("main-b".to_string(), true)));
    assert_eq!(round.sent.get("b"), Some(&("extra-c".to_string(), false)));
}
