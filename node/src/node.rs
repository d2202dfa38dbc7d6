//! The running node: its shared state (`Node`, a cheap clone) and the start/stop sequence that
//! wires store, heartbeat, balancer, SIP, media and HTTP together.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use callfleet_lb::{Balancer, LbConfig, LocalLoad};
use callfleet_store::Store;
use callfleet_web::{ApiError, AppState, BoxFuture, Metrics, NodeApi};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::calls::CallTable;
use crate::config::Config;
use crate::media::{moh::Library, ports::PortPool};
use crate::records::{self, Recorder};
use crate::registrar::{self, Registrar};
use crate::{heartbeat, now_ms, sip};

/// Shared state of the running node.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

pub struct Inner {
    pub cfg: Config,
    /// New at every start (ms since the epoch at start).
    pub generation: i64,
    pub store: Store,
    pub balancer: Balancer,
    pub metrics: Metrics,
    pub calls: CallTable,
    pub recorder: Recorder,
    pub moh: Library,
    pub ports: PortPool,
    /// Phones' REGISTERs and where an extension is (`locate`).
    pub registrar: Registrar,
    /// Wrong hot-desk PINs per phone and per agent (a std mutex, never held across an
    /// `.await`).
    pub pins: std::sync::Mutex<crate::throttle::Throttle<String>>,
    /// Agent leases (lockd, or in-process on one host).
    pub locks: callfleet_lockd::LockClient,
    /// Signs this node's requests to other nodes with the cluster secret.
    pub signer: callfleet_sign::Signer,
    pub prompts: crate::media::prompts::Prompts,
    /// Prompts uploaded on the admin pages, read from SQL once per upload.
    pub uploads: crate::media::uploaded::Uploaded,
    /// Queues and agents, cached from SQL.
    pub realtime: Arc<crate::realtime::Realtime>,
    /// Calls of this node waiting in the cluster queue.
    pub queue: Arc<crate::queue::Local>,
    /// Bridged calls of this node that supervisors may listen to.
    pub listen: crate::listen::Listenable,
    /// Operator asked this node to take no new calls and exit when idle.
    pub draining: AtomicBool,
    /// CPU over `lb.refuse_cpu` or shed level 3 (set by the heartbeat task).
    pub refusing: AtomicBool,
    /// The shed level (set by the heartbeat task; see `crate::shed`), shared with the HTTP
    /// layer and every job that asks whether it may run.
    pub shed: crate::shed::ShedGate,
    /// Counts calls, to spread callers over the music-on-hold tracks.
    pub call_seq: AtomicUsize,
    /// Background loops stop when this is cancelled.
    pub stopping: CancellationToken,
    /// Every call in progress hangs up (BYE) when this is cancelled.
    pub hangup: CancellationToken,
    /// Signalled when draining is requested.
    pub drain_requested: tokio::sync::Notify,
    /// What the alert rules are told by the heartbeat, SIP admission and the record spool.
    pub alerts: crate::alerts::Inputs,
    /// When draining was first asked for (ms since the epoch; 0: not draining).
    pub drain_started_ms: AtomicI64,
    /// When a heartbeat was last written (ms since the epoch; 0: not yet).
    pub beat_ok_ms: AtomicI64,
    /// Asks the heartbeat task for a beat now (a draining node says so at once).
    pub beat_now: tokio::sync::Notify,
    /// Every call's SIP messages (`crate::trace`).
    pub trace: crate::trace::Tracer,
}

impl Deref for Node {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl Node {
    /// This node's live load, read per INVITE.
    pub fn local_load(&self) -> LocalLoad {
        LocalLoad {
            calls: self.calls.active(),
            capacity: self.cfg.node.capacity,
            refusing: self.refusing.load(Ordering::Relaxed),
            draining: self.draining.load(Ordering::Relaxed),
        }
    }

    /// Whether optional background work (MP3 conversion, trace export batches, history
    /// pruning) may start an item now; when it may not (shed level 2 and up) the deferral is
    /// counted in `callfleet_shed_actions_total{action="background_deferred"}` and the job
    /// tries again later: it resumes by itself when the level falls.
    pub fn background_allowed(&self) -> bool {
        let allowed = self.shed.allows(crate::shed::Work::Background);
        if !allowed {
            self.metrics
                .shed()
                .action(callfleet_web::metrics::shed::ShedAction::BackgroundDeferred);
        }
        allowed
    }

    /// Takes no new calls from now on, says so in a heartbeat at once, and exits once the
    /// calls in progress have ended (at most `node.drain_timeout` from the first request).
    pub fn request_drain(&self) {
        let _first = self.drain_started_ms.compare_exchange(
            0,
            now_ms(),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        if !self.draining.swap(true, Ordering::Relaxed) {
            info!(
                calls = self.calls.active(),
                limit = ?self.cfg.node.drain_timeout,
                "draining: taking no new calls, exiting when idle"
            );
            self.beat_now.notify_one();
        }
        self.drain_requested.notify_waiters();
    }
}

/// Connects the database (running migrations) and builds the node state.
pub async fn build(cfg: Config) -> anyhow::Result<(Node, tokio::task::JoinHandle<()>)> {
    let store = Store::connect(&cfg.database.url)
        .await
        .context("connect to the database")?;
    store.migrate().await.context("migrate the database")?;
    let stopping = CancellationToken::new();
    let generation = now_ms();
    let metrics = Metrics::new();
    let alerts = crate::alerts::Inputs::default();
    // The spool first: what an earlier run left in it is replayed before this run clears its
    // leftovers (live-call rows, queue entries, agents).
    let (recorder, writer) =
        start_records(&cfg, &store, generation, &metrics, &alerts, &stopping).await?;
    let balancer = Balancer::new(
        cfg.node.name.clone(),
        cfg.node.role,
        LbConfig {
            ttl: cfg.heartbeat.ttl(),
            band: callfleet_lb::Band {
                relative: cfg.lb.hysteresis,
                calls: cfg.lb.hysteresis_calls,
            },
            prefer_self: cfg.lb.prefer_self,
        },
    );
    let moh = Library::load(&cfg.media.moh_dir);
    let ports = PortPool::new(cfg.sip_advertise().ip(), cfg.media.rtp_ports);
    if let Err(e) = store.clear_live_calls(&cfg.node.name).await {
        warn!(error = %e, "cannot clear live calls left by an earlier run");
    }
    let locks = if cfg.lock.urls.is_empty() {
        callfleet_lockd::LockClient::in_process()
    } else {
        callfleet_lockd::LockClient::new(cfg.lock.urls.iter(), cfg.cluster_key())
            .context("set up the lock client")?
    };
    if let Err(e) = store.remove_node_entries(&cfg.node.name).await {
        warn!(error = %e, "cannot clear queue entries left by an earlier run");
    }
    if let Err(e) = store.release_node_agents(&cfg.node.name, now_ms()).await {
        warn!(error = %e, "cannot release agents left by an earlier run");
    }
    let registrar = Registrar::new(
        Arc::new(store.clone()),
        registrar::Settings::from_config(&cfg, generation),
        metrics.clone(),
    );
    let h = &cfg.hotdesk;
    let pins = crate::throttle::Throttle::new(crate::throttle::Policy::new(
        h.max_failures,
        h.failure_window,
        h.lockout,
        h.max_lockout,
    ));
    let trace = crate::trace::Tracer::new(&cfg, metrics.clone());
    let node = Node {
        inner: Arc::new(Inner {
            trace,
            generation,
            registrar,
            pins: std::sync::Mutex::new(pins),
            locks,
            signer: callfleet_sign::Signer::new(cfg.cluster_key()),
            prompts: crate::media::prompts::Prompts::load(&cfg.media.prompts_dir),
            uploads: crate::media::uploaded::Uploaded::default(),
            realtime: Arc::default(),
            queue: Arc::default(),
            listen: crate::listen::Listenable::default(),
            store,
            balancer,
            metrics,
            calls: CallTable::default(),
            recorder,
            moh,
            ports,
            draining: AtomicBool::new(false),
            refusing: AtomicBool::new(false),
            shed: crate::shed::ShedGate::new(),
            call_seq: AtomicUsize::new(0),
            stopping,
            hangup: CancellationToken::new(),
            drain_requested: tokio::sync::Notify::new(),
            alerts,
            drain_started_ms: AtomicI64::new(0),
            beat_ok_ms: AtomicI64::new(0),
            beat_now: tokio::sync::Notify::new(),
            cfg,
        }),
    };
    // A phone registering here ends the backoff of its agents (`queue::reach`).
    let queue = node.queue.clone();
    node.registrar
        .on_register(move |device| queue.device_registered(device));
    Ok((node, writer))
}

/// Opens the record spool (the node does not start without it), replays what it holds, and
/// starts the record writer.
async fn start_records(
    cfg: &Config,
    store: &Store,
    generation: i64,
    metrics: &Metrics,
    alerts: &crate::alerts::Inputs,
    stopping: &CancellationToken,
) -> anyhow::Result<(Recorder, tokio::task::JoinHandle<()>)> {
    let (spool, opened) = records::Spool::open(
        &cfg.records.spool_dir,
        &cfg.node.name,
        cfg.records.spool_capacity(),
    )
    .context("open the record spool (records.spool_dir)")?;
    if opened.torn > 0 || opened.damaged > 0 {
        warn!(torn_bytes = opened.torn, damaged_lines = opened.damaged, file = %spool.path().display(), "record spool: a half-written end was cut off and damaged lines are skipped");
    }
    let setup = records::Setup {
        store: store.clone(),
        node: cfg.node.name.clone(),
        generation,
        spool,
        reports: records::Reports {
            metrics: metrics.clone(),
            gauge: alerts.spool.clone(),
        },
    };
    Ok(records::start(setup, stopping.child_token()).await)
}

/// Runs a node until Ctrl-C (calls are hung up at once) or until a drain (SIGTERM,
/// `callfleet node drain`) ended: calls finished, or `node.drain_timeout` passed and the rest
/// were hung up.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let (node, writer) = build(cfg).await?;
    let cfg = &node.cfg;
    info!(name = %cfg.node.name, role = %cfg.node.role.as_str(), sip = %cfg.sip.listen, sip_tls = ?cfg.sip_tls_listen(), http = %cfg.http.listen, scheme = cfg.http_scheme(), "starting node");
    let https = https_config(cfg)?;
    let http = crate::tcp::listen(cfg.http.listen)
        .and_then(tokio::net::TcpListener::from_std)
        .with_context(|| format!("bind HTTP on {}", cfg.http.listen))?;
    let tracing_task = crate::trace::start(&node);
    // Queues, agents, carriers and proxies in memory before the first call is routed.
    let registrar = node.registrar.clone();
    let reloader = crate::realtime::Reloader {
        store: node.store.clone(),
        cache: node.realtime.clone(),
        stopping: node.stopping.clone(),
        on_proxy_move: Some(Box::new(move |from, to| {
            registrar.readdress(from, to);
        })),
    };
    let loaded = crate::realtime::first_load(&reloader, Duration::from_secs(5)).await;
    let sip = sip::start(node.clone()).await.context("start SIP")?;
    let hb = tokio::spawn(heartbeat::run(node.clone()));
    heartbeat::wait_for_self(&node, Duration::from_secs(2)).await;
    let mut state = AppState::new(
        Arc::new(Api(node.clone())),
        node.metrics.clone(),
        cfg.http.secret.clone(),
        node.store.clone(),
    )
    .with_trust_loopback(cfg.http.trust_loopback)
    .with_tls(https.is_some())
    .with_provisioning(cfg.provisioning.policy())
    .with_shed(callfleet_web::shed::Shed {
        me: cfg.node.name.clone(),
        gate: node.shed.clone(),
        retry_after: cfg.shed.retry_after,
        panel_interval: cfg.shed.panel_interval,
    });
    // Kept until the node stops, when the file is removed.
    let _operator = match crate::operator::TokenFile::create(&cfg.operator_token_file()) {
        Ok((token, file)) => {
            info!(file = %file.path().display(), "operator token written");
            state = state.with_operator_token(token);
            Some(file)
        }
        Err(e) => {
            warn!(error = format!("{e:#}"), "no operator token: changes from this host need `callfleet` commands, a CRM token or a login");
            None
        }
    };
    // The panel's snapshot: one SQL read per second for every viewer of this node.
    tokio::spawn(callfleet_web::snapshot::run(
        state.panel.clone(),
        node.store.clone(),
        node.metrics.clone(),
        callfleet_web::snapshot::SnapshotConfig::new(&cfg.node.name, cfg.heartbeat.ttl()),
        node.stopping.clone().cancelled_owned(),
    ));
    let outbox = crate::alerts::deliver::Outbox::start(
        &cfg.alerts,
        node.metrics.clone(),
        node.stopping.child_token(),
    )
    .context("set up alert notifications")?;
    tokio::spawn(crate::alerts::run(
        node.clone(),
        state.panel.clone(),
        outbox,
    ));
    let app = callfleet_web::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let http_stop = node.stopping.clone();
    let http_task = match https {
        Some(config) => {
            let listener =
                crate::tls::http::HttpsListener::start(http, config, node.stopping.child_token())
                    .context("start HTTPS")?;
            // `tap_io` gives the handlers the peer address as `ConnectInfo<SocketAddr>`.
            let listener = axum::serve::ListenerExt::tap_io(listener, |_| {});
            tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(http_stop.cancelled_owned())
                    .await
            })
        }
        None => tokio::spawn(async move {
            axum::serve(http, app)
                .with_graceful_shutdown(http_stop.cancelled_owned())
                .await
        }),
    };
    tokio::spawn(crate::probe::run(crate::probe::Prober::new(
        cfg,
        node.generation,
        node.metrics.clone(),
        node.balancer.clone(),
        node.stopping.clone(),
    )));
    tokio::spawn(crate::scale::run(node.clone()));
    tokio::spawn(crate::realtime::run(reloader, loaded));
    tokio::spawn(crate::queue::dispatcher::run(
        crate::queue::dispatcher::Dispatcher {
            me: cfg.node.name.clone(),
            store: node.store.clone(),
            balancer: node.balancer.clone(),
            realtime: node.realtime.clone(),
            locks: node.locks.clone(),
            local: node.queue.clone(),
            stopping: node.stopping.clone(),
        },
    ));
    // Background work (MP3 conversion, retention of recordings), deferred under load.
    tokio::spawn(crate::recording::jobs::run(node.clone()));
    tokio::spawn(crate::recording::retention::run(node.clone()));
    tokio::spawn(crate::trace::retention::run(node.clone()));
    tokio::spawn(registrar::purge_loop(
        node.registrar.clone(),
        node.stopping.child_token(),
    ));
    info!("node is up");

    let stop = crate::drain::wait_for_stop(&node).await;
    info!(
        reason = stop.as_str(),
        calls = node.calls.active(),
        "stopping"
    );
    node.draining.store(true, Ordering::Relaxed);
    node.hangup.cancel();
    wait_idle(&node, Duration::from_secs(5)).await;
    node.stopping.cancel();
    let _ = hb.await;
    sip.shutdown();
    if let Ok(Err(e)) = http_task.await {
        warn!(error = %e, "HTTP server stopped with an error");
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), writer).await;
    if let Some(task) = tracing_task {
        if tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .is_err()
        {
            warn!("the SIP trace of the last calls was not all written within 10 s");
        }
    }
    info!("stopped");
    Ok(())
}

/// The HTTPS server config when `http.tls_cert` is set (read now: a bad file stops the start).
fn https_config(cfg: &Config) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    let (Some(cert), Some(key)) = (cfg.http.tls_cert.as_deref(), cfg.http.tls_key.as_deref())
    else {
        return Ok(None);
    };
    let pair = crate::tls::KeyPair {
        cert_key: "http.tls_cert",
        cert,
        key_key: "http.tls_key",
        key,
    };
    let config = crate::tls::server_config(&pair, &[b"http/1.1"]).context("set up HTTPS")?;
    // Fail now, not at the first listen-in, when `http.ca_file` cannot be used.
    crate::tls::client(cfg, Duration::from_secs(1)).context("set up the HTTPS client")?;
    Ok(Some(config))
}

async fn wait_idle(node: &Node, limit: Duration) {
    let until = tokio::time::Instant::now() + limit;
    while node.calls.active() > 0 && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The node as the HTTP layer sees it.
struct Api(Node);

impl NodeApi for Api {
    fn nodes(&self) -> serde_json::Value {
        serde_json::to_value(self.0.balancer.snapshot(now_ms()))
            .unwrap_or_else(|_| serde_json::json!([]))
    }

    fn calls(&self) -> BoxFuture<'static, Result<serde_json::Value, ApiError>> {
        let calls = self.0.calls.snapshot(&self.0.cfg.node.name);
        Box::pin(async move {
            serde_json::to_value(calls).map_err(|e| ApiError::internal("encode calls", e))
        })
    }

    fn agents(&self) -> BoxFuture<'static, Result<serde_json::Value, ApiError>> {
        let store = self.0.store.clone();
        Box::pin(async move {
            let agents = store
                .agents()
                .await
                .map_err(|e| ApiError::unavailable("database", e))?;
            let list: Vec<serde_json::Value> = agents
                .into_iter()
                .map(|a| {
                    serde_json::json!({
                        "extension": a.extension, "name": a.name, "state": a.state.as_str(),
                        "device": a.device, "paused": a.paused, "state_since_ms": a.state_since_ms,
                        "calls_today": a.calls_today, "daily_limit": a.daily_limit,
                        "current_node": a.current_node,
                    })
                })
                .collect();
            Ok(serde_json::Value::Array(list))
        })
    }

    fn agent_login(&self, ext: String, device: String) -> BoxFuture<'static, Result<(), ApiError>> {
        let store = self.0.store.clone();
        Box::pin(async move {
            let db = |e| ApiError::unavailable("database", e);
            if store.agent(&ext).await.map_err(db)?.is_none() {
                return Err(ApiError::NotFound { what: "agent" });
            }
            if store.device(&device).await.map_err(db)?.is_none() {
                return Err(ApiError::NotFound { what: "device" });
            }
            if store
                .login_agent(&ext, &device, now_ms())
                .await
                .map_err(db)?
            {
                info!(agent = %ext, device = %device, "agent logged in over the API");
                Ok(())
            } else {
                Err(ApiError::Conflict {
                    reason: "agent or the phone's current agent is in a call",
                })
            }
        })
    }

    fn agent_logout(&self, ext: String) -> BoxFuture<'static, Result<(), ApiError>> {
        let store = self.0.store.clone();
        Box::pin(async move {
            let db = |e| ApiError::unavailable("database", e);
            if store.agent(&ext).await.map_err(db)?.is_none() {
                return Err(ApiError::NotFound { what: "agent" });
            }
            if store.logout_agent(&ext, now_ms()).await.map_err(db)? {
                info!(agent = %ext, "agent logged out over the API");
                Ok(())
            } else {
                Err(ApiError::Conflict {
                    reason: "agent is in a call",
                })
            }
        })
    }

    fn listen(
        &self,
        call_id: String,
        device: String,
        mode: callfleet_web::ListenMode,
    ) -> BoxFuture<'static, Result<(), ApiError>> {
        let node = self.0.clone();
        Box::pin(async move { crate::listen::listen(&node, &call_id, &device, mode).await })
    }

    fn live_trace(
        &self,
        call_id: String,
    ) -> BoxFuture<'static, Result<Option<callfleet_vocab::CallTrace>, ApiError>> {
        let node = self.0.clone();
        Box::pin(async move { crate::trace::remote::live_trace(&node, &call_id).await })
    }

    fn live_trace_here(
        &self,
        call_id: String,
    ) -> BoxFuture<'static, Option<callfleet_vocab::CallTrace>> {
        let node = self.0.clone();
        Box::pin(async move { node.trace.live(&call_id).await })
    }

    fn listen_here(
        &self,
        call_id: String,
        device: String,
        mode: callfleet_web::ListenMode,
    ) -> BoxFuture<'static, Result<(), ApiError>> {
        let node = self.0.clone();
        Box::pin(async move { crate::listen::listen_here(&node, &call_id, &device, mode).await })
    }

    fn node_name(&self) -> String {
        self.0.cfg.node.name.clone()
    }

    fn forward_get(
        &self,
        holder: String,
        path: String,
        range: Option<String>,
    ) -> BoxFuture<'static, Result<axum::response::Response, ApiError>> {
        let node = self.0.clone();
        Box::pin(async move {
            crate::recording::forward::get(&node, &holder, &path, range.as_deref()).await
        })
    }

    fn shed_peers(&self) -> Vec<callfleet_web::shed::Peer> {
        let view = self.0.balancer.view();
        view.nodes()
            .iter()
            .map(|n| callfleet_web::shed::Peer {
                name: n.name.clone(),
                base: crate::tls::node_url(crate::tls::serves_https(&n.services), n.http, ""),
                level: n.shed_level,
                utilisation: n.utilisation(),
                cpu_pct: n.cpu_pct,
                alive: view.is_alive(n),
                draining: n.draining,
            })
            .collect()
    }

    fn registrars(&self) -> Vec<SocketAddr> {
        let view = self.0.balancer.view();
        view.nodes()
            .iter()
            .filter(|n| n.role == callfleet_lb::Role::Main && view.is_alive(n) && !n.draining)
            .map(|n| n.sip)
            .collect()
    }

    fn device_credentials(
        &self,
        ext: &str,
        display_name: &str,
        password: &str,
    ) -> Result<callfleet_store::Device, ApiError> {
        registrar::credentials::device(ext, &self.0.cfg.sip.realm, password, display_name, now_ms())
            .map_err(|e| ApiError::internal("make device credentials", e))
    }

    fn readiness(&self) -> Option<callfleet_web::ready::Readiness> {
        Some(crate::drain::readiness_of(&self.0))
    }

    fn drain(&self) -> BoxFuture<'static, Result<(), ApiError>> {
        let node = self.0.clone();
        Box::pin(async move {
            node.request_drain();
            Ok(())
        })
    }
}
