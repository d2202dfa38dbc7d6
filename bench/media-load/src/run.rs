//! One run through a node: register the phones, place the calls (bridged ones to the queue,
//! waiting ones to music on hold), wait until every call is up, measure a window of media
//! (and the node's CPU and memory over it), hang up, and report.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::media::{self, Expect, Media, MediaReport, Side};
use crate::provision;
use crate::sip::{self, PhoneCounts, Ua};

/// The most new calls a second placed through the window.
pub const MAX_PROBES_PER_SECOND: f64 = 1000.0;

/// How long after the window its last packets may still arrive.
pub const TAIL: Duration = Duration::from_secs(1);

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The node's SIP address.
    pub node: SocketAddr,
    /// Where the carrier's SIP and the callers' RTP live.
    pub carrier_ip: IpAddr,
    /// Where the phones' SIP and the agents' RTP live.
    pub phones_ip: IpAddr,
    pub bridged: usize,
    pub moh: usize,
    /// Phones to register (at least `bridged`): every logged-in agent's phone must be, or
    /// the queue offers calls to agents it cannot ring.
    pub phones: usize,
    /// New calls per second while setting up.
    pub rate: f64,
    /// Media before the window (after every call is up), and the window.
    pub warm: Duration,
    pub window: Duration,
    pub sockets_per_side: usize,
    /// The node's process, for its CPU and memory.
    pub node_pid: Option<u32>,
    /// The node's music-on-hold WAV file: callers on hold must hear its frames, in order.
    pub music: Option<std::path::PathBuf>,
    /// New calls per second placed through the window, while every call of the plan carries
    /// media (0: none): each answered, timed and hung up at once ([`ProbeReport`]).
    pub probes_per_second: f64,
}

/// What one run found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub target: String,
    pub bridged: usize,
    pub moh: usize,
    /// Calls answered by the node, and bridged to a phone.
    pub answered: u64,
    pub bridged_up: u64,
    pub failed: u64,
    /// Calls the node hung up before we did.
    pub dropped_by_node: u64,
    /// Phone calls the node hung up after the carrier's BYE (within 15 s).
    pub phones_hung_up: u64,
    /// INVITE to 200 OK.
    pub setup_p50_ms: f64,
    pub setup_p99_ms: f64,
    /// New calls placed during the window, with the load up.
    pub probes: ProbeReport,
    pub media: MediaReport,
    /// Datagrams the kernel dropped at the generator's own sockets during the run.
    pub generator_socket_drops: u64,
    /// The generator's own CPU over the window (1.0: a core): near its core's whole, the step
    /// measured the generator rather than the relay.
    pub generator_cores: f64,
    pub process: Option<ProcessReport>,
}

/// The measured process over the window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcessReport {
    /// CPU time over wall time: 1.0 is one core busy.
    pub cores: f64,
    /// Resident memory before the calls and during the window.
    pub rss_before_kb: u64,
    pub rss_during_kb: u64,
}

impl ProcessReport {
    /// Per call: CPU in milliseconds per second (thousandths of a core), memory in kB.
    pub fn per_call(&self, calls: usize) -> (f64, f64) {
        if calls == 0 {
            return (0.0, 0.0);
        }
        let cpu = self.cores * 1000.0 / calls as f64;
        let mem = self.rss_during_kb.saturating_sub(self.rss_before_kb) as f64 / calls as f64;
        (cpu, mem)
    }
}

/// New calls placed while the load is up (the call path under media load): a caller to the
/// music-on-hold number, answered by the node, timed INVITE to 200 OK, hung up at once.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProbeReport {
    pub placed: u64,
    pub answered: u64,
    /// Answered probes the node did not confirm the BYE of.
    pub unconfirmed_byes: u64,
    pub setup_p50_ms: f64,
    pub setup_p99_ms: f64,
    pub setup_max_ms: f64,
}

/// Whether call `i` of `total` is a bridged one: `bridged` of them, spread evenly.
pub fn is_bridged(i: usize, total: usize, bridged: usize) -> bool {
    if total == 0 {
        return false;
    }
    (i + 1) * bridged / total > i * bridged / total
}

/// CPU seconds (user + system) the process has used (`/proc/PID/stat`, USER_HZ = 100).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields count from after its closing parenthesis.
    let rest = text.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Resident memory in kB (`VmRSS` of `/proc/PID/status`).
pub fn rss_kb(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()
}

/// Runs `plan` against a node whose call centre is provisioned (see [`provision`]).
pub async fn run(plan: &Plan) -> anyhow::Result<Report> {
    let total = plan.bridged + plan.moh;
    let rss_before = plan.node_pid.and_then(rss_kb);
    let music = plan.music.as_deref().map(media::Music::load).transpose()?;
    let media = Media::start(
        plan.carrier_ip,
        plan.phones_ip,
        plan.sockets_per_side,
        music,
    )?;
    let drops_before = media::socket_drops(&media.local_addrs());
    let stop = CancellationToken::new();

    let counts = start_phones(plan, &media, &stop).await?;
    let started = Instant::now();
    let placed = place_calls(plan, &media, &stop).await?;
    let answered = placed.up.len() as u64;
    let want_bridged = placed
        .up
        .iter()
        .filter(|(i, _)| is_bridged(*i, total, plan.bridged))
        .count() as u64;
    wait_for(
        || counts.answered.load(Ordering::Relaxed) >= want_bridged,
        30,
    )
    .await;
    let bridged_up = counts.answered.load(Ordering::Relaxed);
    println!(
        "{answered} of {total} calls answered ({} failed), {bridged_up} bridged to a phone, in {:.1} s",
        placed.failed,
        started.elapsed().as_secs_f64()
    );

    let watching = Watching::start(placed.up);
    let probing = tokio::spawn(probe(
        placed.carrier.clone(),
        plan.node,
        plan.carrier_ip,
        plan.probes_per_second,
        Instant::now() + plan.warm,
        plan.window,
    ));
    let window = measure(plan.node_pid, plan.warm, plan.window, &media).await?;
    let probes = probing.await.context("the probe task panicked")??;
    let drops_after = media::socket_drops(&media.local_addrs());
    let dropped_by_node = watching.dropped.load(Ordering::Relaxed);
    watching.hang_up(&counts).await?;
    stop.cancel();

    let process = window.process(rss_before);
    Ok(Report {
        target: "callfleet".into(),
        bridged: plan.bridged,
        moh: plan.moh,
        answered,
        bridged_up,
        failed: placed.failed,
        dropped_by_node,
        phones_hung_up: counts.ended.load(Ordering::Relaxed),
        setup_p50_ms: crate::stats::quantile(&placed.setups, 0.5),
        setup_p99_ms: crate::stats::quantile(&placed.setups, 0.99),
        probes,
        media: window.report,
        generator_socket_drops: drops_after.saturating_sub(drops_before),
        generator_cores: own_cores(window.own_cpu.0, window.own_cpu.1, window.wall),
        process,
    })
}

/// Polls `done` every 100 ms for at most `secs` seconds.
async fn wait_for(done: impl Fn() -> bool, secs: u64) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !done() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The phones: every agent's device registered; each call the node rings is answered with a
/// stream of its own (expected back as relayed audio).
async fn start_phones(
    plan: &Plan,
    media: &Arc<Media>,
    stop: &CancellationToken,
) -> anyhow::Result<Arc<PhoneCounts>> {
    let (phones, incoming) = Ua::start_as(
        SocketAddr::new(plan.phones_ip, 5060),
        "callfleet-mediaload phones",
    )
    .await?;
    let phones = Arc::new(phones);
    let counts = Arc::new(PhoneCounts::default());
    let legs = AtomicU64::new(0);
    let m = media.clone();
    let on_ring = Arc::new(move |node_leg: SocketAddr| {
        let n = legs.fetch_add(1, Ordering::Relaxed) as usize;
        let (socket, local) = m.local(Side::Agent, n);
        m.expect(socket, node_leg, Expect::Relay);
        m.add_stream(Side::Agent, socket, node_leg, true);
        local
    });
    tokio::spawn(sip::serve_phones(
        phones.clone(),
        incoming,
        on_ring,
        counts.clone(),
        stop.clone(),
    ));
    register_all(&phones, plan.node, plan.phones.max(plan.bridged)).await?;
    Ok(counts)
}

/// The calls the carrier placed.
struct Placed {
    /// The carrier, for the probes.
    carrier: Arc<Ua>,
    /// Answered calls with their index.
    up: Vec<(usize, sip::Answered)>,
    /// Each answered call's setup time (INVITE to 200 OK), in ms.
    setups: Vec<f64>,
    failed: u64,
}

/// The carrier: places every call at the plan's rate, bridged ones to the queue, the others
/// to music on hold, and starts each answered call's stream.
async fn place_calls(
    plan: &Plan,
    media: &Arc<Media>,
    stop: &CancellationToken,
) -> anyhow::Result<Placed> {
    let total = plan.bridged + plan.moh;
    let (carrier, incoming) = Ua::start_as(
        SocketAddr::new(plan.carrier_ip, 5060),
        "callfleet-mediaload carrier",
    )
    .await?;
    let carrier = Arc::new(carrier);
    tokio::spawn(sip::serve_carrier(carrier.clone(), incoming, stop.clone()));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..total {
        let at = Duration::from_secs_f64(i as f64 / plan.rate.max(0.1));
        tokio::time::sleep_until((started + at).into()).await;
        let bridged = is_bridged(i, total, plan.bridged);
        let (carrier, media, failed, node) =
            (carrier.clone(), media.clone(), failed.clone(), plan.node);
        tasks.push(tokio::spawn(async move {
            let call = place_one(&carrier, &media, node, i, bridged).await;
            if let Err(e) = &call {
                if failed.fetch_add(1, Ordering::Relaxed) < 5 {
                    eprintln!("call {i} failed: {e:#}");
                }
            }
            call.ok().map(|c| (i, c))
        }));
    }
    let mut placed = Placed {
        carrier,
        up: Vec::new(),
        setups: Vec::new(),
        failed: 0,
    };
    for t in tasks {
        if let Some((i, call)) = t.await.context("a call task panicked")? {
            placed.setups.push(call.setup.as_secs_f64() * 1000.0);
            placed.up.push((i, call));
        }
    }
    placed.failed = failed.load(Ordering::Relaxed);
    Ok(placed)
}

/// Call `i`: the INVITE, then its stream once answered.
async fn place_one(
    carrier: &Ua,
    media: &Arc<Media>,
    node: SocketAddr,
    i: usize,
    bridged: bool,
) -> anyhow::Result<sip::Answered> {
    let (socket, local) = media.local(Side::Caller, i);
    let service = if bridged {
        provision::QUEUE
    } else {
        provision::HOLD
    };
    let call_id = format!("mediaload-{i}-{}", rand::random::<u32>());
    let call = sip::invite(
        carrier,
        node,
        service,
        &format!("+1555{i:07}"),
        &call_id,
        local,
    )
    .await
    .with_context(|| format!("a call to {service}"))?;
    let expect = if bridged { Expect::Relay } else { Expect::Moh };
    media.expect(socket, call.node_media, expect);
    media.add_stream(Side::Caller, socket, call.node_media, bridged);
    Ok(call)
}

/// Places `per_second` new calls from `from` (the carrier) to the music-on-hold number
/// through the `window` that starts at `start`, each hung up once answered, and times them.
/// Their RTP goes to one socket of their own that nobody checks. Bounded: at most
/// `per_second` × the window's seconds calls, each bounded by [`sip::invite`]'s wait.
async fn probe(
    from: Arc<Ua>,
    node: SocketAddr,
    ip: IpAddr,
    per_second: f64,
    start: Instant,
    window: Duration,
) -> anyhow::Result<ProbeReport> {
    // NaN and 0 mean none; more than a thousand a second would measure the probes.
    if per_second.is_nan() || per_second <= 0.0 {
        return Ok(ProbeReport::default());
    }
    let per_second = per_second.min(MAX_PROBES_PER_SECOND);
    let count = (per_second * window.as_secs_f64()).floor() as usize;
    if count == 0 {
        // Too few a second for one in the window (and 1 / rate may not fit a Duration).
        return Ok(ProbeReport::default());
    }
    let every = Duration::from_secs_f64(1.0 / per_second);
    let sink = tokio::net::UdpSocket::bind(SocketAddr::new(ip, 0))
        .await
        .context("bind the probes' RTP socket")?;
    let rtp = sink.local_addr().context("the probes' RTP address")?;
    let draining = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while sink.recv_from(&mut buf).await.is_ok() {}
    });
    let mut tasks = Vec::with_capacity(count);
    for k in 0..count {
        tokio::time::sleep_until((start + every * k as u32).into()).await;
        let from = from.clone();
        tasks.push(tokio::spawn(async move {
            let call_id = format!("mediaload-probe-{k}-{}", rand::random::<u32>());
            let call = sip::invite(
                &from,
                node,
                provision::HOLD,
                &format!("+1666{k:07}"),
                &call_id,
                rtp,
            )
            .await;
            match call {
                Ok(call) => Some((call.setup, sip::hang_up(&call.dialog).await)),
                Err(e) => {
                    eprintln!("probe call {k} failed: {e:#}");
                    None
                }
            }
        }));
    }
    let mut report = ProbeReport {
        placed: count as u64,
        ..ProbeReport::default()
    };
    let mut setups = Vec::with_capacity(count);
    for t in tasks {
        if let Some((setup, bye_confirmed)) = t.await.context("a probe task panicked")? {
            report.answered += 1;
            report.unconfirmed_byes += u64::from(!bye_confirmed);
            setups.push(setup.as_secs_f64() * 1000.0);
        }
    }
    draining.abort();
    report.setup_p50_ms = crate::stats::quantile(&setups, 0.5);
    report.setup_p99_ms = crate::stats::quantile(&setups, 0.99);
    report.setup_max_ms = setups.iter().copied().fold(0.0, f64::max);
    Ok(report)
}

/// The answered calls' dialogs, watched for a BYE from the node before ours.
struct Watching {
    dialogs: Vec<rsipstack::dialog::invite_dialog::InviteDialog>,
    watchers: Vec<tokio::task::JoinHandle<()>>,
    /// Calls the node ended first.
    dropped: Arc<AtomicU64>,
    hanging_up: CancellationToken,
}

impl Watching {
    fn start(calls: Vec<(usize, sip::Answered)>) -> Watching {
        let dropped = Arc::new(AtomicU64::new(0));
        let hanging_up = CancellationToken::new();
        let mut watchers = Vec::new();
        let mut dialogs = Vec::new();
        for (_, call) in calls {
            let sip::Answered {
                dialog, mut states, ..
            } = call;
            dialogs.push(dialog);
            let (dropped, hanging_up) = (dropped.clone(), hanging_up.clone());
            watchers.push(tokio::spawn(async move {
                tokio::select! {
                    ended = sip::wait_end(&mut states) => if ended { dropped.fetch_add(1, Ordering::Relaxed); },
                    _ = hanging_up.cancelled() => {}
                }
            }));
        }
        Watching {
            dialogs,
            watchers,
            dropped,
            hanging_up,
        }
    }

    /// The carrier's BYEs, then waits (15 s at most) for the node's BYEs to the phones.
    async fn hang_up(self, counts: &PhoneCounts) -> anyhow::Result<()> {
        self.hanging_up.cancel();
        for w in self.watchers {
            w.abort();
        }
        let byes: Vec<_> = self
            .dialogs
            .into_iter()
            .map(|d| tokio::spawn(async move { sip::hang_up(&d).await }))
            .collect();
        let mut unanswered_byes = 0;
        for b in byes {
            if !b.await.context("a hang-up task panicked")? {
                unanswered_byes += 1;
            }
        }
        if unanswered_byes > 0 {
            println!("{unanswered_byes} BYEs not answered");
        }
        let hangup = Instant::now();
        wait_for(
            || counts.ended.load(Ordering::Relaxed) >= counts.answered.load(Ordering::Relaxed),
            15,
        )
        .await;
        println!(
            "hung up; {} of {} phone calls ended within {:.1} s",
            counts.ended.load(Ordering::Relaxed),
            counts.answered.load(Ordering::Relaxed),
            hangup.elapsed().as_secs_f64()
        );
        Ok(())
    }
}

/// What the window measured.
pub(crate) struct Window {
    /// The node's CPU seconds at the window's start and end.
    node_cpu: Option<(f64, f64)>,
    /// The generator's own.
    pub own_cpu: (Option<f64>, Option<f64>),
    pub wall: f64,
    rss_during: Option<u64>,
    pub report: MediaReport,
}

impl Window {
    /// The measured process's figures over the window (`None` without its CPU samples).
    pub fn process(&self, rss_before: Option<u64>) -> Option<ProcessReport> {
        let (a, b) = self.node_cpu?;
        Some(ProcessReport {
            cores: (b - a) / self.wall,
            rss_before_kb: rss_before.unwrap_or(0),
            rss_during_kb: self.rss_during.unwrap_or(0),
        })
    }
}

/// The warm-up, then the window (the relay `pid`'s CPU and the generator's sampled at both
/// ends), then a tail for the window's last packets, and the media report.
pub(crate) async fn measure(
    pid: Option<u32>,
    warm: Duration,
    window: Duration,
    media: &Arc<Media>,
) -> anyhow::Result<Window> {
    media.set_window(warm, window);
    tokio::time::sleep(warm).await;
    let cpu0 = pid.and_then(cpu_seconds);
    let own0 = cpu_seconds(std::process::id());
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let cpu1 = pid.and_then(cpu_seconds);
    let own1 = cpu_seconds(std::process::id());
    let wall = t0.elapsed().as_secs_f64();
    let rss_during = pid.and_then(rss_kb);
    tokio::time::sleep(TAIL).await;
    let m = media.clone();
    let report = tokio::task::spawn_blocking(move || m.finish(window))
        .await
        .context("the media report panicked")?;
    Ok(Window {
        node_cpu: cpu0.zip(cpu1),
        own_cpu: (own0, own1),
        wall,
        rss_during,
        report,
    })
}

/// CPU over wall time between two samples of [`cpu_seconds`].
pub fn own_cores(before: Option<f64>, after: Option<f64>, wall: f64) -> f64 {
    match (before, after) {
        (Some(a), Some(b)) if wall > 0.0 => (b - a) / wall,
        _ => 0.0,
    }
}

/// Registers phones `0..n`, a few at a time: the node counts password checks in progress
/// from one address against its guessing limit (`registrar.max_failures`, 10 by default), and
/// every phone here registers from the same address.
async fn register_all(ua: &Arc<Ua>, node: SocketAddr, n: usize) -> anyhow::Result<()> {
    const AT_ONCE: usize = 4;
    let started = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(AT_ONCE) {
        let mut tasks = Vec::new();
        for &i in chunk {
            let ua = ua.clone();
            tasks.push(tokio::spawn(async move {
                let dev = provision::device(i);
                // A REGISTER lost on a loaded host is tried again (three times in all).
                let mut result = Ok(());
                for _ in 0..3 {
                    result = sip::register(&ua, node, &dev, &provision::password(&dev), 3600).await;
                    if result.is_ok() {
                        break;
                    }
                }
                result
            }));
        }
        for t in tasks {
            t.await.context("a REGISTER task panicked")??;
        }
    }
    if n > 0 {
        println!(
            "{n} phones registered in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridged_calls_are_spread_evenly() {
        let picks: Vec<bool> = (0..10).map(|i| is_bridged(i, 10, 2)).collect();
        assert_eq!(picks.iter().filter(|b| **b).count(), 2);
        assert_eq!((0..10).filter(|&i| is_bridged(i, 10, 10)).count(), 10);
        assert_eq!((0..10).filter(|&i| is_bridged(i, 10, 0)).count(), 0);
        assert_eq!((0..1000).filter(|&i| is_bridged(i, 1000, 200)).count(), 200);
        // No run of more than 5 waiting calls between two bridged ones at 20 %.
        let idx: Vec<usize> = (0..100).filter(|&i| is_bridged(i, 100, 20)).collect();
        assert!(idx.windows(2).all(|w| w[1] - w[0] == 5), "{idx:?}");
    }

    #[test]
    fn per_call_figures() {
        let p = ProcessReport {
            cores: 0.5,
            rss_before_kb: 10_000,
            rss_during_kb: 20_000,
        };
        assert_eq!(p.per_call(100), (5.0, 100.0));
        assert_eq!(p.per_call(0), (0.0, 0.0));
    }
}
