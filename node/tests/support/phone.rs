//! Phones for tests: `callfleet device add` and a baresip phone from `peers/baresip/phone.sh`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{require, shared, wait_until, NodeProc};

/// Adds a phone (device) with `callfleet device add`, the password on the command line or stdin.
pub fn device_add(node: &NodeProc, ext: &str, password: &str, on_stdin: bool) {
    use std::io::Write as _;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_callfleet"));
    cmd.args(["device", "add", "--config"])
        .arg(&node.config)
        .args(["--ext", ext]);
    if !on_stdin {
        cmd.args(["--password", password]);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run callfleet device add");
    if let Some(mut stdin) = child.stdin.take() {
        writeln!(stdin, "{password}").expect("write the password");
    }
    let out = child.wait_with_output().expect("device add finishes");
    assert!(
        out.status.success(),
        "device add failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("device {ext} can register")));
}

/// A baresip phone from `shared/peers/baresip/phone.sh`, stopped on drop.
pub struct Phone {
    pub dir: PathBuf,
    pid: u32,
}

impl Phone {
    pub fn start(
        dir: &Path,
        addr: &str,
        user: &str,
        password: &str,
        registrar: &NodeProc,
    ) -> Phone {
        require("baresip", "baresip");
        let dir = dir.join(format!("phone-{addr}"));
        let out = Command::new("bash")
            .arg(shared().join("peers/baresip/phone.sh"))
            .args(["--addr", addr, "--user", user, "--password", password])
            .args(["--registrar", &registrar.sip.to_string(), "--dir"])
            .arg(&dir)
            .output()
            .expect("run phone.sh");
        assert!(
            out.status.success(),
            "phone.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pid = String::from_utf8_lossy(&out.stdout)
            .lines()
            .rev()
            .find_map(|l| l.trim().parse().ok())
            .expect("phone pid");
        Phone { dir, pid }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("phone.log")).unwrap_or_default()
    }
}

impl Drop for Phone {
    /// SIGTERM (baresip then unregisters, which may wait on a node already gone), and SIGKILL
    /// if it is still there after 2 s.
    fn drop(&mut self) {
        let pid = self.pid.to_string();
        let signal = |sig: &str| {
            Command::new("kill")
                .args([sig, &pid])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        signal("-TERM");
        if wait_until(Duration::from_secs(2), || !signal("-0")).is_none() {
            signal("-KILL");
        }
    }
}
