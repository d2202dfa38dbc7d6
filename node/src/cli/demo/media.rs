//! RTP for the demo's simulated parties: every 20 ms a G.711 frame of the party's voice (a tone
//! in talk spurts, so a supervisor listening in hears who speaks), and what comes back counted
//! and, for the parties that listen, measured tone by tone (Goertzel), so the demo can say
//! whose voice a listener heard.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use audio_codec::{create_decoder, create_encoder, CodecType};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::media::rtp;
use crate::media::sdp::Codec;

/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME: usize = 160;

/// A party's voice: a tone of `freq` Hz spoken in spurts of `on_ms`, with `off_ms` pauses, the
/// cycle shifted by `offset_ms` so two parties take turns. `freq` 0 is silence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Voice {
    pub freq: f32,
    pub on_ms: u32,
    pub off_ms: u32,
    pub offset_ms: u32,
}

impl Voice {
    /// Sends silence (a listener's phone).
    pub const SILENT: Voice = Voice {
        freq: 0.0,
        on_ms: 0,
        off_ms: 1000,
        offset_ms: 0,
    };

    /// The samples of 20 ms frame number `n` since the call started.
    pub fn frame(&self, n: u64) -> [i16; FRAME] {
        let mut out = [0i16; FRAME];
        let cycle = u64::from(self.on_ms) + u64::from(self.off_ms);
        if self.freq <= 0.0 || self.on_ms == 0 || cycle == 0 {
            return out;
        }
        let ms = (n * 20 + u64::from(self.offset_ms)) % cycle;
        if ms >= u64::from(self.on_ms) {
            return out;
        }
        for (i, s) in out.iter_mut().enumerate() {
            let t = (n * FRAME as u64 + i as u64) as f64 / 8000.0;
            let v = (2.0 * std::f64::consts::PI * f64::from(self.freq) * t).sin() * 6000.0;
            *s = v as i16;
        }
        out
    }
}

/// Relative power of `freq` in `samples` (8 kHz): Goertzel power over total energy, 0..~1.
pub fn tone_share(samples: &[i16], freq: f32) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let k = 2.0 * (2.0 * std::f64::consts::PI * f64::from(freq) / 8000.0).cos();
    let (mut s1, mut s2, mut energy) = (0.0f64, 0.0f64, 0.0f64);
    for &x in samples {
        let x = f64::from(x);
        let s = x + k * s1 - s2;
        s2 = s1;
        s1 = s;
        energy += x * x;
    }
    if energy == 0.0 {
        return 0.0;
    }
    let power = s1 * s1 + s2 * s2 - k * s1 * s2;
    2.0 * power / (energy * samples.len() as f64)
}

/// What a leg received: packets, and for each tone listened for, the frames it stood out in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Heard {
    pub packets: u64,
    /// `(freq, frames)`: frames in which `freq` carried at least a fifth of the power.
    pub tones: Vec<(f32, u64)>,
}

impl Heard {
    /// Nothing heard yet; the tones in `listen` will be measured.
    pub fn new(listen: &[f32]) -> Heard {
        Heard {
            packets: 0,
            tones: listen.iter().map(|&f| (f, 0)).collect(),
        }
    }

    /// Counts one decoded frame.
    pub fn add(&mut self, samples: &[i16]) {
        self.packets += 1;
        for (freq, frames) in &mut self.tones {
            if tone_share(samples, *freq) >= 0.2 {
                *frames += 1;
            }
        }
    }

    /// Frames in which `freq` was heard.
    pub fn frames(&self, freq: f32) -> u64 {
        self.tones
            .iter()
            .find(|(f, _)| *f == freq)
            .map_or(0, |(_, n)| *n)
    }
}

fn codec_type(codec: Codec) -> CodecType {
    match codec {
        Codec::Pcmu => CodecType::PCMU,
        Codec::Pcma => CodecType::PCMA,
    }
}

/// One RTP leg: the socket, where to send, the codec and the voice.
pub struct Leg {
    pub socket: UdpSocket,
    pub remote: Option<SocketAddr>,
    pub codec: Codec,
    pub voice: Voice,
}

/// Sends the voice every 20 ms and counts what arrives into `heard` until `stop` (or `limit`,
/// whichever comes first).
pub async fn run(leg: Leg, heard: Arc<Mutex<Heard>>, limit: Duration, stop: CancellationToken) {
    let mut encoder = create_encoder(codec_type(leg.codec));
    let mut decoder = create_decoder(codec_type(leg.codec));
    let mut stream = rtp::Stream::new(
        leg.codec.payload_type(),
        rand::random(),
        rand::random(),
        rand::random(),
    );
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    let mut out = [0u8; rtp::HEADER + FRAME];
    let mut buf = [0u8; 2048];
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = &mut deadline => break,
            _ = tick.tick() => {
                if let Some(remote) = leg.remote {
                    let payload = encoder.encode(&leg.voice.frame(n));
                    let len = stream.write(&payload, FRAME as u32, &mut out);
                    if let Some(packet) = out.get(..len) {
                        // A lost datagram is a lost 20 ms of tone: nothing to do about it.
                        let _ = leg.socket.send_to(packet, remote).await;
                    }
                }
                n += 1;
            }
            got = leg.socket.recv_from(&mut buf) => {
                let Ok((len, _)) = got else { continue };
                let packet = buf.get(..len).unwrap_or_default();
                if rtp::payload_type(packet) != Some(leg.codec.payload_type()) {
                    continue;
                }
                if let Some(payload) = rtp::payload_range(packet).and_then(|r| packet.get(r)) {
                    let samples = decoder.decode(payload);
                    heard.lock().unwrap_or_else(|p| p.into_inner()).add(&samples);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
