//! The user-agent server: takes every transaction rsipstack creates and dispatches it:
//! in-dialog requests to their dialog, new INVITEs to a call, REGISTERs to the registrar,
//! OPTIONS answered, the rest refused with the right status.

use std::sync::Arc;

use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::{Header, Method, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transaction::TransactionReceiver;
use tracing::debug;

use super::front;
use crate::node::Edge;

/// Methods we answer (Allow header).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER";

/// Takes transactions until the endpoint stops.
pub async fn accept_loop(edge: Edge, dialogs: Arc<DialogLayer>, mut incoming: TransactionReceiver) {
    while let Some(tx) = incoming.recv().await {
        let edge = edge.clone();
        let dialogs = dialogs.clone();
        tokio::spawn(async move {
            let method = tx.original.method;
            if let Err(e) = dispatch(edge, dialogs, tx).await {
                debug!(%method, error = %e, "transaction ended with an error");
            }
        });
    }
}

async fn dispatch(
    edge: Edge,
    dialogs: Arc<DialogLayer>,
    mut tx: Transaction,
) -> rsipstack::Result<()> {
    if let Some(mut dialog) = dialogs.match_dialog(&tx) {
        return dialog.handle(&mut tx).await;
    }
    let in_dialog = front::has_to_tag(&tx.original);
    match tx.original.method {
        Method::Invite if in_dialog => tx.reply(StatusCode::CallTransactionDoesNotExist).await,
        Method::Invite => {
            // Admitted by the front (`inbound`), UDP or TCP alike.
            edge.starter.run(dialogs, tx).await;
            Ok(())
        }
        Method::Options => {
            let headers = vec![
                Header::Allow(ALLOW.into()),
                Header::Accept(rsipstack::sip::Accept::new("application/sdp")),
            ];
            tx.reply_with(StatusCode::OK, headers, None).await
        }
        Method::Register => edge.registrar.answer(&mut tx).await,
        Method::Ack => Ok(()),
        // In a dialog we do not have (unknown Call-ID or tags): never another call's.
        Method::Refer | Method::Notify | Method::Message if in_dialog => {
            tx.reply(StatusCode::CallTransactionDoesNotExist).await
        }
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
