//! An RTP party for tests: sends a tone as PCMU from its socket every 20 ms and keeps every
//! frame it receives, until stopped (a minute at most, whatever the test does).

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::audio::{decode_pcmu, pcmu_tone};

pub struct Pump {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<Vec<i16>>>>,
}

impl Pump {
    /// Sends `freq` Hz to `to`; with `None`, to wherever the packets it receives come from
    /// (a media gateway that answers the node's stream), once one came.
    pub fn start(sock: UdpSocket, to: Option<SocketAddr>, freq: f32) -> Pump {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let tone = pcmu_tone(freq, 50);
            sock.set_read_timeout(Some(Duration::from_millis(2))).ok();
            let (mut heard, mut buf, mut to, start) = (vec![], [0u8; 2048], to, Instant::now());
            for i in 0..3000usize {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                while let Ok((n, from)) = sock.recv_from(&mut buf) {
                    if n > 12 && buf[1] & 0x7f == 0 {
                        to.get_or_insert(from);
                        heard.push(decode_pcmu(&buf[12..n]));
                    }
                }
                if let Some(to) = to {
                    let mut pkt = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0x0a, 0x9e, 0x07, 0x01];
                    pkt[2..4].copy_from_slice(&(i as u16).to_be_bytes());
                    pkt[4..8].copy_from_slice(&((i * 160) as u32).to_be_bytes());
                    pkt.extend_from_slice(&tone[i % tone.len()]);
                    sock.send_to(&pkt, to).ok();
                }
                let next = start + Duration::from_millis(20 * (i as u64 + 1));
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            heard
        });
        Pump {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the pump; the frames it received.
    pub fn stop(mut self) -> Vec<Vec<i16>> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}
