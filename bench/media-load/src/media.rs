//! The RTP side of the load generator: a few UDP sockets per side (callers, agents) shared by
//! all the legs of that side, one thread that sends a G.711 packet every 20 ms on every
//! stream, and one receiving thread per socket that tells the legs apart by the address the
//! packets come from (each node leg has its own port).
//!
//! Shared sockets instead of one per leg keep the generator cheaper than what it measures: the
//! node under test owns one socket and one task per leg; the generator must not spend as much
//! or it would be the bottleneck on a host of two cores.
//!
//! Every packet we send carries [`stats::make_payload`]: its stream, number and send time.
//! At the receiving end a relayed packet is checked byte for byte and gives the delay the
//! relay added and the RFC 3550 jitter of the path (arrival against the send time, so the
//! generator's own scheduling is left out). Music on hold is measured against its RTP
//! timestamps (the node is the sender) and checked for its payload type and size.
//! Only packets sent (relayed legs) or received (music) within the measured window count.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

use crate::stats::{self, Histogram, Jitter, Order, PAYLOAD};

/// G.711 µ-law, the codec every leg offers.
pub const PT_PCMU: u8 = 0;
const FRAME_US: u64 = 20_000;
const RTP_HEADER: usize = 12;

/// Which side of the calls a socket serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Caller,
    Agent,
}

/// What a leg expects to receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The other party's packets, relayed: our own payloads, checked byte for byte.
    Relay,
    /// Music on hold from the node: PCMU, 20 ms, its own timestamps.
    Moh,
}

struct SendStream {
    id: u32,
    socket: usize,
    dest: SocketAddr,
    ssrc: u32,
    n: u32,
    next_us: u64,
    sent_in_window: Arc<AtomicU64>,
}

#[derive(Default)]
struct RecvLeg {
    expect: Option<Expect>,
    /// The side of the socket it arrives on.
    side: Option<Side>,
    order: Order,
    jitter_send: Jitter,
    jitter_rtp: Jitter,
    received: u64,
    bad_payload: u64,
    /// The stream this leg's packets come from (the first one seen), and packets from others.
    source: Option<u32>,
    misrouted: u64,
    /// Music: the track frame last heard and its sequence number; frames that did not follow
    /// the previous one although their sequence number did.
    music_at: Option<(usize, u16)>,
    music_skips: u64,
}

/// Per stream: its side and how many of its window's packets arrived anywhere.
struct StreamInfo {
    side: Side,
    /// Whether a relay sends it on to one of our legs (a caller's voice to music on hold goes
    /// nowhere and is not counted).
    relayed: bool,
    received: AtomicU64,
    sent_in_window: Arc<AtomicU64>,
}

/// The measured window, in microseconds of the run's clock (both 0 until set).
#[derive(Default)]
struct Window {
    start_us: AtomicU64,
    end_us: AtomicU64,
}

impl Window {
    fn contains(&self, us: u64) -> bool {
        let (s, e) = (
            self.start_us.load(Ordering::Relaxed),
            self.end_us.load(Ordering::Relaxed),
        );
        e > 0 && us >= s && us < e
    }
}

/// The music the node plays, frame by frame, to check what the callers hear.
pub struct Music {
    frames: Vec<Vec<u8>>,
    /// Where each distinct frame first appears in the track.
    index: HashMap<Vec<u8>, usize>,
}

impl Music {
    /// The PCMU frames of the node's music-on-hold WAV file (encoded as the node encodes it).
    pub fn load(path: &std::path::Path) -> anyhow::Result<Music> {
        let track = callfleet::media::moh::read_wav(path)
            .with_context(|| format!("read {}", path.display()))?;
        let frames: Vec<Vec<u8>> = (0..track.frames())
            .map(|i| track.frame(callfleet::media::sdp::Codec::Pcmu, i).to_vec())
            .collect();
        let mut index = HashMap::new();
        for (i, f) in frames.iter().enumerate() {
            index.entry(f.clone()).or_insert(i);
        }
        Ok(Music { frames, index })
    }

    /// Whether `payload` is the frame after `last` (when given) or, failing that, any frame
    /// of the track; returns its position.
    fn place(&self, last: Option<usize>, payload: &[u8]) -> Option<usize> {
        if let Some(next) = last.map(|l| (l + 1) % self.frames.len().max(1)) {
            if self.frames.get(next).is_some_and(|f| f == payload) {
                return Some(next);
            }
        }
        self.index.get(payload).copied()
    }
}

/// The receiving legs by (socket, the relay's address they come from).
type Legs = HashMap<(usize, SocketAddr), Arc<Mutex<RecvLeg>>>;

/// The media engine of one run.
pub struct Media {
    origin: Instant,
    sockets: Vec<Arc<UdpSocket>>,
    per_side: usize,
    legs: RwLock<Legs>,
    streams: Mutex<Vec<SendStream>>,
    info: RwLock<Vec<StreamInfo>>,
    window: Window,
    stop: AtomicBool,
    delays: Mutex<Histogram>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    music: Option<Music>,
}

impl Media {
    /// Binds `per_side` sockets on each side's address and starts the receiving threads and
    /// the sender. With `music`, what callers on hold hear is checked frame by frame against it.
    pub fn start(
        caller_ip: IpAddr,
        agent_ip: IpAddr,
        per_side: usize,
        music: Option<Music>,
    ) -> anyhow::Result<Arc<Media>> {
        let per_side = per_side.max(1);
        let mut sockets = Vec::new();
        for ip in [caller_ip, agent_ip] {
            for _ in 0..per_side {
                sockets.push(Arc::new(bind(SocketAddr::new(ip, 0))?));
            }
        }
        let media = Arc::new(Media {
            origin: Instant::now(),
            sockets,
            per_side,
            legs: RwLock::new(HashMap::new()),
            streams: Mutex::new(Vec::new()),
            info: RwLock::new(Vec::new()),
            window: Window::default(),
            stop: AtomicBool::new(false),
            delays: Mutex::new(Histogram::default()),
            threads: Mutex::new(Vec::new()),
            music,
        });
        let mut threads = Vec::new();
        for i in 0..media.sockets.len() {
            let m = media.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("rtp-recv-{i}"))
                    .spawn(move || m.receive(i))
                    .context("start a receiving thread")?,
            );
        }
        let m = media.clone();
        threads.push(
            std::thread::Builder::new()
                .name("rtp-send".into())
                .spawn(move || m.send_loop())
                .context("start the sending thread")?,
        );
        *lock(&media.threads) = threads;
        Ok(media)
    }

    /// Microseconds since the run started.
    pub fn now_us(&self) -> u64 {
        self.origin.elapsed().as_micros() as u64
    }

    /// The socket index and local address for the `n`-th leg of `side`.
    pub fn local(&self, side: Side, n: usize) -> (usize, SocketAddr) {
        let base = match side {
            Side::Caller => 0,
            Side::Agent => self.per_side,
        };
        let i = base + n % self.per_side;
        let addr = self.sockets[i]
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        (i, addr)
    }

    /// The local addresses of every socket (for their kernel drop counters).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.sockets
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }

    /// Starts sending from socket `socket` to `dest` every 20 ms, from now on; `relayed`: the
    /// far end relays it to one of our legs, where its loss is counted.
    pub fn add_stream(&self, side: Side, socket: usize, dest: SocketAddr, relayed: bool) -> u32 {
        let sent_in_window = Arc::new(AtomicU64::new(0));
        let id = {
            let mut info = self.info.write().unwrap_or_else(|p| p.into_inner());
            info.push(StreamInfo {
                side,
                relayed,
                received: AtomicU64::new(0),
                sent_in_window: sent_in_window.clone(),
            });
            (info.len() - 1) as u32
        };
        lock(&self.streams).push(SendStream {
            id,
            socket,
            dest,
            ssrc: rand::random(),
            n: 0,
            next_us: self.now_us(),
            sent_in_window,
        });
        id
    }

    /// Measures what socket `socket` receives from `from`.
    pub fn expect(&self, socket: usize, from: SocketAddr, expect: Expect) {
        let side = if socket < self.per_side {
            Side::Caller
        } else {
            Side::Agent
        };
        let leg = RecvLeg {
            expect: Some(expect),
            side: Some(side),
            ..RecvLeg::default()
        };
        self.legs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert((socket, from), Arc::new(Mutex::new(leg)));
    }

    /// Sets the measured window to `[now + warm, now + warm + window)`.
    pub fn set_window(&self, warm: Duration, window: Duration) {
        let start = self.now_us() + warm.as_micros() as u64;
        self.window.start_us.store(start, Ordering::Relaxed);
        self.window
            .end_us
            .store(start + window.as_micros() as u64, Ordering::Relaxed);
    }

    /// Stops the threads (the window must be over, with a tail for the last packets) and
    /// returns what the window held.
    pub fn finish(&self, window: Duration) -> MediaReport {
        self.stop_threads();
        self.report(window)
    }

    /// Stops sending and receiving (idempotent).
    pub fn stop_threads(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let threads = std::mem::take(&mut *lock(&self.threads));
        for t in threads {
            if t.join().is_err() {
                eprintln!("an RTP thread panicked");
            }
        }
    }

    fn send_loop(&self) {
        let mut buf = [0u8; RTP_HEADER + PAYLOAD];
        let mut payload = [0u8; PAYLOAD];
        while !self.stop.load(Ordering::Relaxed) {
            let now = self.now_us();
            let mut streams = lock(&self.streams);
            for s in streams.iter_mut() {
                // At most a few packets of catching up; a long stall skips ahead instead of
                // bursting.
                if now >= s.next_us + 5 * FRAME_US {
                    let behind = (now - s.next_us) / FRAME_US;
                    s.n = s.n.wrapping_add(behind as u32);
                    s.next_us += behind * FRAME_US;
                }
                while s.next_us <= now {
                    let sent = self.now_us();
                    stats::make_payload(s.id, s.n, sent, &mut payload);
                    write_rtp(&mut buf, s.n, s.ssrc, &payload);
                    // A datagram the kernel refuses is a lost packet, which the far end counts.
                    if self.sockets[s.socket].send_to(&buf, s.dest).is_ok()
                        && self.window.contains(sent)
                    {
                        s.sent_in_window.fetch_add(1, Ordering::Relaxed);
                    }
                    s.n = s.n.wrapping_add(1);
                    s.next_us += FRAME_US;
                }
            }
            drop(streams);
            std::thread::sleep(Duration::from_micros(500));
        }
    }

    fn receive(&self, socket: usize) {
        let sock = &self.sockets[socket];
        if sock
            .set_read_timeout(Some(Duration::from_millis(50)))
            .is_err()
        {
            eprintln!("cannot set a read timeout; receiving thread {socket} stops");
            return;
        }
        let mut buf = [0u8; 2048];
        let mut delays = Histogram::default();
        let mut cache: Option<(SocketAddr, Arc<Mutex<RecvLeg>>)> = None;
        while !self.stop.load(Ordering::Relaxed) {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            let arrival = self.now_us();
            let packet = &buf[..n];
            if is_rtcp(packet) || n < RTP_HEADER {
                continue;
            }
            let leg = match &cache {
                Some((a, leg)) if *a == from => leg.clone(),
                _ => {
                    let found = self
                        .legs
                        .read()
                        .unwrap_or_else(|p| p.into_inner())
                        .get(&(socket, from))
                        .cloned();
                    let Some(leg) = found else { continue };
                    cache = Some((from, leg.clone()));
                    leg
                }
            };
            self.take(&mut lock(&leg), packet, arrival, &mut delays);
        }
        lock(&self.delays).merge(&delays);
    }

    /// Counts one packet received by `leg`.
    fn take(&self, leg: &mut RecvLeg, packet: &[u8], arrival: u64, delays: &mut Histogram) {
        let pt = packet[1] & 0x7f;
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let ts = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        let payload = &packet[RTP_HEADER..];
        match leg.expect {
            Some(Expect::Relay) => {
                let Some((stream, _, sent)) = stats::read_payload(payload) else {
                    if self.window.contains(arrival) {
                        leg.bad_payload += 1;
                    }
                    return;
                };
                if !self.window.contains(sent) {
                    return;
                }
                leg.received += 1;
                leg.order.add(seq);
                if pt != PT_PCMU {
                    leg.bad_payload += 1;
                }
                let info = self.info.read().unwrap_or_else(|p| p.into_inner());
                match leg.source {
                    None => leg.source = Some(stream),
                    Some(s) if s != stream => leg.misrouted += 1,
                    Some(_) => {}
                }
                if let Some(i) = info.get(stream as usize) {
                    i.received.fetch_add(1, Ordering::Relaxed);
                }
                leg.jitter_send.add(arrival as i64, sent as i64);
                leg.jitter_rtp.add(arrival as i64, i64::from(ts) * 125);
                delays.add(arrival.saturating_sub(sent));
            }
            Some(Expect::Moh) => {
                if !self.window.contains(arrival) {
                    return;
                }
                leg.received += 1;
                leg.order.add(seq);
                if pt != PT_PCMU || payload.len() != PAYLOAD {
                    leg.bad_payload += 1;
                } else if let Some(music) = &self.music {
                    let last = leg.music_at.filter(|(_, s)| s.wrapping_add(1) == seq);
                    match music.place(last.map(|(f, _)| f), payload) {
                        Some(at) => {
                            if last.is_some_and(|(f, _)| (f + 1) % music.frames.len().max(1) != at)
                            {
                                leg.music_skips += 1;
                            }
                            leg.music_at = Some((at, seq));
                        }
                        None => {
                            leg.bad_payload += 1;
                            leg.music_at = None;
                        }
                    }
                }
                // 8 kHz: one timestamp unit is 125 µs.
                leg.jitter_rtp.add(arrival as i64, i64::from(ts) * 125);
            }
            None => {}
        }
    }

    fn report(&self, window: Duration) -> MediaReport {
        let legs: Vec<Arc<Mutex<RecvLeg>>> = self
            .legs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        let info = self.info.read().unwrap_or_else(|p| p.into_inner());
        let mut relay = RelayReport::default();
        let mut moh = MohReport::default();
        let mut relay_jitter = Vec::new();
        let mut moh_jitter = Vec::new();
        let frames = window.as_micros() as u64 / FRAME_US;
        let mut sources_seen: HashMap<u32, u32> = HashMap::new();
        for leg in &legs {
            let leg = lock(leg);
            match leg.expect {
                Some(Expect::Relay) => {
                    relay.add_leg(&leg, &info, &mut sources_seen);
                    relay_jitter.push(leg.jitter_send.mean_us());
                }
                Some(Expect::Moh) => {
                    moh.add_leg(&leg, frames);
                    moh_jitter.push(leg.jitter_rtp.mean_us());
                }
                None => {}
            }
        }
        // A stream heard by more than one leg was copied where it does not belong.
        relay.misrouted += sources_seen
            .values()
            .map(|&n| u64::from(n.saturating_sub(1)))
            .sum::<u64>();
        relay.add_sent(&info);
        relay.loss = ratio(relay.lost, relay.sent);
        relay.jitter_p50_ms = stats::quantile(&relay_jitter, 0.5) / 1000.0;
        relay.jitter_p99_ms = stats::quantile(&relay_jitter, 0.99) / 1000.0;
        relay.jitter_max_ms = stats::quantile(&relay_jitter, 1.0) / 1000.0;
        let delays = lock(&self.delays);
        relay.delay_p50_ms = delays.quantile_us(0.5) as f64 / 1000.0;
        relay.delay_p99_ms = delays.quantile_us(0.99) as f64 / 1000.0;
        relay.delay_max_ms = delays.quantile_us(1.0) as f64 / 1000.0;
        moh.loss = ratio(moh.lost, moh.expected);
        moh.jitter_p50_ms = stats::quantile(&moh_jitter, 0.5) / 1000.0;
        moh.jitter_p99_ms = stats::quantile(&moh_jitter, 0.99) / 1000.0;
        moh.jitter_max_ms = stats::quantile(&moh_jitter, 1.0) / 1000.0;
        MediaReport {
            window_s: window.as_secs_f64(),
            streams_sent: info.len() as u64,
            streams_relayed: info.iter().filter(|i| i.relayed).count() as u64,
            relay,
            moh,
        }
    }
}

impl RelayReport {
    /// One relayed leg's counts; `sources_seen` counts the legs that heard each stream.
    fn add_leg(
        &mut self,
        leg: &RecvLeg,
        info: &[StreamInfo],
        sources_seen: &mut HashMap<u32, u32>,
    ) {
        self.legs += 1;
        self.received += leg.received;
        self.out_of_order += leg.order.out_of_order;
        self.bad_payload += leg.bad_payload;
        self.misrouted += leg.misrouted;
        if leg.received == 0 {
            self.silent_legs += 1;
        }
        if let Some(s) = leg.source {
            *sources_seen.entry(s).or_default() += 1;
            // A leg must hear the other side, never its own side's stream.
            let from = leg_side(info, s);
            if from.is_none() || from == leg.side {
                self.misrouted += 1;
            }
        }
    }

    /// What the relayed streams sent in the window against what arrived: the loss.
    fn add_sent(&mut self, info: &[StreamInfo]) {
        for i in info {
            let sent = i.sent_in_window.load(Ordering::Relaxed);
            let got = i.received.load(Ordering::Relaxed);
            if !i.relayed || (sent == 0 && got == 0) {
                continue;
            }
            self.sent += sent;
            self.lost += sent.saturating_sub(got);
            let loss = if sent == 0 {
                0.0
            } else {
                sent.saturating_sub(got) as f64 / sent as f64
            };
            self.worst_stream_loss = self.worst_stream_loss.max(loss);
        }
    }
}

impl MohReport {
    /// One caller on hold's counts, the window holding `frames` frames.
    fn add_leg(&mut self, leg: &RecvLeg, frames: u64) {
        self.legs += 1;
        self.received += leg.received;
        self.out_of_order += leg.order.out_of_order;
        self.bad_payload += leg.bad_payload;
        self.skips += leg.music_skips;
        // Lost: gaps in the sequence, or fewer packets than the window holds (less one for
        // its edges), whichever is more.
        let short = frames.saturating_sub(1).saturating_sub(leg.received);
        self.lost += leg.order.lost().max(short);
        self.expected += leg.received + leg.order.lost().max(short);
    }
}

fn leg_side(info: &[StreamInfo], stream: u32) -> Option<Side> {
    info.get(stream as usize).map(|i| i.side)
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// What the relayed legs received in the window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RelayReport {
    pub legs: u64,
    /// Packets sent in the window towards the relay, and received from it.
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub loss: f64,
    pub worst_stream_loss: f64,
    pub out_of_order: u64,
    /// Packets that were not ours byte for byte, or not PCMU.
    pub bad_payload: u64,
    /// Packets of another stream than the leg's first, a stream heard on two legs.
    pub misrouted: u64,
    /// Legs that received nothing in the window.
    pub silent_legs: u64,
    /// RFC 3550 jitter of the path (arrival against send time), the mean per leg, across legs.
    pub jitter_p50_ms: f64,
    pub jitter_p99_ms: f64,
    pub jitter_max_ms: f64,
    /// Send to arrival through the relay, across packets.
    pub delay_p50_ms: f64,
    pub delay_p99_ms: f64,
    pub delay_max_ms: f64,
}

/// What the callers on music on hold received in the window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MohReport {
    pub legs: u64,
    pub received: u64,
    pub expected: u64,
    pub lost: u64,
    pub loss: f64,
    pub out_of_order: u64,
    /// Packets that were not PCMU 20 ms, or (with the track given) no frame of the music.
    pub bad_payload: u64,
    /// Consecutive packets whose frames were not consecutive in the track.
    pub skips: u64,
    /// RFC 3550 jitter against the node's RTP timestamps, the mean per leg, across legs.
    pub jitter_p50_ms: f64,
    pub jitter_p99_ms: f64,
    pub jitter_max_ms: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MediaReport {
    pub window_s: f64,
    pub streams_sent: u64,
    pub streams_relayed: u64,
    pub relay: RelayReport,
    pub moh: MohReport,
}

fn write_rtp(buf: &mut [u8; RTP_HEADER + PAYLOAD], n: u32, ssrc: u32, payload: &[u8; PAYLOAD]) {
    buf[0] = 0x80;
    buf[1] = PT_PCMU;
    buf[2..4].copy_from_slice(&(n as u16).to_be_bytes());
    buf[4..8].copy_from_slice(&n.wrapping_mul(160).to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    buf[RTP_HEADER..].copy_from_slice(payload);
}

/// RTCP on an RTP port (RFC 5761 §4).
fn is_rtcp(packet: &[u8]) -> bool {
    packet.len() >= 8 && (192..=223).contains(&packet[1])
}

/// A UDP socket with buffers as large as the host allows (`net.core.rmem_max`).
fn bind(addr: SocketAddr) -> anyhow::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .context("make a UDP socket")?;
    // Best effort: the kernel caps them at rmem_max / wmem_max.
    s.set_recv_buffer_size(16 << 20).ok();
    s.set_send_buffer_size(4 << 20).ok();
    s.bind(&addr.into())
        .with_context(|| format!("bind RTP on {addr}"))?;
    Ok(s.into())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Datagrams the kernel dropped so far on the UDP sockets bound to `addrs` (`/proc/net/udp`,
/// last column): drops at the generator's own sockets would be taken for the relay's loss.
pub fn socket_drops(addrs: &[SocketAddr]) -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/net/udp") else {
        return 0;
    };
    let keys: Vec<String> = addrs
        .iter()
        .filter_map(|a| match a {
            SocketAddr::V4(v4) => {
                let o = v4.ip().octets();
                Some(format!(
                    "{:02X}{:02X}{:02X}{:02X}:{:04X}",
                    o[3],
                    o[2],
                    o[1],
                    o[0],
                    v4.port()
                ))
            }
            SocketAddr::V6(_) => None,
        })
        .collect();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let local = cols.get(1)?;
            keys.iter()
                .any(|k| k == local)
                .then(|| cols.last()?.parse::<u64>().ok())
                .flatten()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAV file (8 kHz mono 16-bit) of `samples`.
    fn wav(samples: &[i16]) -> tempfile::NamedTempFile {
        use std::io::Write as _;
        let data = (samples.len() * 2) as u32;
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"RIFF");
        bytes.extend_from_slice(&(36 + data).to_le_bytes());
        bytes.extend_from_slice(b"WAVEfmt ");
        bytes.extend_from_slice(&16u32.to_le_bytes());
        bytes.extend_from_slice(&1u16.to_le_bytes());
        bytes.extend_from_slice(&1u16.to_le_bytes());
        bytes.extend_from_slice(&8000u32.to_le_bytes());
        bytes.extend_from_slice(&16000u32.to_le_bytes());
        bytes.extend_from_slice(&2u16.to_le_bytes());
        bytes.extend_from_slice(&16u16.to_le_bytes());
        bytes.extend_from_slice(b"data");
        bytes.extend_from_slice(&data.to_le_bytes());
        for s in samples {
            bytes.extend_from_slice(&s.to_le_bytes());
        }
        let mut f = tempfile::NamedTempFile::new().expect("a temporary file");
        f.write_all(&bytes).expect("write the WAV");
        f
    }

    #[test]
    fn music_frames_are_placed_in_order_and_strangers_refused() {
        // Three frames of different levels.
        let samples: Vec<i16> = (0..3 * 160)
            .map(|i| (i / 160) as i16 * 3000 + 100)
            .collect();
        let file = wav(&samples);
        let music = Music::load(file.path()).expect("load the track");
        assert_eq!(music.frames.len(), 3);
        let f = |i: usize| music.frames[i].clone();
        assert_eq!(music.place(None, &f(1)), Some(1));
        assert_eq!(music.place(Some(1), &f(2)), Some(2));
        // The track wraps.
        assert_eq!(music.place(Some(2), &f(0)), Some(0));
        // Not the next frame, but one of the track: placed where it is.
        assert_eq!(music.place(Some(0), &f(2)), Some(2));
        let mut other = f(1);
        other[5] ^= 0x10;
        assert_eq!(music.place(Some(0), &other), None);
        assert_eq!(music.place(None, &[0u8; 10]), None);
    }
}
