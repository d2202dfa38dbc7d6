//! This node's live calls, in memory: admitted at the moment the routing decision keeps an
//! INVITE here (so a burst counts against capacity at once), claimed by the INVITE's handler,
//! answered, then removed at the end.
//!
//! Every call has its own number ([`CallUid`]), given at admission and never reused while the
//! process runs: the table, the call's handler and its CDR go by it, so no request can reach or
//! close another call by naming its Call-ID. A Call-ID is still unique among the live calls
//! (a second INVITE with a live Call-ID is refused before admission), which keeps the HTTP
//! API, the live-call rows and the queue keyed by Call-ID unambiguous.
//!
//! An admitted INVITE is *pending* until its handler claims it by transaction key. A pending
//! admission the handler never claims is given up by [`CallTable::expire_pending`]: its
//! `give_up` action sends the caller a final answer and the slot is freed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use callfleet_store::LiveCall;

/// One call's number in this node's table.
pub type CallUid = u64;

/// Where a call is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// The decision kept it; the handler has not picked it up yet.
    Admitted,
    Ringing,
    Answered,
}

impl CallState {
    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Admitted => "admitted",
            CallState::Ringing => "ringing",
            CallState::Answered => "answered",
        }
    }
}

#[derive(Debug, Clone)]
pub struct CallEntry {
    pub uid: CallUid,
    pub call_id: String,
    pub from_uri: String,
    pub to_uri: String,
    /// The address the INVITE came from.
    pub peer: IpAddr,
    pub state: CallState,
    pub started_at_ms: i64,
    pub answered_at_ms: Option<i64>,
    pub redirected_from: Option<String>,
    /// The queue the call waits or waited in.
    pub queue: Option<String>,
    /// The agent the call is (or was) connected to.
    pub agent: Option<String>,
    /// Where the INVITE came from (the caller's signalling address, with its port).
    pub source: Option<std::net::SocketAddr>,
    /// The phone (device extension) whose digest credentials the INVITE carried; `None` for
    /// calls that are not a phone's (carriers). Never taken from the From header.
    pub device: Option<String>,
    /// For an outbound call (the phone dialled out through the trunk), the number dialled.
    pub destination: Option<String>,
}

/// What a new call is admitted with.
#[derive(Debug, Clone)]
pub struct Admit {
    pub call_id: String,
    pub from_uri: String,
    pub to_uri: String,
    pub peer: IpAddr,
    pub redirected_from: Option<String>,
    /// The INVITE's server transaction key: what its handler claims the call by.
    pub tx_key: String,
}

/// Sends the caller a final answer for an admission nobody claimed.
pub type GiveUp = Box<dyn FnOnce() + Send>;

struct Pending {
    uid: CallUid,
    since: Instant,
    give_up: GiveUp,
}

#[derive(Default)]
struct Tables {
    calls: HashMap<CallUid, CallEntry>,
    by_call_id: HashMap<String, CallUid>,
    /// Admissions not claimed yet, by transaction key.
    pending: HashMap<String, Pending>,
}

/// Why an INVITE was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A live call here has this Call-ID.
    CallIdInUse,
}

/// The table; a std mutex because no lock is held across an `.await` and every critical
/// section is a few map operations.
#[derive(Default)]
pub struct CallTable {
    tables: Mutex<Tables>,
    active: AtomicU32,
    next_uid: AtomicU64,
}

impl std::fmt::Debug for CallTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CallTable({} active)", self.active())
    }
}

impl CallTable {
    /// Calls in progress (admitted, ringing or answered).
    pub fn active(&self) -> u32 {
        self.active.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        // A panic while holding this lock cannot leave the maps inconsistent with each other
        // in a way that matters (each operation inserts or removes one call), so a poisoned
        // lock is still usable.
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a live call has this Call-ID.
    pub fn contains(&self, call_id: &str) -> bool {
        self.lock().by_call_id.contains_key(call_id)
    }

    /// The live call with this Call-ID.
    pub fn get(&self, call_id: &str) -> Option<CallEntry> {
        let t = self.lock();
        let uid = t.by_call_id.get(call_id)?;
        t.calls.get(uid).cloned()
    }

    /// Admits a new call, pending until [`claim`](Self::claim)ed; refused if a live call has
    /// its Call-ID.
    pub fn admit(&self, call: Admit, now_ms: i64, give_up: GiveUp) -> Result<CallUid, Refused> {
        let mut t = self.lock();
        if t.by_call_id.contains_key(&call.call_id) {
            return Err(Refused::CallIdInUse);
        }
        let uid = self.next_uid.fetch_add(1, Ordering::Relaxed) + 1;
        t.by_call_id.insert(call.call_id.clone(), uid);
        t.pending.insert(
            call.tx_key,
            Pending {
                uid,
                since: Instant::now(),
                give_up,
            },
        );
        t.calls.insert(
            uid,
            CallEntry {
                uid,
                call_id: call.call_id,
                from_uri: call.from_uri,
                to_uri: call.to_uri,
                peer: call.peer,
                state: CallState::Admitted,
                started_at_ms: now_ms,
                answered_at_ms: None,
                redirected_from: call.redirected_from,
                queue: None,
                agent: None,
                source: None,
                device: None,
                destination: None,
            },
        );
        self.active.fetch_add(1, Ordering::Relaxed);
        Ok(uid)
    }

    /// The handler of the INVITE with transaction key `tx_key` takes its admitted call; `None`
    /// when it was never admitted or was given up already.
    pub fn claim(&self, tx_key: &str) -> Option<CallUid> {
        let mut t = self.lock();
        let pending = t.pending.remove(tx_key)?;
        Some(pending.uid)
    }

    /// Takes out the admissions pending for longer than `max_age`, with their calls; the
    /// caller runs each `give_up` and writes the record.
    pub fn expire_pending(&self, max_age: Duration) -> Vec<(CallEntry, GiveUp)> {
        let mut t = self.lock();
        let stale: Vec<String> = t
            .pending
            .iter()
            .filter(|(_, p)| p.since.elapsed() >= max_age)
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Vec::with_capacity(stale.len());
        for key in stale {
            let Some(p) = t.pending.remove(&key) else {
                continue;
            };
            if let Some(entry) = t.calls.remove(&p.uid) {
                t.by_call_id.remove(&entry.call_id);
                self.active.fetch_sub(1, Ordering::Relaxed);
                out.push((entry, p.give_up));
            }
        }
        out
    }

    /// Moves a call to `state`; returns the entry as it is now.
    pub fn set_state(&self, uid: CallUid, state: CallState, now_ms: i64) -> Option<CallEntry> {
        let mut t = self.lock();
        let e = t.calls.get_mut(&uid)?;
        e.state = state;
        if state == CallState::Answered {
            e.answered_at_ms = Some(now_ms);
        }
        Some(e.clone())
    }

    /// Notes who sent the INVITE of the live call with this Call-ID: its source address and,
    /// for a phone's call, the device that authenticated.
    pub fn set_caller(
        &self,
        call_id: &str,
        source: Option<std::net::SocketAddr>,
        device: Option<String>,
    ) {
        let mut t = self.lock();
        let Some(uid) = t.by_call_id.get(call_id).copied() else {
            return;
        };
        if let Some(e) = t.calls.get_mut(&uid) {
            e.source = source;
            e.device = device;
        }
    }

    /// The signalling source and authenticated device of the live call with this Call-ID
    /// (see [`CallTable::set_caller`]).
    pub fn caller(&self, call_id: &str) -> (Option<std::net::SocketAddr>, Option<String>) {
        self.get(call_id)
            .map(|e| (e.source, e.device))
            .unwrap_or_default()
    }

    /// Notes the queue and/or agent serving the live call with this Call-ID (kept for its CDR).
    /// Once an agent answered, the call stays theirs and their queue's: a caller the agent
    /// transfers is counted once, as answered by the first agent (what happens after the
    /// transfer is in the queue events).
    pub fn set_served(&self, call_id: &str, queue: Option<&str>, agent: Option<&str>) {
        let mut t = self.lock();
        let Some(uid) = t.by_call_id.get(call_id).copied() else {
            return;
        };
        if let Some(e) = t.calls.get_mut(&uid).filter(|e| e.agent.is_none()) {
            if let Some(q) = queue {
                e.queue = Some(q.to_string());
            }
            if let Some(a) = agent {
                e.agent = Some(a.to_string());
            }
        }
    }

    /// Notes that the live call with this Call-ID goes out through the trunk to `number`.
    pub fn set_outbound(&self, call_id: &str, number: &str) {
        let mut t = self.lock();
        let Some(uid) = t.by_call_id.get(call_id).copied() else {
            return;
        };
        if let Some(e) = t.calls.get_mut(&uid) {
            e.destination = Some(number.to_string());
        }
    }

    /// Ends a call: out of the table, its slot free.
    pub fn remove(&self, uid: CallUid) -> Option<CallEntry> {
        let mut t = self.lock();
        let e = t.calls.remove(&uid)?;
        if t.by_call_id.get(&e.call_id) == Some(&uid) {
            t.by_call_id.remove(&e.call_id);
        }
        t.pending.retain(|_, p| p.uid != uid);
        self.active.fetch_sub(1, Ordering::Relaxed);
        Some(e)
    }

    pub fn snapshot(&self, node: &str) -> Vec<LiveCall> {
        let mut calls: Vec<LiveCall> = self
            .lock()
            .calls
            .values()
            .map(|e| e.to_live(node))
            .collect();
        calls.sort_by(|a, b| {
            a.started_at_ms
                .cmp(&b.started_at_ms)
                .then_with(|| a.call_id.cmp(&b.call_id))
        });
        calls
    }
}

impl CallEntry {
    pub fn to_live(&self, node: &str) -> LiveCall {
        LiveCall {
            node: node.to_string(),
            call_id: self.call_id.clone(),
            from_uri: self.from_uri.clone(),
            to_uri: self.to_uri.clone(),
            state: self.state.as_str().to_string(),
            started_at_ms: self.started_at_ms,
            answered_at_ms: self.answered_at_ms,
            redirected_from: self.redirected_from.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
