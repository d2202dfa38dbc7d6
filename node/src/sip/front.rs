//! The UDP front: owns the SIP UDP socket and reads every datagram (up to 65,535 bytes) itself.
//! Each one goes through [`inbound::inspect`] once: answered there (`400`, `100` + `302`/`503`,
//! `403`, ...), dropped, or handed to rsipstack's transaction layer *already parsed*, through
//! [`on_received_message`], as rsipstack's own UDP loop would hand it on. That loop still runs
//! (rsipstack needs a UDP transport to send from) but reads nothing: the [`FrontSocket`] it is
//! given never yields a datagram.
//!
//! [`on_received_message`]: rsipstack::transaction::endpoint::EndpointInner::on_received_message

use std::net::SocketAddr;
use std::sync::Arc;

use rsipstack::sip::{Header, Method, Request, Transport};
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transport::{SipAddr, SipConnection};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::inbound::{self, ReplyPath, Verdict, Wire};
use crate::node::Edge;

/// Largest datagram we read (RFC 3261 §18.1.1: up to 65,535 bytes).
const MAX_DATAGRAM: usize = 65_535;

/// What rsipstack sends through: writes go straight out of the real socket (and are
/// counted); reads never return, since the front reads the socket.
pub struct FrontSocket {
    real: Arc<UdpSocket>,
    edge: Edge,
}

impl FrontSocket {
    pub fn new(real: Arc<UdpSocket>, edge: Edge) -> FrontSocket {
        FrontSocket { real, edge }
    }
}

#[async_trait::async_trait]
impl rsipstack::platform::net::UdpSocket for FrontSocket {
    async fn recv_from(&self, _buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        std::future::pending().await
    }

    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> rsipstack::Result<usize> {
        inbound::count_sent(&self.edge, buf);
        self.edge
            .trace
            .sent(callfleet_vocab::TraceTransport::Udp, addr, buf);
        Ok(self.real.send_to(buf, addr).await?)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.real.local_addr()?)
    }
}

/// Reads the socket until `stop`; never returns an error for bad input.
pub async fn run(
    edge: Edge,
    socket: Arc<UdpSocket>,
    stack: EndpointInnerRef,
    conn: SipConnection,
    stop: CancellationToken,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (len, src) = tokio::select! {
            _ = stop.cancelled() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    // ICMP port unreachable from an earlier send surfaces here on Linux.
                    debug!(error = %e, "UDP receive error");
                    continue;
                }
            },
        };
        let packet = buf.get(..len).unwrap_or_default();
        if packet == b"\r\n\r\n" {
            // RFC 5626 keep-alive ping: pong.
            if let Err(e) = socket.send_to(b"\r\n", src).await {
                debug!(%src, error = %e, "cannot answer a keep-alive");
            }
            continue;
        }
        if packet.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let path = ReplyPath::Udp {
            socket: socket.clone(),
            to: src,
        };
        let wire = Wire {
            bytes: packet,
            src,
            transport: Transport::Udp,
            path: &path,
        };
        let verdict = inbound::inspect(&edge, &stack, &wire);
        deliver(&edge, &stack, &conn, &path, src, Transport::Udp, verdict).await;
    }
}

/// Carries out a verdict: responses sent back along `path`, a message handed to the
/// transaction layer as arrived on `conn` from `src`.
pub async fn deliver(
    edge: &Edge,
    stack: &EndpointInnerRef,
    conn: &SipConnection,
    path: &ReplyPath,
    src: SocketAddr,
    transport: Transport,
    verdict: Verdict,
) {
    match verdict {
        Verdict::Drop => {}
        Verdict::Reply(bytes) => path.send(edge, &bytes).await,
        Verdict::Replies(a, b) => {
            path.send(edge, &a).await;
            path.send(edge, &b).await;
        }
        Verdict::HandOn { msg, first } => {
            if let Some(first) = first {
                path.send(edge, &first).await;
            }
            let from = SipAddr {
                r#type: Some(transport),
                addr: src.into(),
            };
            if let Err(e) = stack.on_received_message(msg, conn.clone(), &from).await {
                debug!(%src, error = %e, "the transaction layer refused a message");
            }
        }
    }
}

pub fn call_id(req: &Request) -> Option<&str> {
    req.headers.iter().find_map(|h| match h {
        Header::CallId(c) => Some(c.value()),
        _ => None,
    })
}

pub fn has_to_tag(req: &Request) -> bool {
    req.headers.iter().any(|h| match h {
        Header::To(to) => to.tag().ok().flatten().is_some(),
        _ => false,
    })
}

/// The method's name without allocating (metrics on the hot path).
pub fn method_name(m: &Method) -> &'static str {
    match m {
        Method::Invite => "INVITE",
        Method::Ack => "ACK",
        Method::Bye => "BYE",
        Method::Cancel => "CANCEL",
        Method::Options => "OPTIONS",
        Method::Register => "REGISTER",
        _ => "other",
    }
}
