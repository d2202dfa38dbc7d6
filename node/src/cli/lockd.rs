//! `callfleet lockd`: runs the lock service on one address until Ctrl-C or SIGTERM.

use std::net::SocketAddr;

use anyhow::Context as _;
use callfleet_lockd::Backend;
use tokio::sync::oneshot;
use tracing::{info, warn};

/// Name of lockd's serving thread(s).
const THREAD: &str = "lockd";

/// Serves the lockd HTTP API on `listen` over `backend` (`memory` or `memcached://HOST:PORT`)
/// with `workers` threads of its own (see [`callfleet_lockd::runtime`]), apart from the
/// runtime this is called on. A memcached that is down is logged, not fatal: lockd answers
/// 503 until it is back.
pub async fn lockd(listen: SocketAddr, backend: &str, workers: usize) -> anyhow::Result<()> {
    let backend = Backend::from_url(backend).context("choose the lock backend")?;
    let listener =
        std::net::TcpListener::bind(listen).with_context(|| format!("listen on {listen}"))?;
    listener
        .set_nonblocking(true)
        .context("make the listening socket non-blocking")?;
    let rt = callfleet_lockd::runtime(workers, THREAD).context("start lockd's runtime")?;
    let (done_tx, done_rx) = oneshot::channel();
    std::thread::Builder::new()
        .name(THREAD.into())
        .spawn(move || {
            let served = rt.block_on(serve(listen, listener, backend, workers));
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
) -> anyhow::Result<()> {
    let listener =
        tokio::net::TcpListener::from_std(listener).context("register the listening socket")?;
    match backend.check().await {
        Ok(()) => info!(%listen, backend = %backend, workers, "lockd is serving"),
        Err(e) => {
            warn!(%listen, backend = %backend, workers, error = %e, "lockd is serving, but its backend does not answer yet")
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
