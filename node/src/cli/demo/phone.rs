//! A simulated phone: registers with one node using its digest credentials (rsipstack answers
//! `401` and `407` challenges alike, MD5 or SHA-256) and stays registered; rings when a node
//! calls it, answers, sends its owner's voice (a tone) and hangs up as the traffic plan says.
//! An agent's phone takes one call at a time; the supervisor's phone answers listen-in calls and
//! reports whose voices it hears in them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::registration::Registration;
use rsipstack::sip::{Method, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transaction::TransactionReceiver;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::events::Events;
use super::media::{self, Heard, Leg, Voice};
use super::sip::{self, End, Ua};
use super::traffic;
use crate::media::sdp;

/// Registration time asked for (the nodes' minimum is 60 s); renewed at half of it.
const EXPIRES: u32 = 120;
/// The longest a supervisor's phone stays in one listen-in call.
const LISTEN_LIMIT: Duration = Duration::from_secs(600);
/// How long after answering a listen-in the supervisor's phone reports what it hears.
const LISTEN_REPORT: Duration = Duration::from_secs(3);

/// What a phone's owner does with a call.
pub enum Role {
    /// An agent: rings and talks as the plan says, one call at a time.
    Agent {
        name: String,
        plan: Box<Mutex<traffic::Agent>>,
        voice: Voice,
    },
    /// The supervisor: answers at once, listens, never hangs up first; names the voices
    /// (`(freq, whose)`) it hears.
    Supervisor { voices: Vec<(f32, String)> },
}

/// One phone.
pub struct Phone {
    pub ext: String,
    password: String,
    /// The node it registers with.
    registrar: SocketAddr,
    role: Role,
    ua: Ua,
    calls: AtomicU32,
    events: Events,
}

impl Phone {
    /// Binds the phone's SIP address; the phone does nothing until [`Phone::run`].
    pub async fn start(
        addr: SocketAddr,
        ext: &str,
        password: &str,
        registrar: SocketAddr,
        role: Role,
        events: Events,
    ) -> anyhow::Result<(Arc<Phone>, TransactionReceiver)> {
        let (ua, incoming) = Ua::start(addr, &format!("phone {ext}")).await?;
        let phone = Phone {
            ext: ext.to_owned(),
            password: password.to_owned(),
            registrar,
            role,
            ua,
            calls: AtomicU32::new(0),
            events,
        };
        Ok((Arc::new(phone), incoming))
    }

    /// Registers and answers calls until `stop`, then unregisters; calls in progress are
    /// hung up by their own tasks (on `tasks`).
    pub async fn run(
        self: Arc<Self>,
        mut incoming: TransactionReceiver,
        tasks: TaskTracker,
        stop: CancellationToken,
    ) {
        tasks.spawn(self.clone().keep_registered(stop.clone()));
        loop {
            let tx = tokio::select! {
                tx = incoming.recv() => tx,
                _ = stop.cancelled() => None,
            };
            let Some(tx) = tx else { break };
            tasks.spawn(self.clone().handle(tx, stop.clone()));
        }
    }

    async fn keep_registered(self: Arc<Self>, stop: CancellationToken) {
        let credential = Credential {
            username: self.ext.clone(),
            password: self.password.clone(),
            realm: None,
            auth_username: None,
        };
        let mut reg = Registration::new(self.ua.endpoint.clone(), Some(credential));
        let server = match sip::uri(&format!("sip:{}", self.registrar)) {
            Ok(u) => u,
            Err(e) => {
                self.events.line(format!("phone {}: {e:#}", self.ext));
                return;
            }
        };
        let node = self.events.node_name(self.registrar);
        let mut registered = false;
        loop {
            let sent = tokio::time::timeout(
                Duration::from_secs(5),
                reg.register(server.clone(), Some(EXPIRES)),
            );
            let wait = match sent.await {
                Ok(Ok(resp)) if resp.status_code == StatusCode::OK => {
                    if !registered {
                        self.events
                            .line(format!("phone {} registered with {node}", self.ext));
                    }
                    registered = true;
                    Duration::from_secs(u64::from(EXPIRES / 2))
                }
                Ok(Ok(resp)) => {
                    registered = false;
                    self.events.line(format!(
                        "phone {}: {node} answered the REGISTER with {}",
                        self.ext, resp.status_code
                    ));
                    Duration::from_secs(3)
                }
                // The node is not up yet, or did not answer: try again soon.
                Ok(Err(_)) | Err(_) => Duration::from_millis(500),
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => break,
            }
        }
        if registered {
            let bye = tokio::time::timeout(Duration::from_secs(2), reg.register(server, Some(0)));
            if !matches!(bye.await, Ok(Ok(_))) {
                tracing::debug!(phone = %self.ext, "un-REGISTER not answered");
            }
        }
    }

    async fn handle(self: Arc<Self>, mut tx: Transaction, stop: CancellationToken) {
        if let Some(mut dialog) = self.ua.dialogs.match_dialog(&tx) {
            if let Err(e) = dialog.handle(&mut tx).await {
                tracing::debug!(error = %e, "in-dialog request failed");
            }
            return;
        }
        let in_dialog = crate::sip::front::has_to_tag(&tx.original);
        let reply = match tx.original.method {
            Method::Invite if !in_dialog => return self.ring(tx, stop).await,
            Method::Ack => return,
            Method::Options => StatusCode::OK,
            Method::Invite | Method::Bye | Method::Cancel => {
                StatusCode::CallTransactionDoesNotExist
            }
            _ => StatusCode::MethodNotAllowed,
        };
        if let Err(e) = tx.reply(reply).await {
            tracing::debug!(error = %e, "reply failed");
        }
    }

    /// A call to this phone: ring, answer, talk (or listen), hang up.
    async fn ring(&self, mut tx: Transaction, stop: CancellationToken) {
        let most = match self.role {
            Role::Agent { .. } => 1,
            Role::Supervisor { .. } => 4,
        };
        if self.calls.fetch_add(1, Ordering::SeqCst) >= most {
            self.calls.fetch_sub(1, Ordering::SeqCst);
            if let Err(e) = tx.reply(StatusCode::BusyHere).await {
                tracing::debug!(error = %e, "486 failed");
            }
            return;
        }
        self.answer(tx, stop).await;
        self.calls.fetch_sub(1, Ordering::SeqCst);
    }

    async fn answer(&self, mut tx: Transaction, stop: CancellationToken) {
        let offer = match sdp::parse_offer(tx.original.body()) {
            Ok(o) => o,
            Err(e) => {
                self.events
                    .line(format!("phone {}: refused an INVITE: {e}", self.ext));
                let _ = tx.reply(StatusCode::NotAcceptableHere).await;
                return;
            }
        };
        let bound = UdpSocket::bind(SocketAddr::new(self.ua.addr.ip(), 0)).await;
        let Ok((socket, local)) = bound.and_then(|s| s.local_addr().map(|a| (s, a))) else {
            let _ = tx.reply(StatusCode::ServiceUnavailable).await;
            return;
        };
        let (state_tx, mut states) = self.ua.dialogs.new_dialog_state_channel();
        let contact = self.ua.uri(&self.ext).ok();
        let dialog = match self
            .ua
            .dialogs
            .get_or_create_server_invite(&tx, state_tx, None, contact)
        {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!(error = %e, "cannot make the dialog");
                let _ = tx.reply(StatusCode::ServerInternalError).await;
                return;
            }
        };
        let mut runner = dialog.clone();
        tokio::spawn(async move {
            if let Err(e) = runner.handle(&mut tx).await {
                tracing::debug!(error = %e, "INVITE transaction ended with an error");
            }
        });
        let (ring, talk, voice) = self.plan();
        let _ = dialog.ringing(None, None);
        let rang = tokio::select! {
            _ = tokio::time::sleep(ring) => None,
            end = sip::next_end(&mut states, true) => Some(end),
            _ = stop.cancelled() => Some(End::Local),
        };
        if let Some(end) = rang {
            if end == End::Local {
                let _ = dialog.reject(Some(StatusCode::BusyHere), None);
            }
            self.ua.dialogs.remove_dialog(&dialog.id());
            let why = match end {
                End::Remote => "the node cancelled it (answered elsewhere, or the caller left)",
                End::Local => "the demo is stopping",
                End::Other => "the call broke off",
            };
            self.events
                .line(format!("phone {}: stopped ringing: {why}", self.ext));
            return;
        }
        let body = sdp::answer(local, &offer, rand::random::<u32>().into(), 1);
        if let Err(e) = dialog.accept(Some(sip::sdp_type()), Some(body)) {
            tracing::debug!(error = %e, "200 OK failed");
            self.ua.dialogs.remove_dialog(&dialog.id());
            return;
        }
        let leg = Leg {
            socket,
            remote: offer.remote,
            codec: offer.codec,
            voice,
        };
        self.converse(&dialog, &mut states, leg, talk, stop).await;
        self.ua.dialogs.remove_dialog(&dialog.id());
    }

    /// (ringing, talking, voice) for this call.
    fn plan(&self) -> (Duration, Duration, Voice) {
        match &self.role {
            Role::Agent { plan, voice, .. } => {
                let p = plan.lock().unwrap_or_else(|e| e.into_inner()).next_call();
                (p.ring, p.talk, *voice)
            }
            Role::Supervisor { .. } => (Duration::from_millis(500), LISTEN_LIMIT, Voice::SILENT),
        }
    }

    async fn converse(
        &self,
        dialog: &rsipstack::dialog::invite_dialog::InviteDialog,
        states: &mut rsipstack::dialog::dialog::DialogStateReceiver,
        leg: Leg,
        talk: Duration,
        stop: CancellationToken,
    ) {
        let listen: Vec<f32> = match &self.role {
            Role::Supervisor { voices } => voices.iter().map(|(f, _)| *f).collect(),
            Role::Agent { .. } => vec![],
        };
        self.opening_line();
        let heard = Arc::new(Mutex::new(Heard::new(&listen)));
        let media_stop = CancellationToken::new();
        let media = tokio::spawn(media::run(leg, heard.clone(), talk, media_stop.clone()));
        let started = tokio::time::Instant::now();
        let report = tokio::time::sleep(LISTEN_REPORT);
        tokio::pin!(report);
        let mut reported = !matches!(self.role, Role::Supervisor { .. });
        let end = loop {
            tokio::select! {
                end = sip::next_end(states, true) => break end,
                _ = tokio::time::sleep(talk) => break End::Local,
                _ = stop.cancelled() => break End::Local,
                _ = &mut report, if !reported => {
                    reported = true;
                    self.events.line(format!("phone {} hears the call: {}", self.ext, self.heard_text(&heard)));
                }
            }
        };
        media_stop.cancel();
        if end == End::Local {
            sip::hang_up(dialog).await;
        }
        // The media task ends at the token; a panic in it only loses the counts.
        let _ = media.await;
        let who = match end {
            End::Local => "hung up",
            End::Remote => "the node hung up",
            End::Other => "the call broke off",
        };
        self.events.line(format!(
            "phone {}: call ended after {} s, {who}; {}",
            self.ext,
            started.elapsed().as_secs(),
            self.heard_text(&heard)
        ));
    }

    fn opening_line(&self) {
        match &self.role {
            Role::Agent { name, .. } => {
                self.events.stats.agent_call();
                self.events
                    .line(format!("phone {} ({name}) answered a call", self.ext));
            }
            Role::Supervisor { .. } => {
                self.events.stats.listen();
                self.events.line(format!(
                    "phone {} (supervisor) answered a listen-in call",
                    self.ext
                ));
            }
        }
    }

    fn heard_text(&self, heard: &Mutex<Heard>) -> String {
        let h = heard.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut text = format!("{} RTP packets received", h.packets);
        if let Role::Supervisor { voices } = &self.role {
            for (freq, whose) in voices {
                let frames = h.frames(*freq);
                if frames > 0 {
                    text.push_str(&format!(", {whose} ({freq} Hz) in {frames} frames"));
                }
            }
        }
        text
    }
}
