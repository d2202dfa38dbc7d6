//! Peer probes: a main node sends SIP `OPTIONS` to every other live node every
//! `lb.probe_interval` and tells the balancer which peers stopped answering, so a node killed
//! with `kill -9` gets no more redirected calls within a few intervals instead of the heartbeat
//! TTL. Heartbeats remain the record of which nodes exist; probes only exclude.
//!
//! The decision (flip after `lb.probe_misses` misses / `lb.probe_answers` answers in a row) is
//! [`callfleet_lb::Health`]; this module is the I/O shell: one UDP socket on the node's SIP
//! address (an ephemeral port), one round of probes per tick, answers matched by Call-ID.
//!
//! A peer answers with its live load ([`LOAD_HEADER`]); the balancer uses it while the heartbeat
//! table cannot be read, so calls keep spreading during a database outage.

use std::collections::HashMap;
use std::net::SocketAddr;

use callfleet_lb::{Health, PeerState, ProbeLoad, Role, Thresholds, LOAD_HEADER};
use rsipstack::sip::{Header, SipMessage};
use tokio::net::UdpSocket;
use tokio::time::MissedTickBehavior;
use tracing::{debug, info, warn};

use callfleet_lb::Balancer;
use callfleet_web::Metrics;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

#[cfg(test)]
mod tests;

/// What the probe task uses of the node, and nothing more.
pub struct Prober {
    /// This node's name (`node.name`): not probed.
    pub me: String,
    /// This run's generation, in the probes' Call-IDs.
    pub generation: i64,
    pub role: Role,
    /// The node's SIP address: probes leave from its IP.
    pub sip: SocketAddr,
    /// `lb.probe_interval`; zero: no probing.
    pub interval: std::time::Duration,
    pub thresholds: Thresholds,
    pub metrics: Metrics,
    /// Its view says whom to probe; it is told who is down.
    pub balancer: Balancer,
    pub stopping: CancellationToken,
}

impl Prober {
    /// The probe settings of `cfg`, with the parts it shares with the rest of the node.
    pub fn new(
        cfg: &Config,
        generation: i64,
        metrics: Metrics,
        balancer: Balancer,
        stopping: CancellationToken,
    ) -> Prober {
        Prober {
            me: cfg.node.name.clone(),
            generation,
            role: cfg.node.role,
            sip: cfg.sip_advertise(),
            interval: cfg.lb.probe_interval,
            thresholds: Thresholds {
                misses: cfg.lb.probe_misses,
                answers: cfg.lb.probe_answers,
            },
            metrics,
            balancer,
            stopping,
        }
    }
}

/// Runs on main nodes until the node stops; returns at once on extra nodes or with probing off.
pub async fn run(p: Prober) {
    if p.role != Role::Main || p.interval.is_zero() {
        return;
    }
    let bind = SocketAddr::new(p.sip.ip(), 0);
    let socket = match UdpSocket::bind(bind).await {
        Ok(s) => s,
        Err(e) => {
            warn!(%bind, error = %e, "cannot bind the peer probe socket; peers are judged by heartbeats only");
            return;
        }
    };
    let local = socket.local_addr().unwrap_or(bind);
    let mut health = Health::new(p.thresholds);
    let mut tick = tokio::time::interval(p.interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut round = Round::default();
    let mut seq: u64 = 0;
    let mut buf = vec![0u8; 4096];
    loop {
        tokio::select! {
            _ = p.stopping.cancelled() => return,
            _ = tick.tick() => {
                settle(&p, &mut health, &mut round);
                seq += 1;
                round = send_round(&p, &socket, local, &mut health, seq).await;
            }
            r = socket.recv_from(&mut buf) => {
                if let Ok((len, from)) = r {
                    answer(&p, &mut round, buf.get(..len).unwrap_or_default(), from);
                }
            }
        }
    }
}

/// One probe of a round: the peer it went to, where, and whether it was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sent {
    peer: String,
    to: SocketAddr,
    answered: bool,
}

/// The probes of one tick, by Call-ID.
#[derive(Debug, Default)]
struct Round {
    sent: HashMap<String, Sent>,
}

impl Round {
    /// Marks the probe `call_id` answered; the peer it went to, if it is one of this round's
    /// and the answer came from that peer's address (a datagram from elsewhere that names
    /// the Call-ID is not an answer: it could keep a dead peer in or forge its load).
    fn answered(&mut self, call_id: &str, from: SocketAddr) -> Option<&str> {
        let sent = self.sent.get_mut(call_id)?;
        if sent.to.ip() != from.ip() {
            return None;
        }
        sent.answered = true;
        Some(&sent.peer)
    }
}

/// Takes one datagram on the probe socket: marks its probe answered and hands the load it
/// carries to the balancer.
fn answer(p: &Prober, round: &mut Round, bytes: &[u8], from: SocketAddr) {
    let Some((call_id, load)) = parse_answer(bytes) else {
        return;
    };
    let Some(peer) = round.answered(&call_id, from) else {
        return;
    };
    match load {
        Some(Ok(load)) => p.balancer.answered(peer, load, crate::now_ms()),
        Some(Err(e)) => debug!(peer = %peer, error = %e, "probe answer with an unreadable load"),
        None => {}
    }
}

/// Records the last round's results and pushes the peers now down to the balancer.
fn settle(p: &Prober, health: &mut Health, round: &mut Round) {
    for Sent { peer, answered, .. } in round.sent.drain().map(|(_, v)| v) {
        match health.record(&peer, answered) {
            Some(PeerState::Down) => {
                warn!(peer = %peer, "peer stopped answering probes; no calls are redirected to it");
                p.metrics.peer_excluded(&peer);
            }
            Some(PeerState::Up) => info!(peer = %peer, "peer answers probes again"),
            None => {}
        }
    }
    let down = health.down();
    p.metrics.set_peers_down(down.len() as i64);
    p.balancer.set_down(down);
}

/// Sends one OPTIONS to every other node whose heartbeat is fresh.
async fn send_round(
    p: &Prober,
    socket: &UdpSocket,
    local: SocketAddr,
    health: &mut Health,
    seq: u64,
) -> Round {
    let view = p.balancer.view();
    health.retain(view.nodes().iter().map(|n| n.name.as_str()));
    let mut round = Round::default();
    let me = &p.me;
    for (index, peer) in view.nodes().iter().enumerate() {
        if peer.name == *me || !view.is_alive(peer) {
            continue;
        }
        // Unguessable: an answer must name it (and come from the peer's address).
        let call_id = format!(
            "cfp-{}-{seq}-{index}-{:016x}",
            p.generation,
            rand::random::<u64>()
        );
        let request = options(&call_id, local, peer.sip);
        if let Err(e) = socket.send_to(request.as_bytes(), peer.sip).await {
            // Counted as a miss: the round settles it.
            debug!(peer = %peer.name, error = %e, "probe not sent");
        }
        round.sent.insert(
            call_id,
            Sent {
                peer: peer.name.clone(),
                to: peer.sip,
                answered: false,
            },
        );
    }
    round
}

/// An out-of-dialog `OPTIONS` from `local` to `peer`.
fn options(call_id: &str, local: SocketAddr, peer: SocketAddr) -> String {
    format!(
        "OPTIONS sip:{peer} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK{call_id};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@{local}>;tag={call_id}\r\n\
         To: <sip:{peer}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\n\
         User-Agent: callfleet-probe\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// The Call-ID of a SIP response (any status: a node that answers at all is up) and the load
/// header it carries, if any.
fn parse_answer(
    bytes: &[u8],
) -> Option<(
    String,
    Option<Result<ProbeLoad, callfleet_lb::hold::ParseLoadError>>,
)> {
    let SipMessage::Response(r) = SipMessage::try_from(bytes).ok()? else {
        return None;
    };
    let mut call_id = None;
    let mut load = None;
    for header in r.headers.iter() {
        match header {
            Header::CallId(c) => call_id = Some(c.value().to_string()),
            Header::Other(name, value) if name.eq_ignore_ascii_case(LOAD_HEADER) => {
                load = Some(value.parse());
            }
            _ => {}
        }
    }
    Some((call_id?, load))
}
