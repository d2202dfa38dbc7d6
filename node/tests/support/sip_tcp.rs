//! Raw SIP over TCP for tests: connect from a chosen loopback address, read one response,
//! tell whether the node closed the stream.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::uac::header;
use super::NodeProc;

/// A TCP connection to `n`'s SIP port from `ip` (any port), with a 5 s read timeout.
pub fn tcp(n: &NodeProc, ip: &str) -> TcpStream {
    let sock =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let local: SocketAddr = format!("{ip}:0").parse().expect("local");
    sock.bind(&local.into()).expect("bind");
    sock.connect(&n.sip.into()).expect("connect");
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s
}

/// Reads one SIP response (head and Content-Length body) from a stream.
pub fn read_response(s: &mut TcpStream) -> Option<String> {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            _ => return None,
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let len: usize = header(&text, "Content-Length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some(text + &String::from_utf8_lossy(&body))
}

/// Whether the node closed the stream within `limit`.
pub fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).ok();
    let mut buf = [0u8; 256];
    for _ in 0..2 {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => {
                return !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                )
            }
        }
    }
    false
}
