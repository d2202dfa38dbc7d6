//! The `callfleet` subcommands other than running a node: `migrate`, `node drain`, `demo`,
//! `doctor`, `lockd`, `device`, `provision`, `proxy`, `snapshot`, `health`, `dev seed`; and the logging setup every subcommand
//! shares.

pub mod demo;
pub mod device;
mod doctor;
pub mod health;
mod lockd;
pub mod logging;
pub mod provision;
pub mod proxy;
pub mod seed;
pub mod snapshot;
pub mod users;

use std::path::Path;

use anyhow::{bail, Context as _};
use callfleet_store::Store;

use crate::config::Config;

pub use demo::{demo, DemoOptions};
pub use doctor::doctor;
pub use health::health;
pub use lockd::{lockd, lockd_key};

/// `callfleet migrate`: creates or upgrades the schema.
pub async fn migrate(config: Option<&Path>, database: Option<String>) -> anyhow::Result<()> {
    let url = match (config, database) {
        (_, Some(url)) => url,
        (Some(path), None) => {
            Config::load(path)
                .with_context(|| format!("load config {}", path.display()))?
                .database
                .url
        }
        (None, None) => bail!("callfleet migrate needs --config FILE or --database URL"),
    };
    open_store(&url).await?;
    println!("database is up to date");
    Ok(())
}

/// Connects to the cluster database and brings its schema up to date (what the management
/// commands do before they read or write).
pub(crate) async fn open_store(url: &str) -> anyhow::Result<Store> {
    let store = Store::connect(url)
        .await
        .context("connect to the database")?;
    store.migrate().await.context("migrate the database")?;
    Ok(store)
}

/// `callfleet node drain`: asks the node at `http.listen` to drain, with a request signed
/// with the cluster secret of the config.
pub async fn drain(cfg: &Config) -> anyhow::Result<()> {
    const PATH: &str = "/api/v1/admin/drain";
    let url = crate::tls::node_url(cfg.http_tls(), cfg.http_advertise(), PATH);
    let client =
        crate::tls::client(cfg, std::time::Duration::from_secs(5)).context("build HTTP client")?;
    let signature = callfleet_sign::Signer::new(cfg.cluster_key()).sign_now("POST", PATH, b"");
    let resp = client
        .post(&url)
        .header(callfleet_web::SIGNATURE_HEADER, signature)
        .send()
        .await
        .with_context(|| format!("reach node {} at {url}", cfg.node.name))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        bail!(
            "node {} refused to drain: HTTP {status} {}",
            cfg.node.name,
            body.chars().take(300).collect::<String>()
        );
    }
    println!(
        "node {} is draining: it takes no new calls and exits when its calls have ended",
        cfg.node.name
    );
    Ok(())
}

/// `callfleet dev seed`: writes a synthetic call history of `plan` into the database of
/// `config` or `database` (schema brought up to date first).
pub async fn dev_seed(
    config: Option<&Path>,
    database: Option<String>,
    plan: seed::Plan,
) -> anyhow::Result<()> {
    let url = match (config, database) {
        (_, Some(url)) => url,
        (Some(path), None) => {
            Config::load(path)
                .with_context(|| format!("load config {}", path.display()))?
                .database
                .url
        }
        (None, None) => bail!("callfleet dev seed needs --config FILE or --database URL"),
    };
    let store = open_store(&url).await?;
    let started = std::time::Instant::now();
    let n = seed::seed(&store, plan).await?;
    println!(
        "{n} CDRs over {} days written in {:.1} s",
        plan.days,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
