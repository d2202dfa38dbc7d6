//! DTMF received as RFC 4733 telephone-events: one digit per event, reported once when the
//! event's end packet arrives (end packets are sent three times; the RTP timestamp tells one
//! event from the next).

use super::rtp;

/// Turns telephone-event packets into digits.
#[derive(Debug, Default)]
pub struct DtmfDetector {
    last_reported: Option<u32>,
}

impl DtmfDetector {
    /// Feeds one RTP packet carrying telephone-event; returns the digit when an event ends.
    pub fn packet(&mut self, packet: &[u8]) -> Option<char> {
        if packet.len() < rtp::HEADER + 4 {
            return None;
        }
        let ts = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        let event = packet[rtp::HEADER];
        let end = packet[rtp::HEADER + 1] & 0x80 != 0;
        if !end || self.last_reported == Some(ts) {
            return None;
        }
        self.last_reported = Some(ts);
        digit(event)
    }
}

/// The character of an RFC 4733 DTMF event code.
pub fn digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some((b'0' + event) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + event - 12) as char),
        _ => None,
    }
}

/// Builds a telephone-event packet (for tests and for sending DTMF).
pub fn event_packet(pt: u8, seq: u16, ts: u32, event: u8, end: bool, duration: u16) -> Vec<u8> {
    let mut p = vec![0x80, pt & 0x7f];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    p.push(event);
    p.push(if end { 0x80 | 10 } else { 10 });
    p.extend_from_slice(&duration.to_be_bytes());
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_digit_per_event_on_its_end() {
        let mut d = DtmfDetector::default();
        let mut got = vec![];
        // "*1": start packets, then the end packet three times, per event.
        for (ts, ev) in [(1000u32, 10u8), (3000, 1)] {
            for (i, end) in [false, false, true, true, true].into_iter().enumerate() {
                if let Some(c) = d.packet(&event_packet(101, i as u16, ts, ev, end, 160 * i as u16))
                {
                    got.push(c);
                }
            }
        }
        assert_eq!(got, vec!['*', '1']);
        assert_eq!(
            d.packet(&[0x80, 101, 0, 0]),
            None,
            "short packets are ignored"
        );
        assert_eq!(digit(11), Some('#'));
        assert_eq!(digit(15), Some('D'));
        assert_eq!(digit(16), None);
    }
}
