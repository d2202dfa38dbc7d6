//! Ring strategies: their names as stored in `queues.strategy`, and the pick of agents among
//! the eligible members of one tier.

use rand::Rng;

use super::Candidate;

pub use callfleet_vocab::Strategy;

/// The agents to offer under `strategy`, chosen among `candidates` (non-empty, one tier, in
/// member order (position, extension)). `rr_last` is the queue's last offered agent, for
/// `rrmemory`.
pub(super) fn pick<'a>(
    strategy: Strategy,
    candidates: &[Candidate<'a>],
    rr_last: Option<(u32, &str)>,
    rng: &mut impl Rng,
) -> Vec<&'a str> {
    let ext = |c: &Candidate<'a>| c.agent.ext.as_str();
    let one = match strategy {
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

#[cfg(test)]
mod tests;
