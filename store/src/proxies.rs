//! Office VoIP proxies: SIP proxies or SBCs of offices whose public address may change. Each
//! has a token (only its SHA-256 is stored) and checks in every minute; the source address of
//! a check-in becomes the proxy's `address`. When it changes, the registrar bindings received
//! over UDP from the old address are moved to the new one and the config version is bumped, in one
//! transaction, so every node admits the new address (configuration cache) and rings the phones
//! behind it there (bindings are read from SQL per call).
//!
//! A check-in at the same address only records its time: no config version bump.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Store, StoreError};

/// One row of `proxies`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proxy {
    /// Primary key, e.g. the office's name.
    pub name: String,
    /// Hex SHA-256 of the token the proxy checks in with.
    pub token_hash: String,
    /// The IP address of its last check-in; `None` before the first.
    pub address: Option<String>,
    /// When it last checked in.
    pub last_checkin_ms: Option<i64>,
    pub created_at_ms: i64,
}

impl Proxy {
    /// The current address, when there is one and it parses.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.as_deref().and_then(|a| a.parse().ok())
    }
}

/// What a check-in changes, given the address the proxy had (`previous`, as stored) and the
/// one it checks in from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckinPlan {
    /// Same address: only the check-in time is written.
    Keep,
    /// A new address (`from` is `None` on the first check-in, or when the stored one did not
    /// parse): write it, move the bindings received from `from`, bump the config version.
    Move { from: Option<IpAddr>, to: IpAddr },
}

/// Decides a check-in (pure).
pub fn checkin_plan(previous: Option<&str>, source: IpAddr) -> CheckinPlan {
    let from = previous.and_then(|p| p.trim().parse::<IpAddr>().ok());
    match from {
        Some(ip) if ip == source => CheckinPlan::Keep,
        _ => CheckinPlan::Move { from, to: source },
    }
}

/// The text a binding's `received` (`ip:port`, `[v6]:port`) starts with when it came from
/// `ip`: what [`SocketAddr`]'s display writes before the port.
pub fn received_prefix(ip: IpAddr) -> String {
    let text = SocketAddr::new(ip, 0).to_string();
    text[..text.len() - 1].to_owned()
}

/// What a check-in did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkin {
    pub plan: CheckinPlan,
    /// Bindings moved from the old address to the new one.
    pub bindings_moved: u64,
}

const SELECT: &str =
    "SELECT name, token_hash, address, last_checkin_ms, created_at_ms FROM proxies";

/// Moves UDP bindings: `$1` old prefix, `$2` new prefix, `$3` the old prefix's length. A TCP
/// or TLS binding is tied to its connection, which does not survive the address change: the
/// phone is reached again once it registers on a new one.
const MOVE_BINDINGS: &str = "\
UPDATE registrations SET received = $2 || substr(received, CAST($3 AS INTEGER) + 1) \
WHERE transport = 'udp' AND substr(received, 1, CAST($3 AS INTEGER)) = $1";

const BUMP_VERSION: &str = "UPDATE config_version SET version = version + 1 WHERE id = 1";

impl Store {
    /// Adds a proxy; [`StoreError::Duplicate`] when the name or the token hash is taken. No
    /// address yet, so no config version bump.
    pub async fn add_proxy(&self, proxy: &Proxy) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO proxies (name, token_hash, address, last_checkin_ms, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&proxy.name)
        .bind(&proxy.token_hash)
        .bind(&proxy.address)
        .bind(proxy.last_checkin_ms)
        .bind(proxy.created_at_ms)
        .execute(self.pool())
        .await
        .map_err(StoreError::write("add proxy"))?;
        Ok(())
    }

    /// All proxies, by name.
    pub async fn proxies(&self) -> Result<Vec<Proxy>, StoreError> {
        const WHAT: &str = "list proxies";
        let rows = sqlx::query(&format!("{SELECT} ORDER BY name"))
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        rows.iter()
            .map(proxy_from_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::query(WHAT))
    }

    /// One proxy by name.
    pub async fn proxy(&self, name: &str) -> Result<Option<Proxy>, StoreError> {
        const WHAT: &str = "read proxy";
        let row = sqlx::query(&format!("{SELECT} WHERE name = $1"))
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        row.as_ref()
            .map(proxy_from_row)
            .transpose()
            .map_err(StoreError::query(WHAT))
    }

    /// Removes a proxy; `false` if there was none. Bumps the config version (nodes stop
    /// admitting its address). Bindings received through it stay until they expire.
    pub async fn remove_proxy(&self, name: &str) -> Result<bool, StoreError> {
        let statement = sqlx::query("DELETE FROM proxies WHERE name = $1").bind(name);
        Ok(self.config_write("remove proxy", statement).await? > 0)
    }

    /// Records a check-in of proxy `name` from `source` at `now_ms` (see [`checkin_plan`]);
    /// `None` when there is no such proxy. One transaction: the check-in time, and on a new
    /// address the address, the bindings received from the old one, and the config version.
    /// The first write takes the row (PostgreSQL) or the database (SQLite) lock, so two
    /// check-ins of one proxy are serialised.
    pub async fn proxy_checkin(
        &self,
        name: &str,
        source: IpAddr,
        now_ms: i64,
    ) -> Result<Option<Checkin>, StoreError> {
        const WHAT: &str = "proxy check-in";
        let mut tx = self.pool().begin().await.map_err(StoreError::query(WHAT))?;
        let touched = sqlx::query("UPDATE proxies SET last_checkin_ms = $2 WHERE name = $1")
            .bind(name)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::write(WHAT))?
            .rows_affected();
        if touched == 0 {
            tx.rollback().await.map_err(StoreError::query(WHAT))?;
            return Ok(None);
        }
        let previous: Option<String> =
            sqlx::query_scalar("SELECT address FROM proxies WHERE name = $1")
                .bind(name)
                .fetch_one(&mut *tx)
                .await
                .map_err(StoreError::query(WHAT))?;
        let plan = checkin_plan(previous.as_deref(), source);
        let mut bindings_moved = 0;
        if let CheckinPlan::Move { from, to } = plan {
            sqlx::query("UPDATE proxies SET address = $2 WHERE name = $1")
                .bind(name)
                .bind(to.to_string())
                .execute(&mut *tx)
                .await
                .map_err(StoreError::write(WHAT))?;
            if let Some(from) = from {
                let old = received_prefix(from);
                bindings_moved = sqlx::query(MOVE_BINDINGS)
                    .bind(&old)
                    .bind(received_prefix(to))
                    .bind(old.len() as i64)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::write("move bindings to a proxy's new address"))?
                    .rows_affected();
            }
            sqlx::query(BUMP_VERSION)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::query("bump config version"))?;
        }
        tx.commit().await.map_err(StoreError::query(WHAT))?;
        Ok(Some(Checkin {
            plan,
            bindings_moved,
        }))
    }
}

fn proxy_from_row(row: &AnyRow) -> Result<Proxy, sqlx::Error> {
    Ok(Proxy {
        name: row.try_get("name")?,
        token_hash: row.try_get("token_hash")?,
        address: row.try_get("address")?,
        last_checkin_ms: row.try_get("last_checkin_ms")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

#[cfg(test)]
mod tests;
