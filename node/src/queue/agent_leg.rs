//! The outbound leg to an agent's phone: an INVITE (through rsipstack's client dialog) with our
//! SDP offer in the caller's codec, so the bridge relays packets without transcoding; then
//! ringing until answer, failure, ring timeout or CANCEL.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::dialog::{
    DialogState, DialogStateReceiver, TerminatedReason, TransactionHandle,
};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::{InviteAsyncResult, InviteOption};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, Request, StatusCode, StatusCodeKind, Uri};
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
    /// The transport the phone registered over, which it is rung on ([`RingOver::for_binding`]).
    pub over: RingOver,
}

/// How a phone is rung: on the transport it registered over (RFC 3261 §18.1.1; a phone behind
/// NAT or a firewall is reachable only on the flow it opened, RFC 5626 practice).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingOver {
    /// A UDP datagram to the address the registration came from.
    Udp,
    /// The phone's own TCP connection (the one it registered on, found by rsipstack by the
    /// peer's address, `sip::stream`), with `;transport=tcp` in our Contact.
    Tcp,
    /// The phone's own TLS connection (`sip::tls`), with our SIP-over-TLS address in Contact.
    Tls(SocketAddr),
}

impl RingOver {
    /// How to ring a binding whose registration came over `transport` (as the registrar stores
    /// it, lower case) from `via`; `None` when it registered over TCP and its connection is not
    /// open on this node (closed, or another node's): it cannot be rung from here. A TLS
    /// binding is rung over TLS only when this node serves SIP over TLS; anything not TCP or
    /// TLS goes over UDP.
    pub fn for_binding(
        cfg: &crate::config::Config,
        transport: &str,
        via: SocketAddr,
    ) -> Option<Self> {
        if transport.eq_ignore_ascii_case("tcp") {
            return crate::sip::stream::connected(cfg.sip_advertise(), via)
                .then_some(RingOver::Tcp);
        }
        Some(match crate::sip::tls::ring_over_tls(cfg, transport) {
            Some(tls) => RingOver::Tls(tls),
            None => RingOver::Udp,
        })
    }
}

impl Dial {
    /// Where the INVITE goes, and our Contact.
    fn route(&self, local_sip: SocketAddr) -> (SipAddr, String) {
        use rsipstack::sip::Transport;
        let (transport, contact) = match self.over {
            RingOver::Tls(tls) => (
                Some(Transport::Tls),
                format!("sip:callfleet@{tls};transport=tls"),
            ),
            // TCP listens on `sip.listen` with UDP: the same advertised address.
            RingOver::Tcp => (
                Some(Transport::Tcp),
                format!("sip:callfleet@{local_sip};transport=tcp"),
            ),
            RingOver::Udp => (None, format!("sip:callfleet@{local_sip}")),
        };
        (
            SipAddr {
                r#type: transport,
                addr: self.via.into(),
            },
            contact,
        )
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
    invite(
        dialogs,
        local_sip,
        d,
        (socket, local),
        direction,
        None,
        None,
    )
}

/// [`dial`] with this Call-ID and extra headers (another node's INVITE with Replaces).
pub fn dial_replacing(
    dialogs: &Arc<DialogLayer>,
    local_sip: SocketAddr,
    d: &Dial,
    (socket, local): (UdpSocket, SocketAddr),
    call_id: String,
    headers: Vec<Header>,
) -> Result<Ringing, DialError> {
    let extra = Some((call_id, headers));
    let media = (socket, local);
    invite(
        dialogs,
        local_sip,
        d,
        media,
        Direction::SendRecv,
        None,
        extra,
    )
}

/// [`dial`] to a peer that may challenge the INVITE (401 or 407): rsipstack answers the
/// challenge once with `credential` (the outbound trunk).
pub fn dial_authenticated(
    dialogs: &Arc<DialogLayer>,
    local_sip: SocketAddr,
    d: &Dial,
    socket: UdpSocket,
    local: SocketAddr,
    credential: Option<Credential>,
) -> Result<Ringing, DialError> {
    invite(
        dialogs,
        local_sip,
        d,
        (socket, local),
        Direction::SendRecv,
        credential,
        None,
    )
}

fn invite(
    dialogs: &Arc<DialogLayer>,
    local_sip: SocketAddr,
    d: &Dial,
    (socket, local): (UdpSocket, SocketAddr),
    direction: Direction,
    credential: Option<Credential>,
    extra: Option<(String, Vec<Header>)>,
) -> Result<Ringing, DialError> {
    let (caller, callee, destination, contact) = addresses(d, local_sip)?;
    let session_id: u64 = rand::random::<u32>().into();
    let body = our_offer(d.codec, local, direction, session_id);
    let (call_id, headers) = extra.unzip();
    let opt = InviteOption {
        caller,
        callee,
        destination: Some(destination),
        content_type: Some("application/sdp".into()),
        offer: Some(body),
        contact,
        credential,
        call_id,
        headers,
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

/// The INVITE's From (the caller's number, made safe, at our address), its Request-URI (the
/// phone's contact), where it goes and our Contact.
fn addresses(d: &Dial, local_sip: SocketAddr) -> Result<(Uri, Uri, SipAddr, Uri), DialError> {
    let bad = || DialError::Contact {
        agent: d.agent.clone(),
        contact: d.contact.clone(),
    };
    let callee = Uri::try_from(d.contact.as_str()).map_err(|_| bad())?;
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
        Uri::try_from(format!("sip:{caller_user}@{local_sip}").as_str()).map_err(|_| bad())?;
    let (destination, contact) = d.route(local_sip);
    let contact = Uri::try_from(contact.as_str()).map_err(|_| bad())?;
    Ok((caller, callee, destination, contact))
}

/// Our SDP offer from `local` in `codec`, sending in `direction`.
fn our_offer(codec: Codec, local: SocketAddr, direction: Direction, session_id: u64) -> Vec<u8> {
    let offer = Offer {
        remote: None,
        codec,
        dtmf_pt: Some(101),
        // `sdp::answer` writes the reverse of the offer it answers: reverse ours for it.
        direction: direction.answer(),
        // RTCP on our RTP port + 1 (no rtcp-mux offered: every phone takes this).
        rtcp: sdp::Rtcp::NextPort,
        ptime: None,
    };
    sdp::answer(local, &offer, session_id, 1)
}

/// How far an INVITE got, for a caller that relays it ([`Ringing::progress`]).
#[derive(Debug)]
pub enum Progress {
    /// A provisional response (180, 183) with this status.
    Early(u16),
    /// The final outcome.
    Final(RingOutcome),
}

impl Ringing {
    /// Waits for the INVITE's final response, up to `limit` (then CANCELs).
    pub async fn wait(&mut self, limit: Duration) -> RingOutcome {
        settle(&self.agent, &self.dialog, &mut self.result, limit).await
    }

    /// Waits for the INVITE's next provisional response or its final outcome, until `until`
    /// (then CANCELs: 408). Cancel-safe: dropped, the INVITE goes on.
    pub async fn progress(&mut self, until: tokio::time::Instant) -> Progress {
        let limit = until.saturating_duration_since(tokio::time::Instant::now());
        let settled = settle(&self.agent, &self.dialog, &mut self.result, limit);
        tokio::pin!(settled);
        let mut open = true;
        loop {
            tokio::select! {
                outcome = &mut settled => return Progress::Final(outcome),
                st = self.states.recv(), if open => match st {
                    Some(DialogState::Early(_, resp)) => {
                        return Progress::Early(u16::from(resp.status_code))
                    }
                    Some(_) => {}
                    None => open = false,
                },
            }
        }
    }

    /// CANCELs the INVITE (a 2xx that crosses it is ended with a BYE by the stack).
    pub async fn cancel(&self) {
        cancel(&self.agent, &self.dialog).await;
    }
}

/// The INVITE's final response, up to `limit` (then CANCELs).
async fn settle(
    agent: &str,
    dialog: &InviteDialog,
    result: &mut tokio::task::JoinHandle<InviteAsyncResult>,
    limit: Duration,
) -> RingOutcome {
    let outcome = tokio::time::timeout(limit, result).await;
    match outcome {
        Ok(Ok(Ok((_, Some(resp))))) if resp.status_code.kind() == StatusCodeKind::Successful => {
            match sdp::parse_offer(&resp.body) {
                Ok(offer) => RingOutcome::Answered { offer },
                Err(e) => {
                    debug!(agent, error = %e, "agent answered without usable SDP");
                    if let Err(e) = dialog.bye().await {
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
            debug!(agent, error = %e, "agent INVITE failed");
            RingOutcome::Failed { status: 503 }
        }
        Ok(Err(e)) => {
            debug!(agent, error = %e, "agent INVITE task failed");
            RingOutcome::Failed { status: 500 }
        }
        Err(_) => {
            cancel(agent, dialog).await;
            RingOutcome::Failed { status: 408 }
        }
    }
}

async fn cancel(agent: &str, dialog: &InviteDialog) {
    if let Err(e) = dialog.cancel().await {
        debug!(agent, error = %e, "CANCEL to agent failed");
    }
}

/// Where an answered leg's media goes: the answer's address and codec, sending at once,
/// media expected from the IP of `peer` (where the INVITE went).
pub fn answered_target(answer: &Offer, peer: SocketAddr) -> crate::media::session::Target {
    crate::media::session::Target {
        remote: answer.remote,
        codec: answer.codec,
        send: true,
        dtmf_pt: answer.dtmf_pt,
        signal_ip: Some(peer.ip()),
        rtcp: answer.rtcp,
        packet_ms: answer.packet_ms(),
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
    /// A REFER: the phone transfers the call (`super::transfer` answers it through `handle`).
    Refer {
        req: Box<Request>,
        handle: TransactionHandle,
    },
}

/// Waits for the next [`Signal`] of an answered agent leg; other in-dialog requests are
/// answered on the way (INFO, OPTIONS, NOTIFY: 200; MESSAGE: 501, not taken here).
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
            DialogState::Refer(_, req, handle) => {
                return Signal::Refer {
                    req: Box::new(req),
                    handle,
                }
            }
            DialogState::Message(_, _, h) => reply(&h, StatusCode::NotImplemented).await,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn dial(over: RingOver) -> Dial {
        Dial {
            agent: "1001".into(),
            contact: "sip:2001@192.0.2.7:5060;transport=tcp".into(),
            via: "192.0.2.7:40312".parse().expect("addr"),
            codec: Codec::Pcmu,
            caller: "555".into(),
            over,
        }
    }

    #[test]
    fn each_transport_rings_on_its_own_flow_with_a_contact_that_names_it() {
        use rsipstack::sip::Transport;
        let local: SocketAddr = "198.51.100.1:5060".parse().expect("addr");
        let tls: SocketAddr = "198.51.100.1:5061".parse().expect("addr");
        let cases = [
            (RingOver::Udp, None, "sip:callfleet@198.51.100.1:5060"),
            (
                RingOver::Tcp,
                Some(Transport::Tcp),
                "sip:callfleet@198.51.100.1:5060;transport=tcp",
            ),
            (
                RingOver::Tls(tls),
                Some(Transport::Tls),
                "sip:callfleet@198.51.100.1:5061;transport=tls",
            ),
        ];
        for (over, transport, contact) in cases {
            let (dest, ours) = dial(over).route(local);
            assert_eq!(dest.r#type, transport, "{over:?}");
            // Always the address the registration came from: for TCP and TLS the key of the
            // phone's connection in rsipstack's transport layer.
            assert_eq!(
                dest.get_socketaddr().expect("ip"),
                "192.0.2.7:40312".parse().expect("addr")
            );
            assert_eq!(ours, contact, "{over:?}");
        }
    }
}
