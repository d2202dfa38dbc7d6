//! HEPv3 (the Homer encapsulation protocol, version 3): one SIP message in one packet, the form
//! Homer and sngrep read. A packet is `HEP3`, its total length, then chunks, each a vendor id
//! (0: generic), a type, its own length (with its 6-byte head) and its value, in network byte
//! order.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use callfleet_vocab::{TraceTransport, TracedMessage};

/// Chunk types of the HEP3 specification used here.
mod chunk {
    pub const FAMILY: u16 = 1;
    pub const PROTOCOL: u16 = 2;
    pub const SRC_V4: u16 = 3;
    pub const DST_V4: u16 = 4;
    pub const SRC_V6: u16 = 5;
    pub const DST_V6: u16 = 6;
    pub const SRC_PORT: u16 = 7;
    pub const DST_PORT: u16 = 8;
    pub const SECONDS: u16 = 9;
    pub const MICROS: u16 = 10;
    pub const PROTO_TYPE: u16 = 11;
    pub const AGENT_ID: u16 = 12;
    pub const PAYLOAD: u16 = 15;
    pub const CORRELATION: u16 = 17;
}

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
/// Protocol type 1: SIP.
const SIP: u8 = 1;

/// The HEP3 packet of `m`, with the call's Call-ID as correlation id; `None` when it would
/// not fit in one (a packet's length is 16 bits).
pub fn encode(m: &TracedMessage, agent_id: u32, correlation: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(m.text.len() + 128);
    out.extend_from_slice(b"HEP3");
    out.extend_from_slice(&[0, 0]);
    let (src, dst) = same_family(m.src, m.dst);
    let protocol = match m.transport {
        TraceTransport::Udp => IPPROTO_UDP,
        TraceTransport::Tcp | TraceTransport::Tls => IPPROTO_TCP,
    };
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            put(&mut out, chunk::FAMILY, &[AF_INET]);
            put(&mut out, chunk::PROTOCOL, &[protocol]);
            put(&mut out, chunk::SRC_V4, &s.octets());
            put(&mut out, chunk::DST_V4, &d.octets());
        }
        (s, d) => {
            put(&mut out, chunk::FAMILY, &[AF_INET6]);
            put(&mut out, chunk::PROTOCOL, &[protocol]);
            put(&mut out, chunk::SRC_V6, &v6(s).octets());
            put(&mut out, chunk::DST_V6, &v6(d).octets());
        }
    }
    put(&mut out, chunk::SRC_PORT, &src.port().to_be_bytes());
    put(&mut out, chunk::DST_PORT, &dst.port().to_be_bytes());
    let secs = u32::try_from(m.at_us.div_euclid(1_000_000)).unwrap_or(0);
    let micros = u32::try_from(m.at_us.rem_euclid(1_000_000)).unwrap_or(0);
    put(&mut out, chunk::SECONDS, &secs.to_be_bytes());
    put(&mut out, chunk::MICROS, &micros.to_be_bytes());
    put(&mut out, chunk::PROTO_TYPE, &[SIP]);
    put(&mut out, chunk::AGENT_ID, &agent_id.to_be_bytes());
    put(&mut out, chunk::CORRELATION, correlation.as_bytes());
    put(&mut out, chunk::PAYLOAD, m.text.as_bytes());
    // The packet's length is 16 bits, and so every chunk's within it.
    let total = u16::try_from(out.len()).ok()?;
    out[4..6].copy_from_slice(&total.to_be_bytes());
    Some(out)
}

fn put(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = u16::try_from(value.len() + 6).unwrap_or(u16::MAX);
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
}

/// Both addresses in one family (an IPv4 one mapped into IPv6 when the other is IPv6).
fn same_family(src: SocketAddr, dst: SocketAddr) -> (SocketAddr, SocketAddr) {
    match (src, dst) {
        (SocketAddr::V4(_), SocketAddr::V6(_)) => {
            (SocketAddr::new(IpAddr::V6(v6(src.ip())), src.port()), dst)
        }
        (SocketAddr::V6(_), SocketAddr::V4(_)) => {
            (src, SocketAddr::new(IpAddr::V6(v6(dst.ip())), dst.port()))
        }
        _ => (src, dst),
    }
}

fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chunks of a packet: (type, value), checking every length on the way.
    fn chunks(p: &[u8]) -> Vec<(u16, Vec<u8>)> {
        assert_eq!(&p[..4], b"HEP3");
        assert_eq!(usize::from(u16::from_be_bytes([p[4], p[5]])), p.len());
        let mut rest = &p[6..];
        let mut out = Vec::new();
        while !rest.is_empty() {
            assert_eq!(u16::from_be_bytes([rest[0], rest[1]]), 0, "vendor 0");
            let kind = u16::from_be_bytes([rest[2], rest[3]]);
            let len = usize::from(u16::from_be_bytes([rest[4], rest[5]]));
            out.push((kind, rest[6..len].to_vec()));
            rest = &rest[len..];
        }
        out
    }

    fn msg(src: &str, dst: &str, transport: TraceTransport) -> TracedMessage {
        TracedMessage {
            at_us: 1_700_000_000_123_456,
            transport,
            src: src.parse().expect("src"),
            dst: dst.parse().expect("dst"),
            text: "INVITE sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n".into(),
        }
    }

    #[test]
    fn an_ipv4_udp_message_has_every_chunk_in_order() {
        let m = msg("127.0.0.1:5060", "10.1.2.3:5062", TraceTransport::Udp);
        let p = encode(&m, 2001, "call-1").expect("fits");
        let got = chunks(&p);
        let want: Vec<(u16, Vec<u8>)> = vec![
            (1, vec![2]),
            (2, vec![17]),
            (3, vec![127, 0, 0, 1]),
            (4, vec![10, 1, 2, 3]),
            (7, 5060u16.to_be_bytes().to_vec()),
            (8, 5062u16.to_be_bytes().to_vec()),
            (9, 1_700_000_000u32.to_be_bytes().to_vec()),
            (10, 123_456u32.to_be_bytes().to_vec()),
            (11, vec![1]),
            (12, 2001u32.to_be_bytes().to_vec()),
            (17, b"call-1".to_vec()),
            (15, m.text.as_bytes().to_vec()),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn ipv6_and_mixed_families_and_streams() {
        let m = msg("[::1]:5060", "127.0.0.1:5062", TraceTransport::Tls);
        let got = chunks(&encode(&m, 1, "c").expect("fits"));
        assert_eq!(got[0], (1, vec![10]));
        assert_eq!(got[1], (2, vec![6]));
        assert_eq!(got[2].0, 5);
        assert_eq!(
            got[3],
            (
                6,
                "::ffff:127.0.0.1"
                    .parse::<Ipv6Addr>()
                    .expect("v6")
                    .octets()
                    .to_vec()
            )
        );
        let mut huge = msg("127.0.0.1:1", "127.0.0.1:2", TraceTransport::Tcp);
        huge.text = "x".repeat(70_000);
        assert!(encode(&huge, 1, "c").is_none(), "no packet over 64 KiB");
    }
}
