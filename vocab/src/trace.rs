//! One call's SIP trace as the node keeps it and the HTTP API serves it
//! (`GET /api/v1/calls/{call_id}/trace`): every SIP message of every leg, both directions, with
//! its time, transport, source and destination.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

words! {
    /// The transport a SIP message travelled on.
    pub enum TraceTransport ("SIP transport") {
        Udp = "UDP",
        Tcp = "TCP",
        Tls = "TLS",
    }
}

/// One SIP message of a call, as it went over the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TracedMessage {
    /// When the node read or wrote it, in microseconds since the UNIX epoch.
    pub at_us: i64,
    pub transport: TraceTransport,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// The message, head and body (SIP is text; bytes that are not UTF-8 are replaced).
    pub text: String,
}

impl TracedMessage {
    /// The first line's summary: the method of a request, `"200 OK"` of a response.
    pub fn label(&self) -> String {
        let first = self.text.split("\r\n").next().unwrap_or_default();
        if let Some(rest) = first.strip_prefix("SIP/2.0 ") {
            return rest.chars().take(40).collect();
        }
        first
            .split(' ')
            .next()
            .unwrap_or_default()
            .chars()
            .take(20)
            .collect()
    }
}

/// A call's trace: the body of `GET /api/v1/calls/{call_id}/trace`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallTrace {
    /// The caller's Call-ID (the call's name in the API).
    pub call_id: String,
    /// The node that held the call.
    pub node: String,
    /// Whether the call is still in progress (the trace grows).
    pub live: bool,
    /// Messages left out because the call's trace reached its budget.
    pub cut: u64,
    /// Oldest first.
    pub messages: Vec<TracedMessage>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(text: &str) -> TracedMessage {
        TracedMessage {
            at_us: 1,
            transport: TraceTransport::Udp,
            src: "127.0.0.1:5060".parse().expect("addr"),
            dst: "127.0.0.2:5060".parse().expect("addr"),
            text: text.into(),
        }
    }

    #[test]
    fn labels_name_the_method_or_the_status() {
        let cases = [
            ("INVITE sip:a@b SIP/2.0\r\nVia: x\r\n\r\n", "INVITE"),
            ("SIP/2.0 200 OK\r\n\r\n", "200 OK"),
            ("SIP/2.0 100 Trying\r\nVia: x", "100 Trying"),
            ("", ""),
            ("BYE", "BYE"),
        ];
        for (text, want) in cases {
            assert_eq!(msg(text).label(), want, "{text:?}");
        }
    }

    #[test]
    fn transports_read_as_written() {
        let json = serde_json::to_string(&msg("BYE")).expect("json");
        assert!(json.contains("\"transport\":\"UDP\""), "{json}");
        let back: TracedMessage = serde_json::from_str(&json).expect("back");
        assert_eq!(back, msg("BYE"));
    }
}
