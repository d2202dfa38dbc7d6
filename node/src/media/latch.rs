//! Whose RTP a call leg takes, sans-IO. A leg expects its party's media from the address in the
//! party's SDP; a party behind NAT writes a private address there and sends from its public
//! one, so a packet from the IP address its signalling comes from (any port) is the party too,
//! as is one from the SDP's host on another port. The first such packet latches the leg: from
//! then on only that address is the party, and the leg sends there (symmetric RTP). Packets
//! from anywhere else, before or after latching, are not the party's: they are dropped (and
//! counted by the caller), so a third host can neither take the stream over nor inject audio.
//!
//! One alias: a party on this host (a loopback address in its SDP or signalling) may send from
//! `127.0.0.1` (`::1`), the source the kernel gives a socket bound to no address (as phones on
//! a test host do). No packet from the network carries a loopback source.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// What to do with one received packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The party's: take it. `moved`: the leg latched just now to an address other than the
    /// SDP's, and must send there from now on.
    Party { moved: bool },
    /// Not the party's: drop it.
    Stranger,
}

/// The latch state of one leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latch {
    /// The address in the party's SDP (none for a party that has not given one).
    expected: Option<SocketAddr>,
    /// The IP address the party's signalling comes from.
    signal_ip: Option<IpAddr>,
    latched: Option<SocketAddr>,
}

impl Latch {
    pub fn new(expected: Option<SocketAddr>, signal_ip: Option<IpAddr>) -> Latch {
        Latch {
            expected,
            signal_ip,
            latched: None,
        }
    }

    /// Where the leg is latched, once it is.
    pub fn latched(&self) -> Option<SocketAddr> {
        self.latched
    }

    /// Judges a packet from `from`.
    pub fn packet(&mut self, from: SocketAddr) -> Seen {
        if let Some(at) = self.latched {
            return if at == from {
                Seen::Party { moved: false }
            } else {
                Seen::Stranger
            };
        }
        let from_sdp_host = self.expected.is_some_and(|e| same_host(e.ip(), from.ip()));
        let from_signalling = self.signal_ip.is_some_and(|ip| same_host(ip, from.ip()));
        if !(from_sdp_host || from_signalling) {
            return Seen::Stranger;
        }
        self.latched = Some(from);
        Seen::Party {
            moved: self.expected != Some(from),
        }
    }
}

/// Whether a packet from `from` may be from a party at `party`: the same address, or the
/// loopback alias (see the module).
pub(crate) fn same_host(party: IpAddr, from: IpAddr) -> bool {
    party == from
        || (party.is_loopback()
            && (from == IpAddr::V4(Ipv4Addr::LOCALHOST) || from == IpAddr::V6(Ipv6Addr::LOCALHOST)))
}

#[cfg(test)]
mod tests;
