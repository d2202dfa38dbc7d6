//! Ring strategies: their names as stored in `queues.strategy`, and the pick of agents among
//! the eligible members of one tier.

use std::fmt;
use std::str::FromStr;

use rand::Rng;

use super::Candidate;

/// How a queue chooses among its eligible free members (the names are Asterisk's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Every eligible member rings at once; the first to answer takes the call.
    RingAll,
    /// The member whose last call ended longest ago (never called first).
    LeastRecent,
    /// The member with the fewest calls today.
    FewestCalls,
    /// A member chosen uniformly at random.
    Random,
    /// Round robin with memory: the next member after the last one offered (`rr_last`).
    RrMemory,
    /// Always the first member by (position, extension).
    Linear,
    /// A member chosen at random in proportion to its weight (weight 0 counts as 1).
    WRandom,
}

/// A strategy name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown ring strategy {name:?} (expected one of: ringall, leastrecent, fewestcalls, random, rrmemory, linear, wrandom)")]
pub struct UnknownStrategy {
    /// The name as given.
    pub name: String,
}

impl Strategy {
    /// Every strategy, in documentation order.
    pub const ALL: [Strategy; 7] = [
        Strategy::RingAll,
        Strategy::LeastRecent,
        Strategy::FewestCalls,
        Strategy::Random,
        Strategy::RrMemory,
        Strategy::Linear,
        Strategy::WRandom,
    ];

    /// The name stored in SQL and accepted by [`FromStr`].
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::RingAll => "ringall",
            Strategy::LeastRecent => "leastrecent",
            Strategy::FewestCalls => "fewestcalls",
            Strategy::Random => "random",
            Strategy::RrMemory => "rrmemory",
            Strategy::Linear => "linear",
            Strategy::WRandom => "wrandom",
        }
    }

    /// The agents to offer, chosen among `candidates` (non-empty, one tier, in member order
    /// (position, extension)). `rr_last` is the queue's last offered agent, for `rrmemory`.
    pub(super) fn pick<'a>(
        self,
        candidates: &[Candidate<'a>],
        rr_last: Option<(u32, &str)>,
        rng: &mut impl Rng,
    ) -> Vec<&'a str> {
        let ext = |c: &Candidate<'a>| c.agent.ext.as_str();
        let one = match self {
            Strategy::RingAll => return candidates.iter().map(ext).collect(),
            Strategy::LeastRecent => candidates
                .iter()
                .min_by_key(|c| (c.agent.last_call_end_ms, ext(c))),
            Strategy::FewestCalls => candidates
                .iter()
                .min_by_key(|c| (c.agent.calls_today, ext(c))),
            Strategy::Random if candidates.is_empty() => None,
            Strategy::Random => candidates.get(rng.random_range(0..candidates.len())),
            Strategy::RrMemory => rr_last
                .and_then(|last| candidates.iter().find(|c| c.order_key() > last))
                .or_else(|| candidates.first()),
            Strategy::Linear => candidates.first(),
            Strategy::WRandom => weighted(candidates, rng),
        };
        one.map(ext).into_iter().collect()
    }
}

/// A candidate drawn with probability weight / total weight (weight 0 counts as 1).
fn weighted<'c, 'a>(
    candidates: &'c [Candidate<'a>],
    rng: &mut impl Rng,
) -> Option<&'c Candidate<'a>> {
    let weight = |c: &Candidate<'a>| u64::from(c.member.weight.max(1));
    let total: u64 = candidates.iter().map(weight).sum();
    if total == 0 {
        return None;
    }
    let mut ticket = rng.random_range(0..total);
    candidates
        .iter()
        .find(|c| match ticket.checked_sub(weight(c)) {
            Some(rest) => {
                ticket = rest;
                false
            }
            None => true,
        })
}

impl FromStr for Strategy {
    type Err = UnknownStrategy;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Strategy::ALL
            .into_iter()
            .find(|s| s.as_str() == name)
            .ok_or_else(|| UnknownStrategy {
                name: name.to_string(),
            })
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests;
