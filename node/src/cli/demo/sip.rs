//! A SIP user agent for the demo's simulated parties, on rsipstack as the node itself is: one
//! endpoint on one address (UDP), its dialog layer, and the transactions that arrive for it.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver, TerminatedReason};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, Method, StatusCode, Uri};
use rsipstack::transaction::TransactionReceiver;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::TransportLayer;
use rsipstack::EndpointBuilder;
use tokio_util::sync::CancellationToken;

/// One simulated party's SIP stack, stopped when its token is cancelled or it is dropped.
pub struct Ua {
    pub addr: SocketAddr,
    pub endpoint: rsipstack::transaction::endpoint::EndpointInnerRef,
    pub dialogs: Arc<DialogLayer>,
    cancel: CancellationToken,
}

impl Drop for Ua {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Ua {
    /// Binds SIP over UDP on `addr` and starts serving as `callfleet-demo NAME`; returns the
    /// agent and the requests that start new transactions.
    pub async fn start(addr: SocketAddr, name: &str) -> anyhow::Result<(Ua, TransactionReceiver)> {
        Ua::start_as(addr, &format!("callfleet-demo {name}")).await
    }

    /// [`Ua::start`] with the whole `User-Agent` given (other simulators, such as the load
    /// generator of `bench/media`, name themselves).
    pub async fn start_as(
        addr: SocketAddr,
        user_agent: &str,
    ) -> anyhow::Result<(Ua, TransactionReceiver)> {
        let cancel = CancellationToken::new();
        let udp = UdpConnection::create_connection(addr, None, Some(cancel.child_token()))
            .await
            .with_context(|| format!("bind SIP on {addr}"))?;
        let transport = TransportLayer::new(cancel.child_token());
        transport.add_transport(udp.into());
        let endpoint = EndpointBuilder::new()
            .with_user_agent(user_agent)
            .with_transport_layer(transport)
            .with_cancel_token(cancel.clone())
            .build();
        let incoming = endpoint
            .incoming_transactions()
            .context("take the endpoint's incoming transactions")?;
        let dialogs = Arc::new(DialogLayer::new(endpoint.inner.clone()));
        let inner = endpoint.inner.clone();
        tokio::spawn(async move { endpoint.serve().await });
        Ok((
            Ua {
                addr,
                endpoint: inner,
                dialogs,
                cancel,
            },
            incoming,
        ))
    }

    /// `sip:USER@ADDR` on this agent's address.
    pub fn uri(&self, user: &str) -> anyhow::Result<Uri> {
        uri(&format!("sip:{user}@{}", self.addr))
    }
}

/// Serves the requests that reach a party which takes no new calls (the carrier) until
/// `stop`: in-dialog requests (the node's BYE) go to their dialog, OPTIONS get `200`, anything
/// else `481` or `405`.
pub async fn serve_dialogs(
    dialogs: Arc<DialogLayer>,
    mut incoming: TransactionReceiver,
    stop: CancellationToken,
) {
    loop {
        let tx = tokio::select! {
            tx = incoming.recv() => tx,
            _ = stop.cancelled() => None,
        };
        let Some(mut tx) = tx else { return };
        let dialogs = dialogs.clone();
        tokio::spawn(async move {
            if let Some(mut dialog) = dialogs.match_dialog(&tx) {
                if let Err(e) = dialog.handle(&mut tx).await {
                    tracing::debug!(error = %e, "in-dialog request failed");
                }
                return;
            }
            let status = match tx.original.method {
                Method::Ack => return,
                Method::Options => StatusCode::OK,
                Method::Invite | Method::Bye | Method::Cancel => {
                    StatusCode::CallTransactionDoesNotExist
                }
                _ => StatusCode::MethodNotAllowed,
            };
            if let Err(e) = tx.reply(status).await {
                tracing::debug!(error = %e, "reply failed");
            }
        });
    }
}

/// Parses a SIP URI.
pub fn uri(text: &str) -> anyhow::Result<Uri> {
    Uri::try_from(text).map_err(|e| anyhow::anyhow!("bad SIP URI {text:?}: {e}"))
}

/// The `Content-Type: application/sdp` header of an offer or answer.
pub fn sdp_type() -> Vec<Header> {
    vec![Header::ContentType("application/sdp".into())]
}

/// Who ended a dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The other party sent BYE (or CANCEL before the answer).
    Remote,
    /// We sent BYE.
    Local,
    /// Anything else: a timeout, an error, the channel closed.
    Other,
}

impl End {
    /// How the dialog's termination reads from the side that is the UAS (`uas`) or the UAC.
    pub fn of(reason: &TerminatedReason, uas: bool) -> End {
        match (reason, uas) {
            (TerminatedReason::UacBye | TerminatedReason::UacCancel, true) => End::Remote,
            (TerminatedReason::UasBye, true) => End::Local,
            (TerminatedReason::UasBye, false) => End::Remote,
            (TerminatedReason::UacBye | TerminatedReason::UacCancel, false) => End::Local,
            _ => End::Other,
        }
    }
}

/// Waits for the dialog's next state that matters: its end (answering in-dialog OPTIONS and
/// INFO on the way, and any re-INVITE with 488, which no node sends to a phone or carrier).
pub async fn next_end(states: &mut DialogStateReceiver, uas: bool) -> End {
    while let Some(st) = states.recv().await {
        match st {
            DialogState::Terminated(_, reason) => return End::of(&reason, uas),
            DialogState::Info(_, _, handle) | DialogState::Options(_, _, handle) => {
                let _ = handle.reply(StatusCode::OK).await;
            }
            DialogState::Updated(_, _, handle) => {
                let _ = handle.reply(StatusCode::NotAcceptableHere).await;
            }
            _ => {}
        }
    }
    End::Other
}

/// Hangs up an answered dialog (BYE), bounded in time: the stack retransmits, we do not wait
/// past a few seconds for the far end.
pub async fn hang_up(dialog: &InviteDialog) {
    let bye = tokio::time::timeout(std::time::Duration::from_secs(5), dialog.bye()).await;
    if let Ok(Err(e)) = bye {
        tracing::debug!(error = %e, "BYE failed");
    }
}
