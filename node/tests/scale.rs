//! Scale-out with real peers: two main nodes of capacity 10 on PostgreSQL behind the Kamailio
//! carrier, both with `[scale]` (threshold 0.5 for 2 s) and a lockd. SIPp keeps about 16 calls
//! up; exactly one main node takes the scale lease and runs the hook, which restores a
//! snapshot of main-a as a new extra node; calls then spread to it.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::lockd::Lockd;
use support::{
    carrier_calls, serial, wait_alive, wait_until, workdir, Burst, Carrier, NodeProc, NodeSpec, Pg,
};

/// Kills (SIGKILL) the node the hook's restore started under `root`, when dropped.
struct Restored {
    root: PathBuf,
}

impl Drop for Restored {
    fn drop(&mut self) {
        let pid = std::fs::read_to_string(self.root.join("var/lib/callfleet/callfleet.pid"));
        if let Some(pid) = pid.ok().and_then(|t| t.trim().parse::<u32>().ok()) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

/// The `[lock]` and `[scale]` sections of both main nodes: the hook notes who ran it, then
/// restores `snap` as extra-n on 127.0.32.21 under `root`.
fn sections(dir: &Path, lockd: &Lockd, snap: &Path, root: &Path) -> String {
    let command = format!(
        "echo \"$CALLFLEET_HOOK_NODE $CALLFLEET_HOOK_UTILISATION $CALLFLEET_HOOK_NODES\" >> {runs}; \
         {bin} snapshot restore {snap} --name extra-n --role extra --sip 127.0.32.21 --root {root}",
        runs = dir.join("hook-runs").display(),
        bin = env!("CARGO_BIN_EXE_callfleet"),
        snap = snap.display(),
        root = root.display(),
    );
    format!(
        "[lock]\nurls = [\"{}\"]\n[scale]\nthreshold = 0.5\nduration = \"2s\"\ncooldown = \"10m\"\n\
         command = '''{command}'''\n",
        lockd.url
    )
}

#[test]
fn a_busy_cluster_runs_the_scale_hook_once_and_calls_spread_to_the_new_node() {
    let _serial = serial();
    let dir = workdir("scale-out");
    let pg = Pg::fresh("scale_out");
    let lockd = Lockd::start(&dir, "127.0.32.5:7070", "memory");
    let snap = dir.join("cluster.cfs");
    let root = dir.join("new-host");
    let _restored = Restored { root: root.clone() };
    let extra = sections(&dir, &lockd, &snap, &root);
    let mut mains: Vec<NodeProc> = [("main-a", "127.0.32.11"), ("main-b", "127.0.32.12")]
        .into_iter()
        .map(|(name, ip)| {
            let spec = NodeSpec {
                name,
                role: "main",
                ip,
                db: &pg.url,
                capacity: 10,
                extra: &extra,
            };
            NodeProc::configure(&dir, spec)
        })
        .collect();
    let out = Command::new(env!("CARGO_BIN_EXE_callfleet"))
        .args(["snapshot", "create", "--config"])
        .arg(&mains[0].config)
        .arg("--out")
        .arg(&snap)
        .output()
        .expect("run snapshot create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for node in &mut mains {
        node.spawn();
    }
    wait_alive(&mains[0], 2);
    let carrier = Carrier::start(&dir, "127.0.32.1:5070", &[mains[0].sip, mains[1].sip]);

    // 2 calls a second of 8 s each: about 16 calls up on 20 places, for 40 s.
    let load = carrier_calls(
        &dir,
        "busy",
        carrier.addr,
        "100",
        ("127.0.32.100", 5061),
        Burst {
            calls: 80,
            every_ms: 500,
            hold_ms: 8000,
        },
    );
    assert_eq!((load.successful, load.failed), (80, 0), "{load:?}");

    let runs = std::fs::read_to_string(dir.join("hook-runs")).unwrap_or_default();
    let lines: Vec<&str> = runs.lines().collect();
    assert_eq!(lines.len(), 1, "the hook ran exactly once: {runs:?}");
    let actor = lines[0].split(' ').next().unwrap_or_default().to_owned();
    assert!(actor == "main-a" || actor == "main-b", "{runs}");
    let acted: Vec<usize> = mains
        .iter()
        .map(|n| n.log_text().matches("scaling out").count())
        .collect();
    assert_eq!(
        acted.iter().sum::<usize>(),
        1,
        "one main node acted: {acted:?}"
    );

    let joined = wait_until(Duration::from_secs(5), || {
        mains[0].nodes().as_array().is_some_and(|a| {
            a.iter()
                .any(|n| n["name"] == "extra-n" && n["alive"] == true)
        })
    });
    assert!(joined.is_some(), "extra-n joined: {}", mains[0].nodes());
    let rows = pg
        .query("SELECT count(*) FROM cdrs WHERE node = 'extra-n' AND redirected_from IS NOT NULL");
    let spread: u32 = rows.first().and_then(|r| r.parse().ok()).unwrap_or(0);
    println!(
        "scale-out: the hook ran once, on {actor} ({}); {spread} of the 80 calls went to extra-n",
        lines[0]
    );
    assert!(spread > 0, "calls spread to the new node");
}
