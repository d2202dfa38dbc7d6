//! The metrics of the node's defences against guessing and spoofing (see `docs/security.md`):
//!
//! | metric                            | type    | labels                               |
//! |-----------------------------------|---------|--------------------------------------|
//! | `callfleet_auth_failures_total`   | counter | `kind` ([`AuthKind`])                |
//! | `callfleet_auth_bans_total`       | counter | `kind`, `scope` ([`BanScope`])       |
//! | `callfleet_auth_refused_total`    | counter | `kind`                               |
//! | `callfleet_auth_busy_total`       | counter | `kind`, `outcome` ([`BusyOutcome`])  |
//! | `callfleet_rtp_ignored_total`     | counter |                                      |
//! | `callfleet_voicemail_full_total`  | counter |                                      |
//!
//! Failures are wrong credentials (digest passwords of REGISTER and INVITE, hot-desk PINs);
//! a ban starts when a source or a subject (extension, agent) had too many, and counts once;
//! refused requests are those turned away unchecked while a ban runs. A request that found
//! as many checks in flight as failures left (busy, nothing banned) waits for a slot and is
//! counted in `auth_busy` by how that ended: `admitted` (checked after all) or `refused`
//! (still busy); one whose wait ended in a ban counts in `auth_refused` only. So each
//! request turned away unchecked counts once, by reason.

use std::fmt;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// What was guessed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthKind {
    /// A phone's digest password, on REGISTER.
    Register,
    /// A phone's digest password, on its own INVITE (`407` challenge).
    Invite,
    /// An agent's hot-desk PIN.
    Pin,
}

impl AuthKind {
    /// Every kind, in a fixed order.
    pub const ALL: [AuthKind; 3] = [AuthKind::Register, AuthKind::Invite, AuthKind::Pin];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthKind::Register => "register",
            AuthKind::Invite => "invite",
            AuthKind::Pin => "pin",
        }
    }
}

/// What a ban is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BanScope {
    /// The source: an IP address (phones' passwords) or a phone (PINs).
    Source,
    /// The extension or agent guessed at.
    Subject,
}

impl BanScope {
    /// Every scope, in a fixed order.
    pub const ALL: [BanScope; 2] = [BanScope::Source, BanScope::Subject];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            BanScope::Source => "source",
            BanScope::Subject => "subject",
        }
    }
}

/// How a request that found the failure budget busy with checks in flight fared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BusyOutcome {
    /// It waited and a slot freed: it was checked.
    Admitted,
    /// Still busy when the wait ran out (or it could not wait): turned away unchecked
    /// (a `503` for phones).
    Refused,
}

impl BusyOutcome {
    /// Every outcome, in a fixed order.
    pub const ALL: [BusyOutcome; 2] = [BusyOutcome::Admitted, BusyOutcome::Refused];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            BusyOutcome::Admitted => "admitted",
            BusyOutcome::Refused => "refused",
        }
    }
}

impl EncodeLabelValue for BusyOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        fmt::Write::write_str(encoder, self.as_str())
    }
}

impl EncodeLabelValue for AuthKind {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        fmt::Write::write_str(encoder, self.as_str())
    }
}

impl EncodeLabelValue for BanScope {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        fmt::Write::write_str(encoder, self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabels {
    kind: AuthKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BusyLabels {
    kind: AuthKind,
    outcome: BusyOutcome,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BanLabels {
    kind: AuthKind,
    scope: BanScope,
}

/// The counters; every label set exists from the start (exported at 0).
#[derive(Debug, Default)]
pub struct GuardMetrics {
    failures: Family<KindLabels, Counter>,
    bans: Family<BanLabels, Counter>,
    refused: Family<KindLabels, Counter>,
    busy: Family<BusyLabels, Counter>,
    rtp_ignored: Counter,
    voicemail_full: Counter,
    /// Every ban started, whatever its labels (what the alert on bans reads).
    bans_total: std::sync::atomic::AtomicU64,
}

impl GuardMetrics {
    pub(super) fn new() -> GuardMetrics {
        let g = GuardMetrics::default();
        for kind in AuthKind::ALL {
            g.failures.get_or_create_owned(&KindLabels { kind });
            g.refused.get_or_create_owned(&KindLabels { kind });
            for scope in BanScope::ALL {
                g.bans.get_or_create_owned(&BanLabels { kind, scope });
            }
            for outcome in BusyOutcome::ALL {
                g.busy.get_or_create_owned(&BusyLabels { kind, outcome });
            }
        }
        g
    }

    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "auth_failures",
            "Wrong credentials (phone passwords, hot-desk PINs), by kind",
            self.failures.clone(),
        );
        r.register(
            "auth_bans",
            "Bans started after too many wrong credentials, by kind and scope",
            self.bans.clone(),
        );
        r.register(
            "auth_refused",
            "Requests refused unchecked while a ban runs, by kind",
            self.refused.clone(),
        );
        r.register(
            "auth_busy",
            "Requests that found as many checks in flight as failures left, by kind and by \
             whether a slot freed in time (admitted) or not (refused)",
            self.busy.clone(),
        );
        r.register(
            "rtp_ignored",
            "RTP packets ignored because they came from an address the call did not agree on",
            self.rtp_ignored.clone(),
        );
        r.register(
            "voicemail_full",
            "Callers who could not leave a message because the mailbox was over its quota",
            self.voicemail_full.clone(),
        );
    }

    /// Counts one wrong password or PIN.
    pub fn auth_failure(&self, kind: AuthKind) {
        self.failures.get_or_create(&KindLabels { kind }).inc();
    }

    /// Counts one ban starting.
    pub fn auth_ban(&self, kind: AuthKind, scope: BanScope) {
        self.bans.get_or_create(&BanLabels { kind, scope }).inc();
        self.bans_total
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Bans started since this node did, of every kind and scope.
    pub fn bans_total(&self) -> u64 {
        self.bans_total.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Counts one request refused because of a ban.
    pub fn auth_refused(&self, kind: AuthKind) {
        self.refused.get_or_create(&KindLabels { kind }).inc();
    }

    /// Counts one request that found the failure budget busy, by how its wait ended.
    pub fn auth_busy(&self, kind: AuthKind, outcome: BusyOutcome) {
        self.busy.get_or_create(&BusyLabels { kind, outcome }).inc();
    }

    /// The counter of ignored RTP packets, for media legs to increment directly.
    pub fn rtp_ignored(&self) -> Counter {
        self.rtp_ignored.clone()
    }

    /// Counts one caller turned away by a full mailbox.
    pub fn voicemail_full(&self) {
        self.voicemail_full.inc();
    }
}

#[cfg(test)]
mod tests;
