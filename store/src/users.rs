//! Panel users, their login sessions and CRM API tokens.
//!
//! The store only keeps what it is given: password hashes (argon2id PHC
//! strings, made by the web layer), and SHA-256 hex of session ids and token
//! secrets. Users are not part of the config version: nodes read them per
//! request, never from a cache.

use std::fmt;

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::decode::enum_col;
use crate::{Store, StoreError};

/// What a panel user may do: the shared [`callfleet_vocab::Role`].
pub use callfleet_vocab::Role as UserRole;

/// One row of `users`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Login name, primary key.
    pub name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub role: UserRole,
    /// The user's own phone extension (listen-in dials it).
    pub device: Option<String>,
    pub created_at_ms: i64,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// A live login session with its user, as a request sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: String,
    pub role: UserRole,
    pub device: Option<String>,
    /// The token state-changing requests of this session must carry.
    pub csrf: String,
    pub expires_at_ms: i64,
}

/// One row of `api_tokens` (the secret is only ever stored hashed).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Public part of the token, primary key.
    pub id: String,
    /// SHA-256 hex of the secret part.
    pub secret_hash: String,
    /// Who the token is for (unique), e.g. the CRM's name.
    pub name: String,
    pub created_at_ms: i64,
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiToken")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

const UPSERT_USER: &str = "\
INSERT INTO users (name, password_hash, role, device, created_at_ms) VALUES ($1, $2, $3, $4, $5) \
ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash, role = excluded.role, \
    device = excluded.device";

const SELECT_USERS: &str = "SELECT name, password_hash, role, device, created_at_ms FROM users";

const SELECT_SESSION: &str = "\
SELECT s.user_name, u.role, u.device, s.csrf, s.expires_at_ms \
FROM sessions s JOIN users u ON u.name = s.user_name \
WHERE s.id_hash = $1 AND s.expires_at_ms > $2";

impl Store {
    /// Creates a user or replaces its password, role and device (the
    /// creation time of an existing user is kept). Ends the user's sessions
    /// when it existed, so a password or role change logs it out everywhere.
    pub async fn upsert_user(&self, user: &User) -> Result<(), StoreError> {
        const WHAT: &str = "upsert user";
        let mut tx = self.pool().begin().await.map_err(StoreError::query(WHAT))?;
        sqlx::query(UPSERT_USER)
            .bind(&user.name)
            .bind(&user.password_hash)
            .bind(user.role.as_str())
            .bind(&user.device)
            .bind(user.created_at_ms)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::write(WHAT))?;
        sqlx::query("DELETE FROM sessions WHERE user_name = $1")
            .bind(&user.name)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::write(WHAT))?;
        tx.commit().await.map_err(StoreError::query(WHAT))
    }

    /// The user with this name, if any.
    pub async fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        const WHAT: &str = "read user";
        let row = sqlx::query(&format!("{SELECT_USERS} WHERE name = $1"))
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        row.as_ref()
            .map(user_from_row)
            .transpose()
            .map_err(StoreError::query(WHAT))
    }

    /// All users, by name.
    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        const WHAT: &str = "list users";
        let rows = sqlx::query(&format!("{SELECT_USERS} ORDER BY name"))
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        rows.iter()
            .map(user_from_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::query(WHAT))
    }

    /// Deletes a user and its sessions; `false` if there was none.
    pub async fn delete_user(&self, name: &str) -> Result<bool, StoreError> {
        const WHAT: &str = "delete user";
        let mut tx = self.pool().begin().await.map_err(StoreError::query(WHAT))?;
        sqlx::query("DELETE FROM sessions WHERE user_name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::write(WHAT))?;
        let gone = sqlx::query("DELETE FROM users WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::write(WHAT))?
            .rows_affected();
        tx.commit().await.map_err(StoreError::query(WHAT))?;
        Ok(gone > 0)
    }

    /// Records a new session of `user`, keyed by the hash of its id.
    pub async fn insert_session(
        &self,
        id_hash: &str,
        user: &str,
        csrf: &str,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_name, csrf, created_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id_hash)
        .bind(user)
        .bind(csrf)
        .bind(now_ms)
        .bind(expires_at_ms)
        .execute(self.pool())
        .await
        .map_err(StoreError::write("insert session"))?;
        Ok(())
    }

    /// The unexpired session with this id hash, joined with its user.
    pub async fn session(&self, id_hash: &str, now_ms: i64) -> Result<Option<Session>, StoreError> {
        const WHAT: &str = "read session";
        let row = sqlx::query(SELECT_SESSION)
            .bind(id_hash)
            .bind(now_ms)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        row.as_ref()
            .map(|row| -> Result<Session, sqlx::Error> {
                Ok(Session {
                    user: row.try_get("user_name")?,
                    role: enum_col(row, "role")?,
                    device: row.try_get("device")?,
                    csrf: row.try_get("csrf")?,
                    expires_at_ms: row.try_get("expires_at_ms")?,
                })
            })
            .transpose()
            .map_err(StoreError::query(WHAT))
    }

    /// Ends one session; `false` if there was none.
    pub async fn delete_session(&self, id_hash: &str) -> Result<bool, StoreError> {
        let gone = sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(self.pool())
            .await
            .map_err(StoreError::write("delete session"))?
            .rows_affected();
        Ok(gone > 0)
    }

    /// Deletes sessions that expired before `now_ms`; returns how many.
    pub async fn purge_sessions(&self, now_ms: i64) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM sessions WHERE expires_at_ms <= $1")
                .bind(now_ms)
                .execute(self.pool())
                .await
                .map_err(StoreError::write("purge sessions"))?
                .rows_affected(),
        )
    }

    /// Stores a new API token; fails with a constraint error if the name or
    /// id is taken.
    pub async fn insert_api_token(&self, token: &ApiToken) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_tokens (id, secret_hash, name, created_at_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(&token.id)
        .bind(&token.secret_hash)
        .bind(&token.name)
        .bind(token.created_at_ms)
        .execute(self.pool())
        .await
        .map_err(StoreError::write("insert API token"))?;
        Ok(())
    }

    /// The token with this public id, if any.
    pub async fn api_token(&self, id: &str) -> Result<Option<ApiToken>, StoreError> {
        const WHAT: &str = "read API token";
        let row = sqlx::query(
            "SELECT id, secret_hash, name, created_at_ms FROM api_tokens WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await
        .map_err(StoreError::query(WHAT))?;
        row.as_ref()
            .map(token_from_row)
            .transpose()
            .map_err(StoreError::query(WHAT))
    }

    /// All tokens, by name.
    pub async fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        const WHAT: &str = "list API tokens";
        let rows = sqlx::query(
            "SELECT id, secret_hash, name, created_at_ms FROM api_tokens ORDER BY name",
        )
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::query(WHAT))?;
        rows.iter()
            .map(token_from_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::query(WHAT))
    }

    /// Revokes the token with this name; `false` if there was none.
    pub async fn delete_api_token(&self, name: &str) -> Result<bool, StoreError> {
        let gone = sqlx::query("DELETE FROM api_tokens WHERE name = $1")
            .bind(name)
            .execute(self.pool())
            .await
            .map_err(StoreError::write("delete API token"))?
            .rows_affected();
        Ok(gone > 0)
    }
}

fn user_from_row(row: &AnyRow) -> Result<User, sqlx::Error> {
    Ok(User {
        name: row.try_get("name")?,
        password_hash: row.try_get("password_hash")?,
        role: enum_col(row, "role")?,
        device: row.try_get("device")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

fn token_from_row(row: &AnyRow) -> Result<ApiToken, sqlx::Error> {
    Ok(ApiToken {
        id: row.try_get("id")?,
        secret_hash: row.try_get("secret_hash")?,
        name: row.try_get("name")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

#[cfg(test)]
mod tests;
