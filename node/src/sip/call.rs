//! One call this node answers, from INVITE to CDR: SDP offer checked, RTP port bound, the
//! INVITE transaction run by rsipstack's server dialog (100, CANCEL → 487, ACK), optional
//! ringing, `200 OK` with our SDP, music on hold until a BYE from the caller, `call.max_duration`
//! (then our BYE) or node shutdown. Re-INVITEs (hold/unhold) are answered and steer the media.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use callfleet_store::Cdr;
use callfleet_web::Outcome;
use rsipstack::dialog::dialog::{DialogState, TerminatedReason};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, StatusCode, Uri};
use rsipstack::transaction::transaction::Transaction;
use tokio::sync::mpsc::UnboundedReceiver;
use tracing::{debug, warn};

use super::admission;
use super::ctx::CallCtx;
use super::front;
use crate::calls::CallState;
use crate::dialplan;
use crate::media::sdp::{self, Offer};
use crate::media::session::{Mode, Session, Target};
use crate::node::Node;
use crate::now_ms;
use crate::records::Record;

/// How a call ended, for the CDR and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    pub cause: &'static str,
    pub side: &'static str,
    pub status: u16,
}

impl Ended {
    pub const fn new(cause: &'static str, side: &'static str, status: u16) -> Ended {
        Ended {
            cause,
            side,
            status,
        }
    }
}

/// Runs the call to its end and writes its CDR.
pub async fn run(node: Node, dialogs: Arc<DialogLayer>, mut tx: Transaction) {
    let call_id = front::call_id(&tx.original).unwrap_or("").to_string();
    let Some(caller) = super::phone::identify(&node, &mut tx, &call_id).await else {
        return; // a phone's INVITE challenged (407) or refused: not a call
    };
    if !node.calls.contains(&call_id) {
        // Admitted by the front but swept meanwhile, or admitted over TCP just now.
        let from = admission::header_uri(&tx.original, |h| matches!(h, Header::From(_)));
        let to = admission::header_uri(&tx.original, |h| matches!(h, Header::To(_)));
        node.calls.admit(
            &call_id,
            from,
            to,
            admission::marker(&tx.original.uri),
            now_ms(),
        );
    }
    node.calls
        .set_caller(&call_id, caller.source, caller.device);
    node.metrics
        .set_calls_active(i64::from(node.calls.active()));
    let ended = answer(&node, &dialogs, tx, &call_id).await;
    finish(&node, &call_id, ended);
}

async fn answer(node: &Node, dialogs: &DialogLayer, mut tx: Transaction, call_id: &str) -> Ended {
    let offer = match sdp::parse_offer(tx.original.body()) {
        Ok(o) => o,
        Err(e) => {
            debug!(call_id, error = %e, "cannot answer this SDP offer");
            let _ = tx.reply(StatusCode::NotAcceptableHere).await;
            return Ended::new("no_common_media", "node", 488);
        }
    };
    let (socket, local) = match node.ports.bind().await {
        Ok(x) => x,
        Err(e) => {
            warn!(call_id, error = %e, "no RTP port");
            let _ = tx.reply(StatusCode::ServiceUnavailable).await;
            return Ended::new("no_rtp_port", "node", 503);
        }
    };
    let (state_tx, mut states) = dialogs.new_dialog_state_channel();
    let contact =
        Uri::try_from(format!("sip:callfleet@{}", node.cfg.sip_advertise()).as_str()).ok();
    let dialog = match dialogs.get_or_create_server_invite(&tx, state_tx, None, contact) {
        Ok(d) => d,
        Err(e) => {
            warn!(call_id, error = %e, "cannot create the dialog");
            let _ = tx.reply(StatusCode::ServerInternalError).await;
            return Ended::new("error", "node", 500);
        }
    };
    let id = dialog.id();
    let mut runner = dialog.clone();
    // The INVITE transaction: 100 Trying, CANCEL → 487, ACK of our 200.
    tokio::spawn(async move {
        if let Err(e) = runner.handle(&mut tx).await {
            debug!(error = %e, "INVITE transaction ended with an error");
        }
    });
    let ended = converse(node, &dialog, &mut states, call_id, offer, socket, local).await;
    dialogs.remove_dialog(&id);
    ended
}

async fn converse(
    node: &Node,
    dialog: &InviteDialog,
    states: &mut UnboundedReceiver<DialogState>,
    call_id: &str,
    offer: Offer,
    socket: tokio::net::UdpSocket,
    local: std::net::SocketAddr,
) -> Ended {
    if let Some(entry) = node.calls.set_state(call_id, CallState::Ringing, now_ms()) {
        node.recorder
            .send(Record::Live(entry.to_live(&node.cfg.node.name)));
    }
    let delay = node.cfg.call.answer_delay;
    if !delay.is_zero() {
        let _ = dialog.ringing(None, None);
        let ring = tokio::time::sleep(delay);
        tokio::pin!(ring);
        loop {
            tokio::select! {
                _ = &mut ring => break,
                st = states.recv() => if let Some(ended) = before_answer(st) { return ended },
            }
        }
    }
    let session_id: u64 = rand::random::<u32>().into();
    let body = sdp::answer(local, &offer, session_id, 1);
    let content_type = Header::ContentType("application/sdp".into());
    if let Err(e) = dialog.accept(Some(vec![content_type]), Some(body)) {
        debug!(call_id, error = %e, "cannot send 200 OK (caller gone?)");
        return Ended::new("cancelled", "caller", 487);
    }
    let at = now_ms();
    node.calls.set_state(call_id, CallState::Answered, at);
    node.recorder.send(Record::Answered {
        call_id: call_id.to_string(),
        at_ms: at,
    });
    node.metrics.call_outcome(Outcome::Answered);
    let target = Target {
        remote: offer.remote,
        codec: offer.codec,
        send: offer.direction.answer().we_send(),
        dtmf_pt: offer.dtmf_pt,
        signal_ip: node.calls.caller(call_id).0.map(|a| a.ip()),
    };
    let track = node.call_seq.fetch_add(1, Ordering::Relaxed);
    let ignored = node.metrics.guard().rtp_ignored();
    let media = Session::start(
        socket,
        local,
        target,
        Mode::Moh,
        node.moh.clone(),
        track,
        ignored,
    );
    let mut ctx = CallCtx::new(node, dialog, states, &media, call_id, session_id);
    let ended = match dialplan::route(node, &ctx.dialled) {
        dialplan::Route::Hold => talk(&mut ctx).await,
        route => dialplan::run(&mut ctx, route).await,
    };
    media.stop();
    debug!(
        call_id,
        sent = media.stats().sent.load(Ordering::Relaxed),
        received = media.stats().received.load(Ordering::Relaxed),
        "media stopped"
    );
    ended
}

/// States that end a call before it is answered.
fn before_answer(st: Option<DialogState>) -> Option<Ended> {
    match st {
        None => Some(Ended::new("error", "node", 500)),
        Some(DialogState::Terminated(_, reason)) => Some(from_reason(&reason, false)),
        Some(_) => None,
    }
}

/// Music on hold until the call ends (numbers with no queue or agent behind them).
async fn talk(ctx: &mut CallCtx<'_>) -> Ended {
    loop {
        if let Some(ended) = ctx.next_end().await {
            return ended;
        }
    }
}

pub(crate) fn from_reason(reason: &TerminatedReason, answered: bool) -> Ended {
    match reason {
        TerminatedReason::UacBye => Ended::new("normal", "caller", 200),
        TerminatedReason::UasBye => Ended::new("normal", "node", 200),
        TerminatedReason::UacCancel => Ended::new("cancelled", "caller", 487),
        TerminatedReason::Timeout if answered => Ended::new("no_ack", "caller", 408),
        TerminatedReason::Timeout => Ended::new("timeout", "caller", 408),
        other => {
            debug!(?other, "dialog ended");
            Ended::new("error", "caller", 500)
        }
    }
}

/// Closes the call: out of the table, CDR and live-call row written, metrics updated.
fn finish(node: &Node, call_id: &str, ended: Ended) {
    let Some(entry) = node.calls.remove(call_id) else {
        return;
    };
    let name = &node.cfg.node.name;
    if entry.answered_at_ms.is_none() {
        node.metrics.call_outcome(if ended.cause == "cancelled" {
            Outcome::Cancelled
        } else {
            Outcome::Failed
        });
    }
    node.metrics
        .set_calls_active(i64::from(node.calls.active()));
    node.recorder.send(Record::Gone {
        call_id: call_id.to_string(),
    });
    node.recorder.send(Record::Cdr(Cdr {
        node: name.clone(),
        call_id: call_id.to_string(),
        from_uri: entry.from_uri,
        to_uri: entry.to_uri,
        started_at_ms: entry.started_at_ms,
        answered_at_ms: entry.answered_at_ms,
        ended_at_ms: now_ms(),
        hangup_cause: ended.cause.to_string(),
        hangup_side: ended.side.to_string(),
        sip_status: i64::from(ended.status),
        redirected_from: entry.redirected_from,
        agent: entry.agent,
        queue: entry.queue,
    }));
}
