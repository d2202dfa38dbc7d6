//! A ring group's rounds, as a pure state machine: which members ring next, for how long, and
//! when the group gives up (the caller goes to its no-answer destination). Time is given in
//! milliseconds. Within a round the queue's machine ([`crate::queue::engine`]) decides the
//! race: the first answer wins, the other legs are CANCELled, a late answer is ended with BYE.
//!
//! - `all`: one round, every member at once, for the group's ring time; then no answer.
//! - `ordered`: one round per member in order, each for the ring time; a member that cannot
//!   be rung (agent logged out or busy, phone not registered) is passed over at once.
//!
//! A member named twice rings once (the first time). Every group gives up after at most one
//! round per member, so a call's ringing is bounded by members × ring time.

use callfleet_store::{GroupMember, GroupStrategy, RingGroup};

/// What the shell does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Ring these members at once until `until_ms` (those that cannot be rung are left out);
    /// then report the round with [`Rounds::round_over`].
    Ring {
        members: Vec<GroupMember>,
        until_ms: i64,
    },
    /// Nobody answered: the group's no-answer destination.
    NoAnswer,
}

/// One call's way through a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rounds {
    strategy: GroupStrategy,
    ring_ms: i64,
    /// The members not rung yet, in order, each once.
    left: Vec<GroupMember>,
}

impl Rounds {
    pub fn new(group: &RingGroup) -> Rounds {
        let mut left: Vec<GroupMember> = Vec::with_capacity(group.members.len());
        for m in &group.members {
            if !left.contains(m) {
                left.push(m.clone());
            }
        }
        Rounds {
            strategy: group.strategy,
            ring_ms: group.ring_ms.max(1),
            left,
        }
    }

    /// The first round, at `now_ms`.
    pub fn start(&mut self, now_ms: i64) -> Step {
        self.next(now_ms)
    }

    /// The round just rung ended at `now_ms` without an answer (or nobody in it could be
    /// rung): the next round, or no answer.
    pub fn round_over(&mut self, now_ms: i64) -> Step {
        self.next(now_ms)
    }

    fn next(&mut self, now_ms: i64) -> Step {
        if self.left.is_empty() {
            return Step::NoAnswer;
        }
        let members = match self.strategy {
            GroupStrategy::All => std::mem::take(&mut self.left),
            GroupStrategy::Ordered => vec![self.left.remove(0)],
        };
        Step::Ring {
            members,
            until_ms: now_ms.saturating_add(self.ring_ms),
        }
    }
}

#[cfg(test)]
mod tests;
