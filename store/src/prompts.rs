//! Prompts uploaded on the admin pages: recordings for IVR menus and hang-up messages, kept as
//! the WAV the nodes play (8 kHz mono 16-bit, converted on upload). Every write bumps the config
//! version; nodes keep the list ([`PromptInfo`]: no audio) in their configuration cache and
//! fetch a prompt's audio ([`Store::prompt_wav`]) once per upload.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::config::BUMP_VERSION;
use crate::{Store, StoreError};

/// An uploaded prompt, without its audio.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptInfo {
    /// What menus and messages name it by (`welcome`).
    pub name: String,
    /// Its length in samples at 8 kHz.
    pub samples: i64,
    /// When this version was uploaded: a node holding an older one fetches it again.
    pub uploaded_at_ms: i64,
}

const UPSERT_PROMPT: &str = "\
INSERT INTO prompts (name, wav, samples, uploaded_at_ms) VALUES ($1, $2, $3, $4) \
ON CONFLICT (name) DO UPDATE SET wav = excluded.wav, samples = excluded.samples, \
uploaded_at_ms = excluded.uploaded_at_ms";

impl Store {
    /// Stores a prompt (replacing one of the same name) and bumps the config version, in one
    /// transaction.
    pub async fn put_prompt(&self, info: &PromptInfo, wav: &[u8]) -> Result<(), StoreError> {
        const WHAT: &str = "store prompt";
        let mut tx = self.pool().begin().await.map_err(StoreError::query(WHAT))?;
        sqlx::query(UPSERT_PROMPT)
            .bind(&info.name)
            .bind(wav)
            .bind(info.samples)
            .bind(info.uploaded_at_ms)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::write(WHAT))?;
        sqlx::query(BUMP_VERSION)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::query("bump config version"))?;
        tx.commit().await.map_err(StoreError::query(WHAT))
    }

    /// Every uploaded prompt, by name (no audio).
    pub async fn prompts(&self) -> Result<Vec<PromptInfo>, StoreError> {
        const WHAT: &str = "list prompts";
        let rows = sqlx::query("SELECT name, samples, uploaded_at_ms FROM prompts ORDER BY name")
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        rows.iter()
            .map(|row| {
                Ok(PromptInfo {
                    name: row.try_get("name")?,
                    samples: row.try_get("samples")?,
                    uploaded_at_ms: row.try_get("uploaded_at_ms")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::query(WHAT))
    }

    /// A prompt's WAV and the upload it is from; `None` if there is no such prompt.
    pub async fn prompt_wav(&self, name: &str) -> Result<Option<(Vec<u8>, i64)>, StoreError> {
        const WHAT: &str = "read prompt";
        let row = sqlx::query("SELECT wav, uploaded_at_ms FROM prompts WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        row.map(|r| Ok((r.try_get("wav")?, r.try_get("uploaded_at_ms")?)))
            .transpose()
            .map_err(StoreError::query(WHAT))
    }

    /// Deletes a prompt; `false` if there was none. Bumps the config version when one was.
    pub async fn delete_prompt(&self, name: &str) -> Result<bool, StoreError> {
        let statement = sqlx::query("DELETE FROM prompts WHERE name = $1").bind(name);
        Ok(self.config_write("delete prompt", statement).await? > 0)
    }
}

#[cfg(test)]
mod tests;
