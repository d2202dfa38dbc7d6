//! `callfleet doctor`: checks what a node needs before it starts (or while it runs) and says
//! what is wrong in plain words: config, database and schema, SIP/HTTP ports, TLS certificates
//! and keys, music on hold.

use std::path::Path;
use std::time::Duration;

use callfleet_store::Store;

use crate::config::Config;

/// One check's verdict: whether it passed, and what it says.
type Check = (bool, String);

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
    let mut report = |(ok, what): Check| {
        println!("{}  {what}", if ok { "ok  " } else { "FAIL" });
        failed += usize::from(!ok);
    };
    report(database(&cfg).await);
    ports(&cfg).await.into_iter().for_each(&mut report);
    crate::tls::checks(&cfg).into_iter().for_each(&mut report);
    match music_on_hold(&cfg) {
        Some(check) => report(check),
        None => println!(
            "warn  no WAV files in {}: the built-in tune will play",
            cfg.media.moh_dir.display()
        ),
    }
    if failed > 0 {
        anyhow::bail!("doctor found {failed} problem(s)");
    }
    println!("all checks passed");
    Ok(())
}

/// Whether the database answers (within 5 s). A SQLite file that does not exist yet passes:
/// opening its URL would create it, so the check only looks and leaves that to the node.
async fn database(cfg: &Config) -> Check {
    let missing_file = callfleet_store::sqlite_file(&cfg.database.url).filter(|p| !p.exists());
    if let Some(path) = missing_file {
        return (
            true,
            format!(
                "database file {} does not exist yet (the node or `callfleet migrate` creates it)",
                path.display()
            ),
        );
    }
    match tokio::time::timeout(Duration::from_secs(5), Store::connect(&cfg.database.url)).await {
        Ok(Ok(store)) => match store.ping().await {
            Ok(()) => (true, format!("database reachable ({:?})", store.flavour())),
            Err(e) => (false, format!("database: {e}")),
        },
        Ok(Err(e)) => (false, format!("database: {e}")),
        Err(_) => (false, "database: no answer within 5 s".into()),
    }
}

/// Whether the node's ports can be taken: one check saying the node already holds them when
/// it answers, else one per port (SIP UDP and TCP, HTTP, SIP TLS when configured).
async fn ports(cfg: &Config) -> Vec<Check> {
    if node_running(cfg).await {
        return vec![(
            true,
            format!(
                "node answers on {} (ports are in use by it)",
                crate::tls::node_url(cfg.http_tls(), cfg.http_advertise(), "/healthz")
            ),
        )];
    }
    let sip = cfg.sip.listen;
    let mut checks = vec![
        (
            free(std::net::UdpSocket::bind(sip)),
            format!("SIP UDP {sip} free"),
        ),
        (
            free(std::net::TcpListener::bind(sip)),
            format!("SIP TCP {sip} free"),
        ),
        (
            free(std::net::TcpListener::bind(cfg.http.listen)),
            format!("HTTP {} free", cfg.http.listen),
        ),
    ];
    if let Some(tls) = cfg.sip_tls_listen() {
        checks.push((
            free(std::net::TcpListener::bind(tls)),
            format!("SIP TLS {tls} free"),
        ));
    }
    checks
}

/// Whether a port could be bound; the socket is closed again before the next is tried.
fn free<S>(bound: std::io::Result<S>) -> bool {
    bound.is_ok()
}

/// The music-on-hold files found, or `None` when there are none (a warning, not a failure:
/// the built-in tune plays).
fn music_on_hold(cfg: &Config) -> Option<Check> {
    let pattern = cfg.media.moh_dir.join("*.wav");
    let wavs = glob::glob(&pattern.to_string_lossy())
        .map(|g| g.filter_map(Result::ok).count())
        .unwrap_or(0);
    (wavs > 0).then(|| {
        (
            true,
            format!(
                "{wavs} music-on-hold file(s) in {}",
                cfg.media.moh_dir.display()
            ),
        )
    })
}

async fn node_running(cfg: &Config) -> bool {
    let url = crate::tls::node_url(cfg.http_tls(), cfg.http_advertise(), "/healthz");
    let Ok(client) = crate::tls::client(cfg, Duration::from_secs(2)) else {
        return false;
    };
    matches!(client.get(url).send().await, Ok(r) if r.status().is_success())
}
