//! The demo's traffic, decided from a seed: when callers call, which queue, from which number
//! and how long they stay on the line; how long an agent's phone rings before it is picked up
//! and how long the agent talks. Pure, so a run can be replayed from its seed and the rules
//! are tested; the carrier and the phones only carry the decisions out.
//!
//! The shape: a burst of callers in the first seconds (more than the agents, so callers wait
//! and the main node spreads calls by 302), then a caller every 4 to 10 seconds, a little
//! faster than four agents answer, so the queues neither empty nor grow without end (callers
//! leave after one to two minutes).

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::seed::{SALES, SUPPORT, VIP_CALLER};

/// Callers in the opening burst.
pub const BURST: u32 = 8;
/// When the burst's first caller calls, and the gap between burst callers.
const BURST_START: Duration = Duration::from_millis(300);
const BURST_GAP: Duration = Duration::from_millis(450);
/// Gap between callers after the burst, in milliseconds.
const GAP_MS: std::ops::RangeInclusive<u64> = 4_000..=10_000;
/// How long a caller stays on the line at most (waiting and talking), in milliseconds.
const STAY_MS: std::ops::RangeInclusive<u64> = 45_000..=120_000;
/// Ringing before an agent's phone is picked up, in milliseconds (queues ring 15 s).
const RING_MS: std::ops::RangeInclusive<u64> = 1_500..=4_000;
/// How long an agent talks before hanging up, in milliseconds.
const TALK_MS: std::ops::RangeInclusive<u64> = 15_000..=45_000;
/// Every this many callers, one is the VIP caller (to `sales`).
const VIP_EVERY: u32 = 7;
/// Share of callers (out of 10) that call `sales`.
const SALES_IN_10: u32 = 6;

/// One caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    /// 1, 2, ... in call order.
    pub index: u32,
    /// Since the traffic started.
    pub at: Duration,
    /// The number dialled: a queue's name.
    pub queue: &'static str,
    /// The caller's number (From user part).
    pub caller: String,
    /// How long the caller stays on the line at most, from the answer.
    pub stay: Duration,
}

/// The callers, in order, without end.
pub struct Schedule {
    rng: StdRng,
    index: u32,
    at: Duration,
}

impl Schedule {
    pub fn new(seed: u64) -> Schedule {
        Schedule {
            rng: StdRng::seed_from_u64(seed),
            index: 0,
            at: Duration::ZERO,
        }
    }
}

impl Iterator for Schedule {
    type Item = Arrival;

    fn next(&mut self) -> Option<Arrival> {
        self.index += 1;
        let index = self.index;
        self.at = if index == 1 {
            BURST_START
        } else if index <= BURST {
            self.at + BURST_GAP
        } else {
            self.at + Duration::from_millis(self.rng.random_range(GAP_MS))
        };
        let (queue, caller) = if index % VIP_EVERY == 3 {
            (SALES, VIP_CALLER.to_owned())
        } else {
            let queue = if self.rng.random_range(0..10) < SALES_IN_10 {
                SALES
            } else {
                SUPPORT
            };
            // +1555 0200 .. +1555 9999: never the VIP's number.
            (
                queue,
                format!("+1555{:04}", self.rng.random_range(200..10_000)),
            )
        };
        let stay = Duration::from_millis(self.rng.random_range(STAY_MS));
        Some(Arrival {
            index,
            at: self.at,
            queue,
            caller,
            stay,
        })
    }
}

/// How an agent takes one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pickup {
    /// Ringing before the answer.
    pub ring: Duration,
    /// Talking before the agent hangs up.
    pub talk: Duration,
}

/// One agent's calls, one [`Pickup`] each, from the run's seed and the agent's phone.
pub struct Agent {
    rng: StdRng,
}

impl Agent {
    pub fn new(seed: u64, phone: &str) -> Agent {
        let salt = phone.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        Agent {
            rng: StdRng::seed_from_u64(seed ^ salt),
        }
    }

    pub fn next_call(&mut self) -> Pickup {
        Pickup {
            ring: Duration::from_millis(self.rng.random_range(RING_MS)),
            talk: Duration::from_millis(self.rng.random_range(TALK_MS)),
        }
    }
}

#[cfg(test)]
mod tests;
