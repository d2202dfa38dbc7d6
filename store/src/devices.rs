//! Phones and the registrar: device credentials (HA1 digests, never a
//! password) and the contact bindings phones register.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Store, StoreError};

/// A phone that may register, one row per extension in `devices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Extension, primary key; also the digest username.
    pub extension: String,
    /// Hex MD5 of `extension:realm:password`.
    pub ha1_md5: String,
    /// Hex SHA-256 of `extension:realm:password`.
    pub ha1_sha256: String,
    pub realm: String,
    pub display_name: String,
    pub created_at_ms: i64,
}

/// One registered contact of an address of record (`registrations`,
/// keyed by `(aor, contact)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub aor: String,
    /// Contact URI as the phone sent it.
    pub contact: String,
    /// `ip:port` the REGISTER came from (where to send requests).
    pub received: String,
    /// `"udp"`, `"tcp"`, ...
    pub transport: String,
    pub expires_at_ms: i64,
    pub user_agent: String,
    /// Node that took the REGISTER.
    pub node: String,
    pub call_id: String,
    pub cseq: i64,
}

/// Keeps `created_at_ms` of an existing device.
const UPSERT_DEVICE: &str = "\
INSERT INTO devices (extension, ha1_md5, ha1_sha256, realm, display_name, created_at_ms) \
VALUES ($1, $2, $3, $4, $5, $6) \
ON CONFLICT (extension) DO UPDATE SET \
    ha1_md5 = excluded.ha1_md5, ha1_sha256 = excluded.ha1_sha256, realm = excluded.realm, \
    display_name = excluded.display_name";

macro_rules! device_select {
    () => {
        "SELECT extension, ha1_md5, ha1_sha256, realm, display_name, created_at_ms FROM devices"
    };
}

/// RFC 3261 10.3 step 7: within one Call-ID a binding only moves forward
/// in CSeq; a new Call-ID (the phone restarted) always replaces it.
const UPSERT_REGISTRATION: &str = "\
INSERT INTO registrations (aor, contact, received, transport, expires_at_ms, user_agent, \
    node, call_id, cseq) \
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
ON CONFLICT (aor, contact) DO UPDATE SET \
    received = excluded.received, transport = excluded.transport, \
    expires_at_ms = excluded.expires_at_ms, user_agent = excluded.user_agent, \
    node = excluded.node, call_id = excluded.call_id, cseq = excluded.cseq \
WHERE registrations.call_id <> excluded.call_id OR registrations.cseq < excluded.cseq";

const SELECT_REGISTRATIONS: &str = "\
SELECT aor, contact, received, transport, expires_at_ms, user_agent, node, call_id, cseq \
FROM registrations WHERE aor = $1 AND expires_at_ms > $2 \
ORDER BY expires_at_ms DESC, contact";

impl Store {
    /// Creates a device or replaces its credentials and display name (the
    /// creation time of an existing device is kept). Configuration: bumps
    /// the config version in the same transaction.
    pub async fn upsert_device(&self, device: &Device) -> Result<(), StoreError> {
        let statement = sqlx::query(UPSERT_DEVICE)
            .bind(&device.extension)
            .bind(&device.ha1_md5)
            .bind(&device.ha1_sha256)
            .bind(&device.realm)
            .bind(&device.display_name)
            .bind(device.created_at_ms);
        self.config_write("upsert device", statement).await?;
        Ok(())
    }

    /// The device with this extension, if any.
    pub async fn device(&self, extension: &str) -> Result<Option<Device>, StoreError> {
        const WHAT: &str = "read device";
        let row = sqlx::query(concat!(device_select!(), " WHERE extension = $1"))
            .bind(extension)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        row.as_ref()
            .map(device_from_row)
            .transpose()
            .map_err(StoreError::query(WHAT))
    }

    /// All devices, by extension.
    pub async fn devices(&self) -> Result<Vec<Device>, StoreError> {
        const WHAT: &str = "list devices";
        let rows = sqlx::query(concat!(device_select!(), " ORDER BY extension"))
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        rows.iter()
            .map(device_from_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::query(WHAT))
    }

    /// Deletes a device; returns `false` if there was none. Its bindings are
    /// left to expire (the phone can no longer refresh them) and an agent
    /// logged in on it stays until logged out. Bumps the config version
    /// when a row was deleted. A phone that provisioned itself with this extension is
    /// forgotten in the same transaction: its MAC may provision again (with a token).
    pub async fn delete_device(&self, extension: &str) -> Result<bool, StoreError> {
        const WHAT: &str = "delete device";
        let mut tx = self.pool().begin().await.map_err(StoreError::query(WHAT))?;
        let deleted = sqlx::query("DELETE FROM devices WHERE extension = $1")
            .bind(extension)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::write(WHAT))?
            .rows_affected();
        if deleted == 0 {
            tx.rollback().await.map_err(StoreError::query(WHAT))?;
            return Ok(false);
        }
        sqlx::query("DELETE FROM provisioned_phones WHERE extension = $1")
            .bind(extension)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::write(WHAT))?;
        sqlx::query("UPDATE config_version SET version = version + 1 WHERE id = 1")
            .execute(&mut *tx)
            .await
            .map_err(StoreError::query("bump config version"))?;
        tx.commit().await.map_err(StoreError::query(WHAT))?;
        Ok(true)
    }

    /// Adds or refreshes a binding. Returns `false`, writing nothing, when
    /// the stored binding has the same Call-ID and a CSeq at least as high
    /// (an old or replayed REGISTER: RFC 3261 10.3 step 7). Runtime state:
    /// does not bump the config version.
    pub async fn upsert_registration(&self, reg: &Registration) -> Result<bool, StoreError> {
        let res = sqlx::query(UPSERT_REGISTRATION)
            .bind(&reg.aor)
            .bind(&reg.contact)
            .bind(&reg.received)
            .bind(&reg.transport)
            .bind(reg.expires_at_ms)
            .bind(&reg.user_agent)
            .bind(&reg.node)
            .bind(&reg.call_id)
            .bind(reg.cseq)
            .execute(self.pool())
            .await
            .map_err(StoreError::write("upsert registration"))?;
        Ok(res.rows_affected() > 0)
    }

    /// Removes one binding (`Expires: 0`); returns `false` if there was none.
    pub async fn delete_registration(&self, aor: &str, contact: &str) -> Result<bool, StoreError> {
        let res = sqlx::query("DELETE FROM registrations WHERE aor = $1 AND contact = $2")
            .bind(aor)
            .bind(contact)
            .execute(self.pool())
            .await
            .map_err(StoreError::query("delete registration"))?;
        Ok(res.rows_affected() > 0)
    }

    /// Removes every binding of an address of record (`Contact: *`);
    /// returns how many.
    pub async fn delete_registrations(&self, aor: &str) -> Result<u64, StoreError> {
        let res = sqlx::query("DELETE FROM registrations WHERE aor = $1")
            .bind(aor)
            .execute(self.pool())
            .await
            .map_err(StoreError::query("delete registrations"))?;
        Ok(res.rows_affected())
    }

    /// Bindings of `aor` that have not expired at `now_ms`, the one that
    /// lasts longest (normally the latest refreshed) first.
    pub async fn registrations(
        &self,
        aor: &str,
        now_ms: i64,
    ) -> Result<Vec<Registration>, StoreError> {
        const WHAT: &str = "list registrations";
        let rows = sqlx::query(SELECT_REGISTRATIONS)
            .bind(aor)
            .bind(now_ms)
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        rows.iter()
            .map(registration_from_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::query(WHAT))
    }

    /// Deletes bindings with `expires_at_ms <= now_ms`; returns how many.
    pub async fn purge_expired_registrations(&self, now_ms: i64) -> Result<u64, StoreError> {
        let res = sqlx::query("DELETE FROM registrations WHERE expires_at_ms <= $1")
            .bind(now_ms)
            .execute(self.pool())
            .await
            .map_err(StoreError::query("purge expired registrations"))?;
        Ok(res.rows_affected())
    }
}

fn device_from_row(row: &AnyRow) -> Result<Device, sqlx::Error> {
    Ok(Device {
        extension: row.try_get("extension")?,
        ha1_md5: row.try_get("ha1_md5")?,
        ha1_sha256: row.try_get("ha1_sha256")?,
        realm: row.try_get("realm")?,
        display_name: row.try_get("display_name")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

fn registration_from_row(row: &AnyRow) -> Result<Registration, sqlx::Error> {
    Ok(Registration {
        aor: row.try_get("aor")?,
        contact: row.try_get("contact")?,
        received: row.try_get("received")?,
        transport: row.try_get("transport")?,
        expires_at_ms: row.try_get("expires_at_ms")?,
        user_agent: row.try_get("user_agent")?,
        node: row.try_get("node")?,
        call_id: row.try_get("call_id")?,
        cseq: row.try_get("cseq")?,
    })
}

#[cfg(test)]
mod tests;
