//! A leg's RTP socket and how its task waits on it. Tokio's own UDP socket registers for
//! reading and writing, and on Linux every datagram sent then wakes the runtime's poller for
//! writability, which nobody waits for: a leg never waits to send. Here the socket is a plain
//! non-blocking one, every send a `sendto` that does not wait (a datagram the socket's buffer
//! cannot take at once is lost, as it would be on the wire), and the leg's task registers it
//! with the runtime for read interest alone ([`Reader`]) while it reads datagram by datagram.
//! A caller on music on hold takes it out of the poller altogether (parks it): its datagrams
//! wait in the socket's buffer and are read in batches (`held`), with the kernel's arrival
//! time of each (`SO_TIMESTAMPNS`, switched on for every leg's socket). Should the runtime
//! not take the socket so (no descriptor to spare), the leg keeps tokio's socket, registered
//! for both, and parking it only stops its task from waiting on it.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::Arc;
use std::task::{Context, Poll};

use nix::sys::socket::{setsockopt, sockopt::ReceiveTimestampns};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tracing::debug;

#[derive(Debug)]
pub(super) enum RtpSocket {
    /// A duplicate of the socket's descriptor (the original is closed: the socket is the
    /// same), shared with the task's registration while it has one.
    Plain(Arc<std::net::UdpSocket>),
    /// Tokio's socket as it came, where the runtime could not take the other.
    Tokio(tokio::net::UdpSocket),
}

impl RtpSocket {
    pub(super) fn new(socket: tokio::net::UdpSocket) -> RtpSocket {
        if let Err(e) = setsockopt(&socket, ReceiveTimestampns, &true) {
            debug!(error = %e, "no kernel arrival times on this RTP socket");
        }
        match socket.as_fd().try_clone_to_owned() {
            Ok(fd) => RtpSocket::Plain(Arc::new(std::net::UdpSocket::from(fd))),
            Err(e) => {
                debug!(error = %e, "RTP socket left registered for reading and writing");
                RtpSocket::Tokio(socket)
            }
        }
    }

    pub(super) fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            RtpSocket::Plain(s) => s.local_addr(),
            RtpSocket::Tokio(s) => s.local_addr(),
        }
    }

    /// Sends `packet` to `to` now, without waiting (a full socket buffer loses it).
    pub(super) fn send_to(&self, packet: &[u8], to: SocketAddr) -> io::Result<usize> {
        match self {
            RtpSocket::Plain(s) => s.send_to(packet, to),
            RtpSocket::Tokio(s) => s.try_send_to(packet, to),
        }
    }

    /// The descriptor, for reading in batches without the runtime.
    pub(super) fn raw_fd(&self) -> RawFd {
        match self {
            RtpSocket::Plain(s) => s.as_raw_fd(),
            RtpSocket::Tokio(s) => s.as_raw_fd(),
        }
    }
}

/// At most this many datagrams are taken from the RTP socket per drain; then the task's loop
/// polls its waits again (the socket first, within tokio's cooperative budget).
pub(super) const DRAIN: usize = 32;

/// How the leg's task waits on its RTP socket: registered for read interest (woken per
/// datagram), or parked (out of the poller; read in batches on the task's coarse timer).
/// Only the leg's task reads the socket: the task's waker is the only one kept.
#[derive(Debug, Default)]
pub(super) struct Reader {
    /// The socket registered for reading alone (`None` while parked, or for tokio's socket).
    registered: Option<AsyncFd<Arc<std::net::UdpSocket>>>,
    parked: bool,
}

impl Reader {
    /// Registers `socket` for read interest; a socket the runtime does not take stays parked
    /// (logged; `parked` tells).
    pub(super) fn new(socket: &RtpSocket) -> Reader {
        let mut reader = Reader {
            registered: None,
            parked: true,
        };
        reader.unpark(socket);
        reader
    }

    pub(super) fn parked(&self) -> bool {
        self.parked
    }

    /// Takes the socket out of the poller: its datagrams wait in its buffer until read.
    pub(super) fn park(&mut self) {
        if let Some(fd) = self.registered.take() {
            // Deregisters; the socket stays open (the leg holds it).
            drop(fd.into_inner());
        }
        self.parked = true;
    }

    /// Registers the socket again (a datagram already waiting makes it ready at once);
    /// false when the runtime did not take it (the leg then stays parked).
    pub(super) fn unpark(&mut self, socket: &RtpSocket) -> bool {
        if !self.parked {
            return true;
        }
        match socket {
            RtpSocket::Plain(s) => match register(s.clone()) {
                Ok(fd) => self.registered = Some(fd),
                Err(e) => {
                    debug!(error = %e, "RTP socket could not be registered; read in batches");
                    return false;
                }
            },
            RtpSocket::Tokio(_) => {}
        }
        self.parked = false;
        true
    }

    /// Ready when a datagram may be waiting; never while parked.
    pub(super) fn poll_ready(
        &self,
        socket: &RtpSocket,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        if self.parked {
            return Poll::Pending;
        }
        match (&self.registered, socket) {
            (Some(fd), _) => fd.poll_read_ready(cx).map_ok(drop),
            (None, RtpSocket::Tokio(s)) => s.poll_recv_ready(cx),
            (None, RtpSocket::Plain(_)) => Poll::Pending,
        }
    }

    /// Takes what waits on `socket`, up to [`DRAIN`] datagrams, one after the other into
    /// `buf`, each handed to `take` with its source: a wake-up serves every packet that came
    /// meanwhile, not one.
    pub(super) fn drain(
        &self,
        socket: &RtpSocket,
        buf: &mut [u8],
        mut take: impl FnMut(&mut [u8], SocketAddr),
    ) {
        for _ in 0..DRAIN {
            let Ok((n, from)) = self.try_recv_from(socket, buf) else {
                // Nothing more (the socket's readiness is cleared), or an error to skip.
                return;
            };
            take(&mut buf[..n], from);
        }
    }

    /// The next datagram waiting, or `WouldBlock` (which clears the readiness).
    pub(super) fn try_recv_from(
        &self,
        socket: &RtpSocket,
        buf: &mut [u8],
    ) -> io::Result<(usize, SocketAddr)> {
        match (&self.registered, socket) {
            (Some(fd), _) => fd.try_io(Interest::READABLE, |s| s.recv_from(buf)),
            (None, RtpSocket::Tokio(s)) => s.try_recv_from(buf),
            (None, RtpSocket::Plain(s)) => s.recv_from(buf),
        }
    }
}

/// The socket registered for reading alone (the descriptor's non-blocking mode is shared with
/// tokio's, which set it).
#[allow(deprecated)]
fn register(socket: Arc<std::net::UdpSocket>) -> io::Result<AsyncFd<Arc<std::net::UdpSocket>>> {
    // Deprecated for types that could hand out another descriptor than the one registered
    // (its replacement is `unsafe`, which this crate forbids): the leg's std `UdpSocket`
    // owns its one descriptor until the last of its holders, this one among them, drops it.
    AsyncFd::with_interest(socket, Interest::READABLE)
}

#[cfg(test)]
mod tests;
