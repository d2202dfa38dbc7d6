//! One call this node answers, from INVITE to CDR: SDP offer checked, RTP port bound, the
//! INVITE transaction run by rsipstack's server dialog (100, CANCEL → 487, ACK), optional
//! ringing, `200 OK` with our SDP, music on hold until a BYE from the caller, `call.max_duration`
//! (then our BYE) or node shutdown. Re-INVITEs (hold/unhold) are answered and steer the media.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use callfleet_store::{CallDirection, CallLeg, Cdr, HangupCause, HangupSide};
use callfleet_web::Outcome;
use rsipstack::dialog::dialog::{DialogState, TerminatedReason};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, StatusCode, Uri};
use rsipstack::transaction::transaction::Transaction;
use tokio::sync::mpsc::UnboundedReceiver;
use tracing::{debug, info, warn};

use super::ctx::CallCtx;
use super::front;
use crate::calls::{CallEntry, CallState, CallUid};
use crate::config::Config;
use crate::dialplan;
use crate::media::sdp::{self, Offer};
use crate::media::session::{Mode, Session, Target};
use crate::node::{Answering, CallKit, Legs};
use crate::now_ms;
use crate::records::{Record, Recorder};

/// How a call ended, for the CDR and metrics; its SIP status follows from the cause
/// ([`HangupCause::sip_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    pub cause: HangupCause,
    pub side: HangupSide,
}

impl Ended {
    pub const fn new(cause: HangupCause, side: HangupSide) -> Ended {
        Ended { cause, side }
    }

    /// The SIP status of this end: the final response of a call refused before its answer,
    /// and the CDR's `sip_status`.
    pub const fn status(self) -> u16 {
        self.cause.sip_status()
    }
}

/// No ACK for our 2xx within this long ends the call even if the transaction layer's own
/// Timer H (64·T1 = 32 s) did not (RFC 3261 §13.3.1.4).
const NO_ACK_BACKSTOP: std::time::Duration = std::time::Duration::from_secs(40);

/// How often the media gate looks for the caller's first RTP packet.
const GATE_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// Runs the call to its end and writes its CDR, with the call's `kit` (the subsystems a
/// call uses, [`CallKit`]).
pub async fn run(kit: CallKit, dialogs: Arc<DialogLayer>, mut tx: Transaction) {
    let legs = &kit.legs;
    // The front admitted this INVITE under its transaction key; take it.
    let Some(uid) = legs.calls.claim(&tx.key.to_string()) else {
        // The watchdog answered it already (or it was never admitted).
        debug!(key = %tx.key, "INVITE with no admitted call; answered 500");
        if let Err(e) = tx.reply(StatusCode::ServerInternalError).await {
            debug!(error = %e, "cannot answer an unclaimed INVITE");
        }
        return;
    };
    let call_id = front::call_id(&tx.original).unwrap_or("").to_string();
    // Another node's INVITE with Replaces (an attended transfer across nodes), or a forged one.
    if let Some(replaces) = crate::queue::xnode::replaces_of(&tx.original) {
        if crate::queue::xnode::admit(legs, &mut tx, &call_id, &replaces)
            .await
            .is_err()
        {
            // Refused (403 forged or not from a node, 481 no such call...): not a call.
            if legs.calls.remove(uid).is_some() {
                legs.metrics
                    .set_calls_active(i64::from(legs.calls.active()));
            }
            // Over UDP the transaction resends the answer until the ACK comes.
            while tx.receive().await.is_some() {}
            return;
        }
        let ended = answer(&kit, &dialogs, tx, uid, &call_id).await;
        crate::queue::xnode::abandon(legs, &call_id).await;
        finish(legs, uid, ended);
        return;
    }
    let Some(caller) = super::phone::identify(&kit, &mut tx, uid, &call_id).await else {
        return; // a phone's INVITE challenged (407) or refused: not a call
    };
    legs.calls
        .set_caller(&call_id, caller.source, caller.device.clone());
    let ended = match crate::outbound::wanted(
        &legs.cfg.outbound,
        &legs.realtime,
        &tx.original,
        caller.device.as_deref(),
    ) {
        Some(crate::outbound::Wanted::Dial(number)) => {
            let call = crate::outbound::Placed {
                uid,
                call_id: &call_id,
                number: &number,
                device: caller.device.as_deref().unwrap_or_default(),
            };
            crate::outbound::run(&legs.dialling(), &dialogs, tx, call).await
        }
        Some(crate::outbound::Wanted::Refuse(number)) => {
            legs.calls.set_outbound(&call_id, &number);
            info!(call_id, source = ?caller.source, "outbound call refused: not an authenticated phone's");
            refuse(
                &mut tx,
                Ended::new(HangupCause::OutboundRefused, HangupSide::Node),
            )
            .await
        }
        None => answer(&kit, &dialogs, tx, uid, &call_id).await,
    };
    finish(legs, uid, ended);
}

async fn answer(
    kit: &CallKit,
    dialogs: &DialogLayer,
    mut tx: Transaction,
    uid: CallUid,
    call_id: &str,
) -> Ended {
    // No SDP in the INVITE: a delayed offer, answered in the ACK.
    let delayed = tx.original.body().iter().all(u8::is_ascii_whitespace);
    let offer = if delayed {
        None
    } else {
        match sdp::parse_offer(tx.original.body()) {
            Ok(o) => Some(o),
            Err(e) => {
                debug!(call_id, error = %e, "cannot answer this SDP offer");
                return refuse(
                    &mut tx,
                    Ended::new(HangupCause::NoCommonMedia, HangupSide::Node),
                )
                .await;
            }
        }
    };
    let (socket, local) = match kit.legs.media.ports.bind().await {
        Ok(x) => x,
        Err(e) => {
            warn!(call_id, error = %e, "no RTP port");
            return refuse(
                &mut tx,
                Ended::new(HangupCause::NoRtpPort, HangupSide::Node),
            )
            .await;
        }
    };
    let (dialog, mut states) = match serve_invite(&kit.legs.answering(), dialogs, tx, call_id).await
    {
        Ok(x) => x,
        Err(ended) => return ended,
    };
    let id = dialog.id();
    let call = Call {
        uid,
        call_id,
        offer,
        socket,
        local,
    };
    let ended = converse(kit, &dialog, &mut states, call).await;
    dialogs.remove_dialog(&id);
    ended
}

/// The server dialog of the INVITE `tx`, its transaction run in a task of its own (100
/// Trying, CANCEL → 487, the ACK of our 2xx), and its state events; refused with 500 when
/// the dialog cannot be made.
pub(crate) async fn serve_invite(
    answering: &Answering,
    dialogs: &DialogLayer,
    mut tx: Transaction,
    call_id: &str,
) -> Result<(InviteDialog, UnboundedReceiver<DialogState>), Ended> {
    let (state_tx, states) = dialogs.new_dialog_state_channel();
    let contact = Uri::try_from(contact_for(&answering.cfg, &tx).as_str()).ok();
    let dialog = match dialogs.get_or_create_server_invite(&tx, state_tx, None, contact) {
        Ok(d) => d,
        Err(e) => {
            warn!(call_id, error = %e, "cannot create the dialog");
            return Err(refuse(&mut tx, Ended::new(HangupCause::Error, HangupSide::Node)).await);
        }
    };
    let mut runner = dialog.clone();
    tokio::spawn(async move {
        if let Err(e) = runner.handle(&mut tx).await {
            debug!(error = %e, "INVITE transaction ended with an error");
        }
    });
    Ok((dialog, states))
}

/// The call is ringing: its state, and its live-call row.
pub(crate) fn mark_ringing(answering: &Answering, uid: CallUid) {
    if let Some(entry) = answering.calls.set_state(uid, CallState::Ringing, now_ms()) {
        answering
            .recorder
            .send(Record::Live(entry.to_live(&answering.cfg.node.name)));
    }
}

/// The call is answered (our 200 sent): its state, record and metrics.
pub(crate) fn mark_answered(answering: &Answering, uid: CallUid, call_id: &str) {
    let at = now_ms();
    answering.calls.set_state(uid, CallState::Answered, at);
    answering.recorder.send(Record::Answered {
        call_id: call_id.to_string(),
        at_ms: at,
    });
    answering.metrics.call_outcome(Outcome::Answered);
}

/// Our Contact for a dialog whose INVITE came in on `tx`'s connection: over TLS, the TLS
/// address with `transport=tls`, so the peer's in-dialog requests come back over TLS.
fn contact_for(cfg: &Config, tx: &Transaction) -> String {
    let tls = tx
        .connection
        .as_ref()
        .is_some_and(|c| c.transport() == rsipstack::sip::Transport::Tls);
    match cfg.sip_tls_advertise() {
        Some(addr) if tls => format!("sip:callfleet@{addr};transport=tls"),
        _ => format!("sip:callfleet@{}", cfg.sip_advertise()),
    }
}

/// Refuses the INVITE with the status of `ended`, and returns it.
pub(crate) async fn refuse(tx: &mut Transaction, ended: Ended) -> Ended {
    let status = StatusCode::from(ended.status());
    if let Err(e) = tx.reply(status.clone()).await {
        debug!(%status, error = %e, "cannot send a final response");
    }
    ended
}

/// What `converse` needs of the call being answered.
struct Call<'a> {
    uid: CallUid,
    call_id: &'a str,
    /// The caller's SDP offer; `None` for a delayed offer (ours goes in the 200).
    offer: Option<Offer>,
    socket: tokio::net::UdpSocket,
    local: std::net::SocketAddr,
}

async fn converse(
    kit: &CallKit,
    dialog: &InviteDialog,
    states: &mut UnboundedReceiver<DialogState>,
    call: Call<'_>,
) -> Ended {
    let call_id = call.call_id;
    let legs = &kit.legs;
    let answering = legs.answering();
    mark_ringing(&answering, call.uid);
    if let Some(ended) = ring_before_answer(&legs.cfg, dialog, states, call_id).await {
        return ended;
    }
    let session_id: u64 = rand::random::<u32>().into();
    let body = match &call.offer {
        Some(offer) => sdp::answer(call.local, offer, session_id, 1),
        None => sdp::offer(call.local, session_id, 1),
    };
    let content_type = Header::ContentType("application/sdp".into());
    if let Err(e) = dialog.accept(Some(vec![content_type]), Some(body)) {
        debug!(call_id, error = %e, "cannot send 200 OK (caller gone?)");
        return Ended::new(HangupCause::Cancelled, HangupSide::Caller);
    }
    mark_answered(&answering, call.uid, call_id);
    // Until the caller shows it wants media (its ACK, or its first RTP packet), nothing is
    // sent: an INVITE's SDP alone never points our RTP at a third party.
    let gated = |offer: &Offer| Target {
        remote: offer.remote,
        codec: offer.codec,
        send: false,
        dtmf_pt: offer.dtmf_pt,
        signal_ip: legs.calls.caller(call_id).0.map(|a| a.ip()),
        rtcp: offer.rtcp,
        packet_ms: offer.packet_ms(),
    };
    let first = call.offer.clone().unwrap_or_else(unknown_peer);
    let track = legs.media.seq.fetch_add(1, Ordering::Relaxed);
    let ignored = legs.metrics.guard().rtp_ignored();
    let media = Session::start(
        call.socket,
        call.local,
        gated(&first),
        Mode::Moh(legs.media.moh.default_class()),
        track,
        ignored,
    );
    let offer = match peer_shows_up(&answering, dialog, states, &media, call.offer).await {
        Ok(offer) => offer,
        Err(ended) => {
            media.stop();
            return ended;
        }
    };
    media.retarget(Target {
        send: offer.direction.answer().we_send(),
        ..gated(&offer)
    });
    let mut ctx = CallCtx::new(&answering, dialog, states, &media, call_id, session_id);
    let ended = dispatch(&mut ctx, kit).await;
    media.finish().await;
    crate::quality::record(&legs.quality(), call_id, CallLeg::Caller, &media.quality());
    debug!(
        call_id,
        sent = media.stats().sent.load(Ordering::Relaxed),
        received = media.stats().received.load(Ordering::Relaxed),
        "media stopped"
    );
    ended
}

/// Runs the answered call where it goes, handing each flow its parts of `kit`: the leg an
/// attended transfer from another node handed it, music on hold, or its route.
async fn dispatch(ctx: &mut CallCtx<'_>, kit: &CallKit) -> Ended {
    let handed = kit.legs.queue.take_handed(ctx.call_id);
    match (handed, dialplan::route(&kit.legs.realtime, &ctx.dialled)) {
        (Some(leg), _) => crate::queue::xnode::adopt(ctx, &kit.legs, leg).await,
        (None, dialplan::Route::Hold) => talk(ctx).await,
        (None, route) => dialplan::run(ctx, kit, route).await,
    }
}

/// Rings (180) for `call.answer_delay` before the answer, if one is set; how the call ended
/// if the caller gave up meanwhile.
async fn ring_before_answer(
    cfg: &Config,
    dialog: &InviteDialog,
    states: &mut UnboundedReceiver<DialogState>,
    call_id: &str,
) -> Option<Ended> {
    let delay = cfg.call.answer_delay;
    if delay.is_zero() {
        return None;
    }
    if let Err(e) = dialog.ringing(None, None) {
        debug!(call_id, error = %e, "cannot send 180 Ringing");
    }
    let ring = tokio::time::sleep(delay);
    tokio::pin!(ring);
    loop {
        tokio::select! {
            _ = &mut ring => return None,
            st = states.recv() => if let Some(ended) = before_answer(st) { return Some(ended) },
        }
    }
}

/// Placeholder media description before a delayed offer's answer: no address, PCMU.
fn unknown_peer() -> Offer {
    Offer {
        remote: None,
        codec: sdp::Codec::Pcmu,
        dtmf_pt: None,
        direction: sdp::Direction::SendRecv,
        rtcp: sdp::Rtcp::NextPort,
        ptime: None,
    }
}

/// Waits for the caller's ACK (which carries the answer to a delayed offer) or its first RTP
/// packet; the call ends instead when the ACK never comes (Timer H), the caller goes, or the
/// node stops. Returns the media description to use.
pub(crate) async fn peer_shows_up(
    answering: &Answering,
    dialog: &InviteDialog,
    states: &mut UnboundedReceiver<DialogState>,
    media: &Session,
    offer: Option<Offer>,
) -> Result<Offer, Ended> {
    let backstop = tokio::time::sleep(NO_ACK_BACKSTOP);
    tokio::pin!(backstop);
    let mut poll = tokio::time::interval(GATE_POLL);
    loop {
        tokio::select! {
            st = states.recv() => match st {
                None => return Err(Ended::new(HangupCause::Error, HangupSide::Node)),
                Some(DialogState::Terminated(_, reason)) => return Err(from_reason(&reason, true)),
                Some(DialogState::Confirmed(..)) => return delayed_answer(dialog, offer),
                Some(_) => {}
            },
            _ = poll.tick(), if offer.is_some() => {
                if media.stats().received.load(Ordering::Relaxed) > 0 {
                    if let Some(o) = offer {
                        return Ok(o);
                    }
                }
            }
            _ = &mut backstop => {
                info!(id = %dialog.id(), "no ACK for our 200 OK; ending the call");
                if let Err(e) = dialog.bye().await {
                    debug!(error = %e, "cannot send BYE");
                }
                return Err(Ended::new(HangupCause::NoAck, HangupSide::Caller));
            }
            _ = answering.life.hangup.cancelled() => {
                if let Err(e) = dialog.bye().await {
                    debug!(error = %e, "cannot send BYE");
                }
                return Err(Ended::new(HangupCause::NodeShutdown, HangupSide::Node));
            }
        }
    }
}

/// The media description once the ACK came: the INVITE's offer, or the answer in the ACK to
/// our delayed-offer SDP (none usable: the call ends with BYE, cause `no_common_media`).
fn delayed_answer(dialog: &InviteDialog, offer: Option<Offer>) -> Result<Offer, Ended> {
    if let Some(o) = offer {
        return Ok(o);
    }
    let ack = dialog.last_remote_ack();
    match ack.as_ref().map(|a| sdp::parse_offer(a.body())) {
        Some(Ok(answer)) => Ok(answer),
        other => {
            debug!(id = %dialog.id(), ?other, "no usable SDP answer in the ACK");
            let d = dialog.clone();
            tokio::spawn(async move {
                if let Err(e) = d.bye().await {
                    debug!(error = %e, "cannot send BYE");
                }
            });
            Err(Ended::new(HangupCause::NoCommonMedia, HangupSide::Node))
        }
    }
}

/// States that end a call before it is answered.
fn before_answer(st: Option<DialogState>) -> Option<Ended> {
    match st {
        None => Some(Ended::new(HangupCause::Error, HangupSide::Node)),
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
        TerminatedReason::UacBye => Ended::new(HangupCause::Normal, HangupSide::Caller),
        TerminatedReason::UasBye => Ended::new(HangupCause::Normal, HangupSide::Node),
        TerminatedReason::UacCancel => Ended::new(HangupCause::Cancelled, HangupSide::Caller),
        TerminatedReason::Timeout if answered => Ended::new(HangupCause::NoAck, HangupSide::Caller),
        TerminatedReason::Timeout => Ended::new(HangupCause::Timeout, HangupSide::Caller),
        other => {
            debug!(?other, "dialog ended");
            Ended::new(HangupCause::Error, HangupSide::Caller)
        }
    }
}

/// Closes the call: out of the table, CDR and live-call row written, metrics updated.
fn finish(kit: &Legs, uid: CallUid, ended: Ended) {
    let Some(entry) = kit.calls.remove(uid) else {
        return;
    };
    if entry.answered_at_ms.is_none() {
        kit.metrics
            .call_outcome(if ended.cause == HangupCause::Cancelled {
                Outcome::Cancelled
            } else {
                Outcome::Failed
            });
    }
    kit.metrics.set_calls_active(i64::from(kit.calls.active()));
    record_end((&kit.cfg, &kit.trace, &kit.recorder), entry, ended);
}

/// Writes the end of a call taken out of the table: its trace ended, its live-call row
/// deleted, its CDR (by this node, through the record writer).
pub fn record_end(
    (cfg, trace, recorder): (&Config, &crate::trace::Tracer, &Recorder),
    entry: CallEntry,
    ended: Ended,
) {
    trace.end(&entry.call_id);
    recorder.send(Record::Gone {
        call_id: entry.call_id.clone(),
    });
    recorder.send(Record::Cdr(Cdr {
        node: cfg.node.name.clone(),
        call_id: entry.call_id,
        from_uri: entry.from_uri,
        to_uri: entry.to_uri,
        started_at_ms: entry.started_at_ms,
        answered_at_ms: entry.answered_at_ms,
        ended_at_ms: now_ms(),
        hangup_cause: ended.cause,
        hangup_side: ended.side,
        sip_status: i64::from(ended.status()),
        redirected_from: entry.redirected_from,
        agent: entry.agent,
        queue: entry.queue,
        uid: Some(recorder.cdr_key(entry.uid)),
        direction: if entry.destination.is_some() {
            CallDirection::Outbound
        } else {
            CallDirection::Inbound
        },
        destination: entry.destination,
    }));
}
