use std::future::poll_fn;
use std::net::SocketAddr;
use std::task::Poll;
use std::time::Duration;

use super::{Reader, RtpSocket, DRAIN};

/// A registered reader over a fresh loopback socket, and a sender aimed at it.
async fn pair() -> (RtpSocket, Reader, std::net::UdpSocket, SocketAddr) {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let to = sock.local_addr().expect("addr");
    let socket = RtpSocket::new(sock);
    let reader = Reader::new(&socket);
    assert!(!reader.parked(), "the runtime takes the socket");
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind the sender");
    (socket, reader, sender, to)
}

/// Waits (5 s at most) until the reader says a datagram may be waiting.
async fn ready(reader: &Reader, socket: &RtpSocket) {
    tokio::time::timeout(
        Duration::from_secs(5),
        poll_fn(|cx| reader.poll_ready(socket, cx)),
    )
    .await
    .expect("ready within 5 s")
    .expect("no error");
}

/// Whether the reader would wait now (its readiness cleared).
async fn waits(reader: &Reader, socket: &RtpSocket) -> bool {
    poll_fn(|cx| Poll::Ready(reader.poll_ready(socket, cx).is_pending())).await
}

fn drained(reader: &Reader, socket: &RtpSocket) -> Vec<u8> {
    let mut buf = [0u8; 2048];
    let mut firsts = Vec::new();
    reader.drain(socket, &mut buf, |packet, _| firsts.push(packet[0]));
    firsts
}

#[tokio::test]
async fn a_drain_takes_what_waits_in_order_then_the_reader_waits_again() {
    let (socket, reader, sender, to) = pair().await;
    let sent = DRAIN + 8;
    for i in 0..sent {
        sender.send_to(&[i as u8; 12], to).expect("send");
    }
    ready(&reader, &socket).await;
    // At most DRAIN a drain, in the order sent; the socket is still ready for the rest.
    let first = drained(&reader, &socket);
    assert_eq!(first, (0..DRAIN as u8).collect::<Vec<_>>());
    assert!(!waits(&reader, &socket).await, "datagrams still wait");
    let rest = drained(&reader, &socket);
    assert_eq!(rest, (DRAIN as u8..sent as u8).collect::<Vec<_>>());
    // The drain emptied the socket (its last read said `WouldBlock`): the reader waits.
    assert!(waits(&reader, &socket).await, "the readiness is cleared");
    assert!(drained(&reader, &socket).is_empty());

    // A datagram that comes afterwards makes it ready again.
    sender.send_to(&[99u8; 12], to).expect("send");
    ready(&reader, &socket).await;
    assert_eq!(drained(&reader, &socket), vec![99]);
    assert!(waits(&reader, &socket).await);
}
