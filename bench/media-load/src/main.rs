//! `callfleet-mediaload`: see the crate documentation and `bench/media`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use callfleet_mediaload::{ng, provision, run};

#[derive(Parser)]
#[command(
    name = "callfleet-mediaload",
    about = "Media load generator of bench/media"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct Window {
    /// Seconds of media before the measured window.
    #[arg(long, default_value_t = 2.0)]
    warm: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// RTP sockets per side (callers, agents), shared by the legs of that side.
    #[arg(long, default_value_t = 2)]
    sockets: usize,
    /// Appends the report as one JSON line to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Writes the queue, agents and phones for `--agents` bridged calls into the database.
    Provision {
        #[arg(long)]
        database: String,
        #[arg(long)]
        agents: usize,
    },
    /// Calls through a node: `--bridged` to the queue, `--moh` waiting on music on hold.
    Node {
        /// The node's SIP address.
        #[arg(long)]
        node: SocketAddr,
        #[arg(long)]
        carrier_ip: IpAddr,
        #[arg(long)]
        phones_ip: IpAddr,
        #[arg(long, default_value_t = 0)]
        bridged: usize,
        #[arg(long, default_value_t = 0)]
        moh: usize,
        /// Phones to register (default and at least `--bridged`): every provisioned agent's,
        /// or the queue offers calls to agents whose phones are not there.
        #[arg(long, default_value_t = 0)]
        phones: usize,
        /// New calls per second.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// The node's process id (CPU and memory over the window).
        #[arg(long)]
        pid: Option<u32>,
        /// The node's music-on-hold WAV: callers on hold must hear its frames in order.
        #[arg(long)]
        music: Option<PathBuf>,
        /// New calls per second placed through the measured window (to music on hold, hung
        /// up once answered): the call path's setup time under the load. 0: none; at most
        /// 1000.
        #[arg(long, default_value_t = 10.0)]
        probes: f64,
        #[command(flatten)]
        window: Window,
    },
    /// The same bridged streams through rtpengine (ng protocol).
    Rtpengine {
        /// rtpengine's ng control address.
        #[arg(long)]
        ng: SocketAddr,
        #[arg(long)]
        caller_ip: IpAddr,
        #[arg(long)]
        agent_ip: IpAddr,
        #[arg(long)]
        calls: usize,
        #[arg(long)]
        pid: Option<u32>,
        #[command(flatten)]
        window: Window,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the async runtime")?;
    rt.block_on(async move {
        match cli.command {
            Command::Provision { database, agents } => {
                provision::provision(&database, agents).await?;
                println!(
                    "provisioned {agents} agents and phones, queue {}",
                    provision::QUEUE
                );
                Ok(())
            }
            Command::Node {
                node,
                carrier_ip,
                phones_ip,
                bridged,
                moh,
                phones,
                rate,
                pid,
                music,
                probes,
                window,
            } => {
                let plan = run::Plan {
                    node,
                    carrier_ip,
                    phones_ip,
                    bridged,
                    moh,
                    phones,
                    rate,
                    warm: secs(window.warm),
                    window: secs(window.seconds),
                    sockets_per_side: window.sockets,
                    node_pid: pid,
                    music,
                    probes_per_second: probes,
                };
                let report = run::run(&plan).await?;
                finish(&report, window.json.as_deref())
            }
            Command::Rtpengine {
                ng,
                caller_ip,
                agent_ip,
                calls,
                pid,
                window,
            } => {
                let plan = ng::RtpenginePlan {
                    ng,
                    caller_ip,
                    agent_ip,
                    calls,
                    warm: secs(window.warm),
                    window: secs(window.seconds),
                    sockets_per_side: window.sockets,
                    pid,
                };
                let report = ng::run(&plan).await?;
                finish(&report, window.json.as_deref())
            }
        }
    })
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

fn finish(report: &run::Report, json: Option<&std::path::Path>) -> anyhow::Result<()> {
    let r = &report.media.relay;
    let m = &report.media.moh;
    println!(
        "{}: {} bridged, {} on hold; relayed: {} sent, {} lost ({:.4} %), {} out of order, {} bad, {} misrouted, \
         jitter p99 {:.2} ms, delay p50 {:.2} ms p99 {:.2} ms; music: {} received, {} lost ({:.4} %), jitter p99 {:.2} ms; \
         new calls under the load: {} of {} answered, setup p50 {:.1} ms p99 {:.1} ms",
        report.target,
        report.bridged_up,
        report.moh,
        r.sent,
        r.lost,
        r.loss * 100.0,
        r.out_of_order,
        r.bad_payload,
        r.misrouted,
        r.jitter_p99_ms,
        r.delay_p50_ms,
        r.delay_p99_ms,
        m.received,
        m.lost,
        m.loss * 100.0,
        m.jitter_p99_ms,
        report.probes.answered,
        report.probes.placed,
        report.probes.setup_p50_ms,
        report.probes.setup_p99_ms
    );
    let line = serde_json::to_string(report).context("report to JSON")?;
    match json {
        Some(path) => {
            use std::io::Write as _;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("open {}", path.display()))?;
            writeln!(f, "{line}").with_context(|| format!("write {}", path.display()))?;
        }
        None => println!("{line}"),
    }
    Ok(())
}
