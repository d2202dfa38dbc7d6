//! `callfleet device add|list|remove`: the phones allowed to register. A device's password is
//! never stored: `add` writes its HA1 digests (MD5 and SHA-256) for the config's `sip.realm`.

use std::io::BufRead as _;

use anyhow::{bail, Context as _};
use callfleet_store::{Device, Store};

use crate::config::Config;
use crate::registrar::digest::{ha1, Algorithm};

/// Longest extension accepted.
const MAX_EXT: usize = 32;

/// `device add`: creates the device or sets its password (and name). Reads the password from
/// the first line of stdin when `password` is `None`, so it stays out of the process list.
pub async fn add(
    cfg: &Config,
    ext: &str,
    password: Option<String>,
    name: Option<String>,
) -> anyhow::Result<()> {
    check_extension(ext)?;
    let password = match password {
        Some(p) => p,
        None => read_password()?,
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    let realm = &cfg.sip.realm;
    let device = Device {
        extension: ext.to_string(),
        ha1_md5: ha1(Algorithm::Md5, ext, realm, &password),
        ha1_sha256: ha1(Algorithm::Sha256, ext, realm, &password),
        realm: realm.clone(),
        display_name: name.unwrap_or_default(),
        created_at_ms: crate::now_ms(),
    };
    let store = open(cfg).await?;
    store
        .upsert_device(&device)
        .await
        .with_context(|| format!("save device {ext}"))?;
    println!("device {ext} can register in realm {realm:?}");
    Ok(())
}

/// `device list`: one line per device (extension, realm, name).
pub async fn list(cfg: &Config) -> anyhow::Result<()> {
    let store = open(cfg).await?;
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
    let store = open(cfg).await?;
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

async fn open(cfg: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&cfg.database.url)
        .await
        .context("connect to the database")?;
    store.migrate().await.context("migrate the database")?;
    Ok(store)
}

/// Extensions are what phones put in their SIP URI user part: keep them to safe characters.
fn check_extension(ext: &str) -> anyhow::Result<()> {
    let ok = !ext.is_empty()
        && ext.len() <= MAX_EXT
        && ext
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'));
    if !ok {
        bail!("extension {ext:?}: use 1 to {MAX_EXT} letters, digits, '-', '_', '.' or '+'");
    }
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

#[cfg(test)]
mod tests {
    use super::check_extension;

    #[test]
    fn extensions() {
        for (ext, ok) in [
            ("1001", true),
            ("+4930123", true),
            ("desk.a_1-2", true),
            ("", false),
            ("10 01", false),
            ("1001@x", false),
            ("\"1\"", false),
            (&"9".repeat(33), false),
        ] {
            assert_eq!(check_extension(ext).is_ok(), ok, "{ext:?}");
        }
    }
}
