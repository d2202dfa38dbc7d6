//! The demo's carrier: a SIP trunk that knows the main nodes' addresses. Each caller's INVITE
//! goes to the first main node; a `302` is followed to the node its Contact names (at most
//! three times), a `5xx`, a `408` or silence moves on to the next main node, anything else
//! ends the attempt. Once answered, the caller talks (its voice is a tone) until it has stayed
//! as long as it meant to, or the node hangs up (the agent did).
//!
//! [`Route`] is the trunk's rule and has no I/O; [`Carrier`] carries it out on rsipstack.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rsipstack::dialog::invitation::InviteOption;
use rsipstack::sip::{HeadersExt as _, Response, StatusCodeKind};
use rsipstack::transport::SipAddr;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::events::Events;
use super::media::{self, Heard, Leg, Voice};
use super::sip::{self, End, Ua};
use super::traffic::Arrival;
use crate::media::sdp::{self, Codec, Direction, Offer};

/// 302s followed for one call before the carrier gives up on the redirecting node.
pub const MAX_REDIRECTS: u32 = 3;
/// How long an INVITE waits for its final response before the next node is tried (nodes
/// answer at once: a queue call is answered and then waits with music).
const ANSWER_WAIT: Duration = Duration::from_secs(4);
/// The callers' voice: 440 Hz, speaking 1.2 s of every 2.6 s.
pub const CALLER_VOICE: Voice = Voice {
    freq: 440.0,
    on_ms: 1_200,
    off_ms: 1_400,
    offset_ms: 0,
};

/// How one INVITE ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx.
    Answered,
    /// 3xx, with the Contact URI it named (if any).
    Redirect(Option<String>),
    /// 5xx, 408, no answer in time, or the request could not be sent: try elsewhere.
    Unavailable(u16),
    /// Any other final response (4xx, 6xx): the call is refused.
    Refused(u16),
}

impl Outcome {
    /// Classifies a final response.
    pub fn of(status: u16, contact: Option<String>) -> Outcome {
        match status {
            200..=299 => Outcome::Answered,
            300..=399 => Outcome::Redirect(contact),
            408 | 500..=599 => Outcome::Unavailable(status),
            _ => Outcome::Refused(status),
        }
    }
}

/// Where to send one INVITE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The Request-URI.
    pub uri: String,
    /// The address the INVITE goes to.
    pub dest: SocketAddr,
    /// Whether this target came from a 302.
    pub redirected: bool,
}

/// What the carrier does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Try(Target),
    Talk,
    GiveUp(String),
}

/// One call's way through the cluster.
#[derive(Debug, Clone)]
pub struct Route {
    mains: Vec<SocketAddr>,
    service: String,
    next_main: usize,
    redirects: u32,
}

impl Route {
    pub fn new(mains: Vec<SocketAddr>, service: &str) -> Route {
        Route {
            mains,
            service: service.to_owned(),
            next_main: 0,
            redirects: 0,
        }
    }

    /// The first INVITE: to the first main node.
    pub fn start(&mut self) -> Step {
        self.next_main()
    }

    /// What to do after an INVITE ended with `outcome`.
    pub fn after(&mut self, outcome: &Outcome) -> Step {
        match outcome {
            Outcome::Answered => Step::Talk,
            Outcome::Redirect(Some(contact)) if self.redirects < MAX_REDIRECTS => {
                match contact_target(contact) {
                    Some(target) => {
                        self.redirects += 1;
                        Step::Try(target)
                    }
                    None => self.next_main(),
                }
            }
            Outcome::Redirect(_) | Outcome::Unavailable(_) => self.next_main(),
            Outcome::Refused(status) => Step::GiveUp(format!("refused with {status}")),
        }
    }

    fn next_main(&mut self) -> Step {
        match self.mains.get(self.next_main) {
            Some(&dest) => {
                self.next_main += 1;
                Step::Try(Target {
                    uri: format!("sip:{}@{dest}", self.service),
                    dest,
                    redirected: false,
                })
            }
            None => Step::GiveUp("no node took the call".to_owned()),
        }
    }
}

/// The target a 302's Contact URI names: the URI as it is (its marker parameter tells the
/// node the call was redirected), sent to its host and port.
fn contact_target(contact: &str) -> Option<Target> {
    let uri = rsipstack::sip::Uri::try_from(contact).ok()?;
    let dest = SocketAddr::try_from(uri.host_with_port.clone()).ok()?;
    Some(Target {
        uri: uri.to_string(),
        dest,
        redirected: true,
    })
}

/// The carrier's SIP agent and what it needs to place calls.
pub struct Carrier {
    ua: Ua,
    mains: Vec<SocketAddr>,
    events: Events,
}

impl Carrier {
    pub fn new(ua: Ua, mains: Vec<SocketAddr>, events: Events) -> Arc<Carrier> {
        Arc::new(Carrier { ua, mains, events })
    }

    /// Places one caller's call and follows it to its end (or until `stop`).
    pub async fn call(&self, a: Arrival, stop: CancellationToken) {
        let call_id = format!("demo-{}-{}", a.index, callfleet_web::auth::random_hex(4));
        let socket = match UdpSocket::bind(SocketAddr::new(self.ua.addr.ip(), 0)).await {
            Ok(s) => s,
            Err(e) => {
                self.events
                    .line(format!("call {}: no RTP port: {e}", a.index));
                return;
            }
        };
        let local = socket.local_addr().unwrap_or(self.ua.addr);
        let mut route = Route::new(self.mains.clone(), a.queue);
        let mut step = route.start();
        let mut path = Vec::new();
        for _ in 0..(MAX_REDIRECTS as usize + self.mains.len() + 1) {
            let target = match step {
                Step::Try(t) => t,
                Step::Talk | Step::GiveUp(_) => break,
            };
            let (outcome, answered) = self.invite(&a, &call_id, &target, local).await;
            path.push(format!(
                "{} {}",
                self.events.node_name(target.dest),
                status_text(&outcome)
            ));
            step = route.after(&outcome);
            if let (Step::Talk, Some((dialog, states, answer))) = (&step, answered) {
                self.events.stats.answered(target.redirected);
                self.events.line(format!(
                    "call {} from {} to {}: {} — answered",
                    a.index,
                    a.caller,
                    a.queue,
                    path.join(", then ")
                ));
                let leg = Leg {
                    socket,
                    remote: answer.remote,
                    codec: answer.codec,
                    voice: CALLER_VOICE,
                };
                self.talk(&a, dialog, states, leg, stop).await;
                return;
            }
        }
        self.events.stats.failed();
        let why = match step {
            Step::GiveUp(why) => why,
            _ => "too many redirects".to_owned(),
        };
        self.events.line(format!(
            "call {} from {} to {}: {} — not answered: {why}",
            a.index,
            a.caller,
            a.queue,
            path.join(", then ")
        ));
    }

    /// One INVITE to `target`; on a 2xx, the dialog, its states and the node's SDP answer.
    async fn invite(
        &self,
        a: &Arrival,
        call_id: &str,
        target: &Target,
        local: SocketAddr,
    ) -> (Outcome, Option<Answered>) {
        let opt = match self.invite_option(a, call_id, target, local) {
            Ok(o) => o,
            Err(e) => {
                self.events.line(format!("call {}: {e:#}", a.index));
                return (Outcome::Refused(0), None);
            }
        };
        let (state_tx, states) = self.ua.dialogs.new_dialog_state_channel();
        let sent = tokio::time::timeout(ANSWER_WAIT, self.ua.dialogs.do_invite(opt, state_tx));
        let (dialog, resp) = match sent.await {
            Ok(Ok((dialog, Some(resp)))) => (dialog, resp),
            Ok(Ok((_, None))) | Err(_) => return (Outcome::Unavailable(408), None),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "carrier INVITE failed");
                return (Outcome::Unavailable(503), None);
            }
        };
        let status = u16::from(resp.status_code.clone());
        let outcome = Outcome::of(status, redirect_contact(&resp));
        if resp.status_code.kind() != StatusCodeKind::Successful {
            return (outcome, None);
        }
        match sdp::parse_offer(&resp.body) {
            Ok(answer) => (outcome, Some((dialog, states, answer))),
            Err(e) => {
                self.events
                    .line(format!("call {}: the node's SDP answer: {e}", a.index));
                sip::hang_up(&dialog).await;
                (Outcome::Refused(488), None)
            }
        }
    }

    fn invite_option(
        &self,
        a: &Arrival,
        call_id: &str,
        target: &Target,
        local: SocketAddr,
    ) -> anyhow::Result<InviteOption> {
        let offer = Offer {
            remote: None,
            codec: Codec::Pcmu,
            dtmf_pt: Some(101),
            // `sdp::answer` writes the reverse of the offer it answers: sendrecv both ways.
            direction: Direction::SendRecv,
            rtcp: crate::media::sdp::Rtcp::NextPort,
            ptime: None,
        };
        Ok(InviteOption {
            caller: self.ua.uri(&a.caller)?,
            callee: sip::uri(&target.uri)?,
            destination: Some(SipAddr {
                r#type: None,
                addr: target.dest.into(),
            }),
            content_type: Some("application/sdp".into()),
            offer: Some(sdp::answer(local, &offer, rand::random::<u32>().into(), 1)),
            contact: self.ua.uri(&a.caller)?,
            call_id: Some(call_id.to_owned()),
            ..Default::default()
        })
    }

    /// The conversation: the caller's voice until it has stayed `a.stay`, the node hangs up,
    /// or the demo stops.
    async fn talk(
        &self,
        a: &Arrival,
        dialog: rsipstack::dialog::invite_dialog::InviteDialog,
        mut states: rsipstack::dialog::dialog::DialogStateReceiver,
        leg: Leg,
        stop: CancellationToken,
    ) {
        let media_stop = CancellationToken::new();
        let heard = Arc::new(Mutex::new(Heard::new(&[])));
        let media = tokio::spawn(media::run(leg, heard.clone(), a.stay, media_stop.clone()));
        let started = tokio::time::Instant::now();
        let end = tokio::select! {
            end = sip::next_end(&mut states, false) => end,
            _ = tokio::time::sleep(a.stay) => End::Local,
            _ = stop.cancelled() => End::Local,
        };
        media_stop.cancel();
        if end == End::Local {
            sip::hang_up(&dialog).await;
        }
        self.ua.dialogs.remove_dialog(&dialog.id());
        // The media task ends at the token; a panic in it would only lose the count.
        let _ = media.await;
        let heard = heard.lock().map_or(0, |h| h.packets);
        let who = match end {
            End::Local => "the caller hung up",
            End::Remote => "the node hung up",
            End::Other => "the call broke off",
        };
        self.events.line(format!(
            "call {} ended after {} s: {who} ({heard} RTP packets received)",
            a.index,
            started.elapsed().as_secs()
        ));
    }
}

/// An answered INVITE: its dialog, its states and the node's SDP answer.
type Answered = (
    rsipstack::dialog::invite_dialog::InviteDialog,
    rsipstack::dialog::dialog::DialogStateReceiver,
    Offer,
);

/// The first Contact URI of a 3xx.
fn redirect_contact(resp: &Response) -> Option<String> {
    let contacts = resp.typed_contact_headers().ok()?;
    contacts.first().map(|c| c.uri.to_string())
}

fn status_text(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Answered => "200".to_owned(),
        Outcome::Redirect(_) => "302".to_owned(),
        Outcome::Unavailable(408) => "no answer".to_owned(),
        Outcome::Unavailable(s) | Outcome::Refused(s) => s.to_string(),
    }
}

#[cfg(test)]
mod tests;
