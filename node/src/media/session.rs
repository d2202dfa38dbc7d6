//! One call's media: a UDP socket from the pool, a player that sends music-on-hold frames every
//! 20 ms to the caller, and a reader that drains (and counts) what the caller sends. The remote
//! address latches to the source of the caller's RTP (symmetric RTP) once packets arrive.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::moh::{Library, FRAME};
use super::rtp::{self, Stream};
use super::sdp::Codec;

/// Where and how to send; changed by re-INVITEs (hold/unhold, new address).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    pub remote: Option<SocketAddr>,
    pub codec: Codec,
    pub send: bool,
}

/// Counters of one call's media, read for the CDR and tests.
#[derive(Debug, Default)]
pub struct MediaStats {
    pub sent: AtomicU64,
    pub received: AtomicU64,
}

/// A running media session; dropping it does not stop it, `stop()` does.
pub struct Session {
    pub local: SocketAddr,
    control: watch::Sender<Target>,
    cancel: CancellationToken,
    pub stats: Arc<MediaStats>,
}

impl Session {
    /// Starts streaming `library.track(track)` to `target` from `socket`.
    pub fn start(
        socket: UdpSocket,
        local: SocketAddr,
        target: Target,
        library: Library,
        track: usize,
    ) -> Session {
        let (control, rx) = watch::channel(target);
        let cancel = CancellationToken::new();
        let stats = Arc::new(MediaStats::default());
        let player = Player {
            socket,
            rx,
            library,
            track,
            stats: stats.clone(),
            cancel: cancel.clone(),
        };
        tokio::spawn(player.run());
        Session {
            local,
            control,
            cancel,
            stats,
        }
    }

    pub fn retarget(&self, target: Target) {
        self.control.send_replace(target);
    }

    pub fn target(&self) -> Target {
        *self.control.borrow()
    }

    pub fn stop(&self) {
        self.cancel.cancel();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

struct Player {
    socket: UdpSocket,
    rx: watch::Receiver<Target>,
    library: Library,
    track: usize,
    stats: Arc<MediaStats>,
    cancel: CancellationToken,
}

impl Player {
    async fn run(mut self) {
        let mut target = *self.rx.borrow_and_update();
        let mut stream = Stream::new(
            target.codec.payload_type(),
            rand::random(),
            rand::random(),
            rand::random(),
        );
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut out = [0u8; rtp::HEADER + FRAME];
        let mut inbuf = [0u8; 2048];
        let mut frame = 0usize;
        let mut latched = false;
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => break,
                _ = tick.tick() => {
                    match target.remote.filter(|_| target.send) {
                        Some(remote) => {
                            let payload = self.library.track(self.track).frame(target.codec, frame);
                            let n = stream.write(payload, FRAME as u32, &mut out);
                            if self.socket.send_to(&out[..n], remote).await.is_ok() {
                                self.stats.sent.fetch_add(1, Ordering::Relaxed);
                            }
                            frame += 1;
                        }
                        None => stream.skip(FRAME as u32),
                    }
                }
                r = self.socket.recv_from(&mut inbuf) => {
                    if let Ok((n, from)) = r {
                        if rtp::payload_type(&inbuf[..n]).is_some() {
                            self.stats.received.fetch_add(1, Ordering::Relaxed);
                            if !latched && target.remote.is_some() && target.remote != Some(from) {
                                debug!(%from, "RTP latched to the caller's source address");
                                target.remote = Some(from);
                            }
                            latched = true;
                        }
                    }
                }
                changed = self.rx.changed() => {
                    if changed.is_err() { break; }
                    let new = *self.rx.borrow_and_update();
                    if new.codec != target.codec {
                        stream.payload_type = new.codec.payload_type();
                    }
                    latched = latched && new.remote == target.remote;
                    target = new;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn streams_fifty_packets_a_second_and_pauses_on_hold() {
        let caller = UdpSocket::bind("127.0.0.1:0").await.expect("bind caller");
        let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind node");
        let local = sock.local_addr().expect("addr");
        let lib = Library::load(std::path::Path::new("/nonexistent-moh-dir"));
        let target = Target {
            remote: Some(caller.local_addr().expect("addr")),
            codec: Codec::Pcmu,
            send: true,
        };
        let s = Session::start(sock, local, target, lib, 0);
        tokio::time::sleep(Duration::from_millis(1010)).await;
        let sent = s.stats.sent.load(Ordering::Relaxed);
        assert!((50..=52).contains(&sent), "sent {sent} in 1 s");
        let mut buf = [0u8; 400];
        let (n, _) = caller.recv_from(&mut buf).await.expect("packet");
        assert_eq!(n, 172);
        assert_eq!(rtp::payload_type(&buf[..n]), Some(0));
        s.retarget(Target {
            send: false,
            ..target
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        let held = s.stats.sent.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            s.stats.sent.load(Ordering::Relaxed),
            held,
            "nothing is sent on hold"
        );
        s.stop();
    }
}
