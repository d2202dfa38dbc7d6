use super::*;
use rsipstack::sip::SipMessage;

fn request(text: &str) -> Request {
    match SipMessage::try_from(text.as_bytes()).expect("test request parses") {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => panic!("not a request"),
    }
}

const INVITE: &str = "INVITE sip:100@127.0.0.11:5060 SIP/2.0\r\n\
v: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport\r\n\
Via: SIP/2.0/UDP 127.0.0.2:5080;branch=z9hG4bK-0\r\n\
f: <sip:a@127.0.0.1>;tag=abc\r\n\
t: <sip:100@127.0.0.11>\r\n\
i: call-1@test\r\n\
CSeq: 1 INVITE\r\n\
m: <sip:a@127.0.0.1:5070>\r\n\
Record-Route: <sip:127.0.0.1:5070;lr>\r\n\
l: 0\r\n\r\n";

#[test]
fn redirect_copies_dialog_headers_and_tags_to() {
    let req = request(INVITE);
    let src: SocketAddr = "127.0.0.1:5070".parse().unwrap();
    let bytes = Stateless::new(&req, src, 302, "Moved Temporarily", Some("t1"))
        .header("Contact", "<sip:100@127.0.0.13:5060;cfr=main-a>")
        .finish();
    let text = String::from_utf8(bytes).unwrap();
    let resp = match SipMessage::try_from(text.as_bytes()).expect("response parses") {
        SipMessage::Response(r) => r,
        _ => panic!("not a response"),
    };
    assert_eq!(u16::from(resp.status_code.clone()), 302);
    assert!(
        text.contains("Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport=5070\r\n"),
        "{text}"
    );
    assert!(
        text.contains("Via: SIP/2.0/UDP 127.0.0.2:5080;branch=z9hG4bK-0\r\n"),
        "{text}"
    );
    assert!(
        text.contains("To: <sip:100@127.0.0.11>;tag=t1\r\n"),
        "{text}"
    );
    assert!(text.contains("Call-ID: call-1@test\r\n"), "{text}");
    assert!(text.contains("CSeq: 1 INVITE\r\n"), "{text}");
    assert!(!text.contains("Record-Route"), "{text}");
    assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
}

#[test]
fn received_is_added_when_source_differs() {
    let req = request(INVITE);
    let src: SocketAddr = "127.0.0.9:6000".parse().unwrap();
    let text = String::from_utf8(Stateless::new(&req, src, 100, "Trying", None).finish()).unwrap();
    assert!(
        text.contains(";rport=6000;received=127.0.0.9\r\n"),
        "{text}"
    );
    assert!(
        text.contains("To: <sip:100@127.0.0.11>\r\n"),
        "trying has no tag: {text}"
    );
}

#[test]
fn existing_to_tag_is_kept() {
    let req = request(&INVITE.replace("t: <sip:100@127.0.0.11>", "t: <sip:100@127.0.0.11>;tag=x"));
    let src: SocketAddr = "127.0.0.1:5070".parse().unwrap();
    let text = String::from_utf8(Stateless::new(&req, src, 403, "Forbidden", Some("t1")).finish())
        .unwrap();
    assert!(
        text.contains("To: <sip:100@127.0.0.11>;tag=x\r\n"),
        "{text}"
    );
}

#[test]
fn stable_tag_is_stable() {
    assert_eq!(stable_tag("a", "n"), stable_tag("a", "n"));
    assert_ne!(stable_tag("a", "n"), stable_tag("b", "n"));
}

#[test]
fn a_multibyte_via_parameter_does_not_panic() {
    // "receivedé=" puts a two-byte character across byte 9 of the parameter.
    let req = request(&INVITE.replace(";rport\r\n", ";rport;receivedé=x\r\n"));
    let src: SocketAddr = "127.0.0.9:6000".parse().unwrap();
    let text = String::from_utf8(Stateless::new(&req, src, 100, "Trying", None).finish()).unwrap();
    assert!(text.contains(";receivedé=x;received=127.0.0.9"), "{text}");
}
