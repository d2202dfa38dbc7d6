//! Several OS processes contend for one key through two lockd servers that share the real
//! memcached. Each records when it held the key; no two holders' intervals may overlap and
//! tokens must increase in holding order — also while one lockd is killed mid-run and the
//! clients fail over to the other. And a lease whose holder process is killed ends within its
//! TTL.
//!
//! Runs without the test harness: `main` runs the scenarios and re-executes this binary with
//! `CALLFLEET_LOCKD_WORKER` set to play one contending process.

// Test code: a panic is a failed test (clippy.toml allows unwrap in #[test] functions; this
// extends it to the helpers around them).
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use callfleet_lockd::{Backend, LockClient};
use support::{memcached_url, prefix, wall_ns, Lockd};

const WORKER: &str = "CALLFLEET_LOCKD_WORKER";
const WORKERS: usize = 6;
const ROUNDS: usize = 25;
const TTL: Duration = Duration::from_millis(1000);
const SEC: u64 = 1_000_000_000;

fn main() {
    if let Ok(role) = std::env::var(WORKER) {
        worker(&role);
        return;
    }
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let scenarios: [(&str, fn()); 3] = [
        ("no_overlap_across_processes_and_lockd_instances", || {
            contend(false)
        }),
        ("no_overlap_while_a_lockd_is_killed", || contend(true)),
        (
            "a_vanished_holder_loses_its_lease_at_its_ttl",
            vanished_holder,
        ),
    ];
    let chosen: Vec<_> = scenarios
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect();
    println!("\nrunning {} tests", chosen.len());
    for (name, scenario) in &chosen {
        println!("test {name} ...");
        scenario();
        println!("test {name} ... ok");
    }
    println!("\ntest result: ok. {} passed", chosen.len());
}

/// One holding of the key, as a worker saw it (wall-clock ns).
#[derive(Debug, Clone)]
struct Held {
    owner: String,
    token: u64,
    start: u64,
    end: u64,
}

fn contend(kill_one: bool) {
    let url = memcached_url();
    let mut a = Lockd::start("127.0.0.71", Backend::from_url(&url).unwrap());
    let b = Lockd::start("127.0.0.72", Backend::from_url(&url).unwrap());
    let p = prefix();
    let key = format!("{p}:agent:1");
    let dir = std::env::temp_dir().join(format!("callfleet-lockd-{p}"));
    std::fs::create_dir_all(&dir).unwrap();
    let until = wall_ns() + 8 * SEC;
    let children: Vec<(PathBuf, Child)> = (0..WORKERS)
        .map(|i| {
            // Half the workers prefer each lockd; when one is killed, all start on it.
            let urls = if kill_one || i % 2 == 0 {
                format!("{},{}", a.url, b.url)
            } else {
                format!("{},{}", b.url, a.url)
            };
            let out = dir.join(format!("worker-{i}.txt"));
            let child = Command::new(std::env::current_exe().unwrap())
                .env(WORKER, "contend")
                .env("CALLFLEET_LOCKD_URLS", urls)
                .env("CALLFLEET_LOCKD_KEY", &key)
                .env("CALLFLEET_LOCKD_OWNER", format!("worker-{i}"))
                .env("CALLFLEET_LOCKD_OUT", &out)
                .env("CALLFLEET_LOCKD_UNTIL_NS", until.to_string())
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            (out, child)
        })
        .collect();
    // Killed once a quarter of the holdings are done (workers record them as they go), so
    // that most of the run happens after the kill however fast lockd serves.
    let killed_at = kill_one.then(|| {
        let outs: Vec<&Path> = children.iter().map(|(out, _)| out.as_path()).collect();
        wait_for_holdings(&outs, WORKERS * ROUNDS / 4, until);
        a.kill();
        wall_ns()
    });
    let mut held = Vec::new();
    for (out, child) in children {
        wait(child, until + 5 * SEC);
        held.extend(read_records(&out));
    }
    let _ = std::fs::remove_dir_all(&dir);
    check_no_overlap(&mut held);
    assert!(held.len() >= 30, "only {} holdings in all", held.len());
    let owners: HashSet<_> = held.iter().map(|h| h.owner.as_str()).collect();
    assert!(
        owners.len() >= WORKERS / 2,
        "too few workers ever got the key: {owners:?}"
    );
    if let Some(killed_at) = killed_at {
        let after = held.iter().filter(|h| h.start > killed_at).count();
        assert!(
            after >= 10,
            "only {after} holdings after the lockd was killed"
        );
        println!(
            "  {} holdings, {after} after killing lockd {}",
            held.len(),
            a.url
        );
    } else {
        println!("  {} holdings by {} workers", held.len(), owners.len());
    }
}

fn check_no_overlap(held: &mut [Held]) {
    held.sort_by_key(|h| h.start);
    let mut tokens = HashSet::new();
    for pair in held.windows(2) {
        let (prev, next) = (&pair[0], &pair[1]);
        assert!(
            next.token > prev.token,
            "token order: {prev:?} then {next:?}"
        );
    }
    let mut latest: Option<&Held> = None;
    for h in held.iter() {
        assert!(tokens.insert(h.token), "token {} issued twice", h.token);
        if let Some(l) = latest {
            assert!(
                h.start >= l.end,
                "overlap: {h:?} started while {l:?} held the key"
            );
        }
        if latest.is_none_or(|l| h.end > l.end) {
            latest = Some(h);
        }
    }
}

/// Waits until the workers have recorded `n` holdings in all (or `until`).
fn wait_for_holdings(outs: &[&Path], n: usize, until: u64) {
    let recorded = || {
        outs.iter()
            .filter_map(|out| std::fs::read(out).ok())
            .map(|text| text.iter().filter(|&&b| b == b'\n').count())
            .sum::<usize>()
    };
    while recorded() < n && wall_ns() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn read_records(path: &Path) -> Vec<Held> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            assert_eq!(f.len(), 4, "bad record {line:?}");
            Held {
                owner: f[0].into(),
                token: f[1].parse().unwrap(),
                start: f[2].parse().unwrap(),
                end: f[3].parse().unwrap(),
            }
        })
        .collect()
}

/// Waits for a worker to exit successfully by `deadline_ns`, else kills it and fails.
fn wait(mut child: Child, deadline_ns: u64) {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "worker failed: {status}");
            return;
        }
        if wall_ns() > deadline_ns {
            let _ = child.kill();
            panic!("a worker did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn vanished_holder() {
    let lockd = Lockd::start("127.0.0.73", Backend::from_url(&memcached_url()).unwrap());
    let key = format!("{}:agent:1", prefix());
    let ttl = Duration::from_millis(1500);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(WORKER, "hold")
        .env("CALLFLEET_LOCKD_URLS", &lockd.url)
        .env("CALLFLEET_LOCKD_KEY", &key)
        .env("CALLFLEET_LOCKD_TTL_MS", ttl.as_millis().to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let (token, asked) = line
        .trim()
        .split_once(' ')
        .expect("holder prints `token asked_ns`");
    let (token, asked): (u64, u64) = (token.parse().unwrap(), asked.parse().unwrap());
    child.kill().unwrap();
    child.wait().unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (lease, got_at) = rt.block_on(async {
        let client = LockClient::new([&lockd.url], support::key()).unwrap();
        loop {
            if let Some(lease) = client.acquire(&key, "survivor", ttl).await.unwrap() {
                break (lease, wall_ns());
            }
            assert!(
                wall_ns() < asked + 5 * SEC,
                "the vanished holder's lease never ended"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let ttl_ns = u64::try_from(ttl.as_nanos()).unwrap();
    let waited = Duration::from_nanos(got_at - asked);
    assert!(
        got_at >= asked + ttl_ns,
        "taken over after {waited:?}, before the TTL"
    );
    assert!(
        waited < ttl + Duration::from_millis(800),
        "taken over only after {waited:?}"
    );
    assert!(lease.token() > token);
    println!("  lease of {ttl:?} taken over {waited:?} after its holder asked for it");
}

/// A contending process (`contend`) or one that takes the key and waits to be killed (`hold`).
fn worker(role: &str) {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("worker needs {name}"));
    let urls: Vec<String> = var("CALLFLEET_LOCKD_URLS")
        .split(',')
        .map(String::from)
        .collect();
    let key = var("CALLFLEET_LOCKD_KEY");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = LockClient::new(&urls, support::key()).unwrap();
    match role {
        "contend" => {
            let owner = var("CALLFLEET_LOCKD_OWNER");
            let until: u64 = var("CALLFLEET_LOCKD_UNTIL_NS").parse().unwrap();
            let mut out = std::fs::File::create(var("CALLFLEET_LOCKD_OUT")).unwrap();
            rt.block_on(contend_loop(&client, &key, &owner, until, &mut out));
        }
        "hold" => {
            let ttl = Duration::from_millis(var("CALLFLEET_LOCKD_TTL_MS").parse().unwrap());
            rt.block_on(async {
                let asked = wall_ns();
                let lease = client.acquire(&key, "doomed", ttl).await.unwrap().unwrap();
                println!("{} {asked}", lease.token());
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
        other => panic!("unknown worker role {other}"),
    }
}

/// Takes the key, holds it briefly, gives it back; `ROUNDS` times or until `until`.
/// A holding is recorded as `owner token start end`, its end cut at the lease's expiry as
/// this process knows it (the TTL from when it asked), because a lease protects nothing
/// past its TTL. Each is written to `out` as soon as it ends, one line in one write.
async fn contend_loop(
    client: &LockClient,
    key: &str,
    owner: &str,
    until: u64,
    out: &mut std::fs::File,
) {
    use std::io::Write as _;
    let ttl_ns = u64::try_from(TTL.as_nanos()).unwrap();
    let mut rounds = 0;
    while rounds < ROUNDS && wall_ns() < until {
        let asked = wall_ns();
        match client.acquire(key, owner, TTL).await {
            Ok(Some(lease)) => {
                let start = wall_ns();
                let hold = Duration::from_micros(rand::random_range(200..1500));
                tokio::time::sleep(hold).await;
                let end = wall_ns().min(asked + ttl_ns);
                if start < end {
                    let record = format!("{owner} {} {start} {end}\n", lease.token());
                    out.write_all(record.as_bytes()).unwrap();
                }
                rounds += 1;
                // Lost if the lockd died: the lease then ends at its TTL.
                let _ = client.release(&lease).await;
            }
            Ok(None) => {
                tokio::time::sleep(Duration::from_micros(rand::random_range(0..2000))).await
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}
