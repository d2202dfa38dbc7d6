//! The `callfleet` subcommands other than running a node: `migrate`, `node drain`, `demo`,
//! `doctor`, `lockd`, `device`, `snapshot`, `health`.

mod demo;
pub mod device;
mod doctor;
pub mod health;
mod lockd;
pub mod snapshot;
pub mod users;

use std::path::Path;

use anyhow::{bail, Context as _};
use callfleet_store::Store;

use crate::config::Config;

pub use demo::demo;
pub use doctor::doctor;
pub use health::health;
pub use lockd::lockd;

/// Logs to stderr; `RUST_LOG` overrides the default filter.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rsipstack=warn,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

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

/// `callfleet node drain`: asks the node at `http.listen` to drain.
pub async fn drain(cfg: &Config) -> anyhow::Result<()> {
    let url = format!("http://{}/api/v1/admin/drain", cfg.http_advertise());
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .context("build HTTP client")?;
    let mut req = client.post(&url);
    if let Some(secret) = &cfg.http.secret {
        req = req.header(callfleet_web::SECRET_HEADER, secret);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("reach node {} at {url}", cfg.node.name))?;
    if !resp.status().is_success() {
        bail!(
            "node {} refused to drain: HTTP {}",
            cfg.node.name,
            resp.status()
        );
    }
    println!(
        "node {} is draining: it takes no new calls and exits when its calls have ended",
        cfg.node.name
    );
    Ok(())
}
