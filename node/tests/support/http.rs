//! Raw HTTP/1.0 exchanges with a node, for tests that need the status, the headers (cookies,
//! redirects, `Retry-After`) and the body all at once.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

/// One exchange: `head` is the request line plus any headers (CRLF-separated, without the
/// final blank line); `Host` and `Content-Length` are added. Returns (status, headers with
/// lower-case names, body).
pub fn exchange(addr: SocketAddr, head: &str, body: &str) -> (u16, Vec<(String, String)>, String) {
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .expect("connect to the node");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "{head}\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send request");
    let mut buf = String::new();
    s.read_to_string(&mut buf).expect("read response");
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
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
    (status, headers, body.to_owned())
}

/// The value of header `name` (lower case) in an [`exchange`]'s headers.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}
