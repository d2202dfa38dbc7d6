//! The caller's side of the cluster queue: enqueue, then the queued call's machine
//! ([`super::engine`]) driven by what happens (the dispatcher's offers, the caller's end, its
//! prompts, time) while the caller waits with music and position announcements; the agents'
//! legs (`legs`) ring and bridge. At maximum wait: the all-busy prompt and the queue's
//! fallback.

use std::sync::Arc;
use std::time::Duration;

use callfleet_store::{
    AgentState, Fallback, HangupCause, NewEntry, Queue, QueueEvent, QueueEventKind,
};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::engine::{Event, QueuedCall, Rules};
use super::legs::{self, Rang, RingFor};
use super::transfer::TransferTo;
use super::Offer;
use crate::media::session::{MediaEvent, Mode};
use crate::node::{Leases, Legs};
use crate::now_ms;
use crate::records::Record;
use crate::sip::call::Ended;
use crate::sip::ctx::CallCtx;

/// How a call leaves its queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The maximum wait passed: the all-busy prompt and the queue's fallback follow.
    Fallback,
    /// The call ended.
    End(Ended),
    /// The agent's phone transferred the caller: the dialplan routes it to the target.
    Transfer(TransferTo),
}

/// Waits in `queue` until an agent answers, the caller leaves, or the maximum wait passes.
pub async fn serve(ctx: &mut CallCtx<'_>, kit: &Legs, queue: &Queue) -> Ended {
    // Drawn once per queue entered; the caller is told first when the queue may record.
    let record = crate::recording::draw(queue.recording);
    if queue.recording_prompt && queue.recording.may_record() {
        if let Some(ended) = play(ctx, kit.media.prompts.get("may-be-recorded")).await {
            return ended;
        }
    }
    let vip = kit
        .store
        .is_vip(&ctx.caller, &queue.name)
        .await
        .unwrap_or(false);
    // The enqueue time the cluster serves the call by, taken as its row is written (not
    // before the VIP lookup), and the one its enqueue event and maximum wait start from.
    let now = now_ms();
    let entry = NewEntry {
        queue: queue.name.clone(),
        node: kit.cfg.node.name.clone(),
        call_id: ctx.call_id.to_string(),
        caller: ctx.caller.clone(),
        priority: 0,
        vip,
        enqueued_at_ms: now,
    };
    let id = match kit.store.enqueue(&entry).await {
        Ok(id) => id,
        Err(e) => {
            warn!(error = %e, queue = %queue.name, "cannot enqueue the call; playing the timeout path");
            return fallback(ctx, kit, queue).await;
        }
    };
    // The CDR names the queue even when nobody answers (abandon, timeout, fallback).
    kit.calls.set_served(ctx.call_id, Some(&queue.name), None);
    let mut offers = kit.queue.wait(id);
    let outcome = wait(ctx, kit, queue, (id, now, vip, record), &mut offers).await;
    kit.queue.forget(id);
    if matches!(outcome, Outcome::Transfer(_)) {
        // The target may queue the call again at once (an entry is one per call and node):
        // this one goes now, not when the record writer gets to it.
        if let Err(e) = kit.store.remove_entry(id).await {
            warn!(error = %e, "cannot remove the transferred call's queue entry");
        }
    }
    kit.recorder.send(Record::EntryGone { id });
    match outcome {
        Outcome::End(ended) => ended,
        Outcome::Fallback => fallback(ctx, kit, queue).await,
        Outcome::Transfer(to) => crate::dialplan::transferred(ctx, kit, to).await,
    }
}

/// The waiting caller: feeds the machine and performs what it decides.
/// `entry`: the queue entry's id and enqueue time, whether the caller is a VIP, whether the
/// call is recorded.
async fn wait(
    ctx: &mut CallCtx<'_>,
    kit: &Legs,
    queue: &Queue,
    (id, enqueued_ms, vip, record): (i64, i64, bool, bool),
    offers: &mut mpsc::UnboundedReceiver<Offer>,
) -> Outcome {
    let target = RingFor {
        queue: Some(&queue.name),
        entry: Some(id),
    };
    let ring_timeout = ms(queue.ring_timeout_ms);
    let (mut call, mut pending) =
        QueuedCall::enter(Rules::of(queue).recorded(record), enqueued_ms, vip);
    // The announcement playing now (its `set_mode` number), if any.
    let mut announcing: Option<u64> = None;
    loop {
        for action in std::mem::take(&mut pending) {
            if let Some(out) = legs::plain(ctx, kit, target, &mut announcing, action).await {
                return out;
            }
        }
        let deadline = call.deadline().map(instant_at);
        let ev = tokio::select! {
            end = ctx.life.next_end() => match end {
                Some(ended) => Event::CallerEnded(ended),
                None => continue,
            },
            Some(offer) = offers.recv() => {
                match legs::offer(ctx, kit, &mut call, &offer.agents, target, ring_timeout).await {
                    Rang::Over(out) => return out,
                    // Nothing happened: the next offer comes with the dispatcher's next round,
                    // which leaves out the agents skipped here (no spinning on them).
                    Rang::Unreachable => continue,
                    Rang::Waiting => {
                        // Offers queued meanwhile were computed before this attempt: stale.
                        while offers.try_recv().is_ok() {}
                        announcing = None;
                        continue;
                    }
                }
            }
            _ = sleep_until(deadline), if deadline.is_some() => Event::Tick,
            ev = ctx.events.next() => match ev {
                MediaEvent::PlayDone(seq) if announcing == Some(seq) => Event::PromptDone,
                _ => continue,
            },
        };
        pending = call.on(now_ms(), ev);
    }
}

/// The tokio instant of a wall-clock time in milliseconds.
fn instant_at(at_ms: i64) -> tokio::time::Instant {
    tokio::time::Instant::now() + ms(at_ms - now_ms())
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// "All agents are busy", then the queue's fallback.
async fn fallback(ctx: &mut CallCtx<'_>, kit: &Legs, queue: &Queue) -> Ended {
    if let Some(ended) = play(ctx, kit.media.prompts.get("all-busy")).await {
        return ended;
    }
    match (queue.fallback, queue.fallback_target.as_deref()) {
        (Fallback::Voicemail, Some(box_)) => {
            super::voicemail::record(ctx, &kit.mailboxes(), box_).await
        }
        (Fallback::Queue, Some(next)) if next != queue.name => {
            let next = kit.realtime.get().queues.get(next).cloned();
            match next {
                Some(q) => Box::pin(serve(ctx, kit, &q)).await,
                None => ctx.hangup(HangupCause::QueueTimeout).await,
            }
        }
        _ => ctx.hangup(HangupCause::QueueTimeout).await,
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

/// Tries to end this many times, this far apart, an agent's wrap-up the database did not take.
const WRAP_UP_TRIES: u32 = 20;
const WRAP_UP_RETRY: Duration = Duration::from_secs(3);

/// `wrap_up` → available (or paused) under the call's lease token, retried while the database
/// fails, so that a short outage does not leave the agent in wrap-up. A refusal (the agent
/// moved on, or a newer lease holder took it) is final.
pub(super) async fn end_wrap_up(leases: &Leases, ext: &str, token: i64) {
    for _ in 0..WRAP_UP_TRIES {
        let moved = leases
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
                    _ = leases.life.stopping.cancelled() => return,
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

/// Writes a queue event off the call path, stamped `at_ms` (now when `None`).
pub fn event(
    kit: &Legs,
    (queue, call_id): (&str, &str),
    agent: Option<&str>,
    what: QueueEventKind,
    detail: Option<&str>,
    at_ms: Option<i64>,
) {
    let mut ev = queue_event(&kit.cfg.node.name, queue, call_id, agent, what, detail);
    if let (Record::QueueEvent(e), Some(at_ms)) = (&mut ev, at_ms) {
        e.at_ms = at_ms;
    }
    kit.recorder.send(ev);
}

/// The record of a queue event on node `me`, now, for the record writer.
pub fn queue_event(
    me: &str,
    queue: &str,
    call_id: &str,
    agent: Option<&str>,
    what: QueueEventKind,
    detail: Option<&str>,
) -> Record {
    Record::QueueEvent(QueueEvent {
        id: 0,
        at_ms: now_ms(),
        queue: queue.to_string(),
        call_id: call_id.to_string(),
        node: me.to_string(),
        agent: agent.map(str::to_string),
        event: what,
        detail: detail.map(str::to_string),
        // Given by the recorder.
        uid: None,
    })
}

fn ms(v: i64) -> Duration {
    Duration::from_millis(v.max(0) as u64)
}
