//! Alerts firing now (`alerts`) and when each node last heard from each carrier
//! (`carrier_traffic`). An alert row is both what every panel shows and the
//! cluster's record that the alert was notified: [`Store::raise_alert`] inserts
//! it only if absent and [`Store::resolve_alert`] deletes it, and their row
//! counts decide which node sends the notification.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::decode::enum_col;
use crate::{ParseEnumError, Store, StoreError};

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A node stopped heartbeating (seen by every node; one sends).
    NodeDown,
    /// A node cannot reach the database.
    DatabaseUnreachable,
    /// A node's record spool is filling up.
    SpoolFilling,
    /// A node has been shedding load (level 2 or more).
    ShedHigh,
    /// A node cannot reach a lockd.
    LockdUnreachable,
    /// A directory a node writes to is on a nearly full file system.
    DiskFull,
    /// A queue's service level is below its target (cluster-wide).
    ServiceLevelLow,
    /// A carrier sent no call during open hours for a while (cluster-wide).
    CarrierSilent,
    /// A node banned many sources or subjects for wrong credentials.
    AuthBans,
}

impl AlertKind {
    /// Every kind, in a fixed order.
    pub const ALL: [AlertKind; 9] = [
        AlertKind::NodeDown,
        AlertKind::DatabaseUnreachable,
        AlertKind::SpoolFilling,
        AlertKind::ShedHigh,
        AlertKind::LockdUnreachable,
        AlertKind::DiskFull,
        AlertKind::ServiceLevelLow,
        AlertKind::CarrierSilent,
        AlertKind::AuthBans,
    ];

    /// The column and JSON value.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::NodeDown => "node_down",
            AlertKind::DatabaseUnreachable => "database_unreachable",
            AlertKind::SpoolFilling => "spool_filling",
            AlertKind::ShedHigh => "shed_high",
            AlertKind::LockdUnreachable => "lockd_unreachable",
            AlertKind::DiskFull => "disk_full",
            AlertKind::ServiceLevelLow => "service_level_low",
            AlertKind::CarrierSilent => "carrier_silent",
            AlertKind::AuthBans => "auth_bans",
        }
    }

    /// Whether every node sees the same condition (shared rows), so that one node sends it
    /// under a lease; the other kinds are seen by one node about itself and sent by it.
    pub fn cluster_wide(self) -> bool {
        matches!(
            self,
            AlertKind::NodeDown | AlertKind::ServiceLevelLow | AlertKind::CarrierSilent
        )
    }
}

impl FromStr for AlertKind {
    type Err = ParseEnumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AlertKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| ParseEnumError {
                kind: "alert kind",
                value: s.to_owned(),
            })
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent an alert is. `Critical` sorts after `Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Needs attention soon (working hours).
    Warning,
    /// Needs attention now (page the on-call person).
    Critical,
}

impl Severity {
    /// Both severities, lowest first.
    pub const ALL: [Severity; 2] = [Severity::Warning, Severity::Critical];

    /// The column and JSON value.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl FromStr for Severity {
    type Err = ParseEnumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| ParseEnumError {
                kind: "alert severity",
                value: s.to_owned(),
            })
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of `alerts`: an alert firing now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveAlert {
    pub kind: AlertKind,
    /// What it is about within its kind: a node name, `node path`, a queue, a carrier...
    pub subject: String,
    /// The node it is about, if any (`None` for a queue or a carrier).
    pub node: Option<String>,
    pub severity: Severity,
    /// One line for a human.
    pub message: String,
    pub raised_at_ms: i64,
    pub updated_at_ms: i64,
    /// The node that notified it.
    pub reported_by: String,
}

/// When `node` last took an INVITE from `carrier` (a row of `carrier_traffic`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarrierTraffic {
    pub carrier: String,
    pub node: String,
    pub last_invite_at_ms: i64,
}

const INSERT_ALERT: &str = "\
INSERT INTO alerts (kind, subject, node, severity, message, raised_at_ms, updated_at_ms, \
    reported_by) \
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
ON CONFLICT (kind, subject) DO NOTHING";

macro_rules! alert_columns {
    () => {
        "kind, subject, node, severity, message, raised_at_ms, updated_at_ms, reported_by"
    };
}

const UPSERT_TRAFFIC: &str = "\
INSERT INTO carrier_traffic (carrier, node, last_invite_at_ms) VALUES ($1, $2, $3) \
ON CONFLICT (carrier, node) DO UPDATE SET last_invite_at_ms = excluded.last_invite_at_ms \
WHERE carrier_traffic.last_invite_at_ms < excluded.last_invite_at_ms";

impl Store {
    /// Records `alert` as firing unless a row of its kind and subject exists; `true` when
    /// this call inserted it (the caller then notifies it), `false` when it was there.
    pub async fn raise_alert(&self, alert: &ActiveAlert) -> Result<bool, StoreError> {
        let res = sqlx::query(INSERT_ALERT)
            .bind(alert.kind.as_str())
            .bind(&alert.subject)
            .bind(alert.node.as_deref())
            .bind(alert.severity.as_str())
            .bind(&alert.message)
            .bind(alert.raised_at_ms)
            .bind(alert.updated_at_ms)
            .bind(&alert.reported_by)
            .execute(self.pool())
            .await
            .map_err(StoreError::write("raise alert"))?;
        Ok(res.rows_affected() > 0)
    }

    /// Updates the severity, message and time of a firing alert; `false` when there is no
    /// such row (it was resolved meanwhile).
    pub async fn refresh_alert(
        &self,
        kind: AlertKind,
        subject: &str,
        severity: Severity,
        message: &str,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        let res = sqlx::query(
            "UPDATE alerts SET severity = $1, message = $2, updated_at_ms = $3 \
             WHERE kind = $4 AND subject = $5",
        )
        .bind(severity.as_str())
        .bind(message)
        .bind(at_ms)
        .bind(kind.as_str())
        .bind(subject)
        .execute(self.pool())
        .await
        .map_err(StoreError::write("refresh alert"))?;
        Ok(res.rows_affected() > 0)
    }

    /// Deletes the alert of `kind` and `subject`; the row when this call deleted it (the
    /// caller then notifies its end), `None` when there was none.
    pub async fn resolve_alert(
        &self,
        kind: AlertKind,
        subject: &str,
    ) -> Result<Option<ActiveAlert>, StoreError> {
        const WHAT: &str = "resolve alert";
        let row = sqlx::query(concat!(
            "DELETE FROM alerts WHERE kind = $1 AND subject = $2 RETURNING ",
            alert_columns!()
        ))
        .bind(kind.as_str())
        .bind(subject)
        .fetch_optional(self.pool())
        .await
        .map_err(StoreError::write(WHAT))?;
        row.as_ref()
            .map(alert_from_row)
            .transpose()
            .map_err(StoreError::query(WHAT))
    }

    /// Every alert firing now, most severe first, then oldest first.
    pub async fn active_alerts(&self) -> Result<Vec<ActiveAlert>, StoreError> {
        const WHAT: &str = "list alerts";
        let rows = sqlx::query(concat!(
            "SELECT ",
            alert_columns!(),
            " FROM alerts ORDER BY raised_at_ms, kind, subject"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::query(WHAT))?;
        let mut alerts = rows
            .iter()
            .map(alert_from_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::query(WHAT))?;
        // By the typed severity, so the order never depends on a collation.
        alerts.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(a.raised_at_ms.cmp(&b.raised_at_ms))
                .then(a.kind.cmp(&b.kind))
                .then(a.subject.cmp(&b.subject))
        });
        Ok(alerts)
    }

    /// Records that `node` took an INVITE from `carrier` at `at_ms` (an older time than the
    /// one stored is ignored).
    pub async fn note_carrier_traffic(
        &self,
        carrier: &str,
        node: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(UPSERT_TRAFFIC)
            .bind(carrier)
            .bind(node)
            .bind(at_ms)
            .execute(self.pool())
            .await
            .map_err(StoreError::write("note carrier traffic"))?;
        Ok(())
    }

    /// Every (carrier, node) pair that ever took a call, by carrier and node.
    pub async fn carrier_traffic(&self) -> Result<Vec<CarrierTraffic>, StoreError> {
        const WHAT: &str = "list carrier traffic";
        let rows = sqlx::query(
            "SELECT carrier, node, last_invite_at_ms FROM carrier_traffic ORDER BY carrier, node",
        )
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::query(WHAT))?;
        rows.iter()
            .map(|row| {
                Ok(CarrierTraffic {
                    carrier: row.try_get("carrier")?,
                    node: row.try_get("node")?,
                    last_invite_at_ms: row.try_get("last_invite_at_ms")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::query(WHAT))
    }
}

fn alert_from_row(row: &AnyRow) -> Result<ActiveAlert, sqlx::Error> {
    Ok(ActiveAlert {
        kind: enum_col(row, "kind")?,
        subject: row.try_get("subject")?,
        node: row.try_get("node")?,
        severity: enum_col(row, "severity")?,
        message: row.try_get("message")?,
        raised_at_ms: row.try_get("raised_at_ms")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
        reported_by: row.try_get("reported_by")?,
    })
}

#[cfg(test)]
mod tests;
