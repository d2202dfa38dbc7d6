//! The caller's side of the cluster queue and of direct agent calls: enqueue, wait with music
//! and position announcements, take the offered agents (lease first, then the guarded SQL
//! update), ring their phones, bridge the first to answer and CANCEL the others, hang up both
//! legs together, then wrap-up and release. At maximum wait: the timeout prompt and the queue's
//! fallback.

use std::sync::Arc;
use std::time::Duration;

use callfleet_lockd::Lease;
use callfleet_store::{AgentState, CallLeg, NewEntry, Queue, QueueEvent};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::agent_leg::{self, Dial, RingOutcome, Ringing};
use super::{agent_key, fence, Offer};
use crate::media::session::{bridge, MediaEvent, Mode, Session, Target};
use crate::node::Node;
use crate::now_ms;
use crate::records::Record;
use crate::sip::call::Ended;
use crate::sip::ctx::CallCtx;

/// How long a lease outlives the ring timeout before it must be renewed.
const LEASE_MARGIN: Duration = Duration::from_secs(30);
/// Agent leases are renewed this often during a call.
const LEASE_RENEW: Duration = Duration::from_secs(10);

/// Which queue entry (if any) a ringing attempt is for.
#[derive(Debug, Clone)]
pub struct RingFor {
    pub queue: Option<String>,
    pub entry: Option<i64>,
}

/// An agent taken for this call: lease held, SQL state `ringing`, phone being rung.
struct Taken {
    ext: String,
    lease: Lease,
    ringing: Ringing,
}

/// How ringing a set of agents ended.
pub enum Rang {
    /// An agent answered; the others were cancelled and released.
    Answered {
        ext: String,
        lease: Lease,
        leg: Session,
        dialog: rsipstack::dialog::invite_dialog::InviteDialog,
        states: rsipstack::dialog::dialog::DialogStateReceiver,
    },
    /// Nobody answered (or nobody could be taken); everyone was released.
    NoAnswer,
    /// The caller hung up meanwhile; agents were cancelled and released.
    CallerGone(Ended),
}

/// Waits in `queue` until an agent answers, the caller leaves, or the maximum wait passes.
pub async fn serve(ctx: &mut CallCtx<'_>, queue: &Queue) -> Ended {
    let node = ctx.node;
    let now = now_ms();
    let vip = node
        .store
        .is_vip(&ctx.caller, &queue.name)
        .await
        .unwrap_or(false);
    let entry = NewEntry {
        queue: queue.name.clone(),
        node: node.cfg.node.name.clone(),
        call_id: ctx.call_id.to_string(),
        caller: ctx.caller.clone(),
        priority: 0,
        vip,
        enqueued_at_ms: now,
    };
    let id = match node.store.enqueue(&entry).await {
        Ok(id) => id,
        Err(e) => {
            warn!(error = %e, queue = %queue.name, "cannot enqueue the call; playing the timeout path");
            return timeout(ctx, queue).await;
        }
    };
    event(
        node,
        &queue.name,
        ctx.call_id,
        None,
        "enqueue",
        vip.then_some("vip"),
    );
    // The CDR names the queue even when nobody answers (abandon, timeout, fallback).
    node.calls.set_served(ctx.call_id, Some(&queue.name), None);
    let mut offers = node.queue.wait(id);
    ctx.media.set_mode(Mode::Moh);
    let ended = wait_loop(ctx, queue, id, &mut offers).await;
    node.queue.forget(id);
    node.recorder.send(Record::EntryGone { id });
    ended
}

async fn wait_loop(
    ctx: &mut CallCtx<'_>,
    queue: &Queue,
    id: i64,
    offers: &mut mpsc::UnboundedReceiver<Offer>,
) -> Ended {
    let node = ctx.node;
    let max_wait = tokio::time::sleep(ms(queue.max_wait_ms));
    tokio::pin!(max_wait);
    let every = ms(queue.announce_interval_ms.max(1000));
    let mut announce = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    // The announcement playing now (its `set_mode` number), if any.
    let mut announcing: Option<u64> = None;
    loop {
        tokio::select! {
            end = ctx.life.next_end() => if let Some(ended) = end {
                event(node, &queue.name, ctx.call_id, None, "abandon", None);
                return ended;
            },
            Some(offer) = offers.recv() => {
                let target = RingFor { queue: Some(queue.name.clone()), entry: Some(id) };
                match ring(ctx, &offer.agents, &target, ms(queue.ring_timeout_ms)).await {
                    Rang::Answered { ext, lease, leg, dialog, states } => {
                        return talk(ctx, queue.wrapup_ms, Some(&queue.name), ext, lease, leg, dialog, states).await;
                    }
                    Rang::CallerGone(ended) => {
                        event(node, &queue.name, ctx.call_id, None, "abandon", None);
                        return ended;
                    }
                    Rang::NoAnswer => {
                        // Offers queued meanwhile were computed before this attempt: stale.
                        while offers.try_recv().is_ok() {}
                        announcing = None;
                        ctx.media.set_mode(Mode::Moh);
                    }
                }
            }
            _ = announce.tick(), if queue.announce_interval_ms > 0 => {
                if let Some(ahead) = node.queue.snapshot().ahead(id) {
                    announcing = Some(ctx.media.set_mode(Mode::Play(node.prompts.position(ahead))));
                }
            }
            ev = ctx.events.next() => if let MediaEvent::PlayDone(seq) = ev {
                if announcing == Some(seq) {
                    announcing = None;
                    ctx.media.set_mode(Mode::Moh);
                }
            },
            _ = &mut max_wait => {
                event(node, &queue.name, ctx.call_id, None, "timeout", None);
                node.queue.forget(id);
                node.recorder.send(Record::EntryGone { id });
                return timeout(ctx, queue).await;
            }
        }
    }
}

/// "All agents are busy", then the queue's fallback.
async fn timeout(ctx: &mut CallCtx<'_>, queue: &Queue) -> Ended {
    if let Some(ended) = play(ctx, ctx.node.prompts.get("all-busy")).await {
        return ended;
    }
    match (queue.fallback.as_str(), queue.fallback_target.as_deref()) {
        ("voicemail", Some(box_)) => super::voicemail::record(ctx, box_).await,
        ("queue", Some(next)) if next != queue.name => {
            let next = ctx.node.realtime.get().queues.get(next).cloned();
            match next {
                Some(q) => Box::pin(serve(ctx, &q)).await,
                None => ctx.hangup("queue_timeout").await,
            }
        }
        _ => ctx.hangup("queue_timeout").await,
    }
}

/// Plays a prompt to the caller and waits for its end; `Some` if the call ended meanwhile.
pub async fn play(ctx: &mut CallCtx<'_>, clip: Arc<crate::media::moh::Track>) -> Option<Ended> {
    let seq = ctx.media.set_mode(Mode::Play(clip));
    loop {
        tokio::select! {
            end = ctx.life.next_end() => if let Some(e) = end { return Some(e) },
            // Only this prompt's end: one left over from an announcement must not cut it short.
            ev = ctx.events.next() => if ev == MediaEvent::PlayDone(seq) { return None },
        }
    }
}

/// Takes the offered agents and rings them; see [`Rang`].
pub async fn ring(
    ctx: &mut CallCtx<'_>,
    agents: &[String],
    target: &RingFor,
    ring_timeout: Duration,
) -> Rang {
    let node = ctx.node;
    if let Some(entry) = target.entry {
        match node.store.claim_entry(entry, &agents.join(",")).await {
            Ok(true) => {}
            Ok(false) => return Rang::NoAnswer,
            Err(e) => {
                debug!(error = %e, "cannot claim the queue entry");
                return Rang::NoAnswer;
            }
        }
    }
    let mut taken = Vec::new();
    for ext in agents {
        if let Some(t) = take(ctx, ext, ring_timeout).await {
            taken.push(t);
        }
    }
    if let Some(q) = &target.queue {
        for t in &taken {
            event(node, q, ctx.call_id, Some(&t.ext), "offer", None);
        }
    }
    let rang = race(ctx, taken, ring_timeout, target).await;
    if let Some(entry) = target.entry {
        match &rang {
            // The entry says who took the call: the panel and the CRM show it as talking,
            // no longer waiting.
            Rang::Answered { ext, .. } => {
                if let Err(e) = node.store.bridge_entry(entry, ext).await {
                    debug!(error = %e, "cannot mark the queue entry bridged");
                }
            }
            // Not through the record writer: a late unclaim could undo another node's claim.
            // Left claimed, the entry is removed with the call.
            _ => {
                if let Err(e) = node.store.unclaim_entry(entry).await {
                    warn!(error = %e, "cannot hand the queue entry back to the queue");
                }
            }
        }
    }
    rang
}

/// Lease, guarded SQL update, then the INVITE to the agent's phone.
async fn take(ctx: &CallCtx<'_>, ext: &str, ring_timeout: Duration) -> Option<Taken> {
    let node = ctx.node;
    let owner = format!("{}:{}:{}", node.cfg.node.name, node.generation, ctx.call_id);
    let lease = match node
        .locks
        .acquire(&agent_key(ext), &owner, ring_timeout + LEASE_MARGIN)
        .await
    {
        Ok(Some(l)) => l,
        Ok(None) => return None,
        Err(e) => {
            warn!(agent = ext, error = %e, "lock service unavailable; not offering the agent");
            return None;
        }
    };
    let me = node.cfg.node.name.as_str();
    let moved = fence::move_agent(
        node,
        ext,
        &lease,
        &[AgentState::Available],
        AgentState::Ringing,
        Some((ctx.call_id, me)),
    )
    .await;
    if !moved {
        release(node, ext, &lease, None).await;
        return None;
    }
    match dial(ctx, ext).await {
        Some(ringing) => Some(Taken {
            ext: ext.to_string(),
            lease,
            ringing,
        }),
        None => {
            release(node, ext, &lease, Some(AgentState::Ringing)).await;
            None
        }
    }
}

async fn dial(ctx: &CallCtx<'_>, ext: &str) -> Option<Ringing> {
    let node = ctx.node;
    let agent = node.store.agent(ext).await.ok().flatten()?;
    let device = agent.device?;
    let binding = node
        .store
        .registrations(&device, now_ms())
        .await
        .ok()?
        .into_iter()
        .next();
    let Some(binding) = binding else {
        info!(agent = ext, device = %device, "agent's phone is not registered");
        return None;
    };
    let via = binding.received.parse().ok()?;
    let (socket, local) = node.ports.bind().await.ok()?;
    let d = Dial {
        agent: ext.to_string(),
        contact: binding.contact.clone(),
        via,
        codec: ctx.media.target().codec,
        caller: ctx.caller.clone(),
        tls: crate::sip::tls::ring_over_tls(node, &binding.transport),
    };
    let dialogs = node.queue.dialogs.get()?;
    match agent_leg::dial(dialogs, node.cfg.sip_advertise(), &d, socket, local) {
        Ok(r) => Some(r),
        Err(e) => {
            warn!(agent = ext, error = %e, "cannot ring the agent");
            None
        }
    }
}

/// Puts an agent back: SQL state (from `from` to available) and the lease.
async fn release(node: &Node, ext: &str, lease: &Lease, from: Option<AgentState>) {
    if let Some(from) = from {
        fence::move_agent(node, ext, lease, &[from], AgentState::Available, None).await;
    }
    if let Err(e) = node.locks.release(lease).await {
        debug!(agent = ext, error = %e, "cannot release the agent's lease (it expires by itself)");
    }
}

/// Rings every taken agent at once; the first 200 wins, the rest are cancelled.
async fn race(
    ctx: &mut CallCtx<'_>,
    taken: Vec<Taken>,
    ring_timeout: Duration,
    target: &RingFor,
) -> Rang {
    let node = ctx.node;
    if taken.is_empty() {
        return Rang::NoAnswer;
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let count = taken.len();
    for (i, mut t) in taken.into_iter().enumerate() {
        let (tx, stop) = (tx.clone(), stop.clone());
        tokio::spawn(async move {
            let dialog = t.ringing.dialog.clone();
            let outcome = tokio::select! {
                o = t.ringing.wait(ring_timeout) => o,
                _ = stop.cancelled() => {
                    let _ = dialog.cancel().await;
                    RingOutcome::Failed { status: 487 }
                }
            };
            let _ = tx.send((i, t, outcome));
        });
    }
    drop(tx);
    let mut winner: Option<(Taken, crate::media::sdp::Offer)> = None;
    let mut done = 0;
    let mut caller_gone: Option<Ended> = None;
    while done < count {
        tokio::select! {
            Some((_, t, outcome)) = rx.recv() => {
                done += 1;
                match outcome {
                    RingOutcome::Answered { offer } if winner.is_none() && caller_gone.is_none() => {
                        stop.cancel();
                        winner = Some((t, offer));
                    }
                    RingOutcome::Answered { .. } => {
                        // A second answer (or after the caller left): end that leg at once.
                        let _ = t.ringing.dialog.bye().await;
                        release(node, &t.ext, &t.lease, Some(AgentState::Ringing)).await;
                    }
                    RingOutcome::Failed { status } => {
                        debug!(agent = %t.ext, status, "agent did not answer");
                        if let Some(q) = &target.queue {
                            event(node, q, ctx.call_id, Some(&t.ext), "noanswer", Some(&status.to_string()));
                        }
                        release(node, &t.ext, &t.lease, Some(AgentState::Ringing)).await;
                    }
                }
            }
            end = ctx.life.next_end(), if caller_gone.is_none() && winner.is_none() => if let Some(e) = end {
                stop.cancel();
                caller_gone = Some(e);
            },
        }
    }
    if let Some(e) = caller_gone {
        if let Some((t, _)) = winner {
            let _ = t.ringing.dialog.bye().await;
            release(node, &t.ext, &t.lease, Some(AgentState::Ringing)).await;
        }
        return Rang::CallerGone(e);
    }
    let Some((t, offer)) = winner else {
        return Rang::NoAnswer;
    };
    let Taken {
        ext,
        lease,
        ringing,
    } = t;
    let target_media = Target {
        remote: offer.remote,
        codec: offer.codec,
        send: true,
        dtmf_pt: offer.dtmf_pt,
        signal_ip: Some(ringing.peer.ip()),
        rtcp: offer.rtcp,
        packet_ms: offer.packet_ms(),
    };
    let leg = Session::start(
        ringing.socket,
        ringing.local,
        target_media,
        Mode::Silence,
        node.moh.clone(),
        0,
        node.metrics.guard().rtp_ignored(),
    );
    Rang::Answered {
        ext,
        lease,
        leg,
        dialog: ringing.dialog,
        states: ringing.states,
    }
}

/// The bridged conversation; either side's BYE ends both legs. Then wrap-up and release.
#[allow(clippy::too_many_arguments)]
pub async fn talk(
    ctx: &mut CallCtx<'_>,
    wrapup_ms: i64,
    queue: Option<&str>,
    ext: String,
    lease: Lease,
    leg: Session,
    dialog: rsipstack::dialog::invite_dialog::InviteDialog,
    mut states: rsipstack::dialog::dialog::DialogStateReceiver,
) -> Ended {
    let node = ctx.node;
    let me = node.cfg.node.name.as_str();
    fence::move_agent(
        node,
        &ext,
        &lease,
        &[AgentState::Ringing],
        AgentState::InCall,
        Some((ctx.call_id, me)),
    )
    .await;
    if let Some(q) = queue {
        event(node, q, ctx.call_id, Some(&ext), "answer", None);
    }
    node.calls.set_served(ctx.call_id, queue, Some(&ext));
    bridge(ctx.media, &leg);
    // Supervisors may listen in while the conversation lasts; dropped, it BYEs them.
    let listenable = crate::listen::offer(ctx, &leg, &ext, queue);
    let mut renew =
        tokio::time::interval_at(tokio::time::Instant::now() + LEASE_RENEW, LEASE_RENEW);
    let ended = loop {
        tokio::select! {
            end = ctx.life.next_end() => if let Some(e) = end {
                let _ = dialog.bye().await;
                break e;
            },
            agent_hung_up = agent_leg::wait_end(&mut states) => {
                let _ = ctx.dialog.bye().await;
                break if agent_hung_up { Ended::new("normal", "agent", 200) } else { Ended::new("agent_leg_failed", "node", 200) };
            }
            _ = renew.tick() => {
                if let Ok(false) = node.locks.renew(&lease, LEASE_RENEW * 3).await {
                    warn!(agent = %ext, "agent lease lost during a call");
                }
            }
        }
    };
    drop(listenable);
    leg.stop();
    crate::quality::record(node, ctx.call_id, CallLeg::Agent, &leg.quality());
    let now = now_ms();
    if fence::finish_call(node, &ext, &lease, now).await {
        // The wrap-up stays tied to this node and call, so that should this node die before
        // the wrap-up ends, another node frees the agent once the lease runs out.
        fence::move_agent(
            node,
            &ext,
            &lease,
            &[AgentState::WrapUp],
            AgentState::WrapUp,
            Some((ctx.call_id, me)),
        )
        .await;
    }
    if let Some(q) = queue {
        event(
            node,
            q,
            ctx.call_id,
            Some(&ext),
            "complete",
            Some(ended.side),
        );
    }
    let (node2, ext2) = (node.clone(), ext.clone());
    tokio::spawn(async move {
        tokio::time::sleep(ms(wrapup_ms)).await;
        end_wrap_up(&node2, &ext2, fence::token(&lease)).await;
        release(&node2, &ext2, &lease, None).await;
    });
    ended
}

/// Tries to end this many times, this far apart, an agent's wrap-up the database did not take.
const WRAP_UP_TRIES: u32 = 20;
const WRAP_UP_RETRY: Duration = Duration::from_secs(3);

/// `wrap_up` → available (or paused) under the call's lease token, retried while the database
/// fails, so that a short outage does not leave the agent in wrap-up. A refusal (the agent
/// moved on, or a newer lease holder took it) is final.
async fn end_wrap_up(node: &Node, ext: &str, token: i64) {
    for _ in 0..WRAP_UP_TRIES {
        let moved = node
            .store
            .transition_agent_fenced(
                ext,
                &[AgentState::WrapUp],
                AgentState::Available,
                now_ms(),
                None,
                token,
            )
            .await;
        match moved {
            Ok(_) => return,
            Err(e) => {
                debug!(agent = ext, error = %e, "cannot end the wrap-up; trying again");
                tokio::select! {
                    _ = node.stopping.cancelled() => return,
                    _ = tokio::time::sleep(WRAP_UP_RETRY) => {}
                }
            }
        }
    }
    warn!(
        agent = ext,
        "the agent's wrap-up could not be ended; it is freed once overdue"
    );
}

/// Writes a queue event off the call path.
pub fn event(
    node: &Node,
    queue: &str,
    call_id: &str,
    agent: Option<&str>,
    what: &str,
    detail: Option<&str>,
) {
    let ev = QueueEvent {
        id: 0,
        at_ms: now_ms(),
        queue: queue.to_string(),
        call_id: call_id.to_string(),
        node: node.cfg.node.name.clone(),
        agent: agent.map(str::to_string),
        event: what.to_string(),
        detail: detail.map(str::to_string),
        // Given by the recorder.
        uid: None,
    };
    node.recorder.send(Record::QueueEvent(ev));
}

fn ms(v: i64) -> Duration {
    Duration::from_millis(v.max(0) as u64)
}
