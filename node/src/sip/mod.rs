//! SIP for the node: UDP (through the [`front`]) and TCP on `sip.listen`, rsipstack's
//! transaction and dialog layers behind our own types, the admission decision, and calls.
//!
//! Layout: `front` (UDP datagrams: parse, 400, stateless 100/302/403/503), `reply` (stateless
//! responses), `malformed` (bad-input checks), `admission` (allowlist + balancer), `uas`
//! (transaction dispatch), `phone` (a phone's INVITE authenticated with `407` digest), `call`
//! (one answered call).

pub mod admission;
pub mod call;
pub mod ctx;
pub mod front;
pub mod malformed;
pub mod phone;
pub mod reply;
pub mod uas;

use std::net::SocketAddr;
use std::sync::Arc;

use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::transport::tcp_listener::TcpListenerConnection;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::TransportLayer;
use rsipstack::EndpointBuilder;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::node::Node;

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
}

/// Datagrams queued between the front and the transaction layer.
const FRONT_QUEUE: usize = 16_384;
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

/// Binds UDP and TCP on `sip.listen` and starts the front, the endpoint and the dispatcher.
pub async fn start(node: Node) -> Result<SipHandle, SipError> {
    let listen = node.cfg.sip.listen;
    let advertise = node.cfg.sip_advertise();
    let cancel = CancellationToken::new();
    let udp = bind_udp(listen)?;
    // rsipstack binds TCP itself later and only logs a failure; check the port now.
    drop(
        std::net::TcpListener::bind(listen).map_err(|source| SipError::Bind {
            transport: "TCP",
            addr: listen,
            source,
        })?,
    );

    let (to_stack, from_front) = mpsc::channel(FRONT_QUEUE);
    let front_socket = front::FrontSocket::new(udp.clone(), from_front, node.clone());
    let external = (advertise != listen).then_some(advertise);
    let udp_conn =
        UdpConnection::from_socket(Arc::new(front_socket), external, Some(cancel.child_token()))
            .await
            .map_err(Box::new)?;
    let transport = TransportLayer::new(cancel.child_token());
    transport.add_transport(udp_conn.into());
    transport.add_transport(
        TcpListenerConnection::new(listen, external)
            .await
            .map_err(Box::new)?
            .into(),
    );

    let endpoint = EndpointBuilder::new()
        .with_user_agent(concat!("callfleet/", env!("CARGO_PKG_VERSION")))
        .with_transport_layer(transport)
        .with_cancel_token(cancel.clone())
        .build();
    let incoming = endpoint.incoming_transactions().map_err(Box::new)?;
    let dialogs = Arc::new(DialogLayer::new(endpoint.inner.clone()));
    // Agent legs are dialled through the same dialog layer.
    let _ = node.queue.dialogs.set(dialogs.clone());
    tokio::spawn(async move {
        endpoint.serve().await;
    });
    tokio::spawn(front::run(node.clone(), udp, to_stack, cancel.clone()));
    tokio::spawn(uas::accept_loop(node, dialogs, incoming));
    Ok(SipHandle { cancel })
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
