//! Benchmark run by `bench/lockd`: acquire+release pairs per second and their latency through
//! lockd, next to memcached's own `add`+`delete` as the reference, in the same run.
//!
//! Each client is a task looping on its own key (no contention: this measures the path, not
//! the lock) until the time is up. lockd runs in this process on a thread (or threads) and
//! runtime of its own, built by `callfleet_lockd::runtime` as `callfleet lockd` builds it,
//! bound to a 127.0.0.x address, with its memcached backend (the one measured) and its memory backend
//! (which shows what HTTP alone costs); a fourth measurement runs the memcached backend
//! without HTTP. The raw reference sends confirmed `add` and `delete` over one connection per
//! client (`async-memcached`, an independent client).
//!
//! The measurements run in rounds, each round all of them in turn, so that other load on the
//! host spreads over all of them alike; the summary gives the median of each over the rounds.
//! Next to the rate and latency it gives the CPU time each party used per pair — the client
//! tasks' threads, lockd's threads, and memcached (when `--memcached-pid` names it) — which
//! other load disturbs less than the rate, and which says what lockd itself costs on a host
//! it shares with its clients.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use async_memcached::{AsciiProtocol as _, Client};
use callfleet_lockd::{Auth, Backend, ClusterKey, LockClient};

/// The cluster secret lockd and the clients share here: every request is signed, as in a
/// cluster.
const SECRET: &str = "lockd-bench-cluster-secret-0123456789abcdef";

struct Args {
    duration: Duration,
    rounds: usize,
    /// Concurrent clients; each count is measured in turn.
    clients: Vec<usize>,
    memcached: String,
    ip: String,
    server_threads: usize,
    client_threads: usize,
    only: Option<String>,
    memcached_pid: Option<u32>,
}

/// Thread names, by which CPU time is put down to the clients or to lockd.
const CLIENT_THREAD: &str = "bench-client";
const LOCKD_THREAD: &str = "lockd-server";

/// The measurements, by the name `--only` knows them by.
const KINDS: [(&str, &str); 4] = [
    ("raw", "raw memcached add+delete"),
    ("lockd", "lockd (memcached) acquire+release"),
    ("memory", "lockd (memory) acquire+release"),
    ("direct", "memcached backend without HTTP"),
];

/// Pairs done in one measurement, with each pair's latency in µs.
struct Run {
    kind: &'static str,
    clients: usize,
    elapsed: Duration,
    latencies_us: Vec<u32>,
    errors: usize,
    /// CPU time used during the measurement.
    cpu: Cpu,
}

/// CPU time by party.
#[derive(Clone, Copy, Default)]
struct Cpu {
    clients: Duration,
    lockd: Duration,
    memcached: Option<Duration>,
}

impl Cpu {
    /// CPU time used so far: by this process's threads, by role, and by memcached.
    fn now(memcached_pid: Option<u32>) -> Self {
        let mut cpu = Self {
            memcached: memcached_pid.and_then(|pid| process_cpu(&format!("/proc/{pid}/stat"))),
            ..Self::default()
        };
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return cpu;
        };
        for task in tasks.flatten() {
            let path = task.path();
            let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            let used = process_cpu(&path.join("stat").to_string_lossy()).unwrap_or_default();
            if comm.trim_end() == LOCKD_THREAD {
                cpu.lockd += used;
            } else {
                cpu.clients += used;
            }
        }
        cpu
    }

    fn since(self, before: Self) -> Self {
        Self {
            clients: self.clients.saturating_sub(before.clients),
            lockd: self.lockd.saturating_sub(before.lockd),
            memcached: self
                .memcached
                .zip(before.memcached)
                .map(|(a, b)| a.saturating_sub(b)),
        }
    }
}

impl Run {
    fn rate(&self) -> f64 {
        self.latencies_us.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        f64::from(self.latencies_us[i]) / 1000.0
    }

    fn per_pair_us(&self, d: Duration) -> f64 {
        d.as_secs_f64() * 1e6 / self.latencies_us.len().max(1) as f64
    }

    fn stats(&self) -> Stats {
        Stats {
            rate: self.rate(),
            p50: self.percentile_ms(0.50),
            p99: self.percentile_ms(0.99),
            max: self.percentile_ms(1.0),
            errors: self.errors,
            cpu_clients: self.per_pair_us(self.cpu.clients),
            cpu_lockd: self.per_pair_us(self.cpu.lockd),
            cpu_memcached: self.cpu.memcached.map_or(f64::NAN, |d| self.per_pair_us(d)),
        }
    }
}

/// What is printed of a measurement (one run, or the medians of several).
struct Stats {
    rate: f64,
    p50: f64,
    p99: f64,
    max: f64,
    errors: usize,
    cpu_clients: f64,
    cpu_lockd: f64,
    cpu_memcached: f64,
}

impl Stats {
    fn header(indent: &str) {
        println!(
            "{indent}{:<34} {:>8} {:>7} {:>7} {:>8} {:>6}   CPU µs/pair: {:>7} {:>6} {:>9}",
            "", "pairs/s", "p50 ms", "p99 ms", "max ms", "errors", "clients", "lockd", "memcached"
        );
    }

    fn print(&self, indent: &str, label: &str) {
        let us = |v: f64| {
            if v.is_nan() {
                "-".to_owned()
            } else {
                format!("{v:.1}")
            }
        };
        println!(
            "{indent}{label:<34} {:>8.0} {:>7.3} {:>7.3} {:>8.3} {:>6}                {:>7} {:>6} {:>9}",
            self.rate,
            self.p50,
            self.p99,
            self.max,
            self.errors,
            us(self.cpu_clients),
            us(self.cpu_lockd),
            us(self.cpu_memcached),
        );
    }

    /// The median of each figure over `runs` (errors are summed).
    fn median(runs: &[&Run]) -> Self {
        let all: Vec<Stats> = runs.iter().map(|r| r.stats()).collect();
        let med = |f: fn(&Stats) -> f64| {
            let mut v: Vec<f64> = all.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
        };
        Self {
            rate: med(|s| s.rate),
            p50: med(|s| s.p50),
            p99: med(|s| s.p99),
            max: med(|s| s.max),
            errors: all.iter().map(|s| s.errors).sum(),
            cpu_clients: med(|s| s.cpu_clients),
            cpu_lockd: med(|s| s.cpu_lockd),
            cpu_memcached: med(|s| s.cpu_memcached),
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let counts: Vec<String> = args.clients.iter().map(usize::to_string).collect();
    println!(
        "lockd bench: {} clients, {} rounds of {:?} per measurement, memcached {}, lockd on {} ({} server / {} client threads)",
        counts.join(" and "), args.rounds, args.duration, args.memcached, args.ip, args.server_threads, args.client_threads
    );
    println!("host load average at start: {}", load_average());
    let memcached = Lockd::start(&args, &format!("memcached://{}", args.memcached))?;
    let memory = Lockd::start(&args, "memory")?;
    // The clients run on a thread (or threads) of their own name, for the CPU accounting.
    let clients_rt = callfleet_lockd::runtime(args.client_threads, CLIENT_THREAD)?;
    let runs = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name(CLIENT_THREAD.into())
            .spawn_scoped(scope, || {
                clients_rt.block_on(measure_all(&args, &memcached.url, &memory.url))
            })?
            .join()
            .map_err(|_| anyhow::anyhow!("the client thread panicked"))?
    })?;
    println!("host load average at end:   {}", load_average());
    summarize(&args, &runs);
    Ok(())
}

async fn measure_all(args: &Args, memcached: &str, memory: &str) -> anyhow::Result<Vec<Run>> {
    let http = |url: &str| {
        LockClient::with_timeout([url], ClusterKey::new(SECRET), Duration::from_secs(2))
    };
    let direct = LockClient::with_backend(Backend::from_url(&format!(
        "memcached://{}",
        args.memcached
    ))?);
    let clients = [
        ("lockd", http(memcached)?),
        ("memory", http(memory)?),
        ("direct", direct),
    ];
    // Warm up connections and code paths, then measure.
    let (warm, most) = (
        Duration::from_millis(300),
        args.clients.iter().max().copied(),
    );
    raw(args, (most.unwrap_or(1), warm), "raw").await?;
    for (kind, client) in &clients {
        pairs(args, (most.unwrap_or(1), warm), client.clone(), kind).await?;
    }
    let wanted = |kind: &str| {
        args.only
            .as_deref()
            .is_none_or(|o| o.split(',').any(|w| w == kind))
    };
    let mut runs = Vec::new();
    for round in 1..=args.rounds {
        for &n in &args.clients {
            let mut this_round = Vec::new();
            if wanted("raw") {
                this_round.push(raw(args, (n, args.duration), "raw").await?);
            }
            for (kind, client) in &clients {
                if wanted(kind) {
                    let run = pairs(args, (n, args.duration), client.clone(), kind).await?;
                    this_round.push(run);
                }
            }
            if args.rounds > 1 {
                println!("round {round}, {n} clients:");
                Stats::header("  ");
                for run in &this_round {
                    run.stats().print("  ", label(run.kind));
                }
            }
            runs.extend(this_round);
        }
    }
    Ok(runs)
}

fn label(kind: &str) -> &'static str {
    KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("?", |(_, label)| label)
}

/// Prints the medians for each client count, and whether any count met the targets.
fn summarize(args: &Args, runs: &[Run]) {
    let mut met_with = Vec::new();
    for &n in &args.clients {
        println!("{n} clients, median of {} rounds:", args.rounds);
        Stats::header("");
        let mut medians = Vec::new();
        for (kind, label) in KINDS {
            let of_kind: Vec<&Run> = runs
                .iter()
                .filter(|r| r.kind == kind && r.clients == n)
                .collect();
            if !of_kind.is_empty() {
                let stats = Stats::median(&of_kind);
                stats.print("", label);
                medians.push((kind, stats));
            }
        }
        let find = |kind| medians.iter().find(|(k, _)| *k == kind).map(|(_, s)| s);
        let Some(lockd) = find("lockd") else { continue };
        if let Some(raw) = find("raw") {
            println!(
                "lockd (memcached) / raw memcached: throughput {:.2}x, p99 {:.2}x",
                lockd.rate / raw.rate,
                lockd.p99 / raw.p99
            );
        }
        if lockd.rate >= 20_000.0 && lockd.p99 < 2.0 {
            met_with.push(n.to_string());
        }
    }
    if runs.iter().any(|r| r.kind == "lockd") {
        let verdict = if met_with.is_empty() {
            "NOT met".to_owned()
        } else {
            format!("met with {} clients", met_with.join(", "))
        };
        println!("target (>= 20000 pairs/s, p99 < 2 ms through lockd with memcached): {verdict}");
    }
}

/// A lockd server on its own runtime and thread(s), so that it does not share threads with
/// the clients; it runs until the process exits.
struct Lockd {
    url: String,
}

impl Lockd {
    fn start(args: &Args, backend: &str) -> anyhow::Result<Self> {
        let backend = Backend::from_url(backend)?;
        let listener = TcpListener::bind((args.ip.as_str(), 0))?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}", listener.local_addr()?);
        let rt = callfleet_lockd::runtime(args.server_threads, LOCKD_THREAD)?;
        std::thread::Builder::new()
            .name(LOCKD_THREAD.into())
            .spawn(move || {
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    let auth = Auth::new(ClusterKey::new(SECRET));
                    callfleet_lockd::serve(listener, backend, auth, std::future::pending()).await
                })
            })?;
        Ok(Self { url })
    }
}

/// `n` clients sending `add` and `delete` for `duration`.
async fn raw(
    args: &Args,
    (n, duration): (usize, Duration),
    kind: &'static str,
) -> anyhow::Result<Run> {
    let prefix = format!("bench:{:08x}", rand::random::<u32>());
    let mut conns = Vec::new();
    for _ in 0..n {
        conns.push(Client::new(format!("tcp://{}", args.memcached)).await?);
    }
    let cpu = Cpu::now(args.memcached_pid);
    let until = Instant::now() + duration;
    let started = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, mut conn)| {
            let key = format!("{prefix}:{i}");
            tokio::spawn(async move {
                let (mut lat, mut errors) = (Vec::new(), 0);
                while Instant::now() < until {
                    let t = Instant::now();
                    let added = conn.add(&key, "1", Some(5), None).await;
                    let deleted = conn.delete(&key).await;
                    if added.is_ok() && deleted.is_ok() {
                        lat.push(micros(t.elapsed()));
                    } else {
                        errors += 1;
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    collect((kind, n), (started, cpu, args.memcached_pid), tasks).await
}

/// `n` clients taking and releasing leases through `client` for `duration`, each on its own
/// key.
async fn pairs(
    args: &Args,
    (n, duration): (usize, Duration),
    client: LockClient,
    kind: &'static str,
) -> anyhow::Result<Run> {
    let prefix = format!("bench:{:08x}", rand::random::<u32>());
    let cpu = Cpu::now(args.memcached_pid);
    let until = Instant::now() + duration;
    let started = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (client, key) = (client.clone(), format!("{prefix}:{i}"));
            tokio::spawn(async move {
                let (mut lat, mut errors) = (Vec::new(), 0);
                while Instant::now() < until {
                    let t = Instant::now();
                    let ok = match client.acquire(&key, "bench", Duration::from_secs(5)).await {
                        Ok(Some(lease)) => client.release(&lease).await.unwrap_or(false),
                        _ => false,
                    };
                    if ok {
                        lat.push(micros(t.elapsed()));
                    } else {
                        errors += 1;
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    collect((kind, n), (started, cpu, args.memcached_pid), tasks).await
}

type Task = tokio::task::JoinHandle<(Vec<u32>, usize)>;

async fn collect(
    (kind, clients): (&'static str, usize),
    (started, cpu_before, memcached_pid): (Instant, Cpu, Option<u32>),
    tasks: Vec<Task>,
) -> anyhow::Result<Run> {
    let mut run = Run {
        kind,
        clients,
        elapsed: Duration::ZERO,
        latencies_us: Vec::new(),
        errors: 0,
        cpu: Cpu::default(),
    };
    for task in tasks {
        let (lat, errors) = task.await?;
        run.latencies_us.extend(lat);
        run.errors += errors;
    }
    run.elapsed = started.elapsed();
    run.cpu = Cpu::now(memcached_pid).since(cpu_before);
    run.latencies_us.sort_unstable();
    Ok(run)
}

/// CPU time (user + system) of the process or thread whose `stat` file is `path`; `None`
/// where it cannot be read.
fn process_cpu(path: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(path).ok()?;
    // After the command name (which may hold spaces, hence the last ')'), utime and stime are
    // fields 14 and 15 of the line, in clock ticks (100 per second on Linux).
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        duration: Duration::from_secs(2),
        rounds: 3,
        clients: vec![16, 32],
        memcached: "127.0.0.1:11211".into(),
        ip: "127.0.0.81".into(),
        server_threads: 1,
        client_threads: 1,
        only: None,
        memcached_pid: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--duration" => args.duration = Duration::from_secs_f64(value()?.parse()?),
            "--rounds" => args.rounds = value()?.parse::<usize>()?.max(1),
            "--clients" => {
                args.clients = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--memcached" => args.memcached = value()?,
            "--ip" => args.ip = value()?,
            "--server-threads" => args.server_threads = value()?.parse()?,
            "--client-threads" => args.client_threads = value()?.parse()?,
            "--only" => args.only = Some(value()?),
            "--memcached-pid" => args.memcached_pid = Some(value()?.parse()?),
            "--cpus" => {
                // Handled by bench/lockd (taskset).
                value()?;
            }
            other => anyhow::bail!("unknown argument {other} (see bench/lockd --help)"),
        }
    }
    Ok(args)
}
