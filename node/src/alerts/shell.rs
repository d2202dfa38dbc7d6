//! The alerts task: every `alerts.interval` it reads the inputs, runs the rules, steps the
//! engine, settles who sends what with the cluster, and hands one batch to the outbox.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use callfleet_store::{ActiveAlert, AlertKind, Severity, StoreError};
use callfleet_web::snapshot::Hub;
use tokio::time::MissedTickBehavior;
use tracing::{debug, info};

use super::cluster::Cluster;
use super::deliver::{Batch, Notice, Outbox};
use super::engine::{Condition, Engine, Key, Observation, Timing};
use super::hours::OpenHours;
use super::observe;
use super::rules::{self, RateWindow, ServiceTarget, Thresholds};
use crate::config::AlertsSection;
use crate::config::Config;
use crate::lifecycle::Lifecycle;
use crate::now_ms;

/// Longest wait for a read the rules can do without (the alerts table, carrier traffic).
const SQL_DEADLINE: Duration = Duration::from_secs(2);

/// What the alert rules read of the node: its configuration and run state, the database, the
/// lock service, its metrics and what the rest of the node reports ([`super::Inputs`]).
pub struct Sources {
    pub cfg: Config,
    pub life: Arc<Lifecycle>,
    pub store: callfleet_store::Store,
    pub locks: callfleet_lockd::LockClient,
    pub metrics: callfleet_web::Metrics,
    pub alerts: Arc<super::Inputs>,
}

/// What the task carries from one evaluation to the next.
struct Shell {
    node: Arc<Sources>,
    hub: Hub,
    cfg: AlertsSection,
    hours: Option<OpenHours>,
    enabled: BTreeSet<AlertKind>,
    engine: Engine,
    cluster: Cluster,
    bans: RateWindow,
    http: reqwest::Client,
    /// Alerts notified before this node started have been taken up.
    adopted: bool,
}

/// Runs until the node stops.
pub async fn run(node: Sources, hub: Hub, outbox: Outbox) {
    let node = Arc::new(node);
    let cfg = node.cfg.alerts.clone();
    let interval = cfg.interval;
    let lease_ttl = interval * 3 + Duration::from_secs(10);
    let mut shell = Shell {
        hours: OpenHours::parse(&cfg.open_hours, &cfg.open_days, &cfg.time_zone).ok(),
        enabled: enabled(&node),
        engine: Engine::new(timing(&cfg)),
        cluster: Cluster::new(
            node.locks.clone(),
            node.store.clone(),
            &node.cfg.node.name,
            node.life.generation,
            lease_ttl,
        ),
        bans: RateWindow::default(),
        http: reqwest::Client::new(),
        adopted: false,
        node,
        hub,
        cfg,
    };
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let stopping = shell.node.life.stopping.clone();
    loop {
        tokio::select! {
            _ = stopping.cancelled() => return,
            _ = tick.tick() => {}
        }
        let batch = tokio::select! {
            _ = stopping.cancelled() => return,
            batch = shell.evaluate() => batch,
        };
        if let Some(batch) = batch {
            outbox.send(batch);
        }
    }
}

/// The kinds this node evaluates, from its configuration.
fn enabled(node: &Sources) -> BTreeSet<AlertKind> {
    let cfg = &node.cfg.alerts;
    AlertKind::ALL
        .into_iter()
        .filter(|kind| match kind {
            AlertKind::LockdUnreachable => !node.cfg.lock.urls.is_empty(),
            AlertKind::ServiceLevelLow => cfg.service_level_target > 0.0,
            AlertKind::CarrierSilent => !cfg.carrier_silence.is_zero(),
            AlertKind::AuthBans => cfg.ban_count > 0,
            _ => true,
        })
        .collect()
}

fn timing(cfg: &AlertsSection) -> Timing {
    Timing {
        raise_after: BTreeMap::from([
            (AlertKind::NodeDown, cfg.node_down_after),
            (AlertKind::DatabaseUnreachable, cfg.database_after),
            (AlertKind::LockdUnreachable, cfg.lockd_after),
            (AlertKind::ShedHigh, cfg.shed_after),
        ]),
        clear_after: cfg.clear_after,
        repeat_after: cfg.repeat_after,
    }
}

impl Shell {
    /// One evaluation: the batch to send, if any. The time is taken after the alerts table
    /// was read, so a slow read never makes a condition look older than it is.
    async fn evaluate(&mut self) -> Option<Batch> {
        let rows = self.sql(self.node.store.active_alerts()).await;
        let now_ms = now_ms();
        if let (false, Ok(rows)) = (self.adopted, &rows) {
            self.adopt(rows, now_ms);
        }
        let seen = self.observe(now_ms).await;
        let transitions = self.engine.step(now_ms, &seen);
        let mut notices: Vec<Notice> = transitions
            .iter()
            .filter(|t| !t.key.kind.cluster_wide())
            .map(|t| Notice::from_transition(t, now_ms))
            .collect();
        match &rows {
            Ok(rows) => {
                let cluster = self
                    .cluster
                    .settle(&self.engine, &transitions, rows, &seen.known, now_ms)
                    .await;
                notices.extend(cluster);
                self.cluster
                    .mirror_local(&self.engine, rows, &seen.known, now_ms)
                    .await;
            }
            Err(e) => debug!(error = %e, "alerts table not read; cluster-wide alerts wait"),
        }
        self.export();
        (!notices.is_empty()).then(|| Batch::new(&self.node.cfg.node.name, now_ms, notices))
    }

    /// A read the rules can do without: skipped while the heartbeat finds the database
    /// unreachable, and given up after [`SQL_DEADLINE`], so that a database that is down or
    /// slow never delays the node-local alerts (the database's own first).
    async fn sql<T>(
        &self,
        read: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, String> {
        if self.node.alerts.database_failing() {
            return Err("the database is unreachable".to_owned());
        }
        match tokio::time::timeout(SQL_DEADLINE, read).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {SQL_DEADLINE:?}")),
        }
    }

    /// Takes up the alerts notified before this node started: cluster-wide ones of the kinds
    /// it evaluates, and its own node-local ones.
    fn adopt(&mut self, rows: &[ActiveAlert], now_ms: i64) {
        let me = self.node.cfg.node.name.as_str();
        let mut count = 0;
        for row in rows {
            let ours = row.kind.cluster_wide() || row.node.as_deref() == Some(me);
            if !ours || !self.enabled.contains(&row.kind) {
                continue;
            }
            let condition = Condition {
                key: Key::new(row.kind, row.subject.clone()),
                node: row.node.clone(),
                severity: row.severity,
                message: row.message.clone(),
            };
            self.engine.adopt(condition, row.raised_at_ms, now_ms);
            count += 1;
        }
        if count > 0 {
            info!(
                alerts = count,
                "took up alerts that were firing before this start"
            );
        }
        self.adopted = true;
    }

    /// Everything the rules look at now.
    async fn observe(&mut self, now_ms: i64) -> Observation {
        let mut seen = Observation::default();
        self.observe_cluster(now_ms, &mut seen);
        self.observe_node(now_ms, &mut seen).await;
        if let (true, Some(hours)) = (
            self.enabled.contains(&AlertKind::CarrierSilent),
            &self.hours,
        ) {
            if let Some(silent) = self.carriers_silent(hours, now_ms).await {
                seen.add(AlertKind::CarrierSilent, silent);
            }
        }
        seen
    }

    /// What the panel's snapshot says of the cluster (when it is fresh): nodes down, queues
    /// below their service level.
    fn observe_cluster(&self, now_ms: i64, seen: &mut Observation) {
        let cfg = &self.cfg;
        let me = self.node.cfg.node.name.as_str();
        let fresh_ms = i64::try_from((cfg.interval * 3).as_millis()).unwrap_or(i64::MAX) + 2_000;
        let snapshot = self
            .hub
            .current()
            .snapshot
            .filter(|s| !s.stale && now_ms - s.taken_at_ms <= fresh_ms);
        let Some(snap) = &snapshot else {
            return;
        };
        seen.add(AlertKind::NodeDown, rules::node_down(&snap.nodes, me));
        if self.enabled.contains(&AlertKind::ServiceLevelLow) {
            let target = ServiceTarget {
                target: cfg.service_level_target,
                min_calls: i64::from(cfg.service_level_min_calls),
                threshold_s: snap.service_level_s,
            };
            let engine = &self.engine;
            let firing = |k: &Key| engine.firing_severity(k).is_some();
            seen.add(
                AlertKind::ServiceLevelLow,
                rules::service_level(&snap.queues, target, firing),
            );
        }
    }

    /// What this node sees of itself: its database writes, shed level, lockd, disks, record
    /// spool and authentication bans.
    async fn observe_node(&mut self, now_ms: i64, seen: &mut Observation) {
        let node = self.node.clone();
        let me = node.cfg.node.name.as_str();
        let cfg = &self.cfg;
        let failing = node.alerts.database_failing();
        seen.add(AlertKind::DatabaseUnreachable, rules::database(me, failing));
        seen.add(AlertKind::ShedHigh, rules::shed(me, node.life.shed.level()));
        if self.enabled.contains(&AlertKind::LockdUnreachable) {
            let probes = observe::lockds(&self.http, &node.cfg.lock.urls).await;
            seen.add(AlertKind::LockdUnreachable, rules::lockd(me, &probes));
        }
        let mut dirs = vec![node.cfg.media.voicemail_dir.clone()];
        dirs.extend(cfg.disk_dirs.iter().cloned());
        let uses = observe::disks(dirs).await;
        let disk_t = Thresholds {
            warning_pct: cfg.disk_warning_pct,
            critical_pct: cfg.disk_critical_pct,
        };
        let engine = &self.engine;
        seen.add(
            AlertKind::DiskFull,
            rules::disk(me, &uses, disk_t, |k| engine.firing_severity(k)),
        );
        let spool_t = Thresholds {
            warning_pct: cfg.spool_warning_pct,
            critical_pct: cfg.spool_critical_pct,
        };
        let current = engine.firing_severity(&Key::new(AlertKind::SpoolFilling, me));
        let spool = rules::spool(me, node.alerts.spool.fill_pct(), spool_t, current);
        seen.add(AlertKind::SpoolFilling, spool);
        if self.enabled.contains(&AlertKind::AuthBans) {
            let in_window = self
                .bans
                .sample(now_ms, node.metrics.bans(), cfg.ban_window);
            let bans = rules::bans(me, in_window, cfg.ban_count, cfg.ban_window);
            seen.add(AlertKind::AuthBans, bans);
        }
    }

    /// The carriers silent within open hours, from the INVITE sources seen since the last
    /// evaluation (written to SQL first); `None` when that cannot be read (the sources are
    /// kept for the next time).
    async fn carriers_silent(&self, hours: &OpenHours, now_ms: i64) -> Option<Vec<Condition>> {
        let node = &self.node;
        let me = node.cfg.node.name.as_str();
        let sources = node.alerts.take_sources();
        let traffic = self.sql(observe::carrier_traffic(&node.store, me, &sources));
        match traffic.await {
            Ok((carriers, traffic)) => Some(rules::carrier_silent(
                &carriers,
                &traffic,
                hours,
                self.cfg.carrier_silence,
                now_ms,
            )),
            Err(e) => {
                debug!(error = %e, "carrier traffic not written; keeping it for next time");
                for (ip, at) in sources {
                    node.alerts.invite_from(ip, at);
                }
                None
            }
        }
    }

    /// This node's view of what fires, on `/metrics`.
    fn export(&self) {
        let (mut warning, mut critical) = (0, 0);
        for f in self.engine.firing() {
            match f.severity {
                Severity::Warning => warning += 1,
                Severity::Critical => critical += 1,
            }
        }
        self.node.metrics.set_alerts_firing(warning, critical);
    }
}
