//! `callfleet provision token add|list|remove` and `callfleet provision list`: the tokens that
//! let new phones configure themselves (`GET /provision/{file}`), and the phones that did.
//! A token is printed once; only its SHA-256 is stored.

use anyhow::{bail, Context as _};
use callfleet_store::ProvisioningToken;

use crate::config::Config;

/// `provision token add`: makes a token and prints it (once).
pub async fn token_add(cfg: &Config, name: &str) -> anyhow::Result<()> {
    super::users::check_name("provisioning token", name)?;
    let store = super::open_store(&cfg.database.url).await?;
    let token = callfleet_web::provision::new_token();
    let row = ProvisioningToken {
        name: name.to_owned(),
        token_hash: callfleet_web::provision::token_hash(&token),
        created_at_ms: crate::now_ms(),
    };
    match store.add_provisioning_token(&row).await {
        Ok(()) => {}
        Err(callfleet_store::StoreError::Duplicate { .. }) => {
            bail!("a provisioning token named {name} exists: remove it first to make a new one")
        }
        Err(e) => return Err(e).with_context(|| format!("save provisioning token {name}")),
    }
    println!("{token}");
    eprintln!(
        "provisioning token {name} created; it is shown only this once. Phones present it as \
         the HTTP password of their first fetch of /provision/"
    );
    Ok(())
}

/// `provision token list`: one line per token (name, creation time in ms).
pub async fn token_list(cfg: &Config) -> anyhow::Result<()> {
    let store = super::open_store(&cfg.database.url).await?;
    let tokens = store
        .provisioning_tokens()
        .await
        .context("list provisioning tokens")?;
    for t in &tokens {
        println!("{}\t{}", t.name, t.created_at_ms);
    }
    if tokens.is_empty() {
        eprintln!("no provisioning tokens");
    }
    Ok(())
}

/// `provision token remove`: no new phone can use the token; phones it made keep working.
pub async fn token_remove(cfg: &Config, name: &str) -> anyhow::Result<()> {
    let store = super::open_store(&cfg.database.url).await?;
    if !store
        .remove_provisioning_token(name)
        .await
        .with_context(|| format!("remove provisioning token {name}"))?
    {
        bail!("there is no provisioning token {name}");
    }
    println!("provisioning token {name} removed");
    Ok(())
}

/// `provision list`: one line per phone that provisioned itself (MAC, extension, family,
/// first source, token, last fetch in ms).
pub async fn list(cfg: &Config) -> anyhow::Result<()> {
    let store = super::open_store(&cfg.database.url).await?;
    let phones = store
        .provisioned_phones()
        .await
        .context("list provisioned phones")?;
    for p in &phones {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            p.mac, p.extension, p.family, p.source, p.token_name, p.fetched_at_ms
        );
    }
    if phones.is_empty() {
        eprintln!("no provisioned phones");
    }
    Ok(())
}
