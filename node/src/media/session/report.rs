//! The leg's quality and RTCP: every packet of the party feeds the leg's [`Meter`]; every
//! [`REPORT_INTERVAL`] the leg sends the party a sender report (or a receiver report when it
//! sent nothing of its own since the last one: a bridge relays the other party's stream) with a
//! report block on what it received, and it reads the party's reports (its view of what we
//! send). RTCP goes on the RTP port + 1 (a socket the leg binds itself) or, when the party's
//! SDP asked for it, on the RTP port (rtcp-mux); only the party's host is listened to, and the
//! leg answers where the party's RTCP comes from (symmetric RTCP, as for RTP).

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::UdpSocket;
use tracing::{debug, warn};

use super::party::Party;
use super::{Control, Out, Player};
use crate::media::quality::{Inbound, InboundSummary, PeerView};
use crate::media::rtcp::{self, Report, SenderInfo};
use crate::media::rtp::Header;
use crate::media::sdp::{Codec, Rtcp};

/// How often a leg sends its RTCP report (RFC 3550's 5 s minimum interval).
pub const REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// When a leg sends its first report: half the interval, as RFC 3550 §6.2 allows for the
/// first one, so that a short call's round trip is measured (the party's reports can only
/// answer a sender report it has already seen).
pub const FIRST_REPORT: Duration = Duration::from_millis(2500);

/// A leg's quality as its task measures it; shared with the call, which reads it at the end.
#[derive(Debug, Default)]
pub struct Meter {
    inbound: Inbound,
    peer: PeerView,
    rtcp_sent: u64,
    /// The middle of the NTP time of the party's last SR, and when (task clock) it came.
    last_sr: Option<(u32, Duration)>,
    /// RTCP from the party that could not be read (logged once).
    rtcp_bad: u64,
}

/// One leg's quality at the end of a call (or any time): the interface the call hands to
/// [`crate::quality::record`].
#[derive(Debug, Clone, PartialEq)]
pub struct LegQuality {
    pub codec: Codec,
    /// What the party sent us.
    pub inbound: InboundSummary,
    /// What we sent it: our own stream and the other leg's relayed.
    pub packets_out: u64,
    pub bytes_out: u64,
    pub rtcp_sent: u64,
    /// The party's RTCP reports (`peer.reports` of them).
    pub peer: PeerView,
}

/// Binds the RTCP socket on the port above the leg's RTP port (same address); `None` (logged)
/// when that port is taken or there is none.
pub(super) async fn bind_rtcp(rtp: SocketAddr) -> Option<UdpSocket> {
    let port = rtp.port().checked_add(1)?;
    match UdpSocket::bind(SocketAddr::new(rtp.ip(), port)).await {
        Ok(s) => Some(s),
        Err(e) => {
            debug!(port, error = %e, "no RTCP socket for this leg (RTP port + 1 taken)");
            None
        }
    }
}

/// Waits until the RTCP socket has a datagram to read (never when the leg has none): the
/// leg then reads it into its one receive buffer, so no buffer waits here. Only the leg's task
/// reads the socket, so its readiness is polled with the task's waker alone (no waiter to
/// register and unregister at each wake-up).
pub(super) async fn readable(socket: Option<&UdpSocket>) {
    match socket {
        Some(s) => {
            if poll_fn(|cx| s.poll_recv_ready(cx)).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

fn wall_ntp() -> u64 {
    rtcp::ntp(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default(),
    )
}

impl Player {
    fn meter(&self) -> std::sync::MutexGuard<'_, Meter> {
        self.leg.meter.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Time on the task's clock (tokio's, so paused in tests).
    pub(super) fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// One RTP packet of the party, arrived at `at` (the task's clock), for the statistics.
    pub(super) fn measure(&self, ctl: &Control, packet: &[u8], at: Duration) {
        let Some(h) = Header::parse(packet) else {
            return;
        };
        let audio = Some(h.payload_type) != ctl.target.dtmf_pt;
        self.meter().inbound.packet(&h, packet.len(), at, audio);
    }

    /// An RTCP datagram from the party's host (on the RTCP socket, or `muxed` on the RTP one);
    /// `ours` is the SSRC of the stream we send.
    pub(super) fn take_rtcp(
        &self,
        party: &mut Party,
        from: SocketAddr,
        datagram: &[u8],
        (ours, muxed): (u32, bool),
    ) {
        let reports = match rtcp::parse(datagram) {
            Ok(r) => r,
            Err(e) => {
                let mut m = self.meter();
                m.rtcp_bad += 1;
                if m.rtcp_bad == 1 {
                    debug!(%from, error = %e, "unreadable RTCP from the party");
                }
                return;
            }
        };
        party.rtcp_from = Some(from);
        let now_ntp = rtcp::middle(wall_ntp());
        let at = self.now();
        let mut m = self.meter();
        m.peer.reports += 1;
        if m.peer.reports == 1 {
            let port = if muxed {
                "the RTP port (rtcp-mux)"
            } else {
                "the RTCP port"
            };
            debug!(%from, "first RTCP report from the party, on {port}");
        }
        for r in &reports {
            if let Some(s) = r.sender {
                m.last_sr = Some((rtcp::middle(s.ntp), at));
            }
            // The block on our stream, else the first (in a bridge the party reports on the
            // other party's SSRC, which we relay).
            let block = r
                .blocks
                .iter()
                .find(|b| b.ssrc == ours)
                .or(r.blocks.first());
            if let Some(b) = block {
                m.peer.block(b, now_ntp);
            }
        }
    }

    /// Sends the party this interval's report, if the leg may send to it.
    pub(super) async fn send_report(&self, ctl: &Control, out: &mut Out, party: &Party) {
        let Some(rtp_to) = ctl.target.remote.filter(|_| ctl.target.send) else {
            return;
        };
        // `None`: muxed, on the RTP socket.
        let (socket, to) = match ctl.target.rtcp {
            Rtcp::Mux => (None, rtp_to),
            other => {
                let Some(socket) = self.rtcp.as_ref() else {
                    return;
                };
                let Some(to) = party.rtcp_from.or(other.address(rtp_to)) else {
                    return;
                };
                (Some(socket), to)
            }
        };
        let sender = (out.own_packets != out.reported_packets).then(|| SenderInfo {
            ntp: wall_ntp(),
            rtp_timestamp: out.stream.timestamp,
            packets: out.own_packets as u32,
            octets: out.own_octets as u32,
        });
        out.reported_packets = out.own_packets;
        let at = self.now();
        let block = {
            let mut m = self.meter();
            let (lsr, since) = match m.last_sr {
                Some((lsr, when)) => (lsr, at.saturating_sub(when)),
                None => (0, Duration::ZERO),
            };
            m.inbound.report(lsr, since)
        };
        let report = Report {
            ssrc: out.stream.ssrc,
            sender,
            blocks: block.into_iter().collect(),
        };
        let datagram = rtcp::write(&report, &self.cname);
        let sent = match socket {
            Some(socket) => socket.send_to(&datagram, to).await,
            None => self.leg.socket.send_to(&datagram, to),
        };
        match sent {
            Ok(_) => self.meter().rtcp_sent += 1,
            Err(e) => debug!(%to, error = %e, "cannot send RTCP"),
        }
    }
}

/// How long [`Session::finish`](super::Session::finish) waits for the leg's task to end.
pub const FINISH_WAIT: Duration = Duration::from_secs(1);

impl super::Session {
    /// Stops the leg and waits for its task to end: what its party sent until then is counted
    /// and measured (a held caller's last packets wait in the socket until the leg reads them,
    /// at the latest as it ends), so the leg's [`quality`](Self::quality) is then complete.
    /// The wait is bounded ([`FINISH_WAIT`]): a call's end never hangs on its media.
    pub async fn finish(&self) {
        self.stop();
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            match tokio::time::timeout(FINISH_WAIT, task).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => debug!(error = %e, "a leg's task ended abnormally"),
                Err(_) => {
                    warn!("a leg's task did not end in time; its quality may miss its last packets")
                }
            }
        }
    }

    /// The leg's quality so far (at the end of the call: the leg's record).
    pub fn quality(&self) -> LegQuality {
        let leg = &self.leg;
        let m = leg.meter.lock().unwrap_or_else(|p| p.into_inner());
        let s = &leg.stats;
        LegQuality {
            codec: self.control.borrow().target.codec,
            inbound: m.inbound.summary(),
            packets_out: s.sent.load(Ordering::Relaxed) + s.relayed.load(Ordering::Relaxed),
            bytes_out: s.sent_bytes.load(Ordering::Relaxed)
                + s.relayed_bytes.load(Ordering::Relaxed),
            rtcp_sent: m.rtcp_sent,
            peer: m.peer,
        }
    }
}
