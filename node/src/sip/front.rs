//! The UDP front: owns the SIP UDP socket and looks at every datagram before the transaction
//! layer does. Garbage gets `400` (or is dropped when no response is possible); a new INVITE is
//! checked against the carrier allowlist and routed at once, statelessly: `100`, then `302` to
//! another node or `503`, as a redirect server should (RFC 3261 §8.3). Everything else (INVITEs
//! this node keeps, in-dialog requests, responses) goes on to rsipstack through [`FrontSocket`].

use std::net::SocketAddr;
use std::sync::Arc;

use rsipstack::sip::{Header, Method, Request, SipMessage};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, Mutex};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::admission::{self, Admission};
use super::malformed;
use super::reply::{stable_tag, Stateless};
use crate::node::Node;

/// Largest datagram we read.
const MAX_DATAGRAM: usize = 65_535;

/// A datagram handed on to the transaction layer.
pub type Datagram = (Vec<u8>, SocketAddr);

/// What rsipstack reads from and writes to instead of the real socket: reads come from the
/// front, writes go straight out (and are counted).
pub struct FrontSocket {
    real: Arc<UdpSocket>,
    rx: Mutex<mpsc::Receiver<Datagram>>,
    node: Node,
}

impl FrontSocket {
    pub fn new(real: Arc<UdpSocket>, rx: mpsc::Receiver<Datagram>, node: Node) -> FrontSocket {
        FrontSocket {
            real,
            rx: Mutex::new(rx),
            node,
        }
    }
}

#[async_trait::async_trait]
impl rsipstack::platform::net::UdpSocket for FrontSocket {
    async fn recv_from(&self, buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        // Only rsipstack's one UDP read loop calls this, so the lock is never contended.
        let mut rx = self.rx.lock().await;
        loop {
            match rx.recv().await {
                Some((data, from)) if data.len() <= buf.len() => {
                    buf[..data.len()].copy_from_slice(&data);
                    return Ok((data.len(), from));
                }
                Some((data, from)) => {
                    warn!(%from, len = data.len(), "datagram too large for the transaction layer")
                }
                None => std::future::pending::<()>().await,
            }
        }
    }

    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> rsipstack::Result<usize> {
        count_sent(&self.node, buf);
        Ok(self.real.send_to(buf, addr).await?)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.real.local_addr()?)
    }
}

/// Counts responses we send, by status code, from the first line of the bytes.
fn count_sent(node: &Node, buf: &[u8]) {
    if buf.len() > 12 && buf.starts_with(b"SIP/2.0 ") {
        if let Some(code) = std::str::from_utf8(&buf[8..11])
            .ok()
            .and_then(|s| s.parse().ok())
        {
            node.metrics.sip_response(code);
        }
    }
}

/// Reads the socket until `stop`; never returns an error for bad input.
pub async fn run(
    node: Node,
    socket: Arc<UdpSocket>,
    to_stack: mpsc::Sender<Datagram>,
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
        let packet = &buf[..len];
        if let Some(reply) = inspect(&node, packet, src) {
            match reply {
                Verdict::Forward => forward(&to_stack, packet, src),
                Verdict::TryingThenForward(trying) => {
                    send(&node, &socket, &trying, src).await;
                    forward(&to_stack, packet, src);
                }
                Verdict::Reply(bytes) => send(&node, &socket, &bytes, src).await,
                Verdict::Replies(a, b) => {
                    send(&node, &socket, &a, src).await;
                    send(&node, &socket, &b, src).await;
                }
            }
        }
    }
}

fn forward(to_stack: &mpsc::Sender<Datagram>, packet: &[u8], src: SocketAddr) {
    if to_stack.try_send((packet.to_vec(), src)).is_err() {
        warn!(%src, "transaction layer is overloaded; datagram dropped");
    }
}

async fn send(node: &Node, socket: &UdpSocket, bytes: &[u8], to: SocketAddr) {
    count_sent(node, bytes);
    if let Err(e) = socket.send_to(bytes, to).await {
        debug!(%to, error = %e, "cannot send response");
    }
}

/// What the front does with one datagram.
#[derive(Debug)]
pub enum Verdict {
    Forward,
    Reply(Vec<u8>),
    Replies(Vec<u8>, Vec<u8>),
    TryingThenForward(Vec<u8>),
}

/// Decides what to do with one datagram; `None` drops it.
pub fn inspect(node: &Node, packet: &[u8], src: SocketAddr) -> Option<Verdict> {
    if packet.iter().all(|b| b.is_ascii_whitespace()) {
        return Some(Verdict::Forward); // keep-alive: rsipstack answers it
    }
    let msg = match SipMessage::try_from(packet) {
        Ok(m) => m,
        Err(e) => {
            node.metrics.sip_malformed();
            debug!(%src, error = %e, "unparseable SIP datagram");
            return malformed::bad_request_for_raw(packet, src, "Bad Request").map(Verdict::Reply);
        }
    };
    let req = match msg {
        SipMessage::Response(_) => return Some(Verdict::Forward),
        SipMessage::Request(r) => r,
    };
    node.metrics.sip_request(method_name(&req.method));
    if let Err(defect) = malformed::check_request(&req, packet) {
        node.metrics.sip_malformed();
        debug!(%src, %defect, "malformed SIP request");
        if req.method == Method::Ack || !has_via(&req) {
            return None;
        }
        let reason = malformed::sanitize(&defect.to_string());
        let tag = stable_tag(call_id(&req).unwrap_or(""), &node.cfg.node.name);
        return Some(Verdict::Reply(
            Stateless::new(&req, src, 400, &reason, Some(&tag)).finish(),
        ));
    }
    if req.method != Method::Invite || has_to_tag(&req) {
        return Some(Verdict::Forward);
    }
    initial_invite(node, &req, src)
}

fn initial_invite(node: &Node, req: &Request, src: SocketAddr) -> Option<Verdict> {
    let call_id = call_id(req).unwrap_or("");
    if node.calls.contains(call_id) {
        return Some(Verdict::Forward); // a retransmission of a call kept here
    }
    let tag = stable_tag(call_id, &node.cfg.node.name);
    let trying = || Stateless::new(req, src, 100, "Trying", None).finish();
    match admission::admit(node, req, src) {
        // 100 Trying at once; the transaction layer sends the rest.
        Admission::Handle => Some(Verdict::TryingThenForward(trying())),
        Admission::Drop => None,
        Admission::Forbidden => Some(Verdict::Reply(
            Stateless::new(req, src, 403, "Forbidden", Some(&tag)).finish(),
        )),
        Admission::Redirect { contact } => {
            let moved = Stateless::new(req, src, 302, "Moved Temporarily", Some(&tag))
                .header("Contact", format_args!("<{contact}>"))
                .finish();
            Some(with_trying(node, trying, moved))
        }
        Admission::Busy { retry_after } => {
            let busy = Stateless::new(req, src, 503, "Service Unavailable", Some(&tag))
                .header("Retry-After", retry_after)
                .finish();
            Some(with_trying(node, trying, busy))
        }
    }
}

fn with_trying(node: &Node, trying: impl FnOnce() -> Vec<u8>, last: Vec<u8>) -> Verdict {
    if node.cfg.sip.trying_on_redirect {
        Verdict::Replies(trying(), last)
    } else {
        Verdict::Reply(last)
    }
}

fn has_via(req: &Request) -> bool {
    req.headers.iter().any(|h| matches!(h, Header::Via(_)))
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
