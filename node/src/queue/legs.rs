//! The shell of a call's agent legs: ringing the agents taken ([`super::take`]) in a race,
//! and the bridged conversation. Every decision (who wins the race, whom to CANCEL, BYE or
//! release, when to bridge, how the call ends) is the machine's ([`super::engine`]); this file
//! performs its actions and feeds it what the legs did. It works on the call's [`CallCtx`]
//! with the call's [`Legs`] (what of it the queue's flow uses, and why: its doc; the
//! registrar and the PIN checks are out of its reach); releasing an agent, which may happen after the call is gone, takes only the
//! [`Leases`](crate::node::Leases).

use std::collections::HashMap;
use std::time::Duration;

use callfleet_lockd::Lease;
use callfleet_store::{AgentState, CallLeg};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::agent_leg::{self, RingOutcome, Signal};
use super::caller::{event, Outcome};
use super::engine::{Action, Event, Leg, Phase, QueuedCall};
use super::take::{release, take_agent, Taken};
use super::{attended, fence, hold, take, transfer};
use crate::media::sdp::Offer;
use crate::media::session::{bridge, Mode, Session};
use crate::node::Legs;
use crate::now_ms;
use crate::records::Record;
use crate::sip::ctx::CallCtx;

/// Agent leases are renewed this often during a call.
const LEASE_RENEW: Duration = Duration::from_secs(10);

/// The queue and entry a call is rung for; both `None` for a direct call to an agent.
#[derive(Debug, Clone, Copy)]
pub struct RingFor<'q> {
    pub queue: Option<&'q str>,
    pub entry: Option<i64>,
}

/// A ring leg back from its task: settled, with the agent's SDP if it answered.
struct Settled {
    taken: Taken,
    answer: Option<Offer>,
}

/// Where ringing left the call.
pub enum Rang {
    /// Nobody answered: the machine is waiting again.
    Waiting,
    /// No offered agent's phone is registered: nothing was claimed, taken or fed to the
    /// machine (which goes on as it was).
    Unreachable,
    /// The call ended (the caller left), or its queue is done with it.
    Over(Outcome),
}

/// Performs the machine's actions that need no leg: music, announcements, queue events,
/// the entry's state. Returns how the call leaves the queue for `Fallback` and `End`.
pub async fn plain(
    ctx: &CallCtx<'_>,
    kit: &Legs,
    target: RingFor<'_>,
    announcing: &mut Option<u64>,
    action: Action,
) -> Option<Outcome> {
    match action {
        Action::Moh => {
            *announcing = None;
            // The queue's class of music (the default one for a queue gone meanwhile).
            ctx.media.set_mode(Mode::Moh(super::hold::playlist(
                &kit.realtime,
                &kit.media.moh,
                target.queue,
            )));
        }
        Action::Announce => {
            if let Some(ahead) = target.entry.and_then(|id| kit.queue.snapshot().ahead(id)) {
                let clip = kit.media.prompts.position(ahead);
                *announcing = Some(ctx.media.set_mode(Mode::Play(clip)));
            }
        }
        Action::Log {
            kind,
            agent,
            detail,
            at_ms,
        } => {
            if let Some(q) = target.queue {
                let what = (q, ctx.call_id);
                event(kit, what, agent.as_deref(), kind, detail.as_deref(), at_ms);
            }
        }
        // Not through the record writer: a late unclaim could undo another node's claim.
        // Left claimed, the entry is removed with the call.
        Action::Unclaim => {
            if let Some(entry) = target.entry {
                if let Err(e) = kit.store.unclaim_entry(entry).await {
                    warn!(error = %e, "cannot hand the queue entry back to the queue");
                }
            }
        }
        Action::Dequeue => {
            if let Some(entry) = target.entry {
                kit.queue.forget(entry);
                kit.recorder.send(Record::EntryGone { id: entry });
            }
        }
        Action::Fallback => return Some(Outcome::Fallback),
        Action::End(ended) => return Some(Outcome::End(ended)),
        Action::Transfer(to) => return Some(Outcome::Transfer(to)),
        other => warn!(?other, "call action out of place; ignored"),
    }
    None
}

/// Takes the offered agents that can be taken (claiming the entry first), feeds the machine
/// the offer, and rings them; then the conversation, if one answered.
pub async fn offer(
    ctx: &mut CallCtx<'_>,
    kit: &Legs,
    call: &mut QueuedCall,
    agents: &[String],
    target: RingFor<'_>,
    ring_timeout: Duration,
) -> Rang {
    // Agents whose phones are not registered are skipped before anything is claimed or taken.
    let mut reachable = Vec::with_capacity(agents.len());
    for ext in agents {
        if let Some(binding) = take::phone(kit, ext).await {
            reachable.push((ext.clone(), binding));
        }
    }
    if reachable.is_empty() {
        return Rang::Unreachable;
    }
    if let Some(entry) = target.entry {
        let names: Vec<&str> = reachable.iter().map(|(ext, _)| ext.as_str()).collect();
        match kit.store.claim_entry(entry, &names.join(",")).await {
            Ok(true) => {}
            Ok(false) => return Rang::Waiting,
            Err(e) => {
                debug!(error = %e, "cannot claim the queue entry");
                return Rang::Waiting;
            }
        }
    }
    let mut taken = Vec::new();
    for (ext, binding) in &reachable {
        if let Some(t) = take::take(ctx, kit, ext, binding, ring_timeout).await {
            taken.push(t);
        }
    }
    let names = taken.iter().map(|t| t.ext.clone()).collect();
    let actions = call.on(now_ms(), Event::Offered { taken: names });
    let mut announcing = None;
    for action in actions {
        if let Some(out) = plain(ctx, kit, target, &mut announcing, action).await {
            return Rang::Over(out);
        }
    }
    if taken.is_empty() {
        return Rang::Waiting;
    }
    race(ctx, kit, call, taken, ring_timeout, target).await
}

/// A direct call to an agent's extension: rings the agent; `None` when nobody answered (or
/// the agent could not be taken), else how the call ended or where the agent transferred it.
pub async fn direct(
    ctx: &mut CallCtx<'_>,
    kit: &Legs,
    ext: &str,
    ring_timeout: Duration,
) -> Option<Outcome> {
    let taken = take_agent(ctx, kit, ext, ring_timeout).await?;
    ring_taken(ctx, kit, vec![taken], ring_timeout).await
}

/// Rings the phones taken at once, without a queue (as a direct call): the first to answer
/// is bridged to the caller until either hangs up, the others are CANCELled (a late answer
/// gets ACK and BYE). `None` when nobody answered (every taken agent is released), else how
/// the call ended or where the agent who answered transferred it.
pub async fn ring_taken(
    ctx: &mut CallCtx<'_>,
    kit: &Legs,
    taken: Vec<Taken>,
    ring_timeout: Duration,
) -> Option<Outcome> {
    let target = RingFor {
        queue: None,
        entry: None,
    };
    let names = taken.iter().map(|t| t.ext.clone()).collect();
    let (mut call, _logs) = QueuedCall::direct(now_ms(), names);
    match race(ctx, kit, &mut call, taken, ring_timeout, target).await {
        Rang::Waiting | Rang::Unreachable | Rang::Over(Outcome::Fallback) => None,
        Rang::Over(out) => Some(out),
    }
}

/// Rings every taken agent at once, each leg in its own task; feeds the machine each leg's
/// outcome and the caller's end, and performs what it decides until the call is bridged,
/// waits again, or is over.
async fn race(
    ctx: &mut CallCtx<'_>,
    kit: &Legs,
    call: &mut QueuedCall,
    taken: Vec<Taken>,
    ring_timeout: Duration,
    target: RingFor<'_>,
) -> Rang {
    let (mut rx, cancels) = ring_all(taken, ring_timeout);
    let mut settled: HashMap<String, Settled> = HashMap::new();
    let mut caller_left = false;
    while matches!(call.phase(), Phase::Offering { .. }) {
        let ev = tokio::select! {
            leg = rx.recv() => match leg {
                Some((taken, RingOutcome::Answered { offer })) => {
                    let agent = taken.ext.clone();
                    settled.insert(agent.clone(), Settled { taken, answer: Some(offer) });
                    Event::Answered { agent }
                }
                Some((taken, RingOutcome::Failed { status })) => {
                    debug!(agent = %taken.ext, status, "agent did not answer");
                    let agent = taken.ext.clone();
                    settled.insert(agent.clone(), Settled { taken, answer: None });
                    Event::NotAnswered { agent, status }
                }
                None => break, // every task is gone; cannot happen while legs ring
            },
            end = ctx.life.next_end(), if !caller_left => match end {
                Some(e) => { caller_left = true; Event::CallerEnded(e) }
                None => continue,
            },
        };
        let mut actions = call.on(now_ms(), ev).into_iter();
        while let Some(action) = actions.next() {
            match action {
                Action::Cancel(agent) => {
                    if let Some(stop) = cancels.get(&agent) {
                        stop.cancel();
                    }
                }
                Action::Bye(Leg::Agent(agent)) => {
                    if let Some(s) = settled.get(&agent) {
                        if let Err(e) = s.taken.ringing.dialog.bye().await {
                            debug!(agent, error = %e, "cannot send BYE to the agent");
                        }
                    }
                }
                Action::Release { agent, from } => {
                    if let Some(lease) = settled.get(&agent).and_then(|s| s.taken.lease.as_ref()) {
                        release(&kit.leases(), &agent, lease, Some(from)).await;
                    }
                }
                Action::Bridge(agent) => {
                    let Some(Settled {
                        taken,
                        answer: Some(answer),
                    }) = settled.remove(&agent)
                    else {
                        warn!(agent, "bridge asked for a leg that did not answer");
                        continue;
                    };
                    let bridged = open_bridge(ctx, kit, taken, answer, target).await;
                    // The actions after the bridge (its queue event) come first, then the talk.
                    return talk(ctx, kit, call, bridged, target, actions.collect()).await;
                }
                other => {
                    let mut announcing = None;
                    if let Some(out) = plain(ctx, kit, target, &mut announcing, other).await {
                        return Rang::Over(out);
                    }
                }
            }
        }
    }
    Rang::Waiting
}

/// A ring leg's outcome, sent by its task.
type LegOutcome = (Taken, RingOutcome);

/// Rings each taken agent in a task of its own, until an answer, a failure, the ring
/// timeout, or its CANCEL token; each reports on the channel returned.
fn ring_all(
    taken: Vec<Taken>,
    ring_timeout: Duration,
) -> (
    mpsc::UnboundedReceiver<LegOutcome>,
    HashMap<String, CancellationToken>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut cancels = HashMap::new();
    for mut t in taken {
        let (tx, stop) = (tx.clone(), CancellationToken::new());
        cancels.insert(t.ext.clone(), stop.clone());
        tokio::spawn(async move {
            let outcome = tokio::select! {
                o = t.ringing.wait(ring_timeout) => o,
                _ = stop.cancelled() => {
                    t.ringing.cancel().await;
                    RingOutcome::Failed { status: 487 }
                }
            };
            // The receiver lives until every leg has reported (the machine waits for all).
            if tx.send((t, outcome)).is_err() {
                debug!("ring outcome after the call's end");
            }
        });
    }
    (rx, cancels)
}

/// The conversation's resources, once an agent answered: what a call placed by a phone is to
/// hand over to an attended transfer from that phone (see [`super::attended`]).
pub struct Bridged {
    pub(super) ext: String,
    /// Taken by the wrap-up, which releases it at its end.
    pub(super) lease: Option<Lease>,
    /// The device (phone) of the agent's leg.
    pub(super) device: String,
    pub(super) leg: Session,
    pub(super) dialog: rsipstack::dialog::invite_dialog::InviteDialog,
    pub(super) states: rsipstack::dialog::dialog::DialogStateReceiver,
    /// Open to listeners while the conversation lasts; dropped, it BYEs them.
    pub(super) listenable: Option<crate::listen::Offered>,
    /// The recorder leg, when the call is recorded.
    pub(super) recording: Option<crate::recording::Active>,
    /// Our SDP in the agent's dialog, for answers to its re-offers.
    pub(super) sdp: hold::AgentSdp,
    /// Whether the agent's phone holds the call (the caller hears music meanwhile).
    pub(super) held: bool,
}

/// The winner's media leg started and bridged to the caller's; the agent `ringing →
/// in_call`, the entry bridged, the call open to listeners.
async fn open_bridge(
    ctx: &mut CallCtx<'_>,
    kit: &Legs,
    taken: Taken,
    answer: Offer,
    target: RingFor<'_>,
) -> Bridged {
    let Taken {
        ext,
        lease,
        device,
        ringing,
    } = taken;
    let leg = Session::start(
        ringing.socket,
        ringing.local,
        agent_leg::answered_target(&answer, ringing.peer),
        Mode::Silence,
        0,
        kit.metrics.guard().rtp_ignored(),
    );
    if let Some(entry) = target.entry {
        // The entry says who took the call: the panel and the CRM show it as talking.
        if let Err(e) = kit.store.bridge_entry(entry, &ext).await {
            debug!(error = %e, "cannot mark the queue entry bridged");
        }
    }
    let me = kit.cfg.node.name.as_str();
    if let Some(lease) = &lease {
        fence::move_agent(
            &kit.store,
            &ext,
            lease,
            &[AgentState::Ringing],
            AgentState::InCall,
            Some((ctx.call_id, me)),
        )
        .await;
    }
    // The call's record names the agent; a phone rung directly has none.
    let agent = lease.is_some().then_some(ext.as_str());
    kit.calls.set_served(ctx.call_id, target.queue, agent);
    bridge(ctx.media, &leg);
    Bridged {
        ext,
        lease,
        device,
        leg,
        dialog: ringing.dialog,
        states: ringing.states,
        listenable: None,
        recording: None,
        sdp: hold::AgentSdp {
            session_id: ringing.session_id,
            version: 1,
        },
        held: false,
    }
}

/// The bridged conversation: either side's end is fed to the machine, which ends both legs;
/// then the wrap-up.
pub(super) async fn talk(
    ctx: &mut CallCtx<'_>,
    kit: &Legs,
    call: &mut QueuedCall,
    mut b: Bridged,
    target: RingFor<'_>,
    first: Vec<Action>,
) -> Rang {
    let mut pending = first;
    let mut renew =
        tokio::time::interval_at(tokio::time::Instant::now() + LEASE_RENEW, LEASE_RENEW);
    let (listed, mut takeovers) = takeable(ctx, kit);
    // The leg an attended transfer took over, bridged once the machine says so.
    let mut replacing = None;
    loop {
        for action in std::mem::take(&mut pending) {
            if let Action::Replace(_) = action {
                if let Some(next) = replacing.take() {
                    b = attended::take_leg(ctx, kit, next, target.entry).await;
                }
                continue;
            }
            if let Some(out) = perform_bridged(ctx, kit, &mut b, target, action).await {
                return Rang::Over(out);
            }
        }
        let ev = tokio::select! {
            Some(asked) = takeovers.recv(), if listed.is_some() => {
                match attended::hand_over(ctx, kit, b, asked, target.queue).await {
                    Ok(ended) => return Rang::Over(Outcome::End(ended)),
                    Err(back) => { b = back; continue; }
                }
            },
            end = ctx.life.next_end() => match end {
                Some(e) => Event::CallerEnded(e),
                None => continue,
            },
            signal = agent_leg::next_signal(&mut b.states) => match signal {
                Signal::Ended { hung_up } => Event::AgentEnded { hung_up },
                Signal::Reoffer { req, handle } => {
                    let music = || hold::playlist(&kit.realtime, &kit.media.moh, target.queue);
                    b.held =
                        hold::reoffer(ctx, &b.leg, music, &mut b.sdp, b.held, &req, handle)
                            .await;
                    continue;
                }
                Signal::Refer { req, handle } if attended::is_attended(&req) => {
                    match attended::refer(ctx, kit, &b, &req, handle).await {
                        Some(next) => {
                            let by = next.ext.clone();
                            replacing = Some(next);
                            Event::AgentReplaced { by }
                        }
                        None => continue,
                    }
                }
                Signal::Refer { req, handle } => {
                    match transfer::refer(ctx, kit, &b.ext, &b.dialog, &req, handle).await {
                        Some(to) => Event::AgentTransferred { to },
                        None => continue,
                    }
                }
            },
            _ = renew.tick() => {
                if let Some(lease) = &b.lease {
                    if let Ok(false) = kit.cluster.locks.renew(lease, LEASE_RENEW * 3).await {
                        warn!(agent = %b.ext, "agent lease lost during a call");
                    }
                }
                continue;
            }
        };
        pending = call.on(now_ms(), ev);
    }
}

/// Requests of a phone's attended transfer to take the bridged leg.
type Takeovers = mpsc::UnboundedReceiver<attended::Takeover<Bridged>>;

/// A call placed by a phone is listed, bridged, so that phone's attended transfer may take its
/// leg: the takeover requests come on the channel (none for a carrier's call). Unlisted when
/// the [`attended::Listed`] is dropped.
fn takeable(ctx: &CallCtx<'_>, kit: &Legs) -> (Option<attended::Listed<Bridged>>, Takeovers) {
    match &ctx.device {
        Some(device) => {
            let (listed, rx) = kit.queue.replaceable.list(ctx.dialog.id(), device);
            listed.set_bridged(true);
            (Some(listed), rx)
        }
        None => (None, mpsc::unbounded_channel().1),
    }
}

async fn perform_bridged(
    ctx: &CallCtx<'_>,
    kit: &Legs,
    b: &mut Bridged,
    target: RingFor<'_>,
    action: Action,
) -> Option<Outcome> {
    match action {
        Action::Bye(Leg::Agent(_)) => {
            if let Err(e) = b.dialog.bye().await {
                debug!(agent = %b.ext, error = %e, "cannot send BYE to the agent");
            }
        }
        Action::Bye(Leg::Caller) => {
            if let Err(e) = ctx.dialog.bye().await {
                debug!(error = %e, "cannot send BYE to the caller");
            }
        }
        Action::ReferDone(_) => {
            // Whatever the agent heard, the caller hears its next route from now on.
            ctx.media.set_mode(Mode::Moh(hold::playlist(
                &kit.realtime,
                &kit.media.moh,
                target.queue,
            )));
            transfer::notify(&b.dialog, transfer::Progress::Done).await;
        }
        Action::Open(Leg::Listeners) => {
            // Supervisors may listen in while the conversation lasts; dropped, it BYEs them.
            b.listenable = Some(crate::listen::offer(
                ctx,
                &kit.listen,
                &b.leg,
                &b.ext,
                target.queue,
            ));
        }
        Action::Open(Leg::Recorder) => b.recording = start_recording(ctx, kit, b, target),
        Action::Close(Leg::Recorder) => {
            if let Some(active) = b.recording.take() {
                crate::recording::finish(active).await;
            }
        }
        Action::Close(Leg::Listeners) => drop(b.listenable.take()),
        Action::WrapUp { agent, until_ms } => {
            b.leg.finish().await;
            let quality = kit.quality();
            crate::quality::record(&quality, ctx.call_id, CallLeg::Agent, &b.leg.quality());
            if let Some(lease) = b.lease.take() {
                wrap_up(ctx, kit, &agent, lease, until_ms).await;
            }
        }
        other => {
            let mut announcing = None;
            return plain(ctx, kit, target, &mut announcing, other).await;
        }
    }
    None
}

/// The recorder on the conversation's tap (the listeners' leg carries it): `None` when the
/// conversation is not open (nothing to tap) or the recording cannot start (logged).
fn start_recording(
    ctx: &CallCtx<'_>,
    kit: &Legs,
    b: &Bridged,
    target: RingFor<'_>,
) -> Option<crate::recording::Active> {
    let Some(listenable) = &b.listenable else {
        warn!(agent = %b.ext, "recording asked for before the conversation was open; not recorded");
        return None;
    };
    let call = crate::recording::CallInfo {
        call_id: ctx.call_id.to_string(),
        caller: ctx.caller.clone(),
        queue: target.queue.map(str::to_string),
        agent: Some(b.ext.clone()),
    };
    crate::recording::start(&kit.recordings(), listenable.tap(), call)
}

/// The agent's call counted and its wrap-up started under the call's lease token, still tied
/// to this node and call (so that should this node die before it ends, another node frees the
/// agent once the lease runs out); at `until_ms` the agent is freed and the lease released.
async fn wrap_up(ctx: &CallCtx<'_>, kit: &Legs, ext: &str, lease: Lease, until_ms: i64) {
    let me = kit.cfg.node.name.as_str();
    let now = now_ms();
    if fence::finish_call(&kit.store, ext, &lease, now).await {
        fence::move_agent(
            &kit.store,
            ext,
            &lease,
            &[AgentState::WrapUp],
            AgentState::WrapUp,
            Some((ctx.call_id, me)),
        )
        .await;
    }
    let (leases, ext) = (kit.leases(), ext.to_string());
    let wait = Duration::from_millis((until_ms - now).max(0) as u64);
    tokio::spawn(async move {
        tokio::time::sleep(wait).await;
        super::caller::end_wrap_up(&leases, &ext, fence::token(&lease)).await;
        release(&leases, &ext, &lease, None).await;
    });
}
