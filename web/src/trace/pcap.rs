//! A call's trace as a pcap file (the classic libpcap format, microsecond timestamps,
//! Ethernet link type) that Wireshark, tshark and sngrep open: each SIP message in a
//! synthesized Ethernet + IPv4/IPv6 + UDP (or TCP, for TCP and TLS) frame between the
//! addresses it travelled between. TCP segments carry a sequence number per direction so
//! that dissectors follow each stream; TLS messages are shown as the node read and wrote them
//! (decrypted). Checksums are computed.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use callfleet_vocab::{TraceTransport, TracedMessage};

/// Link type 1: Ethernet.
const LINKTYPE_ETHERNET: u32 = 1;
const SNAPLEN: u32 = 65_535;
/// Most payload put in one frame (an IP packet's length is 16 bits); a longer message is cut.
const MAX_PAYLOAD: usize = 65_000;

/// The pcap file of `messages`.
pub fn write(messages: &[TracedMessage]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(24 + messages.iter().map(|m| m.text.len() + 96).sum::<usize>());
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&SNAPLEN.to_le_bytes());
    out.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    let mut seqs: HashMap<(SocketAddr, SocketAddr), u32> = HashMap::new();
    for m in messages {
        let payload = m.text.as_bytes();
        let payload = payload.get(..MAX_PAYLOAD).unwrap_or(payload);
        let (src, dst) = same_family(m.src, m.dst);
        let frame = match m.transport {
            TraceTransport::Udp => frame(src, dst, &udp(src, dst, payload), 17),
            TraceTransport::Tcp | TraceTransport::Tls => {
                let ack = seqs.get(&(dst, src)).copied().unwrap_or(1);
                let seq = seqs.entry((src, dst)).or_insert(1);
                let seg = tcp(src, dst, *seq, ack, payload);
                *seq = seq.wrapping_add(payload.len() as u32);
                frame(src, dst, &seg, 6)
            }
        };
        let secs = u32::try_from(m.at_us.div_euclid(1_000_000)).unwrap_or(0);
        let micros = u32::try_from(m.at_us.rem_euclid(1_000_000)).unwrap_or(0);
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&secs.to_le_bytes());
        out.extend_from_slice(&micros.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&frame);
    }
    out
}

/// Ethernet + IP around a transport segment.
fn frame(src: SocketAddr, dst: SocketAddr, segment: &[u8], proto: u8) -> Vec<u8> {
    let mut f = Vec::with_capacity(segment.len() + 54);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            f.extend_from_slice(&0x0800u16.to_be_bytes());
            let total = u16::try_from(20 + segment.len()).unwrap_or(u16::MAX);
            let mut h = [0u8; 20];
            h[0] = 0x45;
            h[2..4].copy_from_slice(&total.to_be_bytes());
            h[6] = 0x40; // don't fragment
            h[8] = 64;
            h[9] = proto;
            h[12..16].copy_from_slice(&s.octets());
            h[16..20].copy_from_slice(&d.octets());
            let sum = checksum(&[&h]);
            h[10..12].copy_from_slice(&sum.to_be_bytes());
            f.extend_from_slice(&h);
        }
        (s, d) => {
            f.extend_from_slice(&0x86DDu16.to_be_bytes());
            let len = u16::try_from(segment.len()).unwrap_or(u16::MAX);
            f.extend_from_slice(&[0x60, 0, 0, 0]);
            f.extend_from_slice(&len.to_be_bytes());
            f.push(proto);
            f.push(64);
            f.extend_from_slice(&v6(s));
            f.extend_from_slice(&v6(d));
        }
    }
    f.extend_from_slice(segment);
    f
}

fn udp(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + payload.len()).unwrap_or(u16::MAX);
    let mut s = Vec::with_capacity(payload.len() + 8);
    s.extend_from_slice(&src.port().to_be_bytes());
    s.extend_from_slice(&dst.port().to_be_bytes());
    s.extend_from_slice(&len.to_be_bytes());
    s.extend_from_slice(&[0, 0]);
    s.extend_from_slice(payload);
    let sum = match checksum(&[&pseudo(src, dst, 17, s.len()), &s]) {
        0 => 0xffff,
        x => x,
    };
    s[6..8].copy_from_slice(&sum.to_be_bytes());
    s
}

fn tcp(src: SocketAddr, dst: SocketAddr, seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(payload.len() + 20);
    s.extend_from_slice(&src.port().to_be_bytes());
    s.extend_from_slice(&dst.port().to_be_bytes());
    s.extend_from_slice(&seq.to_be_bytes());
    s.extend_from_slice(&ack.to_be_bytes());
    s.push(5 << 4);
    s.push(0x18); // PSH, ACK
    s.extend_from_slice(&65_535u16.to_be_bytes());
    s.extend_from_slice(&[0, 0, 0, 0]);
    s.extend_from_slice(payload);
    let sum = checksum(&[&pseudo(src, dst, 6, s.len()), &s]);
    s[16..18].copy_from_slice(&sum.to_be_bytes());
    s
}

/// The pseudo-header the UDP and TCP checksums cover.
fn pseudo(src: SocketAddr, dst: SocketAddr, proto: u8, len: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(40);
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.push(0);
            p.push(proto);
            p.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
        }
        (s, d) => {
            p.extend_from_slice(&v6(s));
            p.extend_from_slice(&v6(d));
            p.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, proto]);
        }
    }
    p
}

/// The Internet checksum (RFC 1071) of the parts, read as one run of bytes.
fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for part in parts {
        for &b in *part {
            match odd.take() {
                Some(hi) => sum += u32::from(u16::from_be_bytes([hi, b])),
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(u16::from_be_bytes([hi, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn same_family(src: SocketAddr, dst: SocketAddr) -> (SocketAddr, SocketAddr) {
    let mapped = |a: SocketAddr| {
        SocketAddr::new(
            IpAddr::V6(match a.ip() {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            }),
            a.port(),
        )
    };
    if src.is_ipv4() == dst.is_ipv4() {
        (src, dst)
    } else {
        (mapped(src), mapped(dst))
    }
}

fn v6(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(src: &str, dst: &str, transport: TraceTransport, text: &str) -> TracedMessage {
        TracedMessage {
            at_us: 1_700_000_000_250_000,
            transport,
            src: src.parse().expect("src"),
            dst: dst.parse().expect("dst"),
            text: text.into(),
        }
    }

    #[test]
    fn checksums_follow_rfc_1071() {
        // The example of RFC 1071 §3: 0001 f203 f4f5 f6f7 sums to ddf2, complement 220d.
        assert_eq!(
            checksum(&[&[0x00, 0x01, 0xf2, 0x03], &[0xf4, 0xf5, 0xf6, 0xf7]]),
            0x220d
        );
        // A header with its checksum in place sums to zero.
        let f = frame(
            "10.0.0.1:5060".parse().expect("a"),
            "10.0.0.2:5062".parse().expect("b"),
            b"x",
            17,
        );
        assert_eq!(checksum(&[&f[14..34]]), 0);
    }

    #[test]
    fn a_udp_message_is_one_record_with_its_addresses_ports_and_time() {
        let m = msg(
            "10.0.0.1:5060",
            "10.0.0.2:5062",
            TraceTransport::Udp,
            "BYE sip:a SIP/2.0\r\n\r\n",
        );
        let p = write(std::slice::from_ref(&m));
        assert_eq!(&p[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(u32::from_le_bytes(p[20..24].try_into().expect("4")), 1);
        let rec = &p[24..];
        assert_eq!(
            u32::from_le_bytes(rec[..4].try_into().expect("4")),
            1_700_000_000
        );
        assert_eq!(
            u32::from_le_bytes(rec[4..8].try_into().expect("4")),
            250_000
        );
        let len = u32::from_le_bytes(rec[8..12].try_into().expect("4")) as usize;
        let frame = &rec[16..];
        assert_eq!(frame.len(), len);
        assert_eq!(len, 14 + 20 + 8 + m.text.len());
        assert_eq!(&frame[26..30], &[10, 0, 0, 1]);
        assert_eq!(&frame[30..34], &[10, 0, 0, 2]);
        assert_eq!(u16::from_be_bytes([frame[34], frame[35]]), 5060);
        assert_eq!(u16::from_be_bytes([frame[36], frame[37]]), 5062);
        assert_eq!(&frame[42..], m.text.as_bytes());
        // The UDP checksum over the pseudo-header and segment comes to zero.
        let seg = &frame[34..];
        let ph = pseudo(m.src, m.dst, 17, seg.len());
        assert_eq!(checksum(&[&ph, seg]), 0);
    }

    #[test]
    fn tcp_segments_number_each_direction_and_ipv6_frames_are_written() {
        let a = "[2001:db8::1]:5060";
        let b = "[2001:db8::2]:5061";
        let ms = [
            msg(a, b, TraceTransport::Tls, "INVITE x SIP/2.0\r\n\r\n"),
            msg(b, a, TraceTransport::Tls, "SIP/2.0 200 OK\r\n\r\n"),
            msg(a, b, TraceTransport::Tls, "ACK x SIP/2.0\r\n\r\n"),
        ];
        let p = write(&ms);
        let mut at = 24;
        let mut seqs = Vec::new();
        for m in &ms {
            let len = u32::from_le_bytes(p[at + 8..at + 12].try_into().expect("4")) as usize;
            let frame = &p[at + 16..at + 16 + len];
            assert_eq!(u16::from_be_bytes([frame[12], frame[13]]), 0x86DD);
            assert_eq!(frame[20], 6, "next header TCP");
            let seg = &frame[54..];
            seqs.push(u32::from_be_bytes(seg[4..8].try_into().expect("4")));
            assert_eq!(&seg[20..], m.text.as_bytes());
            let (s, d) = (m.src, m.dst);
            assert_eq!(checksum(&[&pseudo(s, d, 6, seg.len()), seg]), 0);
            at += 16 + len;
        }
        assert_eq!(at, p.len());
        assert_eq!(seqs, [1, 1, 1 + ms[0].text.len() as u32]);
    }
}
