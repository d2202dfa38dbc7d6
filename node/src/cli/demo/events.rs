//! What the simulated traffic did, for the visitor: one line per event in `DIR/traffic.log`
//! (written by a thread of its own, so no task waits on the disk), and counters for the
//! summary printed when the demo stops.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use anyhow::Context as _;

/// Counters of the simulated traffic.
#[derive(Debug, Default)]
pub struct Stats {
    placed: AtomicU64,
    answered: AtomicU64,
    failed: AtomicU64,
    redirects: AtomicU64,
    agent_calls: AtomicU64,
    listens: AtomicU64,
}

impl Stats {
    pub fn placed(&self) {
        self.placed.fetch_add(1, Ordering::Relaxed);
    }
    /// A call answered; `redirected`: by the node a 302 named.
    pub fn answered(&self, redirected: bool) {
        self.answered.fetch_add(1, Ordering::Relaxed);
        if redirected {
            self.redirects.fetch_add(1, Ordering::Relaxed);
        }
    }
    pub fn failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }
    pub fn agent_call(&self) {
        self.agent_calls.fetch_add(1, Ordering::Relaxed);
    }
    pub fn listen(&self) {
        self.listens.fetch_add(1, Ordering::Relaxed);
    }

    /// One line for the end of the demo.
    pub fn summary(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "{} calls placed, {} answered by the cluster ({} after a 302), {} not answered; \
             agents' phones took {} calls; the supervisor's phone {} listen-ins",
            get(&self.placed),
            get(&self.answered),
            get(&self.redirects),
            get(&self.failed),
            get(&self.agent_calls),
            get(&self.listens)
        )
    }
}

/// The traffic log and counters, shared by the carrier and the phones.
#[derive(Clone)]
pub struct Events {
    tx: mpsc::Sender<String>,
    start: Instant,
    pub stats: Arc<Stats>,
    nodes: Arc<Vec<(IpAddr, String)>>,
}

impl Events {
    /// Opens (appends to) the log at `path`; `nodes` names the nodes' IPs in log lines.
    pub fn open(path: &Path, nodes: Vec<(IpAddr, String)>) -> anyhow::Result<Events> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("open {}", path.display()))?;
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::Builder::new()
            .name("demo-traffic-log".into())
            .spawn(move || {
                for line in rx {
                    if writeln!(file, "{line}")
                        .and_then(|()| file.flush())
                        .is_err()
                    {
                        // The disk is full or gone: the demo goes on without its log.
                        return;
                    }
                }
            })
            .context("start the traffic log's thread")?;
        Ok(Events {
            tx,
            start: Instant::now(),
            stats: Arc::new(Stats::default()),
            nodes: Arc::new(nodes),
        })
    }

    /// Writes one line, stamped with the seconds since the traffic started.
    pub fn line(&self, text: impl std::fmt::Display) {
        let secs = self.start.elapsed().as_secs_f64();
        // The writer ends only when the disk fails; the line is lost then.
        let _ = self.tx.send(format!("{secs:8.1}s  {text}"));
    }

    /// The demo node at `addr`, by name (the address when it is none of them).
    pub fn node_name(&self, addr: SocketAddr) -> String {
        self.nodes
            .iter()
            .find(|(ip, _)| *ip == addr.ip())
            .map_or_else(|| addr.to_string(), |(_, name)| name.clone())
    }
}
