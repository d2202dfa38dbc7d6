//! Benchmark run by `bench/lockd`: acquire+release pairs per second and their latency through
//! lockd, next to memcached's own `add`+`delete` as the reference, in the same run.
//!
//! Each client is a task looping on its own key (no contention: this measures the path, not
//! the lock) until the time is up. lockd runs in this process on its own runtime, bound to a
//! 127.0.0.x address, with its memcached backend (the one measured) and its memory backend
//! (which shows what HTTP alone costs). The raw reference sends confirmed `add` and `delete`
//! over one connection per client.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_memcached::{AsciiProtocol as _, Client};
use callfleet_lockd::{Backend, LockClient};

struct Args {
    duration: Duration,
    clients: usize,
    memcached: String,
    ip: String,
    server_threads: usize,
    client_threads: usize,
}

/// Pairs done in one measurement, with each pair's latency in µs.
struct Run {
    label: &'static str,
    elapsed: Duration,
    latencies_us: Vec<u32>,
    errors: usize,
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

    fn print(&self) {
        println!(
            "{:<34} {:>9.0} pairs/s   p50 {:>6.3} ms   p99 {:>6.3} ms   max {:>7.3} ms   errors {}",
            self.label,
            self.rate(),
            self.percentile_ms(0.50),
            self.percentile_ms(0.99),
            self.percentile_ms(1.0),
            self.errors
        );
    }
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let clients_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .enable_all()
        .build()?;
    println!(
        "lockd bench: {} clients, {:?} per measurement, memcached {}, lockd on {} ({} server / {} client threads)",
        args.clients, args.duration, args.memcached, args.ip, args.server_threads, args.client_threads
    );
    let memcached = Lockd::start(&args, &format!("memcached://{}", args.memcached))?;
    let memory = Lockd::start(&args, "memory")?;
    let mut runs = Vec::new();
    clients_rt.block_on(async {
        let http = |url: &str| LockClient::with_timeout([url], Duration::from_secs(2));
        let direct = Backend::from_url(&format!("memcached://{}", args.memcached))?;
        // Warm up connections and code paths, then measure.
        raw(&args, Duration::from_millis(300), "warm-up").await?;
        pairs(
            &args,
            http(&memcached.url)?,
            Duration::from_millis(300),
            "warm-up",
        )
        .await?;
        runs.push(raw(&args, args.duration, "raw memcached add+delete").await?);
        let measured = [
            ("lockd (memcached) acquire+release", http(&memcached.url)?),
            ("lockd (memory) acquire+release", http(&memory.url)?),
            (
                "memcached backend without HTTP",
                LockClient::with_backend(direct),
            ),
        ];
        for (label, client) in measured {
            runs.push(pairs(&args, client, args.duration, label).await?);
        }
        anyhow::Ok(())
    })?;
    for run in &runs {
        run.print();
    }
    let (reference, measured) = (&runs[0], &runs[1]);
    println!(
        "lockd (memcached) / raw memcached: throughput {:.2}x, p99 {:.2}x",
        measured.rate() / reference.rate(),
        measured.percentile_ms(0.99) / reference.percentile_ms(0.99)
    );
    let met = measured.rate() >= 20_000.0 && measured.percentile_ms(0.99) < 2.0;
    println!(
        "target (>= 20000 pairs/s, p99 < 2 ms through lockd with memcached): {}",
        if met { "met" } else { "NOT met" }
    );
    Ok(())
}

/// A lockd server on its own runtime, so that it does not share threads with the clients.
struct Lockd {
    url: String,
    _rt: tokio::runtime::Runtime,
}

impl Lockd {
    fn start(args: &Args, backend: &str) -> anyhow::Result<Self> {
        let backend = Backend::from_url(backend)?;
        let listener = TcpListener::bind((args.ip.as_str(), 0))?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}", listener.local_addr()?);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.server_threads)
            .enable_all()
            .build()?;
        rt.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            callfleet_lockd::serve(listener, backend, std::future::pending()).await
        });
        Ok(Self { url, _rt: rt })
    }
}

async fn raw(args: &Args, duration: Duration, label: &'static str) -> anyhow::Result<Run> {
    let prefix = format!("bench:{:08x}", rand::random::<u32>());
    let mut conns = Vec::new();
    for _ in 0..args.clients {
        conns.push(Client::new(format!("tcp://{}", args.memcached)).await?);
    }
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
    collect(label, started, tasks).await
}

/// Acquire+release pairs through `client`, each task on its own key.
async fn pairs(
    args: &Args,
    client: LockClient,
    duration: Duration,
    label: &'static str,
) -> anyhow::Result<Run> {
    let client = Arc::new(client);
    let prefix = format!("bench:{:08x}", rand::random::<u32>());
    let until = Instant::now() + duration;
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.clients)
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
    collect(label, started, tasks).await
}

type Task = tokio::task::JoinHandle<(Vec<u32>, usize)>;

async fn collect(label: &'static str, started: Instant, tasks: Vec<Task>) -> anyhow::Result<Run> {
    let mut run = Run {
        label,
        elapsed: Duration::ZERO,
        latencies_us: Vec::new(),
        errors: 0,
    };
    for task in tasks {
        let (lat, errors) = task.await?;
        run.latencies_us.extend(lat);
        run.errors += errors;
    }
    run.elapsed = started.elapsed();
    run.latencies_us.sort_unstable();
    Ok(run)
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        duration: Duration::from_secs(5),
        clients: 16,
        memcached: "127.0.0.1:11211".into(),
        ip: "127.0.0.81".into(),
        server_threads: 1,
        client_threads: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--duration" => args.duration = Duration::from_secs_f64(value()?.parse()?),
            "--clients" => args.clients = value()?.parse()?,
            "--memcached" => args.memcached = value()?,
            "--ip" => args.ip = value()?,
            "--server-threads" => args.server_threads = value()?.parse()?,
            "--client-threads" => args.client_threads = value()?.parse()?,
            other => anyhow::bail!("unknown argument {other} (see bench/lockd --help)"),
        }
    }
    Ok(args)
}
