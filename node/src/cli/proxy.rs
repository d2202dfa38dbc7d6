//! `callfleet proxy add|list|remove`: office VoIP proxies, which check in with
//! `POST /api/v1/proxies/{name}/checkin` and their token. A token is printed once; only its
//! SHA-256 is stored.

use anyhow::{bail, Context as _};
use callfleet_store::Proxy;

use crate::config::Config;

/// `proxy add`: adds a proxy and prints its token (once).
pub async fn add(cfg: &Config, name: &str) -> anyhow::Result<()> {
    super::users::check_name("proxy", name)?;
    let store = super::open_store(&cfg.database.url).await?;
    let token = callfleet_web::proxy::new_token();
    let row = Proxy {
        name: name.to_owned(),
        token_hash: callfleet_web::proxy::token_hash(&token),
        address: None,
        last_checkin_ms: None,
        created_at_ms: crate::now_ms(),
    };
    match store.add_proxy(&row).await {
        Ok(()) => {}
        Err(callfleet_store::StoreError::Duplicate { .. }) => {
            bail!("a proxy named {name} exists: remove it first to make a new token")
        }
        Err(e) => return Err(e).with_context(|| format!("save proxy {name}")),
    }
    println!("{token}");
    eprintln!(
        "proxy {name} added; its token is shown only this once. The proxy checks in every \
         minute: curl -fsS -X POST -H 'Authorization: Bearer TOKEN' \
         http://NODE:8080/api/v1/proxies/{name}/checkin"
    );
    Ok(())
}

/// `proxy list`: one line per proxy (name, address or `-`, last check-in in ms or `-`).
pub async fn list(cfg: &Config) -> anyhow::Result<()> {
    let store = super::open_store(&cfg.database.url).await?;
    let proxies = store.proxies().await.context("list proxies")?;
    for p in &proxies {
        println!(
            "{}\t{}\t{}",
            p.name,
            p.address.as_deref().unwrap_or("-"),
            p.last_checkin_ms
                .map_or_else(|| "-".to_owned(), |t| t.to_string())
        );
    }
    if proxies.is_empty() {
        eprintln!("no proxies");
    }
    Ok(())
}

/// `proxy remove`: nodes stop taking SIP from its address within a second or two.
pub async fn remove(cfg: &Config, name: &str) -> anyhow::Result<()> {
    let store = super::open_store(&cfg.database.url).await?;
    if !store
        .remove_proxy(name)
        .await
        .with_context(|| format!("remove proxy {name}"))?
    {
        bail!("there is no proxy {name}");
    }
    println!("proxy {name} removed");
    Ok(())
}
