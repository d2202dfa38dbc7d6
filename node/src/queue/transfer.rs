//! Blind transfer from the agent's phone (RFC 3515 REFER in the bridged agent dialog). The
//! phone names a target on this node (`Refer-To: <sip:TARGET@node>`, the node's IP:port or one
//! of the cluster's SIP domains, `sip.domains`); [`decide`], a pure
//! function, says whether it is one the dialplan routes to (an agent's extension, a queue, a
//! number) or why not. Accepted, the REFER is answered 202 and its implicit subscription gets
//! `message/sipfrag` NOTIFYs (`100 Trying`, then `200 OK` once the caller is handed on); the
//! queued call's machine ([`super::engine`]) ends the agent's leg and wraps the agent up, and
//! the caller, still on its own dialog, goes through [`crate::dialplan::transferred`] to the
//! target.
//! Refused, the call stays bridged as it was.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use rsipstack::dialog::dialog::TransactionHandle;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::event_packages::parse_refer_to;
use rsipstack::sip::uri::Host;
use rsipstack::sip::{Header, Request, StatusCode, Uri};
use tracing::{debug, info};

use crate::config::Config;
use crate::dialplan::{self, Route};
use crate::node::Legs;
use crate::sip::ctx::CallCtx;

/// How long each NOTIFY of the transfer waits for the phone's answer.
const NOTIFY_WAIT: Duration = Duration::from_secs(2);

/// Where the agent's phone sends its caller: a route of the dialplan, never a hot-desk code
/// (routed by [`crate::dialplan::transferred`], with the call's [`Legs`] alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferTo {
    /// An agent's personal extension.
    Agent(String),
    /// A queue, by name.
    Queue(String),
    /// A number (DID) of `numbers`: its schedule and IVR.
    Number(String),
}

/// The `transfer` queue event's detail: `agent:EXT`, `queue:NAME` or `number:DID`.
impl fmt::Display for TransferTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransferTo::Agent(a) => write!(f, "agent:{a}"),
            TransferTo::Queue(q) => write!(f, "queue:{q}"),
            TransferTo::Number(n) => write!(f, "number:{n}"),
        }
    }
}

/// Why a REFER is refused (the call stays bridged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no Refer-To header, or not a SIP URI with a user part")]
    Malformed,
    #[error("Refer-To names another host ({0})")]
    OtherHost(String),
    #[error("attended transfer (Refer-To with Replaces) is not supported")]
    Attended,
    #[error("Refer-To names nothing routable ({0:?})")]
    NotRoutable(String),
    #[error("Refer-To names the transferring agent's own extension")]
    ToSelf,
    #[error("the Replaces names no call of this node")]
    NoSuchDialog,
    #[error("the Replaces names a call of another phone")]
    OtherPhone,
    #[error("the call the Replaces names is not bridged")]
    NotBridged,
    #[error("the Replaces asks for an early dialog only, and the call it names is answered")]
    EarlyOnly,
}

impl Refusal {
    /// The REFER's final response.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Malformed => 400,
            Refusal::OtherHost(_) | Refusal::ToSelf | Refusal::OtherPhone => 403,
            Refusal::NoSuchDialog => 481,
            Refusal::EarlyOnly => 486,
            Refusal::NotBridged => 603,
            Refusal::NotRoutable(_) => 404,
            Refusal::Attended => 501,
        }
    }
}

/// What a Refer-To's host may name to mean "here": this node's own SIP addresses, or one of
/// the cluster's SIP domains (`sip.domains`, lower-case).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ours {
    pub addrs: Vec<SocketAddr>,
    pub domains: Vec<String>,
}

impl Ours {
    /// Whether `domain` (a URI's host name) is one of the cluster's domains: compared without
    /// case and without a trailing dot. The name is never resolved.
    pub fn names(&self, domain: &str) -> bool {
        let domain = domain.strip_suffix('.').unwrap_or(domain);
        self.domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
    }
}

/// Where a Refer-To's URI points, when it points here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HereBy {
    /// One of the node's own SIP addresses.
    Address,
    /// One of the cluster's SIP domains: this cluster, the node not said.
    Domain,
}

/// Decides a REFER from the bridged `agent`'s phone. `refer_to`: the Refer-To header's value;
/// `ours`: the node's own SIP addresses (a Refer-To host must be one of their IPs, and its
/// port, when given, that address's port) and the cluster's domains (any port); `route`: the
/// dialplan's routing of a user part.
pub fn decide(
    refer_to: Option<&str>,
    ours: &Ours,
    agent: &str,
    route: impl Fn(&str) -> Route,
) -> Result<TransferTo, Refusal> {
    let target = parse_refer_to(refer_to.ok_or(Refusal::Malformed)?);
    if target.replaces.is_some() {
        return Err(Refusal::Attended);
    }
    let (uri, _) = uri_here(&target.uri, ours)?;
    let user = uri.user().unwrap_or_default();
    if user == agent {
        return Err(Refusal::ToSelf);
    }
    match route(user) {
        Route::Agent(a) => Ok(TransferTo::Agent(a)),
        Route::Queue(q) => Ok(TransferTo::Queue(q)),
        Route::Number(n) => Ok(TransferTo::Number(n)),
        Route::Hold | Route::Login { .. } | Route::Logout => {
            // Logged: a hot-desk code's PIN is hidden.
            let shown = crate::redact::dialled_pin(user.into());
            Err(Refusal::NotRoutable(shown.chars().take(64).collect()))
        }
    }
}

/// The Refer-To's URI (without its headers), parsed, when it is a SIP URI with a user part
/// naming this node: its host one of `ours`' IPs and its port, when given, that address's
/// port; or one of the cluster's domains, with any port. Any other host is refused
/// ([`Refusal::OtherHost`]), never resolved.
pub(super) fn uri_here(target: &str, ours: &Ours) -> Result<(Uri, HereBy), Refusal> {
    let uri = Uri::try_from(target).map_err(|_| Refusal::Malformed)?;
    let scheme = uri.scheme.as_ref().map(ToString::to_string);
    if !matches!(scheme.as_deref(), Some("sip" | "sips")) {
        return Err(Refusal::Malformed);
    }
    if uri.user().is_none_or(str::is_empty) {
        return Err(Refusal::Malformed);
    }
    let port = uri.host_with_port.port.as_ref().map(|p| p.value());
    let here = match uri.host() {
        Host::IpAddr(ip) => ours
            .addrs
            .iter()
            .any(|a| a.ip() == *ip && port.is_none_or(|p| p == a.port()))
            .then_some(HereBy::Address),
        Host::Domain(d) => ours.names(&d.0).then_some(HereBy::Domain),
    };
    match here {
        Some(by) => Ok((uri, by)),
        None => Err(Refusal::OtherHost(uri.host_with_port.to_string())),
    }
}

/// The REFER's Refer-To header value, if it has one.
pub(super) fn refer_to(req: &Request) -> Option<String> {
    req.headers.iter().find_map(|h| match h {
        Header::ReferTo(r) => Some(r.value().to_string()),
        _ => None,
    })
}

/// The node's own SIP addresses and the cluster's domains a Refer-To may name.
pub(super) fn our_addresses(cfg: &Config) -> Ours {
    let mut addrs = vec![cfg.sip_advertise()];
    addrs.extend(cfg.sip_tls_advertise());
    let domains = cfg
        .sip
        .domains
        .iter()
        .map(|d| d.to_ascii_lowercase())
        .collect();
    Ours { addrs, domains }
}

/// Answers the REFER `req` of the bridged `agent`'s phone: refused with its status (and a log
/// line), or accepted (202, then the `100 Trying` NOTIFY) with the target the caller goes to.
pub async fn refer(
    ctx: &CallCtx<'_>,
    kit: &Legs,
    agent: &str,
    dialog: &InviteDialog,
    req: &Request,
    handle: TransactionHandle,
) -> Option<TransferTo> {
    let refer_to = refer_to(req);
    let shown = |r: &str| -> String {
        crate::redact::dialled_pin(r.into())
            .chars()
            .take(256)
            .collect()
    };
    let decided = decide(
        refer_to.as_deref(),
        &our_addresses(&kit.cfg),
        agent,
        |user| dialplan::route(&kit.realtime, user),
    );
    let to = match decided {
        Ok(to) => to,
        Err(refusal) => {
            let refer_to = refer_to.as_deref().map(shown);
            info!(call_id = ctx.call_id, agent, refer_to = ?refer_to, %refusal, "transfer refused; the call stays bridged");
            if let Err(e) = handle.reply(StatusCode::from(refusal.status())).await {
                debug!(error = %e, "cannot refuse the agent's REFER");
            }
            return None;
        }
    };
    if let Err(e) = handle.reply(StatusCode::Accepted).await {
        debug!(error = %e, "cannot accept the agent's REFER");
        return None;
    }
    info!(call_id = ctx.call_id, agent, to = %to, "the agent transfers the call");
    notify(dialog, Progress::Trying).await;
    Some(to)
}

/// A NOTIFY of the REFER's implicit subscription (RFC 3515 §2.4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// `SIP/2.0 100 Trying`, the subscription active.
    Trying,
    /// `SIP/2.0 200 OK`, the subscription over: the caller was handed on.
    Done,
    /// A final failure with this status, the subscription over: the call stays as it was.
    Failed(u16),
}

impl Progress {
    /// The `message/sipfrag` body and the `Subscription-State` value.
    pub fn body_and_state(self) -> (String, &'static str) {
        let over = "terminated;reason=noresource";
        match self {
            Progress::Trying => ("SIP/2.0 100 Trying\r\n".into(), "active;expires=60"),
            Progress::Done => ("SIP/2.0 200 OK\r\n".into(), over),
            Progress::Failed(status) => (format!("SIP/2.0 {status} {}\r\n", reason(status)), over),
        }
    }
}

/// The reason phrase of a failure status in a sipfrag (RFC 3261 §21's, "Failed" otherwise).
fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        603 => "Decline",
        _ => "Failed",
    }
}

/// Sends the NOTIFY of `progress` in the agent's dialog, waiting a little for its answer (a
/// phone that does not answer does not hold the call up).
pub async fn notify(dialog: &InviteDialog, progress: Progress) {
    let (body, state) = progress.body_and_state();
    let headers = vec![
        Header::Event("refer".into()),
        Header::SubscriptionState(state.into()),
        Header::ContentType("message/sipfrag;version=2.0".into()),
    ];
    let sent = tokio::time::timeout(
        NOTIFY_WAIT,
        dialog.notify(Some(headers), Some(body.into_bytes())),
    )
    .await;
    match sent {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => debug!(error = %e, ?progress, "cannot send the transfer's NOTIFY"),
        Err(_) => debug!(?progress, "no answer to the transfer's NOTIFY"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(user: &str) -> Route {
        match user {
            "1002" | "1001" => Route::Agent(user.into()),
            "support" => Route::Queue(user.into()),
            "+15550100" => Route::Number(user.into()),
            "*12" => Route::Logout,
            _ => Route::Hold,
        }
    }

    #[test]
    fn refer_to_targets() {
        let ours = Ours {
            addrs: vec![
                "127.0.81.1:5060".parse().unwrap(),
                "127.0.81.1:5061".parse().unwrap(),
            ],
            domains: vec![],
        };
        let agent = |a: &str| Ok(TransferTo::Agent(a.into()));
        let cases: Vec<(Option<&str>, Result<TransferTo, Refusal>)> = vec![
            (Some("<sip:1002@127.0.81.1>"), agent("1002")),
            (Some("sip:1002@127.0.81.1:5060"), agent("1002")),
            (
                Some("\"Bob\" <sip:1002@127.0.81.1:5061;transport=tls>"),
                agent("1002"),
            ),
            (
                Some("<sip:support@127.0.81.1>"),
                Ok(TransferTo::Queue("support".into())),
            ),
            (
                Some("<sip:+15550100@127.0.81.1>"),
                Ok(TransferTo::Number("+15550100".into())),
            ),
            (
                Some("<sip:nobody@127.0.81.1>"),
                Err(Refusal::NotRoutable("nobody".into())),
            ),
            (
                Some("<sip:*12@127.0.81.1>"),
                Err(Refusal::NotRoutable("*12".into())),
            ),
            (Some("<sip:1001@127.0.81.1>"), Err(Refusal::ToSelf)),
            (
                Some("<sip:1002@192.0.2.9>"),
                Err(Refusal::OtherHost("192.0.2.9".into())),
            ),
            (
                Some("<sip:1002@127.0.81.1:5999>"),
                Err(Refusal::OtherHost("127.0.81.1:5999".into())),
            ),
            (
                Some("<sip:1002@127.0.81.1?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>"),
                Err(Refusal::Attended),
            ),
            (Some("<tel:+15550100>"), Err(Refusal::Malformed)),
            (Some("<sip:127.0.81.1>"), Err(Refusal::Malformed)),
            (Some("<>"), Err(Refusal::Malformed)),
            (Some("garbage \u{1F600} <<"), Err(Refusal::Malformed)),
            (None, Err(Refusal::Malformed)),
        ];
        for (refer_to, want) in cases {
            assert_eq!(decide(refer_to, &ours, "1001", route), want, "{refer_to:?}");
        }
        assert_eq!(
            decide(Some("<sip:1002@pbx.example.com>"), &ours, "1001", route),
            Err(Refusal::OtherHost("pbx.example.com".into())),
            "without domains configured, a name is another host"
        );
        // A hot-desk code with its PIN is refused, and the refusal (logged) hides the PIN.
        let login = |u: &str| match u {
            u if u.starts_with("*11") => Route::Login {
                agent: None,
                pin: None,
            },
            u => route(u),
        };
        let got = decide(Some("<sip:*11*1001*4321@127.0.81.1>"), &ours, "1001", login);
        match got {
            Err(Refusal::NotRoutable(shown)) => {
                assert!(
                    shown.starts_with("*11*1001*") && !shown.contains("4321"),
                    "{shown}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refer_to_the_cluster_domains() {
        let ours = Ours {
            addrs: vec!["127.0.81.1:5060".parse().unwrap()],
            domains: vec!["pbx.example.com".into(), "callcentre".into()],
        };
        let agent = |a: &str| Ok(TransferTo::Agent(a.into()));
        let cases: Vec<(Option<&str>, Result<TransferTo, Refusal>)> = vec![
            (Some("<sip:1002@127.0.81.1>"), agent("1002")),
            // The cluster's domains, with any port, any case, a trailing dot.
            (Some("<sip:1002@pbx.example.com>"), agent("1002")),
            (Some("sip:1002@PBX.Example.COM:5080"), agent("1002")),
            (
                Some("<sip:1002@pbx.example.com.;transport=tcp>"),
                agent("1002"),
            ),
            (
                Some("<sips:support@pbx.example.com:5061>"),
                Ok(TransferTo::Queue("support".into())),
            ),
            (Some("<sip:1002@callcentre>"), agent("1002")),
            (Some("<sip:1001@pbx.example.com>"), Err(Refusal::ToSelf)),
            (
                Some("<sip:nobody@pbx.example.com>"),
                Err(Refusal::NotRoutable("nobody".into())),
            ),
            // Other names, a domain's sub- or super-domain: refused, never resolved.
            (
                Some("<sip:1002@evil.example.com>"),
                Err(Refusal::OtherHost("evil.example.com".into())),
            ),
            (
                Some("<sip:1002@x.pbx.example.com>"),
                Err(Refusal::OtherHost("x.pbx.example.com".into())),
            ),
            (
                Some("<sip:1002@example.com>"),
                Err(Refusal::OtherHost("example.com".into())),
            ),
            (
                Some("<sip:1002@pbx.example.com.evil>"),
                Err(Refusal::OtherHost("pbx.example.com.evil".into())),
            ),
            (
                Some("<sip:1002@pbx.example.com?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>"),
                Err(Refusal::Attended),
            ),
        ];
        for (refer_to, want) in cases {
            assert_eq!(decide(refer_to, &ours, "1001", route), want, "{refer_to:?}");
        }
    }

    #[test]
    fn refusal_statuses_and_details() {
        assert_eq!(Refusal::Malformed.status(), 400);
        assert_eq!(Refusal::OtherHost("x".into()).status(), 403);
        assert_eq!(Refusal::ToSelf.status(), 403);
        assert_eq!(Refusal::NotRoutable("x".into()).status(), 404);
        assert_eq!(Refusal::Attended.status(), 501);
        assert_eq!(TransferTo::Agent("1002".into()).to_string(), "agent:1002");
        assert_eq!(
            TransferTo::Queue("support".into()).to_string(),
            "queue:support"
        );
        assert_eq!(
            TransferTo::Number("+1555".into()).to_string(),
            "number:+1555"
        );
        assert_eq!(
            Progress::Trying.body_and_state(),
            ("SIP/2.0 100 Trying\r\n".to_string(), "active;expires=60")
        );
        assert_eq!(Progress::Done.body_and_state().0, "SIP/2.0 200 OK\r\n");
        let over = "terminated;reason=noresource";
        for (status, line) in [
            (481, "SIP/2.0 481 Call/Transaction Does Not Exist\r\n"),
            (408, "SIP/2.0 408 Request Timeout\r\n"),
            (403, "SIP/2.0 403 Forbidden\r\n"),
            (599, "SIP/2.0 599 Failed\r\n"),
        ] {
            let want = (line.to_string(), over);
            assert_eq!(Progress::Failed(status).body_and_state(), want);
        }
    }
}
