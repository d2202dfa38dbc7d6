//! Outbound calls: an agent's phone (a registered device that authenticated its INVITE, with
//! an agent logged in on it) dials an external number ([`crate::config::OutboundSection::external`]) and the node
//! places the call through the configured trunk as a UAC (the agent legs' dialing and SDP,
//! `queue::agent_leg`, with the trunk's digest credentials), with the project's caller ID.
//! Ringing is relayed to the phone, the trunk's final answer too (its failures mapped by
//! [`trunk_cause`]); answered, the phone gets our 200 and the two legs are bridged until
//! either side's BYE, `call.max_duration` or shutdown. A CANCEL from the phone cancels the
//! trunk's INVITE. The CDR says `outbound`, the number dialled and the agent logged in on
//! the phone. It is handed only the [`Dialling`] parts, never the call's whole kit.

use std::sync::Arc;

use callfleet_store::{CallLeg, HangupCause, HangupSide};
use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::dialog::DialogState;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, Request, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use tokio::sync::mpsc::UnboundedReceiver;
use tracing::{debug, info, warn};

use crate::calls::CallUid;
use crate::dialplan::{self, Route};
use crate::media::sdp::{self, Offer};
use crate::media::session::{bridge, Mode, Session, Target};
use crate::node::Dialling;
use crate::queue::agent_leg::{self, Dial, Progress, RingOutcome, RingOver, Ringing, Signal};
use crate::realtime::Realtime;
use crate::sip::call::{self, Ended};
use crate::sip::ctx::CallCtx;

/// What to do with a new INVITE as far as outbound calls go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// Place the call to this E.164 number through the trunk.
    Dial(String),
    /// An external number (this one) dialled by what is not an authenticated phone: refused
    /// (403).
    Refuse(String),
}

/// Whether the INVITE `req` (from `device`, the phone that authenticated it, if any) is an
/// outbound call: its number names nothing of the dialplan and is external. `None`: the
/// dialplan answers it as usual (`realtime`, the configuration cache, holds the dialplan).
pub fn wanted(
    cfg: &crate::config::OutboundSection,
    realtime: &Realtime,
    req: &Request,
    device: Option<&str>,
) -> Option<Wanted> {
    if !cfg.enabled() {
        return None;
    }
    let dialled = req.uri.user().unwrap_or_default();
    if dialplan::route(realtime, dialled) != Route::Hold {
        return None;
    }
    decide(cfg.external(dialled), device.is_some())
}

/// The decision of [`wanted`] once the number is known to be no dialplan's: only a phone
/// that authenticated may dial out.
pub fn decide(external: Option<String>, from_device: bool) -> Option<Wanted> {
    let number = external?;
    Some(if from_device {
        Wanted::Dial(number)
    } else {
        Wanted::Refuse(number)
    })
}

/// Why the trunk's final failure `status` ended the call (the phone gets the cause's status,
/// [`HangupCause::sip_status`]): busy stays busy, no answer is `480`, unknown numbers `404`,
/// a decline `603`; other failures (5xx, a challenge our credentials did not pass, other
/// 4xx) are the trunk's: `503`.
pub fn trunk_cause(status: u16) -> HangupCause {
    match status {
        486 | 600 => HangupCause::Busy,
        408 | 480 => HangupCause::NoAnswer,
        404 | 484 | 604 => HangupCause::UnallocatedNumber,
        603 => HangupCause::Declined,
        403 => HangupCause::OutboundRefused,
        487 => HangupCause::Cancelled,
        488 | 606 => HangupCause::NoCommonMedia,
        _ => HangupCause::TrunkFailed,
    }
}

/// The outbound call being placed.
pub struct Placed<'a> {
    pub uid: CallUid,
    pub call_id: &'a str,
    /// The E.164 number dialled.
    pub number: &'a str,
    /// The phone that dialled.
    pub device: &'a str,
}

/// Places the call and runs it to its end.
pub async fn run(
    out: &Dialling,
    dialogs: &Arc<DialogLayer>,
    mut tx: Transaction,
    call: Placed<'_>,
) -> Ended {
    let call_id = call.call_id;
    out.answering.calls.set_outbound(call_id, call.number);
    // Only a phone an agent is logged in on dials out: a provisioned phone nobody sits at, or
    // a phone whose credentials leaked, never reaches the trunk (toll fraud).
    match out.store.agent_on_device(call.device).await {
        Ok(Some(agent)) => out
            .answering
            .calls
            .set_served(call_id, None, Some(&agent.extension)),
        Ok(None) => {
            info!(
                call_id,
                device = call.device,
                "outbound call refused: no agent is logged in on the phone"
            );
            let ended = Ended::new(HangupCause::OutboundRefused, HangupSide::Node);
            return call::refuse(&mut tx, ended).await;
        }
        Err(e) => {
            warn!(call_id, device = call.device, error = %e, "outbound call refused: cannot tell which agent is on the phone");
            let ended = Ended::new(HangupCause::OutboundRefused, HangupSide::Node);
            return call::refuse(&mut tx, ended).await;
        }
    }
    // The phone's offer: the trunk is offered its codec, so the bridge needs no transcoding.
    let offer = match sdp::parse_offer(tx.original.body()) {
        Ok(o) => o,
        Err(e) => {
            debug!(call_id, error = %e, "outbound INVITE without a usable SDP offer");
            let ended = Ended::new(HangupCause::NoCommonMedia, HangupSide::Node);
            return call::refuse(&mut tx, ended).await;
        }
    };
    let (Ok(phone_rtp), Ok(trunk_rtp)) = (out.ports.bind().await, out.ports.bind().await) else {
        warn!(call_id, "no RTP port for an outbound call");
        return call::refuse(
            &mut tx,
            Ended::new(HangupCause::NoRtpPort, HangupSide::Node),
        )
        .await;
    };
    let (dialog, mut states) = match call::serve_invite(&out.answering, dialogs, tx, call_id).await
    {
        Ok(x) => x,
        Err(ended) => return ended,
    };
    call::mark_ringing(&out.answering, call.uid);
    let ended = place(
        out,
        dialogs,
        &dialog,
        &mut states,
        &call,
        offer,
        phone_rtp,
        trunk_rtp,
    )
    .await;
    dialogs.remove_dialog(&dialog.id());
    ended
}

type Rtp = (tokio::net::UdpSocket, std::net::SocketAddr);

#[allow(clippy::too_many_arguments)]
async fn place(
    out: &Dialling,
    dialogs: &Arc<DialogLayer>,
    dialog: &InviteDialog,
    states: &mut UnboundedReceiver<DialogState>,
    call: &Placed<'_>,
    offer: Offer,
    phone_rtp: Rtp,
    trunk_rtp: Rtp,
) -> Ended {
    let call_id = call.call_id;
    let mut ringing = match dial_trunk(out, dialogs, call, offer.codec, trunk_rtp).await {
        Some(r) => r,
        None => {
            return reject(
                dialog,
                Ended::new(HangupCause::TrunkFailed, HangupSide::Node),
            )
        }
    };
    out.trace.link(&ringing.dialog.id().call_id, call_id);
    let until = tokio::time::Instant::now() + out.answering.cfg.outbound.ring_timeout;
    let mut rang = false;
    let outcome = loop {
        tokio::select! {
            p = ringing.progress(until) => match p {
                Progress::Early(status) => {
                    debug!(call_id, status, "the trunk rings");
                    if !rang {
                        rang = true;
                        if let Err(e) = dialog.ringing(None, None) {
                            debug!(call_id, error = %e, "cannot send 180 Ringing");
                        }
                    }
                }
                Progress::Final(outcome) => break outcome,
            },
            st = states.recv() => match st {
                None | Some(DialogState::Terminated(..)) => {
                    // The phone CANCELled (its 487 is sent by the transaction) or went.
                    ringing.cancel().await;
                    return Ended::new(HangupCause::Cancelled, HangupSide::Caller);
                }
                Some(_) => {}
            },
            _ = out.answering.life.hangup.cancelled() => {
                ringing.cancel().await;
                return reject(dialog, Ended::new(HangupCause::NodeShutdown, HangupSide::Node));
            }
        }
    };
    let answer = match outcome {
        RingOutcome::Answered { offer } => offer,
        RingOutcome::Failed { status } => {
            let cause = trunk_cause(status);
            info!(call_id, number = call.number, status, %cause, "the trunk did not connect the call");
            return reject(dialog, Ended::new(cause, HangupSide::Callee));
        }
    };
    converse(out, dialog, states, call, offer, phone_rtp, ringing, answer).await
}

/// The INVITE to the trunk for `call`, offering `codec`.
async fn dial_trunk(
    out: &Dialling,
    dialogs: &Arc<DialogLayer>,
    call: &Placed<'_>,
    codec: sdp::Codec,
    (socket, local): Rtp,
) -> Option<Ringing> {
    let cfg = &out.answering.cfg.outbound;
    let trunk = cfg.trunk.as_deref()?;
    let via = match tokio::net::lookup_host(trunk).await.map(|mut a| a.next()) {
        Ok(Some(addr)) => addr,
        Ok(None) => {
            warn!(trunk, "the outbound trunk's name has no address");
            return None;
        }
        Err(e) => {
            warn!(trunk, error = %e, "cannot resolve the outbound trunk");
            return None;
        }
    };
    let d = Dial {
        agent: format!("trunk {trunk}"),
        contact: format!("sip:{}@{trunk}", call.number),
        via,
        codec,
        caller: cfg.caller_id.clone().unwrap_or_default(),
        over: RingOver::Udp,
    };
    let credential = cfg.username.as_ref().map(|username| Credential {
        username: username.clone(),
        password: cfg.password.clone().unwrap_or_default(),
        ..Credential::default()
    });
    let local_sip = out.answering.cfg.sip_advertise();
    match agent_leg::dial_authenticated(dialogs, local_sip, &d, socket, local, credential) {
        Ok(r) => Some(r),
        Err(e) => {
            warn!(call_id = call.call_id, error = %e, "cannot call the outbound trunk");
            None
        }
    }
}

/// Refuses the phone's INVITE with the status of `ended`.
fn reject(dialog: &InviteDialog, ended: Ended) -> Ended {
    let status = StatusCode::from(ended.status());
    if let Err(e) = dialog.reject(Some(status), None) {
        debug!(error = %e, "cannot refuse the phone's INVITE");
    }
    ended
}

/// The trunk answered: the phone gets our 200, the legs are bridged until the call ends.
#[allow(clippy::too_many_arguments)]
async fn converse(
    out: &Dialling,
    dialog: &InviteDialog,
    states: &mut UnboundedReceiver<DialogState>,
    call: &Placed<'_>,
    offer: Offer,
    (phone_socket, phone_local): Rtp,
    ringing: Ringing,
    answer: Offer,
) -> Ended {
    let call_id = call.call_id;
    let trunk = Session::start(
        ringing.socket,
        ringing.local,
        agent_leg::answered_target(&answer, ringing.peer),
        Mode::Silence,
        0,
        out.answering.metrics.guard().rtp_ignored(),
    );
    let session_id: u64 = rand::random::<u32>().into();
    let body = sdp::answer(phone_local, &offer, session_id, 1);
    let content_type = Header::ContentType("application/sdp".into());
    if let Err(e) = dialog.accept(Some(vec![content_type]), Some(body)) {
        debug!(call_id, error = %e, "cannot send 200 OK (phone gone?)");
        hang_up_trunk(&ringing.dialog).await;
        trunk.stop();
        return Ended::new(HangupCause::Cancelled, HangupSide::Caller);
    }
    call::mark_answered(&out.answering, call.uid, call_id);
    // Until the phone shows it wants media (its ACK or first RTP packet), nothing is sent.
    let target = |offer: &Offer, send: bool| Target {
        remote: offer.remote,
        codec: offer.codec,
        send,
        dtmf_pt: offer.dtmf_pt,
        signal_ip: out.answering.calls.caller(call_id).0.map(|a| a.ip()),
        rtcp: offer.rtcp,
        packet_ms: offer.packet_ms(),
    };
    let phone = Session::start(
        phone_socket,
        phone_local,
        target(&offer, false),
        Mode::Silence,
        0,
        out.answering.metrics.guard().rtp_ignored(),
    );
    bridge(&phone, &trunk);
    let ended = match call::peer_shows_up(&out.answering, dialog, states, &phone, Some(offer)).await
    {
        Ok(offer) => {
            phone.retarget(target(&offer, offer.direction.answer().we_send()));
            let mut ctx = CallCtx::new(&out.answering, dialog, states, &phone, call_id, session_id);
            talk(
                &mut ctx,
                &trunk,
                ringing.dialog.clone(),
                ringing.states,
                ringing.session_id,
            )
            .await
        }
        Err(ended) => {
            hang_up_trunk(&ringing.dialog).await;
            ended
        }
    };
    phone.finish().await;
    trunk.finish().await;
    // The far party's leg is the call's `caller` leg in the quality records (the report by
    // country reads it); the phone's is the agent's.
    let quality = out.answering.quality();
    crate::quality::record(&quality, call_id, CallLeg::Caller, &trunk.quality());
    crate::quality::record(&quality, call_id, CallLeg::Agent, &phone.quality());
    ended
}

/// The bridged conversation, until either side ends it (the other gets a BYE).
async fn talk(
    ctx: &mut CallCtx<'_>,
    trunk: &Session,
    trunk_dialog: InviteDialog,
    mut trunk_states: rsipstack::dialog::dialog::DialogStateReceiver,
    session_id: u64,
) -> Ended {
    let mut version = 1;
    loop {
        tokio::select! {
            end = ctx.life.next_end() => if let Some(ended) = end {
                hang_up_trunk(&trunk_dialog).await;
                return ended;
            },
            signal = agent_leg::next_signal(&mut trunk_states) => match signal {
                Signal::Ended { .. } => {
                    if let Err(e) = ctx.dialog.bye().await {
                        debug!(error = %e, "cannot send BYE to the phone");
                    }
                    return Ended::new(HangupCause::Normal, HangupSide::Callee);
                }
                Signal::Reoffer { req, handle } => {
                    version += 1;
                    crate::sip::ctx::reinvite(trunk, &req, handle, session_id, version).await;
                }
                // A carrier does not transfer our phone's call elsewhere.
                Signal::Refer { handle, .. } => {
                    if let Err(e) = handle.reply(StatusCode::NotImplemented).await {
                        debug!(error = %e, "cannot answer the trunk's REFER");
                    }
                }
            },
        }
    }
}

async fn hang_up_trunk(dialog: &InviteDialog) {
    if let Err(e) = dialog.bye().await {
        debug!(error = %e, "cannot send BYE to the trunk");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_authenticated_phones_dial_out() {
        let n = || Some("+4930123456".to_string());
        assert_eq!(decide(n(), true), Some(Wanted::Dial("+4930123456".into())));
        assert_eq!(
            decide(n(), false),
            Some(Wanted::Refuse("+4930123456".into()))
        );
        assert_eq!(decide(None, true), None);
        assert_eq!(decide(None, false), None);
    }

    #[test]
    fn trunk_failures_map_to_what_the_phone_hears() {
        for (trunk, cause, phone) in [
            (486, HangupCause::Busy, 486),
            (600, HangupCause::Busy, 486),
            (480, HangupCause::NoAnswer, 480),
            (408, HangupCause::NoAnswer, 480),
            (404, HangupCause::UnallocatedNumber, 404),
            (484, HangupCause::UnallocatedNumber, 404),
            (604, HangupCause::UnallocatedNumber, 404),
            (603, HangupCause::Declined, 603),
            (403, HangupCause::OutboundRefused, 403),
            (487, HangupCause::Cancelled, 487),
            (488, HangupCause::NoCommonMedia, 488),
            (401, HangupCause::TrunkFailed, 503),
            (407, HangupCause::TrunkFailed, 503),
            (500, HangupCause::TrunkFailed, 503),
            (503, HangupCause::TrunkFailed, 503),
            (502, HangupCause::TrunkFailed, 503),
            (400, HangupCause::TrunkFailed, 503),
        ] {
            assert_eq!(trunk_cause(trunk), cause, "{trunk}");
            assert_eq!(trunk_cause(trunk).sip_status(), phone, "{trunk}");
        }
    }
}
