//! This node's live calls, in memory: admitted at the moment the routing decision keeps an
//! INVITE here (so a burst counts against capacity at once), answered, then removed at the end.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use callfleet_store::LiveCall;

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
    pub call_id: String,
    pub from_uri: String,
    pub to_uri: String,
    pub state: CallState,
    pub started_at_ms: i64,
    pub answered_at_ms: Option<i64>,
    pub redirected_from: Option<String>,
    /// The queue the call waits or waited in.
    pub queue: Option<String>,
    /// The agent the call is (or was) connected to.
    pub agent: Option<String>,
    /// Where the INVITE came from (the caller's signalling address).
    pub source: Option<std::net::SocketAddr>,
    /// The phone (device extension) whose digest credentials the INVITE carried; `None` for
    /// calls that are not a phone's (carriers). Never taken from the From header.
    pub device: Option<String>,
    admitted: Instant,
}

/// The table; a std mutex because no lock is held across an `.await` and every critical
/// section is a map operation.
#[derive(Debug, Default)]
pub struct CallTable {
    map: Mutex<HashMap<String, CallEntry>>,
    active: AtomicU32,
}

impl CallTable {
    /// Calls in progress (admitted, ringing or answered).
    pub fn active(&self) -> u32 {
        self.active.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CallEntry>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts
        // and removes), so a poisoned lock is still usable.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn contains(&self, call_id: &str) -> bool {
        self.lock().contains_key(call_id)
    }

    /// Admits a new call; false if one with this Call-ID is already here.
    pub fn admit(
        &self,
        call_id: &str,
        from_uri: String,
        to_uri: String,
        redirected_from: Option<String>,
        now_ms: i64,
    ) -> bool {
        let mut map = self.lock();
        if map.contains_key(call_id) {
            return false;
        }
        map.insert(
            call_id.to_string(),
            CallEntry {
                call_id: call_id.to_string(),
                from_uri,
                to_uri,
                state: CallState::Admitted,
                started_at_ms: now_ms,
                answered_at_ms: None,
                redirected_from,
                queue: None,
                agent: None,
                source: None,
                device: None,
                admitted: Instant::now(),
            },
        );
        self.active.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Moves an admitted call to `state`; returns the entry as it is now.
    pub fn set_state(&self, call_id: &str, state: CallState, now_ms: i64) -> Option<CallEntry> {
        let mut map = self.lock();
        let e = map.get_mut(call_id)?;
        e.state = state;
        if state == CallState::Answered {
            e.answered_at_ms = Some(now_ms);
        }
        Some(e.clone())
    }

    /// Notes who sent the INVITE: its source address and, for a phone's call, the device
    /// that authenticated.
    pub fn set_caller(
        &self,
        call_id: &str,
        source: Option<std::net::SocketAddr>,
        device: Option<String>,
    ) {
        if let Some(e) = self.lock().get_mut(call_id) {
            e.source = source;
            e.device = device;
        }
    }

    /// The call's signalling source and authenticated device (see [`CallTable::set_caller`]).
    pub fn caller(&self, call_id: &str) -> (Option<std::net::SocketAddr>, Option<String>) {
        self.lock()
            .get(call_id)
            .map(|e| (e.source, e.device.clone()))
            .unwrap_or_default()
    }

    /// Notes the queue and/or agent serving a call (kept for its CDR).
    pub fn set_served(&self, call_id: &str, queue: Option<&str>, agent: Option<&str>) {
        if let Some(e) = self.lock().get_mut(call_id) {
            if let Some(q) = queue {
                e.queue = Some(q.to_string());
            }
            if let Some(a) = agent {
                e.agent = Some(a.to_string());
            }
        }
    }

    pub fn get(&self, call_id: &str) -> Option<CallEntry> {
        self.lock().get(call_id).cloned()
    }

    pub fn remove(&self, call_id: &str) -> Option<CallEntry> {
        let e = self.lock().remove(call_id);
        if e.is_some() {
            self.active.fetch_sub(1, Ordering::Relaxed);
        }
        e
    }

    /// Drops calls admitted longer ago than `max_age` that no handler picked up (the INVITE was
    /// lost between the front and the transaction layer); returns how many.
    pub fn sweep_stale(&self, max_age: Duration) -> usize {
        let mut map = self.lock();
        let before = map.len();
        map.retain(|_, e| e.state != CallState::Admitted || e.admitted.elapsed() < max_age);
        let gone = before - map.len();
        self.active.fetch_sub(gone as u32, Ordering::Relaxed);
        gone
    }

    pub fn snapshot(&self, node: &str) -> Vec<LiveCall> {
        let mut calls: Vec<LiveCall> = self.lock().values().map(|e| e.to_live(node)).collect();
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
mod tests {
    use super::*;

    #[test]
    fn admit_is_once_per_call_id_and_counts() {
        let t = CallTable::default();
        assert!(t.admit("a", "f".into(), "t".into(), None, 1));
        assert!(!t.admit("a", "f".into(), "t".into(), None, 2));
        assert!(t.admit("b", "f".into(), "t".into(), Some("main-a".into()), 3));
        assert_eq!(t.active(), 2);
        let e = t.set_state("a", CallState::Answered, 10).expect("present");
        assert_eq!(e.answered_at_ms, Some(10));
        assert_eq!(t.snapshot("n").len(), 2);
        assert_eq!(t.caller("b"), (None, None));
        t.set_caller(
            "b",
            Some("127.0.0.1:5060".parse().expect("addr")),
            Some("2001".into()),
        );
        assert_eq!(
            t.caller("b"),
            (
                Some("127.0.0.1:5060".parse().expect("addr")),
                Some("2001".into())
            )
        );
        assert_eq!(t.caller("gone"), (None, None));
        assert!(t.remove("a").is_some());
        assert!(t.remove("a").is_none());
        assert_eq!(t.active(), 1);
    }

    #[test]
    fn stale_admissions_are_swept_but_live_calls_stay() {
        let t = CallTable::default();
        t.admit("a", "f".into(), "t".into(), None, 1);
        t.admit("b", "f".into(), "t".into(), None, 1);
        t.set_state("b", CallState::Ringing, 2);
        assert_eq!(t.sweep_stale(Duration::ZERO), 1);
        assert_eq!(t.active(), 1);
        assert!(t.contains("b"));
    }
}
