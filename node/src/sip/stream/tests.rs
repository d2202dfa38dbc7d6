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
fn connections_are_capped_per_source_and_in_all_and_given_back() {
    let table = Open::default();
    let caps = Caps {
        per_source: 2,
        total: 3,
    };
    let ip: IpAddr = "127.0.0.1".parse().unwrap();
    let other: IpAddr = "127.0.0.2".parse().unwrap();
    let third: IpAddr = "127.0.0.3".parse().unwrap();
    let a = table.take(ip, caps).expect("first");
    let b = table.take(ip, caps).expect("second");
    assert_eq!(table.take(ip, caps).err(), Some(TcpCap::PerSource));
    let c = table
        .take(other, caps)
        .expect("another address is not counted against the first");
    assert_eq!(table.total(), 3);
    assert_eq!(
        table.take(third, caps).err(),
        Some(TcpCap::Total),
        "a fourth in all is refused, from any address"
    );
    assert_eq!(
        table.take(ip, caps).err(),
        Some(TcpCap::Total),
        "the total is checked first"
    );
    drop(a);
    let d = table.take(third, caps).expect("a place given back");
    drop((b, c, d));
    let counts = table.0.lock().unwrap();
    assert_eq!(counts.total, 0);
    assert!(counts.per_source.is_empty(), "nothing left behind");
}

#[test]
fn a_peer_is_connected_while_any_of_its_connections_to_this_node_is_open() {
    let ours: SocketAddr = "192.0.2.1:5060".parse().expect("addr");
    let other_node: SocketAddr = "192.0.2.2:5060".parse().expect("addr");
    let phone: SocketAddr = "198.51.100.9:40312".parse().expect("addr");
    assert!(!connected(ours, phone));
    let first = Listed::new(ours, phone);
    let second = Listed::new(ours, phone);
    assert!(connected(ours, phone));
    assert!(!connected(other_node, phone), "another node's connection");
    assert!(
        !connected(ours, "198.51.100.9:40313".parse().expect("addr")),
        "another source port of the same host"
    );
    drop(first);
    assert!(connected(ours, phone), "one connection is still open");
    drop(second);
    assert!(!connected(ours, phone));
}
