//! RTP packets (RFC 3550): the fixed 12-byte header we write and the little we read.
//!
//! Hand-written rather than a crate: the header is 12 bytes, we only ever write one layout, and
//! this keeps the per-packet path free of allocation.

/// Size of the RTP fixed header with no CSRCs or extensions.
pub const HEADER: usize = 12;

/// State of one outgoing RTP stream.
#[derive(Debug, Clone)]
pub struct Stream {
    pub payload_type: u8,
    pub ssrc: u32,
    pub seq: u16,
    pub timestamp: u32,
    marker: bool,
}

impl Stream {
    pub fn new(payload_type: u8, ssrc: u32, seq: u16, timestamp: u32) -> Stream {
        Stream {
            payload_type,
            ssrc,
            seq,
            timestamp,
            marker: true,
        }
    }

    /// Writes the next packet carrying `payload` (one frame of `samples` samples) into `out`
    /// and returns its length.
    pub fn write(&mut self, payload: &[u8], samples: u32, out: &mut [u8]) -> usize {
        let len = HEADER + payload.len();
        out[0] = 0x80; // version 2, no padding, no extension, no CSRC
        out[1] = (u8::from(self.marker) << 7) | (self.payload_type & 0x7f);
        out[2..4].copy_from_slice(&self.seq.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        out[HEADER..len].copy_from_slice(payload);
        self.marker = false;
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(samples);
        len
    }

    /// Advances time without sending (on hold), so the timestamp stays continuous.
    pub fn skip(&mut self, samples: u32) {
        self.timestamp = self.timestamp.wrapping_add(samples);
        self.marker = true;
    }
}

/// The payload type of a received packet, if it looks like RTP version 2.
pub fn payload_type(packet: &[u8]) -> Option<u8> {
    (packet.len() >= HEADER && packet[0] >> 6 == 2).then(|| packet[1] & 0x7f)
}

/// The fields of a received RTP header the quality statistics read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub payload_type: u8,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

impl Header {
    /// Reads the fixed header of an RTP version 2 packet.
    pub fn parse(packet: &[u8]) -> Option<Header> {
        let payload_type = payload_type(packet)?;
        let word = |at: usize| {
            u32::from_be_bytes([packet[at], packet[at + 1], packet[at + 2], packet[at + 3]])
        };
        Some(Header {
            payload_type,
            seq: u16::from_be_bytes([packet[2], packet[3]]),
            timestamp: word(4),
            ssrc: word(8),
        })
    }
}

/// Whether a packet that came on the RTP port is RTCP (RFC 5761 §4: the second byte, an RTCP
/// packet type, is 192..=223, payload types no audio call uses once the marker bit is added).
pub fn is_rtcp(packet: &[u8]) -> bool {
    packet.len() >= 8 && packet[0] >> 6 == 2 && (192..=223).contains(&packet[1])
}

/// Where the payload of a received packet lies (after CSRCs and a header extension, before
/// padding), if the packet is RTP version 2 and its lengths hold together.
pub fn payload_range(packet: &[u8]) -> Option<std::ops::Range<usize>> {
    payload_type(packet)?;
    let csrcs = usize::from(packet[0] & 0x0f);
    let mut start = HEADER + 4 * csrcs;
    if packet[0] & 0x10 != 0 {
        let ext = packet.get(start + 2..start + 4)?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    let mut end = packet.len();
    if packet[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*packet.last()?))?;
    }
    (start <= end).then_some(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_and_sequence() {
        let mut s = Stream::new(8, 0x01020304, 65535, 100);
        let mut buf = [0u8; 200];
        let n = s.write(&[0xd5; 160], 160, &mut buf);
        assert_eq!(n, 172);
        assert_eq!(
            &buf[..12],
            &[0x80, 0x88, 0xff, 0xff, 0, 0, 0, 100, 1, 2, 3, 4]
        );
        let n = s.write(&[0xd5; 160], 160, &mut buf);
        assert_eq!(n, 172);
        assert_eq!(&buf[..8], &[0x80, 0x08, 0, 0, 0, 0, 1, 4]);
        assert_eq!(payload_type(&buf[..n]), Some(8));
        assert_eq!(payload_type(&[0x40; 12]), None);
        assert_eq!(payload_type(&[0x80; 3]), None);
        assert_eq!(
            Header::parse(&buf[..n]),
            Some(Header {
                payload_type: 8,
                seq: 0,
                timestamp: 260,
                ssrc: 0x01020304
            })
        );
        assert!(!is_rtcp(&buf[..n]));
        // A receiver report (PT 201) and a sender report (PT 200) on a muxed port.
        assert!(is_rtcp(&[0x81, 201, 0, 7, 1, 2, 3, 4]));
        assert!(is_rtcp(&[0x80, 200, 0, 6, 1, 2, 3, 4]));
        assert!(!is_rtcp(&[0x80, 200, 0, 6]));
    }

    #[test]
    fn payload_range_skips_csrcs_extensions_and_padding() {
        let mut plain = vec![0x80, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4];
        plain.extend_from_slice(&[7; 160]);
        assert_eq!(payload_range(&plain), Some(12..172));
        // One CSRC, a one-word extension, 2 bytes of padding.
        let mut p = vec![0xb1, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4, 9, 9, 9, 9];
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 5, 5, 5, 5]);
        p.extend_from_slice(&[7; 160]);
        p.extend_from_slice(&[0, 2]);
        assert_eq!(payload_range(&p), Some(24..184));
        // Lengths that do not hold together.
        assert_eq!(
            payload_range(&[0x90, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4, 0]),
            None
        );
        assert_eq!(
            payload_range(&[0xa0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 40]),
            None
        );
    }
}
