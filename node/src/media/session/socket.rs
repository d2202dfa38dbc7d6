//! A leg's RTP socket, registered with the runtime for read interest only. Tokio's own UDP
//! socket registers for reading and writing, and on Linux every datagram sent then wakes the
//! runtime's poller for writability, which nobody waits for: a leg never waits to send. Here
//! the leg's task waits only for datagrams to read, and every send is a plain non-blocking
//! `sendto`: a datagram the socket's buffer cannot take at once is lost, as it would be on the
//! wire. Should the runtime not take the socket so (no descriptor to spare), the leg keeps
//! tokio's socket and the same behaviour.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::task::{Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tracing::debug;

#[derive(Debug)]
pub(super) enum RtpSocket {
    /// A duplicate of the socket's descriptor registered for reading alone (the original is
    /// closed: the socket is the same).
    ReadOnly(AsyncFd<std::net::UdpSocket>),
    /// Tokio's socket as it came, where the runtime could not take the other.
    Tokio(tokio::net::UdpSocket),
}

impl RtpSocket {
    pub(super) fn new(socket: tokio::net::UdpSocket) -> RtpSocket {
        match read_only(&socket) {
            Ok(fd) => RtpSocket::ReadOnly(fd),
            Err(e) => {
                debug!(error = %e, "RTP socket left registered for reading and writing");
                RtpSocket::Tokio(socket)
            }
        }
    }

    pub(super) fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            RtpSocket::ReadOnly(fd) => fd.get_ref().local_addr(),
            RtpSocket::Tokio(s) => s.local_addr(),
        }
    }

    /// Sends `packet` to `to` now, without waiting (a full socket buffer loses it).
    pub(super) fn send_to(&self, packet: &[u8], to: SocketAddr) -> io::Result<usize> {
        match self {
            RtpSocket::ReadOnly(fd) => fd.get_ref().send_to(packet, to),
            RtpSocket::Tokio(s) => s.try_send_to(packet, to),
        }
    }

    /// Ready when a datagram may be waiting. Only the leg's task reads the socket: the task's
    /// waker is the only one kept.
    pub(super) fn poll_recv_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            RtpSocket::ReadOnly(fd) => fd.poll_read_ready(cx).map_ok(drop),
            RtpSocket::Tokio(s) => s.poll_recv_ready(cx),
        }
    }

    /// The next datagram waiting, or `WouldBlock` (which clears the readiness).
    pub(super) fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match self {
            RtpSocket::ReadOnly(fd) => fd.try_io(Interest::READABLE, |s| s.recv_from(buf)),
            RtpSocket::Tokio(s) => s.try_recv_from(buf),
        }
    }
}

/// The socket registered for reading alone (the descriptor's non-blocking mode is shared with
/// tokio's, which set it).
#[allow(deprecated)]
fn read_only(socket: &tokio::net::UdpSocket) -> io::Result<AsyncFd<std::net::UdpSocket>> {
    let fd = socket.as_fd().try_clone_to_owned()?;
    // Deprecated for types that could hand out another descriptor than the one registered
    // (its replacement is `unsafe`, which this crate forbids): a std `UdpSocket` owns its one
    // descriptor from here until it is dropped with the `AsyncFd`.
    AsyncFd::with_interest(std::net::UdpSocket::from(fd), Interest::READABLE)
}
