//! Who the leg listens to and how: the party whose packets it takes (the latch, the party's
//! addresses, where its RTCP comes from) and how the leg's task waits on its RTP socket
//! ([`Ear`]): datagram by datagram, or parked and read in batches while its caller is on hold
//! (`held`).

use std::net::{IpAddr, SocketAddr};

use tokio::time::Interval;

use super::socket::{Reader, RtpSocket};
use super::{held, Target};
use crate::media::dtmf::DtmfDetector;
use crate::media::latch::Latch;

/// What the leg's task keeps of what its party sends: whose packets it takes, the DTMF it
/// reads from them, how it waits on its RTP socket, and, while that socket is parked, the
/// timer it reads it on.
pub(super) struct Ear {
    pub(super) party: Party,
    pub(super) dtmf: DtmfDetector,
    pub(super) reader: Reader,
    /// Set exactly while the socket is parked.
    pub(super) batch: Option<Interval>,
}

impl Ear {
    /// Registers `socket` (read datagram by datagram).
    pub(super) fn new(target: &Target, socket: &RtpSocket) -> Ear {
        let mut ear = Ear {
            party: Party::new(target),
            dtmf: DtmfDetector::default(),
            reader: Reader::new(socket),
            batch: None,
        };
        ear.read_in_batches(false, socket);
        ear
    }

    /// Parks the socket and reads it on the coarse timer (`batched`), or registers it again
    /// and reads datagram by datagram. A socket the runtime would not take back stays parked
    /// and read in batches.
    pub(super) fn read_in_batches(&mut self, batched: bool, socket: &RtpSocket) {
        if batched {
            self.reader.park();
        } else {
            self.reader.unpark(socket);
        }
        match (self.reader.parked(), self.batch.is_some()) {
            (true, false) => self.batch = Some(held::timer()),
            (false, true) => self.batch = None,
            _ => {}
        }
    }
}

/// Whose packets the leg takes: the latch, and the party's address as last given (SDP), which
/// may differ from where the leg latched.
pub(super) struct Party {
    pub(super) latch: Latch,
    pub(super) announced: Option<SocketAddr>,
    pub(super) signal_ip: Option<IpAddr>,
    /// Where the party's RTCP came from last (where ours then goes).
    pub(super) rtcp_from: Option<SocketAddr>,
}

impl Party {
    pub(super) fn new(target: &Target) -> Party {
        Party {
            latch: Latch::new(target.remote, target.signal_ip),
            announced: target.remote,
            signal_ip: target.signal_ip,
            rtcp_from: None,
        }
    }

    /// Whether RTCP from `from` is the party's: from the host the leg latched to, or before
    /// that from the SDP's host or the signalling's.
    pub(super) fn rtcp_source(&self, from: SocketAddr) -> bool {
        let hosts = match self.latch.latched() {
            Some(at) => [Some(at.ip()), None],
            None => [self.announced.map(|a| a.ip()), self.signal_ip],
        };
        hosts
            .into_iter()
            .flatten()
            .any(|ip| crate::media::latch::same_host(ip, from.ip()))
    }

    /// A new target: latch afresh if the party's address changed; else where the leg stays
    /// latched, if it is.
    pub(super) fn retarget(&mut self, target: &Target) -> Option<SocketAddr> {
        if target.remote != self.announced || target.signal_ip != self.signal_ip {
            *self = Party::new(target);
            None
        } else {
            self.latch.latched()
        }
    }
}
