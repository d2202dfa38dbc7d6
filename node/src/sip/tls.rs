//! SIP over TLS on `sip.tls_listen` (RFC 3261 §26.2, RFC 5630's `transport=tls`). Each
//! connection is accepted here (counted against `sip.tcp_max_per_source` like TCP), its TLS
//! handshake done with rustls within `sip.tcp_message_timeout`, and its decrypted bytes read
//! by the same framing and checks as TCP (`stream::Connection::read`, then
//! [`super::inbound::inspect`]): nothing a phone or carrier sends over TLS skips a check that
//! plain SIP passes.
//!
//! rsipstack answers on the connection a request came on. Its own TLS transport would read the
//! stream itself (with none of our limits), so the connection is handed to it as a
//! [`PlatformTlsConnection`] (transport `TLS`, reliable, stream) whose writes go to this
//! session's write half: rsipstack creates those only through a process-wide connector
//! ([`rsipstack::platform::tls`]), so `Adopt` is that connector, and gives out only sessions
//! this module accepted, each under a one-time ticket. It dials nothing: the node never opens
//! SIP-over-TLS connections itself. The connection is also listed in rsipstack's transport
//! layer while it lasts, so a phone that registered on it is rung on it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Once};

use rsipstack::platform::tls::{TlsClientConfig, TlsConnector, TlsStream as SeamStream};
use rsipstack::sip::Transport;
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transport::{PlatformTlsConnection, SipAddr, SipConnection};
use tokio::io::{AsyncWriteExt as _, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::inbound;
use super::stream::{Connection, Open};
use crate::node::Edge;

/// Accepts SIP-over-TLS connections on `listener` until `stop`, under the same connection caps
/// as TCP (`open` is shared with it). `local` is the address written in Via and Contact for
/// this transport.
pub async fn serve(
    edge: Edge,
    listener: TcpListener,
    acceptor: TlsAcceptor,
    stack: EndpointInnerRef,
    local: SocketAddr,
    open: Open,
    stop: CancellationToken,
) {
    install_connector();
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    debug!(error = %e, "TLS accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let Some(slot) = open.admit(&edge, peer) else {
            continue;
        };
        let conn = Connection {
            edge: edge.clone(),
            stack: stack.clone(),
            local: SipAddr {
                r#type: Some(Transport::Tls),
                addr: local.into(),
            },
            stop: stop.child_token(),
        };
        let acceptor = acceptor.clone();
        let (metrics, open) = (edge.metrics.clone(), open.clone());
        tokio::spawn(async move {
            run(conn, acceptor, stream, peer, local).await;
            drop(slot);
            metrics.tcp().set_open(i64::from(open.total()));
        });
    }
}

/// One connection: the handshake, then its messages until it ends.
async fn run(
    conn: Connection,
    acceptor: TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
) {
    let limit = conn.edge.cfg.sip.tcp_message_timeout;
    let session = match tokio::time::timeout(limit, acceptor.accept(stream)).await {
        Ok(Ok(session)) => session,
        Ok(Err(e)) => {
            conn.edge.metrics.sip_malformed();
            inbound::log_refused(
                "failed TLS handshake (plain text on the TLS port?)",
                peer,
                0,
            );
            debug!(%peer, error = %e, "SIP TLS handshake failed");
            return;
        }
        Err(_) => {
            conn.edge.metrics.sip_malformed();
            inbound::log_refused("TLS handshake not finished in time", peer, 0);
            return;
        }
    };
    let (reader, writer) = tokio::io::split(session);
    let token = conn.stop.clone();
    let sip = match adopt(writer, peer, local, token.clone()).await {
        Ok(c) => SipConnection::TlsPlatform(c),
        Err(e) => {
            debug!(%peer, error = %e, "cannot hand a TLS connection to the SIP stack");
            return;
        }
    };
    // Requests to this peer over TLS (ringing a phone that registered on this connection) go
    // on it: rsipstack finds it by the peer's address.
    conn.stack.transport_layer.add_connection(sip.clone());
    conn.read(reader, &sip, peer).await;
    conn.stack.transport_layer.remove_connection(&sip);
    // rsipstack stops using the connection for in-dialog requests once its token is cancelled.
    token.cancel();
    if let Err(e) = sip.close().await {
        debug!(%peer, error = %e, "closing a TLS connection");
    }
}

/// Our TLS address, when a phone whose binding says `transport` is to be rung over TLS: it
/// registered over TLS (with this node, whose connection from it carries the INVITE) and this
/// node serves SIP over TLS.
pub fn ring_over_tls(cfg: &crate::config::Config, transport: &str) -> Option<SocketAddr> {
    if transport.eq_ignore_ascii_case("tls") {
        cfg.sip_tls_advertise()
    } else {
        None
    }
}

type Writer = WriteHalf<TlsStream<TcpStream>>;

/// Sessions accepted here, waiting for rsipstack to take them, by ticket.
static WAITING: LazyLock<Mutex<HashMap<String, Box<dyn SeamStream>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));
static TICKETS: AtomicU64 = AtomicU64::new(0);
static INSTALL: Once = Once::new();

fn install_connector() {
    INSTALL.call_once(|| rsipstack::platform::tls::set_client_connector(Arc::new(Adopt)));
}

/// The SIP stack's handle on an accepted session: writes go to its write half.
async fn adopt(
    writer: Writer,
    peer: SocketAddr,
    local: SocketAddr,
    token: CancellationToken,
) -> rsipstack::Result<PlatformTlsConnection> {
    // Unique and unguessable: nothing else can name this session to the connector.
    let ticket = format!(
        "accepted-{}-{:032x}",
        TICKETS.fetch_add(1, Ordering::Relaxed),
        rand::random::<u128>()
    );
    let stream = Accepted {
        writer: tokio::sync::Mutex::new(writer),
        local,
    };
    WAITING
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(ticket.clone(), Box::new(stream));
    let target = SipAddr {
        r#type: Some(Transport::Tls),
        addr: peer.into(),
    };
    let taken = PlatformTlsConnection::connect(&target, Some(&ticket), Some(token)).await;
    // Taken by `Adopt::connect`, unless it failed before.
    WAITING
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&ticket);
    taken
}

/// rsipstack's TLS connector: hands over sessions accepted here, and dials nothing.
struct Adopt;

#[async_trait::async_trait]
impl TlsConnector for Adopt {
    async fn connect(
        &self,
        config: &TlsClientConfig,
        addr: SocketAddr,
    ) -> rsipstack::Result<Box<dyn SeamStream>> {
        let waiting = WAITING
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&config.server_name);
        waiting.ok_or_else(|| {
            rsipstack::Error::Error(format!(
                "this node does not open SIP-over-TLS connections (to {addr}): phones and \
                 carriers using TLS connect to it"
            ))
        })
    }
}

/// The write side of an accepted session, as rsipstack's [`SeamStream`]. Reading is ours.
struct Accepted {
    writer: tokio::sync::Mutex<Writer>,
    local: SocketAddr,
}

#[async_trait::async_trait]
impl SeamStream for Accepted {
    async fn recv(&self) -> rsipstack::Result<Vec<u8>> {
        // The connection's reader is `Connection::read`; rsipstack never serves this one.
        std::future::pending().await
    }

    async fn send_all(&self, data: Vec<u8>) -> rsipstack::Result<()> {
        let mut w = self.writer.lock().await;
        w.write_all(&data).await?;
        w.flush().await?;
        Ok(())
    }

    async fn shutdown(&self) -> rsipstack::Result<()> {
        self.writer.lock().await.shutdown().await?;
        Ok(())
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.local)
    }
}
