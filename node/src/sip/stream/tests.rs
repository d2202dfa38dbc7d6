use super::*;

const OPTIONS: &str = "OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP 1.2.3.4;branch=z9hG4bK1\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:x>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 4\r\n\r\nabcd";

#[test]
fn frames_are_cut_by_content_length() {
    let whole = OPTIONS.as_bytes();
    assert_eq!(frame(whole), Frame::Message(whole.len()));
    let mut two = whole.to_vec();
    two.extend_from_slice(whole);
    assert_eq!(frame(&two), Frame::Message(whole.len()));
    for cut in [1, 10, whole.len() - 5, whole.len() - 1] {
        assert_eq!(frame(&whole[..cut]), Frame::Incomplete, "cut at {cut}");
    }
    let no_length = OPTIONS.replace("Content-Length: 4\r\n", "");
    let head = no_length.find("\r\n\r\n").unwrap() + 4;
    assert_eq!(frame(no_length.as_bytes()), Frame::Message(head));
}

#[test]
fn keep_alives_and_unframeable_heads() {
    assert_eq!(frame(b"\r\n\r\n"), Frame::KeepAlive { n: 4, pong: true });
    assert_eq!(frame(b"\r\nOPT"), Frame::KeepAlive { n: 2, pong: false });
    assert_eq!(frame(b"\r\n\r"), Frame::Incomplete);
    assert_eq!(frame(b""), Frame::Incomplete);
    for (bad, want) in [
        ("Content-Length: +4", raw::RawDefect::BadContentLength),
        (
            "Content-Length: 4\r\nl: 4",
            raw::RawDefect::Doubled("Content-Length"),
        ),
        ("Content-Length: 99999999", raw::RawDefect::BadContentLength),
        ("Content-Length: 4 4", raw::RawDefect::BadContentLength),
    ] {
        let text = OPTIONS.replace("Content-Length: 4", bad);
        assert_eq!(frame(text.as_bytes()), Frame::Unframeable(want), "{bad}");
    }
    let endless = vec![b'a'; MAX_MESSAGE + 1];
    assert_eq!(frame(&endless), Frame::Unframeable(raw::RawDefect::NoEnd));
}

#[test]
fn connections_per_source_are_capped_and_given_back() {
    let table = PerSource::default();
    let ip: IpAddr = "127.0.0.1".parse().unwrap();
    let other: IpAddr = "127.0.0.2".parse().unwrap();
    let a = table.take(ip, 2).expect("first");
    let b = table.take(ip, 2).expect("second");
    assert!(table.take(ip, 2).is_none(), "third refused");
    assert!(
        table.take(other, 2).is_some(),
        "another address is not counted"
    );
    drop(a);
    let c = table.take(ip, 2).expect("a slot given back");
    drop((b, c));
    assert!(table.0.lock().unwrap().is_empty() || table.0.lock().unwrap().get(&ip).is_none());
}
