//! Taking agents and ringing phones for a call: the registration of an agent's phone (with
//! the backoff of [`super::reach`]), the agent taken (lease first, then the guarded SQL
//! update), the INVITE to its phone, a ring group's device member rung without an agent, and
//! an agent put back ([`release`], which takes only the [`Leases`]: it may run after the call
//! is gone). The legs' shell ([`super::legs`]) races and bridges what is taken here.

use std::time::Duration;

use callfleet_lockd::Lease;
use callfleet_store::{AgentState, Registration};
use tracing::{debug, info, warn};

use super::agent_leg::{self, Dial, Ringing};
use super::reach::Change;
use super::{agent_key, fence};
use crate::node::{Leases, Legs};
use crate::now_ms;
use crate::sip::ctx::CallCtx;

/// How long a lease outlives the ring timeout before it must be renewed.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// A phone being rung for this call: an agent taken (lease held, SQL state `ringing`), or a
/// ring group's device member (no agent, no lease).
pub struct Taken {
    /// The leg's name in the machine: the agent's extension, or `device:EXT` for a phone.
    pub(super) ext: String,
    /// The agent's lease; `None` for a phone rung directly.
    pub(super) lease: Option<Lease>,
    /// The device (phone) rung.
    pub(super) device: String,
    pub(super) ringing: Ringing,
}

impl Taken {
    pub fn ext(&self) -> &str {
        &self.ext
    }
}

/// Takes agent `ext` and rings its phone (as a direct call does); `None` when the agent is
/// logged out, its phone is not registered, or it cannot be taken (busy, paused, leased).
pub async fn take_agent(
    ctx: &CallCtx<'_>,
    kit: &Legs,
    ext: &str,
    ring_timeout: Duration,
) -> Option<Taken> {
    let binding = phone(kit, ext).await?;
    take(ctx, kit, ext, &binding, ring_timeout).await
}

/// Rings the phone registered for device `device` directly (no agent, no lease); `None` when
/// it is not registered or cannot be rung from this node.
pub async fn ring_device(ctx: &CallCtx<'_>, kit: &Legs, device: &str) -> Option<Taken> {
    let bindings = match kit.store.registrations(device, now_ms()).await {
        Ok(b) => b,
        Err(e) => {
            debug!(device, error = %e, "cannot read the phone's registration; not ringing it");
            return None;
        }
    };
    let Some(binding) = bindings.into_iter().find(|b| rings_from_here(kit, b)) else {
        debug!(
            device,
            "phone not registered (or not reachable from this node); not ringing it"
        );
        return None;
    };
    let ext = format!("device:{device}");
    let ringing = dial(ctx, kit, &ext, &binding).await?;
    Some(Taken {
        ext,
        lease: None,
        device: device.to_string(),
        ringing,
    })
}

/// The registration of agent `ext`'s phone, if it has one; `None` (without a lookup) while
/// the agent's backoff runs (see [`super::reach`]). The log tells when a phone becomes
/// unreachable and when it is reachable again, not every try.
pub(super) async fn phone(kit: &Legs, ext: &str) -> Option<Registration> {
    if kit.queue.unreachable(ext, now_ms()) {
        return None;
    }
    let device = match kit.store.agent(ext).await {
        Ok(agent) => agent?.device?,
        Err(e) => {
            debug!(agent = ext, error = %e, "cannot read the agent; not offering it");
            return None;
        }
    };
    let bindings = match kit.store.registrations(&device, now_ms()).await {
        Ok(b) => b,
        Err(e) => {
            debug!(agent = ext, error = %e, "cannot read the phone's registration; not offering the agent");
            return None;
        }
    };
    match bindings.into_iter().next() {
        Some(binding) if !rings_from_here(kit, &binding) => {
            let change = kit.queue.reach().not_registered(ext, &device, now_ms());
            if change == Change::Unreachable {
                info!(agent = ext, device = %device, "agent's phone cannot be rung from this node (registered over TCP on another node's connection); not offering calls to the agent here for now");
            }
            None
        }
        Some(binding) => {
            let change = kit.queue.reach().registered(ext);
            if change == Change::Reachable {
                info!(agent = ext, device = %device, "agent's phone is registered again; offering calls to the agent");
            }
            Some(binding)
        }
        None => {
            let change = kit.queue.reach().not_registered(ext, &device, now_ms());
            if change == Change::Unreachable {
                info!(agent = ext, device = %device, "agent's phone is not registered; not offering calls to the agent until it registers");
            }
            None
        }
    }
}

/// Whether this node can ring `binding` (a TCP phone only on its own connection, held by the
/// node it registered with).
fn rings_from_here(kit: &Legs, binding: &Registration) -> bool {
    binding
        .received
        .parse()
        .ok()
        .and_then(|via| agent_leg::RingOver::for_binding(&kit.cfg, &binding.transport, via))
        .is_some()
}

/// Lease, guarded SQL update, then the INVITE to the agent's phone (`binding`, found
/// registered just before).
pub(super) async fn take(
    ctx: &CallCtx<'_>,
    kit: &Legs,
    ext: &str,
    binding: &Registration,
    ring_timeout: Duration,
) -> Option<Taken> {
    let owner = format!(
        "{}:{}:{}",
        kit.cfg.node.name, kit.life.generation, ctx.call_id
    );
    let lease = match kit
        .cluster
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
    let me = kit.cfg.node.name.as_str();
    let moved = fence::move_agent(
        &kit.store,
        ext,
        &lease,
        &[AgentState::Available],
        AgentState::Ringing,
        Some((ctx.call_id, me)),
    )
    .await;
    if !moved {
        release(&kit.leases(), ext, &lease, None).await;
        return None;
    }
    match dial(ctx, kit, ext, binding).await {
        Some(ringing) => Some(Taken {
            ext: ext.to_string(),
            lease: Some(lease),
            device: binding.aor.clone(),
            ringing,
        }),
        None => {
            release(&kit.leases(), ext, &lease, Some(AgentState::Ringing)).await;
            None
        }
    }
}

async fn dial(ctx: &CallCtx<'_>, kit: &Legs, ext: &str, binding: &Registration) -> Option<Ringing> {
    let via = binding.received.parse().ok()?;
    let Some(over) = agent_leg::RingOver::for_binding(&kit.cfg, &binding.transport, via) else {
        info!(agent = ext, aor = %binding.aor, "agent's phone registered over TCP on a connection this node does not hold");
        return None;
    };
    let (socket, local) = kit.media.ports.bind().await.ok()?;
    let d = Dial {
        agent: ext.to_string(),
        contact: binding.contact.clone(),
        via,
        codec: ctx.media.target().codec,
        caller: ctx.caller.clone(),
        over,
    };
    let dialogs = kit.queue.dialogs.get()?;
    match agent_leg::dial(dialogs, kit.cfg.sip_advertise(), &d, socket, local) {
        Ok(r) => {
            kit.trace.link(&r.dialog.id().call_id, ctx.call_id);
            Some(r)
        }
        Err(e) => {
            warn!(agent = ext, error = %e, "cannot ring the agent");
            None
        }
    }
}

/// Puts an agent back: SQL state (from `from` to available, under the lease's token) and the
/// lease.
pub async fn release(leases: &Leases, ext: &str, lease: &Lease, from: Option<AgentState>) {
    if let Some(from) = from {
        fence::move_agent(
            &leases.store,
            ext,
            lease,
            &[from],
            AgentState::Available,
            None,
        )
        .await;
    }
    if let Err(e) = leases.locks.release(lease).await {
        debug!(agent = ext, error = %e, "cannot release the agent's lease (it expires by itself)");
    }
}
