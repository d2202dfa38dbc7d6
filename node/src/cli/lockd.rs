//! `callfleet lockd`: runs the lock service on one address until Ctrl-C or SIGTERM, taking
//! only requests signed with the cluster secret.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context as _;
use callfleet_lockd::{Auth, Backend, ClusterKey};
use tokio::sync::oneshot;
use tracing::{info, warn};

/// Name of lockd's serving thread(s).
const THREAD: &str = "lockd";

/// The environment variable lockd reads the secret from when given neither a file nor a
/// config (the same name a node's config override has).
pub const SECRET_ENV: &str = "CALLFLEET_HTTP_SECRET";

/// The cluster secret's key for lockd: from `secret_file` (the whole file, trimmed), else a
/// node's `config` (`http.secret`), else `CALLFLEET_HTTP_SECRET`; never from the command line, where
/// every user of the host could read it. A weak secret is refused.
pub fn lockd_key(secret_file: Option<&Path>, config: Option<&Path>) -> anyhow::Result<ClusterKey> {
    let secret = match (secret_file, config) {
        (Some(file), _) => {
            warn_if_readable_by_others(file);
            std::fs::read_to_string(file)
                .with_context(|| format!("read the cluster secret from {}", file.display()))?
        }
        (None, Some(config)) => crate::config::Config::load(config)
            .with_context(|| format!("load config {}", config.display()))?
            .http
            .secret
            .unwrap_or_default(),
        (None, None) => std::env::var(SECRET_ENV).map_err(|_| {
            anyhow::anyhow!(
                "lockd needs the cluster secret (the nodes' http.secret): --secret-file FILE, \
                 --config NODE_CONFIG, or {SECRET_ENV} in the environment"
            )
        })?,
    };
    ClusterKey::strong(&secret).context("check the cluster secret")
}

/// Logs a warning when `file` may be read by users other than its owner and group.
fn warn_if_readable_by_others(file: &Path) {
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(file) {
        use std::os::unix::fs::PermissionsExt as _;
        if meta.permissions().mode() & 0o004 != 0 {
            warn!(file = %file.display(), "the cluster secret file is readable by every user of this host: chmod 0600 it");
        }
    }
}

/// Serves the lockd HTTP API on `listen` over `backend` (`memory` or `memcached://HOST:PORT`)
/// with `workers` threads of its own (see [`callfleet_lockd::runtime`]), apart from the
/// runtime this is called on, to requests signed with `key`. A memcached that is down is
/// logged, not fatal: lockd answers 503 until it is back.
pub async fn lockd(
    listen: SocketAddr,
    backend: &str,
    workers: usize,
    key: ClusterKey,
) -> anyhow::Result<()> {
    let backend = Backend::from_url(backend).context("choose the lock backend")?;
    let listener = crate::tcp::listen(listen).with_context(|| format!("listen on {listen}"))?;
    let rt = callfleet_lockd::runtime(workers, THREAD).context("start lockd's runtime")?;
    let (done_tx, done_rx) = oneshot::channel();
    std::thread::Builder::new()
        .name(THREAD.into())
        .spawn(move || {
            let served = rt.block_on(serve(listen, listener, backend, workers, key));
            let _ = done_tx.send(served);
        })
        .context("start lockd's thread")?;
    match done_rx.await {
        Ok(served) => served,
        Err(_) => anyhow::bail!("lockd's thread ended without a result (it panicked)"),
    }
}

async fn serve(
    listen: SocketAddr,
    listener: std::net::TcpListener,
    backend: Backend,
    workers: usize,
    key: ClusterKey,
) -> anyhow::Result<()> {
    let listener =
        tokio::net::TcpListener::from_std(listener).context("register the listening socket")?;
    match backend.check().await {
        Ok(()) => info!(%listen, backend = %backend, workers, "lockd is serving"),
        Err(e) => {
            warn!(%listen, backend = %backend, workers, error = %e, "lockd is serving, but its backend does not answer yet")
        }
    }
    callfleet_lockd::serve(listener, backend, Auth::new(key), stop_signal())
        .await
        .context("serve the lockd API")?;
    info!("lockd stopped");
    Ok(())
}

async fn stop_signal() {
    let term = async {
        #[cfg(unix)]
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
        #[cfg(not(unix))]
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => info!("interrupted; stopping lockd"),
        _ = term => info!("terminated; stopping lockd"),
    }
}
