//! Listen-in, whisper and barge: a supervisor's phone is dialled by the node holding a bridged
//! call and hears the caller and the agent mixed; in whisper mode the agent also hears the
//! supervisor, the caller never does; in barge mode both parties hear the supervisor (a
//! three-way call). One supervisor speaks on a call at a time.
//!
//! Any node takes the request (`POST /api/v1/calls/{id}/listen`). A call held here is served
//! at once ([`listen_here`]); otherwise the node finds the holder in `live_calls`, its HTTP
//! address in the cluster view (heartbeats), and forwards the request to the holder's internal
//! route, signed with the cluster secret ([`listen`]). The holder dials the supervisor through the
//! registrar's binding (whichever node took the REGISTER), like an agent's phone, and plays a
//! [`Mix`](crate::media::tap::Mix) of the call's [`Tap`] to it. The supervisor's leg ends with
//! our BYE (or CANCEL) when the call ends, and on its own when the supervisor hangs up; the
//! call never notices either.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use callfleet_web::{ApiError, ListenMode, SIGNATURE_HEADER};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::holder::{self, Holder, Unreachable};
use crate::media::sdp::{Codec, Direction};
use crate::media::session::{Leg, Mode, Session, Target};
use crate::media::tap::{Side, Tap};
use crate::node::Listening;
use crate::now_ms;
use crate::queue::agent_leg::{self, Dial, RingOutcome};
use crate::sip::ctx::CallCtx;

/// How long the supervisor's phone may ring.
const RING_LIMIT: Duration = Duration::from_secs(30);
/// The media direction offered to the supervisor's phone, in both modes. `sendonly` would say
/// "listen only" more exactly, but phones do not all play a stream they answered `recvonly`
/// (baresip does not); in listen mode what the supervisor's phone sends is dropped.
const SUPERVISOR_DIRECTION: Direction = Direction::SendRecv;
/// How long a forwarded request may take, connection included.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a call cannot be listened to now (409); also matched on a holder's answer.
pub const NOT_BRIDGED: &str = "call is not bridged to an agent";
pub const NOT_REGISTERED: &str = "supervisor's phone is not registered";
pub const WHISPER_TAKEN: &str = "another supervisor is whispering on this call";
pub const BARGE_TAKEN: &str = "another supervisor is speaking on this call";
pub const NOT_CONNECTED: &str =
    "supervisor's phone registered over TCP with another node (or its connection is closed)";
const CONFLICTS: [&str; 5] = [
    NOT_BRIDGED,
    NOT_REGISTERED,
    WHISPER_TAKEN,
    BARGE_TAKEN,
    NOT_CONNECTED,
];

/// This node's bridged calls, open to listeners while the conversation lasts.
#[derive(Default)]
pub struct Listenable {
    /// A std mutex: map operations only, never held across an `.await`.
    calls: Mutex<HashMap<String, Bridged>>,
}

/// What a supervisor's leg needs of a bridged call.
#[derive(Clone)]
struct Bridged {
    tap: Tap,
    /// The agent's leg, where a whisper is mixed in.
    agent_leg: Arc<Leg>,
    /// The caller's leg, where a barging supervisor is mixed in too.
    caller_leg: Arc<Leg>,
    codec: Codec,
    agent: String,
    queue: Option<String>,
    caller: String,
    /// Cancelled when the conversation ends.
    ended: CancellationToken,
}

impl Listenable {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Bridged>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, call_id: &str) -> Option<Bridged> {
        self.lock().get(call_id).cloned()
    }

    /// Bridged calls here right now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

/// Held by a bridged conversation: while it lives, supervisors may listen; when it drops, the
/// call is no longer listenable and every supervisor's leg on it is ended.
pub struct Offered {
    listen: Arc<Listenable>,
    tap: Tap,
    call_id: String,
    ended: CancellationToken,
}

impl Offered {
    /// The call's tap (both parties' audio), for its recorder.
    pub fn tap(&self) -> &Tap {
        &self.tap
    }
}

impl Drop for Offered {
    fn drop(&mut self) {
        self.listen.lock().remove(&self.call_id);
        self.ended.cancel();
    }
}

/// Opens the bridged call of `ctx` (the caller's leg) and `agent` (the agent's leg) to
/// listeners: both legs publish what their party sends to the call's tap, and the call is
/// listed in `listen` (this node's listenable calls, all listen-in's offer uses).
pub fn offer(
    ctx: &CallCtx<'_>,
    listen: &Arc<Listenable>,
    agent: &Session,
    ext: &str,
    queue: Option<&str>,
) -> Offered {
    let tap = Tap::new();
    ctx.media.set_tap(Some((tap.clone(), Side::Caller)));
    agent.set_tap(Some((tap.clone(), Side::Agent)));
    let ended = CancellationToken::new();
    let bridged = Bridged {
        tap: tap.clone(),
        agent_leg: agent.leg(),
        caller_leg: ctx.media.leg(),
        codec: ctx.media.target().codec,
        agent: ext.to_string(),
        queue: queue.map(str::to_string),
        caller: ctx.caller.clone(),
        ended: ended.clone(),
    };
    listen.lock().insert(ctx.call_id.to_string(), bridged);
    Offered {
        listen: listen.clone(),
        tap,
        call_id: ctx.call_id.to_string(),
        ended,
    }
}

/// The legs a supervisor speaks to, their whispers started; stopped when the supervisor's leg
/// ends, however it ends (or when the request is refused half-way).
struct SpeakSlot(Vec<Arc<Leg>>);

impl SpeakSlot {
    /// Starts the whisper on each leg of `legs`; `None` (and none left started) if a leg
    /// already carries another supervisor.
    fn take(legs: &[&Arc<Leg>]) -> Option<SpeakSlot> {
        let mut slot = SpeakSlot(Vec::with_capacity(legs.len()));
        for leg in legs {
            if !leg.start_whisper() {
                return None; // `slot` drops: the legs taken so far are freed
            }
            slot.0.push(Arc::clone(leg));
        }
        Some(slot)
    }
}

impl Drop for SpeakSlot {
    fn drop(&mut self) {
        for leg in &self.0 {
            leg.stop_whisper();
        }
    }
}

/// Serves a listen request for a call held by this node: checks it, then dials the
/// supervisor's phone in the background (the request is answered while it rings).
pub async fn listen_here(
    ls: &Listening,
    call_id: &str,
    device: &str,
    mode: ListenMode,
) -> Result<(), ApiError> {
    let Some(call) = ls.listen.get(call_id) else {
        return Err(if ls.calls.contains(call_id) {
            ApiError::Conflict {
                reason: NOT_BRIDGED,
            }
        } else {
            ApiError::NotFound { what: "call" }
        });
    };
    let (binding, via, over) = supervisor_phone(ls, device).await?;
    let speak = speak_slot(&call, mode)?;
    let (socket, local) = ls
        .ports
        .bind()
        .await
        .map_err(|e| ApiError::unavailable("RTP port", e))?;
    let dialogs = ls.queue.dialogs.get().cloned().ok_or(ApiError::Conflict {
        reason: "SIP is not running yet",
    })?;
    let dial = Dial {
        agent: device.to_string(),
        contact: binding.contact,
        via,
        codec: call.codec,
        caller: call.caller.clone(),
        over,
    };
    let ringing = agent_leg::dial_with(
        &dialogs,
        ls.peers.cfg.sip_advertise(),
        &dial,
        socket,
        local,
        SUPERVISOR_DIRECTION,
    )
    .map_err(|e| ApiError::internal("dial the supervisor's phone", e))?;
    ls.trace.link(&ringing.dialog.id().call_id, call_id);
    info!(call_id, supervisor = device, agent = %call.agent, mode = mode.as_str(), "dialling a supervisor to listen in");
    let job = Supervisor {
        ls: ls.clone(),
        call_id: call_id.to_string(),
        device: device.to_string(),
        mode,
        call,
        speak,
    };
    tokio::spawn(job.run(ringing));
    Ok(())
}

/// Where the supervisor's phone `device` is registered, the address its requests come from,
/// and how to reach it; a conflict when it is not registered or its connection is gone.
async fn supervisor_phone(
    ls: &Listening,
    device: &str,
) -> Result<
    (
        callfleet_store::Registration,
        SocketAddr,
        agent_leg::RingOver,
    ),
    ApiError,
> {
    let binding = ls
        .peers
        .store
        .registrations(device, now_ms())
        .await
        .map_err(|e| ApiError::unavailable("database", e))?
        .into_iter()
        .next();
    let Some(binding) = binding else {
        return Err(ApiError::Conflict {
            reason: NOT_REGISTERED,
        });
    };
    let via = binding
        .received
        .parse()
        .map_err(|e| ApiError::internal("read the supervisor's registration", e))?;
    let over = agent_leg::RingOver::for_binding(&ls.peers.cfg, &binding.transport, via).ok_or(
        ApiError::Conflict {
            reason: NOT_CONNECTED,
        },
    )?;
    Ok((binding, via, over))
}

/// The legs the supervisor speaks into in `mode` (none to listen; the agent's to whisper;
/// both to barge), taken all or none; a conflict when another supervisor holds one.
fn speak_slot(call: &Bridged, mode: ListenMode) -> Result<SpeakSlot, ApiError> {
    match mode {
        ListenMode::Listen => Ok(SpeakSlot(vec![])),
        ListenMode::Whisper => SpeakSlot::take(&[&call.agent_leg]).ok_or(ApiError::Conflict {
            reason: WHISPER_TAKEN,
        }),
        ListenMode::Barge => {
            SpeakSlot::take(&[&call.agent_leg, &call.caller_leg]).ok_or(ApiError::Conflict {
                reason: BARGE_TAKEN,
            })
        }
    }
}

/// One supervisor's leg on one call.
struct Supervisor {
    ls: Listening,
    call_id: String,
    device: String,
    mode: ListenMode,
    call: Bridged,
    speak: SpeakSlot,
}

impl Supervisor {
    async fn run(self, mut ringing: agent_leg::Ringing) {
        let (ls, call) = (&self.ls, &self.call);
        let outcome = tokio::select! {
            o = ringing.wait(RING_LIMIT) => o,
            _ = call.ended.cancelled() => {
                ringing.cancel().await;
                info!(call_id = %self.call_id, supervisor = %self.device, "call ended while the supervisor's phone rang");
                return;
            }
            _ = ls.life.hangup.cancelled() => {
                ringing.cancel().await;
                return;
            }
        };
        let offer = match outcome {
            RingOutcome::Answered { offer } => offer,
            RingOutcome::Failed { status } => {
                info!(call_id = %self.call_id, supervisor = %self.device, status, "supervisor's phone did not answer");
                return;
            }
        };
        if call.ended.is_cancelled() {
            // Answered as the call ended: nothing left to hear.
            if let Err(e) = ringing.dialog.bye().await {
                debug!(error = %e, "cannot send a BYE");
            }
            return;
        }
        self.listen_in(ringing, offer).await;
    }

    /// The supervisor's phone answered with `offer`: its leg hears the call's mix (and speaks
    /// into the legs of its slot) until it hangs up, the call ends or the node stops.
    async fn listen_in(self, ringing: agent_leg::Ringing, offer: crate::media::sdp::Offer) {
        let (ls, call) = (&self.ls, &self.call);
        let target = Target {
            remote: offer.remote,
            codec: offer.codec,
            send: true,
            dtmf_pt: offer.dtmf_pt,
            signal_ip: Some(ringing.peer.ip()),
            rtcp: offer.rtcp,
            packet_ms: offer.packet_ms(),
        };
        let mix = Arc::new(call.tap.mix(self.speak.0.clone()));
        let leg = Session::start(
            ringing.socket,
            ringing.local,
            target,
            Mode::Listen(mix),
            0,
            ls.metrics.guard().rtp_ignored(),
        );
        let mode = self.mode.as_str();
        info!(call_id = %self.call_id, supervisor = %self.device, agent = %call.agent, mode, "supervisor is listening in");
        if let Some(q) = &call.queue {
            let detail = format!("{mode}:{}", self.device);
            ls.recorder.send(crate::queue::caller::queue_event(
                &ls.peers.cfg.node.name,
                q,
                &self.call_id,
                Some(&call.agent),
                callfleet_store::QueueEventKind::Listen,
                Some(&detail),
            ));
        }
        let dialog = ringing.dialog;
        let mut states = ringing.states;
        let ended_by = tokio::select! {
            _ = agent_leg::wait_end(&mut states) => "supervisor",
            _ = call.ended.cancelled() => {
                if let Err(e) = dialog.bye().await {
                    debug!(error = %e, "cannot send a BYE");
                }
                "call"
            }
            _ = ls.life.hangup.cancelled() => {
                if let Err(e) = dialog.bye().await {
                    debug!(error = %e, "cannot send a BYE");
                }
                "node"
            }
        };
        leg.stop();
        info!(
            call_id = %self.call_id,
            supervisor = %self.device,
            ended_by,
            sent = leg.stats().sent.load(std::sync::atomic::Ordering::Relaxed),
            "listen-in ended"
        );
    }
}

/// Serves a listen request wherever the call is: here, or forwarded to the node holding it.
pub async fn listen(
    ls: &Listening,
    call_id: &str,
    device: &str,
    mode: ListenMode,
) -> Result<(), ApiError> {
    if ls.listen.get(call_id).is_some() || ls.calls.contains(call_id) {
        return listen_here(ls, call_id, device, mode).await;
    }
    match holder::find(&ls.peers, call_id).await? {
        Holder::Nowhere => Err(ApiError::NotFound { what: "call" }),
        Holder::Stale { node } => Err(ApiError::unavailable(
            "node holding the call",
            Unreachable::Dead { node },
        )),
        Holder::At { node, at } => forward(ls, &node, at, call_id, device, mode).await,
    }
}

async fn forward(
    ls: &Listening,
    holder: &str,
    at: holder::Address,
    call_id: &str,
    device: &str,
    mode: ListenMode,
) -> Result<(), ApiError> {
    let unavailable = |e: Unreachable| ApiError::unavailable("node holding the call", e);
    let url = holder::url(holder, at, &["internal", "v1", "calls", call_id, "listen"])
        .map_err(unavailable)?;
    // Over HTTPS the holder's certificate is checked against `http.ca_file`.
    let client = crate::tls::client(&ls.peers.cfg, FORWARD_TIMEOUT)
        .map_err(|e| ApiError::internal("build an HTTP client", e))?;
    let request = callfleet_vocab::ListenRequest {
        device: Some(device.to_string()),
        mode: Some(mode.to_string()),
    };
    let body = serde_json::to_string(&request)
        .map_err(|e| ApiError::internal("write the listen request", e))?;
    // Signed over the path exactly as it goes on the wire.
    let signature = ls
        .peers
        .signer
        .sign_now("POST", url.path(), body.as_bytes());
    let req = client
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, signature)
        .body(body);
    let http = |source| Unreachable::Http {
        node: holder.to_string(),
        url: url.to_string(),
        source,
    };
    let resp = req.send().await.map_err(|e| unavailable(http(e)))?;
    let status = resp.status().as_u16();
    let body = resp.text().await.map_err(|e| unavailable(http(e)))?;
    debug!(holder, status, "listen request forwarded");
    let reason = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_default();
    match status {
        200..=299 => Ok(()),
        404 => Err(ApiError::NotFound { what: "call" }),
        409 => Err(ApiError::Conflict {
            reason: CONFLICTS
                .into_iter()
                .find(|c| *c == reason)
                .unwrap_or("the call cannot be listened to now"),
        }),
        401 | 403 => {
            warn!(holder, reason = %body.chars().take(200).collect::<String>(), "node holding the call refused our signed request");
            Err(unavailable(Unreachable::Secret {
                node: holder.to_string(),
            }))
        }
        _ => Err(unavailable(Unreachable::Status {
            node: holder.to_string(),
            status,
            body: body.chars().take(200).collect(),
        })),
    }
}
