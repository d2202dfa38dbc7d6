//! Who a new INVITE is from, before it is answered: a phone registered through this node (the
//! address its REGISTER came from) must prove it with digest credentials (`407`, then
//! `Proxy-Authorization`, see `registrar::invite`); the device that authenticates is noted on
//! the call, and the dialplan's hot-desk codes act on that device only. Any other INVITE the
//! front admitted is a carrier's call with no device.

use std::net::SocketAddr;

use rsipstack::transaction::transaction::Transaction;
use tracing::debug;

use crate::calls::CallUid;
use crate::node::CallKit;
use crate::now_ms;
use crate::registrar::{self, InviteAuth};

/// The caller of an INVITE that goes on to be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The INVITE's source address.
    pub source: Option<SocketAddr>,
    /// The phone that authenticated, for a phone's call.
    pub device: Option<String>,
}

/// Identifies the caller of the new INVITE `tx` (call `uid`, `call_id`, claimed from the call
/// table);
/// `None` when the INVITE was answered here (challenged or refused) and is no call: it is then
/// out of the call table, and the phone's next INVITE (with credentials) is a new admission.
pub async fn identify(
    kit: &CallKit,
    tx: &mut Transaction,
    uid: CallUid,
    call_id: &str,
) -> Option<Caller> {
    let source = registrar::source_of(tx).map(|s| s.addr);
    let Some(src) = source else {
        return Some(Caller {
            source,
            device: None,
        });
    };
    if kit.registrar.phone_at(src, now_ms()).is_none() {
        return Some(Caller {
            source,
            device: None,
        });
    }
    let reply = match kit
        .registrar
        .authenticate_invite(&tx.original, src, now_ms())
        .await
    {
        InviteAuth::Device(device) => {
            return Some(Caller {
                source,
                device: Some(device),
            })
        }
        InviteAuth::Reply(reply) => reply,
    };
    let legs = &kit.legs;
    if legs.calls.remove(uid).is_some() {
        legs.metrics
            .set_calls_active(i64::from(legs.calls.active()));
    }
    if let Err(e) = tx.reply_with(reply.status, reply.headers, None).await {
        debug!(call_id, error = %e, "cannot answer a phone's INVITE");
        return None;
    }
    // The transaction absorbs the ACK (and, over UDP, resends the answer until it comes).
    while tx.receive().await.is_some() {}
    None
}
