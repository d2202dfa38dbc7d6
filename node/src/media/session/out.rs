//! A leg's sender-side state: its RTP stream, where it stands in its mode's audio, its buffers
//! and the counts its sender reports give.

use super::{Target, MAX_PAYLOAD};
use crate::media::clock::Listener;
use crate::media::moh::FRAME;
use crate::media::rtp::{self, Stream};

/// Per-task state of the sender side.
pub(super) struct Out {
    pub(super) stream: Stream,
    pub(super) moh_frame: usize,
    pub(super) play_frame: usize,
    pub(super) buf: [u8; rtp::HEADER + MAX_PAYLOAD],
    /// The frame a listening supervisor hears next.
    pub(super) mixed: [u8; FRAME],
    /// Our own packets and payload octets sent (for sender reports), and the packet count at
    /// the last report.
    pub(super) own_packets: u64,
    pub(super) own_octets: u64,
    pub(super) reported_packets: u64,
    /// Audio taken from the mode's frames and not yet sent (packets need not be whole frames);
    /// allocated when the leg first sends, never for a leg that only relays.
    pub(super) pending: Vec<u8>,
    /// Up to when the stream's RTP timestamp counts (the time of the packets sent or skipped).
    pub(super) stamped: tokio::time::Instant,
}

impl Out {
    pub(super) fn new(target: &Target) -> Out {
        Out {
            stream: Stream::new(
                target.codec.payload_type(),
                rand::random(),
                rand::random(),
                rand::random(),
            ),
            moh_frame: 0,
            play_frame: 0,
            buf: [0u8; rtp::HEADER + MAX_PAYLOAD],
            mixed: [0u8; FRAME],
            own_packets: 0,
            own_octets: 0,
            reported_packets: 0,
            pending: Vec::new(),
            stamped: tokio::time::Instant::now(),
        }
    }

    /// The stream as the music track's clock left it (or holds it now).
    pub(super) fn take_back(&mut self, l: Listener) {
        self.stream = l.stream;
        self.stamped = l.stamped;
        self.own_packets = l.packets;
        self.own_octets = l.octets;
    }
}
