//! Who sends what, and the `alerts` rows every panel shows.
//!
//! **Cluster-wide alerts** (a node down, a queue's service level, a silent carrier) are seen
//! by every node at about the same time. Each evaluation, for every such alert its rules see
//! firing, a node *claims* the lockd lease `alerts:<kind>:<subject>` (taking it, or renewing
//! it when it holds it). Only the holder acts: it inserts the alert's row if absent, and the
//! insert's row count says whether to send it (`INSERT .. ON CONFLICT DO NOTHING`). When the
//! alert is no longer tracked (resolved) while its row is there, the holder (or, once the
//! lease ran out, any node that does not see it firing) deletes the row, and the delete's row
//! count says whether to send the end; the holder then lets the lease run out rather than
//! give it back, so that a node whose view still shows the alert firing cannot raise it again
//! right after its end. A holder that dies stops renewing: another node takes
//! the lease over and finds the row, so nothing is sent twice. Without lockd, the rows alone
//! keep every raise and end to one message (the node that observed it acts).
//!
//! **Node-local alerts** are sent by their node as the engine says; their rows are mirrored
//! into SQL (inserted, refreshed, deleted) for the panel, retried every evaluation while the
//! database is down.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use callfleet_lockd::{Acquire, Lease, LockClient};
use callfleet_store::{ActiveAlert, AlertKind, Store};
use tracing::{debug, warn};

use super::deliver::{Notice, Status};
use super::engine::{Change, Engine, Firing, Key, Transition};

/// The lease key of an alert: `alerts:<kind>:<subject>`, the subject's bytes outside the
/// lease key alphabet written `=XX` (so `=` itself too); past 200 bytes, a digest.
pub fn lease_key(key: &Key) -> String {
    let mut out = format!("alerts:{}:", key.kind);
    for b in key.subject.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':' | b'@' | b'+') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    if out.len() > 200 {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(key.subject.as_bytes());
        out = format!("alerts:{}:={}", key.kind, hex::encode(digest));
    }
    out
}

/// What a claim on an alert's lease found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This node holds the lease.
    Mine,
    /// Another node does.
    Other,
    /// No lockd answered: the SQL rows alone decide.
    NoLockd,
}

/// The leases this node holds on cluster-wide alerts, and the SQL side of sending.
pub struct Cluster {
    locks: LockClient,
    store: Store,
    /// This node's name.
    me: String,
    /// This run of the node (`name@generation`): a lease of an earlier run is not ours.
    owner: String,
    ttl: Duration,
    held: HashMap<Key, Lease>,
    lockd_failing: bool,
}

impl Cluster {
    /// `ttl`: how long a lease outlives a holder that stopped renewing (a few evaluations).
    pub fn new(locks: LockClient, store: Store, me: &str, generation: i64, ttl: Duration) -> Self {
        Self {
            locks,
            store,
            me: me.to_owned(),
            owner: format!("{me}@{generation}"),
            ttl,
            held: HashMap::new(),
            lockd_failing: false,
        }
    }

    /// Takes or renews the lease of `key`.
    pub async fn claim(&mut self, key: &Key) -> Claim {
        if let Some(lease) = self.held.get(key) {
            match self.locks.renew(lease, self.ttl).await {
                Ok(true) => return self.lockd_ok(Claim::Mine),
                Ok(false) => {
                    self.held.remove(key);
                }
                Err(e) => return self.lockd_error(&e),
            }
        }
        match self
            .locks
            .try_acquire(&lease_key(key), &self.owner, self.ttl)
            .await
        {
            Ok(Acquire::Granted(lease)) => {
                self.held.insert(key.clone(), lease);
                self.lockd_ok(Claim::Mine)
            }
            Ok(Acquire::Held { .. }) => self.lockd_ok(Claim::Other),
            Err(e) => self.lockd_error(&e),
        }
    }

    fn lockd_ok(&mut self, claim: Claim) -> Claim {
        if self.lockd_failing {
            self.lockd_failing = false;
            debug!("alert leases can be taken again");
        }
        claim
    }

    fn lockd_error(&mut self, e: &dyn std::error::Error) -> Claim {
        if !self.lockd_failing {
            self.lockd_failing = true;
            warn!(error = %e, "cannot take alert leases; the alerts table alone keeps cluster-wide alerts to one message");
        }
        Claim::NoLockd
    }

    /// Gives back the lease of `key`, if held.
    pub async fn release(&mut self, key: &Key) {
        if let Some(lease) = self.held.remove(key) {
            if let Err(e) = self.locks.release(&lease).await {
                debug!(key = %lease.key(), error = %e, "alert lease not released; it runs out");
            }
        }
    }

    /// One evaluation's cluster-wide work over the alerts `rows` (read this evaluation):
    /// raises what fires and has no row, ends what has a row and is no longer tracked (of the
    /// kinds whose data this evaluation could read: `known`), sends reminders and escalations
    /// of what this node holds. Returns what to send.
    pub async fn settle(
        &mut self,
        engine: &Engine,
        transitions: &[Transition],
        rows: &[ActiveAlert],
        known: &BTreeSet<AlertKind>,
        now_ms: i64,
    ) -> Vec<Notice> {
        let mut out = Vec::new();
        let rows: BTreeMap<Key, &ActiveAlert> = rows
            .iter()
            .filter(|r| r.kind.cluster_wide())
            .map(|r| (Key::new(r.kind, r.subject.clone()), r))
            .collect();
        let firing: Vec<Firing<'_>> = engine
            .firing()
            .filter(|f| f.key.kind.cluster_wide())
            .collect();
        for f in &firing {
            let claim = self.claim(f.key).await;
            if claim == Claim::Other {
                continue;
            }
            match rows.get(f.key) {
                None => {
                    if self.raise(f, now_ms).await {
                        out.push(raised(f));
                    }
                }
                Some(row) => {
                    if row.severity != f.severity || row.message != f.message {
                        self.refresh(f, now_ms).await;
                    }
                    let told = transitions.iter().find(|t| {
                        &t.key == f.key && matches!(t.change, Change::Escalated | Change::Reminder)
                    });
                    if let Some(t) = told.filter(|_| claim == Claim::Mine) {
                        out.push(Notice::from_transition(t, now_ms));
                    }
                }
            }
        }
        for (key, row) in &rows {
            if !known.contains(&key.kind) || engine.tracks(key) {
                continue;
            }
            let observed_end = transitions
                .iter()
                .any(|t| &t.key == key && t.change == Change::Resolved);
            let claim = self.claim(key).await;
            if claim == Claim::Mine || (claim == Claim::NoLockd && observed_end) {
                if let Some(notice) = self.end(key, row, now_ms).await {
                    out.push(notice);
                }
            }
            if claim == Claim::Mine {
                // Kept until it runs out, not released: a node whose view of the cluster lags
                // (it still sees the alert firing) must not raise it again at once.
                self.held.remove(key);
            }
        }
        let stale: Vec<Key> = self
            .held
            .keys()
            .filter(|k| !engine.tracks(k) && !rows.contains_key(*k))
            .cloned()
            .collect();
        for key in stale {
            self.release(&key).await;
        }
        out
    }

    async fn raise(&self, f: &Firing<'_>, now_ms: i64) -> bool {
        let row = ActiveAlert {
            kind: f.key.kind,
            subject: f.key.subject.clone(),
            node: f.node.map(str::to_owned),
            severity: f.severity,
            message: f.message.to_owned(),
            raised_at_ms: f.since_ms,
            updated_at_ms: now_ms,
            reported_by: self.me.clone(),
        };
        match self.store.raise_alert(&row).await {
            Ok(inserted) => inserted,
            Err(e) => {
                debug!(kind = %f.key.kind, subject = %f.key.subject, error = %e, "alert row not written; trying again next time");
                false
            }
        }
    }

    async fn refresh(&self, f: &Firing<'_>, now_ms: i64) {
        let kind = f.key.kind;
        if let Err(e) = self
            .store
            .refresh_alert(kind, &f.key.subject, f.severity, f.message, now_ms)
            .await
        {
            debug!(%kind, subject = %f.key.subject, error = %e, "alert row not refreshed");
        }
    }

    async fn end(&self, key: &Key, row: &ActiveAlert, now_ms: i64) -> Option<Notice> {
        match self.store.resolve_alert(key.kind, &key.subject).await {
            Ok(Some(gone)) => Some(Notice {
                status: Status::Resolved,
                change: "resolved",
                kind: gone.kind,
                subject: gone.subject,
                node: gone.node,
                severity: gone.severity,
                message: gone.message,
                since_ms: gone.raised_at_ms,
                ended_at_ms: Some(now_ms),
            }),
            Ok(None) => None,
            Err(e) => {
                debug!(kind = %row.kind, subject = %row.subject, error = %e, "alert row not deleted; trying again next time");
                None
            }
        }
    }

    /// Mirrors this node's node-local alerts into `rows`' table: inserts and refreshes what
    /// fires, deletes what this node no longer tracks (for kinds it evaluated this time).
    pub async fn mirror_local(
        &self,
        engine: &Engine,
        rows: &[ActiveAlert],
        known: &BTreeSet<AlertKind>,
        now_ms: i64,
    ) {
        let mine: BTreeMap<Key, &ActiveAlert> = rows
            .iter()
            .filter(|r| !r.kind.cluster_wide() && r.node.as_deref() == Some(self.me.as_str()))
            .map(|r| (Key::new(r.kind, r.subject.clone()), r))
            .collect();
        for f in engine.firing().filter(|f| !f.key.kind.cluster_wide()) {
            match mine.get(f.key) {
                None => {
                    self.raise(&f, now_ms).await;
                }
                Some(row) if row.severity != f.severity || row.message != f.message => {
                    self.refresh(&f, now_ms).await;
                }
                Some(_) => {}
            }
        }
        for (key, row) in &mine {
            if known.contains(&key.kind) && !engine.tracks(key) {
                self.end(key, row, now_ms).await;
            }
        }
    }
}

/// The notice of an alert raised now.
fn raised(f: &Firing<'_>) -> Notice {
    Notice {
        status: Status::Firing,
        change: "raised",
        kind: f.key.kind,
        subject: f.key.subject.clone(),
        node: f.node.map(str::to_owned),
        severity: f.severity,
        message: f.message.to_owned(),
        since_ms: f.since_ms,
        ended_at_ms: None,
    }
}

#[cfg(test)]
mod tests;
