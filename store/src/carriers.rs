//! Carriers managed from the admin pages: a name and the source network
//! (CIDR text) their INVITEs come from. Configuration: every write bumps the
//! config version, and nodes load the list into their configuration cache.
//! The store keeps the network as given; the web layer checks it is a CIDR
//! before writing, and nodes skip (and log) a row that does not parse.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Store, StoreError};

/// One row of `carriers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carrier {
    /// Primary key, e.g. the carrier's name.
    pub name: String,
    /// Source network in CIDR notation (`203.0.113.0/24`, `2001:db8::/32`).
    pub network: String,
    pub created_at_ms: i64,
}

/// Keeps `created_at_ms` of an existing carrier.
const UPSERT_CARRIER: &str = "\
INSERT INTO carriers (name, network, created_at_ms) VALUES ($1, $2, $3) \
ON CONFLICT (name) DO UPDATE SET network = excluded.network";

impl Store {
    /// Creates a carrier or replaces its network (an existing carrier keeps
    /// its creation time). Bumps the config version in the same transaction.
    pub async fn upsert_carrier(&self, carrier: &Carrier) -> Result<(), StoreError> {
        let statement = sqlx::query(UPSERT_CARRIER)
            .bind(&carrier.name)
            .bind(&carrier.network)
            .bind(carrier.created_at_ms);
        self.config_write("upsert carrier", statement).await?;
        Ok(())
    }

    /// All carriers, by name.
    pub async fn carriers(&self) -> Result<Vec<Carrier>, StoreError> {
        const WHAT: &str = "list carriers";
        let rows = sqlx::query("SELECT name, network, created_at_ms FROM carriers ORDER BY name")
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        rows.iter()
            .map(carrier_from_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::query(WHAT))
    }

    /// Deletes a carrier; returns `false` if there was none. Bumps the config
    /// version when a row was deleted.
    pub async fn delete_carrier(&self, name: &str) -> Result<bool, StoreError> {
        let statement = sqlx::query("DELETE FROM carriers WHERE name = $1").bind(name);
        Ok(self.config_write("delete carrier", statement).await? > 0)
    }
}

fn carrier_from_row(row: &AnyRow) -> Result<Carrier, sqlx::Error> {
    Ok(Carrier {
        name: row.try_get("name")?,
        network: row.try_get("network")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

#[cfg(test)]
mod tests;
