//! HTTPS on `http.listen`: TCP connections are accepted here, and each completes its TLS
//! handshake in a task of its own (at most [`HANDSHAKES`] at once, each within
//! [`HANDSHAKE_LIMIT`]), so a slow or silent client never holds up the others; finished
//! sessions are handed to `axum::serve` through [`HttpsListener`]. A connection whose first
//! byte is not a TLS handshake (plain HTTP to the HTTPS port) gets a fixed plain-text `400`
//! naming the scheme and is closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::HANDSHAKE_RECORD;

/// Handshakes in progress at once; connections beyond are closed at once.
pub const HANDSHAKES: usize = 256;
/// A connection must finish its handshake (or send its plain request's first byte) within this.
pub const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// What a plain-HTTP request to the HTTPS port gets.
pub const PLAIN_REFUSAL: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Length: 43\r\n\
Connection: close\r\n\
\r\n\
This port speaks HTTPS only: use https://.\n";

/// What a connection's first byte says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// A TLS handshake record.
    Tls,
    /// Anything else: plain HTTP (or noise).
    Plain,
}

/// Classifies a connection by its first byte (pure).
pub fn opening(first: u8) -> Opening {
    if first == HANDSHAKE_RECORD {
        Opening::Tls
    } else {
        Opening::Plain
    }
}

/// Sessions that finished their handshake, for `axum::serve`.
pub struct HttpsListener {
    sessions: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl HttpsListener {
    /// Starts accepting on `tcp` until `stop`.
    pub fn start(
        tcp: TcpListener,
        config: Arc<ServerConfig>,
        stop: CancellationToken,
    ) -> std::io::Result<HttpsListener> {
        let local = tcp.local_addr()?;
        let (tx, sessions) = mpsc::channel(64);
        tokio::spawn(accept_loop(tcp, TlsAcceptor::from(config), tx, stop));
        Ok(HttpsListener { sessions, local })
    }
}

impl axum::serve::Listener for HttpsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.sessions.recv().await {
            Some(session) => session,
            // The accept loop stopped (the node is stopping): no more connections.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    sessions: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
    stop: CancellationToken,
) {
    let handshakes = Arc::new(Semaphore::new(HANDSHAKES));
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            r = tcp.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    debug!(error = %e, "HTTPS accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = handshakes.clone().try_acquire_owned() else {
            debug!(%peer, "too many TLS handshakes in progress; connection closed");
            continue;
        };
        let acceptor = acceptor.clone();
        let sessions = sessions.clone();
        tokio::spawn(async move {
            let session = tokio::time::timeout(HANDSHAKE_LIMIT, handshake(stream, peer, acceptor));
            if let Ok(Some(session)) = session.await {
                drop(permit);
                if sessions.send((session, peer)).await.is_err() {
                    debug!(%peer, "HTTPS server stopped; connection closed");
                }
            }
        });
    }
}

/// The session of one connection, or `None` (plain HTTP answered, or a failed handshake).
async fn handshake(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
) -> Option<TlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    match stream.peek(&mut first).await {
        Ok(1) => {}
        _ => return None,
    }
    if opening(first[0]) == Opening::Plain {
        let mut stream = stream;
        if let Err(e) = stream.write_all(PLAIN_REFUSAL).await {
            debug!(%peer, error = %e, "cannot answer plain HTTP on the HTTPS port");
        }
        if let Err(e) = stream.shutdown().await {
            debug!(%peer, error = %e, "closing a plain HTTP connection");
        }
        return None;
    }
    match acceptor.accept(stream).await {
        Ok(session) => Some(session),
        Err(e) => {
            debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_byte_tells_tls_from_plain() {
        let cases = [
            (0x16, Opening::Tls),
            (b'G', Opening::Plain),
            (b'P', Opening::Plain),
            (0x15, Opening::Plain),
            (0x00, Opening::Plain),
        ];
        for (byte, want) in cases {
            assert_eq!(opening(byte), want, "{byte:#x}");
        }
    }

    #[test]
    fn the_refusal_is_well_formed() {
        let text = std::str::from_utf8(PLAIN_REFUSAL).expect("ASCII");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|v| v.parse().ok())
            .expect("Content-Length");
        assert_eq!(body.len(), length);
    }
}
