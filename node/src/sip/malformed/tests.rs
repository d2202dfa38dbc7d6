use super::*;
use rsipstack::sip::SipMessage;

const GOOD: &str = "OPTIONS sip:127.0.0.11 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n\
From: <sip:a@127.0.0.1>;tag=1\r\n\
To: <sip:127.0.0.11>\r\n\
Call-ID: c1\r\n\
CSeq: 7 OPTIONS\r\n\
Content-Length: 0\r\n\r\n";

fn parse(text: &str) -> Request {
    match SipMessage::try_from(text.as_bytes()).expect("parses") {
        SipMessage::Request(r) => r,
        _ => panic!("request expected"),
    }
}

#[test]
fn defects_are_found() {
    let cases: Vec<(String, Result<(), Defect>)> = vec![
        (GOOD.to_string(), Ok(())),
        (
            GOOD.replace("Call-ID: c1\r\n", ""),
            Err(Defect::Missing("Call-ID")),
        ),
        (
            GOOD.replace("Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n", ""),
            Err(Defect::Missing("Via")),
        ),
        (
            GOOD.replace("CSeq: 7 OPTIONS", "CSeq: 7 INVITE"),
            Err(Defect::CseqMismatch),
        ),
        (
            GOOD.replace("CSeq: 7 OPTIONS", "CSeq: x OPTIONS"),
            Err(Defect::CseqMismatch),
        ),
        (
            GOOD.replace(
                "Content-Length: 0\r\n\r\n",
                "Content-Length: 40\r\n\r\nv=0\r\n",
            ),
            Err(Defect::TruncatedBody {
                declared: 40,
                received: 5,
            }),
        ),
    ];
    for (text, want) in cases {
        let req = parse(&text);
        assert_eq!(check_request(&req, text.as_bytes()), want, "{text}");
    }
}

#[test]
fn raw_garbage_gets_400_only_when_answerable() {
    let src: SocketAddr = "127.0.0.1:5070".parse().unwrap();
    // Headers present, start line fine, but the message is cut before the blank line.
    let truncated = GOOD.trim_end_matches("\r\n\r\n");
    let resp = bad_request_for_raw(truncated.as_bytes(), src, "Truncated").expect("answerable");
    let text = String::from_utf8(resp).unwrap();
    assert!(text.starts_with("SIP/2.0 400 Truncated\r\n"), "{text}");
    assert!(text.contains("Call-ID: c1\r\n"));
    for junk in [
        &b"\x00\x01\x02garbage"[..],
        b"hello world",
        b"INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4\r\n",
        b"ACK sip:x SIP/2.0\r\nVia: a\r\nFrom: b\r\nTo: c\r\nCall-ID: d\r\nCSeq: 1 ACK\r\n",
        &[0xff, 0xfe, 0xfd][..],
    ] {
        assert!(bad_request_for_raw(junk, src, "x").is_none(), "{junk:?}");
    }
}

#[test]
fn reason_is_one_line() {
    assert_eq!(sanitize("bad\r\nInjected: 1"), "badInjected: 1");
}

/// Mutated requests (bytes flipped, cut, duplicated, non-ASCII) through everything the UDP
/// front does without a socket: parse, checks, stateless replies and the raw 400 builder.
/// Bounded: 20,000 cases from a fixed seed. It fails by panicking.
#[test]
fn mutated_datagrams_never_panic_the_front_path() {
    use rand::{Rng, SeedableRng};
    let base = GOOD
        .replace("OPTIONS sip:127.0.0.11", "INVITE sip:100@127.0.0.11")
        .replace("7 OPTIONS", "7 INVITE")
        + "";
    let base = base.replace(
        "Content-Length: 0\r\n\r\n",
        "Record-Route: <sip:127.0.0.1;lr>\r\nContent-Length: 10\r\n\r\nv=0\r\no=x\r\n",
    );
    let src: SocketAddr = "127.0.0.1:5070".parse().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let alphabet: &[u8] = b"\r\n:;,<>=@ \t\"\xc3\xa9\xff\x00abcSIP/2.0";
    for _ in 0..20_000 {
        let mut b = base.as_bytes().to_vec();
        for _ in 0..rng.random_range(1..6) {
            let i = rng.random_range(0..b.len());
            match rng.random_range(0..4) {
                0 => b[i] = alphabet[rng.random_range(0..alphabet.len())],
                1 => b.truncate(i.max(1)),
                2 => b.insert(i, alphabet[rng.random_range(0..alphabet.len())]),
                _ => {
                    let j = rng.random_range(i..b.len());
                    let chunk = b[i..j].to_vec();
                    b.splice(i..i, chunk);
                }
            }
        }
        match SipMessage::try_from(b.as_slice()) {
            Ok(SipMessage::Request(req)) => {
                let _ = check_request(&req, &b);
                let _ = crate::sip::front::has_to_tag(&req);
                let _ = crate::sip::admission::marker(&req.uri);
                let _ =
                    crate::sip::reply::Stateless::new(&req, src, 302, "Moved", Some("t")).finish();
            }
            Ok(SipMessage::Response(_)) => {}
            Err(_) => {
                let _ = bad_request_for_raw(&b, src, "Bad Request");
            }
        }
    }
}

#[test]
fn request_lines_and_addresses_are_checked_on_the_bytes() {
    use raw::RawDefect as D;
    let cases: Vec<(String, Result<(), D>)> = vec![
        (GOOD.to_string(), Ok(())),
        (
            GOOD.replace("OPTIONS sip:127.0.0.11", "OPTIONS <sip:127.0.0.11>"),
            Err(D::BadRequestUri),
        ),
        (
            GOOD.replace("sip:127.0.0.11 SIP", "sip:127.0.0.11?Route=%3Csip:x%3E SIP"),
            Err(D::BadRequestUri),
        ),
        (
            GOOD.replace("sip:127.0.0.11 SIP", "soap.beep://127.0.0.11/x SIP"),
            Err(D::UnsupportedScheme),
        ),
        (
            GOOD.replace("sip:127.0.0.11 SIP", "SIPS:127.0.0.11 SIP"),
            Ok(()),
        ),
        (
            GOOD.replace("From: <sip:a@127.0.0.1>", "From: \"Open <sip:a@127.0.0.1>"),
            Err(D::BadAddress("From Or To")),
        ),
        (
            GOOD.replace("To: <sip:127.0.0.11>", "To: <sip:127.0.0.11>;;,"),
            Err(D::BadAddress("From Or To")),
        ),
        (
            GOOD.replace(
                "From: <sip:a@127.0.0.1>;tag=1",
                "From: <sip:a@127.0.0.1>\r\n ;tag=1",
            ),
            Ok(()),
        ),
        (
            GOOD.replace(
                "From: <sip:a@127.0.0.1>;tag=1",
                "From: Bell,\r\n A <sip:a@127.0.0.1>;tag=1",
            ),
            Err(D::BadAddress("From Or To")),
        ),
        (
            GOOD.replace(";branch=z9hG4bK-1", ";;branch=z9hG4bK-1"),
            Err(D::BadAddress("Via")),
        ),
        (
            GOOD.replace(
                "Content-Length: 0",
                "Contact: sip:a@127.0.0.1?Route=x\r\nContent-Length: 0",
            ),
            Err(D::BadAddress("Contact")),
        ),
    ];
    for (text, want) in cases {
        assert_eq!(raw::check(text.as_bytes()).map(|_| ()), want, "{text}");
    }
    // A response is not held to the address checks (it is matched or dropped).
    let response = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;;branch=1\r\nFrom: <sip:a@b>;tag=1\r\n\
                    To: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    assert!(raw::check(response.as_bytes()).is_ok());
    // A request line with a trailing space is answered 400, not dropped.
    let trailing = GOOD.replace("SIP/2.0\r\nVia", "SIP/2.0 \r\nVia");
    let src: SocketAddr = "127.0.0.1:5070".parse().unwrap();
    let reply =
        bad_request_for_raw(trailing.as_bytes(), src, "Malformed Start Line").expect("an answer");
    assert!(reply.starts_with(b"SIP/2.0 400 "));
}
