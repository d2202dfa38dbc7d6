//! `install.sh` as an operator runs it on a fresh Debian host (as root, as CI does), with
//! `--no-build` on the binary cargo built and `--prefix` so the trial install lives in a folder
//! of its own instead of `/`: it installs the binary, the system user, a config with a random
//! cluster secret, music on hold, prompts, the schema and the unit file; `callfleet doctor`
//! passes on the installed config; the installed node, started as the unit starts it (as the
//! `callfleet` user), answers a SIPp call and stops on SIGTERM; a second run keeps the config
//! and speaks the site's prompts (`etc/callfleet/prompts.txt`).
//! Addresses: 127.0.18.1 (the node), 127.0.18.2 (SIPp).

mod support;

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::{http_get, require, sipp, wait_until};

const NODE_IP: &str = "127.0.18.1";
const SIPP_IP: &str = "127.0.18.2";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn install(prefix: &Path) -> Output {
    Command::new("bash")
        .arg(repo().join("install.sh"))
        .arg("--prefix")
        .arg(prefix)
        .args(["--no-build", "--binary", env!("CARGO_BIN_EXE_callfleet")])
        .args(["--name", "installed", "--sip", NODE_IP, "--http", NODE_IP])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .expect("run install.sh")
}

/// A folder every user can enter (the node runs as `callfleet`), emptied first and removed at
/// the end (outside the checkout, whose parents may be closed to other users).
struct Prefix(PathBuf);

impl Prefix {
    fn new() -> Prefix {
        let dir = std::env::temp_dir().join(format!("callfleet-install-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the prefix");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .expect("open the prefix to the callfleet user");
        Prefix(dir)
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn install_sh_installs_a_node_that_passes_doctor_answers_a_call_and_stops() {
    let uid = Command::new("id").arg("-u").output().expect("run id");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "install.sh needs root: run the tests as root (sudo bash scripts/test.sh)"
    );
    for (tool, package) in [
        ("sox", "sox"),
        ("espeak-ng", "espeak-ng"),
        ("sqlite3", "sqlite3"),
        ("runuser", "util-linux"),
    ] {
        require(tool, package);
    }
    let prefix = Prefix::new();
    let root = &prefix.0;
    let out = install(root);
    assert!(out.status.success(), "install.sh failed:\n{}", text(&out));
    assert!(
        text(&out).contains("callfleet is installed"),
        "{}",
        text(&out)
    );

    let bin = root.join("usr/local/bin/callfleet");
    let conf = root.join("etc/callfleet/callfleet.toml");
    assert!(bin.is_file(), "no {}", bin.display());
    let meta = std::fs::metadata(&conf).expect("the config is written");
    assert_eq!(meta.mode() & 0o777, 0o640, "config mode");
    let config = std::fs::read_to_string(&conf).expect("read the config");
    for want in [
        "name = \"installed\"".to_owned(),
        format!("listen = \"{NODE_IP}:5060\""),
        format!("listen = \"{NODE_IP}:8080\""),
        format!(
            "url = \"sqlite://{}/var/lib/callfleet/cluster.db\"",
            root.display()
        ),
    ] {
        assert!(config.contains(&want), "config lacks {want}:\n{config}");
    }
    let secret = config
        .lines()
        .find_map(|l| l.strip_prefix("secret = \""))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or_else(|| panic!("no [http] secret in the new config:\n{config}"));
    assert!(secret.len() >= 32 && secret != "change-me", "{secret}");
    let moh = std::fs::read_dir(root.join("usr/share/callfleet/moh"))
        .expect("music on hold folder")
        .count();
    assert_eq!(moh, 3, "three tunes");
    assert!(root
        .join("usr/share/callfleet/prompts/all-busy.wav")
        .is_file());
    let unit = std::fs::read_to_string(root.join("etc/systemd/system/callfleet.service"))
        .expect("the unit file");
    assert!(unit.contains(&format!(
        "ExecStart={} node --config {}",
        bin.display(),
        conf.display()
    )));

    // doctor as the service user, as operations.md says.
    let as_service = |args: &[&str]| {
        let mut c = Command::new("runuser");
        c.args(["-u", "callfleet", "--"]).arg(&bin).args(args);
        c
    };
    let conf_arg = conf.to_str().expect("UTF-8 path");
    let doctor = as_service(&["doctor", "--config", conf_arg])
        .output()
        .expect("run doctor");
    assert!(doctor.status.success(), "doctor failed:\n{}", text(&doctor));
    assert!(
        text(&doctor).contains("all checks passed"),
        "{}",
        text(&doctor)
    );

    // The node as the unit starts it (User=callfleet, no wrapper between: SIGTERM reaches the
    // node itself); a call from SIPp hears music on hold.
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "callfleet"])
            .output()
            .expect("run id");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no callfleet user: {}", text(&out)))
    };
    let log = root.join("node.log");
    let mut node = Command::new(&bin)
        .args(["node", "--config", conf_arg])
        // As every test node: CPU alone never refuses calls (a busy test host would read 100 %).
        .env("CALLFLEET_LB_REFUSE_CPU", "1000")
        .uid(id("-u"))
        .gid(id("-g"))
        .current_dir(root.join("var/lib/callfleet"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("node log"))
        .spawn()
        .expect("start the installed node");
    let http = format!("{NODE_IP}:8080").parse().expect("address");
    let up = wait_until(Duration::from_secs(20), || {
        http_get(http, "/healthz").is_some_and(|(c, _)| c == 200)
    });
    let node_log = || std::fs::read_to_string(&log).unwrap_or_default();
    if up.is_none() {
        let _ = node.kill();
        panic!("the installed node did not start:\n{}", node_log());
    }
    let stats = sipp(
        root,
        "installed",
        &[
            "-sn",
            "uac",
            "-s",
            "9000",
            "-d",
            "2000",
            "-m",
            "1",
            "-i",
            SIPP_IP,
            "-timeout",
            "30",
            &format!("{NODE_IP}:5060"),
        ],
    );
    assert_eq!(
        (stats.successful, stats.failed),
        (1, 0),
        "SIPp call to the installed node:\n{}",
        node_log()
    );
    let term = Command::new("kill")
        .arg(node.id().to_string())
        .status()
        .expect("run kill");
    assert!(term.success());
    let stopped = wait_until(Duration::from_secs(20), || {
        matches!(node.try_wait(), Ok(Some(_)))
    });
    if stopped.is_none() {
        let _ = node.kill();
        panic!(
            "the installed node did not stop on SIGTERM:\n{}",
            node_log()
        );
    }
    let status = node.wait().expect("exit status");
    assert!(status.success(), "node exit {status}:\n{}", node_log());

    // Again: the binary is upgraded in place, the config kept as it is; the site's prompts
    // of etc/callfleet/prompts.txt (IVR menus) are spoken, a bad line skipped with a warning.
    std::fs::write(
        root.join("etc/callfleet/prompts.txt"),
        "# name|text\nwelcome|Welcome. For sales press 1.\n../evil|No.\n",
    )
    .expect("write prompts.txt");
    let again = install(root);
    assert!(again.status.success(), "second run:\n{}", text(&again));
    assert!(
        text(&again).contains("exists: kept as it is"),
        "{}",
        text(&again)
    );
    assert_eq!(
        std::fs::read_to_string(&conf).expect("read the config"),
        config
    );
    let prompts = root.join("usr/share/callfleet/prompts");
    let welcome = hound::WavReader::open(prompts.join("welcome.wav")).expect("welcome.wav");
    let spec = welcome.spec();
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (8000, 1, 16),
        "a prompt the node plays"
    );
    assert!(welcome.duration() > 8000 / 2, "spoken text, not silence");
    assert!(
        text(&again).contains("\"../evil\" needs a name"),
        "{}",
        text(&again)
    );
    assert!(!root.join("usr/share/callfleet/evil.wav").exists());
}
