//! One call leg's media: a UDP socket from the pool and one task that owns it. The leg sends
//! what its mode asks for: music on hold, written out of the leg's socket by the track's clock
//! itself, which sends every caller on the track at each tick while their tasks sleep
//! ([`super::clock`]: the leg's stream is on the track's roster meanwhile, and comes back to
//! the task, moved on, when the mode or target changes), or by the task on a timer of the leg's
//! own at packet times other than 20 ms; a prompt played once, or a supervisor's mix, on the
//! leg's own timer at the party's `a=ptime` (20 ms by default); or nothing, with no timer at
//! all (see `pace`). Every packet received is counted, measured for the leg's quality, decoded
//! into the recording if one runs, scanned for DTMF (RFC 4733), and in bridge mode relayed out
//! of the other leg's socket to the other party: a bridged leg wakes only for the packets it
//! receives and, every 5 s, to exchange RTCP reports with the party (`report`), on RTP port + 1
//! or muxed on the RTP port.
//! Only the party's packets are taken ([`super::latch`]): from its SDP address, or for a party
//! behind NAT from the IP its signalling comes from, and after the first one only from that
//! address, where the leg then sends (symmetric RTP); anything else is dropped and counted.
//!
//! A wake-up is cheap: the RTP socket is polled first, so a packet is served without polling
//! the other waits; the cancellation and the control's next change are futures pinned once
//! for the task's life; a readable RTP socket is drained, up to 32 datagrams per wake-up,
//! registered for read interest only, every send on it a non-blocking `sendto` (the `socket`
//! module). A caller on music on hold wakes its task for none of its
//! packets: its leg takes the socket out of the poller and reads what waited every 100 ms, in
//! batches, with the kernel's arrival times (the `held` module; who the leg listens to and how
//! it waits, in `party`).

use std::future::poll_fn;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use prometheus_client::metrics::counter::Counter;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::clock::{Listener, Output};
use super::dtmf::DtmfDetector;
use super::latch::Seen;
use super::moh::{Playlist, Track, FRAME};
use super::record::Recording;
use super::rtp;
use super::sdp::{Codec, Rtcp};
use super::tap::{self, Fifo, Mix, Side, Tap};

/// Where and how to send; changed by re-INVITEs (hold/unhold, new address).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    pub remote: Option<SocketAddr>,
    pub codec: Codec,
    pub send: bool,
    /// Payload type of telephone-event/8000 the party offered.
    pub dtmf_pt: Option<u8>,
    /// The IP address the party's signalling comes from: RTP from it is the party's even from
    /// another address than the SDP's (NAT). `None`: only the SDP's host.
    pub signal_ip: Option<IpAddr>,
    /// Where the party takes RTCP (its SDP's `a=rtcp` / `a=rtcp-mux`).
    pub rtcp: Rtcp,
    /// Milliseconds of audio per packet sent (the party's `a=ptime`, see
    /// [`super::sdp::packet_ms`]): 10 to 60, a multiple of 10.
    pub packet_ms: u32,
}

/// Samples (and G.711 bytes) per packet at `packet_ms`, held to 10–60 ms.
pub fn packet_samples(packet_ms: u32) -> usize {
    let ms = packet_ms.clamp(super::sdp::MIN_PTIME, super::sdp::MAX_PTIME);
    (ms * 8) as usize
}

/// The largest packet payload: 60 ms of G.711.
const MAX_PAYLOAD: usize = 480;

/// What the leg hears.
#[derive(Clone)]
pub enum Mode {
    /// Music on hold: a class of the node's library, the track chosen per call.
    Moh(Playlist),
    /// Nothing.
    Silence,
    /// A prompt, once; then silence and [`MediaEvent::PlayDone`].
    Play(Arc<Track>),
    /// The other leg's party, relayed packet by packet.
    Bridge(Arc<Leg>),
    /// A supervisor listening in: both parties of a bridged call, mixed per frame; what the
    /// supervisor sends goes to the agent when the mix whispers.
    Listen(Arc<Mix>),
}

impl std::fmt::Debug for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mode::Moh(p) => write!(f, "Moh({} tracks)", p.len()),
            Mode::Silence => write!(f, "Silence"),
            Mode::Play(t) => write!(f, "Play({})", t.name),
            Mode::Bridge(l) => write!(f, "Bridge({:?})", l.remote()),
            Mode::Listen(m) => write!(f, "Listen(whisper: {})", m.whispers()),
        }
    }
}

/// Something the leg's media noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    Dtmf(char),
    /// The prompt asked for by the [`set_mode`](Session::set_mode) call that returned this
    /// number has played to its end (an older prompt's end cannot be taken for a newer one's).
    PlayDone(u64),
}

/// Counters of one leg's media, read for the CDR and tests.
#[derive(Debug, Default)]
pub struct MediaStats {
    pub sent: AtomicU64,
    pub sent_bytes: AtomicU64,
    pub received: AtomicU64,
    pub relayed: AtomicU64,
    pub relayed_bytes: AtomicU64,
    /// Packets dropped because they did not come from the party.
    pub ignored: AtomicU64,
    /// Times the leg's pacing had it send: its own timer woke its task, or the music track's
    /// clock sent for it (never while it only relays or is silent).
    pub paced: AtomicU64,
}

/// The part of a leg another leg needs to relay to it: its socket and its party's address.
#[derive(Debug)]
pub struct Leg {
    socket: RtpSocket,
    /// A std mutex: held only to copy or replace an address, never across an `.await`.
    remote: Mutex<Option<SocketAddr>>,
    pub stats: MediaStats,
    /// A supervisor's audio waiting to be mixed into what is relayed to this leg's party
    /// (whisper); `None` when nobody whispers. A std mutex, never held across an `.await`.
    whisper: Mutex<Option<Fifo>>,
    /// The leg's quality (see `report`); a std mutex, held for a few additions per packet.
    meter: Mutex<Meter>,
}

/// The music track's clock sends a listening leg's packets out of the leg's socket.
impl Output for Leg {
    fn send_now(&self, packet: &[u8], to: SocketAddr) -> bool {
        let sent = self.socket.send_to(packet, to).is_ok();
        if sent {
            self.stats.sent.fetch_add(1, Ordering::Relaxed);
            self.stats
                .sent_bytes
                .fetch_add(packet.len() as u64, Ordering::Relaxed);
        }
        sent
    }

    fn paced(&self) {
        self.stats.paced.fetch_add(1, Ordering::Relaxed);
    }
}

impl Leg {
    pub fn remote(&self) -> Option<SocketAddr> {
        *self.remote.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_remote(&self, addr: Option<SocketAddr>) {
        *self.remote.lock().unwrap_or_else(|p| p.into_inner()) = addr;
    }

    /// Sends `packet` to this leg's party from this leg's socket; while a supervisor
    /// whispers, with the supervisor's audio mixed into its payload (in place: the packet is
    /// the relaying leg's receive buffer, so a relayed packet is never copied). Sent without
    /// waiting: a datagram the socket cannot take at once is lost, as on the wire.
    fn relay(&self, packet: &mut [u8]) {
        let Some(to) = self.remote() else { return };
        self.mix_whisper(packet);
        if self.socket.send_to(packet, to).is_ok() {
            self.stats.relayed.fetch_add(1, Ordering::Relaxed);
            self.stats
                .relayed_bytes
                .fetch_add(packet.len() as u64, Ordering::Relaxed);
        }
    }

    fn lock_whisper(&self) -> std::sync::MutexGuard<'_, Option<Fifo>> {
        self.whisper.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Mixes the whisper into `packet`'s payload; leaves it as it came when nobody whispers
    /// or it is not G.711 audio.
    fn mix_whisper(&self, packet: &mut [u8]) {
        let mut guard = self.lock_whisper();
        let Some(fifo) = guard.as_mut().filter(|f| f.ready()) else {
            return;
        };
        let (Some(pt), Some(range)) = (rtp::payload_type(packet), rtp::payload_range(packet))
        else {
            return;
        };
        if range.len() <= tap::MAX_PAYLOAD {
            tap::mix_into_payload(fifo, pt, &mut packet[range]);
        }
    }

    /// Starts mixing a supervisor's audio into what this leg relays; false if someone
    /// already whispers here.
    pub fn start_whisper(&self) -> bool {
        let mut guard = self.lock_whisper();
        if guard.is_some() {
            return false;
        }
        *guard = Some(Fifo::default());
        true
    }

    /// Stops the whisper; relaying goes back to forwarding packets as they came.
    pub fn stop_whisper(&self) {
        *self.lock_whisper() = None;
    }

    /// Whether a supervisor whispers to this leg's party.
    pub fn whispering(&self) -> bool {
        self.lock_whisper().is_some()
    }

    /// Queues a supervisor's G.711 payload for the whisper (dropped when nobody whispers).
    pub fn whisper(&self, pt: u8, payload: &[u8]) {
        if let Some(fifo) = self.lock_whisper().as_mut() {
            fifo.push(pt, payload);
        }
    }
}

#[derive(Clone)]
struct Control {
    target: Target,
    mode: Mode,
    /// Counts `set_mode` calls: a new count is a new request (a prompt asked for again plays
    /// again), the same count with other changes (target, recording) leaves the mode's progress.
    mode_seq: u64,
    recording: Option<Arc<Recording>>,
    /// Where received audio is published for listeners, and as which side of the bridge.
    tap: Option<(Tap, Side)>,
}

/// A running media leg; stopped by `stop()` or when dropped.
pub struct Session {
    pub local: SocketAddr,
    leg: Arc<Leg>,
    control: watch::Sender<Control>,
    cancel: CancellationToken,
    events: Mutex<Option<mpsc::UnboundedReceiver<MediaEvent>>>,
    /// The leg's task, awaited by [`Session::finish`].
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Session {
    /// Starts the leg in `mode`, sending to `target`; `track` picks the music-on-hold track;
    /// packets that are not the party's are counted in `ignored` too (the node's metric).
    pub fn start(
        socket: UdpSocket,
        local: SocketAddr,
        target: Target,
        mode: Mode,
        track: usize,
        ignored: Counter,
    ) -> Session {
        let leg = Arc::new(Leg {
            socket: RtpSocket::new(socket),
            remote: Mutex::new(target.remote),
            stats: MediaStats::default(),
            whisper: Mutex::new(None),
            meter: Mutex::new(Meter::default()),
        });
        let (control, rx) = watch::channel(Control {
            target,
            mode,
            mode_seq: 0,
            recording: None,
            tap: None,
        });
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let player = Player {
            leg: leg.clone(),
            track,
            events: ev_tx,
            cancel: cancel.clone(),
            ignored,
            origin: tokio::time::Instant::now(),
            rtcp: None,
            cname: format!("callfleet@{}", local.ip()),
        };
        let task = tokio::spawn(player.run(rx));
        Session {
            local,
            leg,
            control,
            cancel,
            events: Mutex::new(Some(ev_rx)),
            task: Mutex::new(Some(task)),
        }
    }

    pub fn stats(&self) -> &MediaStats {
        &self.leg.stats
    }

    /// The leg, for bridging another session to it.
    pub fn leg(&self) -> Arc<Leg> {
        self.leg.clone()
    }

    /// Takes the event receiver (once).
    pub fn events(&self) -> Option<mpsc::UnboundedReceiver<MediaEvent>> {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    pub fn retarget(&self, target: Target) {
        self.leg.set_remote(target.remote);
        self.control.send_modify(|c| c.target = target);
    }

    pub fn target(&self) -> Target {
        self.control.borrow().target
    }

    /// Switches what the party hears; a prompt plays from its start, even one just played.
    /// Returns the number its [`MediaEvent::PlayDone`] will carry.
    pub fn set_mode(&self, mode: Mode) -> u64 {
        let mut seq = 0;
        self.control.send_modify(|c| {
            c.mode = mode;
            c.mode_seq = c.mode_seq.wrapping_add(1);
            seq = c.mode_seq;
        });
        seq
    }

    /// Starts recording what the party sends into a WAV file (8 kHz mono 16-bit).
    pub fn record(&self, path: &Path) -> Result<Arc<Recording>, hound::Error> {
        let rec = Arc::new(Recording::create(path)?);
        self.control
            .send_modify(|c| c.recording = Some(rec.clone()));
        Ok(rec)
    }

    /// Publishes what this leg's party sends to `tap` as `side` (or stops, with `None`).
    pub fn set_tap(&self, tap: Option<(Tap, Side)>) {
        self.control.send_modify(|c| c.tap = tap);
    }

    /// Stops the recording (if any) and returns it.
    pub fn stop_recording(&self) -> Option<Arc<Recording>> {
        let mut out = None;
        self.control.send_modify(|c| out = c.recording.take());
        out
    }

    pub fn stop(&self) {
        self.cancel.cancel();
    }
}

/// Connects two legs: each relays what its party sends to the other party.
pub fn bridge(a: &Session, b: &Session) {
    a.set_mode(Mode::Bridge(b.leg()));
    b.set_mode(Mode::Bridge(a.leg()));
}

impl Drop for Session {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

struct Player {
    leg: Arc<Leg>,
    track: usize,
    events: mpsc::UnboundedSender<MediaEvent>,
    cancel: CancellationToken,
    ignored: Counter,
    /// Where the task's clock starts (arrival times for the statistics).
    origin: tokio::time::Instant,
    /// The RTCP socket (RTP port + 1), bound when the task starts.
    rtcp: Option<UdpSocket>,
    /// Our RTCP canonical name.
    cname: String,
}

/// The control's next change, with its receiver handed back to wait for the one after.
async fn next_change(
    mut rx: watch::Receiver<Control>,
) -> (
    Result<(), watch::error::RecvError>,
    watch::Receiver<Control>,
) {
    let r = rx.changed().await;
    (r, rx)
}

impl Player {
    async fn run(mut self, mut rx: watch::Receiver<Control>) {
        let mut ctl = rx.borrow_and_update().clone();
        let mut out = Out::new(&ctl.target);
        if let Ok(local) = self.leg.socket.local_addr() {
            self.rtcp = report::bind_rtcp(local).await;
        }
        let mut pace = Pace::Idle;
        let mut ear = Ear::new(&ctl.target, &self.leg.socket);
        self.repace(&mut pace, &ctl, &mut out, &mut ear);
        let start = tokio::time::Instant::now() + report::FIRST_REPORT;
        let mut reports = tokio::time::interval_at(start, report::REPORT_INTERVAL);
        reports.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut inbuf = [0u8; 2048];
        // The long-lived waits are pinned once: the cancellation and the control's next change
        // stay registered across wake-ups instead of being registered and dropped at each one.
        let cancel = self.cancel.clone();
        let mut cancelled = std::pin::pin!(cancel.cancelled());
        let mut changed = std::pin::pin!(next_change(rx));
        loop {
            tokio::select! {
                // The RTP socket first: a packet (nearly every wake-up) is served without
                // polling the other waits. A flood cannot starve them: the socket's readiness
                // is polled under tokio's cooperative budget, which makes it wait (and the
                // waits after it be looked at) once the task has used its share.
                biased;
                r = poll_fn(|cx| ear.reader.poll_ready(&self.leg.socket, cx)) => {
                    if r.is_err() { break; }
                    self.on_readable(&mut ear, &mut ctl, &mut inbuf, &mut pace, &mut out);
                }
                () = &mut cancelled => break,
                (r, mut rx) = &mut changed => {
                    if r.is_err() { break; }
                    let new = rx.borrow_and_update().clone();
                    changed.set(next_change(rx));
                    // What waited on a parked socket came under the control before.
                    self.read_parked(&mut ear, &mut ctl, out.stream.ssrc);
                    self.control_changed(&mut ctl, new, &mut out, &mut ear.party);
                    self.repace(&mut pace, &ctl, &mut out, &mut ear);
                }
                () = pace.next() => {
                    self.leg.stats.paced.fetch_add(1, Ordering::Relaxed);
                    self.send_frame(&mut ctl, &mut out);
                    // A prompt that ended leaves the leg silent.
                    self.repace(&mut pace, &ctl, &mut out, &mut ear);
                }
                _ = reports.tick() => {
                    self.read_parked(&mut ear, &mut ctl, out.stream.ssrc);
                    pace.sync(&mut out);
                    self.send_report(&ctl, &mut out, &ear.party).await
                }
                () = held::next(&mut ear.batch) => {
                    self.on_readable(&mut ear, &mut ctl, &mut inbuf, &mut pace, &mut out);
                }
                () = report::readable(self.rtcp.as_ref()) => {
                    let Some(rtcp) = self.rtcp.as_ref() else { continue };
                    let Ok((n, from)) = rtcp.try_recv_from(&mut inbuf) else { continue };
                    if ear.party.rtcp_source(from) {
                        let ours = (out.stream.ssrc, false);
                        self.take_rtcp(&mut ear.party, from, &inbuf[..n], ours);
                    }
                }
            }
        }
        // What waited on a parked socket is counted before the leg ends.
        self.read_parked(&mut ear, &mut ctl, out.stream.ssrc);
    }

    /// The RTP socket is readable (or, parked, its batch time came): takes what waits, and
    /// starts music held for want of an address when the leg latched.
    fn on_readable(
        &self,
        ear: &mut Ear,
        ctl: &mut Control,
        inbuf: &mut [u8],
        pace: &mut Pace,
        out: &mut Out,
    ) {
        let was = ctl.target.remote;
        let ours = out.stream.ssrc;
        if ear.reader.parked() {
            self.read_parked(ear, ctl, ours);
        } else {
            self.drain(ear, ctl, inbuf, ours);
        }
        if ctl.target.remote != was {
            // Latched: music held for want of an address may start (or goes to the new one).
            self.repace(pace, ctl, out, ear);
        }
    }

    /// Takes what waits on the RTP socket (`socket::Reader::drain`).
    fn drain(&self, ear: &mut Ear, ctl: &mut Control, inbuf: &mut [u8], ours: u32) {
        // The reader is set aside while the packets it reads are taken with the rest of `ear`.
        let reader = std::mem::take(&mut ear.reader);
        reader.drain(&self.leg.socket, inbuf, |packet, from| {
            self.on_rtp(ear, ctl, packet, (from, self.now()), ours);
        });
        ear.reader = reader;
    }

    /// Takes what waited on a parked RTP socket, in batches (see [`held`]), each datagram with
    /// its kernel arrival time; nothing when the socket is not parked.
    fn read_parked(&self, ear: &mut Ear, ctl: &mut Control, ours: u32) {
        if !ear.reader.parked() {
            return;
        }
        let (task_now, wall_now) = (self.now(), SystemTime::now());
        let read = held::read_waiting(self.leg.socket.raw_fd(), |packet, from, stamp| {
            let at = held::arrival(task_now, wall_now, stamp);
            self.on_rtp(ear, ctl, packet, (from, at), ours);
        });
        if let Err(e) = read {
            debug!(error = %e, "cannot read the RTP that waited");
        }
    }

    /// A datagram on the RTP port, from `from` at `at` (the task's clock): the party's RTCP
    /// (rtcp-mux) or RTP; others' are counted.
    fn on_rtp(
        &self,
        ear: &mut Ear,
        ctl: &mut Control,
        packet: &mut [u8],
        (from, at): (SocketAddr, Duration),
        ours: u32,
    ) {
        if rtp::is_rtcp(packet) {
            // rtcp-mux: the party's RTCP on its RTP stream.
            if self.accept(&mut ear.party, ctl, from) {
                self.take_rtcp(&mut ear.party, from, packet, (ours, true));
            }
            return;
        }
        let Some(pt) = rtp::payload_type(packet) else {
            return;
        };
        if self.accept(&mut ear.party, ctl, from) {
            self.take(ctl, &mut ear.dtmf, packet, (pt, at));
        }
    }

    /// Switches the leg's pacing to what its mode and target ask for (see [`pace`]); a leg
    /// that starts sending again skips the time it was idle in its RTP timestamp. A leg that
    /// stays on its track's roster has its address and codec brought up to date there.
    /// Then the leg reads its RTP in batches while its caller is on hold, datagram by datagram
    /// otherwise (see [`held`]).
    fn repace(&self, pace: &mut Pace, ctl: &Control, out: &mut Out, ear: &mut Ear) {
        self.pace(pace, ctl, out);
        let batched = held::batched(pace.kind(), ctl.recording.is_some(), ctl.tap.is_some());
        ear.read_in_batches(batched, &self.leg.socket);
    }

    /// The pacing part of [`Player::repace`].
    fn pace(&self, pace: &mut Pace, ctl: &Control, out: &mut Out) {
        let want = pace::kind(&ctl.mode, &ctl.target);
        let track = match &ctl.mode {
            Mode::Moh(playlist) => Some(playlist.track(self.track)),
            _ => None,
        };
        let key = track.map_or(0, |t| std::ptr::from_ref(t) as usize);
        let (codec, remote) = (ctl.target.codec, ctl.target.remote);
        if pace.is(want, ctl.target.packet_ms, key) {
            if let Pace::Shared { member, .. } = pace {
                member.with(|l| {
                    l.codec = codec;
                    l.stream.payload_type = codec.payload_type();
                    l.remote = remote.unwrap_or(l.remote);
                });
            }
            return;
        }
        pace.end(out);
        *pace = match (want, track, remote) {
            (Kind::Own, _, _) => {
                self.resume(out);
                Pace::own(ctl.target.packet_ms)
            }
            (Kind::Shared, Some(track), Some(remote)) => {
                self.resume(out);
                let mut listener = Listener::new(out.stream.clone(), codec, remote, out.stamped);
                listener.packets = out.own_packets;
                listener.octets = out.own_octets;
                Pace::Shared {
                    member: track.clock().join(listener, self.leg.clone()),
                    track: key,
                }
            }
            (Kind::Idle | Kind::Shared, _, _) => Pace::Idle,
        };
    }

    /// A leg about to send again: its stream's timestamp skips the time it sent nothing.
    fn resume(&self, out: &mut Out) {
        let now = tokio::time::Instant::now();
        let gap = pace::gap_samples(out.stamped, now);
        if gap > 0 {
            out.stream.skip(gap);
            out.stamped = now;
        }
    }

    /// Whether a packet from `from` is the party's (see [`super::latch::Latch`]); latches the leg, and
    /// counts a stranger's packet.
    fn accept(&self, party: &mut party::Party, ctl: &mut Control, from: SocketAddr) -> bool {
        match party.latch.packet(from) {
            Seen::Stranger => {
                self.ignore(from);
                false
            }
            Seen::Party { moved } => {
                if moved {
                    debug!(%from, "RTP latched to the party's source address");
                    self.leg.set_remote(Some(from));
                    ctl.target.remote = Some(from);
                }
                true
            }
        }
    }

    /// One packet of the party, arrived at `at` on the task's clock: counted, measured, DTMF
    /// or recorded, published, relayed or mixed.
    fn take(
        &self,
        ctl: &Control,
        dtmf: &mut DtmfDetector,
        packet: &mut [u8],
        (pt, at): (u8, Duration),
    ) {
        self.leg.stats.received.fetch_add(1, Ordering::Relaxed);
        self.measure(ctl, packet, at);
        if Some(pt) == ctl.target.dtmf_pt {
            if let Some(digit) = dtmf.packet(packet) {
                let _ = self.events.send(MediaEvent::Dtmf(digit));
            }
        } else if let Some(rec) = &ctl.recording {
            rec.write_g711(pt, &packet[rtp::HEADER.min(packet.len())..]);
        }
        // Published before relaying: a whisper is mixed into the relayed packet in place.
        if let Some((tap, side)) = &ctl.tap {
            if Some(pt) != ctl.target.dtmf_pt {
                if let Some(r) = rtp::payload_range(packet) {
                    tap.publish(*side, pt, &packet[r]);
                }
            }
        }
        match &ctl.mode {
            Mode::Bridge(peer) => peer.relay(packet),
            Mode::Listen(mix) if Some(pt) != ctl.target.dtmf_pt => {
                if let Some(r) = rtp::payload_range(packet) {
                    mix.heard(pt, &packet[r]);
                }
            }
            _ => {}
        }
    }

    /// A new control from the session: target, mode, recording or tap changed.
    fn control_changed(
        &self,
        ctl: &mut Control,
        new: Control,
        out: &mut Out,
        party: &mut party::Party,
    ) {
        let requested = new.mode_seq != ctl.mode_seq;
        if new.target.codec != ctl.target.codec {
            out.stream.payload_type = new.target.codec.payload_type();
            out.pending.clear();
        }
        if requested {
            out.pending.clear();
        }
        let latched = party.retarget(&new.target);
        if requested {
            // A new request: a prompt starts from its beginning.
            out.play_frame = 0;
            *ctl = new;
        } else {
            // Same mode request: keep where the leg is (a finished prompt stays finished, a
            // playing one goes on).
            let mode = std::mem::replace(&mut ctl.mode, Mode::Silence);
            *ctl = Control { mode, ..new };
        }
        if let Some(at) = latched {
            // Still where the party is (a re-INVITE repeating the SDP's address).
            ctl.target.remote = Some(at);
            self.leg.set_remote(Some(at));
        }
    }

    /// A packet that is not the party's: counted, and logged once per leg.
    fn ignore(&self, from: SocketAddr) {
        if self.leg.stats.ignored.fetch_add(1, Ordering::Relaxed) == 0 {
            debug!(%from, "RTP from an address that is not the party's ignored");
        }
        self.ignored.inc();
    }

    /// Sends one packet of the mode's audio (or skips its time when there is none to send).
    fn send_frame(&self, ctl: &mut Control, out: &mut Out) {
        let samples = packet_samples(ctl.target.packet_ms);
        let have = self.fill(ctl, out, samples);
        self.emit(have, &ctl.target, out, samples);
    }

    /// Sends the first `samples` bytes of `out.pending` when `have`, else skips their time.
    fn emit(&self, have: bool, target: &Target, out: &mut Out, samples: usize) {
        let remote = target.remote.filter(|_| target.send);
        match (have, remote) {
            (true, Some(remote)) => {
                let payload = out.pending.get(..samples).unwrap_or_default();
                let n = out.stream.write(payload, samples as u32, &mut out.buf);
                if self.leg.socket.send_to(&out.buf[..n], remote).is_ok() {
                    let stats = &self.leg.stats;
                    stats.sent.fetch_add(1, Ordering::Relaxed);
                    stats.sent_bytes.fetch_add(n as u64, Ordering::Relaxed);
                    out.own_packets += 1;
                    out.own_octets += payload.len() as u64;
                }
            }
            _ => out.stream.skip(samples as u32),
        }
        out.pending.drain(..samples.min(out.pending.len()));
        out.stamped += Duration::from_millis(samples as u64 / 8);
    }

    /// Tops `out.pending` up to `samples` bytes from the mode's 20 ms frames; false when the
    /// mode has nothing to send now. A prompt's last packet is padded with silence, and its end
    /// is reported at the next packet time.
    fn fill(&self, ctl: &mut Control, out: &mut Out, samples: usize) -> bool {
        let codec = ctl.target.codec;
        for _ in 0..(samples / FRAME + 2) {
            if out.pending.len() >= samples {
                return true;
            }
            match &ctl.mode {
                Mode::Moh(playlist) => {
                    out.moh_frame += 1;
                    let track = playlist.track(self.track);
                    out.pending
                        .extend_from_slice(track.frame(codec, out.moh_frame - 1));
                }
                Mode::Play(clip) if out.play_frame < clip.frames() => {
                    out.play_frame += 1;
                    out.pending
                        .extend_from_slice(clip.frame(codec, out.play_frame - 1));
                }
                Mode::Play(_) if !out.pending.is_empty() => {
                    out.pending.resize(samples, silence(codec));
                }
                Mode::Play(_) => {
                    let _ = self.events.send(MediaEvent::PlayDone(ctl.mode_seq));
                    ctl.mode = Mode::Silence;
                    return false;
                }
                Mode::Listen(mix) => {
                    let n = mix.next_frame(codec, &mut out.mixed);
                    out.pending.extend_from_slice(&out.mixed[..n]);
                    if n == 0 {
                        out.pending.resize(samples, silence(codec));
                    }
                }
                Mode::Silence | Mode::Bridge(_) => {
                    out.pending.clear();
                    return false;
                }
            }
        }
        out.pending.len() >= samples
    }
}

/// A G.711 byte of silence.
fn silence(codec: Codec) -> u8 {
    match codec {
        Codec::Pcmu => 0xff,
        Codec::Pcma => 0xd5,
    }
}

mod held;
mod out;
mod pace;
mod party;
mod report;
mod socket;
use out::Out;
use pace::{Kind, Pace};
use party::Ear;
pub use report::{LegQuality, Meter, FINISH_WAIT, REPORT_INTERVAL};
use socket::RtpSocket;

#[cfg(test)]
mod tests;
