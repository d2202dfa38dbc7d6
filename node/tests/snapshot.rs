//! Snapshots with real peers: a snapshot of main-a (a dedicated redirector on PostgreSQL,
//! behind the Kamailio carrier) restored into an empty folder as an extra node on a new
//! loopback address takes carrier calls through main-a's 302s, and the time from the start
//! of the restore to the first such call is printed. A tampered or truncated snapshot is
//! refused with nothing installed.

mod support;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use callfleet::now_ms;

use support::{
    carrier_calls, serial, wait_alive, wait_until, workdir, Burst, Carrier, NodeProc, NodeSpec, Pg,
    SECRET,
};

/// Writes `count` one-second 8 kHz mono 16-bit WAV files named `stem-N.wav` in `dir`.
fn wavs(dir: &Path, stem: &str, count: usize) {
    std::fs::create_dir_all(dir).expect("mkdir sounds");
    for n in 0..count {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let path = dir.join(format!("{stem}-{n}.wav"));
        let mut w = hound::WavWriter::create(&path, spec).expect("create wav");
        for i in 0..8000i32 {
            let v = ((i * (n as i32 + 3) * 97) % 8000 - 4000) as i16;
            w.write_sample(v).expect("write sample");
        }
        w.finalize().expect("finish wav");
    }
}

/// Runs `callfleet ARGS`, returning its output.
fn callfleet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callfleet"))
        .args(args)
        .output()
        .expect("run callfleet")
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Kills (SIGKILL) the node a restore started under `root`, when dropped.
struct Restored {
    root: PathBuf,
}

impl Restored {
    fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.root.join("var/lib/callfleet/callfleet.pid"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
    }
}

impl Drop for Restored {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

/// main-a's config, made a dedicated redirector, with a prompts folder of its own.
fn redirector(dir: &Path, pg: &Pg, ip: &str) -> NodeProc {
    wavs(&dir.join("moh"), "tune", 2);
    wavs(&dir.join("moh").join("calm"), "slow", 1);
    wavs(&dir.join("prompts"), "beep", 1);
    let extra = format!("prompts_dir = \"{}\"\n", dir.join("prompts").display());
    let mut node = NodeProc::configure(
        dir,
        NodeSpec {
            name: "main-a",
            role: "main",
            ip,
            db: &pg.url,
            capacity: 100,
            extra: &extra,
        },
    );
    let config = std::fs::read_to_string(&node.config).expect("read config");
    let config = config.replacen("[lb]\n", "[lb]\nprefer_self = false\n", 1);
    std::fs::write(&node.config, config).expect("write config");
    node.spawn();
    node
}

#[test]
fn a_node_restored_from_a_snapshot_takes_carrier_calls_through_a_302() {
    let _serial = serial();
    let dir = workdir("snapshot-restore");
    let pg = Pg::fresh("snapshot_restore");
    let main_a = redirector(&dir, &pg, "127.0.30.11");
    wait_alive(&main_a, 1);
    let carrier = Carrier::start(&dir, "127.0.30.1:5070", &[main_a.sip]);
    let before = carrier_calls(
        &dir,
        "before",
        carrier.addr,
        "100",
        ("127.0.30.100", 5061),
        Burst {
            calls: 3,
            every_ms: 200,
            hold_ms: 300,
        },
    );
    assert_eq!(
        (before.successful, before.failed),
        (3, 0),
        "main-a alone: {before:?}"
    );

    let snap = dir.join("cluster.cfs");
    let snap_arg = snap.to_str().expect("utf-8 path");
    let config_arg = main_a.config.to_str().expect("utf-8 path");
    let out = callfleet(&[
        "snapshot", "create", "--config", config_arg, "--out", snap_arg,
    ]);
    assert!(out.status.success(), "{}", text(&out));

    // Steady carrier calls all along: 5 a second, 1 s each, for 24 s.
    let (cdir, caddr) = (dir.clone(), carrier.addr);
    let load = std::thread::spawn(move || {
        carrier_calls(
            &cdir,
            "during",
            caddr,
            "100",
            ("127.0.30.101", 5062),
            Burst {
                calls: 120,
                every_ms: 200,
                hold_ms: 1000,
            },
        )
    });
    std::thread::sleep(Duration::from_secs(2));
    let root = dir.join("fresh-host");
    let restored = Restored { root: root.clone() };
    let t0_ms = now_ms();
    let started = Instant::now();
    let root_arg = root.to_str().expect("utf-8 path");
    let out = callfleet(&[
        "snapshot",
        "restore",
        snap_arg,
        "--name",
        "extra-s",
        "--role",
        "extra",
        "--sip",
        "127.0.30.21",
        "--root",
        root_arg,
    ]);
    let restore_took = started.elapsed();
    assert!(out.status.success(), "{}", text(&out));
    assert!(restored.pid().is_some(), "pid file written");
    wait_alive(&main_a, 2);
    let stats = load.join().expect("sipp thread");
    assert_eq!(
        stats.failed, 0,
        "no call failed while the node joined: {stats:?}"
    );
    assert_eq!(stats.successful, 120, "{stats:?}");

    let first = wait_until(Duration::from_secs(10), || {
        !pg.query(
            "SELECT 1 FROM cdrs WHERE node = 'extra-s' AND redirected_from = 'main-a' LIMIT 1",
        )
        .is_empty()
    });
    assert!(first.is_some(), "no call reached extra-s through a 302");
    let rows = pg.query(
        "SELECT min(answered_at_ms), count(*) FROM cdrs \
         WHERE node = 'extra-s' AND redirected_from = 'main-a'",
    );
    let (first_ms, count) = rows
        .first()
        .and_then(|r| r.split_once('|'))
        .map(|(a, b)| {
            (
                a.parse::<i64>().expect("ms"),
                b.parse::<u32>().expect("count"),
            )
        })
        .expect("a row");
    println!(
        "snapshot restore: restore command {:.1} s, first carrier call answered on the new \
         node via a 302 {:.1} s after the restore began; {count} of the 120 calls went there",
        restore_took.as_secs_f64(),
        (first_ms - t0_ms) as f64 / 1000.0
    );
    assert!(count > 0);
    // Installed as a fresh host would have it, with main-a's sounds.
    for file in [
        "usr/local/bin/callfleet",
        "etc/callfleet/callfleet.toml",
        "usr/share/callfleet/moh/tune-0.wav",
        "usr/share/callfleet/moh/tune-1.wav",
        "usr/share/callfleet/moh/calm/slow-0.wav",
        "usr/share/callfleet/prompts/beep-0.wav",
        "var/lib/callfleet/callfleet.log",
    ] {
        assert!(root.join(file).is_file(), "{file} installed");
    }
    let log = std::fs::read_to_string(root.join("var/lib/callfleet/callfleet.log"))
        .expect("restored node's log");
    assert!(
        log.contains("music on hold loaded count=2 classes=[\"calm\"]")
            && !log.contains("built-in tune"),
        "{log}"
    );
    let restored_config =
        std::fs::read_to_string(root.join("etc/callfleet/callfleet.toml")).expect("config");
    assert!(restored_config.contains(&pg.url), "{restored_config}");
    assert!(!restored_config.contains("main-a"), "{restored_config}");
    // The name of a live node is refused, before anything is installed.
    let other = dir.join("second-host");
    let other_arg = other.to_str().expect("utf-8 path");
    let out = callfleet(&[
        "snapshot",
        "restore",
        snap_arg,
        "--name",
        "main-a",
        "--role",
        "extra",
        "--sip",
        "127.0.30.22",
        "--root",
        other_arg,
    ]);
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(
        all.contains("a node named main-a is alive in the cluster"),
        "{all}"
    );
    assert!(!other.exists(), "nothing installed: {all}");
}

/// A node config needing no database for `snapshot create`.
fn standalone_config(dir: &Path) -> PathBuf {
    wavs(&dir.join("moh"), "tune", 1);
    let config = dir.join("source.toml");
    let text = format!(
        "[node]\nname = \"main-a\"\n[sip]\nlisten = \"127.0.30.41:5060\"\n[http]\n\
         listen = \"127.0.30.41:8080\"\nsecret = \"{SECRET}\"\n[database]\nurl = \"sqlite://{}/db/cluster.db\"\n\
         [media]\nmoh_dir = \"{}\"\nprompts_dir = \"{}\"\n",
        dir.display(),
        dir.join("moh").display(),
        dir.join("no-prompts").display()
    );
    std::fs::write(&config, text).expect("write config");
    config
}

fn restore_no_start(snap: &Path, root: &Path) -> Output {
    callfleet(&[
        "snapshot",
        "restore",
        snap.to_str().expect("utf-8 path"),
        "--name",
        "extra-t",
        "--role",
        "extra",
        "--sip",
        "127.0.30.42",
        "--no-start",
        "--root",
        root.to_str().expect("utf-8 path"),
    ])
}

/// The offset of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("needle present")
}

#[test]
fn tampered_and_truncated_snapshots_are_refused_with_nothing_installed() {
    let dir = workdir("snapshot-refused");
    let config = standalone_config(&dir);
    let snap = dir.join("good.cfs");
    let out = callfleet(&[
        "snapshot",
        "create",
        "--config",
        config.to_str().expect("utf-8 path"),
        "--out",
        snap.to_str().expect("utf-8 path"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let good = std::fs::read(&snap).expect("read snapshot");

    // One byte flipped inside the binary entry, the archive otherwise well-formed.
    let mut tar = zstd::decode_all(good.as_slice()).expect("decompress");
    let elf = find(&tar, b"\x7fELF");
    tar[elf + 4096] ^= 0x20;
    let mut encoder = zstd::Encoder::new(Vec::new(), 3).expect("encoder");
    encoder.include_checksum(true).expect("checksum");
    encoder.write_all(&tar).expect("compress");
    let tampered = dir.join("tampered.cfs");
    std::fs::write(&tampered, encoder.finish().expect("finish")).expect("write tampered");
    let truncated = dir.join("truncated.cfs");
    std::fs::write(&truncated, &good[..good.len() / 2]).expect("write truncated");

    for (file, words) in [
        (&tampered, "bin/callfleet does not match its checksum"),
        (&truncated, "truncated"),
    ] {
        let root = dir.join(format!(
            "root-{}",
            file.file_stem().and_then(|s| s.to_str()).unwrap_or("x")
        ));
        let out = restore_no_start(file, &root);
        let all = text(&out);
        assert!(!out.status.success(), "{all}");
        assert!(all.contains("refused, nothing was installed"), "{all}");
        assert!(all.contains(words), "{all}");
        assert!(
            !root.exists(),
            "nothing created under {}: {all}",
            root.display()
        );
    }

    // The good one installs, the same binary byte for byte.
    let root = dir.join("root-good");
    let out = restore_no_start(&snap, &root);
    assert!(out.status.success(), "{}", text(&out));
    let installed = std::fs::read(root.join("usr/local/bin/callfleet")).expect("installed");
    let original = std::fs::read(env!("CARGO_BIN_EXE_callfleet")).expect("original");
    assert!(
        installed == original,
        "the installed binary is the one that made the snapshot"
    );
    // Restoring again over it is refused without --force, and allowed with it.
    let out = restore_no_start(&snap, &root);
    assert!(
        !out.status.success() && text(&out).contains("already installed"),
        "{}",
        text(&out)
    );
    let mut forced = Command::new(env!("CARGO_BIN_EXE_callfleet"));
    forced
        .args(["snapshot", "restore"])
        .arg(&snap)
        .args(["--name", "extra-t", "--role", "extra", "--sip"]);
    forced
        .args(["127.0.30.42", "--no-start", "--force", "--root"])
        .arg(&root);
    let out = forced.output().expect("run callfleet");
    assert!(out.status.success(), "{}", text(&out));
}
