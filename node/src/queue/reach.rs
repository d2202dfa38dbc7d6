//! Which agents' phones this node found unregistered: such an agent is not offered calls (no
//! lease, no state change, no history row) until its backoff passes or a REGISTER for its
//! phone arrives here. The backoff starts at [`FIRST_BACKOFF_MS`] and doubles at each lookup
//! that still finds no registration, up to [`MAX_BACKOFF_MS`]; while it runs, the agent's
//! registration is not looked up again. Pure: the time is given with every call.
//!
//! The memory is per node: another node's dispatcher may still count the agent as free (its
//! calls then find the phone unregistered themselves); the lease and the guarded SQL update
//! keep an agent to one call either way.

use std::collections::HashMap;

/// The first backoff after a lookup found no registration.
pub const FIRST_BACKOFF_MS: i64 = 5_000;
/// The longest backoff.
pub const MAX_BACKOFF_MS: i64 = 60_000;

/// What a lookup's result changed, for the log (once per change, never per try).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing to tell.
    Same,
    /// The agent's phone was reachable (or unknown) and is not registered now.
    Unreachable,
    /// The agent's phone was unreachable and is registered again.
    Reachable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// The phone found unregistered (an agent may log in on another one meanwhile).
    device: String,
    backoff_ms: i64,
    /// Until then the agent is skipped and its registration not looked up.
    retry_at_ms: i64,
}

/// Agents whose phones were found unregistered, by extension.
#[derive(Debug, Default)]
pub struct Reach {
    entries: HashMap<String, Entry>,
}

impl Reach {
    /// Whether agent `ext` is skipped at `now_ms` (its backoff runs).
    pub fn skipped(&self, ext: &str, now_ms: i64) -> bool {
        self.entries
            .get(ext)
            .is_some_and(|e| now_ms < e.retry_at_ms)
    }

    /// A lookup at `now_ms` found no registration of `device`, agent `ext`'s phone: the agent
    /// is skipped for the first backoff, or twice the last one (at most the longest).
    pub fn not_registered(&mut self, ext: &str, device: &str, now_ms: i64) -> Change {
        match self.entries.get_mut(ext) {
            Some(e) if e.device == device => {
                e.backoff_ms = (e.backoff_ms * 2).min(MAX_BACKOFF_MS);
                e.retry_at_ms = now_ms.saturating_add(e.backoff_ms);
                Change::Same
            }
            _ => {
                self.entries.insert(
                    ext.to_string(),
                    Entry {
                        device: device.to_string(),
                        backoff_ms: FIRST_BACKOFF_MS,
                        retry_at_ms: now_ms.saturating_add(FIRST_BACKOFF_MS),
                    },
                );
                Change::Unreachable
            }
        }
    }

    /// A lookup found agent `ext`'s phone registered: forgotten.
    pub fn registered(&mut self, ext: &str) -> Change {
        match self.entries.remove(ext) {
            Some(_) => Change::Reachable,
            None => Change::Same,
        }
    }

    /// A REGISTER for `device` arrived: the agents on it are looked up at their next offer
    /// (the backoff ends now, the next lookup tells whether they are reachable). Returns how
    /// many agents that concerns.
    pub fn device_registered(&mut self, device: &str) -> usize {
        let mut n = 0;
        for e in self.entries.values_mut().filter(|e| e.device == device) {
            e.retry_at_ms = i64::MIN;
            n += 1;
        }
        n
    }

    /// How many agents are remembered (skipped or due for a lookup).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One step of a scenario: what happens at `at_ms`, and what is expected.
    enum Step {
        /// A lookup found no registration of the device; the change told.
        NotRegistered(&'static str, &'static str, Change),
        /// A lookup found the agent's phone registered; the change told.
        Registered(&'static str, Change),
        /// A REGISTER for the device arrived; agents concerned.
        DeviceRegistered(&'static str, usize),
        /// Whether the agent is skipped.
        Skipped(&'static str, bool),
    }
    use Step::*;

    /// A first miss skips the agent for 5 s; other agents, and times far off, are not affected.
    #[test]
    fn skipped_for_5s_after_a_first_miss() {
        run(vec![
            (
                "unknown agents are not skipped",
                vec![(0, Skipped("a", false))],
            ),
            (
                "first miss: skipped for 5 s, told once",
                vec![
                    (0, NotRegistered("a", "2001", Change::Unreachable)),
                    (1, Skipped("a", true)),
                    (4_999, Skipped("a", true)),
                    (5_000, Skipped("a", false)),
                    (1, Skipped("b", false)),
                ],
            ),
            (
                "times far off do not overflow",
                vec![
                    (
                        i64::MAX - 1,
                        NotRegistered("a", "2001", Change::Unreachable),
                    ),
                    (i64::MAX - 1, Skipped("a", true)),
                    (0, Skipped("a", true)),
                ],
            ),
        ]);
    }

    /// Each further miss doubles the backoff, without telling again, up to 60 s.
    #[test]
    fn each_further_miss_doubles_the_backoff_up_to_60s() {
        run(vec![(
            "the backoff doubles, silently, up to 60 s",
            vec![
                (0, NotRegistered("a", "2001", Change::Unreachable)),
                (5_000, NotRegistered("a", "2001", Change::Same)),
                (14_999, Skipped("a", true)),
                (15_000, Skipped("a", false)),
                (15_000, NotRegistered("a", "2001", Change::Same)), // 20 s
                (35_000, NotRegistered("a", "2001", Change::Same)), // 40 s
                (75_000, NotRegistered("a", "2001", Change::Same)), // 60 s, not 80
                (134_999, Skipped("a", true)),
                (135_000, Skipped("a", false)),
                (135_000, NotRegistered("a", "2001", Change::Same)), // still 60 s
                (194_999, Skipped("a", true)),
                (195_000, Skipped("a", false)),
            ],
        )]);
    }

    /// A registration found, a REGISTER of the device or another phone ends the backoff.
    #[test]
    fn a_registration_ends_the_backoff() {
        run(vec![
            (
                "registered again: told once, forgotten, the backoff starts over",
                vec![
                    (0, NotRegistered("a", "2001", Change::Unreachable)),
                    (5_000, NotRegistered("a", "2001", Change::Same)),
                    (15_000, Registered("a", Change::Reachable)),
                    (15_001, Skipped("a", false)),
                    (15_002, Registered("a", Change::Same)),
                    (20_000, NotRegistered("a", "2001", Change::Unreachable)),
                    (24_999, Skipped("a", true)),
                    (25_000, Skipped("a", false)),
                ],
            ),
            (
                "a REGISTER of the device ends the backoff of its agents only",
                vec![
                    (0, NotRegistered("a", "2001", Change::Unreachable)),
                    (0, NotRegistered("b", "2002", Change::Unreachable)),
                    (0, NotRegistered("c", "2001", Change::Unreachable)),
                    (1, DeviceRegistered("2001", 2)),
                    (1, Skipped("a", false)),
                    (1, Skipped("c", false)),
                    (1, Skipped("b", true)),
                    (2, DeviceRegistered("2999", 0)),
                    (2, Registered("a", Change::Reachable)),
                    // A REGISTER that did not last: the backoff goes on where it was.
                    (3, NotRegistered("c", "2001", Change::Same)),
                    (10_002, Skipped("c", true)),
                    (10_003, Skipped("c", false)),
                ],
            ),
            (
                "an agent on another phone starts over",
                vec![
                    (0, NotRegistered("a", "2001", Change::Unreachable)),
                    (5_000, NotRegistered("a", "2001", Change::Same)),
                    (6_000, NotRegistered("a", "2002", Change::Unreachable)),
                    (10_999, Skipped("a", true)),
                    (11_000, Skipped("a", false)),
                    (11_000, DeviceRegistered("2001", 0)),
                ],
            ),
        ]);
    }

    /// Plays each named scenario on a fresh [`Reach`], checking every step.
    fn run(cases: Vec<(&str, Vec<(i64, Step)>)>) {
        for (name, steps) in cases {
            let mut r = Reach::default();
            for (i, (at, step)) in steps.into_iter().enumerate() {
                match step {
                    NotRegistered(ext, dev, want) => {
                        assert_eq!(r.not_registered(ext, dev, at), want, "{name}, step {i}")
                    }
                    Registered(ext, want) => {
                        assert_eq!(r.registered(ext), want, "{name}, step {i}")
                    }
                    DeviceRegistered(dev, want) => {
                        assert_eq!(r.device_registered(dev), want, "{name}, step {i}")
                    }
                    Skipped(ext, want) => {
                        assert_eq!(r.skipped(ext, at), want, "{name}, step {i}")
                    }
                }
            }
        }
    }

    #[test]
    fn remembered_agents_are_counted() {
        let mut r = Reach::default();
        assert!(r.is_empty());
        r.not_registered("a", "2001", 0);
        r.not_registered("b", "2002", 0);
        assert_eq!(r.len(), 2);
        r.registered("a");
        assert_eq!(r.len(), 1);
    }
}
