//! The user-agent server: takes every transaction rsipstack creates and dispatches it:
//! in-dialog requests to their dialog, new INVITEs to a call, REGISTERs to the registrar,
//! OPTIONS answered, the rest refused with the right status.

use std::net::SocketAddr;
use std::sync::Arc;

use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::{Header, Method, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transaction::TransactionReceiver;
use tracing::debug;

use super::admission::{self, Admission};
use super::{call, front};
use crate::node::Node;

/// Methods we answer (Allow header).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER";

/// Takes transactions until the endpoint stops.
pub async fn accept_loop(node: Node, dialogs: Arc<DialogLayer>, mut incoming: TransactionReceiver) {
    while let Some(tx) = incoming.recv().await {
        let node = node.clone();
        let dialogs = dialogs.clone();
        tokio::spawn(async move {
            let method = tx.original.method;
            if let Err(e) = dispatch(node, dialogs, tx).await {
                debug!(%method, error = %e, "transaction ended with an error");
            }
        });
    }
}

async fn dispatch(
    node: Node,
    dialogs: Arc<DialogLayer>,
    mut tx: Transaction,
) -> rsipstack::Result<()> {
    let reliable = tx.connection.as_ref().is_some_and(|c| c.is_reliable());
    if reliable {
        // The UDP front counted datagrams already; stream transports are counted here.
        node.metrics
            .sip_request(tx.original.method.to_string().as_str());
    }
    if let Some(mut dialog) = dialogs.match_dialog(&tx) {
        return dialog.handle(&mut tx).await;
    }
    let in_dialog = front::has_to_tag(&tx.original);
    match tx.original.method {
        Method::Invite if in_dialog => tx.reply(StatusCode::CallTransactionDoesNotExist).await,
        Method::Invite => {
            if reliable && !admit_stream_invite(&node, &mut tx).await? {
                return Ok(());
            }
            call::run(node, dialogs, tx).await;
            Ok(())
        }
        Method::Options => {
            let headers = vec![
                Header::Allow(ALLOW.into()),
                Header::Accept(rsipstack::sip::Accept::new("application/sdp")),
            ];
            tx.reply_with(StatusCode::OK, headers, None).await
        }
        Method::Register => node.registrar.answer(&mut tx).await,
        Method::Ack => Ok(()),
        Method::Bye | Method::Info | Method::Update | Method::PRack => {
            tx.reply(StatusCode::CallTransactionDoesNotExist).await
        }
        _ => {
            tx.reply_with(
                StatusCode::MethodNotAllowed,
                vec![Header::Allow(ALLOW.into())],
                None,
            )
            .await
        }
    }
}

/// Admission for an INVITE that came over TCP (the UDP front admits its own); answers it
/// itself unless the call stays here.
async fn admit_stream_invite(node: &Node, tx: &mut Transaction) -> rsipstack::Result<bool> {
    let call_id = front::call_id(&tx.original).unwrap_or("").to_string();
    if node.calls.contains(&call_id) {
        return Ok(true);
    }
    let src: Option<SocketAddr> = tx
        .connection
        .as_ref()
        .and_then(|c| c.get_remote_addr())
        .and_then(|a| a.get_socketaddr().ok());
    let Some(src) = src else {
        tx.reply(StatusCode::Forbidden).await?;
        return Ok(false);
    };
    tx.send_trying().await.ok();
    match admission::admit(node, &tx.original, src) {
        Admission::Handle => Ok(true),
        Admission::Drop => Ok(false),
        Admission::Forbidden => tx.reply(StatusCode::Forbidden).await.map(|_| false),
        Admission::Redirect { contact } => {
            let contact = Header::Contact(rsipstack::sip::Contact::new(format!("<{contact}>")));
            tx.reply_with(StatusCode::MovedTemporarily, vec![contact], None)
                .await
                .map(|_| false)
        }
        Admission::Busy { retry_after } => {
            let retry =
                Header::RetryAfter(rsipstack::sip::RetryAfter::new(retry_after.to_string()));
            tx.reply_with(StatusCode::ServiceUnavailable, vec![retry], None)
                .await
                .map(|_| false)
        }
    }
}
