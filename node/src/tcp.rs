//! The node's listening TCP sockets (HTTP, SIP over TCP and TLS, lockd): address reuse, non-
//! blocking, and a backlog of [`BACKLOG`] connections waiting to be accepted. The standard
//! library (and `tokio::net::TcpListener::bind`) listen with 128: a burst of connections (a
//! few hundred panels and CRM clients reconnecting after a restart, a login flood) overflowed
//! it, and the kernel answered with SYN cookies and resets.

use std::io;
use std::net::SocketAddr;

/// Connections waiting to be accepted; the kernel caps it at `net.core.somaxconn`.
pub const BACKLOG: i32 = 1024;

/// A listening socket on `addr`, non-blocking, for tokio's `TcpListener::from_std`.
pub fn listen(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let domain = socket2::Domain::for_address(addr);
    let sock = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(BACKLOG)?;
    Ok(sock.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_takes_more_than_128_connections_before_accepting() {
        let l = listen("127.0.0.1:0".parse().expect("addr")).expect("listen");
        let addr = l.local_addr().expect("local addr");
        // 300 connections complete their handshake with nothing accepted yet.
        let conns: Vec<_> = (0..300)
            .map(|i| {
                std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2))
                    .unwrap_or_else(|e| panic!("connection {i}: {e}"))
            })
            .collect();
        assert_eq!(conns.len(), 300);
    }
}
