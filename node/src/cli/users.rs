//! `callfleet user add|list|remove` (panel users) and `callfleet token add|list|remove` (CRM
//! API tokens). Passwords are stored as argon2id hashes; a token is shown once, at creation,
//! and stored as a SHA-256 of its secret part.

use anyhow::{bail, Context as _};
use callfleet_store::{User, UserRole};

use crate::config::Config;

/// Longest user or token name accepted.
const MAX_NAME: usize = 64;
/// Shortest password accepted.
const MIN_PASSWORD: usize = 8;

/// `user add`: creates the user, or sets its password, role and phone (ending its sessions).
/// Reads the password from the first line of stdin when `password` is `None`.
pub async fn add(
    cfg: &Config,
    name: &str,
    role: &str,
    password: Option<String>,
    device: Option<String>,
) -> anyhow::Result<()> {
    check_name("user", name)?;
    let role: UserRole = role
        .parse()
        .map_err(|_| anyhow::anyhow!("role {role:?}: use admin or supervisor"))?;
    let password = match password {
        Some(p) => p,
        None => super::device::read_password()?,
    };
    if password.chars().count() < MIN_PASSWORD {
        bail!("the password is too short: use at least {MIN_PASSWORD} characters");
    }
    let password_hash =
        callfleet_web::auth::hash_password(&password).context("hash the password")?;
    let store = super::open_store(&cfg.database.url).await?;
    store
        .upsert_user(&User {
            name: name.to_owned(),
            password_hash,
            role,
            device: device.filter(|d| !d.is_empty()),
            created_at_ms: crate::now_ms(),
        })
        .await
        .with_context(|| format!("save user {name}"))?;
    println!("user {name} ({role}) can log in to the panel");
    Ok(())
}

/// `user list`: one line per user (name, role, phone).
pub async fn list(cfg: &Config) -> anyhow::Result<()> {
    let store = super::open_store(&cfg.database.url).await?;
    let users = store.users().await.context("list users")?;
    for u in &users {
        println!(
            "{}\t{}\t{}",
            u.name,
            u.role,
            u.device.as_deref().unwrap_or("-")
        );
    }
    if users.is_empty() {
        eprintln!("no users");
    }
    Ok(())
}

/// `user remove`: deletes the user and ends its sessions.
pub async fn remove(cfg: &Config, name: &str) -> anyhow::Result<()> {
    let store = super::open_store(&cfg.database.url).await?;
    if !store
        .delete_user(name)
        .await
        .with_context(|| format!("remove user {name}"))?
    {
        bail!("there is no user {name}");
    }
    println!("user {name} removed");
    Ok(())
}

/// `token add`: creates a CRM API token and prints it (the only time it is shown).
pub async fn token_add(cfg: &Config, name: &str) -> anyhow::Result<()> {
    check_name("token", name)?;
    let store = super::open_store(&cfg.database.url).await?;
    if store
        .api_tokens()
        .await
        .context("list API tokens")?
        .iter()
        .any(|t| t.name == name)
    {
        bail!("a token named {name} exists: remove it first to issue a new one");
    }
    let (row, token) = callfleet_web::auth::new_api_token(name, crate::now_ms());
    store
        .insert_api_token(&row)
        .await
        .with_context(|| format!("save token {name}"))?;
    println!("{token}");
    eprintln!("token {name} created; it is shown only this once");
    Ok(())
}

/// `token list`: one line per token (name, public id).
pub async fn token_list(cfg: &Config) -> anyhow::Result<()> {
    let store = super::open_store(&cfg.database.url).await?;
    let tokens = store.api_tokens().await.context("list API tokens")?;
    for t in &tokens {
        println!("{}\t{}", t.name, t.id);
    }
    if tokens.is_empty() {
        eprintln!("no tokens");
    }
    Ok(())
}

/// `token remove`: revokes a token at once on every node.
pub async fn token_remove(cfg: &Config, name: &str) -> anyhow::Result<()> {
    let store = super::open_store(&cfg.database.url).await?;
    if !store
        .delete_api_token(name)
        .await
        .with_context(|| format!("remove token {name}"))?
    {
        bail!("there is no token {name}");
    }
    println!("token {name} revoked");
    Ok(())
}

pub(crate) fn check_name(what: &str, name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if !ok {
        bail!("{what} name {name:?}: use 1 to {MAX_NAME} letters, digits, '-', '_', '.' or '@'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn names() {
        for (name, ok) in [
            ("alice", true),
            ("crm.prod-1", true),
            ("ops@site", true),
            ("", false),
            ("a b", false),
            ("<x>", false),
            (&"n".repeat(65), false),
        ] {
            assert_eq!(check_name("user", name).is_ok(), ok, "{name:?}");
        }
    }
}
