//! SIP for the node: UDP (through the [`front`]) and TCP on `sip.listen`, TLS on
//! `sip.tls_listen` ([`tls`]), rsipstack's transaction and dialog layers behind our own types,
//! the admission decision, and calls.
//!
//! Layout: `front` (the UDP socket), `stream` (TCP accept and framing), `tls` (TLS accept,
//! then the same framing), `inbound` (the one path of every message from any of them: checks,
//! the one parse, stateless 100/302/403/503/4xx, hand-on to rsipstack), `reply` (stateless responses), `malformed` (bad-input checks),
//! `admission` (allowlist + balancer), `uas` (transaction dispatch), `phone` (a phone's INVITE
//! authenticated with `407` digest), `call` (one answered call), and the watchdog that answers
//! admitted INVITEs nobody took.

pub mod admission;
pub mod call;
pub mod ctx;
pub mod front;
pub mod inbound;
pub mod loglimit;
pub mod malformed;
pub mod phone;
pub mod reply;
pub mod stream;
pub mod tls;
pub mod uas;

use std::net::SocketAddr;
use std::sync::Arc;

use std::time::Duration;

use callfleet_web::Outcome;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::Transport;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipAddr, SipConnection, TransportLayer};
use rsipstack::EndpointBuilder;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::node::Edge;

/// Why SIP could not start.
#[derive(Debug, thiserror::Error)]
pub enum SipError {
    #[error("cannot bind SIP {transport} on {addr}: {source}")]
    Bind {
        transport: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("SIP stack: {0}")]
    Stack(#[from] Box<rsipstack::Error>),
    #[error("SIP over TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

/// How long an admitted INVITE may wait for its handler before the watchdog answers it.
const CLAIM_DEADLINE: Duration = Duration::from_secs(5);
/// Kernel receive buffer asked for the SIP UDP socket (bursts of carrier INVITEs).
const UDP_RCVBUF: usize = 8 << 20;

/// The running SIP service.
pub struct SipHandle {
    cancel: CancellationToken,
}

impl SipHandle {
    pub fn shutdown(&self) {
        self.cancel.cancel();
    }
}

/// Binds UDP and TCP on `sip.listen` and starts the front, the TCP layer, the endpoint, the
/// dispatcher and the watchdog. They read the SIP edge's handle ([`Edge`]); each admitted
/// call is started by its `starter` ([`crate::node::CallStarter`], a call's kit the edge does
/// not read), which is also given the dialog layer agent legs are dialled through.
pub async fn start(edge: Edge) -> Result<SipHandle, SipError> {
    let listen = edge.cfg.sip.listen;
    let advertise = edge.cfg.sip_advertise();
    let cancel = CancellationToken::new();
    let udp = bind_udp(listen)?;
    let tcp = bind_tcp(listen)?;
    let tls = tls_listener(&edge)?;

    let front_socket = front::FrontSocket::new(udp.clone(), edge.clone());
    let external = (advertise != listen).then_some(advertise);
    let udp_conn =
        UdpConnection::from_socket(Arc::new(front_socket), external, Some(cancel.child_token()))
            .await
            .map_err(Box::new)?;
    let transport = TransportLayer::new(cancel.child_token());
    transport.add_transport(udp_conn.clone().into());

    let endpoint = EndpointBuilder::new()
        .with_user_agent(concat!("callfleet/", env!("CARGO_PKG_VERSION")))
        .with_transport_layer(transport)
        .with_cancel_token(cancel.clone())
        .with_inspector(Box::new(crate::trace::inspector::StreamSends(
            edge.trace.clone(),
        )))
        .build();
    let incoming = endpoint.incoming_transactions().map_err(Box::new)?;
    let stack = endpoint.inner.clone();
    let dialogs = Arc::new(DialogLayer::new(stack.clone()));
    // Agent legs are dialled through the same dialog layer.
    if !edge.starter.set_dialogs(dialogs.clone()) {
        warn!("SIP started twice in one node: agent legs keep the first dialog layer");
    }
    tokio::spawn(async move {
        endpoint.serve().await;
    });
    let udp_sip: SipConnection = udp_conn.into();
    tokio::spawn(front::run(
        edge.clone(),
        udp,
        stack.clone(),
        udp_sip,
        cancel.clone(),
    ));
    let tcp_local = SipAddr {
        r#type: Some(Transport::Tcp),
        addr: advertise.into(),
    };
    // One table of open connections for TCP and TLS: the caps hold for both together.
    let open = stream::Open::default();
    tokio::spawn(stream::serve(
        edge.clone(),
        tcp,
        stack.clone(),
        tcp_local,
        open.clone(),
        cancel.clone(),
    ));
    if let Some((listener, acceptor, local)) = tls {
        tokio::spawn(tls::serve(
            edge.clone(),
            listener,
            acceptor,
            stack,
            local,
            open,
            cancel.clone(),
        ));
    }
    tokio::spawn(watchdog(edge.clone(), cancel.clone()));
    tokio::spawn(uas::accept_loop(edge, dialogs, incoming));
    Ok(SipHandle { cancel })
}

/// Every admitted INVITE gets a final answer: one whose handler has not taken it within
/// [`CLAIM_DEADLINE`] is answered `500` statelessly, its slot freed and its CDR written.
async fn watchdog(edge: Edge, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let expired = edge.calls.expire_pending(CLAIM_DEADLINE);
        if expired.is_empty() {
            continue;
        }
        warn!(
            count = expired.len(),
            "admitted INVITEs no handler took; answered 500"
        );
        for (entry, give_up) in expired {
            give_up();
            edge.metrics.call_outcome(Outcome::Failed);
            call::record_end(
                (&edge.cfg, &edge.trace, &edge.recorder),
                entry,
                call::Ended::new(
                    callfleet_store::HangupCause::NotTaken,
                    callfleet_store::HangupSide::Node,
                ),
            );
        }
        edge.metrics
            .set_calls_active(i64::from(edge.calls.active()));
    }
}

/// The SIP-over-TLS listener, acceptor and advertised address, when `sip.tls_cert` is set.
type TlsListener = (
    tokio::net::TcpListener,
    tokio_rustls::TlsAcceptor,
    SocketAddr,
);

fn tls_listener(edge: &Edge) -> Result<Option<TlsListener>, SipError> {
    let cfg = &edge.cfg;
    let (Some(listen), Some(local), Some(cert), Some(key)) = (
        cfg.sip_tls_listen(),
        cfg.sip_tls_advertise(),
        cfg.sip.tls_cert.as_deref(),
        cfg.sip.tls_key.as_deref(),
    ) else {
        return Ok(None);
    };
    let pair = crate::tls::KeyPair {
        cert_key: "sip.tls_cert",
        cert,
        key_key: "sip.tls_key",
        key,
    };
    let config = crate::tls::server_config(&pair, &[])?;
    let listener = bind_tcp_as(listen, "TLS")?;
    Ok(Some((listener, config.into(), local)))
}

fn bind_tcp(listen: SocketAddr) -> Result<tokio::net::TcpListener, SipError> {
    bind_tcp_as(listen, "TCP")
}

fn bind_tcp_as(
    listen: SocketAddr,
    transport: &'static str,
) -> Result<tokio::net::TcpListener, SipError> {
    let err = |source| SipError::Bind {
        transport,
        addr: listen,
        source,
    };
    let std_listener = crate::tcp::listen(listen).map_err(err)?;
    tokio::net::TcpListener::from_std(std_listener).map_err(err)
}

fn bind_udp(listen: SocketAddr) -> Result<Arc<tokio::net::UdpSocket>, SipError> {
    let err = |source| SipError::Bind {
        transport: "UDP",
        addr: listen,
        source,
    };
    let domain = socket2::Domain::for_address(listen);
    let sock = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))
        .map_err(err)?;
    if let Err(e) = sock.set_recv_buffer_size(UDP_RCVBUF) {
        warn!(error = %e, "cannot enlarge the SIP UDP receive buffer");
    }
    sock.set_nonblocking(true).map_err(err)?;
    sock.bind(&listen.into()).map_err(err)?;
    let std_sock: std::net::UdpSocket = sock.into();
    Ok(Arc::new(
        tokio::net::UdpSocket::from_std(std_sock).map_err(err)?,
    ))
}
