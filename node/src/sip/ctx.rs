//! What a call's logic holds once the caller is answered: the call's own state (the dialog,
//! its state events, the caller's media leg and its events, the numbers, the calling phone),
//! never a subsystem: each flow is handed, beside it, a handle of the parts it uses
//! (`crate::node::handles`). [`CallCtx::next_end`] is the one place that answers
//! re-INVITEs, enforces `call.max_duration` and node shutdown, and says when the call is over.

use rsipstack::dialog::dialog::{DialogState, TransactionHandle};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, Request, StatusCode};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;
use tracing::{debug, info};

use callfleet_store::{HangupCause, HangupSide};

use super::call::{from_reason, Ended};
use crate::lifecycle::Lifecycle;
use crate::media::sdp::{self, Offer};
use crate::media::session::{MediaEvent, Session, Target};
use crate::node::Answering;

/// One answered call's own state; the parts a flow uses come in a handle of their own.
pub struct CallCtx<'a> {
    pub dialog: &'a InviteDialog,
    pub media: &'a Session,
    pub call_id: &'a str,
    /// The number dialled (Request-URI user).
    pub dialled: String,
    /// The caller's number (From user): shown and recorded, never trusted.
    pub caller: String,
    /// The phone the call comes from, authenticated by digest (`sip::phone`); `None` for a
    /// carrier's call. What hot-desk codes act on.
    pub device: Option<String>,
    /// The dialog's life: `life.next_end()`.
    pub life: Life<'a>,
    /// The caller's media events: `events.next()`.
    pub events: Events,
}

/// The part of a call that watches its dialog, kept apart from [`Events`] so both can be
/// awaited in one `select!`.
pub struct Life<'a> {
    /// The node's run state: its hang-up token ends the call at shutdown.
    run: &'a Lifecycle,
    dialog: &'a InviteDialog,
    media: &'a Session,
    states: &'a mut UnboundedReceiver<DialogState>,
    deadline: Instant,
    session_id: u64,
    version: u64,
}

/// Media events of the caller's leg.
pub struct Events(UnboundedReceiver<MediaEvent>);

impl Events {
    /// The next event (prompt done, DTMF digit); pending forever once the leg stopped.
    pub async fn next(&mut self) -> MediaEvent {
        match self.0.recv().await {
            Some(e) => e,
            None => std::future::pending().await,
        }
    }
}

impl<'a> CallCtx<'a> {
    /// The state of the call `call_id` on `dialog`, answered through `answering` (its device
    /// from the live-call table, its longest duration from `call.max_duration`).
    pub fn new(
        answering: &'a Answering,
        dialog: &'a InviteDialog,
        states: &'a mut UnboundedReceiver<DialogState>,
        media: &'a Session,
        call_id: &'a str,
        session_id: u64,
    ) -> CallCtx<'a> {
        let req = dialog.initial_request();
        let dialled = req.uri.user().unwrap_or_default().to_string();
        let caller = caller_number(&req);
        let (_, device) = answering.calls.caller(call_id);
        let events = media
            .events()
            .unwrap_or_else(|| tokio::sync::mpsc::unbounded_channel().1);
        CallCtx {
            dialog,
            media,
            call_id,
            dialled,
            caller,
            device,
            life: Life {
                run: &answering.life,
                dialog,
                media,
                states,
                deadline: Instant::now() + answering.cfg.call.max_duration,
                session_id,
                version: 1,
            },
            events: Events(events),
        }
    }

    /// See [`Life::next_end`].
    pub async fn next_end(&mut self) -> Option<Ended> {
        self.life.next_end().await
    }

    /// Hangs up on the caller.
    pub async fn hangup(&self, cause: HangupCause) -> Ended {
        if let Err(e) = self.dialog.bye().await {
            debug!(error = %e, "cannot send BYE");
        }
        Ended::new(cause, HangupSide::Node)
    }
}

impl Life<'_> {
    /// Waits for the next thing that concerns the call's life; `Some` when the call is over
    /// (the caller hung up, or we did because of `call.max_duration` or shutdown). Re-INVITEs
    /// and other in-dialog requests are answered on the way (`None`).
    pub async fn next_end(&mut self) -> Option<Ended> {
        tokio::select! {
            st = self.states.recv() => match st {
                None => Some(Ended::new(HangupCause::Error, HangupSide::Node)),
                Some(DialogState::Terminated(_, reason)) => Some(from_reason(&reason, true)),
                Some(DialogState::Updated(_, req, handle)) => {
                    self.version += 1;
                    reinvite(self.media, &req, handle, self.session_id, self.version).await;
                    None
                }
                Some(DialogState::Info(_, _, handle)) | Some(DialogState::Options(_, _, handle)) => {
                    if let Err(e) = handle.reply(StatusCode::OK).await {
                        debug!(error = %e, "cannot send a reply in the dialog");
                    }
                    None
                }
                Some(_) => None,
            },
            _ = tokio::time::sleep_until(self.deadline) => {
                info!(id = %self.dialog.id(), "call reached call.max_duration; hanging up");
                if let Err(e) = self.dialog.bye().await {
                    debug!(error = %e, "cannot send a BYE");
                }
                Some(Ended::new(HangupCause::MaxDuration, HangupSide::Node))
            }
            _ = self.run.hangup.cancelled() => {
                if let Err(e) = self.dialog.bye().await {
                    debug!(error = %e, "cannot send a BYE");
                }
                Some(Ended::new(HangupCause::NodeShutdown, HangupSide::Node))
            }
        }
    }
}

/// The caller's number: the From URI's user part (or "anonymous").
fn caller_number(req: &Request) -> String {
    let from = super::admission::header_uri(req, |h| matches!(h, Header::From(_)));
    from.split_once(':')
        .map(|(_, rest)| rest)
        .unwrap_or(&from)
        .split('@')
        .next()
        .filter(|u| !u.is_empty() && !u.contains('.'))
        .unwrap_or("anonymous")
        .chars()
        .take(64)
        .collect()
}

/// Answers a re-INVITE (or UPDATE) with a new SDP version and steers the media to match.
pub(crate) async fn reinvite(
    media: &Session,
    req: &Request,
    handle: TransactionHandle,
    session_id: u64,
    version: u64,
) {
    let ct = || Some(vec![Header::ContentType("application/sdp".into())]);
    if req.body().iter().all(|b| b.is_ascii_whitespace()) {
        // No offer: answer with our current session unchanged.
        let cur = media.target();
        let offer = Offer {
            remote: cur.remote,
            codec: cur.codec,
            dtmf_pt: cur.dtmf_pt,
            direction: sdp::Direction::SendRecv,
            rtcp: cur.rtcp,
            ptime: Some(cur.packet_ms),
        };
        let body = sdp::answer(media.local, &offer, session_id, version);
        if let Err(e) = handle.respond(StatusCode::OK, ct(), Some(body)).await {
            debug!(error = %e, "cannot send the answer to a re-INVITE");
        }
        return;
    }
    match sdp::parse_offer(req.body()) {
        Ok(offer) => {
            media.retarget(Target {
                remote: offer.remote,
                codec: offer.codec,
                send: offer.direction.answer().we_send(),
                dtmf_pt: offer.dtmf_pt,
                signal_ip: media.target().signal_ip,
                rtcp: offer.rtcp,
                packet_ms: offer.packet_ms(),
            });
            let body = sdp::answer(media.local, &offer, session_id, version);
            if let Err(e) = handle.respond(StatusCode::OK, ct(), Some(body)).await {
                debug!(error = %e, "cannot send the answer to a re-INVITE");
            }
        }
        Err(e) => {
            debug!(error = %e, "re-INVITE offer not acceptable");
            if let Err(e) = handle.reply(StatusCode::NotAcceptableHere).await {
                debug!(error = %e, "cannot send a reply in the dialog");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::sip::SipMessage;

    #[test]
    fn caller_numbers() {
        for (from, want) in [
            ("From: <sip:+4930123@carrier.example>;tag=1", "+4930123"),
            ("From: \"Alice\" <sip:alice@10.0.0.1>;tag=1", "alice"),
            ("From: <sip:10.0.0.1>;tag=1", "anonymous"),
            ("From: sip:555@x;tag=1", "555"),
        ] {
            let text = format!("INVITE sip:1@x SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\n{from}\r\nTo: <sip:1@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n");
            let SipMessage::Request(req) = SipMessage::try_from(text.as_str()).unwrap() else {
                panic!()
            };
            assert_eq!(caller_number(&req), want, "{from}");
        }
    }
}
