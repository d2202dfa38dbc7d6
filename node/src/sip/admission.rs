//! Admission of a new INVITE: the source must be a carrier (`carriers.allow` from the config,
//! or a carrier from SQL as the configuration cache holds it: no query per INVITE), an office
//! proxy's current address (also from the cache) or a phone registered through this node;
//! then the balancer's decision (handle here, `302` to another node, or `503`). A new REGISTER
//! is checked here too when `carriers.register_from` is `"listed"` ([`register_refused`]).
//! Anything refused gets `carriers.refuse`: `403` or nothing. The caller (`inbound`) enters a call kept here in the call
//! table at once, so a burst counts against capacity before any handler runs.

use std::net::SocketAddr;

use callfleet_lb::Decision;
use callfleet_web::Outcome;
use rsipstack::sip::{Header, Param, Request, Uri};
use tracing::debug;

use crate::config::{RefuseAction, RegisterFrom};
use crate::node::Edge;
use crate::now_ms;

/// URI parameter that marks a Request-URI as already redirected by a main node; its value is
/// that node's name.
pub const MARKER: &str = "cfr";

/// What to do with a new INVITE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Keep the call here; `marked_by` names the node that redirected it, if one did.
    Handle {
        marked_by: Option<String>,
    },
    Redirect {
        contact: String,
    },
    Busy {
        retry_after: u32,
    },
    Forbidden,
    Drop,
}

/// What a source is to this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Trust {
    /// In `carriers.allow` or the network of a carrier from SQL.
    pub carrier: bool,
    /// The current address of an office proxy.
    pub proxy: bool,
    /// The address a phone registered from, through this node.
    pub phone: bool,
}

/// The kind of out-of-dialog request being admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Invite,
    Register,
}

/// Whether a new request of `kind` from a source with `trust` is taken (pure): an INVITE from
/// a carrier, a proxy or a registered phone; a REGISTER from anywhere, or with
/// `register_from = "listed"` from a carrier network or a proxy only.
pub fn allowed(kind: Kind, trust: Trust, register_from: RegisterFrom) -> bool {
    match (kind, register_from) {
        (Kind::Invite, _) => trust.carrier || trust.proxy || trust.phone,
        (Kind::Register, RegisterFrom::Anywhere) => true,
        (Kind::Register, RegisterFrom::Listed) => trust.carrier || trust.proxy,
    }
}

/// What `src` is to this node now (configuration cache and registrar memory: no query).
pub fn trust(edge: &Edge, src: SocketAddr) -> Trust {
    let ip = src.ip();
    let cache = edge.realtime.get();
    Trust {
        carrier: edge.cfg.carriers.allows(ip) || cache.carrier_allows(ip),
        proxy: cache.proxy_at(ip),
        phone: edge.registrar.phone_at(src, now_ms()).is_some(),
    }
}

fn refusal(edge: &Edge) -> Admission {
    match edge.cfg.carriers.refuse {
        RefuseAction::Forbidden => Admission::Forbidden,
        RefuseAction::Drop => Admission::Drop,
    }
}

/// `Some(refusal)` when a new REGISTER from `src` is not taken (`carriers.register_from`).
pub fn register_refused(edge: &Edge, src: SocketAddr) -> Option<Admission> {
    let register_from = edge.cfg.carriers.register_from;
    if register_from == RegisterFrom::Anywhere {
        return None; // no lookup at all: today's behaviour
    }
    if allowed(Kind::Register, trust(edge, src), register_from) {
        return None;
    }
    debug!(%src, "REGISTER from a source that is no carrier network or office proxy");
    Some(refusal(edge))
}

/// Decides on a new INVITE from `src`.
pub fn admit(edge: &Edge, req: &Request, src: SocketAddr) -> Admission {
    let trust = trust(edge, src);
    if trust.phone {
        // One of our phones (hot-desk codes, calls to agents): handled here, never redirected.
        return Admission::Handle { marked_by: None };
    }
    let src = src.ip();
    // An INVITE with Replaces (another node's, in an attended transfer across nodes) names a
    // call of this node or none: never redirected; its proof is checked before anything.
    let replacing = req.headers.iter().any(|h| matches!(h, Header::Replaces(_)));
    if replacing && from_node(edge, src) {
        return Admission::Handle { marked_by: None };
    }
    if !allowed(Kind::Invite, trust, edge.cfg.carriers.register_from) {
        edge.metrics.call_outcome(Outcome::Forbidden);
        debug!(%src, "INVITE from a source that is no carrier, office proxy or registered phone");
        return refusal(edge);
    }
    if replacing {
        return Admission::Handle { marked_by: None };
    }
    edge.alerts.invite_from(src, now_ms());
    let marked_by = marker(&req.uri);
    match edge.balancer.decide(marked_by.is_some(), edge.local_load()) {
        Decision::Handle => Admission::Handle { marked_by },
        Decision::Redirect { name, sip } => {
            edge.metrics.redirect(&name);
            edge.metrics.call_outcome(Outcome::Redirected);
            Admission::Redirect {
                contact: redirect_contact(req.uri.user(), sip, &edge.cfg.node.name),
            }
        }
        Decision::Refuse => {
            edge.metrics.call_outcome(Outcome::Refused);
            Admission::Busy {
                retry_after: edge.cfg.lb.retry_after,
            }
        }
    }
}

/// Whether `src` is the IP of a live cluster node's SIP address.
fn from_node(edge: &Edge, src: std::net::IpAddr) -> bool {
    crate::queue::xnode::live_nodes(&edge.balancer)
        .iter()
        .any(|n| n.ip() == src)
}

/// The value of the redirect marker in a Request-URI, if any.
pub fn marker(uri: &Uri) -> Option<String> {
    uri.params.iter().find_map(|p| match p {
        Param::Other(name, value) if name.value().eq_ignore_ascii_case(MARKER) => Some(
            value
                .as_ref()
                .map(|v| v.value().to_string())
                .unwrap_or_default(),
        ),
        _ => None,
    })
}

/// `sip:<dialled user>@<node>;cfr=<this node>`.
pub fn redirect_contact(user: Option<&str>, target: SocketAddr, origin: &str) -> String {
    match user {
        Some(u) if !u.is_empty() => format!("sip:{u}@{target};{MARKER}={origin}"),
        _ => format!("sip:{target};{MARKER}={origin}"),
    }
}

/// The URI inside a From/To header value (without display name and parameters).
pub fn header_uri(req: &Request, pick: impl Fn(&Header) -> bool) -> String {
    let value = req
        .headers
        .iter()
        .find(|h| pick(h))
        .map(|h| match h {
            Header::From(f) => f.value(),
            Header::To(t) => t.value(),
            _ => "",
        })
        .unwrap_or("");
    let inner = match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value.split(';').next().unwrap_or(""),
    };
    // Kept in live-call rows and CDRs: a hot-desk PIN dialled in one go is hidden.
    crate::redact::dialled_pin(inner.trim().into())
        .chars()
        .take(256)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::sip::SipMessage;

    fn req(uri: &str) -> Request {
        let text = format!(
            "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\nFrom: \"A\" <sip:a@127.0.0.1>;tag=1\r\nTo: 100 <sip:100@127.0.0.11>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        );
        match SipMessage::try_from(text.as_bytes()).expect("parses") {
            SipMessage::Request(r) => r,
            _ => panic!("request"),
        }
    }

    #[test]
    fn only_listed_sources_call_and_register_when_listed() {
        let none = Trust::default();
        let carrier = Trust {
            carrier: true,
            ..none
        };
        let proxy = Trust {
            proxy: true,
            ..none
        };
        let phone = Trust {
            phone: true,
            ..none
        };
        use Kind::{Invite, Register};
        use RegisterFrom::{Anywhere, Listed};
        let table = [
            (Invite, none, Anywhere, false),
            (Invite, none, Listed, false),
            (Invite, carrier, Anywhere, true),
            (Invite, proxy, Anywhere, true),
            (Invite, phone, Listed, true),
            (Register, none, Anywhere, true),
            (Register, none, Listed, false),
            (Register, carrier, Listed, true),
            (Register, proxy, Listed, true),
            // A phone's own address earns no right to register again: once the switch is
            // "listed", phones register through a proxy or a listed network.
            (Register, phone, Listed, false),
        ];
        for (kind, trust, from, want) in table {
            assert_eq!(
                allowed(kind, trust, from),
                want,
                "{kind:?} {trust:?} {from:?}"
            );
        }
    }

    #[test]
    fn marker_round_trips_through_a_contact() {
        let contact = redirect_contact(Some("100"), "127.0.0.13:5060".parse().unwrap(), "main-a");
        assert_eq!(contact, "sip:100@127.0.0.13:5060;cfr=main-a");
        assert_eq!(marker(&req(&contact).uri), Some("main-a".to_string()));
        assert_eq!(marker(&req("sip:100@127.0.0.11:5060").uri), None);
        assert_eq!(
            redirect_contact(None, "127.0.0.13:5060".parse().unwrap(), "m"),
            "sip:127.0.0.13:5060;cfr=m"
        );
    }

    #[test]
    fn a_pin_dialled_in_one_go_is_not_kept() {
        let r = req("sip:*11*1001*4321@127.0.0.11").to_string().replace(
            "To: 100 <sip:100@127.0.0.11>",
            "To: <sip:*11*1001*4321@127.0.0.11>",
        );
        let SipMessage::Request(r) = SipMessage::try_from(r.as_str()).expect("parses") else {
            panic!("request")
        };
        assert_eq!(
            header_uri(&r, |h| matches!(h, Header::To(_))),
            "sip:*11*1001*<redacted>@127.0.0.11"
        );
    }

    #[test]
    fn header_uris_are_extracted() {
        let r = req("sip:100@127.0.0.11");
        assert_eq!(
            header_uri(&r, |h| matches!(h, Header::From(_))),
            "sip:a@127.0.0.1"
        );
        assert_eq!(
            header_uri(&r, |h| matches!(h, Header::To(_))),
            "sip:100@127.0.0.11"
        );
    }
}
