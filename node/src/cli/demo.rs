//! `callfleet demo`: a whole cluster on this host with the embedded default (SQLite, no other
//! server): main nodes on 127.0.0.11 and 127.0.0.12, an extra node on 127.0.0.13, each a child
//! process of this one. Ctrl-C stops them all cleanly.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use tokio::process::{Child, Command};

/// Where the demo's lock service listens.
const LOCKD: &str = "127.0.0.10:7070";

const NODES: [(&str, &str, &str); 3] = [
    ("main-a", "main", "127.0.0.11"),
    ("main-b", "main", "127.0.0.12"),
    ("extra-c", "extra", "127.0.0.13"),
];

/// Runs the demo cluster until Ctrl-C.
pub async fn demo(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolve {}", dir.display()))?;
    let db = dir.join("cluster.db");
    let exe = std::env::current_exe().context("find the callfleet binary")?;
    // Migrate once here: SQLite does not serialise concurrent migrations of three nodes.
    let url = format!("sqlite://{}", db.display());
    let store = callfleet_store::Store::connect(&url)
        .await
        .context("open the demo database")?;
    store.migrate().await.context("migrate the demo database")?;
    let login = demo_admin(&store, &dir).await?;
    store.close().await;
    let mut children: Vec<(String, Child)> = Vec::new();
    // One lock service for the three nodes (in memory: nothing else to run on one host), so
    // an agent's lease is the same whichever node asks.
    let lockd_log = std::fs::File::create(dir.join("lockd.log")).context("create lockd log")?;
    let lockd = Command::new(&exe)
        .args(["lockd", "--listen", LOCKD, "--backend", "memory"])
        .stdout(Stdio::null())
        .stderr(lockd_log)
        .kill_on_drop(true)
        .spawn()
        .context("start lockd")?;
    children.push(("lockd".to_string(), lockd));
    for (name, role, ip) in NODES {
        let cfg = write_config(&dir, name, role, ip, &db)?;
        let log =
            std::fs::File::create(dir.join(format!("{name}.log"))).context("create node log")?;
        let child = Command::new(&exe)
            .args(["node", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start node {name}"))?;
        children.push((name.to_string(), child));
    }
    print_banner(&dir, &login);
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("wait for Ctrl-C")?,
        (name, status) = first_exit(&mut children) => {
            eprintln!("node {name} exited ({status}); see {}/{name}.log; stopping the demo", dir.display());
        }
    }
    stop_all(&mut children).await;
    println!("demo stopped");
    Ok(())
}

fn write_config(
    dir: &Path,
    name: &str,
    role: &str,
    ip: &str,
    db: &Path,
) -> anyhow::Result<PathBuf> {
    let text = format!(
        "# written by `callfleet demo`\n[node]\nname = \"{name}\"\nrole = \"{role}\"\ncapacity = 100\n\
         [sip]\nlisten = \"{ip}:5060\"\n[http]\nlisten = \"{ip}:8080\"\n\
         [database]\nurl = \"sqlite://{}\"\n[carriers]\nallow = [\"127.0.0.0/8\"]\n\
         [lock]\nurls = [\"http://{LOCKD}\"]\n",
        db.display()
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}

/// The panel login of the demo: user `admin`, with a random password made on the first run and
/// kept in `DIR/admin-password` (readable by its owner only).
async fn demo_admin(store: &callfleet_store::Store, dir: &Path) -> anyhow::Result<String> {
    let file = dir.join("admin-password");
    let existing = store.user("admin").await.context("read the demo admin")?;
    if existing.is_some() {
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
            device: None,
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

fn print_banner(dir: &Path, login: &str) {
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
    println!("place 20 calls of 5 s through main-a (SIPp follows the 302s only via a carrier; see README):");
    println!("  sipp -sn uac -s 100 -d 5000 -r 5 -m 20 -i 127.0.0.1 127.0.0.11:5060");
    println!("Ctrl-C stops the cluster.");
}

async fn first_exit(children: &mut [(String, Child)]) -> (String, String) {
    loop {
        for (name, child) in children.iter_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                return (name.clone(), status.to_string());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn stop_all(children: &mut [(String, Child)]) {
    for (_, child) in children.iter() {
        if let Some(pid) = child.id() {
            // SIGINT: each node hangs up its calls at once, writes its records and exits
            // (SIGTERM would drain, waiting for the calls to end).
            let _ = std::process::Command::new("kill")
                .arg("-INT")
                .arg(pid.to_string())
                .status();
        }
    }
    for (name, child) in children.iter_mut() {
        match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                eprintln!("node {name} did not stop in time; killing it");
                let _ = child.kill().await;
            }
        }
    }
}
