//! What rsipstack sends on TCP and TLS streams reaches the trace here (its UDP sends pass the
//! UDP front's socket, which captures them itself, byte for byte). A request carries its
//! destination; a response on a stream often does not, and then its peer is read from its
//! top Via as the request came (`received` and `rport` when set).

use std::net::{IpAddr, SocketAddr};

use callfleet_vocab::TraceTransport;
use rsipstack::sip::{SipMessage, Transport};
use rsipstack::transaction::endpoint::MessageInspector;
use rsipstack::transport::SipAddr;

use super::Tracer;

/// Captures messages rsipstack sends on streams.
pub struct StreamSends(pub Tracer);

impl MessageInspector for StreamSends {
    fn before_send(&self, msg: SipMessage, dest: Option<&SipAddr>) -> SipMessage {
        let text = msg.to_string();
        let dest = dest.and_then(|d| d.get_socketaddr().ok().map(|a| (d.r#type, a)));
        if let Some((transport, peer)) = stream_target(dest, &text) {
            self.0.sent(transport, peer, text.as_bytes());
        }
        msg
    }

    fn after_received(&self, msg: SipMessage, _from: Option<&SipAddr>) -> SipMessage {
        // Received messages are captured as read, before parsing (`sip::inbound`).
        msg
    }
}

/// Where a message rsipstack sends goes, when it goes on a stream: the destination's transport
/// (else the top Via's: ours on a request, the request's on a response) and its address (else
/// the top Via's `received`/`rport`). `None` for UDP, which the front captures itself.
pub fn stream_target(
    dest: Option<(Option<Transport>, SocketAddr)>,
    text: &str,
) -> Option<(TraceTransport, SocketAddr)> {
    let via = || via_peer(text);
    let target = match dest {
        Some((Some(t), peer)) => Some((stream_transport(t).unwrap_or(TraceTransport::Udp), peer)),
        Some((None, peer)) => via().map(|(t, _)| (t, peer)),
        None => via(),
    };
    target.filter(|(t, _)| *t != TraceTransport::Udp)
}

fn stream_transport(t: Transport) -> Option<TraceTransport> {
    match t {
        Transport::Tcp => Some(TraceTransport::Tcp),
        Transport::Tls => Some(TraceTransport::Tls),
        _ => None,
    }
}

/// The transport and peer of a message's top Via: `received`/`rport` when present, else its
/// sent-by (port 5060 by default). `None` without a usable numeric address.
pub fn via_peer(text: &str) -> Option<(TraceTransport, SocketAddr)> {
    let head = text.split("\r\n\r\n").next()?;
    let value = head.split("\r\n").skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        let name = name.trim_end_matches([' ', '\t']);
        (name.eq_ignore_ascii_case("via") || name.eq_ignore_ascii_case("v")).then_some(value)
    })?;
    // The first Via of a comma-separated list.
    let value = value.split(',').next()?.trim();
    let (proto, rest) = value.split_once(char::is_whitespace)?;
    let transport = match proto.rsplit('/').next()?.to_ascii_uppercase().as_str() {
        "UDP" => TraceTransport::Udp,
        "TCP" => TraceTransport::Tcp,
        "TLS" => TraceTransport::Tls,
        _ => return None,
    };
    let mut parts = rest.trim().split(';');
    let sent_by = parts.next()?.trim();
    let (mut host, mut port) = split_host_port(sent_by)?;
    for p in parts {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        match k.trim().to_ascii_lowercase().as_str() {
            "received" => host = v.trim().trim_matches(['[', ']']).parse().ok()?,
            "rport" if !v.is_empty() => port = v.trim().parse().ok()?,
            _ => {}
        }
    }
    Some((transport, SocketAddr::new(host, port)))
}

fn split_host_port(s: &str) -> Option<(IpAddr, u16)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let port = after
            .strip_prefix(':')
            .map_or(Some(5060), |p| p.parse().ok())?;
        return Some((ip.parse().ok()?, port));
    }
    match s.split_once(':') {
        Some((ip, port)) => Some((ip.parse().ok()?, port.parse().ok()?)),
        None => Some((s.parse().ok()?, 5060)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_via_names_the_peer() {
        let resp =
            |via: &str| format!("SIP/2.0 200 OK\r\n{via}\r\nVia: SIP/2.0/UDP 9.9.9.9\r\n\r\n");
        let cases = [
            (
                "Via: SIP/2.0/TCP 10.0.0.1:5070;branch=z9hG4bK1",
                Some((TraceTransport::Tcp, "10.0.0.1:5070")),
            ),
            (
                "v: SIP/2.0/tls 10.0.0.1;branch=z9hG4bK1;received=10.0.0.2;rport=6000",
                Some((TraceTransport::Tls, "10.0.0.2:6000")),
            ),
            (
                "Via: SIP/2.0/TCP 10.0.0.1:5070;rport;branch=x",
                Some((TraceTransport::Tcp, "10.0.0.1:5070")),
            ),
            (
                "Via: SIP/2.0/UDP [::1]:5062;branch=x, SIP/2.0/TCP 1.1.1.1",
                Some((TraceTransport::Udp, "[::1]:5062")),
            ),
            ("Via: SIP/2.0/TCP phone.example;branch=x", None),
            ("Via: SIP/2.0/SCTP 1.2.3.4", None),
            ("Via: garbage", None),
        ];
        for (via, want) in cases {
            let want = want.map(|(t, a)| (t, a.parse::<SocketAddr>().expect("addr")));
            assert_eq!(via_peer(&resp(via)), want, "{via}");
        }
        assert_eq!(via_peer("SIP/2.0 200 OK\r\n\r\n"), None);
    }

    #[test]
    fn only_stream_sends_are_taken_with_their_peer() {
        let peer: SocketAddr = "10.0.0.9:5070".parse().expect("addr");
        let tcp_req = "BYE sip:a SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1:5060;branch=x\r\n\r\n";
        let udp_req = "BYE sip:a SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=x\r\n\r\n";
        let tls_resp =
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS 10.0.0.7:5061;received=10.0.0.8;rport=4000\r\n\r\n";
        let cases = [
            (
                Some((Some(Transport::Tcp), peer)),
                udp_req,
                Some((TraceTransport::Tcp, peer)),
            ),
            (
                Some((Some(Transport::Tls), peer)),
                udp_req,
                Some((TraceTransport::Tls, peer)),
            ),
            (Some((Some(Transport::Udp), peer)), tcp_req, None),
            // No transport said: our Via on a request tells it; the address is the destination.
            (
                Some((None, peer)),
                tcp_req,
                Some((TraceTransport::Tcp, peer)),
            ),
            (Some((None, peer)), udp_req, None),
            // No destination: a response goes back to the request's Via.
            (
                None,
                tls_resp,
                Some((TraceTransport::Tls, "10.0.0.8:4000".parse().expect("addr"))),
            ),
            (None, "garbage", None),
        ];
        for (dest, text, want) in cases {
            assert_eq!(stream_target(dest, text), want, "{dest:?} {text:?}");
        }
    }
}
