//! A test RTP sender with a bad network built in: it sends a PCMU tone every 20 ms, drops one
//! packet at a random place in every block of `loss_one_in` (so exactly 1/`loss_one_in` of
//! them, spread at random), and delays each packet it sends by a random time below `jitter`
//! after its due time (uniform, from a fixed seed). Meanwhile it keeps the RTCP datagrams the
//! node sends to its RTCP socket.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// How the sender impairs its stream.
#[derive(Debug, Clone, Copy)]
pub struct Impairment {
    pub loss_one_in: u32,
    pub jitter: Duration,
    pub seed: u64,
}

/// What the sender did and got.
#[derive(Debug, Default)]
pub struct Sent {
    pub sent: usize,
    pub dropped: usize,
    /// RTCP datagrams from the node, as received.
    pub rtcp: Vec<Vec<u8>>,
}

/// A small deterministic generator (PCG-style LCG), enough for test impairments.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Sends `count` frames from `rtp` to `to` with `imp`, reading `rtcp` (and draining `rtp`) as
/// it goes. Bounded: returns after `count` frames, about `count` × 20 ms.
pub fn send(
    rtp: &UdpSocket,
    rtcp: &UdpSocket,
    to: SocketAddr,
    count: usize,
    imp: Impairment,
) -> Sent {
    let frames = super::audio::pcmu_tone(440.0, 50);
    let mut rng = Rng(imp.seed);
    let mut out = Sent::default();
    let block = imp.loss_one_in as usize;
    let mut drop_at = rng.below(block as u64) as usize;
    let jitter_us = imp.jitter.as_micros() as u64;
    rtp.set_nonblocking(true).expect("non-blocking RTP socket");
    rtcp.set_nonblocking(true)
        .expect("non-blocking RTCP socket");
    let mut buf = [0u8; 2048];
    let start = Instant::now();
    for i in 0..count {
        if i % block == 0 && i > 0 {
            drop_at = i + rng.below(block as u64) as usize;
        }
        let delay = Duration::from_micros(rng.below(jitter_us.max(1)));
        let due = start + Duration::from_millis(20 * i as u64) + delay;
        while let Some(wait) = due.checked_duration_since(Instant::now()) {
            drain(rtp, rtcp, &mut buf, &mut out);
            std::thread::sleep(wait.min(Duration::from_millis(2)));
        }
        if i == drop_at {
            out.dropped += 1;
            continue;
        }
        let mut pkt = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0x10, 0x55, 0x55, 0x01];
        pkt[2..4].copy_from_slice(&(i as u16).to_be_bytes());
        pkt[4..8].copy_from_slice(&((i * 160) as u32).to_be_bytes());
        pkt.extend_from_slice(&frames[i % frames.len()]);
        rtp.send_to(&pkt, to).expect("send RTP");
        out.sent += 1;
    }
    drain(rtp, rtcp, &mut buf, &mut out);
    out
}

fn drain(rtp: &UdpSocket, rtcp: &UdpSocket, buf: &mut [u8], out: &mut Sent) {
    while rtp.recv_from(buf).is_ok() {}
    while let Ok((n, _)) = rtcp.recv_from(buf) {
        out.rtcp.push(buf[..n].to_vec());
    }
}
