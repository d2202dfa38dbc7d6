//! RTCP packets (RFC 3550 §6), the few a leg needs: it writes a compound packet of a sender
//! report (or a receiver report when it sent nothing of its own since the last one) and an SDES
//! CNAME, and reads the party's sender and receiver reports; other packet types (SDES, BYE,
//! APP, feedback) are stepped over.
//!
//! Written here rather than taken from a crate: the two report layouts are fixed, the crates
//! that have them (webrtc-rs `rtcp`) bring a runtime-support crate and an allocation per packet
//! read, and a decoder of our own is easy to hold to "never panics on any input" (fuzzed by the
//! table tests' truncations).

/// RTCP packet types.
pub const SR: u8 = 200;
pub const RR: u8 = 201;
pub const SDES: u8 = 202;
const SDES_CNAME: u8 = 1;

/// One report block: a receiver's view of one source (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock {
    pub ssrc: u32,
    /// Lost since the previous report, as a fraction of 256.
    pub fraction_lost: u8,
    /// Lost since the start (24-bit signed on the wire).
    pub cumulative_lost: i32,
    pub highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// The middle 32 bits of the NTP time of the last SR from the source (0: none yet).
    pub last_sr: u32,
    /// Since that SR, in 1/65536 s.
    pub delay_since_sr: u32,
}

/// The sender part of a sender report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    /// NTP time (seconds since 1900 in the high 32 bits, fraction in the low 32).
    pub ntp: u64,
    pub rtp_timestamp: u32,
    pub packets: u32,
    pub octets: u32,
}

/// A report read from, or to be written to, the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub ssrc: u32,
    /// `Some` for a sender report.
    pub sender: Option<SenderInfo>,
    pub blocks: Vec<ReportBlock>,
}

/// Why a datagram is not RTCP we can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    #[error("RTCP packet shorter than its header or its length field")]
    Truncated,
    #[error("RTCP version {0}, not 2")]
    Version(u8),
    #[error("RTCP report with {0} blocks does not fit its length")]
    Blocks(u8),
}

/// Reads the sender and receiver reports of a compound packet (others are skipped).
pub fn parse(datagram: &[u8]) -> Result<Vec<Report>, RtcpError> {
    let mut out = Vec::new();
    let mut rest = datagram;
    if rest.is_empty() {
        return Err(RtcpError::Truncated);
    }
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err(RtcpError::Truncated);
        }
        let version = rest[0] >> 6;
        if version != 2 {
            return Err(RtcpError::Version(version));
        }
        let count = rest[0] & 0x1f;
        let pt = rest[1];
        let len = 4 * (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1);
        let packet = rest.get(..len).ok_or(RtcpError::Truncated)?;
        rest = &rest[len..];
        match pt {
            SR => out.push(report(packet, count, true)?),
            RR => out.push(report(packet, count, false)?),
            _ => {}
        }
    }
    Ok(out)
}

fn word(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn report(packet: &[u8], count: u8, sender: bool) -> Result<Report, RtcpError> {
    let head = if sender { 28 } else { 8 };
    if packet.len() < head {
        return Err(RtcpError::Truncated);
    }
    if packet.len() < head + 24 * usize::from(count) {
        return Err(RtcpError::Blocks(count));
    }
    let sender = sender.then(|| SenderInfo {
        ntp: (u64::from(word(packet, 8)) << 32) | u64::from(word(packet, 12)),
        rtp_timestamp: word(packet, 16),
        packets: word(packet, 20),
        octets: word(packet, 24),
    });
    let blocks = (0..usize::from(count))
        .map(|i| {
            let b = &packet[head + 24 * i..head + 24 * (i + 1)];
            // 24-bit two's complement, sign-extended.
            let lost = (word(b, 4) << 8) as i32 >> 8;
            ReportBlock {
                ssrc: word(b, 0),
                fraction_lost: b[4],
                cumulative_lost: lost,
                highest_seq: word(b, 8),
                jitter: word(b, 12),
                last_sr: word(b, 16),
                delay_since_sr: word(b, 20),
            }
        })
        .collect();
    Ok(Report {
        ssrc: word(packet, 4),
        sender,
        blocks,
    })
}

/// Writes a compound packet: the report (SR when it has sender info, else RR; at most 31
/// blocks) and an SDES chunk with `cname`.
pub fn write(report: &Report, cname: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    let blocks = &report.blocks[..report.blocks.len().min(31)];
    let words = if report.sender.is_some() { 6 } else { 1 } + 6 * blocks.len();
    out.push(0x80 | blocks.len() as u8);
    out.push(if report.sender.is_some() { SR } else { RR });
    out.extend_from_slice(&(words as u16).to_be_bytes());
    out.extend_from_slice(&report.ssrc.to_be_bytes());
    if let Some(s) = report.sender {
        out.extend_from_slice(&s.ntp.to_be_bytes());
        out.extend_from_slice(&s.rtp_timestamp.to_be_bytes());
        out.extend_from_slice(&s.packets.to_be_bytes());
        out.extend_from_slice(&s.octets.to_be_bytes());
    }
    for b in blocks {
        out.extend_from_slice(&b.ssrc.to_be_bytes());
        let lost = (b.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32) & 0xff_ffff;
        out.extend_from_slice(&((u32::from(b.fraction_lost) << 24) | lost).to_be_bytes());
        out.extend_from_slice(&b.highest_seq.to_be_bytes());
        out.extend_from_slice(&b.jitter.to_be_bytes());
        out.extend_from_slice(&b.last_sr.to_be_bytes());
        out.extend_from_slice(&b.delay_since_sr.to_be_bytes());
    }
    // SDES: one chunk (SSRC, CNAME item, end item), padded to a 32-bit boundary.
    let cname = &cname.as_bytes()[..cname.len().min(255)];
    let start = out.len();
    out.extend_from_slice(&[0x81, SDES, 0, 0]);
    out.extend_from_slice(&report.ssrc.to_be_bytes());
    out.push(SDES_CNAME);
    out.push(cname.len() as u8);
    out.extend_from_slice(cname);
    out.push(0);
    while (out.len() - start) % 4 != 0 {
        out.push(0);
    }
    let words = ((out.len() - start) / 4 - 1) as u16;
    out[start + 2..start + 4].copy_from_slice(&words.to_be_bytes());
    out
}

/// Seconds between the NTP epoch (1900) and the UNIX epoch (1970).
const NTP_UNIX: u64 = 2_208_988_800;

/// A wall-clock time as an NTP timestamp.
pub fn ntp(since_unix: std::time::Duration) -> u64 {
    let secs = since_unix.as_secs() + NTP_UNIX;
    let frac = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// The middle 32 bits of an NTP timestamp (what LSR and round trips use).
pub fn middle(ntp: u64) -> u32 {
    ((ntp >> 16) & 0xffff_ffff) as u32
}

#[cfg(test)]
mod tests;
