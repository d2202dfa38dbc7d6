//! Phones for tests: `callfleet device add` and a baresip phone from `peers/baresip/phone.sh`,
//! optionally driven through baresip's `ctrl_tcp` (JSON commands in netstrings).

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{peers, require, wait_until, NodeProc};

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

/// A baresip phone from `tests/peers/baresip/phone.sh`, stopped on drop.
pub struct Phone {
    pub dir: PathBuf,
    /// The phone's IP address (it listens on port 5060 there).
    pub addr: String,
    /// baresip's `ctrl_tcp` address, when started with [`Phone::start_with_ctrl`].
    ctrl: Option<SocketAddr>,
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
        Phone::launch(dir, addr, user, password, registrar, None)
    }

    /// A phone that also takes commands (dial, hang up) on `addr:ctrl_port` (see [`Phone::command`]).
    pub fn start_with_ctrl(
        dir: &Path,
        addr: &str,
        user: &str,
        password: &str,
        registrar: &NodeProc,
        ctrl_port: u16,
    ) -> Phone {
        Phone::launch(dir, addr, user, password, registrar, Some(ctrl_port))
    }

    /// A phone that rings but does not answer by itself (`answermode=manual`).
    pub fn start_ringing_only(
        dir: &Path,
        addr: &str,
        user: &str,
        password: &str,
        registrar: &NodeProc,
    ) -> Phone {
        Phone::launch_with(dir, addr, user, password, registrar, None, "manual")
    }

    /// A phone that rings without answering by itself and takes commands on
    /// `addr:ctrl_port`: the test answers with [`Phone::accept`] when it chooses, so the
    /// ringing state lasts as long as the test needs to see it.
    pub fn start_manual_with_ctrl(
        dir: &Path,
        addr: &str,
        user: &str,
        password: &str,
        registrar: &NodeProc,
        ctrl_port: u16,
    ) -> Phone {
        Phone::launch_with(
            dir,
            addr,
            user,
            password,
            registrar,
            Some(ctrl_port),
            "manual",
        )
    }

    fn launch(
        dir: &Path,
        addr: &str,
        user: &str,
        password: &str,
        registrar: &NodeProc,
        ctrl_port: Option<u16>,
    ) -> Phone {
        Phone::launch_with(dir, addr, user, password, registrar, ctrl_port, "auto")
    }

    /// A phone with a control port that registers with `registrar` (a node this test did not
    /// start itself, e.g. one of `callfleet demo`'s).
    pub fn start_with_ctrl_at(
        dir: &Path,
        addr: &str,
        user: &str,
        password: &str,
        registrar: SocketAddr,
        ctrl_port: u16,
    ) -> Phone {
        Phone::launch_at(
            dir,
            addr,
            user,
            password,
            registrar,
            Some(ctrl_port),
            "auto",
            &[],
        )
    }

    fn launch_with(
        dir: &Path,
        addr: &str,
        user: &str,
        password: &str,
        registrar: &NodeProc,
        ctrl_port: Option<u16>,
        answer: &str,
    ) -> Phone {
        Phone::launch_at(
            dir,
            addr,
            user,
            password,
            registrar.sip,
            ctrl_port,
            answer,
            &[],
        )
    }

    /// A phone that registers over SIP/TLS at `registrar` (the node's TLS address), checking
    /// its certificate against `ca`, and takes commands on `addr:ctrl_port`.
    pub fn start_tls_with_ctrl(
        dir: &Path,
        addr: &str,
        user: &str,
        password: &str,
        registrar: SocketAddr,
        ctrl_port: u16,
        ca: &Path,
    ) -> Phone {
        let ca = ca.to_string_lossy();
        Phone::launch_at(
            dir,
            addr,
            user,
            password,
            registrar,
            Some(ctrl_port),
            "auto",
            &["--transport", "tls", "--cafile", &ca],
        )
    }

    /// A phone that registers over SIP/TCP at `registrar` (`;transport=tcp` in its account
    /// line), so it is reachable only on the connection it opened.
    pub fn start_tcp(
        dir: &Path,
        addr: &str,
        user: &str,
        password: &str,
        registrar: SocketAddr,
    ) -> Phone {
        Phone::launch_at(
            dir,
            addr,
            user,
            password,
            registrar,
            None,
            "auto",
            &["--transport", "tcp"],
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn launch_at(
        dir: &Path,
        addr: &str,
        user: &str,
        password: &str,
        registrar: SocketAddr,
        ctrl_port: Option<u16>,
        answer: &str,
        extra: &[&str],
    ) -> Phone {
        require("baresip", "baresip");
        let dir = dir.join(format!("phone-{addr}"));
        let mut cmd = Command::new("bash");
        cmd.arg(peers().join("baresip/phone.sh"))
            .args(["--addr", addr, "--user", user, "--password", password])
            .args(["--registrar", &registrar.to_string(), "--dir"])
            .arg(&dir);
        if let Some(port) = ctrl_port {
            cmd.args(["--ctrl-port", &port.to_string()]);
        }
        cmd.args(["--answer", answer]).args(extra);
        let out = cmd.output().expect("run phone.sh");
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
        let ctrl = ctrl_port.map(|p| SocketAddr::new(addr.parse().expect("phone IP"), p));
        Phone {
            dir,
            addr: addr.to_string(),
            ctrl,
            pid,
        }
    }

    /// Sends one command to baresip's `ctrl_tcp` (JSON in a netstring, e.g. `dial` with a SIP
    /// URI, `hangup`) and returns its response object (`{"response":true,"ok":..,"data":..}`).
    /// Events baresip sends meanwhile are skipped.
    pub fn command(&self, command: &str, params: &str) -> serde_json::Value {
        use std::io::{Read, Write};
        let addr = self.ctrl.expect("phone started with a ctrl port");
        // The control port opens once baresip has loaded its modules.
        let mut stream = None;
        wait_until(Duration::from_secs(5), || {
            stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok();
            stream.is_some()
        });
        let mut stream = stream.unwrap_or_else(|| panic!("baresip ctrl_tcp at {addr} refuses"));
        let token = format!("t{}", self.pid);
        let msg =
            serde_json::json!({"command": command, "params": params, "token": token}).to_string();
        write!(stream, "{}:{msg},", msg.len()).expect("send a ctrl_tcp command");
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("set a read timeout");
        let until = Instant::now() + Duration::from_secs(5);
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while Instant::now() < until {
            if let Ok(n) = stream.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let found = netstrings(&buf)
                .into_iter()
                .filter_map(|m| serde_json::from_slice::<serde_json::Value>(m).ok())
                .find(|v| v["response"] == true && v["token"] == token.as_str());
            if let Some(v) = found {
                return v;
            }
        }
        panic!(
            "no response from baresip to {command} {params}: {}",
            String::from_utf8_lossy(&buf)
        );
    }

    /// Dials `uri` (e.g. `sip:*11*1001*1234@127.0.0.11:5060`) from this phone's account.
    pub fn dial(&self, uri: &str) {
        let r = self.command("dial", uri);
        assert_eq!(r["ok"], true, "dial {uri}: {r}");
    }

    /// Answers the call that is ringing (baresip's `accept`).
    pub fn accept(&self) {
        let r = self.command("accept", "");
        assert_eq!(r["ok"], true, "accept: {r}\n{}", self.log());
    }

    /// Established calls whose peer URI starts with `sip:{user}@` (from baresip's log): calls
    /// this phone took from (or made to) that user.
    pub fn calls_with(&self, user: &str) -> usize {
        let needle = format!("Call established: sip:{user}@");
        self.log().matches(&needle).count()
    }

    /// Makes the phone play `wav` (8 kHz mono) into the calls it takes from now on, instead of
    /// phone.sh's 600 Hz tone: baresip's file source opens `tone.wav` at each call's start.
    pub fn play(&self, wav: &Path) {
        std::fs::copy(wav, self.dir.join("tone.wav"))
            .unwrap_or_else(|e| panic!("replace {}'s tone with {}: {e}", self.addr, wav.display()));
    }

    /// Recordings of what the phone heard (`rec/dump-*-dec.wav`), oldest first.
    pub fn heard_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.join("rec"))
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.to_string_lossy().ends_with("-dec.wav"));
        files.sort();
        files
    }

    /// Waits until the phone's registration was accepted.
    pub fn wait_registered(&self, limit: Duration) -> bool {
        wait_until(limit, || self.log().contains("200 OK")).is_some()
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

/// The complete netstrings (`LEN:PAYLOAD,`) at the start of `buf`, in order.
fn netstrings(buf: &[u8]) -> Vec<&[u8]> {
    let mut out = vec![];
    let mut rest = buf;
    while let Some(colon) = rest.iter().position(|&b| b == b':') {
        let Some(len) = std::str::from_utf8(&rest[..colon])
            .ok()
            .and_then(|l| l.parse::<usize>().ok())
        else {
            break;
        };
        let start = colon + 1;
        if rest.len() < start + len + 1 || rest[start + len] != b',' {
            break;
        }
        out.push(&rest[start..start + len]);
        rest = &rest[start + len + 1..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::netstrings;

    #[test]
    fn netstrings_are_split_and_partial_ones_wait() {
        let cases: &[(&[u8], &[&[u8]])] = &[
            (b"", &[]),
            (b"2:ab,", &[b"ab"]),
            (b"2:ab,0:,3:xyz,", &[b"ab", b"", b"xyz"]),
            (b"2:ab,5:xy", &[b"ab"]),
            (b"2:abc", &[]),
            (b"x:ab,", &[]),
        ];
        for (input, want) in cases {
            assert_eq!(
                &netstrings(input),
                want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }
}
