//! The running node: its shared state (`Node`, a cheap clone) and the start/stop sequence that
//! wires store, heartbeat, balancer, SIP, media and HTTP together.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use callfleet_lb::{Balancer, LbConfig, LocalLoad};
use callfleet_store::Store;
use callfleet_web::{AppState, Metrics};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Config;
use crate::lifecycle::Lifecycle;
use crate::media::{moh::Library, ports::PortPool};
use crate::records::{self, Recorder};
use crate::registrar::{self, Registrar};
use crate::{heartbeat, now_ms, sip};

mod api;

/// Shared state of the running node.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

pub struct Inner {
    pub cfg: Config,
    /// Draining, refusing, the shed level, the stop and hang-up tokens (`crate::lifecycle`).
    pub life: Arc<Lifecycle>,
    pub store: Store,
    pub balancer: Balancer,
    pub metrics: Metrics,
    pub calls: Arc<crate::calls::CallTable>,
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
    /// Counts calls, to spread callers over the music-on-hold tracks.
    pub call_seq: AtomicUsize,
    /// What the alert rules are told by the heartbeat, SIP admission and the record spool.
    pub alerts: Arc<crate::alerts::Inputs>,
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
            refusing: self.life.is_refusing(),
            draining: self.life.is_draining(),
        }
    }

    /// Whether optional background work may start an item now ([`Lifecycle::background_allowed`]).
    pub fn background_allowed(&self) -> bool {
        self.life.background_allowed()
    }

    /// Takes no new calls from now on, says so in a heartbeat at once, and exits once the
    /// calls in progress have ended (at most `node.drain_timeout` from the first request).
    pub fn request_drain(&self) {
        self.life
            .request_drain(self.calls.active(), self.cfg.node.drain_timeout);
    }

    /// What the heartbeat task uses.
    pub fn heart(&self) -> crate::heartbeat::Heart {
        crate::heartbeat::Heart {
            cfg: self.cfg.clone(),
            life: self.life.clone(),
            store: self.store.clone(),
            balancer: self.balancer.clone(),
            metrics: self.metrics.clone(),
            calls: self.calls.clone(),
            alerts: self.alerts.clone(),
        }
    }

    /// What a retention sweep keeping `keep_days` (`keep_ms`) uses.
    pub fn retention(
        &self,
        keep_days: u32,
        keep_ms: Option<i64>,
    ) -> crate::recording::retention::Retention {
        crate::recording::retention::Retention {
            store: self.store.clone(),
            me: self.cfg.node.name.clone(),
            keep_days,
            keep_ms,
            life: self.life.clone(),
            metrics: self.metrics.clone(),
        }
    }

    /// What the drain watch (and readiness) reads.
    pub fn watch(&self) -> crate::drain::Watch {
        crate::drain::Watch {
            life: self.life.clone(),
            calls: self.calls.clone(),
            capacity: self.cfg.node.capacity,
            heartbeat_interval: self.cfg.heartbeat.interval,
            ttl: self.cfg.heartbeat.ttl(),
            drain_timeout: self.cfg.node.drain_timeout,
        }
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
    let locks = if cfg.lock.urls.is_empty() {
        callfleet_lockd::LockClient::in_process()
    } else {
        callfleet_lockd::LockClient::new(cfg.lock.urls.iter(), cfg.cluster_key())
            .context("set up the lock client")?
    };
    clear_leftovers(&store, &cfg.node.name).await;
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
    let life = Arc::new(Lifecycle::new(generation, stopping, metrics.clone()));
    let node = Node {
        inner: Arc::new(Inner {
            trace,
            life,
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
            calls: Arc::default(),
            recorder,
            moh,
            ports,
            call_seq: AtomicUsize::new(0),
            alerts: Arc::new(alerts),
            cfg,
        }),
    };
    // A phone registering here ends the backoff of its agents (`queue::reach`).
    let queue = node.queue.clone();
    node.registrar
        .on_register(move |device| queue.device_registered(device));
    Ok((node, writer))
}

/// Clears what an earlier run of this node left in the database: its live-call rows, its
/// queue entries, and its agents (released). Logged and left when the database fails: the
/// node starts all the same.
async fn clear_leftovers(store: &Store, me: &str) {
    if let Err(e) = store.clear_live_calls(me).await {
        warn!(error = %e, "cannot clear live calls left by an earlier run");
    }
    if let Err(e) = store.remove_node_entries(me).await {
        warn!(error = %e, "cannot clear queue entries left by an earlier run");
    }
    if let Err(e) = store.release_node_agents(me, now_ms()).await {
        warn!(error = %e, "cannot release agents left by an earlier run");
    }
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
    let tracing = crate::trace::start(&node);
    // Queues, agents, carriers and proxies in memory before the first call is routed.
    let registrar = node.registrar.clone();
    let reloader = crate::realtime::Reloader {
        store: node.store.clone(),
        cache: node.realtime.clone(),
        stopping: node.life.stopping.clone(),
        on_proxy_move: Some(Box::new(move |from, to| {
            registrar.readdress(from, to);
        })),
    };
    let loaded = crate::realtime::first_load(&reloader, Duration::from_secs(5)).await;
    let sip = sip::start(node.clone()).await.context("start SIP")?;
    let heartbeat = tokio::spawn(heartbeat::run(node.heart()));
    heartbeat::wait_for_self(&node.heart(), Duration::from_secs(2)).await;
    // The operator token file is kept until the node stops, when it is removed.
    let (state, _operator) = http_state(&node, https.is_some());
    spawn_watchers(&node, &state)?;
    let http = serve_http(&node, http, https, state)?;
    tokio::spawn(crate::realtime::run(reloader, loaded));
    spawn_background(&node);
    info!("node is up");

    let stop = crate::drain::wait_for_stop(&node.watch()).await;
    let tasks = Tasks {
        heartbeat,
        sip,
        http,
        writer,
        tracing,
    };
    shut_down(&node, stop, tasks).await;
    Ok(())
}

/// What the HTTP layer is given: the node as [`api::Api`], its metrics, secret, store, and
/// the operator token (with the file that holds it, removed when dropped).
fn http_state(node: &Node, https: bool) -> (AppState, Option<crate::operator::TokenFile>) {
    let cfg = &node.cfg;
    let state = AppState::new(
        Arc::new(api::Api(node.clone())),
        node.metrics.clone(),
        cfg.http.secret.clone(),
        node.store.clone(),
    )
    .with_trust_loopback(cfg.http.trust_loopback)
    .with_tls(https)
    .with_provisioning(cfg.provisioning.policy())
    .with_shed(callfleet_web::shed::Shed {
        me: cfg.node.name.clone(),
        gate: node.life.shed.clone(),
        retry_after: cfg.shed.retry_after,
        panel_interval: cfg.shed.panel_interval,
    });
    match crate::operator::TokenFile::create(&cfg.operator_token_file()) {
        Ok((token, file)) => {
            info!(file = %file.path().display(), "operator token written");
            (state.with_operator_token(token), Some(file))
        }
        Err(e) => {
            warn!(error = format!("{e:#}"), "no operator token: changes from this host need `callfleet` commands, a CRM token or a login");
            (state, None)
        }
    }
}

/// The panel's snapshot (one SQL read per second for every viewer of this node) and the
/// alert rules, both feeding the panel's hub.
fn spawn_watchers(node: &Node, state: &AppState) -> anyhow::Result<()> {
    let cfg = &node.cfg;
    tokio::spawn(callfleet_web::snapshot::run(
        state.panel.clone(),
        node.store.clone(),
        node.metrics.clone(),
        callfleet_web::snapshot::SnapshotConfig::new(&cfg.node.name, cfg.heartbeat.ttl()),
        node.life.stopping.clone().cancelled_owned(),
    ));
    let outbox = crate::alerts::deliver::Outbox::start(
        &cfg.alerts,
        node.metrics.clone(),
        node.life.stopping.child_token(),
    )
    .context("set up alert notifications")?;
    let sources = crate::alerts::shell::Sources {
        cfg: cfg.clone(),
        life: node.life.clone(),
        store: node.store.clone(),
        locks: node.locks.clone(),
        metrics: node.metrics.clone(),
        alerts: node.alerts.clone(),
    };
    tokio::spawn(crate::alerts::run(sources, state.panel.clone(), outbox));
    Ok(())
}

type HttpTask = tokio::task::JoinHandle<std::io::Result<()>>;

/// Serves the HTTP API and pages (HTTPS when `https` is set) until the node stops.
fn serve_http(
    node: &Node,
    http: tokio::net::TcpListener,
    https: Option<Arc<rustls::ServerConfig>>,
    state: AppState,
) -> anyhow::Result<HttpTask> {
    let app = callfleet_web::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let stop = node.life.stopping.clone();
    Ok(match https {
        Some(config) => {
            let listener = crate::tls::http::HttpsListener::start(
                http,
                config,
                node.life.stopping.child_token(),
            )
            .context("start HTTPS")?;
            // `tap_io` gives the handlers the peer address as `ConnectInfo<SocketAddr>`.
            let listener = axum::serve::ListenerExt::tap_io(listener, |_| {});
            tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await
            })
        }
        None => tokio::spawn(async move {
            axum::serve(http, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        }),
    })
}

/// The node's loops besides SIP, HTTP and the heartbeat, each given only what it uses: peer
/// probes, scale-out, the cluster queue's dispatcher, and background work deferred under load
/// (MP3 conversion, retention of recordings and traces, the registrar's purge).
fn spawn_background(node: &Node) {
    let cfg = &node.cfg;
    tokio::spawn(crate::probe::run(crate::probe::Prober::new(
        cfg,
        node.life.generation,
        node.metrics.clone(),
        node.balancer.clone(),
        node.life.stopping.clone(),
    )));
    tokio::spawn(crate::scale::run(crate::scale::Scaler {
        cfg: cfg.clone(),
        life: node.life.clone(),
        balancer: node.balancer.clone(),
        locks: node.locks.clone(),
    }));
    tokio::spawn(crate::queue::dispatcher::run(
        crate::queue::dispatcher::Dispatcher {
            me: cfg.node.name.clone(),
            store: node.store.clone(),
            balancer: node.balancer.clone(),
            realtime: node.realtime.clone(),
            locks: node.locks.clone(),
            local: node.queue.clone(),
            stopping: node.life.stopping.clone(),
        },
    ));
    tokio::spawn(crate::recording::jobs::run(node.clone()));
    tokio::spawn(crate::recording::retention::run(
        node.retention(cfg.recording.keep, cfg.recording.keep_ms()),
    ));
    tokio::spawn(crate::trace::retention::run(
        node.retention(cfg.trace.keep, cfg.trace.keep_ms()),
    ));
    tokio::spawn(registrar::purge_loop(
        node.registrar.clone(),
        node.life.stopping.child_token(),
    ));
}

/// What the stop waits for.
struct Tasks {
    heartbeat: tokio::task::JoinHandle<()>,
    sip: sip::SipHandle,
    http: HttpTask,
    writer: tokio::task::JoinHandle<()>,
    tracing: Option<tokio::task::JoinHandle<()>>,
}

/// Hangs up the calls left, stops the loops, says goodbye in a last heartbeat, and waits (each
/// bounded) for HTTP, the record writer and the SIP trace's last batches.
async fn shut_down(node: &Node, stop: crate::drain::Stop, tasks: Tasks) {
    info!(
        reason = stop.as_str(),
        calls = node.calls.active(),
        "stopping"
    );
    node.life.draining.store(true, Ordering::Relaxed);
    node.life.hangup.cancel();
    wait_idle(node, Duration::from_secs(5)).await;
    node.life.stopping.cancel();
    if let Err(e) = tasks.heartbeat.await {
        warn!(error = %e, "the heartbeat task failed");
    }
    tasks.sip.shutdown();
    if let Ok(Err(e)) = tasks.http.await {
        warn!(error = %e, "HTTP server stopped with an error");
    }
    if tokio::time::timeout(Duration::from_secs(10), tasks.writer)
        .await
        .is_err()
    {
        warn!("the record writer did not finish within 10 s; the spool keeps what is left");
    }
    if let Some(task) = tasks.tracing {
        if tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .is_err()
        {
            warn!("the SIP trace of the last calls was not all written within 10 s");
        }
    }
    info!("stopped");
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
