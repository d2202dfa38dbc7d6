//! The running node: its parts (`Node`, a cheap clone, built by [`build`] in dependency order),
//! the handles each subsystem is given ([`handles`]), and the start/stop sequence that wires
//! store, heartbeat, balancer, SIP, media and HTTP together.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use callfleet_lb::{Balancer, LbConfig};
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
pub mod handles;

pub use handles::{
    Answering, Base, CallKit, CallStarter, Cluster, Dialling, Edge, HotDesk, Leases, Legs,
    Listening, LiveTraces, Mailboxes, MediaKit, Menus, Peers, Pins, Quality, Recordings,
};

/// The running node: the parts [`build`] made, from which each subsystem is handed only what
/// it uses ([`handles`]). Nothing outside this module reaches the parts themselves.
#[derive(Clone)]
pub struct Node {
    base: Base,
    cluster: Cluster,
    /// The live calls of this node.
    calls: Arc<crate::calls::CallTable>,
    /// Every call's SIP messages (`crate::trace`).
    trace: crate::trace::Tracer,
    /// Queues and agents, cached from SQL.
    realtime: Arc<crate::realtime::Realtime>,
    /// Phones' REGISTERs and where an extension is (`locate`).
    registrar: Registrar,
    /// Calls of this node waiting in the cluster queue.
    queue: Arc<crate::queue::Local>,
    /// What the alert rules are told by the heartbeat, SIP admission and the record spool.
    alerts: Arc<crate::alerts::Inputs>,
    /// What every call runs with (built once; a clone per call).
    kit: CallKit,
    /// What the HTTP layer's listen-in and live traces use.
    listening: Listening,
    live_traces: LiveTraces,
}

impl Node {
    fn cfg(&self) -> &Config {
        &self.base.cfg
    }

    fn life(&self) -> &Lifecycle {
        &self.base.life
    }

    /// Takes no new calls from now on, says so in a heartbeat at once, and exits once the
    /// calls in progress have ended (at most `node.drain_timeout` from the first request).
    pub fn request_drain(&self) {
        self.life()
            .request_drain(self.calls.active(), self.cfg().node.drain_timeout);
    }

    /// What the heartbeat task uses.
    pub fn heart(&self) -> crate::heartbeat::Heart {
        crate::heartbeat::Heart {
            cfg: self.cfg().clone(),
            life: self.base.life.clone(),
            store: self.base.store.clone(),
            balancer: self.cluster.balancer.clone(),
            metrics: self.base.metrics.clone(),
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
            store: self.base.store.clone(),
            me: self.cfg().node.name.clone(),
            keep_days,
            keep_ms,
            life: self.base.life.clone(),
            metrics: self.base.metrics.clone(),
        }
    }

    /// What the drain watch (and readiness) reads.
    pub fn watch(&self) -> crate::drain::Watch {
        let cfg = self.cfg();
        crate::drain::Watch {
            life: self.base.life.clone(),
            calls: self.calls.clone(),
            capacity: cfg.node.capacity,
            heartbeat_interval: cfg.heartbeat.interval,
            ttl: cfg.heartbeat.ttl(),
            drain_timeout: cfg.node.drain_timeout,
        }
    }

    /// What the SIP edge uses (`sip::start`).
    pub fn edge(&self) -> Edge {
        Edge {
            cfg: self.base.cfg.clone(),
            life: self.base.life.clone(),
            metrics: self.base.metrics.clone(),
            calls: self.calls.clone(),
            trace: self.trace.clone(),
            balancer: self.cluster.balancer.clone(),
            realtime: self.realtime.clone(),
            registrar: self.registrar.clone(),
            alerts: self.alerts.clone(),
            recorder: self.kit.legs.recorder.clone(),
            starter: CallStarter::new(self.kit.clone()),
        }
    }
}

/// Connects the database (running migrations) and builds the node's parts in dependency
/// order: the base (configuration, store, metrics, run state), the record writer, the cluster
/// (balancer, signer, leases), the media kit, the SIP trace, the configuration cache, the
/// registrar, the local queue, the listenable calls and the PIN checks, then the handles
/// made of them (a call's kit, listen-in's and the live traces').
pub async fn build(cfg: Config) -> anyhow::Result<(Node, tokio::task::JoinHandle<()>)> {
    let store = Store::connect(&cfg.database.url)
        .await
        .context("connect to the database")?;
    store.migrate().await.context("migrate the database")?;
    let stopping = CancellationToken::new();
    let generation = now_ms();
    let metrics = Metrics::new();
    let alerts = Arc::new(crate::alerts::Inputs::default());
    // The spool first: what an earlier run left in it is replayed before this run clears its
    // leftovers (live-call rows, queue entries, agents).
    let (recorder, writer) =
        start_records(&cfg, &store, generation, &metrics, &alerts, &stopping).await?;
    let cluster = cluster(&cfg)?;
    let media = MediaKit {
        ports: PortPool::new(cfg.sip_advertise().ip(), cfg.media.rtp_ports),
        moh: Library::load(&cfg.media.moh_dir),
        prompts: crate::media::prompts::Prompts::load(&cfg.media.prompts_dir),
        uploads: Arc::default(),
        seq: Arc::new(AtomicUsize::new(0)),
    };
    clear_leftovers(&store, &cfg.node.name).await;
    let trace = crate::trace::Tracer::new(&cfg, metrics.clone());
    let life = Arc::new(Lifecycle::new(generation, stopping, metrics.clone()));
    let base = Base {
        cfg: Arc::new(cfg),
        life,
        store,
        metrics,
    };
    let realtime: Arc<crate::realtime::Realtime> = Arc::default();
    let registrar = Registrar::new(
        Arc::new(base.store.clone()),
        registrar::Settings::from_config(&base.cfg, generation),
        base.metrics.clone(),
    );
    let queue: Arc<crate::queue::Local> = Arc::default();
    // A phone registering here ends the backoff of its agents (`queue::reach`).
    let waiting = queue.clone();
    registrar.on_register(move |device| waiting.device_registered(device));
    let calls: Arc<crate::calls::CallTable> = Arc::default();
    let legs = Legs {
        cfg: base.cfg.clone(),
        life: base.life.clone(),
        store: base.store.clone(),
        metrics: base.metrics.clone(),
        calls: calls.clone(),
        recorder,
        trace: trace.clone(),
        media,
        cluster: cluster.clone(),
        realtime: realtime.clone(),
        queue: queue.clone(),
        listen: Arc::default(),
    };
    let (listening, live_traces) = http_handles(&base, &cluster, &legs);
    let kit = CallKit {
        legs,
        registrar: registrar.clone(),
        pins: pins(&base),
    };
    let node = Node {
        base,
        cluster,
        calls,
        trace,
        realtime,
        registrar,
        queue,
        alerts,
        kit,
        listening,
        live_traces,
    };
    Ok((node, writer))
}

/// What the HTTP layer's listen-in and live traces use, from the parts already made.
fn http_handles(base: &Base, cluster: &Cluster, legs: &Legs) -> (Listening, LiveTraces) {
    let peers = Peers {
        cfg: base.cfg.clone(),
        store: base.store.clone(),
        balancer: cluster.balancer.clone(),
        signer: cluster.signer.clone(),
    };
    let listening = Listening {
        peers: peers.clone(),
        life: base.life.clone(),
        metrics: base.metrics.clone(),
        calls: legs.calls.clone(),
        listen: legs.listen.clone(),
        ports: legs.media.ports.clone(),
        queue: legs.queue.clone(),
        trace: legs.trace.clone(),
        recorder: legs.recorder.clone(),
    };
    let live_traces = LiveTraces {
        peers,
        trace: legs.trace.clone(),
    };
    (listening, live_traces)
}

/// The balancer, the signer and the lease client.
fn cluster(cfg: &Config) -> anyhow::Result<Cluster> {
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
    let locks = if cfg.lock.urls.is_empty() {
        callfleet_lockd::LockClient::in_process()
    } else {
        callfleet_lockd::LockClient::new(cfg.lock.urls.iter(), cfg.cluster_key())
            .context("set up the lock client")?
    };
    Ok(Cluster {
        balancer,
        signer: Arc::new(callfleet_sign::Signer::new(cfg.cluster_key())),
        locks,
    })
}

/// The hot-desk PIN checks under `hotdesk`'s limits.
fn pins(base: &Base) -> Pins {
    let h = &base.cfg.hotdesk;
    let throttle = crate::throttle::Throttle::new(crate::throttle::Policy::new(
        h.max_failures,
        h.failure_window,
        h.lockout,
        h.max_lockout,
    ));
    Pins {
        throttle: Arc::new(std::sync::Mutex::new(throttle)),
        store: base.store.clone(),
        metrics: base.metrics.clone(),
    }
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
    let cfg = node.cfg();
    info!(name = %cfg.node.name, role = %cfg.node.role.as_str(), sip = %cfg.sip.listen, sip_tls = ?cfg.sip_tls_listen(), http = %cfg.http.listen, scheme = cfg.http_scheme(), "starting node");
    let https = https_config(cfg)?;
    let http = crate::tcp::listen(cfg.http.listen)
        .and_then(tokio::net::TcpListener::from_std)
        .with_context(|| format!("bind HTTP on {}", cfg.http.listen))?;
    let tracing = crate::trace::start(node.base.clone(), node.trace.clone());
    // Queues, agents, carriers and proxies in memory before the first call is routed.
    let registrar = node.registrar.clone();
    let reloader = crate::realtime::Reloader {
        store: node.base.store.clone(),
        cache: node.realtime.clone(),
        stopping: node.base.life.stopping.clone(),
        on_proxy_move: Some(Box::new(move |from, to| {
            registrar.readdress(from, to);
        })),
    };
    let loaded = crate::realtime::first_load(&reloader, Duration::from_secs(5)).await;
    let sip = sip::start(node.edge()).await.context("start SIP")?;
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
    let cfg = node.cfg();
    let state = AppState::new(
        Arc::new(api::Api(node.clone())),
        node.base.metrics.clone(),
        cfg.http.secret.clone(),
        node.base.store.clone(),
    )
    .with_trust_loopback(cfg.http.trust_loopback)
    .with_tls(https)
    .with_provisioning(cfg.provisioning.policy())
    .with_shed(callfleet_web::shed::Shed {
        me: cfg.node.name.clone(),
        gate: node.base.life.shed.clone(),
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
    let cfg = node.cfg();
    tokio::spawn(callfleet_web::snapshot::run(
        state.panel.clone(),
        node.base.store.clone(),
        node.base.metrics.clone(),
        callfleet_web::snapshot::SnapshotConfig::new(&cfg.node.name, cfg.heartbeat.ttl()),
        node.base.life.stopping.clone().cancelled_owned(),
    ));
    let outbox = crate::alerts::deliver::Outbox::start(
        &cfg.alerts,
        node.base.metrics.clone(),
        node.base.life.stopping.child_token(),
    )
    .context("set up alert notifications")?;
    let sources = crate::alerts::shell::Sources {
        cfg: cfg.clone(),
        life: node.base.life.clone(),
        store: node.base.store.clone(),
        locks: node.cluster.locks.clone(),
        metrics: node.base.metrics.clone(),
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
    let stop = node.base.life.stopping.clone();
    Ok(match https {
        Some(config) => {
            let listener = crate::tls::http::HttpsListener::start(
                http,
                config,
                node.base.life.stopping.child_token(),
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
    let cfg = node.cfg();
    tokio::spawn(crate::probe::run(crate::probe::Prober::new(
        cfg,
        node.base.life.generation,
        node.base.metrics.clone(),
        node.cluster.balancer.clone(),
        node.base.life.stopping.clone(),
    )));
    tokio::spawn(crate::scale::run(crate::scale::Scaler {
        cfg: cfg.clone(),
        life: node.base.life.clone(),
        balancer: node.cluster.balancer.clone(),
        locks: node.cluster.locks.clone(),
    }));
    tokio::spawn(crate::queue::dispatcher::run(
        crate::queue::dispatcher::Dispatcher {
            me: cfg.node.name.clone(),
            store: node.base.store.clone(),
            balancer: node.cluster.balancer.clone(),
            realtime: node.realtime.clone(),
            locks: node.cluster.locks.clone(),
            local: node.queue.clone(),
            stopping: node.base.life.stopping.clone(),
        },
    ));
    tokio::spawn(crate::recording::jobs::run(node.base.clone()));
    tokio::spawn(crate::recording::retention::run(
        node.retention(cfg.recording.keep, cfg.recording.keep_ms()),
    ));
    tokio::spawn(crate::trace::retention::run(
        node.retention(cfg.trace.keep, cfg.trace.keep_ms()),
    ));
    tokio::spawn(registrar::purge_loop(
        node.registrar.clone(),
        node.base.life.stopping.child_token(),
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
    node.base.life.draining.store(true, Ordering::Relaxed);
    node.base.life.hangup.cancel();
    wait_idle(node, Duration::from_secs(5)).await;
    node.base.life.stopping.cancel();
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
