//! `callfleet doctor`: checks what a node needs before it starts (or while it runs) and says
//! what is wrong in plain words: config, database and schema, SIP/HTTP ports, TLS certificates
//! and keys, music on hold.

use std::path::Path;
use std::time::Duration;

use callfleet_store::Store;

use crate::config::Config;

/// Prints one line per check; fails if any check failed.
pub async fn doctor(path: &Path) -> anyhow::Result<()> {
    let cfg = match Config::load(path) {
        Ok(c) => {
            println!("ok    config {}", path.display());
            c
        }
        Err(e) => {
            println!("FAIL  config: {e}");
            anyhow::bail!("doctor found problems");
        }
    };
    let mut failed = 0;
    let mut report = |ok: bool, what: String| {
        println!("{}  {what}", if ok { "ok  " } else { "FAIL" });
        failed += usize::from(!ok);
    };
    // Opening a SQLite URL creates the file: only look, and leave creating it to the node.
    let missing_file = callfleet_store::sqlite_file(&cfg.database.url).filter(|p| !p.exists());
    if let Some(path) = missing_file {
        report(
            true,
            format!(
                "database file {} does not exist yet (the node or `callfleet migrate` creates it)",
                path.display()
            ),
        );
    } else {
        match tokio::time::timeout(Duration::from_secs(5), Store::connect(&cfg.database.url)).await
        {
            Ok(Ok(store)) => match store.ping().await {
                Ok(()) => report(true, format!("database reachable ({:?})", store.flavour())),
                Err(e) => report(false, format!("database: {e}")),
            },
            Ok(Err(e)) => report(false, format!("database: {e}")),
            Err(_) => report(false, "database: no answer within 5 s".into()),
        }
    }
    let running = node_running(&cfg).await;
    if running {
        report(
            true,
            format!(
                "node answers on {} (ports are in use by it)",
                crate::tls::node_url(cfg.http_tls(), cfg.http_advertise(), "/healthz")
            ),
        );
    } else {
        let sip = cfg.sip.listen;
        report(
            std::net::UdpSocket::bind(sip).is_ok(),
            format!("SIP UDP {sip} free"),
        );
        report(
            std::net::TcpListener::bind(sip).is_ok(),
            format!("SIP TCP {sip} free"),
        );
        report(
            std::net::TcpListener::bind(cfg.http.listen).is_ok(),
            format!("HTTP {} free", cfg.http.listen),
        );
        if let Some(tls) = cfg.sip_tls_listen() {
            report(
                std::net::TcpListener::bind(tls).is_ok(),
                format!("SIP TLS {tls} free"),
            );
        }
    }
    for (ok, what) in crate::tls::checks(&cfg) {
        report(ok, what);
    }
    let pattern = cfg.media.moh_dir.join("*.wav");
    let wavs = glob::glob(&pattern.to_string_lossy())
        .map(|g| g.filter_map(Result::ok).count())
        .unwrap_or(0);
    if wavs > 0 {
        report(
            true,
            format!(
                "{wavs} music-on-hold file(s) in {}",
                cfg.media.moh_dir.display()
            ),
        );
    } else {
        println!(
            "warn  no WAV files in {}: the built-in tune will play",
            cfg.media.moh_dir.display()
        );
    }
    if failed > 0 {
        anyhow::bail!("doctor found {failed} problem(s)");
    }
    println!("all checks passed");
    Ok(())
}

async fn node_running(cfg: &Config) -> bool {
    let url = crate::tls::node_url(cfg.http_tls(), cfg.http_advertise(), "/healthz");
    let Ok(client) = crate::tls::client(cfg, Duration::from_secs(2)) else {
        return false;
    };
    matches!(client.get(url).send().await, Ok(r) if r.status().is_success())
}
