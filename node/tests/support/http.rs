//! Raw HTTP/1.0 exchanges with a node, for tests that need the status, the headers (cookies,
//! redirects, `Retry-After`) and the body all at once.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

/// One exchange: `head` is the request line plus any headers (CRLF-separated, without the
/// final blank line); `Content-Length` is added, and `Host` unless `head` has one. Returns (status, headers with
/// lower-case names, body).
pub fn exchange(addr: SocketAddr, head: &str, body: &str) -> (u16, Vec<(String, String)>, String) {
    let s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .expect("connect to the node");
    exchange_on(s, addr, head, body)
}

/// [`exchange`] from source address `from` (another host, as far as the node can tell).
pub fn exchange_from(
    from: &str,
    addr: SocketAddr,
    head: &str,
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .expect("a TCP socket");
    let src: SocketAddr = format!("{from}:0").parse().expect("source address");
    socket.bind(&src.into()).expect("bind the source address");
    socket
        .connect_timeout(&addr.into(), Duration::from_secs(2))
        .expect("connect to the node");
    exchange_on(socket.into(), addr, head, body)
}

fn exchange_on(
    s: std::net::TcpStream,
    addr: SocketAddr,
    head: &str,
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let (status, headers, body) = exchange_raw(s, addr, head, body.as_bytes());
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

/// [`exchange`] with a body of any bytes (an upload), answering the body as bytes (audio).
pub fn exchange_bytes(
    addr: SocketAddr,
    head: &str,
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .expect("connect to the node");
    exchange_raw(s, addr, head, body)
}

fn exchange_raw(
    mut s: std::net::TcpStream,
    addr: SocketAddr,
    head: &str,
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // A `Host` of the caller's own (a test playing a page of another name) replaces ours.
    let host = if head.to_ascii_lowercase().contains("\r\nhost:") {
        String::new()
    } else {
        format!("\r\nHost: {addr}")
    };
    write!(s, "{head}{host}\r\nContent-Length: {}\r\n\r\n", body.len()).expect("send request");
    s.write_all(body).expect("send the body");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read response");
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(buf.len());
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let body = buf.get(split + 4..).unwrap_or_default().to_vec();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body)
}

/// The value of header `name` (lower case) in an [`exchange`]'s headers.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}
