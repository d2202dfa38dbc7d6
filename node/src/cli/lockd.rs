//! `callfleet lockd`: runs the lock service on one address until Ctrl-C or SIGTERM.

use std::net::SocketAddr;

use anyhow::Context as _;
use callfleet_lockd::Backend;
use tracing::{info, warn};

/// Serves the lockd HTTP API on `listen` over `backend` (`memory` or `memcached://HOST:PORT`).
/// A memcached that is down is logged, not fatal: lockd answers 503 until it is back.
pub async fn lockd(listen: SocketAddr, backend: &str) -> anyhow::Result<()> {
    let backend = Backend::from_url(backend).context("choose the lock backend")?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listen on {listen}"))?;
    match backend.check().await {
        Ok(()) => info!(%listen, backend = %backend, "lockd is serving"),
        Err(e) => {
            warn!(%listen, backend = %backend, error = %e, "lockd is serving, but its backend does not answer yet")
        }
    }
    callfleet_lockd::serve(listener, backend, stop_signal())
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
