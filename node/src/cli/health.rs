//! `callfleet health --config FILE`: whether the node of that config is up and takes calls,
//! in one line, with the exit status keepalived's `vrrp_script` reads: 0 ready, 1 not running
//! (or not answering), 2 running but taking no calls (draining, refusing, database
//! unreachable).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context as _;
use callfleet_web::ready::{Readiness, ReadyState};

use crate::config::Config;

/// How long the check waits for the node's answer.
const LIMIT: Duration = Duration::from_secs(2);

/// The answer of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// The node answered `/readyz`.
    Answered(Readiness),
    /// Nothing answered, or not in time: the reason.
    NotRunning(String),
}

impl Health {
    /// The process exit status for this answer.
    pub fn exit_code(&self) -> i32 {
        match self {
            Health::Answered(r) if r.state == ReadyState::Ready => 0,
            Health::Answered(_) => 2,
            Health::NotRunning(_) => 1,
        }
    }

    /// One line: `NODE: STATE: detail`.
    pub fn line(&self, node: &str) -> String {
        match self {
            Health::Answered(r) => format!("{node}: {}: {}", r.state.as_str(), r.detail),
            Health::NotRunning(why) => format!("{node}: not running: {why}"),
        }
    }
}

/// Where this host reaches the node's HTTP: its listen address, or loopback for a wildcard.
pub fn local_http(cfg: &Config) -> SocketAddr {
    let listen = cfg.http.listen;
    if listen.ip().is_unspecified() {
        SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen.port())
    } else {
        listen
    }
}

/// Asks the node of `cfg` for `/readyz`.
pub async fn check(cfg: &Config) -> anyhow::Result<Health> {
    let url = crate::tls::node_url(cfg.http_tls(), local_http(cfg), "/readyz");
    let client = crate::tls::client(cfg, LIMIT).context("build HTTP client")?;
    let resp = match client.get(&url).send().await {
        Ok(resp) => resp,
        Err(e) if e.is_timeout() => {
            return Ok(Health::NotRunning(format!(
                "{url} did not answer within {} s",
                LIMIT.as_secs()
            )))
        }
        Err(e) => {
            let cause = std::error::Error::source(&e)
                .map(|s| s.to_string())
                .unwrap_or_else(|| e.to_string());
            return Ok(Health::NotRunning(format!(
                "nothing answers at {url} ({cause})"
            )));
        }
    };
    let status = resp.status();
    match resp.json::<Readiness>().await {
        Ok(ready) => Ok(Health::Answered(ready)),
        Err(_) => Ok(Health::NotRunning(format!(
            "{url} answered HTTP {status} without a readiness report: is a callfleet node \
             of this version listening there?"
        ))),
    }
}

/// `callfleet health`: prints the line and exits with [`Health::exit_code`].
pub async fn health(cfg: &Config) -> anyhow::Result<()> {
    let health = check(cfg).await?;
    println!("{}", health.line(&cfg.node.name));
    let code = health.exit_code();
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}
