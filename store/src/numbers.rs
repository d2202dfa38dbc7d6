//! Numbers (DIDs): where a dialled number sends a caller in open hours and when closed, with
//! weekly open hours in the number's time zone and holiday dates. Configuration: every write
//! bumps the config version; nodes route from their configuration cache. The store keeps the
//! hours and holidays as typed; the web layer checks them with [`hours`] before writing, and
//! a node that finds one it cannot parse logs it and treats the number as closed.

pub mod hours;

use std::fmt;
use std::str::FromStr;

use callfleet_vocab::DestKind;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::decode::enum_col;
use crate::{ParseEnumError, Store, StoreError};

/// Where a caller goes: a kind and its target (a name, an extension, a number or a prompt).
/// Written `kind:target` on the admin pages (`queue:sales`, `message:goodbye`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Destination {
    pub kind: DestKind,
    pub target: String,
}

impl Destination {
    pub fn new(kind: DestKind, target: impl Into<String>) -> Destination {
        Destination {
            kind,
            target: target.into(),
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.target)
    }
}

impl FromStr for Destination {
    type Err = ParseEnumError;

    /// `kind:target`; the target is trimmed and may not be empty.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseEnumError {
            kind: "destination",
            value: s.to_owned(),
        };
        let (kind, target) = s.split_once(':').ok_or_else(bad)?;
        let target = target.trim();
        if target.is_empty() {
            return Err(bad());
        }
        Ok(Destination::new(kind.trim().parse()?, target))
    }
}

/// One row of `numbers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Number {
    /// The dialled number (the request URI's user part), the primary key.
    pub number: String,
    /// Where callers go in open hours.
    pub open: Destination,
    /// Where callers go outside open hours and on holidays.
    pub closed: Destination,
    /// IANA time zone of the hours and holidays (`Europe/Paris`).
    pub time_zone: String,
    /// Weekly open hours ([`hours::Hours::parse`]); empty: always open.
    pub open_hours: String,
    /// Closed days ([`hours::parse_holidays`]).
    pub holidays: String,
    pub created_at_ms: i64,
}

const NUMBER_COLUMNS: &str = "number, open_kind, open_target, closed_kind, closed_target, \
time_zone, open_hours, holidays, created_at_ms";

/// Keeps `created_at_ms` of an existing number.
const UPSERT_NUMBER: &str = "\
INSERT INTO numbers (number, open_kind, open_target, closed_kind, closed_target, time_zone, \
open_hours, holidays, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
ON CONFLICT (number) DO UPDATE SET open_kind = excluded.open_kind, \
open_target = excluded.open_target, closed_kind = excluded.closed_kind, \
closed_target = excluded.closed_target, time_zone = excluded.time_zone, \
open_hours = excluded.open_hours, holidays = excluded.holidays";

impl Store {
    /// Creates a number or replaces its routing (an existing number keeps its creation
    /// time). Bumps the config version in the same transaction.
    pub async fn upsert_number(&self, n: &Number) -> Result<(), StoreError> {
        let statement = sqlx::query(UPSERT_NUMBER)
            .bind(&n.number)
            .bind(n.open.kind.as_str())
            .bind(&n.open.target)
            .bind(n.closed.kind.as_str())
            .bind(&n.closed.target)
            .bind(&n.time_zone)
            .bind(&n.open_hours)
            .bind(&n.holidays)
            .bind(n.created_at_ms);
        self.config_write("upsert number", statement).await?;
        Ok(())
    }

    /// All numbers, by number.
    pub async fn numbers(&self) -> Result<Vec<Number>, StoreError> {
        const WHAT: &str = "list numbers";
        let rows = sqlx::query(&format!(
            "SELECT {NUMBER_COLUMNS} FROM numbers ORDER BY number"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::query(WHAT))?;
        rows.iter()
            .map(number_from_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::query(WHAT))
    }

    /// Deletes a number; `false` if there was none. Bumps the config version when a row
    /// was deleted.
    pub async fn delete_number(&self, number: &str) -> Result<bool, StoreError> {
        let statement = sqlx::query("DELETE FROM numbers WHERE number = $1").bind(number);
        Ok(self.config_write("delete number", statement).await? > 0)
    }
}

/// The destination in columns `{prefix}_kind` and `{prefix}_target`.
pub(crate) fn destination_cols(
    row: &AnyRow,
    kind: &'static str,
    target: &'static str,
) -> Result<Destination, sqlx::Error> {
    Ok(Destination {
        kind: enum_col(row, kind)?,
        target: row.try_get(target)?,
    })
}

fn number_from_row(row: &AnyRow) -> Result<Number, sqlx::Error> {
    Ok(Number {
        number: row.try_get("number")?,
        open: destination_cols(row, "open_kind", "open_target")?,
        closed: destination_cols(row, "closed_kind", "closed_target")?,
        time_zone: row.try_get("time_zone")?,
        open_hours: row.try_get("open_hours")?,
        holidays: row.try_get("holidays")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

#[cfg(test)]
mod tests;
