//! Attended transfer across nodes: the decisions. Agent 1's phone may hold its queued call A
//! on one node (the one that took the carrier's INVITE) and its consultation call B on another
//! (the one it sent that INVITE to). The REFER with Replaces then names B at the other node's
//! SIP address. The node holding A acts as the transferee of RFC 3891 would: it sends that node
//! an INVITE carrying `Replaces: B;to-tag=..;from-tag=..`, with a proof ([`PROOF_HEADER`]) that
//! it speaks for the phone owning A, signed with the cluster secret ([`callfleet_sign`]) over
//! the replaced dialog, the device, the new INVITE's Call-ID and the time. The node holding B
//! checks that proof ([`check`]) and then the same things [`super::attended::decide`] checks
//! ([`super::attended::judge`]) before handing B's bridged leg to the new incoming leg.
//!
//! A Refer-To may also name one of the cluster's SIP domains (`sip.domains`): the named call is
//! then somewhere in the cluster. This node's calls are looked at first; if the call is not
//! here, every other live node is sent the INVITE with Replaces at once, each once; their
//! answers are gathered as they come ([`Gather`]): the first node that takes the call wins, a
//! node that holds it and refuses ends the search, and once decided the other nodes' INVITEs
//! are cancelled and their answers left unused. A node that does not hold the call answers 481
//! and nothing changes there; a silent node costs its timeout once, whatever the others do.
//!
//! Only a live cluster node's SIP address is dialled ([`aim`]): a phone never makes a node
//! dial anywhere else, and a name it supplies is never resolved.

use std::net::SocketAddr;

use callfleet_sign::{Refused, Signer, Verifier};
use rsipstack::sip::event_packages::parse_refer_to;
use rsipstack::sip::uri::Host;
use rsipstack::sip::Uri;

use super::attended::Replaces;
use super::transfer::{uri_here, HereBy, Ours, Refusal};

/// The header of a node's INVITE with Replaces: `<device> <signature>`, the signature a
/// [`callfleet_sign`] header value (`cf1 <ms> <client> <seq> <mac>`).
pub const PROOF_HEADER: &str = "X-Callfleet-Replaces-Proof";

/// The method the proof's MAC covers.
const METHOD: &str = "INVITE";

/// Longest device name a proof carries.
const MAX_DEVICE: usize = 64;

/// Where a REFER with Replaces sends the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Aim {
    /// The named call is on this node (the same-node case, [`super::attended::decide`]).
    Here,
    /// The named call is on another live cluster node.
    Node(Remote),
    /// The Refer-To names one of the cluster's domains: this node's calls first, then these
    /// other live nodes, each once, in this order.
    Cluster(Vec<Remote>),
}

/// A call named on another node: where to send the INVITE with Replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// That node's SIP address.
    pub addr: SocketAddr,
    /// The Refer-To's user part (the callee of the named call).
    pub user: String,
    pub replaces: Replaces,
}

/// Where the Refer-To `refer_to` (with Replaces) points (pure): this node (`ours`' addresses),
/// the cluster (one of `ours`' domains: every other node of `live`), another live cluster node
/// (`live`: the SIP addresses of the nodes the balancer sees alive), or nowhere the node may
/// dial ([`Refusal::OtherHost`]). A URI without a port names 5060.
pub fn aim(refer_to: Option<&str>, ours: &Ours, live: &[SocketAddr]) -> Result<Aim, Refusal> {
    let target = parse_refer_to(refer_to.ok_or(Refusal::Malformed)?);
    let replaces = target.replaces.ok_or(Refusal::Malformed)?;
    let host = match uri_here(&target.uri, ours) {
        Ok((_, HereBy::Address)) => return Ok(Aim::Here),
        Ok((uri, HereBy::Domain)) => {
            let user = uri.user().unwrap_or_default().to_string();
            let replaces = Replaces::parse(&replaces)?;
            return Ok(Aim::Cluster(others(live, &ours.addrs, &user, &replaces)));
        }
        Err(Refusal::OtherHost(host)) => host,
        Err(other) => return Err(other),
    };
    let uri = Uri::try_from(target.uri.as_str()).map_err(|_| Refusal::Malformed)?;
    let port = uri.host_with_port.port.as_ref().map_or(5060, |p| p.value());
    let addr = match uri.host() {
        Host::IpAddr(ip) => SocketAddr::new(*ip, port),
        Host::Domain(_) => return Err(Refusal::OtherHost(host)),
    };
    if !live.contains(&addr) || ours.addrs.contains(&addr) {
        return Err(Refusal::OtherHost(host));
    }
    Ok(Aim::Node(Remote {
        addr,
        user: uri.user().unwrap_or_default().to_string(),
        replaces: Replaces::parse(&replaces)?,
    }))
}

/// The live nodes other than this one (`ours`), each once, in the balancer's order.
fn others(
    live: &[SocketAddr],
    ours: &[SocketAddr],
    user: &str,
    replaces: &Replaces,
) -> Vec<Remote> {
    let mut seen: Vec<SocketAddr> = Vec::new();
    for a in live {
        if !ours.contains(a) && !seen.contains(a) {
            seen.push(*a);
        }
    }
    seen.into_iter()
        .map(|addr| Remote {
            addr,
            user: user.to_string(),
            replaces: replaces.clone(),
        })
        .collect()
}

/// Whether a REFER naming a cluster domain goes on to the other nodes after this node's own
/// look (`local`, [`super::attended::decide`]'s answer): only when no call of this node
/// matched. A call found here but refused (another phone's, early-only) stays refused.
pub fn ask_others<T>(local: &Result<T, Refusal>) -> bool {
    matches!(local, Err(Refusal::NoSuchDialog))
}

/// After one node failed to take the call in a cluster-wide search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Search {
    /// That node does not hold the call (481) or said nothing in time: ask the next one.
    Next,
    /// That node holds the call and refused it (another phone's, early-only, ...) or failed:
    /// the phone is told this status and no other node is asked.
    Stop(u16),
}

/// The search's step after a node's INVITE with Replaces failed with `status` (`None`: no
/// final answer in time; a 2xx here is a leg that could not be used, a 500).
pub fn search_step(status: Option<u16>) -> Search {
    match status {
        Some(481) | None => Search::Next,
        Some(s) if (200..300).contains(&s) => Search::Stop(500),
        other => Search::Stop(outcome_status(other)),
    }
}

/// The status the phone is told when no node took the call: 481 when every node asked
/// answered so, 408 when one said nothing (it might have held the call).
pub fn search_end(any_silent: bool) -> u16 {
    if any_silent {
        408
    } else {
        481
    }
}

/// One node's answer to the INVITE with Replaces of a cluster-wide search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// It took the call: its 200 with a usable leg.
    Took,
    /// It did not: its final status (`None`: no final answer in time, or not sent).
    Failed(Option<u16>),
}

/// What the shell does with one answer of a cluster-wide search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// Undecided: wait for the other nodes.
    Wait,
    /// This node took the call: its leg is the transfer's; the others are cancelled.
    Take,
    /// The search failed: the phone is told this status; the others are cancelled.
    Fail(u16),
    /// The search was decided before this answer: it is not used (a leg it brings is ended).
    Late,
}

/// The answers of a cluster-wide search asked of several nodes at once, gathered in the order
/// they arrive (pure): the first node that takes the call decides, as does the first that
/// holds it and refuses ([`search_step`]'s `Stop`); once every node answered 481 or nothing,
/// the search ends with [`search_end`]. A call is held by one node only, so at most one
/// answer decides; any answer after the decision is [`Heard::Late`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gather {
    /// Nodes whose answer has not come yet.
    pending: usize,
    /// Whether a node said nothing in time.
    silent: bool,
    decided: bool,
}

impl Gather {
    /// A search asked of `asked` nodes (none: [`Gather::hear`] is never called and the
    /// search's end is [`search_end`]`(false)`).
    pub fn new(asked: usize) -> Gather {
        Gather {
            pending: asked,
            silent: false,
            decided: false,
        }
    }

    /// One node's answer.
    pub fn hear(&mut self, answer: Answer) -> Heard {
        if self.decided || self.pending == 0 {
            return Heard::Late;
        }
        self.pending -= 1;
        let heard = match answer {
            Answer::Took => Heard::Take,
            Answer::Failed(status) => match search_step(status) {
                Search::Stop(status) => Heard::Fail(status),
                Search::Next => {
                    self.silent |= status.is_none();
                    if self.pending == 0 {
                        Heard::Fail(search_end(self.silent))
                    } else {
                        Heard::Wait
                    }
                }
            },
        };
        self.decided = heard != Heard::Wait;
        heard
    }
}

/// What the proof's MAC covers besides the time: the replaced dialog, the device that owns
/// it, and the Call-ID of the INVITE carrying it (so the proof is good for that INVITE only).
fn covered(replaces: &Replaces, device: &str, by: &str) -> String {
    format!(
        "replaces:{};to-tag={};from-tag={};early-only={};device={device};by={by}",
        replaces.call_id, replaces.to_tag, replaces.from_tag, replaces.early_only
    )
}

/// The Replaces header value for `replaces` (as RFC 3891 §6.1 writes it).
pub fn header_value(replaces: &Replaces) -> String {
    let early = if replaces.early_only {
        ";early-only"
    } else {
        ""
    };
    format!(
        "{};to-tag={};from-tag={}{early}",
        replaces.call_id, replaces.to_tag, replaces.from_tag
    )
}

/// The [`PROOF_HEADER`] value for an INVITE `by` (its Call-ID) replacing `replaces` for the
/// phone `device`, signed at `now_ms`.
pub fn prove(signer: &Signer, replaces: &Replaces, device: &str, by: &str, now_ms: u64) -> String {
    let signature = signer.sign(METHOD, &covered(replaces, device, by), b"", now_ms);
    format!("{device} {signature}")
}

/// Why a node's INVITE with Replaces is not believed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Forged {
    /// No proof header: not a cluster node's INVITE (a phone or anyone else).
    #[error("the INVITE with Replaces carries no cluster proof")]
    Unsigned,
    /// The Replaces header is malformed.
    #[error("the Replaces header is malformed")]
    Malformed,
    /// The proof does not hold (bad MAC, stale, replayed, malformed).
    #[error("the INVITE's cluster proof is refused: {0}")]
    Refused(#[from] Refused),
}

impl Forged {
    /// The INVITE's final response.
    pub fn status(&self) -> u16 {
        match self {
            Forged::Malformed => 400,
            Forged::Unsigned | Forged::Refused(_) => 403,
        }
    }
}

/// Checks an incoming INVITE with Replaces (pure but for the verifier's replay record):
/// `replaces`, the Replaces header's value; `proof`, the [`PROOF_HEADER`] value; `by`, the
/// INVITE's Call-ID; `now_ms`, this host's clock. The named dialog and the device the proof
/// speaks for, or why not.
pub fn check(
    verifier: &Verifier,
    replaces: &str,
    proof: Option<&str>,
    by: &str,
    now_ms: u64,
) -> Result<(Replaces, String), Forged> {
    let replaces = Replaces::parse(replaces).map_err(|_| Forged::Malformed)?;
    let proof = proof.ok_or(Forged::Unsigned)?;
    let (device, signature) = proof
        .trim()
        .split_once(' ')
        .ok_or(Forged::Refused(Refused::Malformed))?;
    let token = !device.is_empty()
        && device.len() <= MAX_DEVICE
        && device.chars().all(|c| c.is_ascii_graphic());
    if !token {
        return Err(Forged::Refused(Refused::Malformed));
    }
    let target = covered(&replaces, device, by);
    verifier.verify(signature.as_bytes(), METHOD, &target, b"", now_ms)?;
    Ok((replaces, device.to_string()))
}

/// The status the phone's NOTIFY reports when the other node answered the INVITE with
/// `status` (`None`: no final answer in time, reported as 408).
pub fn outcome_status(status: Option<u16>) -> u16 {
    match status {
        Some(s) if (200..300).contains(&s) => 200,
        Some(s) if (300..700).contains(&s) => s,
        Some(_) => 500,
        None => 408,
    }
}

#[cfg(test)]
#[path = "xreplaces_tests.rs"]
mod tests;
