//! `callfleet device add|list|remove`: the phones allowed to register. A device's password is
//! never stored: `add` writes its HA1 digests (MD5 and SHA-256) for the config's `sip.realm`.

use std::io::BufRead as _;

use anyhow::{bail, Context as _};

use crate::config::Config;
use crate::registrar::credentials;

/// `device add`: creates the device or sets its password (and name). Reads the password from
/// the first line of stdin when `password` is `None`, so it stays out of the process list.
pub async fn add(
    cfg: &Config,
    ext: &str,
    password: Option<String>,
    name: Option<String>,
) -> anyhow::Result<()> {
    credentials::check_extension(ext)?;
    let password = match password {
        Some(p) => p,
        None => read_password()?,
    };
    let realm = &cfg.sip.realm;
    let device = credentials::device(
        ext,
        realm,
        &password,
        &name.unwrap_or_default(),
        crate::now_ms(),
    )?;
    let store = super::open_store(&cfg.database.url).await?;
    store
        .upsert_device(&device)
        .await
        .with_context(|| format!("save device {ext}"))?;
    println!("device {ext} can register in realm {realm:?}");
    Ok(())
}

/// `device list`: one line per device (extension, realm, name).
pub async fn list(cfg: &Config) -> anyhow::Result<()> {
    let store = super::open_store(&cfg.database.url).await?;
    let devices = store.devices().await.context("list devices")?;
    for d in &devices {
        println!("{}\t{}\t{}", d.extension, d.realm, d.display_name);
    }
    if devices.is_empty() {
        eprintln!("no devices");
    }
    Ok(())
}

/// `device remove`: the phone can no longer register (its bindings expire).
pub async fn remove(cfg: &Config, ext: &str) -> anyhow::Result<()> {
    let store = super::open_store(&cfg.database.url).await?;
    if !store
        .delete_device(ext)
        .await
        .with_context(|| format!("remove device {ext}"))?
    {
        bail!("there is no device {ext}");
    }
    println!("device {ext} removed");
    Ok(())
}

pub(crate) fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("read the password from stdin")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
