//! The outbound leg to an agent's phone: an INVITE (through rsipstack's client dialog) with our
//! SDP offer in the caller's codec, so the bridge relays packets without transcoding; then
//! ringing until answer, failure, ring timeout or CANCEL.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rsipstack::dialog::dialog::{
    DialogState, DialogStateReceiver, TerminatedReason, TransactionHandle,
};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::{InviteAsyncResult, InviteOption};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Request, StatusCode, StatusCodeKind, Uri};
use rsipstack::transport::SipAddr;
use tokio::net::UdpSocket;
use tracing::debug;

use crate::media::sdp::{self, Codec, Direction, Offer};

/// Where and how to ring one agent.
#[derive(Debug, Clone)]
pub struct Dial {
    pub agent: String,
    /// The phone's registered contact (Request-URI).
    pub contact: String,
    /// Where to send the INVITE (the address the registration came from).
    pub via: SocketAddr,
    pub codec: Codec,
    /// Caller number shown on the phone.
    pub caller: String,
    /// Our SIP-over-TLS address when the phone registered over TLS
    /// ([`crate::sip::tls::ring_over_tls`]): the INVITE then goes on the phone's own TLS
    /// connection, with this address in our Contact.
    pub tls: Option<SocketAddr>,
}

impl Dial {
    /// Where the INVITE goes, and our Contact.
    fn route(&self, local_sip: SocketAddr) -> (SipAddr, String) {
        match self.tls {
            Some(tls) => (
                SipAddr {
                    r#type: Some(rsipstack::sip::Transport::Tls),
                    addr: self.via.into(),
                },
                format!("sip:callfleet@{tls};transport=tls"),
            ),
            None => (
                SipAddr {
                    r#type: None,
                    addr: self.via.into(),
                },
                format!("sip:callfleet@{local_sip}"),
            ),
        }
    }
}

/// Why an agent leg could not ring.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("bad contact URI {contact:?} for agent {agent}")]
    Contact { agent: String, contact: String },
    #[error("cannot send the INVITE to agent {agent}: {source}")]
    Invite {
        agent: String,
        source: Box<rsipstack::Error>,
    },
}

/// A ringing agent leg.
pub struct Ringing {
    pub agent: String,
    pub dialog: InviteDialog,
    result: tokio::task::JoinHandle<InviteAsyncResult>,
    pub states: DialogStateReceiver,
    pub socket: UdpSocket,
    pub local: SocketAddr,
    /// Where the INVITE went (the phone's binding): its IP is where the phone's signalling,
    /// and so its media behind NAT, comes from.
    pub peer: SocketAddr,
    /// The `o=` session id of our SDP offer: our answers to the phone's re-offers keep it.
    pub session_id: u64,
}

/// How ringing ended.
#[derive(Debug)]
pub enum RingOutcome {
    /// 200 OK: the agent's media address from its SDP answer.
    Answered { offer: Offer },
    /// A final failure response, or the INVITE timed out.
    Failed { status: u16 },
}

/// Sends the INVITE from our advertised address; the RTP socket is bound by the caller.
pub fn dial(
    dialogs: &Arc<DialogLayer>,
    local_sip: SocketAddr,
    d: &Dial,
    socket: UdpSocket,
    local: SocketAddr,
) -> Result<Ringing, DialError> {
    dial_with(dialogs, local_sip, d, socket, local, Direction::SendRecv)
}

/// [`dial`] with the media direction of our offer, from our side (`SendOnly`: we only send).
pub fn dial_with(
    dialogs: &Arc<DialogLayer>,
    local_sip: SocketAddr,
    d: &Dial,
    socket: UdpSocket,
    local: SocketAddr,
    direction: Direction,
) -> Result<Ringing, DialError> {
    let callee = Uri::try_from(d.contact.as_str()).map_err(|_| DialError::Contact {
        agent: d.agent.clone(),
        contact: d.contact.clone(),
    })?;
    let caller_user: String = d
        .caller
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "+*#".contains(*c))
        .take(32)
        .collect();
    let caller_user = if caller_user.is_empty() {
        "anonymous".to_string()
    } else {
        caller_user
    };
    let caller =
        Uri::try_from(format!("sip:{caller_user}@{local_sip}").as_str()).map_err(|_| {
            DialError::Contact {
                agent: d.agent.clone(),
                contact: d.contact.clone(),
            }
        })?;
    let (destination, contact) = d.route(local_sip);
    let contact = Uri::try_from(contact.as_str()).map_err(|_| DialError::Contact {
        agent: d.agent.clone(),
        contact: d.contact.clone(),
    })?;
    let offer = Offer {
        remote: None,
        codec: d.codec,
        dtmf_pt: Some(101),
        // `sdp::answer` writes the reverse of the offer it answers: reverse ours for it.
        direction: direction.answer(),
        // RTCP on our RTP port + 1 (no rtcp-mux offered: every phone takes this).
        rtcp: sdp::Rtcp::NextPort,
        ptime: None,
    };
    let session_id: u64 = rand::random::<u32>().into();
    let body = sdp::answer(local, &offer, session_id, 1);
    let opt = InviteOption {
        caller,
        callee,
        destination: Some(destination),
        content_type: Some("application/sdp".into()),
        offer: Some(body),
        contact,
        ..Default::default()
    };
    let (state_tx, states) = dialogs.new_dialog_state_channel();
    let (dialog, result) =
        dialogs
            .do_invite_async(opt, state_tx)
            .map_err(|e| DialError::Invite {
                agent: d.agent.clone(),
                source: Box::new(e),
            })?;
    Ok(Ringing {
        agent: d.agent.clone(),
        dialog,
        result,
        states,
        socket,
        local,
        peer: d.via,
        session_id,
    })
}

impl Ringing {
    /// Waits for the INVITE's final response, up to `limit` (then CANCELs).
    pub async fn wait(&mut self, limit: Duration) -> RingOutcome {
        let outcome = tokio::time::timeout(limit, &mut self.result).await;
        match outcome {
            Ok(Ok(Ok((_, Some(resp)))))
                if resp.status_code.kind() == StatusCodeKind::Successful =>
            {
                match sdp::parse_offer(&resp.body) {
                    Ok(offer) => RingOutcome::Answered { offer },
                    Err(e) => {
                        debug!(agent = %self.agent, error = %e, "agent answered without usable SDP");
                        if let Err(e) = self.dialog.bye().await {
                            debug!(error = %e, "cannot send a BYE");
                        }
                        RingOutcome::Failed { status: 488 }
                    }
                }
            }
            Ok(Ok(Ok((_, Some(resp))))) => RingOutcome::Failed {
                status: u16::from(resp.status_code),
            },
            Ok(Ok(Ok((_, None)))) => RingOutcome::Failed { status: 408 },
            Ok(Ok(Err(e))) => {
                debug!(agent = %self.agent, error = %e, "agent INVITE failed");
                RingOutcome::Failed { status: 503 }
            }
            Ok(Err(e)) => {
                debug!(agent = %self.agent, error = %e, "agent INVITE task failed");
                RingOutcome::Failed { status: 500 }
            }
            Err(_) => {
                self.cancel().await;
                RingOutcome::Failed { status: 408 }
            }
        }
    }

    /// CANCELs the INVITE (a 2xx that crosses it is ended with a BYE by the stack).
    pub async fn cancel(&self) {
        if let Err(e) = self.dialog.cancel().await {
            debug!(agent = %self.agent, error = %e, "CANCEL to agent failed");
        }
    }
}

/// Waits until the dialog ends; returns true when the agent hung up.
pub async fn wait_end(states: &mut DialogStateReceiver) -> bool {
    while let Some(st) = states.recv().await {
        if let DialogState::Terminated(_, reason) = st {
            return matches!(reason, TerminatedReason::UasBye);
        }
    }
    false
}

/// What the agent's phone did in the bridged dialog that the call must act on.
pub enum Signal {
    /// The dialog ended; `hung_up` when the agent hung up.
    Ended { hung_up: bool },
    /// A re-INVITE (or UPDATE): a new offer to answer through `handle` (hold, resume, a
    /// new media address).
    Reoffer {
        req: Box<Request>,
        handle: TransactionHandle,
    },
}

/// Waits for the next [`Signal`] of an answered agent leg; other in-dialog requests are
/// answered on the way (INFO, OPTIONS, NOTIFY: 200; REFER, MESSAGE: 501, not taken here).
pub async fn next_signal(states: &mut DialogStateReceiver) -> Signal {
    while let Some(st) = states.recv().await {
        match st {
            DialogState::Terminated(_, reason) => {
                return Signal::Ended {
                    hung_up: matches!(reason, TerminatedReason::UasBye),
                }
            }
            DialogState::Updated(_, req, handle) => {
                return Signal::Reoffer {
                    req: Box::new(req),
                    handle,
                }
            }
            DialogState::Info(_, _, h)
            | DialogState::Options(_, _, h)
            | DialogState::Notify(_, _, h) => reply(&h, StatusCode::OK).await,
            DialogState::Refer(_, _, h) | DialogState::Message(_, _, h) => {
                reply(&h, StatusCode::NotImplemented).await
            }
            _ => {}
        }
    }
    Signal::Ended { hung_up: false }
}

async fn reply(handle: &TransactionHandle, status: StatusCode) {
    if let Err(e) = handle.reply(status).await {
        debug!(error = %e, "cannot answer a request in the agent's dialog");
    }
}
