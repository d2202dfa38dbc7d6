//! The heartbeat task: every `heartbeat.interval` it samples this host (sysinfo, cheaply),
//! updates the shed level (`crate::shed`; one log line per change), upserts this node's row, then reads every node's row and swaps the
//! balancer's cluster view. One write and one read per interval, never a query per INVITE.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use callfleet_lb::{NodeStatus, ProbeLoad};
use callfleet_store::Heartbeat;
use sysinfo::System;
use tokio::time::MissedTickBehavior;
use tracing::{debug, info, warn};

use std::sync::Arc;

use callfleet_lb::Balancer;
use callfleet_store::Store;
use callfleet_web::Metrics;

use crate::calls::CallTable;
use crate::config::Config;
use crate::lifecycle::Lifecycle;
use crate::{now_ms, shed};

/// How often heartbeat history is pruned, in beats.
const PRUNE_EVERY: u64 = 30;

/// What the heartbeat task uses of the node: it reads the calls, configuration and run state,
/// writes the shed level and refusal into the run state, the beat into the database, and the
/// cluster view into the balancer.
pub struct Heart {
    pub cfg: Config,
    pub life: Arc<Lifecycle>,
    pub store: Store,
    pub balancer: Balancer,
    pub metrics: Metrics,
    pub calls: Arc<CallTable>,
    pub alerts: Arc<crate::alerts::Inputs>,
}

/// Runs until the node's shutdown token is cancelled; the last beat marks the node draining so
/// other nodes stop sending to it at once.
pub async fn run(heart: Heart) {
    let mut sampler = Sampler::new(&heart);
    let mut tick = tokio::time::interval(heart.cfg.heartbeat.interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut seq: i64 = 0;
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = heart.life.beat_now.notified() => {}
            _ = heart.life.stopping.cancelled() => break,
        }
        seq += 1;
        let beat = sampler.sample(&heart, seq);
        beat_once(&heart, &beat, &mut failing).await;
        if (seq as u64).is_multiple_of(PRUNE_EVERY) {
            prune(&heart).await;
        }
        refresh_view(&heart).await;
    }
    // Say goodbye: draining, so main nodes stop choosing this node before its TTL runs out.
    let mut beat = sampler.sample(&heart, seq + 1);
    beat.draining = true;
    beat.refusing = true;
    if let Err(e) = heart.store.upsert_heartbeat(&beat).await {
        debug!(error = %e, "last heartbeat not written");
    }
}

/// Prunes heartbeat history: optional background work, deferred from shed level 2 (the next
/// prune takes what this one left).
async fn prune(heart: &Heart) {
    if !heart.life.background_allowed() {
        debug!(
            level = heart.life.shed.level(),
            "heartbeat history pruning deferred: shedding load"
        );
        return;
    }
    let keep = heart.cfg.heartbeat.history.as_millis() as i64;
    if let Err(e) = heart.store.prune_history(now_ms() - keep).await {
        debug!(error = %e, "heartbeat history not pruned");
    }
}

/// Writes one beat and records its latency. A write that takes longer than one interval counts
/// as failed, so that an unreachable database (whose calls only fail after the store's acquire
/// timeout) never delays the next read of the view.
async fn beat_once(heart: &Heart, beat: &Heartbeat, failing: &mut bool) {
    let started = Instant::now();
    let limit = heart.cfg.heartbeat.interval;
    match bounded(limit, heart.store.upsert_heartbeat(beat)).await {
        Ok(_) => {
            heart.life.beat_ok_ms.store(now_ms(), Ordering::Relaxed);
            heart.metrics.heartbeat_written(started.elapsed());
            heart.alerts.database_write(true);
            if *failing {
                info!("heartbeat writes resumed");
                *failing = false;
            }
        }
        Err(e) => {
            heart.metrics.heartbeat_failed();
            heart.alerts.database_write(false);
            if !*failing {
                warn!(error = %format!("{e:#}"), "cannot write heartbeat; calls continue, other nodes will see this node as down");
                *failing = true;
            }
        }
    }
}

/// Reads all heartbeats and swaps the balancer's view. On a read error the view is held: the
/// last rows, each peer's refreshed by its probe answers, so peers that answer keep getting
/// calls and silent ones still expire (see `callfleet_lb::hold`).
pub async fn refresh_view(heart: &Heart) {
    let limit = heart.cfg.heartbeat.interval;
    match bounded(limit, heart.store.heartbeats()).await {
        Ok(rows) => {
            let statuses = rows.into_iter().filter_map(to_status).collect();
            heart.balancer.replace_view(statuses, now_ms());
        }
        Err(e) => {
            debug!(error = %format!("{e:#}"), "cannot read heartbeats; holding the last cluster view");
            heart.balancer.hold(now_ms());
        }
    }
}

/// What the heartbeat samples of this host each beat, and the shed policy's memory.
struct Sampler {
    sys: System,
    cpu: shed::CpuWindow,
    thresholds: shed::Thresholds,
}

impl Sampler {
    fn new(heart: &Heart) -> Self {
        let mut sys = System::new();
        sys.refresh_cpu_usage();
        let cfg = &heart.cfg;
        Self {
            sys,
            cpu: shed::CpuWindow::new(shed::window_len(
                cfg.shed.cpu_window,
                cfg.heartbeat.interval,
            )),
            thresholds: cfg.shed.thresholds(cfg.lb.refuse_cpu),
        }
    }

    /// Samples the host, moves the shed level (one log line when it changes) and builds the
    /// beat.
    fn sample(&mut self, heart: &Heart, seq: i64) -> Heartbeat {
        self.sys.refresh_cpu_usage();
        self.sys.refresh_memory();
        let cpu = self.sys.global_cpu_usage();
        let load1 = System::load_average().one;
        let cores = self.sys.cpus().len().max(1);
        let calls = heart.calls.active();
        let cfg = &heart.cfg;
        let inputs = shed::Inputs {
            cpu_pct: self.cpu.push(cpu),
            load_per_core: (load1 / cores as f64) as f32,
            calls,
            capacity: cfg.node.capacity,
        };
        let level = self.shift(heart, &inputs);
        let refusing = level >= callfleet_lb::REFUSE_SHED_LEVEL;
        heart.life.refusing.store(refusing, Ordering::Relaxed);
        Heartbeat {
            name: cfg.node.name.clone(),
            role: cfg.node.role.as_str().to_string(),
            sip_addr: cfg.sip_advertise().to_string(),
            http_addr: cfg.http_advertise().to_string(),
            generation: heart.life.generation,
            seq,
            calls: i64::from(calls),
            capacity: i64::from(cfg.node.capacity),
            cpu_milli: (cpu * 10.0).round() as i64,
            load1_milli: (load1 * 1000.0).round() as i64,
            mem_used_kb: (self.sys.used_memory() / 1024) as i64,
            mem_total_kb: (self.sys.total_memory() / 1024) as i64,
            shed_level: i64::from(level),
            draining: heart.life.is_draining(),
            refusing: refusing || calls >= cfg.node.capacity,
            services: crate::tls::services(cfg),
            version: env!("CARGO_PKG_VERSION").to_string(),
            updated_at_ms: now_ms(),
        }
    }

    /// The next level, stored in the node's gate and the metrics; exactly one log line per
    /// change, with the inputs that caused it.
    fn shift(&self, heart: &Heart, inputs: &shed::Inputs) -> u8 {
        let before = heart.life.shed.level();
        let level = shed::next_level(before, &self.thresholds, inputs);
        heart.life.shed.set(level);
        heart.metrics.shed().set_level(level, level != before);
        if level != before {
            let (cpu, load) = (inputs.cpu_pct, inputs.load_per_core);
            let line = format!("shed level {before} -> {level}");
            if level > before {
                warn!(
                    from = before,
                    to = level,
                    cpu_pct = %format_args!("{cpu:.1}"),
                    load_per_core = %format_args!("{load:.2}"),
                    calls = inputs.calls,
                    capacity = inputs.capacity,
                    "{line}: {}",
                    shed::meaning(level)
                );
            } else {
                info!(
                    from = before,
                    to = level,
                    cpu_pct = %format_args!("{cpu:.1}"),
                    load_per_core = %format_args!("{load:.2}"),
                    calls = inputs.calls,
                    capacity = inputs.capacity,
                    "{line}: {}",
                    shed::meaning(level)
                );
            }
        }
        level
    }
}

/// `call`'s result, or an error once `limit` has passed without one.
async fn bounded<T>(
    limit: Duration,
    call: impl std::future::Future<Output = Result<T, callfleet_store::StoreError>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(limit, call).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(anyhow::anyhow!(
            "no answer from the database within {limit:?}"
        )),
    }
}

/// This node's live load as it answers a peer's probe: the same figures as its heartbeat, read
/// now (the shed level and refusing flag as the last beat set them).
pub fn live_load(calls: &CallTable, capacity: u32, life: &Lifecycle) -> ProbeLoad {
    let calls = calls.active();
    ProbeLoad {
        calls,
        capacity,
        shed_level: life.shed.level(),
        draining: life.is_draining(),
        refusing: life.is_refusing() || calls >= capacity,
    }
}

/// Converts a stored row; a row with unreadable addresses or role is skipped (and logged).
pub fn to_status(h: Heartbeat) -> Option<NodeStatus> {
    let parsed = (h.role.parse(), h.sip_addr.parse(), h.http_addr.parse());
    let (Ok(role), Ok(sip), Ok(http)) = parsed else {
        warn!(node = %h.name, role = %h.role, sip = %h.sip_addr, "ignoring heartbeat row with bad fields");
        return None;
    };
    Some(NodeStatus {
        name: h.name,
        role,
        sip,
        http,
        generation: h.generation,
        calls: clamp_u32(h.calls),
        capacity: clamp_u32(h.capacity),
        cpu_pct: h.cpu_milli as f32 / 10.0,
        load1: h.load1_milli as f32 / 1000.0,
        shed_level: h.shed_level.clamp(0, 3) as u8,
        draining: h.draining,
        refusing: h.refusing,
        updated_at_ms: h.updated_at_ms,
        services: h.services,
        version: h.version,
        mem_used_kb: h.mem_used_kb,
        mem_total_kb: h.mem_total_kb,
    })
}

fn clamp_u32(v: i64) -> u32 {
    v.clamp(0, i64::from(u32::MAX)) as u32
}

/// Waits up to `limit` for the first view that includes this node.
pub async fn wait_for_self(heart: &Heart, limit: Duration) {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        refresh_view(heart).await;
        if heart.balancer.view().get(&heart.cfg.node.name).is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
