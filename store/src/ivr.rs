//! IVR menus: a prompt, the keys a caller may press and where each leads, how long to wait
//! for a key, how many times the menu is played, and where the caller goes once they are used
//! up (the invalid path). A menu and its choices are written together in one transaction that
//! bumps the config version; nodes run menus from their configuration cache.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::numbers::{destination_cols, Destination};
use crate::{Store, StoreError};

/// The keys a choice may use.
pub const DIGITS: &str = "0123456789*#";

/// One row of `ivr_menus` with its `ivr_choices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IvrMenu {
    pub name: String,
    /// A file of the node's prompts directory (`welcome.wav`) or one of its prompts by name.
    pub prompt: String,
    /// How long the caller has to press a key after each play, in milliseconds (> 0).
    pub timeout_ms: i64,
    /// How many times the menu is played at most (>= 1).
    pub repeats: u32,
    /// Where the caller goes once the plays are used up without a valid key.
    pub invalid: Destination,
    /// Key (one of [`DIGITS`]) to destination.
    pub choices: BTreeMap<char, Destination>,
    /// The music-on-hold class a caller hears after leaving the menu for an agent's extension
    /// (a folder of the music directory).
    pub moh_class: String,
    pub created_at_ms: i64,
}

const UPSERT_MENU: &str = "\
INSERT INTO ivr_menus (name, prompt, timeout_ms, repeats, invalid_kind, invalid_target, \
created_at_ms, moh_class) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
ON CONFLICT (name) DO UPDATE SET prompt = excluded.prompt, timeout_ms = excluded.timeout_ms, \
repeats = excluded.repeats, invalid_kind = excluded.invalid_kind, \
invalid_target = excluded.invalid_target, moh_class = excluded.moh_class";

impl Store {
    /// Creates a menu or replaces it and all its choices (an existing menu keeps its creation
    /// time), bumping the config version, in one transaction.
    pub async fn upsert_menu(&self, m: &IvrMenu) -> Result<(), StoreError> {
        let mut statements = vec![
            sqlx::query(UPSERT_MENU)
                .bind(&m.name)
                .bind(&m.prompt)
                .bind(m.timeout_ms)
                .bind(i64::from(m.repeats))
                .bind(m.invalid.kind.as_str())
                .bind(&m.invalid.target)
                .bind(m.created_at_ms)
                .bind(&m.moh_class),
            sqlx::query("DELETE FROM ivr_choices WHERE menu = $1").bind(&m.name),
        ];
        for (digit, to) in &m.choices {
            statements.push(
                sqlx::query(
                    "INSERT INTO ivr_choices (menu, digit, kind, target) VALUES ($1, $2, $3, $4)",
                )
                .bind(&m.name)
                .bind(digit.to_string())
                .bind(to.kind.as_str())
                .bind(&to.target),
            );
        }
        self.config_write_all("upsert IVR menu", statements).await
    }

    /// All menus with their choices, by name.
    pub async fn menus(&self) -> Result<Vec<IvrMenu>, StoreError> {
        const WHAT: &str = "list IVR menus";
        let rows = sqlx::query(
            "SELECT name, prompt, timeout_ms, repeats, invalid_kind, invalid_target, \
             created_at_ms, moh_class FROM ivr_menus ORDER BY name",
        )
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::query(WHAT))?;
        let mut menus: Vec<IvrMenu> = rows
            .iter()
            .map(menu_from_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::query(WHAT))?;
        let choices = sqlx::query("SELECT menu, digit, kind, target FROM ivr_choices")
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        for row in &choices {
            let (menu, digit, to) = choice_from_row(row).map_err(StoreError::query(WHAT))?;
            if let Some(m) = menus.iter_mut().find(|m| m.name == menu) {
                m.choices.insert(digit, to);
            }
        }
        Ok(menus)
    }

    /// Deletes a menu and its choices; `false` if there was none. Bumps the config version
    /// when a row was deleted.
    pub async fn delete_menu(&self, name: &str) -> Result<bool, StoreError> {
        let statement = sqlx::query("DELETE FROM ivr_menus WHERE name = $1").bind(name);
        Ok(self.config_write("delete IVR menu", statement).await? > 0)
    }
}

fn menu_from_row(row: &AnyRow) -> Result<IvrMenu, sqlx::Error> {
    let repeats: i64 = row.try_get("repeats")?;
    Ok(IvrMenu {
        name: row.try_get("name")?,
        prompt: row.try_get("prompt")?,
        timeout_ms: row.try_get("timeout_ms")?,
        repeats: u32::try_from(repeats).unwrap_or(1).max(1),
        invalid: destination_cols(row, "invalid_kind", "invalid_target")?,
        choices: BTreeMap::new(),
        moh_class: row.try_get("moh_class")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

fn choice_from_row(row: &AnyRow) -> Result<(String, char, Destination), sqlx::Error> {
    let digit: String = row.try_get("digit")?;
    let mut chars = digit.chars();
    let (Some(d), None) = (chars.next(), chars.next()) else {
        return Err(sqlx::Error::ColumnDecode {
            index: "digit".into(),
            source: format!("not one key: {digit:?}").into(),
        });
    };
    Ok((
        row.try_get("menu")?,
        d,
        destination_cols(row, "kind", "target")?,
    ))
}

#[cfg(test)]
mod tests;
