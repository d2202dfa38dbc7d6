//! SIP trace per call: every SIP message of every leg of a call, both directions, kept with
//! the call.
//!
//! Capture is cheap on the call path: the places that read and write SIP
//! ([`crate::sip::inbound::inspect`], the UDP front's sends, stateless replies, rsipstack's
//! sends on streams) hand the bytes to [`Tracer::capture`], which copies them into a bounded
//! channel and never waits (a full channel drops the message and counts it). One collector
//! task ties each message to its call by Call-ID ([`collect`]), keeps live calls' traces in
//! memory (served by [`Tracer::live`]), exports each message as HEPv3 when `trace.hep` is set
//! ([`hep`]), and cuts chunks that the [`writer`] compresses and inserts into `sip_trace` in
//! batches, off the call path and deferred while the node sheds optional work.

pub mod collect;
pub mod hep;
pub mod inspector;
pub mod remote;
pub mod retention;
pub mod writer;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use callfleet_vocab::{CallTrace, TraceTransport, TracedMessage};
use callfleet_web::metrics::trace::TraceOutcome;
use callfleet_web::Metrics;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info};

use collect::{Collector, Event, Limits};

use crate::config::Config;
use crate::node::Base;

/// Captured messages and call events waiting for the collector.
const QUEUE: usize = 8_192;
/// How often the collector cuts due chunks.
const TICK: Duration = Duration::from_millis(250);
/// How long an ended call still takes messages (64 × T1: every retransmission is over).
const GRACE: Duration = Duration::from_secs(32);
/// How long a message of an unknown Call-ID waits for its call, and how many may wait.
const PENDING_FOR: Duration = Duration::from_secs(5);
const PENDING_MAX: usize = 2_048;

struct Query {
    call_id: String,
    reply: oneshot::Sender<Option<CallTrace>>,
}

type Parked = (mpsc::Receiver<Event>, mpsc::Receiver<Query>);

/// The capture side, cheap to clone; a disabled tracer takes nothing.
#[derive(Clone)]
pub struct Tracer {
    inner: Arc<Shared>,
}

struct Shared {
    enabled: bool,
    events: mpsc::Sender<Event>,
    queries: mpsc::Sender<Query>,
    metrics: Metrics,
    /// The node's own SIP addresses: UDP/TCP, and TLS.
    local: SocketAddr,
    local_tls: Option<SocketAddr>,
    /// The receiving ends, until [`start`] takes them.
    parked: Mutex<Option<Parked>>,
}

/// Microseconds since the UNIX epoch.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

impl Tracer {
    pub fn new(cfg: &Config, metrics: Metrics) -> Tracer {
        let (events, er) = mpsc::channel(QUEUE);
        let (queries, qr) = mpsc::channel(64);
        Tracer {
            inner: Arc::new(Shared {
                enabled: cfg.trace.enabled,
                events,
                queries,
                metrics,
                local: cfg.sip_advertise(),
                local_tls: cfg.sip_tls_advertise(),
                parked: Mutex::new(Some((er, qr))),
            }),
        }
    }

    /// This node's address on `transport`.
    fn local(&self, transport: TraceTransport) -> SocketAddr {
        match transport {
            TraceTransport::Tls => self.inner.local_tls.unwrap_or(self.inner.local),
            _ => self.inner.local,
        }
    }

    /// A message read from `peer`.
    pub fn received(&self, transport: TraceTransport, peer: SocketAddr, bytes: &[u8]) {
        self.capture(transport, peer, self.local(transport), bytes);
    }

    /// A message written to `peer`.
    pub fn sent(&self, transport: TraceTransport, peer: SocketAddr, bytes: &[u8]) {
        self.capture(transport, self.local(transport), peer, bytes);
    }

    /// Hands one message to the collector without waiting; a full queue drops it (counted).
    pub fn capture(
        &self,
        transport: TraceTransport,
        src: SocketAddr,
        dst: SocketAddr,
        bytes: &[u8],
    ) {
        if !self.inner.enabled {
            return;
        }
        let m = TracedMessage {
            at_us: now_us(),
            transport,
            src,
            dst,
            text: String::from_utf8_lossy(bytes).into_owned(),
        };
        self.event(Event::Message(m));
    }

    /// Call `call_id` was admitted at `started_at_ms` (its CDR's start).
    pub fn begin(&self, call_id: &str, started_at_ms: i64) {
        self.event(Event::Begin {
            call_id: call_id.to_owned(),
            started_at_ms,
        });
    }

    /// The node dialled leg `leg` (its Call-ID) for call `call_id`.
    pub fn link(&self, leg: &str, call_id: &str) {
        self.event(Event::Link {
            leg: leg.to_owned(),
            call_id: call_id.to_owned(),
        });
    }

    /// Call `call_id` ended.
    pub fn end(&self, call_id: &str) {
        self.event(Event::End {
            call_id: call_id.to_owned(),
        });
    }

    fn event(&self, ev: Event) {
        if !self.inner.enabled {
            return;
        }
        if self.inner.events.try_send(ev).is_err() {
            self.inner
                .metrics
                .trace()
                .messages(TraceOutcome::Dropped, 1);
        }
    }

    /// The trace of a call this node holds now (or that ended within the last 32 s).
    pub async fn live(&self, call_id: &str) -> Option<CallTrace> {
        let (reply, answer) = oneshot::channel();
        let q = Query {
            call_id: call_id.to_owned(),
            reply,
        };
        self.inner.queries.try_send(q).ok()?;
        tokio::time::timeout(Duration::from_secs(2), answer)
            .await
            .ok()?
            .ok()
            .flatten()
    }
}

/// Starts the collector and the writer (once; a disabled tracer starts nothing). Both stop
/// when the node stops, after cutting and writing what they hold.
pub fn start(base: Base, tracer: Tracer) -> Option<tokio::task::JoinHandle<()>> {
    let parked = tracer
        .inner
        .parked
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    let (events, queries) = parked?;
    if !tracer.inner.enabled {
        return None;
    }
    let cfg = &base.cfg.trace;
    let limits = Limits {
        budget: cfg.budget(),
        flush_every: cfg.flush_every,
        pending_for: PENDING_FOR,
        pending_max: PENDING_MAX,
        grace: GRACE,
    };
    let hep = cfg
        .hep_target()
        .and_then(|target| hep_socket(&base, target));
    let (chunks, writer_task) = writer::start(base.clone());
    let task = Collect {
        base: base.clone(),
        collector: Collector::new(limits),
        hep,
        chunks,
    };
    Some(tokio::spawn(async move {
        task.run(events, queries).await;
        if writer_task.await.is_err() {
            debug!("SIP trace writer ended abnormally");
        }
    }))
}

/// A socket for HEP to `target`, from this node's SIP address (port chosen by the system).
fn hep_socket(base: &Base, target: SocketAddr) -> Option<(std::net::UdpSocket, SocketAddr)> {
    let ip = base.cfg.sip.listen.ip();
    let from = if ip.is_unspecified() || ip.is_ipv4() != target.is_ipv4() {
        SocketAddr::new(
            if target.is_ipv4() {
                std::net::Ipv4Addr::UNSPECIFIED.into()
            } else {
                std::net::Ipv6Addr::UNSPECIFIED.into()
            },
            0,
        )
    } else {
        SocketAddr::new(ip, 0)
    };
    match std::net::UdpSocket::bind(from).and_then(|s| s.set_nonblocking(true).map(|()| s)) {
        Ok(s) => {
            info!(%target, "SIP trace exported as HEPv3");
            Some((s, target))
        }
        Err(e) => {
            tracing::warn!(%target, error = %e, "cannot open a socket for HEP; no export");
            None
        }
    }
}

struct Collect {
    base: Base,
    collector: Collector,
    hep: Option<(std::net::UdpSocket, SocketAddr)>,
    chunks: mpsc::Sender<collect::Chunk>,
}

impl Collect {
    async fn run(mut self, mut events: mpsc::Receiver<Event>, mut queries: mpsc::Receiver<Query>) {
        let stop = self.base.life.stopping.clone();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                Some(ev) = events.recv() => {
                    let tied = self.collector.on(ev, Instant::now());
                    self.export(&tied);
                }
                Some(q) = queries.recv() => {
                    let live = self.collector.live(&q.call_id, &self.base.cfg.node.name);
                    // The asker may have given up waiting: nothing to do then.
                    drop(q.reply.send(live));
                }
                _ = tick.tick() => self.cut(Instant::now()),
            }
        }
        // Stopping: what is queued joins its calls, then every call is cut as if past its
        // grace.
        while let Ok(ev) = events.try_recv() {
            let tied = self.collector.on(ev, Instant::now());
            self.export(&tied);
        }
        self.cut(Instant::now() + GRACE + GRACE);
    }

    fn cut(&mut self, now: Instant) {
        for chunk in self.collector.tick(now) {
            if self.chunks.try_send(chunk).is_err() {
                self.base
                    .metrics
                    .trace()
                    .chunk(callfleet_web::metrics::trace::ChunkOutcome::Lost);
            }
        }
        let c = self.collector.take_counts();
        let m = self.base.metrics.trace();
        m.messages(TraceOutcome::Kept, c.kept);
        m.messages(TraceOutcome::Unmatched, c.unmatched);
        m.messages(TraceOutcome::Cut, c.cut);
    }

    /// Sends each message tied to a call to the HEP collector (never waits: a full socket
    /// buffer loses the packet).
    fn export(&self, tied: &[(String, TracedMessage)]) {
        let Some((socket, target)) = &self.hep else {
            return;
        };
        let id = self.base.cfg.trace.hep_id;
        for (call_id, m) in tied {
            let Some(packet) = hep::encode(m, id, call_id) else {
                continue;
            };
            if let Err(e) = socket.send_to(&packet, target) {
                debug!(%target, error = %e, "HEP packet not sent");
            }
        }
    }
}
