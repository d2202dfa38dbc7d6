//! The one path every SIP message from the network takes, over UDP and TCP alike: byte checks
//! (`400`, `501`, `505`), the one parse, what RFC 3261 requires of a request and what this node
//! accepts (`400`, `415`, `416`, `420`, `406`), then the transaction layer's own preconditions,
//! checked with rsipstack's own functions (transaction key, dialog id, top Via), so that every
//! message handed on is one rsipstack takes. A new INVITE is then admitted (allowlist and
//! balancer) and answered `100` at once, or refused statelessly (`302`, `503`, `403`, `482`).
//!
//! The parsed message itself is handed on: rsipstack never parses a datagram or a stream frame
//! again, so the front and the transaction layer cannot read a message differently.

use std::net::SocketAddr;
use std::sync::Arc;

use callfleet_vocab::TraceTransport;
use rsipstack::dialog::DialogId;
use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{Header, Method, Request, Response, SipMessage, Transport};
use rsipstack::transaction::endpoint::EndpointInner;
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transport::stream::StreamConnection;
use rsipstack::transport::SipConnection;
use tokio::net::UdpSocket;
use tracing::{debug, info};

use super::admission::{self, Admission};
use super::loglimit::LogLimiter;
use super::malformed::{self, raw, Refusal};
use super::reply::{stable_tag, Stateless};
use super::uas::ALLOW;
use crate::calls::{Admit, GiveUp};
use crate::node::Edge;
use crate::now_ms;

/// Bad input is logged at most once per kind every ten seconds.
static BAD_INPUT: std::sync::LazyLock<LogLimiter> =
    std::sync::LazyLock::new(|| LogLimiter::new(std::time::Duration::from_secs(10)));

/// Logs one refused message, rate-limited by `kind`.
pub fn log_refused(kind: &'static str, src: SocketAddr, status: u16) {
    if let Some(left_out) = BAD_INPUT.allow(kind, std::time::Instant::now()) {
        info!(%src, kind, status, left_out, "refused SIP input (one line per kind every 10 s)");
    }
}

/// Where answers to one message go: out of the UDP socket to its source, or down its stream.
#[derive(Clone)]
pub enum ReplyPath {
    Udp {
        socket: Arc<UdpSocket>,
        to: SocketAddr,
    },
    Stream(SipConnection),
}

impl ReplyPath {
    /// Sends one response (counted by status, and traced).
    pub async fn send(&self, edge: &Edge, bytes: &[u8]) {
        count_sent(edge, bytes);
        match self {
            ReplyPath::Udp { socket, to } => {
                edge.trace.sent(TraceTransport::Udp, *to, bytes);
                if let Err(e) = socket.send_to(bytes, to).await {
                    debug!(%to, error = %e, "cannot send response");
                }
            }
            ReplyPath::Stream(SipConnection::Tcp(conn)) => {
                if let Ok(peer) = conn.get_remote_addr().get_socketaddr() {
                    edge.trace.sent(TraceTransport::Tcp, peer, bytes);
                }
                if let Err(e) = conn.inner.send_raw(bytes).await {
                    debug!(error = %e, "cannot send response on a stream");
                }
            }
            ReplyPath::Stream(SipConnection::TlsPlatform(conn)) => {
                if let Ok(peer) = conn.get_remote_addr().get_socketaddr() {
                    edge.trace.sent(TraceTransport::Tls, peer, bytes);
                }
                if let Err(e) = conn.send_raw(bytes).await {
                    debug!(error = %e, "cannot send response on a TLS stream");
                }
            }
            ReplyPath::Stream(other) => debug!(%other, "no raw send on this connection"),
        }
    }

    /// A [`GiveUp`] that sends `bytes` this way.
    fn later(&self, edge: &Edge, bytes: Vec<u8>) -> GiveUp {
        let path = self.clone();
        let edge = edge.clone();
        Box::new(move || {
            tokio::spawn(async move { path.send(&edge, &bytes).await });
        })
    }
}

/// The trace's name of a transport (SIP reaches the node on UDP, TCP and TLS only).
pub fn trace_transport(t: Transport) -> TraceTransport {
    match t {
        Transport::Tcp => TraceTransport::Tcp,
        Transport::Tls => TraceTransport::Tls,
        _ => TraceTransport::Udp,
    }
}

/// Counts responses we send, by status code, from the first line of the bytes.
pub fn count_sent(edge: &Edge, buf: &[u8]) {
    let code = buf
        .strip_prefix(b"SIP/2.0 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|c| std::str::from_utf8(c).ok())
        .and_then(|s| s.parse().ok());
    if let Some(code) = code {
        edge.metrics.sip_response(code);
    }
}

/// What to do with one message.
#[derive(Debug)]
pub enum Verdict {
    Drop,
    Reply(Vec<u8>),
    Replies(Vec<u8>, Vec<u8>),
    /// Send `first` (a `100 Trying`), if any, then hand `msg` to the transaction layer.
    HandOn {
        msg: SipMessage,
        first: Option<Vec<u8>>,
    },
}

/// One message as it came: its bytes, who sent it, on what, and how to answer.
pub struct Wire<'a> {
    pub bytes: &'a [u8],
    pub src: SocketAddr,
    pub transport: Transport,
    pub path: &'a ReplyPath,
}

/// What the checks make of one message, before any decision that needs the node.
#[derive(Debug)]
pub enum Checked {
    /// Bytes refused before parsing.
    Raw(raw::RawDefect),
    /// Bytes that do not parse as SIP.
    Unparseable,
    /// A response the transaction layer can match.
    Response(Response),
    /// A response it cannot (no usable From tag, Via or CSeq).
    Unmatchable,
    /// A request refused by the checks, kept to build the answer from.
    Refused(Request, Refusal),
    /// A request the transaction layer takes, with its transaction key.
    Request(Request, TransactionKey),
}

/// Checks one message and parses it once (pure: the fuzz target's entry point).
pub fn check(bytes: &[u8], transport: Transport) -> Checked {
    let head = match raw::check(bytes) {
        Ok(h) => h,
        Err(defect) => return Checked::Raw(defect),
    };
    let Ok(msg) = SipMessage::try_from(bytes) else {
        return Checked::Unparseable;
    };
    match msg {
        SipMessage::Response(r) => {
            if TransactionKey::from_response(&r, TransactionRole::Client).is_ok() {
                Checked::Response(r)
            } else {
                Checked::Unmatchable
            }
        }
        SipMessage::Request(mut req) => {
            if transport == Transport::Udp && head.content_length.is_none() {
                // RFC 3261 §18.3: without Content-Length, a datagram's body runs to its end.
                req.body = bytes.get(head.len..).unwrap_or_default().to_vec();
            }
            tidy_addresses(&mut req);
            match admissible(&req, bytes) {
                Ok(key) => Checked::Request(req, key),
                Err(refusal) => Checked::Refused(req, refusal),
            }
        }
    }
}

/// Decides what to do with one message (a datagram, or a frame cut from a stream).
pub fn inspect(edge: &Edge, stack: &EndpointInner, wire: &Wire<'_>) -> Verdict {
    // The SIP trace at `debug`: every message as it came, on one line (credentials are hidden
    // by the log writer, `crate::redact`).
    debug!(
        src = %wire.src,
        transport = %wire.transport,
        message = ?String::from_utf8_lossy(wire.bytes),
        "SIP message in"
    );
    edge.trace
        .received(trace_transport(wire.transport), wire.src, wire.bytes);
    match check(wire.bytes, wire.transport) {
        Checked::Raw(defect) => refuse_raw(edge, wire, &defect),
        Checked::Unparseable => {
            edge.metrics.sip_malformed();
            log_refused("unparseable", wire.src, 400);
            malformed::bad_request_for_raw(wire.bytes, wire.src, "Bad Request")
                .map_or(Verdict::Drop, Verdict::Reply)
        }
        Checked::Response(resp) => Verdict::HandOn {
            msg: SipMessage::Response(resp),
            first: None,
        },
        Checked::Unmatchable => {
            debug!(src = %wire.src, "response the transaction layer cannot match");
            Verdict::Drop
        }
        Checked::Refused(req, refusal) => {
            edge.metrics
                .sip_request(super::front::method_name(&req.method));
            edge.metrics.sip_malformed();
            log_refused(refusal.reason, wire.src, refusal.status);
            refuse(edge, &req, wire.src, &refusal)
        }
        Checked::Request(req, key) => {
            edge.metrics
                .sip_request(super::front::method_name(&req.method));
            request(edge, stack, req, key, wire)
        }
    }
}

fn refuse_raw(edge: &Edge, wire: &Wire<'_>, defect: &raw::RawDefect) -> Verdict {
    edge.metrics.sip_malformed();
    log_refused(defect.kind(), wire.src, defect.status());
    let allow = matches!(defect, raw::RawDefect::UnknownMethod).then_some(("Allow", ALLOW));
    malformed::reply_for_raw(
        wire.bytes,
        wire.src,
        defect.status(),
        &defect.to_string(),
        allow,
    )
    .map_or(Verdict::Drop, Verdict::Reply)
}

fn request(
    edge: &Edge,
    stack: &EndpointInner,
    req: Request,
    key: TransactionKey,
    wire: &Wire<'_>,
) -> Verdict {
    if req.method == Method::Ack {
        return hand_on(req, wire);
    }
    if req.method == Method::Options {
        if let Some(reply) = peer_probe(edge, &req, wire.src) {
            return Verdict::Reply(reply);
        }
    }
    if super::front::has_to_tag(&req) {
        if !dialog_peer_ok(edge, &req, wire.src) {
            let refusal = Refusal {
                status: 481,
                reason: "Call/Transaction Does Not Exist",
                header: None,
            };
            return refuse(edge, &req, wire.src, &refusal);
        }
        return hand_on(req, wire);
    }
    if req.method == Method::Register
        && !stack.transactions.contains_key(&key)
        && !stack.finished_transactions.contains_key(&key)
    {
        match admission::register_refused(edge, wire.src) {
            None => {}
            Some(Admission::Forbidden) => {
                let refusal = Refusal {
                    status: 403,
                    reason: "Forbidden",
                    header: None,
                };
                return refuse(edge, &req, wire.src, &refusal);
            }
            Some(_) => return Verdict::Drop,
        }
    }
    if req.method != Method::Invite {
        return hand_on(req, wire);
    }
    if stack.transactions.contains_key(&key) || stack.finished_transactions.contains_key(&key) {
        return hand_on(req, wire); // a retransmission: its transaction answers it
    }
    initial_invite(edge, req, key, wire)
}

/// The answer to another cluster node's probe (an `OPTIONS` from the SIP address of a node in
/// the view): `200` with this node's live load, which the prober uses while the heartbeat table
/// cannot be read. `None` for anyone else: rsipstack answers them without the load.
fn peer_probe(edge: &Edge, req: &Request, src: SocketAddr) -> Option<Vec<u8>> {
    let me = &edge.cfg.node.name;
    let view = edge.balancer.view();
    let from_peer = view
        .nodes()
        .iter()
        .any(|n| n.name != *me && n.sip.ip() == src.ip());
    if !from_peer || super::front::has_to_tag(req) {
        return None;
    }
    let tag = stable_tag(super::front::call_id(req).unwrap_or(""), me);
    let load = crate::heartbeat::live_load(&edge.calls, edge.cfg.node.capacity, &edge.life);
    let reply = Stateless::new(req, src, 200, "OK", Some(&tag))
        .header("Allow", ALLOW)
        .header(callfleet_lb::LOAD_HEADER, load)
        .finish();
    Some(reply)
}

/// Everything a request must pass before the transaction layer sees it; its transaction key.
fn admissible(req: &Request, bytes: &[u8]) -> Result<TransactionKey, Refusal> {
    let bad = |reason| Refusal {
        status: 400,
        reason,
        header: None,
    };
    malformed::check_request(req, bytes).map_err(|_| bad("Malformed Request"))?;
    malformed::check_policy(req)?;
    let via_ok = req.top_via_header().and_then(|v| v.typed()).is_ok();
    if !via_ok {
        return Err(bad("Malformed Via"));
    }
    let key = TransactionKey::from_request(req, TransactionRole::Server)
        .map_err(|_| bad("Missing Or Malformed From Tag"))?;
    if req.method == Method::Invite && DialogId::try_from((req, TransactionRole::Server)).is_err() {
        return Err(bad("Malformed From Or To"));
    }
    Ok(key)
}

/// A stateless answer to a request refused here (none to an ACK or without a Via).
fn refuse(edge: &Edge, req: &Request, src: SocketAddr, refusal: &Refusal) -> Verdict {
    let has_via = req.headers.iter().any(|h| matches!(h, Header::Via(_)));
    if req.method == Method::Ack || !has_via {
        return Verdict::Drop;
    }
    let tag = stable_tag(
        super::front::call_id(req).unwrap_or(""),
        &edge.cfg.node.name,
    );
    let mut reply = Stateless::new(req, src, refusal.status, refusal.reason, Some(&tag));
    if let Some((name, value)) = &refusal.header {
        reply = reply.header(name, value);
    }
    Verdict::Reply(reply.finish())
}

/// An in-dialog request for a call of this node must come from the call's peer or from an
/// address trusted to send calls (a carrier, one of our phones).
fn dialog_peer_ok(edge: &Edge, req: &Request, src: SocketAddr) -> bool {
    let Some(call) = edge.calls.get(super::front::call_id(req).unwrap_or("")) else {
        return true;
    };
    call.peer == src.ip() || trusted(edge, src)
}

fn trusted(edge: &Edge, src: SocketAddr) -> bool {
    let t = admission::trust(edge, src);
    t.carrier || t.proxy || t.phone
}

fn hand_on(req: Request, wire: &Wire<'_>) -> Verdict {
    match SipConnection::update_msg_received(req.into(), wire.src, wire.transport) {
        Ok(msg) => Verdict::HandOn { msg, first: None },
        Err(e) => {
            debug!(src = %wire.src, error = %e, "cannot stamp the Via");
            Verdict::Drop
        }
    }
}

fn initial_invite(edge: &Edge, req: Request, key: TransactionKey, wire: &Wire<'_>) -> Verdict {
    let src = wire.src;
    let call_id = super::front::call_id(&req).unwrap_or("").to_string();
    let tag = stable_tag(&call_id, &edge.cfg.node.name);
    let trying = |req: &Request| Stateless::new(req, src, 100, "Trying", None).finish();
    match admission::admit(edge, &req, src) {
        Admission::Handle { marked_by } => {
            let give_up = Stateless::new(&req, src, 500, "Server Internal Error", Some(&tag))
                .header("Retry-After", 1)
                .finish();
            let call = Admit {
                call_id,
                from_uri: admission::header_uri(&req, |h| matches!(h, Header::From(_))),
                to_uri: admission::header_uri(&req, |h| matches!(h, Header::To(_))),
                peer: src.ip(),
                redirected_from: marked_by,
                tx_key: key.to_string(),
            };
            let traced = call.call_id.clone();
            let started_at_ms = now_ms();
            match edge
                .calls
                .admit(call, started_at_ms, wire.path.later(edge, give_up))
            {
                Ok(_) => {
                    edge.trace.begin(&traced, started_at_ms);
                    edge.metrics
                        .set_calls_active(i64::from(edge.calls.active()));
                    let first = Some(trying(&req));
                    match hand_on(req, wire) {
                        Verdict::HandOn { msg, .. } => Verdict::HandOn { msg, first },
                        other => other, // the watchdog answers the admitted call
                    }
                }
                Err(_) => Verdict::Reply(
                    Stateless::new(&req, src, 482, "Loop Detected", Some(&tag)).finish(),
                ),
            }
        }
        Admission::Drop => Verdict::Drop,
        Admission::Forbidden => {
            Verdict::Reply(Stateless::new(&req, src, 403, "Forbidden", Some(&tag)).finish())
        }
        Admission::Redirect { contact } => {
            let moved = Stateless::new(&req, src, 302, "Moved Temporarily", Some(&tag))
                .header("Contact", format_args!("<{contact}>"))
                .finish();
            with_trying(edge, trying(&req), moved)
        }
        Admission::Busy { retry_after } => {
            let busy = Stateless::new(&req, src, 503, "Service Unavailable", Some(&tag))
                .header("Retry-After", retry_after)
                .finish();
            with_trying(edge, trying(&req), busy)
        }
    }
}

fn with_trying(edge: &Edge, trying: Vec<u8>, last: Vec<u8>) -> Verdict {
    if edge.cfg.sip.trying_on_redirect {
        Verdict::Replies(trying, last)
    } else {
        Verdict::Reply(last)
    }
}

/// RFC 3261 allows linear white space around a parameter's `;` and `=` (`From: <sip:a@b> ;
/// tag = 98asjd8`); the transaction layer's header parser does not. The From and To values are
/// rewritten without it (header values compare equal either way, §20), so the tag is found.
fn tidy_addresses(req: &mut Request) {
    for h in req.headers.iter_mut() {
        match h {
            Header::From(f) => {
                if let Some(v) = tidy_params(f.value()) {
                    *f = rsipstack::sip::headers::From::new(v);
                }
            }
            Header::To(t) => {
                if let Some(v) = tidy_params(t.value()) {
                    *t = rsipstack::sip::headers::To::new(v);
                }
            }
            _ => {}
        }
    }
}

/// `value` without the white space next to `;` or `=` outside quotes and `<...>`, when there
/// was any.
pub fn tidy_params(value: &str) -> Option<String> {
    let chars: Vec<char> = value.chars().collect();
    let mut out = String::with_capacity(value.len());
    let (mut quoted, mut escaped, mut angle, mut changed) = (false, false, false, false);
    for (i, &c) in chars.iter().enumerate() {
        if quoted {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = false;
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            '<' => angle = true,
            '>' => angle = false,
            ' ' | '\t' if !angle => {
                let prev = out.trim_end_matches([' ', '\t']).chars().last();
                let rest = chars.get(i + 1..).unwrap_or_default();
                let next = rest.iter().find(|c| !matches!(c, ' ' | '\t'));
                if matches!(prev, Some(';' | '=')) || matches!(next, Some(';' | '=')) {
                    changed = true;
                    continue;
                }
            }
            _ => {}
        }
        out.push(c);
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests;
