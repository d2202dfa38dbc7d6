//! The checks a restore makes before it installs anything (an existing install, a running
//! node, the name taken in the cluster, the addresses), and starting the restored node
//! detached, with its pid and log in the state folder.

use std::fs::{self, OpenOptions};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _};
use callfleet_snapshots::Layout;

use crate::config::Config;

/// How long a started node has to answer `/healthz`.
const START_LIMIT: Duration = Duration::from_secs(30);

/// Refuses to go on when the install would clobber a node or cannot work: a config already
/// at the layout's place (unless `force`), a node an earlier restore started still running,
/// a live node of the same name in the cluster, addresses this host cannot bind.
pub async fn preflight(
    layout: &Layout,
    cfg: &Config,
    force: bool,
    starting: bool,
) -> anyhow::Result<()> {
    let config = layout.config();
    if config.exists() && !force {
        bail!(
            "a node is already installed here: {} exists (--force replaces its configuration; \
             or restore under another --root)",
            config.display()
        );
    }
    if let Some(pid) = running_pid(layout) {
        bail!(
            "the node an earlier restore started is still running (pid {pid}, {}): stop it first",
            layout.pid_file().display()
        );
    }
    name_is_free(cfg).await?;
    if starting {
        bindable(cfg)?;
    }
    Ok(())
}

/// The pid in the layout's pid file, if that process is alive.
fn running_pid(layout: &Layout) -> Option<u32> {
    let text = fs::read_to_string(layout.pid_file()).ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    std::path::Path::new(&format!("/proc/{pid}"))
        .exists()
        .then_some(pid)
}

/// On PostgreSQL, refuses a name whose heartbeat is fresh: two live nodes must never share a
/// name. Only reads; an unreachable database is a warning (the node reports it at start).
async fn name_is_free(cfg: &Config) -> anyhow::Result<()> {
    let url = &cfg.database.url;
    if !(url.starts_with("postgres:") || url.starts_with("postgresql:")) {
        return Ok(());
    }
    let read = async {
        let store = callfleet_store::Store::connect(url).await?;
        store.heartbeats().await
    };
    let rows = match tokio::time::timeout(Duration::from_secs(3), read).await {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => {
            eprintln!("warning: cannot read the cluster's heartbeats ({e}); not checking that the name is free");
            return Ok(());
        }
        Err(_) => {
            eprintln!("warning: the database did not answer within 3 s; not checking that the name is free");
            return Ok(());
        }
    };
    let ttl = cfg.heartbeat.ttl().as_millis() as i64;
    let now = crate::now_ms();
    if let Some(row) = rows
        .iter()
        .find(|r| r.name == cfg.node.name && now - r.updated_at_ms < ttl)
    {
        bail!(
            "a node named {} is alive in the cluster (heartbeat {} ms old, SIP {}): choose another --name",
            row.name,
            now - row.updated_at_ms,
            row.sip_addr
        );
    }
    Ok(())
}

/// The node's SIP (UDP and TCP) and HTTP addresses can be bound on this host now.
fn bindable(cfg: &Config) -> anyhow::Result<()> {
    let sip = cfg.sip.listen;
    let hint = "is it an address of this host, and free?";
    std::net::UdpSocket::bind(sip)
        .with_context(|| format!("cannot bind SIP on UDP {sip}: {hint}"))?;
    std::net::TcpListener::bind(sip)
        .with_context(|| format!("cannot bind SIP on TCP {sip}: {hint}"))?;
    let http = cfg.http.listen;
    std::net::TcpListener::bind(http)
        .with_context(|| format!("cannot bind HTTP on {http}: {hint}"))?;
    Ok(())
}

/// Starts the installed node in its own process group, detached from this command, with its
/// output appended to the log file and its pid written to the pid file; returns once its
/// `/healthz` answers.
pub async fn start(layout: &Layout, cfg: &Config) -> anyhow::Result<u32> {
    let log_path = layout.log_file();
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("open {}", log_path.display()))?;
    let err_log = log
        .try_clone()
        .with_context(|| format!("open {}", log_path.display()))?;
    let mut command = Command::new(layout.binary());
    command
        .args(["node", "--config"])
        .arg(layout.config())
        .current_dir(layout.state_dir())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err_log);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        command.process_group(0);
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("start {}", layout.binary().display()))?;
    let pid = child.id();
    fs::write(layout.pid_file(), format!("{pid}\n"))
        .with_context(|| format!("write {}", layout.pid_file().display()))?;
    let url = crate::tls::node_url(
        cfg.http_tls(),
        crate::cli::health::local_http(cfg),
        "/healthz",
    );
    let client =
        crate::tls::client(cfg, Duration::from_millis(500)).context("build HTTP client")?;
    let until = tokio::time::Instant::now() + START_LIMIT;
    while tokio::time::Instant::now() < until {
        if let Ok(Some(status)) = child.try_wait() {
            bail!(
                "the node exited at start ({status}); the end of {}:\n{}",
                log_path.display(),
                log_tail(&log_path)
            );
        }
        if let Ok(resp) = client.get(&url).send().await {
            if resp.status().is_success() {
                return Ok(pid);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!(
        "the node (pid {pid}) did not answer {url} within {} s; the end of {}:\n{}",
        START_LIMIT.as_secs(),
        log_path.display(),
        log_tail(&log_path)
    )
}

/// The last lines of a log, for an error message.
fn log_tail(path: &std::path::Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(15);
    lines.into_iter().skip(skip).collect::<Vec<_>>().join("\n")
}
