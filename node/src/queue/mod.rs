//! The cluster queue on this node: the dispatcher that reads the shared queue and agent state,
//! computes who gets which call (`acd::assign`, the same result on every node), and hands each
//! of this node's calls its agents; and the caller's side of a queued call (`caller`): waiting
//! with music and position announcements, ringing agents under a lease, bridging, wrap-up.
//!
//! Two lines of defence keep an agent to one call: the agent's lease in lockd (`agent:<ext>`)
//! and the guarded SQL update `available → ringing`. Either refusal means "not this agent now".

pub mod agent_leg;
pub mod attended;
pub mod caller;
pub mod dispatcher;
pub mod engine;
pub mod fence;
pub mod hold;
pub mod legs;
pub mod reach;
pub mod take;
pub mod transfer;
pub mod voicemail;
pub mod xnode;
pub mod xreplaces;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rsipstack::dialog::dialog_layer::DialogLayer;
use tokio::sync::mpsc;

use crate::acd::Assignment;

/// An offer of agents to one waiting call, from the dispatcher.
#[derive(Debug, Clone)]
pub struct Offer {
    pub agents: Vec<String>,
}

/// The dispatcher's latest view, shared with waiting callers for announcements.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    /// Waiting calls of every node in serving order: (entry id, queue).
    pub order: Vec<(i64, String)>,
}

impl Snapshot {
    /// Calls of the same queue ahead of `entry` (0 = next), if it is waiting.
    pub fn ahead(&self, entry: i64) -> Option<usize> {
        let pos = self.order.iter().position(|(id, _)| *id == entry)?;
        let queue = &self.order[pos].1;
        Some(self.order[..pos].iter().filter(|(_, q)| q == queue).count())
    }
}

/// This node's queue state: calls waiting here and the channels to reach them.
#[derive(Default)]
pub struct Local {
    /// A std mutex: map operations only, never held across an `.await`.
    waiting: Mutex<HashMap<i64, mpsc::UnboundedSender<Offer>>>,
    snapshot: Mutex<Arc<Snapshot>>,
    /// The SIP dialog layer, set once SIP has started (agent legs are dialled through it).
    pub dialogs: OnceLock<Arc<DialogLayer>>,
    /// Agents whose phones this node found unregistered (a std mutex, never held across an
    /// `.await`).
    reach: Mutex<reach::Reach>,
    /// Calls placed by phones, by their phone-facing dialog: what a REFER with Replaces from
    /// the same phone may name (see [`attended`]); a call hands over its bridged agent leg.
    pub replaceable: attended::Registry<legs::Bridged>,
    /// Legs handed over to another node's INVITE with Replaces, by that INVITE's Call-ID,
    /// until its call is answered and takes them ([`xnode`]; a std mutex, never held across
    /// an `.await`).
    handed: Mutex<HashMap<String, legs::Bridged>>,
    /// Checks the cluster proof of other nodes' INVITEs with Replaces (made on first use).
    pub proofs: OnceLock<callfleet_sign::Verifier>,
}

impl Local {
    fn lock_waiting(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<i64, mpsc::UnboundedSender<Offer>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a waiting call; offers for it arrive on the returned channel.
    pub fn wait(&self, entry: i64) -> mpsc::UnboundedReceiver<Offer> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock_waiting().insert(entry, tx);
        rx
    }

    pub fn forget(&self, entry: i64) {
        self.lock_waiting().remove(&entry);
    }

    /// Delivers an assignment to the call it is for, if that call waits here.
    pub fn deliver(&self, a: &Assignment) -> bool {
        let waiting = self.lock_waiting();
        match waiting.get(&a.entry_id) {
            Some(tx) => tx
                .send(Offer {
                    agents: a.agents.clone(),
                })
                .is_ok(),
            None => false,
        }
    }

    pub fn reach(&self) -> std::sync::MutexGuard<'_, reach::Reach> {
        self.reach.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether agent `ext` is skipped now: its phone was found unregistered and its backoff
    /// runs.
    pub fn unreachable(&self, ext: &str, now_ms: i64) -> bool {
        self.reach().skipped(ext, now_ms)
    }

    /// A REGISTER for `device` arrived at this node: its agents are looked up again.
    pub fn device_registered(&self, device: &str) {
        self.reach().device_registered(device);
    }

    pub fn waiting_here(&self) -> usize {
        self.lock_waiting().len()
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Keeps the leg handed over to the incoming call `call_id` until it is answered.
    pub(crate) fn hand(&self, call_id: &str, leg: legs::Bridged) {
        let mut handed = self.handed.lock().unwrap_or_else(|p| p.into_inner());
        handed.insert(call_id.to_string(), leg);
    }

    /// The leg handed over to the call `call_id`, if any (taken once).
    pub(crate) fn take_handed(&self, call_id: &str) -> Option<legs::Bridged> {
        let mut handed = self.handed.lock().unwrap_or_else(|p| p.into_inner());
        handed.remove(call_id)
    }

    fn set_snapshot(&self, s: Snapshot) {
        *self.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(s);
    }
}

/// The lease key of an agent in lockd.
pub fn agent_key(ext: &str) -> String {
    format!("agent:{ext}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        let s = Snapshot {
            order: vec![(5, "a".into()), (3, "b".into()), (9, "a".into())],
        };
        assert_eq!(s.ahead(5), Some(0));
        assert_eq!(s.ahead(3), Some(0));
        assert_eq!(s.ahead(9), Some(1));
        assert_eq!(s.ahead(7), None);
    }
}
