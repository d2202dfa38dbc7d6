//! Attended transfer across nodes: the shells around [`super::xreplaces`]'s decisions.
//!
//! On the node holding call A (the REFER's node): `refer` accepts the REFER, sends the node
//! that holds call B an INVITE with `Replaces` and the cluster proof (when the REFER names the
//! cluster's domain: every other live node at once, the first that takes the call winning,
//! [`super::xreplaces::Gather`]), and on its 200 returns that new leg, which call A's machine takes as in the same-node case (agent 1's leg ends,
//! the phone gets the final NOTIFY, the caller is bridged to the new leg). A failure becomes
//! a NOTIFY with its status; the caller stays with agent 1.
//!
//! On the node holding call B: [`admit`] checks an incoming INVITE with Replaces (the source a
//! live cluster node, the proof, then [`super::attended::judge`]) and takes B's bridged leg
//! ([`super::attended::Registry::take_over`]: call B's task BYEs the phone and ends
//! `replaced`); the call is answered and [`adopt`] bridges it to that leg until either side
//! ends. Anything refused gets its status before anything is touched.

use std::net::SocketAddr;
use std::time::Duration;

use callfleet_store::{AgentState, HangupCause, HangupSide};
use rsipstack::dialog::dialog::TransactionHandle;
use rsipstack::sip::{Header, Request, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::agent_leg::{self, Dial, RingOutcome, RingOver};
use super::attended::judge;
use super::caller::Outcome;
use super::engine::QueuedCall;
use super::legs::{self, Bridged, Rang, RingFor};
use super::take;
use super::transfer::{self, Progress, Refusal};
use super::xreplaces::{self, Answer, Gather, Heard, Remote, PROOF_HEADER};
use crate::media::sdp::Offer;
use crate::media::session::{bridge, Mode, Session};
use crate::node::Legs;
use crate::sip::call::Ended;
use crate::sip::ctx::CallCtx;

/// How long the node waits for the other node's final answer to its INVITE with Replaces.
const INVITE_WAIT: Duration = Duration::from_secs(8);

/// How long an incoming INVITE with Replaces waits for the named call to hand its leg over.
const HANDOVER_WAIT: Duration = Duration::from_secs(2);

/// The SIP addresses of the cluster nodes the balancer sees alive (this one included).
pub fn live_nodes(balancer: &callfleet_lb::Balancer) -> Vec<SocketAddr> {
    let view = balancer.view();
    view.nodes()
        .iter()
        .filter(|n| view.is_alive(n))
        .map(|n| n.sip)
        .collect()
}

/// Answers the REFER with Replaces naming a call on other nodes from the phone of the bridged
/// leg `b`: accepted (202, `100 Trying`), then every node of `to` is sent the INVITE with
/// Replaces at once, each once, and their answers are gathered as they come
/// ([`xreplaces::Gather`]): the first node that takes the call gives its leg, which is
/// returned; the other INVITEs are then cancelled and their answers left unused. `None` (after
/// a NOTIFY with the failure's status) when a node holding the call refuses it or none holds
/// it. Each node waits at most [`INVITE_WAIT`]: a silent node costs that once.
pub(super) async fn refer(
    ctx: &CallCtx<'_>,
    kit: &Legs,
    b: &Bridged,
    handle: TransactionHandle,
    to: Vec<Remote>,
) -> Option<Bridged> {
    if let Err(e) = handle.reply(StatusCode::Accepted).await {
        debug!(error = %e, "cannot accept the agent's REFER");
        return None;
    }
    transfer::notify(&b.dialog, Progress::Trying).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    for (node, remote) in to.iter().enumerate() {
        info!(call_id = ctx.call_id, agent = %b.ext, kit = %remote.addr, "the agent's phone hands the caller to its call on another node");
        match invite(ctx, kit, b, remote).await {
            Ok(ringing) => wait_answer(node, ringing, tx.clone(), stop.clone()),
            Err(status) => send_answer(&tx, (node, None, Err(status))),
        }
    }
    drop(tx);
    let mut gather = Gather::new(to.len());
    while let Some((node, ringing, outcome)) = rx.recv().await {
        let answer = match &outcome {
            Ok(_) => Answer::Took,
            Err(status) => {
                info!(call_id = ctx.call_id, agent = %b.ext, kit = %to[node].addr, status = ?status, "the node did not take the attended transfer");
                Answer::Failed(*status)
            }
        };
        let heard = gather.hear(answer);
        if heard == Heard::Wait {
            continue;
        }
        stop.cancel();
        tokio::spawn(end_late(rx));
        return match (heard, ringing, outcome) {
            (Heard::Take, Some(ringing), Ok(offer)) => {
                Some(relayed(kit, &to[node], ringing, &offer))
            }
            (Heard::Fail(status), ..) => failed(ctx, b, status).await,
            _ => failed(ctx, b, 500).await,
        };
    }
    failed(ctx, b, xreplaces::search_end(false)).await
}

/// One node's answer in a cluster-wide search: its index in the search, its INVITE (`None`
/// when not sent), and the answer's SDP or its final status (`None`: none in time).
type NodeAnswer = (
    usize,
    Option<agent_leg::Ringing>,
    Result<Offer, Option<u16>>,
);

fn send_answer(tx: &mpsc::UnboundedSender<NodeAnswer>, answer: NodeAnswer) {
    if tx.send(answer).is_err() {
        debug!("a node's answer after the search ended");
    }
}

/// Waits in a task of its own for node `node`'s final answer to `ringing`, up to
/// [`INVITE_WAIT`], or until the search is decided (`stop`: the INVITE is cancelled); reports
/// on `tx`.
fn wait_answer(
    node: usize,
    mut ringing: agent_leg::Ringing,
    tx: mpsc::UnboundedSender<NodeAnswer>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let outcome = tokio::select! {
            o = ringing.wait(INVITE_WAIT) => o,
            _ = stop.cancelled() => {
                ringing.cancel().await;
                RingOutcome::Failed { status: 487 }
            }
        };
        let outcome = match outcome {
            RingOutcome::Answered { offer } => Ok(offer),
            RingOutcome::Failed { status: 408 } => Err(None),
            RingOutcome::Failed { status } => Err(Some(status)),
        };
        send_answer(&tx, (node, Some(ringing), outcome));
    });
}

/// The answers that come after the search was decided: a leg answered meanwhile (a node
/// that took the call after all) is ended with a BYE; the others need nothing. Ends when every
/// node's task has reported (each within [`INVITE_WAIT`]).
async fn end_late(mut rx: mpsc::UnboundedReceiver<NodeAnswer>) {
    while let Some((_, ringing, outcome)) = rx.recv().await {
        if let (Some(ringing), Ok(_)) = (ringing, outcome) {
            info!(call_id = %ringing.dialog.id().call_id, "a node took the attended transfer after the search ended; its leg ends");
            if let Err(e) = ringing.dialog.bye().await {
                debug!(error = %e, "cannot send BYE to a late leg");
            }
        }
    }
}

/// The phone's final NOTIFY of a failed attended transfer: the call stays bridged.
async fn failed(ctx: &CallCtx<'_>, b: &Bridged, status: u16) -> Option<Bridged> {
    info!(call_id = ctx.call_id, agent = %b.ext, status, "attended transfer to another node failed; the call stays bridged");
    transfer::notify(&b.dialog, Progress::Failed(status)).await;
    None
}

/// Sends the INVITE with Replaces and the proof to `to`; the INVITE under way (its answer
/// not awaited), or the status it failed with here (`None`: not sent).
async fn invite(
    ctx: &CallCtx<'_>,
    kit: &Legs,
    b: &Bridged,
    to: &Remote,
) -> Result<agent_leg::Ringing, Option<u16>> {
    let dialogs = kit.queue.dialogs.get().ok_or(None)?;
    let media = kit.media.ports.bind().await.map_err(|e| {
        warn!(error = %e, "no RTP port for the attended transfer's leg");
        Some(503)
    })?;
    let here = kit.cfg.sip_advertise();
    let call_id = format!("xr-{:016x}@{}", rand::random::<u64>(), here.ip());
    let proof = xreplaces::prove(
        &kit.cluster.signer,
        &to.replaces,
        &b.device,
        &call_id,
        callfleet_sign::now_ms(),
    );
    let headers = vec![
        Header::Replaces(xreplaces::header_value(&to.replaces).into()),
        Header::Other(PROOF_HEADER.into(), proof),
    ];
    let d = Dial {
        agent: to.user.clone(),
        contact: format!("sip:{}@{}", to.user, to.addr),
        via: to.addr,
        codec: ctx.media.target().codec,
        caller: ctx.caller.clone(),
        over: RingOver::Udp,
    };
    let sent = agent_leg::dial_replacing(dialogs, here, &d, media, call_id.clone(), headers);
    let ringing = sent.map_err(|e| {
        warn!(error = %e, "cannot send the INVITE with Replaces");
        None
    })?;
    kit.trace.link(&call_id, ctx.call_id);
    Ok(ringing)
}

/// The other node's answered leg as a bridged leg of this call: no agent lease here (the
/// agent is the other node's), no recording or listeners until the caller is bridged to it.
fn relayed(kit: &Legs, to: &Remote, ringing: agent_leg::Ringing, answer: &Offer) -> Bridged {
    let target = agent_leg::answered_target(answer, ringing.peer);
    let ignored = kit.metrics.guard().rtp_ignored();
    let leg = Session::start(
        ringing.socket,
        ringing.local,
        target,
        Mode::Silence,
        0,
        ignored,
    );
    Bridged {
        ext: to.user.clone(),
        lease: None,
        device: format!("node:{}", to.addr),
        leg,
        dialog: ringing.dialog,
        states: ringing.states,
        listenable: None,
        recording: None,
        sdp: super::hold::AgentSdp {
            session_id: ringing.session_id,
            version: 1,
        },
        held: false,
    }
}

/// The Replaces header's value of an INVITE, if it has one.
pub fn replaces_of(req: &Request) -> Option<String> {
    req.headers.iter().find_map(|h| match h {
        Header::Replaces(r) => Some(r.value().to_string()),
        _ => None,
    })
}

fn proof_of(req: &Request) -> Option<String> {
    req.headers.iter().find_map(|h| match h {
        Header::Other(name, value) if name.eq_ignore_ascii_case(PROOF_HEADER) => {
            Some(value.clone())
        }
        _ => None,
    })
}

/// Checks the incoming INVITE with Replaces `tx` (Call-ID `call_id`, Replaces `replaces`) and
/// takes the leg it names, kept for the call until it is answered ([`adopt`]); refused, the
/// INVITE is answered with its status and `Err` says it was never a call: nothing else
/// touched, no call record (the caller lets the transaction absorb the ACK).
pub async fn admit(
    kit: &Legs,
    tx: &mut Transaction,
    call_id: &str,
    replaces: &str,
) -> Result<(), u16> {
    let status = match check(kit, tx, call_id, replaces).await {
        Ok(leg) => {
            kit.queue.hand(call_id, leg);
            return Ok(());
        }
        Err(status) => status,
    };
    if let Err(e) = tx.reply(StatusCode::from(status)).await {
        debug!(call_id, status, error = %e, "cannot refuse the INVITE with Replaces");
    }
    Err(status)
}

/// [`admit`]'s checks and the takeover: the leg, or the INVITE's final status.
async fn check(
    kit: &Legs,
    tx: &Transaction,
    call_id: &str,
    replaces: &str,
) -> Result<Bridged, u16> {
    let source = crate::registrar::source_of(tx).map(|s| s.addr);
    let from_node = source.is_some_and(|s| {
        live_nodes(&kit.cluster.balancer)
            .iter()
            .any(|n| n.ip() == s.ip())
    });
    let verifier = kit.queue.proofs.get_or_init(|| {
        callfleet_sign::Verifier::new(kit.cfg.cluster_key(), callfleet_sign::WINDOW)
    });
    let proof = proof_of(&tx.original);
    let checked = xreplaces::check(
        verifier,
        replaces,
        proof.as_deref(),
        call_id,
        callfleet_sign::now_ms(),
    );
    let (replaces, device) = match checked {
        Ok(ok) if from_node => ok,
        Ok(_) => {
            info!(call_id, source = ?source, "INVITE with Replaces refused: not from a live cluster node");
            return Err(403);
        }
        Err(forged) => {
            info!(call_id, source = ?source, %forged, "INVITE with Replaces refused");
            return Err(forged.status());
        }
    };
    let registry = &kit.queue.replaceable;
    let dialog = judge(&replaces, &device, |d| registry.candidate(d)).map_err(|r| {
        info!(call_id, device, refusal = %r, "INVITE with Replaces refused");
        incoming_status(&r)
    })?;
    let Some(rx) = registry.take_over(&dialog, &device, call_id) else {
        return Err(481);
    };
    match tokio::time::timeout(HANDOVER_WAIT, rx).await {
        Ok(Ok(leg)) => {
            info!(call_id, device, replaced = %dialog.call_id, "leg handed over to another node's call (attended transfer)");
            Ok(leg)
        }
        _ => Err(481),
    }
}

/// An INVITE's status for a [`Refusal`] of its Replaces (RFC 3891 §3: 481 when no dialog
/// matches, 486 for an answered early-only one, 403 for another phone's call).
fn incoming_status(r: &Refusal) -> u16 {
    match r {
        Refusal::NotBridged => 481,
        other => other.status(),
    }
}

/// Bridges the answered call to the leg handed over to it ([`admit`]) until either side
/// ends; the agent's wrap-up and release as a direct call's.
pub async fn adopt(ctx: &mut CallCtx<'_>, kit: &Legs, b: Bridged) -> Ended {
    let target = RingFor {
        queue: None,
        entry: None,
    };
    let (mut call, _) = QueuedCall::direct(crate::now_ms(), vec![b.ext.clone()]);
    let answered = super::engine::Event::Answered {
        agent: b.ext.clone(),
    };
    // The machine bridges: what follows its Bridge action (the listeners' leg opened, the
    // answer logged) is the talk's first work.
    let mut actions = call.on(crate::now_ms(), answered).into_iter();
    for a in actions.by_ref() {
        if matches!(a, super::engine::Action::Bridge(_)) {
            break;
        }
    }
    bridge(ctx.media, &b.leg);
    let agent = b.lease.is_some().then_some(b.ext.as_str());
    kit.calls.set_served(ctx.call_id, None, agent);
    match legs::talk(ctx, kit, &mut call, b, target, actions.collect()).await {
        Rang::Over(Outcome::End(ended)) => ended,
        Rang::Over(Outcome::Transfer(to)) => crate::dialplan::transferred(ctx, kit, to).await,
        _ => Ended::new(HangupCause::Normal, HangupSide::Node),
    }
}

/// A leg handed over to a call that was never answered (its caller left first): ended, and
/// its agent freed.
pub async fn abandon(kit: &Legs, call_id: &str) {
    let Some(b) = kit.queue.take_handed(call_id) else {
        return;
    };
    info!(call_id, agent = %b.ext, "the call a leg was handed to ended before its answer; the leg ends");
    if let Err(e) = b.dialog.bye().await {
        debug!(error = %e, "cannot send BYE to the handed leg");
    }
    b.leg.stop();
    if let Some(lease) = &b.lease {
        take::release(&kit.leases(), &b.ext, lease, Some(AgentState::InCall)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incoming_statuses() {
        let cases = [
            (Refusal::NoSuchDialog, 481),
            (Refusal::NotBridged, 481),
            (Refusal::OtherPhone, 403),
            (Refusal::EarlyOnly, 486),
            (Refusal::Malformed, 400),
        ];
        for (r, want) in cases {
            assert_eq!(incoming_status(&r), want, "{r:?}");
        }
    }
}
