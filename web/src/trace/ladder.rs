//! A call's ladder diagram, drawn on the server as SVG: one column per host the messages
//! travelled between (in the order they first appear; the node is the host in every message),
//! one arrow per message with its method or status and its time from the first message.
//! Each arrow is a link to the raw message below it, so the diagram works from the keyboard
//! and without a script.

use std::net::SocketAddr;

use askama::Template;
use callfleet_vocab::{CallTrace, TracedMessage};

use crate::page::Chrome;

/// Left margin (the time labels) and the space between two columns, in SVG units.
const LEFT: i64 = 100;
const SPACING: i64 = 240;
const TOP: i64 = 56;
const ROW: i64 = 34;

/// A column of the diagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub(crate) x: i64,
    /// The host's address.
    pub(crate) label: String,
    /// "this node" or "caller"/"phone"-like description.
    pub(crate) role: String,
}

/// One message as an arrow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrow {
    /// The anchor of its raw message (`msg-N`).
    pub(crate) id: String,
    pub(crate) n: usize,
    pub(crate) y: i64,
    pub(crate) x1: i64,
    pub(crate) x2: i64,
    /// Where its label is centred.
    pub(crate) mid: i64,
    /// The clickable band: its left end and width.
    pub(crate) left: i64,
    pub(crate) span: i64,
    pub(crate) label: String,
    /// `+1.234 s` from the first message.
    pub(crate) time: String,
    /// What a screen reader says of it.
    pub(crate) aria: String,
    pub(crate) message: TracedMessage,
    /// The raw message's heading.
    pub(crate) heading: String,
}

/// The page.
#[derive(Template)]
#[template(path = "trace.html")]
pub struct LadderPage {
    pub(crate) chrome: Chrome,
    pub(crate) call_id: String,
    /// Where the pcap download is.
    pub(crate) pcap_href: String,
    pub(crate) node: String,
    pub(crate) live: bool,
    pub(crate) cut: u64,
    pub(crate) columns: Vec<Column>,
    pub(crate) arrows: Vec<Arrow>,
    pub(crate) width: i64,
    pub(crate) height: i64,
    /// Shown when there is no trace to draw.
    pub(crate) missing: Option<String>,
}

/// The hosts of a trace in order of first appearance, and which one is the node (the one in
/// the most messages).
pub fn hosts(messages: &[TracedMessage]) -> (Vec<SocketAddr>, Option<SocketAddr>) {
    let mut order: Vec<SocketAddr> = Vec::new();
    let mut counts: Vec<usize> = Vec::new();
    for m in messages {
        for a in [m.src, m.dst] {
            match order.iter().position(|h| *h == a) {
                Some(i) => counts[i] += 1,
                None => {
                    order.push(a);
                    counts.push(1);
                }
            }
        }
    }
    let node = counts
        .iter()
        .enumerate()
        .max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i)))
        .map(|(i, _)| order[i]);
    (order, node)
}

/// `text` as one segment of a URL path (every byte but the unreserved ones percent-encoded).
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The diagram of `trace`.
pub fn page(chrome: Chrome, trace: &CallTrace) -> LadderPage {
    let (order, node) = hosts(&trace.messages);
    let x = |a: SocketAddr| {
        LEFT + SPACING / 2 + order.iter().position(|h| *h == a).unwrap_or(0) as i64 * SPACING
    };
    let columns = order
        .iter()
        .enumerate()
        .map(|(i, a)| Column {
            x: x(*a),
            label: a.to_string(),
            role: if Some(*a) == node {
                format!("node {}", trace.node)
            } else if i == 0 {
                "caller".into()
            } else {
                "peer".into()
            },
        })
        .collect::<Vec<_>>();
    let first = trace.messages.first().map_or(0, |m| m.at_us);
    let arrows = trace
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let n = i + 1;
            let (x1, mut x2) = (x(m.src), x(m.dst));
            if x1 == x2 {
                x2 = x1 + SPACING / 3;
            }
            let label = m.label();
            let time = format!("+{:.3} s", (m.at_us - first) as f64 / 1e6);
            Arrow {
                id: format!("msg-{n}"),
                n,
                y: TOP + ROW * n as i64,
                x1,
                x2,
                mid: (x1 + x2) / 2,
                left: x1.min(x2),
                span: (x2 - x1).abs(),
                // The visible text (the label) first: the link's name must contain it.
                aria: format!(
                    "{label}, message {n}, from {} to {} at {time}",
                    m.src, m.dst
                ),
                heading: format!(
                    "{n}. {label} — {} → {} over {}, {time}",
                    m.src, m.dst, m.transport
                ),
                label,
                time,
                message: m.clone(),
            }
        })
        .collect::<Vec<_>>();
    let cols = i64::try_from(columns.len().max(2)).unwrap_or(2);
    LadderPage {
        chrome,
        pcap_href: format!("/api/v1/calls/{}/trace.pcap", segment(&trace.call_id)),
        call_id: trace.call_id.clone(),
        node: trace.node.clone(),
        live: trace.live,
        cut: trace.cut,
        width: LEFT + cols * SPACING,
        height: TOP + ROW * (arrows.len() as i64 + 1),
        columns,
        arrows,
        missing: None,
    }
}

/// The page saying why there is no diagram.
pub fn missing(chrome: Chrome, call_id: &str, why: &str) -> LadderPage {
    LadderPage {
        chrome,
        call_id: call_id.to_owned(),
        pcap_href: String::new(),
        node: String::new(),
        live: false,
        cut: 0,
        columns: Vec::new(),
        arrows: Vec::new(),
        width: 0,
        height: 0,
        missing: Some(why.to_owned()),
    }
}

impl LadderPage {
    /// The page as HTML.
    pub fn html(&self) -> String {
        self.render().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot render a call's trace");
            String::from("<!DOCTYPE html><title>callfleet</title><p>The page cannot be shown.</p>")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callfleet_vocab::TraceTransport;

    fn msg(src: &str, dst: &str, at_us: i64, text: &str) -> TracedMessage {
        TracedMessage {
            at_us,
            transport: TraceTransport::Udp,
            src: src.parse().expect("src"),
            dst: dst.parse().expect("dst"),
            text: text.into(),
        }
    }

    fn chrome() -> Chrome {
        Chrome {
            title: "Trace".into(),
            area: crate::page::Area::Calls,
            user: None,
            csrf: None,
            admin: false,
            script: None,
        }
    }

    #[test]
    fn columns_are_hosts_in_order_and_arrows_point_from_source_to_destination() {
        let (carrier, node, agent) = ("10.0.0.9:5060", "10.0.0.1:5060", "10.0.0.7:5062");
        let trace = CallTrace {
            call_id: "c<1>".into(),
            node: "main-a".into(),
            live: false,
            cut: 0,
            messages: vec![
                msg(carrier, node, 1_000_000, "INVITE sip:q SIP/2.0\r\n\r\n"),
                msg(node, carrier, 1_001_000, "SIP/2.0 100 Trying\r\n\r\n"),
                msg(
                    node,
                    agent,
                    1_500_000,
                    "INVITE sip:a SIP/2.0\r\n\r\n<script>",
                ),
                msg(agent, node, 3_250_000, "SIP/2.0 200 OK\r\n\r\n"),
            ],
        };
        let p = page(chrome(), &trace);
        let labels: Vec<_> = p.columns.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels, [carrier, node, agent]);
        assert_eq!(p.columns[1].role, "node main-a");
        assert_eq!(p.columns[0].role, "caller");
        let a = &p.arrows;
        assert!(
            a[0].x1 < a[0].x2 && a[1].x1 > a[1].x2,
            "INVITE right, 100 left"
        );
        assert_eq!((a[2].x1, a[2].x2), (p.columns[1].x, p.columns[2].x));
        assert_eq!(a[3].time, "+2.250 s");
        assert_eq!(a[3].label, "200 OK");
        let html = p.html();
        assert!(
            html.contains("href=\"#msg-3\""),
            "arrows link to their messages"
        );
        assert!(html.contains("id=\"msg-3\""));
        assert!(
            html.contains("&lt;script&gt;") && !html.contains("<script>"),
            "escaped"
        );
        assert!(html.contains("c&lt;1&gt;"));
        assert!(html.contains("/api/v1/calls/c%3C1%3E/trace.pcap"));
    }

    #[test]
    fn the_node_is_the_host_in_the_most_messages() {
        let ms = [
            msg("1.1.1.1:1", "2.2.2.2:2", 0, "A"),
            msg("2.2.2.2:2", "3.3.3.3:3", 0, "B"),
        ];
        let (order, node) = hosts(&ms);
        assert_eq!(order.len(), 3);
        assert_eq!(node, Some("2.2.2.2:2".parse().expect("addr")));
        assert_eq!(hosts(&[]), (vec![], None));
    }
}
