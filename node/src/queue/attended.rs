//! Attended transfer from the agent's phone (RFC 3891 Replaces in a REFER's Refer-To, as RFC
//! 5589 §7 describes it). Agent 1's phone holds its queued call A, dials agent 2 from the same
//! phone (call B, a direct call through the dialplan), then sends REFER in call A's agent
//! dialog with `Refer-To: <sip:2002@node?Replaces=CALLID-B;to-tag=NODE-TAG;from-tag=PHONE-TAG>`:
//! the caller of A is to be bridged to agent 2's leg of B, and both of agent 1's dialogs end.
//!
//! Calls whose caller is a phone (authenticated by digest) are listed in a node-wide
//! [`Registry`] by their phone-facing dialog, with the device that placed them and whether they
//! are bridged. [`decide`], a pure function, parses the Replaces and matches it against that
//! listing: only the phone that owns call A may name its own call B, never another phone's
//! call. Accepted, call A's task asks call B's task, through the channel the registry holds,
//! to hand over its bridged leg ([`Registry::take_over`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use callfleet_store::{HangupCause, HangupSide};
use rsipstack::dialog::dialog::TransactionHandle;
use rsipstack::dialog::DialogId;
use rsipstack::sip::event_packages::parse_refer_to;
use rsipstack::sip::{Request, StatusCode};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info};

use super::legs::Bridged;
use super::transfer::{self, uri_here, Ours, Refusal};
use super::xreplaces::{aim, ask_others, Aim};
use crate::media::session::{bridge, Mode};
use crate::node::Legs;
use crate::sip::call::Ended;
use crate::sip::ctx::CallCtx;

/// How long a call waits for its phone's other call to hand over its leg.
const HANDOVER_WAIT: Duration = Duration::from_secs(2);

/// Longest Replaces value taken (a Call-ID and two tags; more is hostile).
const MAX_REPLACES: usize = 512;

/// A parsed RFC 3891 Replaces value: `call-id;to-tag=T;from-tag=F[;early-only]`, with the tags
/// as the node sees them (to-tag: the node's tag in the named dialog; from-tag: the phone's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaces {
    pub call_id: String,
    pub to_tag: String,
    pub from_tag: String,
    /// Only an early (not yet answered) dialog may be replaced.
    pub early_only: bool,
}

impl Replaces {
    /// Parses a Replaces value (already percent-decoded from the Refer-To's headers).
    pub fn parse(value: &str) -> Result<Replaces, Refusal> {
        if value.len() > MAX_REPLACES {
            return Err(Refusal::Malformed);
        }
        let mut parts = value.split(';').map(str::trim);
        let call_id = parts.next().unwrap_or_default();
        let token = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic());
        if !token(call_id) {
            return Err(Refusal::Malformed);
        }
        let (mut to_tag, mut from_tag, mut early_only) = (None, None, false);
        for part in parts {
            let (name, value) = match part.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (part, None),
            };
            let slot = if name.eq_ignore_ascii_case("to-tag") {
                &mut to_tag
            } else if name.eq_ignore_ascii_case("from-tag") {
                &mut from_tag
            } else {
                // `early-only`, or a generic parameter (ignored).
                early_only |= name.eq_ignore_ascii_case("early-only");
                continue;
            };
            match value {
                Some(v) if token(v) && slot.is_none() => *slot = Some(v.to_string()),
                _ => return Err(Refusal::Malformed),
            }
        }
        Ok(Replaces {
            call_id: call_id.to_string(),
            to_tag: to_tag.ok_or(Refusal::Malformed)?,
            from_tag: from_tag.ok_or(Refusal::Malformed)?,
            early_only,
        })
    }

    /// The named dialog as the node keys it: its local tag is the Replaces' to-tag.
    pub fn dialog(&self) -> DialogId {
        DialogId {
            call_id: self.call_id.clone(),
            local_tag: self.to_tag.clone(),
            remote_tag: self.from_tag.clone(),
        }
    }
}

/// What the registry says of a listed call, for [`decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The phone (device) that placed the call, as it authenticated.
    pub device: String,
    /// Whether its caller is bridged to a leg that could be handed over.
    pub bridged: bool,
}

/// Decides a REFER with Replaces from `phone` (the device bridged on call A's agent leg):
/// the dialog of the call whose leg the caller takes over, or why not. `lookup`: the
/// registry's listing ([`Registry::candidate`]).
pub fn decide(
    refer_to: Option<&str>,
    ours: &Ours,
    phone: &str,
    lookup: impl Fn(&DialogId) -> Option<Candidate>,
) -> Result<DialogId, Refusal> {
    let target = parse_refer_to(refer_to.ok_or(Refusal::Malformed)?);
    let replaces = target.replaces.ok_or(Refusal::Malformed)?;
    uri_here(&target.uri, ours)?;
    let replaces = Replaces::parse(&replaces)?;
    judge(&replaces, phone, lookup)
}

/// Whether `replaces`, asked for by `phone`, names a call of this node that phone placed and
/// whose leg may be taken (pure): its dialog, or why not. Used by [`decide`] and, for an
/// INVITE with Replaces from another node, by [`super::xreplaces`].
pub fn judge(
    replaces: &Replaces,
    phone: &str,
    lookup: impl Fn(&DialogId) -> Option<Candidate>,
) -> Result<DialogId, Refusal> {
    let id = replaces.dialog();
    let found = lookup(&id).ok_or(Refusal::NoSuchDialog)?;
    // Checked first: nothing more is said about another phone's call.
    if found.device != phone {
        return Err(Refusal::OtherPhone);
    }
    if replaces.early_only && found.bridged {
        return Err(Refusal::EarlyOnly);
    }
    if !found.bridged {
        return Err(Refusal::NotBridged);
    }
    Ok(id)
}

/// A request to a listed call's task: hand over its bridged leg on `reply` (or drop it to say
/// no), end its own caller side, and not end the handed leg.
#[derive(Debug)]
pub struct Takeover<T> {
    /// The Call-ID of the call taking the leg (logged by the call handing it).
    pub by: String,
    pub reply: oneshot::Sender<T>,
}

struct Entry<T> {
    device: String,
    bridged: bool,
    tx: mpsc::UnboundedSender<Takeover<T>>,
}

/// This node's calls placed by phones, by their phone-facing dialog; `T` is what a call hands
/// over (its bridged leg). A std mutex: map operations only, never held across an `.await`.
pub struct Registry<T> {
    calls: Arc<Mutex<HashMap<DialogId, Entry<T>>>>,
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Registry {
            calls: Arc::default(),
        }
    }
}

impl<T> Registry<T> {
    fn lock(&self) -> MutexGuard<'_, HashMap<DialogId, Entry<T>>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lists a call of `device` by its phone-facing `dialog` (not bridged yet); takeover
    /// requests arrive on the returned channel. Unlisted when the [`Listed`] is dropped.
    pub fn list(
        &self,
        dialog: DialogId,
        device: &str,
    ) -> (Listed<T>, mpsc::UnboundedReceiver<Takeover<T>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let entry = Entry {
            device: device.to_string(),
            bridged: false,
            tx,
        };
        self.lock().insert(dialog.clone(), entry);
        let listed = Listed {
            calls: self.calls.clone(),
            dialog,
        };
        (listed, rx)
    }

    /// What the registry says of `dialog`, if it is listed.
    pub fn candidate(&self, dialog: &DialogId) -> Option<Candidate> {
        self.lock().get(dialog).map(|e| Candidate {
            device: e.device.clone(),
            bridged: e.bridged,
        })
    }

    /// Asks the call of `dialog` (placed by `device`, bridged) to hand its leg over to call
    /// `by`; `None` when it is not (or no longer) such a call. Its answer comes on the
    /// receiver (an error if the call ended or refused meanwhile).
    pub fn take_over(
        &self,
        dialog: &DialogId,
        device: &str,
        by: &str,
    ) -> Option<oneshot::Receiver<T>> {
        let calls = self.lock();
        let entry = calls
            .get(dialog)
            .filter(|e| e.device == device && e.bridged)?;
        let (reply, rx) = oneshot::channel();
        let asked = Takeover {
            by: by.to_string(),
            reply,
        };
        entry.tx.send(asked).ok()?;
        Some(rx)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A call's place in the [`Registry`]; dropped, the call is unlisted.
pub struct Listed<T> {
    calls: Arc<Mutex<HashMap<DialogId, Entry<T>>>>,
    dialog: DialogId,
}

impl<T> Listed<T> {
    /// Whether the call's caller is bridged (a leg to hand over) now.
    pub fn set_bridged(&self, bridged: bool) {
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = calls.get_mut(&self.dialog) {
            e.bridged = bridged;
        }
    }
}

impl<T> Drop for Listed<T> {
    fn drop(&mut self) {
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        calls.remove(&self.dialog);
    }
}

/// Whether the REFER's Refer-To carries Replaces (an attended transfer).
pub fn is_attended(req: &Request) -> bool {
    transfer::refer_to(req).is_some_and(|r| parse_refer_to(&r).replaces.is_some())
}

/// Answers the REFER with Replaces `req` from the phone of the bridged leg `b`: refused with
/// its status (and a log line), or accepted (202, then the `100 Trying` NOTIFY) with the leg
/// the named call handed over. A Refer-To naming another live cluster node, or one of the
/// cluster's domains when the named call is not on this node, goes to
/// [`super::xnode::refer`].
pub(super) async fn refer(
    ctx: &CallCtx<'_>,
    kit: &Legs,
    b: &Bridged,
    req: &Request,
    handle: TransactionHandle,
) -> Option<Bridged> {
    let registry = &kit.queue.replaceable;
    let refer_to = transfer::refer_to(req);
    let ours = transfer::our_addresses(&kit.cfg);
    let live = super::xnode::live_nodes(&kit.cluster.balancer);
    let aimed = aim(refer_to.as_deref(), &ours, &live);
    // A call of this phone on another live node: that node is asked (`xnode`).
    if let Ok(Aim::Node(remote)) = aimed {
        return super::xnode::refer(ctx, kit, b, handle, vec![remote]).await;
    }
    let decided = decide(refer_to.as_deref(), &ours, &b.device, |d| {
        registry.candidate(d)
    });
    // A cluster domain and no such call here: the other live nodes are asked in turn.
    if let Ok(Aim::Cluster(others)) = aimed {
        if ask_others(&decided) && !others.is_empty() {
            return super::xnode::refer(ctx, kit, b, handle, others).await;
        }
    }
    let handed = match decided {
        Ok(dialog) => take_from(ctx, kit, b, &dialog).await,
        Err(refusal) => Err(refusal),
    };
    let next = match handed {
        Ok(next) => next,
        Err(refusal) => {
            info!(call_id = ctx.call_id, agent = %b.ext, device = %b.device, %refusal, "attended transfer refused; the call stays bridged");
            if let Err(e) = handle.reply(StatusCode::from(refusal.status())).await {
                debug!(error = %e, "cannot refuse the agent's REFER");
            }
            return None;
        }
    };
    // The leg is this call's now, whatever becomes of the REFER's answer.
    if let Err(e) = handle.reply(StatusCode::Accepted).await {
        debug!(error = %e, "cannot accept the agent's REFER");
    }
    info!(call_id = ctx.call_id, agent = %b.ext, to = %next.ext, "the agent's phone hands the caller to its other call");
    transfer::notify(&b.dialog, transfer::Progress::Trying).await;
    Some(next)
}

/// Asks the call of `dialog` (on this node) to hand its bridged leg over to this call.
async fn take_from(
    ctx: &CallCtx<'_>,
    kit: &Legs,
    b: &Bridged,
    dialog: &DialogId,
) -> Result<Bridged, Refusal> {
    let registry = &kit.queue.replaceable;
    match registry.take_over(dialog, &b.device, ctx.call_id) {
        Some(rx) => tokio::time::timeout(HANDOVER_WAIT, rx)
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or(Refusal::NoSuchDialog),
        None => Err(Refusal::NoSuchDialog),
    }
}

/// The caller bridged to `next`, the leg its phone's other call handed over: media, the
/// queue entry's agent (the machine opens the listeners and recorder again).
pub(super) async fn take_leg(
    ctx: &CallCtx<'_>,
    kit: &Legs,
    next: Bridged,
    entry: Option<i64>,
) -> Bridged {
    bridge(ctx.media, &next.leg);
    if let Some(entry) = entry {
        if let Err(e) = kit.store.bridge_entry(entry, &next.ext).await {
            debug!(error = %e, "cannot mark the queue entry bridged to the new agent");
        }
    }
    next
}

/// Hands this call's bridged leg `b` to the call that asked (`asked`): the leg leaves this
/// call's media, listeners and recording, and the phone that placed this call gets BYE; how
/// this call ended, or `Err(b)` back (bridged again) when the asking call is gone.
pub(super) async fn hand_over(
    ctx: &CallCtx<'_>,
    kit: &Legs,
    mut b: Bridged,
    asked: Takeover<Bridged>,
    queue: Option<&str>,
) -> Result<Ended, Bridged> {
    ctx.media.set_mode(Mode::Silence);
    drop(b.listenable.take());
    if let Some(active) = b.recording.take() {
        crate::recording::finish(active).await;
    }
    let (ext, by) = (b.ext.clone(), asked.by);
    if let Err(mut b) = asked.reply.send(b) {
        debug!(call_id = ctx.call_id, by = %by, "the call asking for the leg is gone; the leg stays");
        bridge(ctx.media, &b.leg);
        b.listenable = Some(crate::listen::offer(
            ctx,
            &kit.listen,
            &b.leg,
            &b.ext,
            queue,
        ));
        return Err(b);
    }
    info!(call_id = ctx.call_id, agent = %ext, by = %by, "leg handed to the phone's other call (attended transfer); this call ends");
    if let Err(e) = ctx.dialog.bye().await {
        debug!(error = %e, "cannot send BYE to the phone");
    }
    Ok(Ended::new(HangupCause::Replaced, HangupSide::Caller))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(call_id: &str, local: &str, remote: &str) -> DialogId {
        DialogId {
            call_id: call_id.into(),
            local_tag: local.into(),
            remote_tag: remote.into(),
        }
    }

    #[test]
    fn replaces_values() {
        let r = |c: &str, t: &str, f: &str, e: bool| {
            Ok(Replaces {
                call_id: c.into(),
                to_tag: t.into(),
                from_tag: f.into(),
                early_only: e,
            })
        };
        let cases: Vec<(&str, Result<Replaces, Refusal>)> = vec![
            ("b@phone;to-tag=N;from-tag=P", r("b@phone", "N", "P", false)),
            ("b@phone;from-tag=P;to-tag=N", r("b@phone", "N", "P", false)),
            (
                " b ; To-Tag = N ; FROM-TAG=P ; early-only",
                r("b", "N", "P", true),
            ),
            ("b;to-tag=N;from-tag=P;x=y", r("b", "N", "P", false)),
            ("b;to-tag=N", Err(Refusal::Malformed)),
            ("b;from-tag=P", Err(Refusal::Malformed)),
            (";to-tag=N;from-tag=P", Err(Refusal::Malformed)),
            ("b;to-tag=;from-tag=P", Err(Refusal::Malformed)),
            ("b;to-tag;from-tag=P", Err(Refusal::Malformed)),
            ("b;to-tag=N;to-tag=M;from-tag=P", Err(Refusal::Malformed)),
            ("b c;to-tag=N;from-tag=P", Err(Refusal::Malformed)),
            ("b;to-tag=N\u{1F600};from-tag=P", Err(Refusal::Malformed)),
            ("", Err(Refusal::Malformed)),
        ];
        for (value, want) in cases {
            assert_eq!(Replaces::parse(value), want, "{value:?}");
        }
        let long = format!("{};to-tag=N;from-tag=P", "x".repeat(MAX_REPLACES));
        assert_eq!(Replaces::parse(&long), Err(Refusal::Malformed));
        let parsed = Replaces::parse("b@phone;to-tag=N;from-tag=P").unwrap();
        assert_eq!(parsed.dialog(), id("b@phone", "N", "P"));
    }

    /// The Replaces value of call B of phone "p1" (bridged), as a Refer-To header carries it.
    const B: &str = "b%40p1%3Bto-tag%3DN%3Bfrom-tag%3DP";

    /// A Refer-To naming extension 2002 at `host`, with `replaces` (escaped).
    fn refer(host: &str, replaces: &str) -> Option<String> {
        Some(format!("<sip:2002@{host}?Replaces={replaces}>"))
    }

    /// What phone "p1" asking with `refer_to` is answered, on a node at 127.0.84.1:5060 of
    /// the cluster `pbx.example.com` that holds call B of "p1" (bridged), a call of "p2"
    /// (bridged) and a call of "p1" still ringing.
    fn decide_for_p1(refer_to: Option<&str>) -> Result<DialogId, Refusal> {
        let ours = Ours {
            addrs: vec!["127.0.84.1:5060".parse().unwrap()],
            domains: vec!["pbx.example.com".into()],
        };
        let lookup = |d: &DialogId| match (
            d.call_id.as_str(),
            d.local_tag.as_str(),
            d.remote_tag.as_str(),
        ) {
            ("b@p1", "N", "P") => Some(Candidate {
                device: "p1".into(),
                bridged: true,
            }),
            ("c@p2", "N2", "P2") => Some(Candidate {
                device: "p2".into(),
                bridged: true,
            }),
            ("r@p1", "N3", "P3") => Some(Candidate {
                device: "p1".into(),
                bridged: false,
            }),
            _ => None,
        };
        decide(refer_to, &ours, "p1", lookup)
    }

    /// Checks each Refer-To of `cases` against what it must be answered.
    fn check(cases: Vec<(Option<String>, Result<DialogId, Refusal>)>) {
        for (refer_to, want) in cases {
            assert_eq!(decide_for_p1(refer_to.as_deref()), want, "{refer_to:?}");
        }
    }

    /// Only a bridged call of the asking phone, named by its exact dialog, may be replaced.
    #[test]
    fn replaces_takes_only_a_bridged_call_of_the_same_phone() {
        check(vec![
            (refer("127.0.84.1", B), Ok(id("b@p1", "N", "P"))),
            // The tags swapped: not the dialog as the node keys it.
            (
                refer("127.0.84.1", "b%40p1%3Bto-tag%3DP%3Bfrom-tag%3DN"),
                Err(Refusal::NoSuchDialog),
            ),
            (
                refer("127.0.84.1", "zz%3Bto-tag%3DN%3Bfrom-tag%3DP"),
                Err(Refusal::NoSuchDialog),
            ),
            // Another phone's call: refused, whatever its state.
            (
                refer("127.0.84.1", "c%40p2%3Bto-tag%3DN2%3Bfrom-tag%3DP2"),
                Err(Refusal::OtherPhone),
            ),
            (
                refer("127.0.84.1", "r%40p1%3Bto-tag%3DN3%3Bfrom-tag%3DP3"),
                Err(Refusal::NotBridged),
            ),
            (
                refer(
                    "127.0.84.1",
                    "b%40p1%3Bto-tag%3DN%3Bfrom-tag%3DP%3Bearly-only",
                ),
                Err(Refusal::EarlyOnly),
            ),
        ]);
    }

    /// The Refer-To must name this node (its address, with or without the port) or the
    /// cluster's domain (any port); any other host is refused by name.
    #[test]
    fn replaces_names_this_node_or_the_cluster() {
        check(vec![
            (refer("127.0.84.1:5060", B), Ok(id("b@p1", "N", "P"))),
            (refer("pbx.example.com", B), Ok(id("b@p1", "N", "P"))),
            (
                refer("pbx.example.com:5080", "zz%3Bto-tag%3DN%3Bfrom-tag%3DP"),
                Err(Refusal::NoSuchDialog),
            ),
            (
                refer("pbx.example.com", "c%40p2%3Bto-tag%3DN2%3Bfrom-tag%3DP2"),
                Err(Refusal::OtherPhone),
            ),
            (
                refer("192.0.2.9", B),
                Err(Refusal::OtherHost("192.0.2.9".into())),
            ),
            (
                refer("pbx.example.org", B),
                Err(Refusal::OtherHost("pbx.example.org".into())),
            ),
        ]);
    }

    /// A Refer-To without a whole Replaces in a SIP URI, or none at all, is malformed.
    #[test]
    fn replaces_missing_or_incomplete_is_malformed() {
        check(vec![
            (
                refer("127.0.84.1", "b%40p1%3Bto-tag%3DN"),
                Err(Refusal::Malformed),
            ),
            (
                Some("<sip:2002@127.0.84.1>".into()),
                Err(Refusal::Malformed),
            ),
            (
                Some(format!("<tel:2002?Replaces={B}>")),
                Err(Refusal::Malformed),
            ),
            (None, Err(Refusal::Malformed)),
        ]);
    }

    /// Each refusal answers the REFER with its status.
    #[test]
    fn refusals_answer_with_their_status() {
        assert_eq!(Refusal::NoSuchDialog.status(), 481);
        assert_eq!(Refusal::OtherPhone.status(), 403);
        assert_eq!(Refusal::NotBridged.status(), 603);
        assert_eq!(Refusal::EarlyOnly.status(), 486);
    }

    #[tokio::test]
    async fn registry_lists_and_hands_over() {
        let reg: Registry<u32> = Registry::default();
        let b = id("b@p1", "N", "P");
        let (listed, mut asks) = reg.list(b.clone(), "p1");
        assert_eq!(
            reg.candidate(&b),
            Some(Candidate {
                device: "p1".into(),
                bridged: false
            })
        );
        // Not bridged yet: nothing to take.
        assert!(reg.take_over(&b, "p1", "a").is_none());
        listed.set_bridged(true);
        // Another phone may not take it, nor a dialog not listed be taken.
        assert!(reg.take_over(&b, "p2", "a").is_none());
        assert!(reg.take_over(&id("b@p1", "P", "N"), "p1", "a").is_none());
        let answer = reg.take_over(&b, "p1", "a").expect("asked");
        let asked = asks.recv().await.expect("request");
        assert_eq!(asked.by, "a");
        asked.reply.send(7).expect("reply");
        assert_eq!(answer.await.ok(), Some(7));
        // The call ends: unlisted, and a late request gets nothing.
        drop(asks);
        assert!(reg.take_over(&b, "p1", "a").is_none());
        drop(listed);
        assert!(reg.is_empty());
        assert_eq!(reg.candidate(&b), None);
    }
}
