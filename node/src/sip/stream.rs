//! SIP over TCP: our own accept loop and framing. rsipstack's TCP transport reads a
//! connection with no limit on how long a half message may take, no cap on connections per
//! source, and closes the connection on any frame its parser refuses; none of that can be
//! changed from outside. So this layer accepts the connections (at most
//! `sip.tcp_max_per_source` per address and `sip.tcp_max_connections` in all), cuts messages by Content-Length (a head and body
//! must be whole within `sip.tcp_message_timeout`; a connection idle for
//! `sip.tcp_idle_timeout` is closed), and gives each message to the same
//! [`inbound::inspect`] as UDP datagrams. A message handed on travels with rsipstack's own
//! [`TcpConnection`] for this stream, whose write half rsipstack answers on; we keep its read
//! half. The connection is also listed in rsipstack's transport layer while it lasts, so a
//! phone that registered on it is rung on it (`adopt`, [`connected`]). SIP over TLS (`super::tls`) reads its decrypted sessions with the same
//! `Connection::read`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use callfleet_web::metrics::tcp::TcpCap;
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transport::tcp::TcpConnection;
use rsipstack::transport::{SipAddr, SipConnection};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::front;
use super::inbound::{self, ReplyPath, Wire};
use super::malformed::{self, raw};
use crate::node::Edge;

/// Largest SIP message taken from a stream (head and body).
pub const MAX_MESSAGE: usize = 65_535;

/// What the front of a stream's buffer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Not a whole message yet.
    Incomplete,
    /// `n` bytes of CRLF keep-alive; `pong` when it was a ping (CRLFCRLF, RFC 5626).
    KeepAlive { n: usize, pong: bool },
    /// A whole message of `n` bytes.
    Message(usize),
    /// A head that cannot be framed (bad Content-Length, too large): the connection ends
    /// after the answer, since the stream cannot be resynchronised.
    Unframeable(raw::RawDefect),
}

/// Cuts the next frame off the front of `buf` (pure).
pub fn frame(buf: &[u8]) -> Frame {
    if buf.starts_with(b"\r\n\r\n") {
        return Frame::KeepAlive { n: 4, pong: true };
    }
    if buf.starts_with(b"\r\n") && buf.get(2) != Some(&b'\r') {
        return Frame::KeepAlive { n: 2, pong: false };
    }
    if buf == b"\r\n\r" || buf == b"\r" {
        return Frame::Incomplete;
    }
    let Some(head) = raw::head_end(buf) else {
        return if buf.len() > MAX_MESSAGE {
            Frame::Unframeable(raw::RawDefect::NoEnd)
        } else {
            Frame::Incomplete
        };
    };
    let length = match content_length(buf.get(..head).unwrap_or_default()) {
        Ok(l) => l,
        Err(d) => return Frame::Unframeable(d),
    };
    let total = head.saturating_add(length);
    if total > MAX_MESSAGE {
        return Frame::Unframeable(raw::RawDefect::BadContentLength);
    }
    if buf.len() < total {
        Frame::Incomplete
    } else {
        Frame::Message(total)
    }
}

/// The Content-Length of a head (0 when absent); a doubled or malformed one cannot frame.
fn content_length(head: &[u8]) -> Result<usize, raw::RawDefect> {
    let text = String::from_utf8_lossy(head);
    let mut found = None;
    for line in text.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim_end_matches([' ', '\t']);
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
            if found.is_some() {
                return Err(raw::RawDefect::Doubled("Content-Length"));
            }
            let v = value.trim_matches([' ', '\t']);
            if v.is_empty() || v.len() > 9 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(raw::RawDefect::BadContentLength);
            }
            found = Some(v.parse().map_err(|_| raw::RawDefect::BadContentLength)?);
        }
    }
    Ok(found.unwrap_or(0))
}

/// Open connections, per source address and in all: one table for TCP and TLS, so the caps
/// hold for both transports together.
#[derive(Clone, Default)]
pub struct Open(Arc<Mutex<OpenCounts>>);

#[derive(Default)]
struct OpenCounts {
    per_source: HashMap<IpAddr, u32>,
    total: u32,
}

/// The caps a new connection must fit under.
#[derive(Clone, Copy)]
struct Caps {
    per_source: u32,
    total: u32,
}

impl Open {
    /// A place for one more connection from `ip`, or the cap it would pass (the total is
    /// checked first: when the node is full, no source is to blame).
    fn take(&self, ip: IpAddr, caps: Caps) -> Result<Slot, TcpCap> {
        let mut counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if counts.total >= caps.total {
            return Err(TcpCap::Total);
        }
        let n = counts.per_source.entry(ip).or_insert(0);
        if *n >= caps.per_source {
            return Err(TcpCap::PerSource);
        }
        *n += 1;
        counts.total += 1;
        Ok(Slot {
            table: self.clone(),
            ip,
        })
    }

    pub(super) fn total(&self) -> u32 {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).total
    }

    /// A place for a connection just accepted from `peer` under the node's caps
    /// (`sip.tcp_max_per_source`, `sip.tcp_max_connections`), counted in the metrics; `None`
    /// (refused, counted and logged) when it would pass one: drop the stream to close it.
    pub(super) fn admit(&self, edge: &Edge, peer: SocketAddr) -> Option<Slot> {
        let caps = Caps {
            per_source: edge.cfg.sip.tcp_max_per_source,
            total: edge.cfg.sip.tcp_max_connections,
        };
        match self.take(peer.ip(), caps) {
            Ok(slot) => {
                edge.metrics.tcp().set_open(i64::from(self.total()));
                Some(slot)
            }
            Err(cap) => {
                edge.metrics.tcp().refused(cap);
                let kind = match cap {
                    TcpCap::PerSource => "too many TCP connections from one address",
                    TcpCap::Total => "too many TCP connections in all (sip.tcp_max_connections)",
                };
                inbound::log_refused(kind, peer, 0);
                None
            }
        }
    }
}

/// One connection's place in [`Open`], given back on drop.
pub struct Slot {
    table: Open,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.table.0.lock().unwrap_or_else(|p| p.into_inner());
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_source.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.per_source.remove(&self.ip);
            }
        }
    }
}

/// Accepts connections on `listener` until `stop`, each under the caps of `open`.
pub async fn serve(
    edge: Edge,
    listener: TcpListener,
    stack: EndpointInnerRef,
    local: SipAddr,
    open: Open,
    stop: CancellationToken,
) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    debug!(error = %e, "TCP accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        // Refused: dropping the stream closes it at once.
        let Some(slot) = open.admit(&edge, peer) else {
            continue;
        };
        let conn = Connection {
            edge: edge.clone(),
            stack: stack.clone(),
            local: local.clone(),
            stop: stop.child_token(),
        };
        let (metrics, open) = (edge.metrics.clone(), open.clone());
        tokio::spawn(async move {
            conn.run(stream, peer).await;
            drop(slot);
            metrics.tcp().set_open(i64::from(open.total()));
        });
    }
}

/// Open TCP connections, by our advertised address and the peer's (several nodes share a
/// process in tests), with how many each pair has.
static CONNECTED: LazyLock<Mutex<HashMap<(SocketAddr, SocketAddr), u32>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Whether this node (advertising `local` for SIP) holds an open TCP connection from `peer`:
/// a phone that registered over TCP is rung on it, and only then. Without one rsipstack would
/// open a connection itself to the phone's source port, which nothing answers, and read it
/// with none of this module's limits.
pub fn connected(local: SocketAddr, peer: SocketAddr) -> bool {
    CONNECTED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains_key(&(local, peer))
}

/// One connection's entry in [`CONNECTED`] while its reader runs.
struct Listed((SocketAddr, SocketAddr));

impl Listed {
    fn new(local: SocketAddr, peer: SocketAddr) -> Self {
        *CONNECTED
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((local, peer))
            .or_insert(0) += 1;
        Listed((local, peer))
    }
}

impl Drop for Listed {
    fn drop(&mut self) {
        let mut map = CONNECTED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.0) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.0);
            }
        }
    }
}

/// Lists an accepted TCP connection in rsipstack's transport layer, so that requests to its peer
/// over TCP (ringing a phone that registered on it, RFC 3261 §18.1.1) go on it: rsipstack finds
/// a stream connection by the peer's address.
///
/// `add_connection` also starts rsipstack's own `serve_loop` on the connection, which takes the
/// read half (with none of our limits) or, finding none, retires and closes the connection at
/// once. Our reader therefore holds the read half's lock (a tokio mutex; rsipstack's field is
/// public) for the connection's life, taken before this is called: `serve_loop` waits on the
/// lock, never reads, and when our reader ends and empties the slot it returns and closes what
/// is already closing. That keeps rsipstack's own `TcpConnection` (transport TCP in Via and in
/// `conn.transport()`, writes on the phone's stream) with no second connection type: a
/// platform connection like TLS's would say TLS, and a channel connection names the peer's
/// address as its own (rsipstack keys and labels channels by one address), so its Via and
/// lookup would be wrong.
fn adopt(stack: &EndpointInnerRef, conn: &SipConnection) {
    stack.transport_layer.add_connection(conn.clone());
}

pub(super) struct Connection {
    pub(super) edge: Edge,
    pub(super) stack: EndpointInnerRef,
    pub(super) local: SipAddr,
    pub(super) stop: CancellationToken,
}

impl Connection {
    async fn run(self, stream: TcpStream, peer: SocketAddr) {
        let token = self.stop.clone();
        let tcp = match TcpConnection::from_stream(stream, self.local.clone(), Some(token.clone()))
        {
            Ok(t) => t,
            Err(e) => {
                debug!(%peer, error = %e, "cannot take a TCP connection");
                return;
            }
        };
        // The read half stays ours while this guard is held (see `adopt`): rsipstack's
        // `serve_loop` waits for the lock, and finds the read half gone once the guard drops.
        let mut reader = tcp.inner.read_half.lock().await;
        let conn = SipConnection::Tcp(tcp.clone());
        adopt(&self.stack, &conn);
        let listed = self
            .local
            .get_socketaddr()
            .ok()
            .map(|local| Listed::new(local, peer));
        if let Some(r) = reader.as_mut() {
            self.read(r, &conn, peer).await;
        }
        drop(listed);
        self.stack.transport_layer.remove_connection(&conn);
        reader.take();
        drop(reader);
        // rsipstack stops using the connection for in-dialog requests once its token is
        // cancelled.
        token.cancel();
        if let Err(e) = conn.close().await {
            debug!(%peer, error = %e, "closing a TCP connection");
        }
    }

    /// Reads one connection's messages (TCP, or TLS once decrypted) until it ends, answering
    /// on `conn`.
    pub(super) async fn read<R: AsyncRead + Unpin>(
        &self,
        mut reader: R,
        conn: &SipConnection,
        peer: SocketAddr,
    ) {
        let cfg = &self.edge.cfg.sip;
        let path = ReplyPath::Stream(conn.clone());
        let mut buf: Vec<u8> = Vec::with_capacity(4096);
        let mut chunk = vec![0u8; 16 * 1024];
        // When the message begun in `buf` must be whole.
        let mut message_deadline: Option<Instant> = None;
        loop {
            let deadline =
                message_deadline.unwrap_or_else(|| Instant::now() + cfg.tcp_idle_timeout);
            let n = tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep_until(deadline) => {
                    debug!(%peer, partial = buf.len(), "TCP connection timed out; closed");
                    return;
                }
                r = reader.read(&mut chunk) => match r {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                },
            };
            buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
            let before = buf.len();
            if !self.drain(&mut buf, &path, conn, peer).await {
                return;
            }
            let consumed = buf.len() < before;
            message_deadline = match (buf.is_empty(), message_deadline) {
                (true, _) => None,
                (false, Some(d)) if !consumed => Some(d),
                (false, _) => Some(Instant::now() + cfg.tcp_message_timeout),
            };
        }
    }

    /// Handles every whole frame at the front of `buf`; false when the connection must end.
    async fn drain(
        &self,
        buf: &mut Vec<u8>,
        path: &ReplyPath,
        conn: &SipConnection,
        peer: SocketAddr,
    ) -> bool {
        loop {
            match frame(buf) {
                Frame::Incomplete => return true,
                Frame::KeepAlive { n, pong } => {
                    buf.drain(..n.min(buf.len()));
                    if pong {
                        path.send(&self.edge, b"\r\n").await;
                    }
                }
                Frame::Unframeable(defect) => {
                    self.edge.metrics.sip_malformed();
                    inbound::log_refused("TCP message cannot be framed", peer, 400);
                    if let Some(reply) =
                        malformed::reply_for_raw(buf, peer, 400, &defect.to_string(), None)
                    {
                        path.send(&self.edge, &reply).await;
                    }
                    return false;
                }
                Frame::Message(n) => {
                    let message: Vec<u8> = buf.drain(..n.min(buf.len())).collect();
                    let transport = conn.transport();
                    let wire = Wire {
                        bytes: &message,
                        src: peer,
                        transport,
                        path,
                    };
                    let verdict = inbound::inspect(&self.edge, &self.stack, &wire);
                    front::deliver(
                        &self.edge,
                        &self.stack,
                        conn,
                        path,
                        peer,
                        transport,
                        verdict,
                    )
                    .await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
