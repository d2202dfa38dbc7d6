//! Probe health: whether a peer answers this node's probes, flipped only after several
//! consecutive results so one lost packet does not exclude a node and one answer does not bring
//! a dying node back (no flapping).
//!
//! Pure bookkeeping: the node sends the probes (SIP `OPTIONS`) and reports each result here;
//! [`Health::record`] says when a peer's state flips, and the balancer is told the set of peers
//! that are down. Heartbeats stay the record of which nodes exist: a peer never probed is up.

use std::collections::HashMap;

#[cfg(test)]
mod tests;

/// A peer's probe state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// Answering (or not yet probed): may be chosen.
    Up,
    /// Missed enough probes in a row: never chosen until it answers enough in a row.
    Down,
}

/// How many results in a row flip a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Consecutive misses that take an up peer down.
    pub misses: u32,
    /// Consecutive answers that bring a down peer back up.
    pub answers: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            misses: 2,
            answers: 2,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Track {
    state: PeerState,
    /// Results in a row that contradict `state`.
    against: u32,
}

/// Probe results per peer, by node name.
#[derive(Debug, Clone, Default)]
pub struct Health {
    thresholds: Thresholds,
    peers: HashMap<String, Track>,
}

impl Health {
    /// No peer known yet; every peer starts up. Thresholds of 0 count as 1.
    pub fn new(thresholds: Thresholds) -> Self {
        Health {
            thresholds: Thresholds {
                misses: thresholds.misses.max(1),
                answers: thresholds.answers.max(1),
            },
            peers: HashMap::new(),
        }
    }

    /// Records one probe of `peer`; returns its new state when this result flipped it.
    pub fn record(&mut self, peer: &str, answered: bool) -> Option<PeerState> {
        let track = self.peers.entry(peer.to_owned()).or_insert(Track {
            state: PeerState::Up,
            against: 0,
        });
        let (agrees, needed, other) = match track.state {
            PeerState::Up => (answered, self.thresholds.misses, PeerState::Down),
            PeerState::Down => (!answered, self.thresholds.answers, PeerState::Up),
        };
        if agrees {
            track.against = 0;
            return None;
        }
        track.against += 1;
        if track.against < needed {
            return None;
        }
        *track = Track {
            state: other,
            against: 0,
        };
        Some(other)
    }

    /// The state of `peer` (up when never probed).
    pub fn state(&self, peer: &str) -> PeerState {
        self.peers
            .get(peer)
            .map_or(PeerState::Up, |track| track.state)
    }

    /// Forgets peers not in `names` (nodes gone from the heartbeat table).
    pub fn retain<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) {
        let keep: std::collections::HashSet<&str> = names.into_iter().collect();
        self.peers.retain(|name, _| keep.contains(name.as_str()));
    }

    /// The peers that are down, sorted by name.
    pub fn down(&self) -> Vec<String> {
        let mut down: Vec<String> = self
            .peers
            .iter()
            .filter(|(_, track)| track.state == PeerState::Down)
            .map(|(name, _)| name.clone())
            .collect();
        down.sort_unstable();
        down
    }
}
