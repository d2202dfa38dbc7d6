//! Failure limits for guessing attacks, sans-IO: phones' digest passwords (REGISTER and
//! INVITE) and agents' hot-desk PINs. Failures are counted per source and per subject (the
//! extension or agent guessed at); `max_failures` within `window` bans that key for `ban`,
//! and each further ban of the same key while the previous one is remembered doubles, up to
//! `max_ban` (growing backoff, as Kamailio's pike/htable setups do). A banned key is refused
//! before any password work. Time comes in as `now_ms`.
//!
//! A check is admitted ([`Throttle::admit`]) before its password work and counted as pending
//! until its outcome ([`Throttle::failure`], [`Throttle::success`], [`Throttle::abandon`]):
//! a key whose failures plus pending checks reach `max_failures` admits nothing more, so a
//! burst of concurrent guesses gets no more checks than the limit. Such a key is
//! [`Gate::Busy`], not [`Gate::Banned`]: nothing failed yet, and a slot frees as soon as a
//! check in flight finishes, so a shell may hold the request back briefly and ask again
//! (a crowd of honest phones behind one NAT address registering at once) instead of
//! refusing it.
//!
//! Optionally (`trust_ms > 0`), a peer that succeeded for a subject is trusted for that
//! subject: no ban refuses it that subject, so guessing at someone's extension from elsewhere
//! cannot lock the real phone out. The peer key is finer than the source key (a phone's exact
//! address and port, where bans are per IP address), so another host behind the same NAT is
//! still limited. Hot-desk PINs use no trust: a phone an agent used before gets no more
//! guesses at that agent's PIN than any other.
//!
//! Memory is bounded: at most `cap` keys per kind; when full, keys with nothing left to
//! remember are forgotten first, then the least recently active.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::Duration;

/// The limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Failures within `window_ms` that start a ban.
    pub max_failures: u32,
    pub window_ms: i64,
    /// The first ban; each later one doubles.
    pub ban_ms: i64,
    /// The longest ban; a key whose last ban ended longer ago than this starts over.
    pub max_ban_ms: i64,
    /// How long a success makes its peer trusted for its subject; 0: never.
    pub trust_ms: i64,
    /// Most keys remembered per kind (sources, subjects, trusted pairs).
    pub cap: usize,
}

impl Policy {
    /// Limits with no trusted peers (see [`Policy::trusting`]).
    pub fn new(max_failures: u32, window: Duration, ban: Duration, max_ban: Duration) -> Policy {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Policy {
            max_failures: max_failures.max(1),
            window_ms: ms(window),
            ban_ms: ms(ban).max(1),
            max_ban_ms: ms(max_ban).max(ms(ban)),
            trust_ms: 0,
            cap: 100_000,
        }
    }

    /// The same limits, with peers trusted for `trust` after a success.
    pub fn trusting(self, trust: Duration) -> Policy {
        Policy {
            trust_ms: i64::try_from(trust.as_millis()).unwrap_or(i64::MAX),
            ..self
        }
    }
}

/// Which key a ban or a refusal is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Source,
    Subject,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Source => "source",
            Scope::Subject => "subject",
        }
    }
}

/// May a request be checked at all?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Refuse it without checking: `scope` is banned until `until_ms`.
    Banned {
        scope: Scope,
        until_ms: i64,
    },
    /// Not now: `scope` has as many checks in flight as it has failures left. Nothing is
    /// banned; asking again after one of those checks finishes may open.
    Busy {
        scope: Scope,
    },
}

impl Gate {
    /// Whether the request may be checked.
    pub fn is_open(self) -> bool {
        self == Gate::Open
    }
}

/// Why a key admits nothing now (see [`Gate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shut {
    Banned { until_ms: i64 },
    Busy,
}

impl Shut {
    fn gate(self, scope: Scope) -> Gate {
        match self {
            Shut::Banned { until_ms } => Gate::Banned { scope, until_ms },
            Shut::Busy => Gate::Busy { scope },
        }
    }
}

/// A ban that starts now (log it and count it, once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ban {
    pub scope: Scope,
    pub until_ms: i64,
    /// 1 for a first ban, 2 for the next (twice as long), ...
    pub strike: u32,
}

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    failures: u32,
    /// Checks admitted whose outcome is not known yet.
    pending: u32,
    window_start_ms: i64,
    banned_until_ms: i64,
    strikes: u32,
    last_ms: i64,
}

impl Entry {
    /// Counts one failure; the ban it starts, if any.
    fn fail(&mut self, p: &Policy, now_ms: i64) -> Option<(i64, u32)> {
        self.last_ms = now_ms;
        if self.banned_until_ms > now_ms {
            return None; // already banned: nothing new to say
        }
        if self.failures == 0 || now_ms.saturating_sub(self.window_start_ms) > p.window_ms {
            self.failures = 0;
            self.window_start_ms = now_ms;
        }
        self.failures += 1;
        if self.failures < p.max_failures {
            return None;
        }
        if self.strikes > 0 && now_ms.saturating_sub(self.banned_until_ms) > p.max_ban_ms {
            self.strikes = 0; // the last ban is long forgotten
        }
        self.strikes = self.strikes.saturating_add(1);
        let shift = (self.strikes - 1).min(30);
        let length = p.ban_ms.saturating_mul(1 << shift).min(p.max_ban_ms);
        self.banned_until_ms = now_ms.saturating_add(length);
        self.failures = 0;
        Some((self.banned_until_ms, self.strikes))
    }

    /// Failures that still count (in the current window).
    fn live_failures(&self, p: &Policy, now_ms: i64) -> u32 {
        if now_ms.saturating_sub(self.window_start_ms) > p.window_ms {
            0
        } else {
            self.failures
        }
    }

    /// Why nothing more may be checked now, if so: a ban, or the checks in flight may use up
    /// the failures left.
    fn closed(&self, p: &Policy, now_ms: i64) -> Option<Shut> {
        if self.banned_until_ms > now_ms {
            return Some(Shut::Banned {
                until_ms: self.banned_until_ms,
            });
        }
        let budget = self.live_failures(p, now_ms).saturating_add(self.pending);
        (budget >= p.max_failures).then_some(Shut::Busy)
    }

    /// Nothing left to remember: no ban running or to grow, no failures in the window, no
    /// check in flight.
    fn forgettable(&self, p: &Policy, now_ms: i64) -> bool {
        let ban_over = now_ms.saturating_sub(self.banned_until_ms) > p.max_ban_ms;
        let window_over = now_ms.saturating_sub(self.window_start_ms) > p.window_ms;
        (self.strikes == 0 || ban_over) && (self.failures == 0 || window_over) && self.pending == 0
    }
}

/// Entries of one kind of key.
#[derive(Debug)]
struct Ledger<K> {
    map: HashMap<K, Entry>,
}

impl<K: Hash + Eq + Clone> Ledger<K> {
    fn closed(&self, key: &K, p: &Policy, now_ms: i64) -> Option<Shut> {
        self.map.get(key).and_then(|e| e.closed(p, now_ms))
    }

    fn entry(&mut self, key: &K, p: &Policy, now_ms: i64) -> &mut Entry {
        if !self.map.contains_key(key) {
            make_room(
                &mut self.map,
                p.cap,
                |e| e.forgettable(p, now_ms),
                |e| e.last_ms,
            );
        }
        let e = self.map.entry(key.clone()).or_default();
        e.last_ms = now_ms;
        e
    }

    fn start(&mut self, key: &K, p: &Policy, now_ms: i64) {
        let e = self.entry(key, p, now_ms);
        e.pending = e.pending.saturating_add(1);
    }

    fn finish(&mut self, key: &K) {
        if let Some(e) = self.map.get_mut(key) {
            e.pending = e.pending.saturating_sub(1);
        }
    }

    fn fail(&mut self, key: &K, p: &Policy, now_ms: i64) -> Option<(i64, u32)> {
        self.finish(key);
        self.entry(key, p, now_ms).fail(p, now_ms)
    }

    fn succeed(&mut self, key: &K, reset: bool) {
        self.finish(key);
        if let Some(e) = self.map.get_mut(key).filter(|_| reset) {
            e.failures = 0;
        }
    }
}

/// Makes room for one more entry: drops the forgettable ones, then the least recently active
/// tenth (sorting once per tenth keeps an insert cheap when an attacker fills the table).
fn make_room<K: Hash + Eq + Clone, V>(
    map: &mut HashMap<K, V>,
    cap: usize,
    forgettable: impl Fn(&V) -> bool,
    last: impl Fn(&V) -> i64,
) {
    if map.len() < cap.max(1) {
        return;
    }
    map.retain(|_, v| !forgettable(v));
    if map.len() < cap.max(1) {
        return;
    }
    let mut by_age: Vec<(i64, K)> = map.iter().map(|(k, v)| (last(v), k.clone())).collect();
    by_age.sort_by_key(|(t, _)| *t);
    let drop = (cap / 10).max(1);
    for (_, k) in by_age.into_iter().take(drop) {
        map.remove(&k);
    }
}

/// The limits for sources of type `S` (an address, a device) and subjects (extensions,
/// agents); peers of type `P` may be trusted (see the module).
#[derive(Debug)]
pub struct Throttle<S, P = S> {
    policy: Policy,
    sources: Ledger<S>,
    subjects: Ledger<String>,
    /// (peer, subject) pairs that succeeded, with the time of the last success.
    trusted: HashMap<(P, String), i64>,
}

impl<S: Hash + Eq + Clone, P: Hash + Eq + Clone> Throttle<S, P> {
    pub fn new(policy: Policy) -> Throttle<S, P> {
        Throttle {
            policy,
            sources: Ledger {
                map: HashMap::new(),
            },
            subjects: Ledger {
                map: HashMap::new(),
            },
            trusted: HashMap::new(),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Whether a request from `source` (as peer `peer`) about `subject` may be checked now.
    /// A ban of either key wins over a busy one (the request is refused, not held back), the
    /// source's over the subject's.
    pub fn check(&self, source: &S, peer: &P, subject: &str, now_ms: i64) -> Gate {
        if self.is_trusted(peer, subject, now_ms) {
            return Gate::Open;
        }
        let p = &self.policy;
        let source = self.sources.closed(source, p, now_ms);
        let subject = self.subjects.closed(&subject.to_string(), p, now_ms);
        match (source, subject) {
            (Some(s @ Shut::Banned { .. }), _) => s.gate(Scope::Source),
            (_, Some(s @ Shut::Banned { .. })) => s.gate(Scope::Subject),
            (Some(s), _) => s.gate(Scope::Source),
            (_, Some(s)) => s.gate(Scope::Subject),
            (None, None) => Gate::Open,
        }
    }

    /// [`Throttle::check`], and when open, counts the check as pending until its outcome is
    /// told ([`Throttle::failure`], [`Throttle::success`] or [`Throttle::abandon`]).
    pub fn admit(&mut self, source: &S, peer: &P, subject: &str, now_ms: i64) -> Gate {
        let gate = self.check(source, peer, subject, now_ms);
        if gate == Gate::Open {
            let p = self.policy;
            self.sources.start(source, &p, now_ms);
            self.subjects.start(&subject.to_string(), &p, now_ms);
        }
        gate
    }

    /// An admitted check that came to no verdict (an error, a challenge): no longer pending.
    pub fn abandon(&mut self, source: &S, subject: &str) {
        self.sources.finish(source);
        self.subjects.finish(&subject.to_string());
    }

    /// Counts a failed check; returns the bans it starts (at most one per scope).
    pub fn failure(&mut self, source: &S, subject: &str, now_ms: i64) -> Vec<Ban> {
        let p = self.policy;
        let mut bans = Vec::new();
        if let Some((until_ms, strike)) = self.sources.fail(source, &p, now_ms) {
            bans.push(Ban {
                scope: Scope::Source,
                until_ms,
                strike,
            });
        }
        if let Some((until_ms, strike)) = self.subjects.fail(&subject.to_string(), &p, now_ms) {
            bans.push(Ban {
                scope: Scope::Subject,
                until_ms,
                strike,
            });
        }
        bans
    }

    /// A successful check: the subject's failure count starts over and (with trust) the peer
    /// is trusted for it. The source's own count is left alone (a good password for one
    /// extension says nothing about guesses at others).
    pub fn success(&mut self, source: &S, peer: &P, subject: &str, now_ms: i64) {
        self.sources.succeed(source, false);
        self.subjects.succeed(&subject.to_string(), true);
        if self.policy.trust_ms <= 0 {
            return;
        }
        let key = (peer.clone(), subject.to_string());
        if !self.trusted.contains_key(&key) {
            let trust = self.policy.trust_ms;
            make_room(
                &mut self.trusted,
                self.policy.cap,
                |&at| now_ms.saturating_sub(at) > trust,
                |&at| at,
            );
        }
        self.trusted.insert(key, now_ms);
    }

    fn is_trusted(&self, peer: &P, subject: &str, now_ms: i64) -> bool {
        if self.policy.trust_ms <= 0 || self.trusted.is_empty() {
            return false;
        }
        self.trusted
            .get(&(peer.clone(), subject.to_string()))
            .is_some_and(|&at| now_ms.saturating_sub(at) <= self.policy.trust_ms)
    }

    /// Keys remembered (sources, subjects, trusted pairs), for tests and bounds.
    pub fn sizes(&self) -> (usize, usize, usize) {
        (
            self.sources.map.len(),
            self.subjects.map.len(),
            self.trusted.len(),
        )
    }
}

/// The key an address is counted under: IPv4 as is, IPv6 by its /64 (one host's share of a
/// network; an attacker gets a whole /64 as easily as one address). IPv4-mapped IPv6
/// addresses count as the IPv4 address.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests;
