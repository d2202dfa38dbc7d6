//! The config version: one counter that every configuration write bumps in
//! its own transaction, so nodes poll one row and reload their caches only
//! when it moves.

use sqlx::any::{Any, AnyArguments};
use sqlx::query::Query;

use crate::{Store, StoreError};

const SELECT_VERSION: &str = "SELECT version FROM config_version WHERE id = 1";

pub(crate) const BUMP_VERSION: &str =
    "UPDATE config_version SET version = version + 1 WHERE id = 1 RETURNING version";

impl Store {
    /// The current config version (0 on a fresh database).
    pub async fn config_version(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar(SELECT_VERSION)
            .fetch_one(self.pool())
            .await
            .map_err(StoreError::query("read config version"))
    }

    /// Increments the config version and returns the new value. The store's
    /// own configuration writes do this themselves; call it after changing
    /// configuration some other way (e.g. SQL run by hand).
    pub async fn bump_config_version(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar(BUMP_VERSION)
            .fetch_one(self.pool())
            .await
            .map_err(StoreError::query("bump config version"))
    }

    /// Runs one configuration statement and, if it changed a row, bumps the
    /// config version in the same transaction: a reader that sees the new
    /// version also sees the change. Returns the rows the statement changed.
    /// The statement writes before anything reads, so on SQLite the
    /// transaction takes the write lock at once (and waits for it under
    /// `busy_timeout`) instead of failing to upgrade a read lock.
    pub(crate) async fn config_write<'q>(
        &self,
        what: &'static str,
        statement: Query<'q, Any, AnyArguments<'q>>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool().begin().await.map_err(StoreError::query(what))?;
        let changed = statement
            .execute(&mut *tx)
            .await
            .map_err(StoreError::write(what))?
            .rows_affected();
        if changed == 0 {
            tx.rollback().await.map_err(StoreError::query(what))?;
            return Ok(0);
        }
        sqlx::query(BUMP_VERSION)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::query("bump config version"))?;
        tx.commit().await.map_err(StoreError::query(what))?;
        Ok(changed)
    }
}

impl Store {
    /// Runs configuration statements in order (a row, then its child rows replaced as a whole)
    /// and bumps the config version, all in one transaction. The first statement writes, so on
    /// SQLite the transaction takes the write lock at once.
    pub(crate) async fn config_write_all<'q>(
        &self,
        what: &'static str,
        statements: Vec<Query<'q, Any, AnyArguments<'q>>>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await.map_err(StoreError::query(what))?;
        for statement in statements {
            statement
                .execute(&mut *tx)
                .await
                .map_err(StoreError::write(what))?;
        }
        sqlx::query(BUMP_VERSION)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::query("bump config version"))?;
        tx.commit().await.map_err(StoreError::query(what))
    }
}

#[cfg(test)]
mod tests;
