//! Scale-out, on main nodes with `[scale]` set: when the cluster's utilisation stays above
//! `scale.threshold` for `scale.duration`, one main node acts once: it runs `scale.command`
//! and/or POSTs `scale.webhook`. Exactly one acts because acting needs the lockd lease
//! [`LEASE_KEY`], taken for `scale.cooldown` and never given back: it is the cluster-wide
//! cooldown, and a node that finds it held does nothing. The decision ([`utilisation`],
//! [`Trigger`]) is pure and takes the time as an argument; the rest is the shell.

use std::process::Stdio;
use std::time::Duration;

use callfleet_lb::{NodeReport, Role};
use callfleet_lockd::Acquire;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tracing::{debug, info, warn};

use crate::config::ScaleSection;
use std::sync::Arc;

use callfleet_lb::Balancer;
use callfleet_lockd::LockClient;

use crate::config::Config;
use crate::lifecycle::Lifecycle;
use crate::now_ms;

#[cfg(test)]
mod tests;

/// The lockd key whose lease lets a main node act, held for `scale.cooldown`.
pub const LEASE_KEY: &str = "scale:cluster";
/// After the lease was held by another node, or lockd could not be asked: try again this
/// much later (the busy spell goes on counting meanwhile).
pub const RETRY: Duration = Duration::from_secs(5);
/// Header of the webhook's HMAC-SHA256 of the body, keyed with `http.secret`.
pub const SIGNATURE_HEADER: &str = "x-callfleet-signature";

/// The load of the nodes that take new calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    /// Calls in progress on them; a refusing node counts as full.
    pub calls: u64,
    pub capacity: u64,
    /// How many nodes take new calls (alive, not draining, answering probes).
    pub nodes: usize,
}

impl Load {
    pub fn ratio(&self) -> f64 {
        if self.capacity == 0 {
            1.0
        } else {
            self.calls as f64 / self.capacity as f64
        }
    }
}

/// The cluster's utilisation from a main node's view: over the nodes that are alive, not
/// draining and answering probes, their calls (all of its capacity for a node refusing new
/// calls, which has no room left) over their capacity. `None` with no such node: nothing to
/// judge (a cluster with no node taking calls is not helped by a guess).
pub fn utilisation(nodes: &[NodeReport]) -> Option<Load> {
    let taking: Vec<&NodeReport> = nodes
        .iter()
        .filter(|n| n.alive && !n.draining && n.responding)
        .collect();
    if taking.is_empty() {
        return None;
    }
    let capacity = taking.iter().map(|n| u64::from(n.capacity)).sum();
    let calls = taking
        .iter()
        .map(|n| {
            if n.refusing {
                u64::from(n.capacity)
            } else {
                u64::from(n.calls.min(n.capacity))
            }
        })
        .sum();
    Some(Load {
        calls,
        capacity,
        nodes: taking.len(),
    })
}

/// What [`Trigger::step`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// At or below the threshold (or nothing to judge).
    Below,
    /// Above it, for this long so far: not long enough, or quiet (cooling down, retrying).
    Busy { for_ms: i64 },
    /// Above it for `duration`, not quiet: take the lease and act.
    Act { for_ms: i64 },
}

/// "Utilisation stayed above the threshold for the duration, not in cooldown."
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    threshold: f64,
    duration_ms: i64,
    /// Since when utilisation has been above the threshold, without a gap.
    above_since: Option<i64>,
    /// No acting before this (ms since the epoch).
    quiet_until: i64,
}

impl Trigger {
    pub fn new(threshold: f64, duration: Duration) -> Self {
        Self {
            threshold,
            duration_ms: duration.as_millis() as i64,
            above_since: None,
            quiet_until: 0,
        }
    }

    /// Takes the utilisation read at `now_ms`.
    pub fn step(&mut self, now_ms: i64, utilisation: Option<f64>) -> Step {
        match utilisation {
            Some(u) if u > self.threshold => {
                let since = *self.above_since.get_or_insert(now_ms);
                let for_ms = now_ms - since;
                if for_ms >= self.duration_ms && now_ms >= self.quiet_until {
                    Step::Act { for_ms }
                } else {
                    Step::Busy { for_ms }
                }
            }
            _ => {
                self.above_since = None;
                Step::Below
            }
        }
    }

    /// This node acted at `now_ms`: quiet for `cooldown`, and a new busy spell must last the
    /// whole duration again.
    pub fn acted(&mut self, now_ms: i64, cooldown: Duration) {
        self.above_since = None;
        self.quiet_until = now_ms + cooldown.as_millis() as i64;
    }

    /// Acting was not possible now (the lease is held elsewhere, lockd failed): ask again
    /// after `retry`, still counting the busy spell.
    pub fn retry(&mut self, now_ms: i64, retry: Duration) {
        self.quiet_until = now_ms + retry.as_millis() as i64;
    }
}

/// What scale-out uses of the node: its configuration and run state, the cluster view and the
/// lock service.
#[derive(Clone)]
pub struct Scaler {
    pub cfg: Config,
    pub life: Arc<Lifecycle>,
    pub balancer: Balancer,
    pub locks: LockClient,
}

/// Runs on main nodes with `[scale]` set, one step per heartbeat interval, until the node
/// stops.
pub async fn run(scaler: Scaler) {
    let cfg = &scaler.cfg;
    if cfg.node.role != Role::Main || !cfg.scale.enabled() {
        return;
    }
    if cfg.lock.urls.is_empty() {
        warn!("[scale] without [lock] urls: the scale lease is this node's own, so every main node with [scale] may act");
    }
    let scale = &cfg.scale;
    let mut trigger = Trigger::new(f64::from(scale.threshold), scale.duration);
    let mut tick = tokio::time::interval(cfg.heartbeat.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = scaler.life.stopping.cancelled() => return,
            _ = tick.tick() => {}
        }
        if scaler.life.is_draining() {
            continue;
        }
        let now = now_ms();
        let load = utilisation(&scaler.balancer.snapshot(now));
        if let Step::Act { for_ms } = trigger.step(now, load.map(|l| l.ratio())) {
            if let Some(load) = load {
                act(&scaler, &mut trigger, load, for_ms).await;
            }
        }
    }
}

/// Takes the lease and, if granted, starts the hooks.
async fn act(scaler: &Scaler, trigger: &mut Trigger, load: Load, for_ms: i64) {
    let scale = &scaler.cfg.scale;
    let owner = format!("{}/scale/{}", scaler.cfg.node.name, scaler.life.generation);
    match scaler
        .locks
        .try_acquire(LEASE_KEY, &owner, scale.cooldown)
        .await
    {
        Ok(Acquire::Granted(lease)) => {
            trigger.acted(now_ms(), scale.cooldown);
            info!(
                utilisation = %format!("{:.2}", load.ratio()),
                threshold = scale.threshold,
                busy_for_ms = for_ms,
                calls = load.calls,
                capacity = load.capacity,
                nodes = load.nodes,
                token = lease.token(),
                cooldown = ?scale.cooldown,
                "scaling out: the cluster stayed busy; running the scale hooks"
            );
            tokio::spawn(hooks(scaler.clone(), load));
        }
        Ok(Acquire::Held { holder }) => {
            debug!(holder = ?holder, "another main node scaled out; cooling down");
            trigger.retry(now_ms(), RETRY);
        }
        Err(e) => {
            warn!(error = %e, "cannot take the scale lease from lockd; not scaling out now");
            trigger.retry(now_ms(), RETRY);
        }
    }
}

/// The environment of the command, and the webhook's fields.
fn facts(scaler: &Scaler, load: Load) -> Vec<(&'static str, String)> {
    vec![
        ("CALLFLEET_HOOK_NODE", scaler.cfg.node.name.clone()),
        ("CALLFLEET_HOOK_UTILISATION", format!("{:.3}", load.ratio())),
        ("CALLFLEET_HOOK_CALLS", load.calls.to_string()),
        ("CALLFLEET_HOOK_CAPACITY", load.capacity.to_string()),
        ("CALLFLEET_HOOK_NODES", load.nodes.to_string()),
    ]
}

async fn hooks(scaler: Scaler, load: Load) {
    let scale = &scaler.cfg.scale;
    if let Some(command) = &scale.command {
        run_command(command, scale, facts(&scaler, load)).await;
    }
    if let Some(url) = &scale.webhook {
        post_webhook(&scaler, url, load).await;
    }
}

/// Runs `sh -c COMMAND`, killed after `scale.timeout`, and logs how it ended with the end of
/// its output.
async fn run_command(command: &str, scale: &ScaleSection, env: Vec<(&'static str, String)>) {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(child) => child,
        Err(e) => {
            warn!(error = %e, command, "cannot start the scale command");
            return;
        }
    };
    match tokio::time::timeout(scale.timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => {
            let output = tail(&[out.stdout, out.stderr].concat());
            if out.status.success() {
                info!(command, %output, "scale command done");
            } else {
                warn!(command, status = %out.status, %output, "scale command failed");
            }
        }
        Ok(Err(e)) => warn!(error = %e, command, "scale command: cannot read its end"),
        Err(_) => {
            warn!(command, timeout = ?scale.timeout, "scale command killed: it ran past scale.timeout")
        }
    }
}

/// The last 1000 bytes of a command's output, as text.
fn tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(1000);
    String::from_utf8_lossy(bytes.get(start..).unwrap_or_default())
        .trim()
        .to_owned()
}

/// The webhook's body.
pub fn webhook_body(node: &str, load: Load, threshold: f32, at_ms: i64) -> String {
    serde_json::json!({
        "event": "scale_out",
        "node": node,
        "utilisation": (load.ratio() * 1000.0).round() / 1000.0,
        "threshold": f64::from(threshold),
        "calls": load.calls,
        "capacity": load.capacity,
        "nodes": load.nodes,
        "at_ms": at_ms,
    })
    .to_string()
}

/// `sha256=HEX`: HMAC-SHA256 of `body` keyed with `secret`.
pub fn signature(secret: &str, body: &str) -> Option<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(body.as_bytes());
    Some(format!(
        "sha256={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

async fn post_webhook(scaler: &Scaler, url: &str, load: Load) {
    let scale = &scaler.cfg.scale;
    let body = webhook_body(&scaler.cfg.node.name, load, scale.threshold, now_ms());
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            warn!(error = %e, "scale webhook: cannot build the HTTP client");
            return;
        }
    };
    let mut request = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    if let Some(sig) = scaler
        .cfg
        .http
        .secret
        .as_deref()
        .and_then(|s| signature(s, &body))
    {
        request = request.header(SIGNATURE_HEADER, sig);
    }
    match request.body(body).send().await {
        Ok(resp) if resp.status().is_success() => {
            info!(url, status = %resp.status(), "scale webhook posted");
        }
        Ok(resp) => warn!(url, status = %resp.status(), "scale webhook refused"),
        Err(e) => warn!(url, error = %e, "scale webhook failed"),
    }
}
