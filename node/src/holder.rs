//! The node holding a call, for requests another node serves (listen-in, a live trace, a
//! forwarded file): which live node other than this one holds a call (`live_calls`), where it
//! answers HTTP (the cluster view), and why it cannot be asked ([`Unreachable`]).

use std::net::SocketAddr;

use callfleet_lb::Balancer;
use callfleet_store::LiveCall;
use callfleet_web::ApiError;

use crate::node::Peers;

/// Where a call is held, seen from this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// No other node lists the call.
    Nowhere,
    /// Node `node` lists it, but its heartbeat is stale.
    Stale { node: String },
    /// Node `node` holds it and answers HTTP at `at`.
    At { node: String, at: Address },
}

/// Where a node answers HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    pub addr: SocketAddr,
    /// Whether it serves HTTPS (its heartbeat says `https`).
    pub https: bool,
}

/// Why the node holding a call cannot be asked.
#[derive(Debug, thiserror::Error)]
pub enum Unreachable {
    #[error("node {node} holds the call but its heartbeat is stale")]
    Dead { node: String },
    #[error("cannot build the request to node {node}: {reason}")]
    Url { node: String, reason: &'static str },
    #[error("node {node} at {url} did not answer: {source}")]
    Http {
        node: String,
        url: String,
        source: reqwest::Error,
    },
    #[error("node {node} refused our signed request (set the same http.secret on every node, keep their clocks in step)")]
    Secret { node: String },
    #[error("node {node} answered HTTP {status}: {body}")]
    Status {
        node: String,
        status: u16,
        body: String,
    },
}

/// The node other than `me` that lists call `call_id` among `calls`, if any.
pub fn holder_of(calls: Vec<LiveCall>, call_id: &str, me: &str) -> Option<String> {
    calls
        .into_iter()
        .find(|c| c.call_id == call_id && c.node != me)
        .map(|c| c.node)
}

/// Where node `node` answers HTTP, if it is alive in `balancer`'s view.
pub fn address(balancer: &Balancer, node: &str) -> Option<Address> {
    let view = balancer.view();
    view.get(node)
        .filter(|n| view.is_alive(n))
        .map(|n| Address {
            addr: n.http,
            https: crate::tls::serves_https(&n.services),
        })
}

/// Which other live node holds call `call_id` (the database's live calls, the cluster view).
pub async fn find(peers: &Peers, call_id: &str) -> Result<Holder, ApiError> {
    let calls = peers
        .store
        .live_calls(None)
        .await
        .map_err(|e| ApiError::unavailable("database", e))?;
    let Some(node) = holder_of(calls, call_id, &peers.cfg.node.name) else {
        return Ok(Holder::Nowhere);
    };
    Ok(match address(&peers.balancer, &node) {
        Some(at) => Holder::At { node, at },
        None => Holder::Stale { node },
    })
}

/// The URL of `segments` on the node at `at`, or why it cannot be built.
pub fn url(node: &str, at: Address, segments: &[&str]) -> Result<reqwest::Url, Unreachable> {
    let bad = || Unreachable::Url {
        node: node.to_string(),
        reason: "bad HTTP address",
    };
    let mut url =
        reqwest::Url::parse(&crate::tls::node_url(at.https, at.addr, "/")).map_err(|_| bad())?;
    url.path_segments_mut()
        .map_err(|_| bad())?
        .clear()
        .extend(segments);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(node: &str, call_id: &str) -> LiveCall {
        LiveCall {
            node: node.to_string(),
            call_id: call_id.to_string(),
            from_uri: "sip:1@h".to_string(),
            to_uri: "sip:2@h".to_string(),
            state: "answered".to_string(),
            started_at_ms: 1,
            answered_at_ms: Some(2),
            redirected_from: None,
        }
    }

    /// Live-call rows as (node, Call-ID).
    type Rows<'a> = &'a [(&'a str, &'a str)];

    #[test]
    fn the_holder_is_another_node_listing_the_call() {
        let cases: [(Rows<'_>, Option<&str>); 5] = [
            (&[], None),
            (&[("b", "x@h")], None),
            (&[("b", "c@h")], Some("b")),
            // Listed here only: this node would have served it itself.
            (&[("a", "c@h")], None),
            (&[("a", "c@h"), ("b", "x@h"), ("c", "c@h")], Some("c")),
        ];
        for (rows, want) in cases {
            let calls = rows.iter().map(|(n, c)| live(n, c)).collect();
            assert_eq!(holder_of(calls, "c@h", "a").as_deref(), want, "{rows:?}");
        }
    }

    #[test]
    fn urls_escape_the_call_id() {
        let at = Address {
            addr: "127.0.0.1:8080".parse().unwrap(),
            https: false,
        };
        let plain = url("b", at, &["internal", "v1", "calls", "a/b c@h", "trace"]).unwrap();
        assert_eq!(
            plain.as_str(),
            "http://127.0.0.1:8080/internal/v1/calls/a%2Fb%20c@h/trace"
        );
        let tls = Address { https: true, ..at };
        assert_eq!(url("b", tls, &["x"]).unwrap().scheme(), "https");
    }
}
