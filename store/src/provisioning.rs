//! Phones that configure themselves over HTTP(S): the provisioning tokens that let a phone never
//! seen before fetch its first configuration (stored as SHA-256 only), and the phone (MAC) each
//! automatically made device extension belongs to. No password is stored here or anywhere: the
//! web layer derives a phone's SIP password from its `salt` and the cluster secret.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Device, Store, StoreError};

/// A provisioning token as stored: its name and the SHA-256 hex of its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisioningToken {
    pub name: String,
    pub token_hash: String,
    pub created_at_ms: i64,
}

/// A phone that provisioned itself: one row per MAC, tied to one device extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisionedPhone {
    /// 12 lower-case hex digits.
    pub mac: String,
    /// The `devices` row it was given.
    pub extension: String,
    /// `"yealink"` or `"grandstream"`.
    pub family: String,
    /// 32 random hex digits the phone's passwords are derived from.
    pub salt: String,
    /// IP address of its first fetch.
    pub source: String,
    /// The provisioning token its first fetch presented.
    pub token_name: String,
    pub created_at_ms: i64,
    pub fetched_at_ms: i64,
}

/// What [`Store::provision_phone`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provisioned {
    /// The device and the phone row were written.
    Created,
    /// The MAC is provisioned already (another node may have just done it): nothing written.
    MacTaken,
    /// The extension belongs to a device already: nothing written, try another one.
    ExtensionTaken,
}

macro_rules! phone_select {
    () => {
        "SELECT mac, extension, family, salt, source, token_name, created_at_ms, fetched_at_ms \
         FROM provisioned_phones"
    };
}

const INSERT_DEVICE: &str = "\
INSERT INTO devices (extension, ha1_md5, ha1_sha256, realm, display_name, created_at_ms) \
VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (extension) DO NOTHING";

const INSERT_PHONE: &str = "\
INSERT INTO provisioned_phones (mac, extension, family, salt, source, token_name, created_at_ms, \
    fetched_at_ms) \
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING";

const BUMP_VERSION: &str = "UPDATE config_version SET version = version + 1 WHERE id = 1";

impl Store {
    /// Adds a provisioning token; [`StoreError::Duplicate`] when the name or hash is taken.
    pub async fn add_provisioning_token(
        &self,
        token: &ProvisioningToken,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO provisioning_tokens (name, token_hash, created_at_ms) VALUES ($1, $2, $3)",
        )
        .bind(&token.name)
        .bind(&token.token_hash)
        .bind(token.created_at_ms)
        .execute(self.pool())
        .await
        .map_err(StoreError::write("add provisioning token"))?;
        Ok(())
    }

    /// The provisioning tokens, by name.
    pub async fn provisioning_tokens(&self) -> Result<Vec<ProvisioningToken>, StoreError> {
        const WHAT: &str = "list provisioning tokens";
        let rows = sqlx::query(
            "SELECT name, token_hash, created_at_ms FROM provisioning_tokens ORDER BY name",
        )
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::query(WHAT))?;
        rows.iter()
            .map(token_from_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::query(WHAT))
    }

    /// The name of the provisioning token whose SHA-256 hex is `token_hash`, if any.
    pub async fn provisioning_token_by_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT name FROM provisioning_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::query("find provisioning token"))
    }

    /// Revokes a provisioning token; `false` if there was none. Phones it created keep their
    /// own credentials.
    pub async fn remove_provisioning_token(&self, name: &str) -> Result<bool, StoreError> {
        let res = sqlx::query("DELETE FROM provisioning_tokens WHERE name = $1")
            .bind(name)
            .execute(self.pool())
            .await
            .map_err(StoreError::write("remove provisioning token"))?;
        Ok(res.rows_affected() > 0)
    }

    /// The phone with this MAC (12 lower-case hex digits), if it provisioned itself.
    pub async fn provisioned_phone(
        &self,
        mac: &str,
    ) -> Result<Option<ProvisionedPhone>, StoreError> {
        const WHAT: &str = "read provisioned phone";
        let row = sqlx::query(concat!(phone_select!(), " WHERE mac = $1"))
            .bind(mac)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        row.as_ref()
            .map(phone_from_row)
            .transpose()
            .map_err(StoreError::query(WHAT))
    }

    /// Every provisioned phone, by extension.
    pub async fn provisioned_phones(&self) -> Result<Vec<ProvisionedPhone>, StoreError> {
        const WHAT: &str = "list provisioned phones";
        let rows = sqlx::query(concat!(phone_select!(), " ORDER BY extension"))
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        rows.iter()
            .map(phone_from_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::query(WHAT))
    }

    /// Creates `device` and ties it to `phone` in one transaction that also bumps the config
    /// version; writes nothing when the MAC or the extension is taken (say which).
    pub async fn provision_phone(
        &self,
        phone: &ProvisionedPhone,
        device: &Device,
    ) -> Result<Provisioned, StoreError> {
        const WHAT: &str = "provision phone";
        let mut tx = self.pool().begin().await.map_err(StoreError::query(WHAT))?;
        let device_rows = sqlx::query(INSERT_DEVICE)
            .bind(&device.extension)
            .bind(&device.ha1_md5)
            .bind(&device.ha1_sha256)
            .bind(&device.realm)
            .bind(&device.display_name)
            .bind(device.created_at_ms)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::write(WHAT))?
            .rows_affected();
        let phone_rows = if device_rows == 0 {
            0
        } else {
            match sqlx::query(INSERT_PHONE)
                .bind(&phone.mac)
                .bind(&phone.extension)
                .bind(&phone.family)
                .bind(&phone.salt)
                .bind(&phone.source)
                .bind(&phone.token_name)
                .bind(phone.created_at_ms)
                .bind(phone.fetched_at_ms)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::write(WHAT))
            {
                Ok(res) => res.rows_affected(),
                Err(StoreError::Duplicate { .. }) => 0,
                Err(e) => return Err(e),
            }
        };
        if device_rows == 0 || phone_rows == 0 {
            tx.rollback().await.map_err(StoreError::query(WHAT))?;
            // Which one: the MAC decides (a phone provisioned by another node meanwhile).
            return Ok(if self.provisioned_phone(&phone.mac).await?.is_some() {
                Provisioned::MacTaken
            } else {
                Provisioned::ExtensionTaken
            });
        }
        sqlx::query(BUMP_VERSION)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::query("bump config version"))?;
        tx.commit().await.map_err(StoreError::query(WHAT))?;
        Ok(Provisioned::Created)
    }

    /// Records that the phone fetched its configuration at `now_ms` (runtime state: does not
    /// bump the config version).
    pub async fn touch_provisioned_phone(&self, mac: &str, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE provisioned_phones SET fetched_at_ms = $2 WHERE mac = $1")
            .bind(mac)
            .bind(now_ms)
            .execute(self.pool())
            .await
            .map_err(StoreError::write("touch provisioned phone"))?;
        Ok(())
    }
}

fn token_from_row(row: &AnyRow) -> Result<ProvisioningToken, sqlx::Error> {
    Ok(ProvisioningToken {
        name: row.try_get("name")?,
        token_hash: row.try_get("token_hash")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

fn phone_from_row(row: &AnyRow) -> Result<ProvisionedPhone, sqlx::Error> {
    Ok(ProvisionedPhone {
        mac: row.try_get("mac")?,
        extension: row.try_get("extension")?,
        family: row.try_get("family")?,
        salt: row.try_get("salt")?,
        source: row.try_get("source")?,
        token_name: row.try_get("token_name")?,
        created_at_ms: row.try_get("created_at_ms")?,
        fetched_at_ms: row.try_get("fetched_at_ms")?,
    })
}

#[cfg(test)]
mod tests;
