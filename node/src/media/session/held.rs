//! A held caller's receive, read in batches. A caller on music on hold sends us 50 packets a
//! second that nobody needs at once: no one hears them (no bridge, no supervisor), nothing
//! records or publishes them. While a leg is on its track's roster and nothing needs its
//! packets promptly ([`batched`]), its task takes the RTP socket out of the runtime's poller
//! (`socket::Reader::park`) and reads what waited every [`PERIOD`] (100 ms) on a timer of its
//! own: about 5 datagrams a wake-up instead of one wake-up (an epoll event, a task poll, a
//! `recvfrom`) per datagram, and up to [`BATCH`] datagrams per `recvmmsg`.
//!
//! Every datagram is still taken as it would be one by one: counted, judged by the latch,
//! measured by the quality meter, scanned for DTMF (a key press reaches the call at most
//! [`PERIOD`] later), RTCP on the RTP port taken. The meter is given each packet's arrival
//! time as the kernel stamped it (`SO_TIMESTAMPNS`), moved onto the task's clock
//! ([`arrival`]), so the RFC 3550 jitter stays that of the network, not of the batching. A
//! leg whose mode or target changes, or whose report falls due, reads what waited first,
//! under the control it arrived under; a leg that leaves the roster registers its socket again
//! at once (a datagram waiting makes it ready at once, so nothing is lost in between).
//!
//! The buffers a batch is read into are the worker thread's, not the leg's: a leg's task stays
//! small, and a batch is read and taken without an `.await` in between.

use std::cell::RefCell;
use std::io;
use std::io::IoSliceMut;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::sys::socket::{
    recvmmsg, ControlMessageOwned, MsgFlags, MultiHeaders, RecvMsg, SockaddrStorage,
};
use nix::sys::time::TimeSpec;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::pace::Kind;

/// How often a parked leg reads what its party sent.
pub(super) const PERIOD: Duration = Duration::from_millis(100);

/// Datagrams per `recvmmsg`.
pub(super) const BATCH: usize = 16;

/// At most this many batches are read per wake-up (a flood waits for the next one).
pub(super) const MAX_BATCHES: usize = 8;

/// The largest datagram read whole (as the per-packet path's buffer).
const DATAGRAM: usize = 2048;

/// A kernel stamp older than this (or in the future) is not believed: the wall clock moved.
pub(super) const MAX_AGE: Duration = Duration::from_secs(2);

/// Whether a leg reads its RTP in batches: on its track's roster (music on hold at 20 ms,
/// sent by the track's clock) with nobody taking its packets as they come (no recording, no
/// tap publishing them to a supervisor). Bridged, listening, prompted and silent legs read per
/// datagram.
pub(super) fn batched(pace: Kind, recording: bool, tap: bool) -> bool {
    pace == Kind::Shared && !recording && !tap
}

/// A datagram's arrival on the task's clock: `task_now` less its age, the kernel's stamp
/// against the wall clock read at the same moment (`wall_now`). Without a stamp, or with one
/// not to be believed (the wall clock stepped), it arrived now.
pub(super) fn arrival(
    task_now: Duration,
    wall_now: SystemTime,
    stamp: Option<SystemTime>,
) -> Duration {
    let age = stamp
        .and_then(|s| wall_now.duration_since(s).ok())
        .filter(|age| *age <= MAX_AGE)
        .unwrap_or_default();
    task_now.saturating_sub(age)
}

/// The coarse timer of a parked leg: first at one [`PERIOD`] from now, late ticks not caught up.
pub(super) fn timer() -> Interval {
    let mut t = tokio::time::interval_at(Instant::now() + PERIOD, PERIOD);
    t.set_missed_tick_behavior(MissedTickBehavior::Delay);
    t
}

/// Waits for a parked leg's next read (never for a leg that is not parked). Cancel-safe.
pub(super) async fn next(batch: &mut Option<Interval>) {
    match batch {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// One datagram read: where from, and when the kernel took it (wall clock).
#[derive(Debug, Clone, Copy, Default)]
struct Got {
    len: usize,
    from: Option<SocketAddr>,
    stamp: Option<SystemTime>,
}

/// A worker thread's batch buffers.
struct Buffers {
    headers: MultiHeaders<SockaddrStorage>,
    data: Box<[[u8; DATAGRAM]; BATCH]>,
}

impl Buffers {
    fn new() -> Buffers {
        Buffers {
            headers: MultiHeaders::preallocate(BATCH, Some(nix::cmsg_space!(TimeSpec))),
            data: Box::new([[0u8; DATAGRAM]; BATCH]),
        }
    }

    /// Reads up to [`BATCH`] datagrams waiting on `fd` without blocking.
    fn read(&mut self, fd: RawFd, got: &mut [Got; BATCH]) -> io::Result<usize> {
        let mut slices = self.data.each_mut().map(|b| [IoSliceMut::new(b)]);
        let results = match recvmmsg(
            fd,
            &mut self.headers,
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        ) {
            Ok(r) => r,
            Err(Errno::EAGAIN) => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        let mut n = 0;
        for (slot, r) in got.iter_mut().zip(results) {
            *slot = Got {
                len: r.bytes.min(DATAGRAM),
                from: r.address.as_ref().and_then(std_addr),
                stamp: stamp(&r),
            };
            n += 1;
        }
        Ok(n)
    }
}

thread_local! {
    static BUFFERS: RefCell<Option<Buffers>> = const { RefCell::new(None) };
}

/// Reads what waits on the (non-blocking) socket `fd`, up to [`MAX_BATCHES`] batches, and
/// hands each datagram to `take` with its source and kernel stamp; returns how many were
/// read. `take` must not read a batch itself.
pub(super) fn read_waiting(
    fd: RawFd,
    mut take: impl FnMut(&mut [u8], SocketAddr, Option<SystemTime>),
) -> io::Result<usize> {
    BUFFERS.with(|cell| {
        let mut guard = cell.borrow_mut();
        let buffers = guard.get_or_insert_with(Buffers::new);
        let mut got = [Got::default(); BATCH];
        let mut total = 0;
        for _ in 0..MAX_BATCHES {
            let n = buffers.read(fd, &mut got)?;
            total += n;
            for (g, data) in got[..n].iter().zip(buffers.data.iter_mut()) {
                if let Some(from) = g.from {
                    take(&mut data[..g.len], from, g.stamp);
                }
            }
            if n < BATCH {
                break;
            }
        }
        Ok(total)
    })
}

fn std_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    a.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
}

/// The kernel's receive time of a datagram (`SCM_TIMESTAMPNS`), if the socket asked for it.
fn stamp<S>(r: &RecvMsg<'_, '_, S>) -> Option<SystemTime> {
    let ts = r.cmsgs().ok()?.find_map(|c| match c {
        ControlMessageOwned::ScmTimestampns(ts) => Some(ts),
        _ => None,
    })?;
    let secs = u64::try_from(ts.tv_sec()).ok()?;
    let nanos = u32::try_from(ts.tv_nsec()).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests;
