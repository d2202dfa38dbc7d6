//! Listening in on a bridged call. Both legs of a bridge publish what their party sends to the
//! call's [`Tap`] (a bounded broadcast: a slow listener misses frames, it never holds up the
//! bridge); a supervisor's leg plays a [`Mix`] of the two sides, decoded, summed with
//! saturation and encoded again per 20 ms frame. In whisper mode the supervisor's audio is
//! also mixed into what the agent's leg relays to the agent, through the agent leg's
//! [`Fifo`]; the caller's leg never carries it. In barge mode it is mixed into both legs
//! (a three-way call): each leg mixes it into what it relays to its own party, so neither
//! party hears itself.
//!
//! Nothing here awaits: the std mutexes below are held for a few hundred samples' worth of
//! arithmetic, never across an `.await`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use audio_codec::pcma::{PcmaDecoder, PcmaEncoder};
use audio_codec::pcmu::{PcmuDecoder, PcmuEncoder};
use audio_codec::{Decoder, Encoder};
use tokio::sync::broadcast;

use super::moh::FRAME;
use super::sdp::Codec;
use super::session::Leg;

/// Largest payload a tap carries: 60 ms of G.711. Larger packets are not published.
pub const MAX_PAYLOAD: usize = 480;
/// Frames a listener may fall behind before it loses the oldest (640 ms of both sides at
/// 20 ms packets): room for a recorder that drains it every 250 ms (`media::stereo`).
pub(crate) const TAP_DEPTH: usize = 64;
/// Samples buffered per source before the oldest are dropped (200 ms): bounds the delay a
/// jittery source can build up.
const FIFO_MAX: usize = 1600;
/// Samples a source must have buffered before it is played (40 ms), again after it ran dry.
const FIFO_PRIME: usize = 320;

/// Which party of the bridge a frame comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Caller,
    Agent,
}

/// One received audio payload, copied (no allocation per packet).
#[derive(Clone, Copy)]
pub struct TapFrame {
    side: Side,
    pt: u8,
    len: u16,
    data: [u8; MAX_PAYLOAD],
}

/// A bridged call's audio for whoever listens; cheap to clone.
#[derive(Clone)]
pub struct Tap {
    inner: Arc<TapInner>,
}

struct TapInner {
    tx: broadcast::Sender<TapFrame>,
    /// Listeners alive; frames are copied only while one is.
    listeners: AtomicUsize,
}

impl Default for Tap {
    fn default() -> Self {
        Tap::new()
    }
}

impl Tap {
    pub fn new() -> Tap {
        let (tx, _) = broadcast::channel(TAP_DEPTH);
        Tap {
            inner: Arc::new(TapInner {
                tx,
                listeners: AtomicUsize::new(0),
            }),
        }
    }

    /// Publishes one received G.711 payload; never blocks, and costs one atomic load while
    /// nobody listens.
    pub fn publish(&self, side: Side, pt: u8, payload: &[u8]) {
        if self.inner.listeners.load(Ordering::Relaxed) == 0
            || payload.len() > MAX_PAYLOAD
            || !matches!(pt, 0 | 8)
        {
            return;
        }
        let mut frame = TapFrame {
            side,
            pt,
            len: payload.len() as u16,
            data: [0u8; MAX_PAYLOAD],
        };
        frame.data[..payload.len()].copy_from_slice(payload);
        // An error only means every listener left since the check above.
        let _ = self.inner.tx.send(frame);
    }

    /// The raw frames of both sides, for a recorder; counts as a listener while it lives.
    pub fn subscribe(&self) -> Subscription {
        self.inner.listeners.fetch_add(1, Ordering::Relaxed);
        Subscription {
            rx: self.inner.tx.subscribe(),
            tap: self.inner.clone(),
        }
    }

    /// Listeners right now.
    pub fn listeners(&self) -> usize {
        self.inner.listeners.load(Ordering::Relaxed)
    }

    /// A mix of both sides for one supervisor; what the supervisor says is mixed into what
    /// each leg of `speak_to` relays to its party (none: listen; the agent's: whisper; both:
    /// barge). The legs' whispers must have been started by the caller of this.
    pub fn mix(&self, speak_to: Vec<Arc<Leg>>) -> Mix {
        self.inner.listeners.fetch_add(1, Ordering::Relaxed);
        Mix {
            state: Mutex::new(MixState {
                rx: self.inner.tx.subscribe(),
                caller: Fifo::default(),
                agent: Fifo::default(),
            }),
            speak_to,
            tap: self.inner.clone(),
            dropped: AtomicU64::new(0),
        }
    }
}

impl TapFrame {
    pub fn side(&self) -> Side {
        self.side
    }

    pub fn pt(&self) -> u8 {
        self.pt
    }

    pub fn payload(&self) -> &[u8] {
        &self.data[..usize::from(self.len)]
    }
}

/// Both sides' frames as published (see [`Tap::subscribe`]).
pub struct Subscription {
    pub rx: broadcast::Receiver<TapFrame>,
    tap: Arc<TapInner>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.tap.listeners.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a supervisor's leg plays: the caller and the agent, mixed per 20 ms frame.
pub struct Mix {
    state: Mutex<MixState>,
    /// The legs whose parties hear the supervisor.
    speak_to: Vec<Arc<Leg>>,
    tap: Arc<TapInner>,
    /// Frames lost because this listener fell behind.
    pub dropped: AtomicU64,
}

struct MixState {
    rx: broadcast::Receiver<TapFrame>,
    caller: Fifo,
    agent: Fifo,
}

impl Drop for Mix {
    fn drop(&mut self) {
        self.tap.listeners.fetch_sub(1, Ordering::Relaxed);
        for leg in &self.speak_to {
            leg.stop_whisper();
        }
    }
}

impl Mix {
    /// Whether the supervisor is heard by anyone on the call.
    pub fn whispers(&self) -> bool {
        !self.speak_to.is_empty()
    }

    /// Encodes the next 20 ms frame of the mix in `codec` into `out`; returns its length.
    /// A side with nothing buffered contributes silence.
    pub fn next_frame(&self, codec: Codec, out: &mut [u8; FRAME]) -> usize {
        let mut pcm = [0i16; FRAME];
        {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                match st.rx.try_recv() {
                    Ok(f) => {
                        let fifo = match f.side {
                            Side::Caller => &mut st.caller,
                            Side::Agent => &mut st.agent,
                        };
                        fifo.push(f.pt, &f.data[..usize::from(f.len)]);
                    }
                    Err(broadcast::error::TryRecvError::Lagged(n)) => {
                        self.dropped.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(_) => break,
                }
            }
            st.caller.add_into(&mut pcm);
            st.agent.add_into(&mut pcm);
        }
        encode(codec, &pcm, out)
    }

    /// A payload the supervisor sent: passed on to the legs the supervisor speaks to.
    pub fn heard(&self, pt: u8, payload: &[u8]) {
        for leg in &self.speak_to {
            leg.whisper(pt, payload);
        }
    }
}

/// Decoded samples of one source waiting to be mixed: bounded (oldest dropped) and primed
/// (played only once a little is buffered, so jitter does not chop every frame).
#[derive(Debug)]
pub struct Fifo {
    samples: VecDeque<i16>,
    primed: bool,
    /// Samples kept at most.
    max: usize,
}

impl Default for Fifo {
    /// A mix's: at most `FIFO_MAX` (200 ms) buffered.
    fn default() -> Self {
        Fifo::with_max(FIFO_MAX)
    }
}

impl Fifo {
    /// A FIFO that keeps at most `max` samples (at least `FIFO_PRIME`, 40 ms).
    pub fn with_max(max: usize) -> Fifo {
        Fifo {
            samples: VecDeque::new(),
            primed: false,
            max: max.max(FIFO_PRIME),
        }
    }

    /// Decodes a G.711 payload (PT 0 or 8) onto the end; other payload types are ignored.
    pub fn push(&mut self, pt: u8, payload: &[u8]) {
        let mut pcm = [0i16; MAX_PAYLOAD];
        let take = payload.len().min(MAX_PAYLOAD);
        let n = decode(pt, &payload[..take], &mut pcm);
        self.samples.extend(&pcm[..n]);
        if self.samples.len() > self.max {
            let extra = self.samples.len() - self.max;
            self.samples.drain(..extra);
        }
    }

    /// Adds (with saturation) the next `out.len()` samples into `out`; silence while the
    /// source is not primed.
    pub fn add_into(&mut self, out: &mut [i16]) {
        if !self.primed {
            if self.samples.len() < FIFO_PRIME {
                return;
            }
            self.primed = true;
        }
        let n = out.len().min(self.samples.len());
        // Slice by slice (the deque's two halves), then the taken samples dropped at once:
        // draining sample by sample cost about 20 instructions a sample.
        let (front, back) = self.samples.as_slices();
        let (out_front, out_back) = out[..n].split_at_mut(n.min(front.len()));
        saturating_add_into(out_front, front);
        saturating_add_into(out_back, back);
        self.samples.drain(..n);
        if self.samples.is_empty() {
            self.primed = false;
        }
    }

    /// Whether the next [`Fifo::add_into`] adds anything.
    pub fn ready(&self) -> bool {
        self.primed || self.samples.len() >= FIFO_PRIME
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

/// Adds `from` into `out` with saturation, as far as the shorter goes.
fn saturating_add_into(out: &mut [i16], from: &[i16]) {
    for (o, s) in out.iter_mut().zip(from) {
        *o = o.saturating_add(*s);
    }
}

/// Mixes `fifo` into the G.711 `payload` of payload type `pt` in place; false (payload left
/// as it was) for other payload types.
pub fn mix_into_payload(fifo: &mut Fifo, pt: u8, payload: &mut [u8]) -> bool {
    let codec = match pt {
        0 => Codec::Pcmu,
        8 => Codec::Pcma,
        _ => return false,
    };
    let mut pcm = [0i16; MAX_PAYLOAD];
    let n = decode(pt, &payload[..payload.len().min(MAX_PAYLOAD)], &mut pcm);
    if n != payload.len() {
        return false;
    }
    fifo.add_into(&mut pcm[..n]);
    encode(codec, &pcm[..n], payload) == n
}

/// Decodes G.711 (PT 0 or 8) into `out`; 0 samples for anything else.
pub fn decode(pt: u8, data: &[u8], out: &mut [i16]) -> usize {
    let r = match pt {
        0 => PcmuDecoder::new().decode_into(data, out),
        8 => PcmaDecoder::new().decode_into(data, out),
        _ => return 0,
    };
    r.unwrap_or(0)
}

/// Encodes samples in `codec` into `out`; returns the bytes written.
pub fn encode(codec: Codec, samples: &[i16], out: &mut [u8]) -> usize {
    let r = match codec {
        Codec::Pcmu => PcmuEncoder::new().encode_into(samples, out),
        Codec::Pcma => PcmaEncoder::new().encode_into(samples, out),
    };
    r.unwrap_or(0)
}

#[cfg(test)]
pub(crate) mod tests;
