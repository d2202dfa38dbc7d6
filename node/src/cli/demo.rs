//! `callfleet demo`: a whole cluster on this host with the embedded default (SQLite, no other
//! server): main nodes on 127.0.0.11 and 127.0.0.12, an extra node on 127.0.0.13 and a lock
//! service on 127.0.0.10, each a child process of this one. Unless `--quiet`, it seeds a small
//! call centre and runs simulated traffic in this process (the carrier and the phones, real
//! SIP and RTP on loopback addresses: `sim`), so the panel is alive within seconds. Ctrl-C
//! hangs up the simulated calls, then stops every child cleanly.

mod carrier;
mod events;
mod media;
mod phone;
mod seed;
mod sim;
pub mod sip;
mod traffic;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context as _};
use tokio::process::{Child, Command};

use super::logging::LogFormat;
use sim::{NodeAddr, Sim};

/// Where the demo's lock service listens.
const LOCKD: &str = "127.0.0.10:7070";

/// `(name, role, ip)` of the demo's nodes.
const NODES: [(&str, &str, &str); 3] = [
    ("main-a", "main", "127.0.0.11"),
    ("main-b", "main", "127.0.0.12"),
    ("extra-c", "extra", "127.0.0.13"),
];

/// Calls each node takes at most: low, so a handful of calls already shows the main node
/// spreading calls by 302 (it keeps a call while its share is within 10 points of the others').
const CAPACITY: u32 = 20;

/// How long the nodes get to answer `/healthz` before the demo gives up.
const START_LIMIT: Duration = Duration::from_secs(20);

/// What `callfleet demo` was asked for.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where configs, the database and logs go.
    pub dir: PathBuf,
    /// The bare cluster: no call centre, no simulated traffic.
    pub quiet: bool,
    /// The children's log format.
    pub log_format: LogFormat,
}

/// A started child process.
struct Proc {
    name: String,
    child: Child,
}

/// Runs the demo until Ctrl-C (or SIGTERM, or a child exits).
pub async fn demo(opts: DemoOptions) -> anyhow::Result<()> {
    let dir = &opts.dir;
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolve {}", dir.display()))?;
    let db = dir.join("cluster.db");
    let secret = cluster_secret(&dir)?;
    // Migrate once here: SQLite does not serialise concurrent migrations of three nodes.
    let store = callfleet_store::Store::connect(&format!("sqlite://{}", db.display()))
        .await
        .context("open the demo database")?;
    store.migrate().await.context("migrate the demo database")?;
    let seeded = if opts.quiet {
        None
    } else {
        Some(seed::seed(&store, crate::now_ms()).await?)
    };
    let phone = (!opts.quiet).then_some(seed::SUPERVISOR_PHONE);
    let login = demo_admin(&store, &dir, phone).await?;
    store.close().await;
    let mut children = start_children(&dir, &db, &secret, opts.log_format)?;
    print_banner(&dir, &login, opts.quiet);
    let sim = match &seeded {
        Some(seeded) => match start_sim(&dir, seeded, &mut children).await {
            Ok(sim) => Some(sim),
            Err(e) => {
                stop_all(&mut children).await;
                return Err(e);
            }
        },
        None => None,
    };
    let stopped_by = wait_for_stop(&mut children).await;
    if let Some(sim) = sim {
        println!("traffic: {}", sim.stop().await);
    }
    stop_all(&mut children).await;
    println!("demo stopped");
    stopped_by
}

/// The demo cluster's secret (`[http] secret` of every node): 32 random bytes as 64 hex
/// digits, made on the first run and kept in `DIR/cluster-secret` (owner-only), so nodes
/// restarted with the demo keep recognising each other's requests and nonces.
fn cluster_secret(dir: &Path) -> anyhow::Result<String> {
    let file = dir.join("cluster-secret");
    if let Ok(text) = std::fs::read_to_string(&file) {
        let kept = text.trim();
        if callfleet_sign::check_strength(kept).is_ok() {
            return Ok(kept.to_owned());
        }
    }
    let secret = callfleet_web::auth::random_hex(32);
    write_private(&file, &secret)?;
    Ok(secret)
}

/// Starts lockd, then the three nodes, each logging to `DIR/<name>.log`. The children get a
/// process group of their own, so a Ctrl-C in the terminal reaches only the demo, which stops
/// the traffic first and then each child in order.
fn start_children(
    dir: &Path,
    db: &Path,
    secret: &str,
    log_format: LogFormat,
) -> anyhow::Result<Vec<Proc>> {
    let exe = std::env::current_exe().context("find the callfleet binary")?;
    let spawn = |name: &str, args: Vec<String>| -> anyhow::Result<Proc> {
        let log = std::fs::File::create(dir.join(format!("{name}.log")))
            .with_context(|| format!("create the log of {name}"))?;
        let child = Command::new(&exe)
            .args(["--log-format", log_format.as_str()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {name}"))?;
        Ok(Proc {
            name: name.to_owned(),
            child,
        })
    };
    // One lock service for the three nodes (in memory: nothing else to run on one host), so
    // an agent's lease is the same whichever node asks.
    let secret_file = path_arg(&dir.join("cluster-secret"))?;
    let lockd = [
        "lockd",
        "--listen",
        LOCKD,
        "--backend",
        "memory",
        "--secret-file",
    ];
    let mut lockd: Vec<String> = lockd.map(str::to_owned).to_vec();
    lockd.push(secret_file);
    let mut children = vec![spawn("lockd", lockd)?];
    for (name, role, ip) in NODES {
        let cfg = write_config(dir, name, role, ip, db, secret)?;
        let args = vec!["node".to_owned(), "--config".to_owned(), path_arg(&cfg)?];
        children.push(spawn(name, args)?);
    }
    Ok(children)
}

fn path_arg(path: &Path) -> anyhow::Result<String> {
    path.to_str()
        .map(str::to_owned)
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// A node's config. `[lb] refuse_cpu = 1000`: the three nodes share one host's CPU, so
/// refusing calls on CPU would make them all refuse at once (a busy laptop would refuse the
/// demo's calls).
fn write_config(
    dir: &Path,
    name: &str,
    role: &str,
    ip: &str,
    db: &Path,
    secret: &str,
) -> anyhow::Result<PathBuf> {
    let voicemail = dir.join("voicemail");
    let text = format!(
        "# written by `callfleet demo` (rewritten on every start)\n\
         [node]\nname = \"{name}\"\nrole = \"{role}\"\ncapacity = {CAPACITY}\n\
         [sip]\nlisten = \"{ip}:5060\"\nrealm = \"{realm}\"\n\
         [http]\nlisten = \"{ip}:8080\"\nsecret = \"{secret}\"\n\
         operator_token_file = \"{token}\"\n\
         [database]\nurl = \"sqlite://{db}\"\n[carriers]\nallow = [\"127.0.0.0/8\"]\n\
         [heartbeat]\ninterval = \"1s\"\n[lb]\nrefuse_cpu = 1000.0\n\
         [records]\nspool_dir = \"{spool}\"\n\
         [media]\nvoicemail_dir = \"{voicemail}\"\n\
         [lock]\nurls = [\"http://{LOCKD}\"]\n",
        realm = seed::REALM,
        token = dir.join(format!("{name}.operator-token")).display(),
        db = db.display(),
        voicemail = voicemail.display(),
        spool = dir.join("spool").display(),
    );
    let path = dir.join(format!("{name}.toml"));
    write_private(&path, &text)?;
    Ok(path)
}

/// Waits for every node's `/healthz`, then starts the simulated traffic.
async fn start_sim(
    dir: &Path,
    seeded: &seed::Seeded,
    children: &mut [Proc],
) -> anyhow::Result<Sim> {
    let mut nodes = Vec::new();
    for (name, role, ip) in NODES {
        let sip: SocketAddr = format!("{ip}:5060").parse().context("node SIP address")?;
        nodes.push(NodeAddr {
            name: name.to_owned(),
            sip,
            main: role == "main",
        });
    }
    wait_healthy(children).await?;
    for ext in &seeded.not_logged_in {
        // Held by a call of an earlier run: the node that held it freed it when it started.
        eprintln!("agent {ext} was still on a call from an earlier run; it is free now");
    }
    let seed: u64 = rand::random();
    let sim = Sim::start(&dir.join("traffic.log"), seeded, &nodes, seed).await?;
    println!(
        "traffic:       simulated callers, agents' phones and the supervisor's phone (log: {})",
        dir.join("traffic.log").display()
    );
    Ok(sim)
}

async fn wait_healthy(children: &mut [Proc]) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .context("build HTTP client")?;
    let until = tokio::time::Instant::now() + START_LIMIT;
    for (name, _, ip) in NODES {
        let url = format!("http://{ip}:8080/healthz");
        loop {
            if let Some((who, status)) = exited(children) {
                bail!("{who} exited at start ({status}); see its log");
            }
            let ok = client
                .get(&url)
                .send()
                .await
                .map(|r| r.status().is_success());
            if matches!(ok, Ok(true)) {
                break;
            }
            if tokio::time::Instant::now() > until {
                bail!("node {name} did not answer {url} within {START_LIMIT:?}; see its log");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// The panel login of the demo: user `admin`, with a random password made on the first run and
/// kept in `DIR/admin-password` (readable by its owner only). With `phone`, the admin's own
/// phone (the one listen-in dials) is set to it unless the admin chose one.
async fn demo_admin(
    store: &callfleet_store::Store,
    dir: &Path,
    phone: Option<&str>,
) -> anyhow::Result<String> {
    let file = dir.join("admin-password");
    if let Some(mut user) = store.user("admin").await.context("read the demo admin")? {
        if user.device.is_none() && phone.is_some() {
            user.device = phone.map(str::to_owned);
            store
                .upsert_user(&user)
                .await
                .context("give the demo admin a phone")?;
        }
        if let Ok(password) = std::fs::read_to_string(&file) {
            return Ok(format!("admin / {}", password.trim()));
        }
        return Ok("admin (password as set earlier)".to_owned());
    }
    let password = callfleet_web::auth::random_hex(8);
    let password_hash =
        callfleet_web::auth::hash_password(&password).context("hash the demo admin password")?;
    store
        .upsert_user(&callfleet_store::User {
            name: "admin".to_owned(),
            password_hash,
            role: callfleet_store::UserRole::Admin,
            device: phone.map(str::to_owned),
            created_at_ms: crate::now_ms(),
        })
        .await
        .context("create the demo admin")?;
    write_private(&file, &password)?;
    Ok(format!("admin / {password}"))
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(path)
        .with_context(|| format!("write {}", path.display()))?;
    writeln!(f, "{text}").with_context(|| format!("write {}", path.display()))
}

fn print_banner(dir: &Path, login: &str, quiet: bool) {
    println!(
        "callfleet demo cluster is starting (logs and configs in {})",
        dir.display()
    );
    for (name, role, ip) in NODES {
        println!("  {name:8} {role:5}  sip:{ip}:5060 (udp+tcp)  http://{ip}:8080/");
    }
    println!("  lockd    (memory)  http://{LOCKD}/healthz");
    println!("panel:         http://127.0.0.11:8080/  (log in as {login})");
    println!("cluster view:  curl http://127.0.0.11:8080/api/v1/nodes");
    println!("live calls:    curl http://127.0.0.12:8080/api/v1/calls");
    println!("metrics:       curl http://127.0.0.11:8080/metrics");
    if !quiet {
        println!(
            "call centre:   queues sales and support; agents 1001-1004 on simulated phones, 1005 \
             (PIN 5555) free for your softphone; Listen in the panel rings the demo's phone {}",
            seed::SUPERVISOR_PHONE
        );
    }
    println!("place calls through main-a with SIPp (from a checkout), following the 302s like a carrier:");
    println!(
        "  sipp -sf tests/peers/sipp/carrier-302.xml -s sales -d 10000 -r 2 -m 20 -i 127.0.0.1 \
         127.0.0.11:5060"
    );
    println!("Ctrl-C stops the cluster.");
}

/// The first child found exited: (name, status).
fn exited(children: &mut [Proc]) -> Option<(String, String)> {
    children.iter_mut().find_map(|p| match p.child.try_wait() {
        Ok(Some(status)) => Some((p.name.clone(), status.to_string())),
        _ => None,
    })
}

/// Waits for Ctrl-C, SIGTERM or a child's exit; an exited child is an error.
async fn wait_for_stop(children: &mut [Proc]) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt()).context("listen for Ctrl-C")?;
    let mut term = signal(SignalKind::terminate()).context("listen for SIGTERM")?;
    let mut poll = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = int.recv() => return Ok(()),
            _ = term.recv() => return Ok(()),
            _ = poll.tick() => {
                if let Some((name, status)) = exited(children) {
                    bail!("{name} exited ({status}); see its log; the demo stopped");
                }
            }
        }
    }
}

/// Stops the nodes (SIGINT: each hangs up its calls at once, writes its records and exits;
/// SIGTERM would drain, waiting for the calls to end), then lockd; a child that does not stop
/// within 10 s is killed.
async fn stop_all(children: &mut [Proc]) {
    let (lockd, nodes): (Vec<&mut Proc>, Vec<&mut Proc>) =
        children.iter_mut().partition(|p| p.name == "lockd");
    for group in [nodes, lockd] {
        for p in &group {
            if let Some(pid) = p.child.id() {
                let sent = std::process::Command::new("kill")
                    .arg("-INT")
                    .arg(pid.to_string())
                    .status();
                if !matches!(sent, Ok(s) if s.success()) {
                    eprintln!("could not signal {} (pid {pid})", p.name);
                }
            }
        }
        for p in group {
            if tokio::time::timeout(Duration::from_secs(10), p.child.wait())
                .await
                .is_err()
            {
                eprintln!("{} did not stop in time; killing it", p.name);
                if let Err(e) = p.child.kill().await {
                    eprintln!("could not kill {}: {e}", p.name);
                }
            }
        }
    }
}
