//! Test harness: real callfleet nodes (the built binary), a fresh PostgreSQL database, the
//! Kamailio carrier and SIPp from the repository's `tests/peers`, all on loopback addresses. Every helper
//! fails with a message naming what to install when a tool is missing; nothing is skipped.

#![allow(dead_code)]

pub mod alerting;
pub mod audio;
pub mod browser;
pub mod demo;
pub mod dtmf;
pub mod hog;
pub mod http;
pub mod lockd;
pub mod lossy;
pub mod pgserver;
pub mod phone;
pub mod pump;
pub mod queue;
pub mod raw_agent;
pub mod raw_phone;
pub mod session;
pub mod sinks;
pub mod sip_tcp;
pub mod tls;
pub mod transfer;
pub mod uac;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The cluster secret of every test node and lockd (a test that needs another writes its own).
pub const SECRET: &str = "integration-test-cluster-secret-0123456789abcdef";

/// Signs requests with [`SECRET`], as another node or the CLI does.
pub fn signer() -> &'static callfleet_sign::Signer {
    static SIGNER: std::sync::OnceLock<callfleet_sign::Signer> = std::sync::OnceLock::new();
    SIGNER.get_or_init(|| callfleet_sign::Signer::new(callfleet_sign::ClusterKey::new(SECRET)))
}

/// The test peers shipped with the repository (`tests/peers`: the Kamailio carrier, SIPp
/// scenarios, the baresip phone launcher).
pub fn peers() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/peers");
    assert!(p.is_dir(), "cannot find the test peers at {}", p.display());
    p
}

/// Fails the test with an install hint when `tool` is not on PATH.
pub fn require(tool: &str, package: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success());
    assert!(
        matches!(found, Ok(true)),
        "{tool} is not installed: apt-get install {package} (or run scripts/test.sh)"
    );
}

/// Heavy cluster tests run one at a time: two cores cannot host two clusters under load.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A scratch directory under `target/it/NAME`, emptied first, kept after the test for review.
pub fn workdir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("it").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create test dir");
    dir
}

/// A PostgreSQL database created for one test and dropped after it.
pub struct Pg {
    pub url: String,
    admin: String,
    name: String,
}

impl Pg {
    pub fn fresh(tag: &str) -> Pg {
        require("psql", "postgresql-client");
        let server = std::env::var("CALLFLEET_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1".into());
        let admin = format!("{server}/postgres");
        let name = format!("cf_it_{tag}_{}", std::process::id());
        let _ = psql(&admin, &format!("DROP DATABASE IF EXISTS {name}"));
        psql(&admin, &format!("CREATE DATABASE {name}")).unwrap_or_else(|e| {
            panic!("PostgreSQL is not reachable at {server} ({e}); install and start PostgreSQL or set CALLFLEET_TEST_PG")
        });
        Pg {
            url: format!("{server}/{name}"),
            admin,
            name,
        }
    }

    /// Runs a query and returns its rows as text (`|`-separated columns).
    pub fn query(&self, sql: &str) -> Vec<String> {
        let out = psql(&self.url, sql).unwrap_or_else(|e| panic!("query failed: {sql}: {e}"));
        out.lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let _ = psql(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// Rows of `sql` on `url` (`|`-separated columns, empty lines left out); panics with psql's
/// error when it fails.
pub fn psql_rows(url: &str, sql: &str) -> Vec<String> {
    let out = psql(url, sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    out.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn psql(url: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .args([
            url,
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .map_err(|e| format!("cannot run psql: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// One running `callfleet node`.
pub struct NodeProc {
    pub name: String,
    pub ip: String,
    pub sip: SocketAddr,
    pub http: SocketAddr,
    pub config: PathBuf,
    pub log: PathBuf,
    /// `RUST_LOG` of the process: `CALLFLEET_TEST_LOG` when set, else info without the SIP
    /// stack's and SQL's chatter; a test may change it before [`NodeProc::spawn`].
    pub log_filter: String,
    /// Set when the node serves HTTPS: the CA its certificate is checked against (the
    /// harness then reaches it with curl over HTTPS, see [`tls::enable_https`]).
    pub https_ca: Option<PathBuf>,
    child: Option<Child>,
}

/// Config of a test node.
pub struct NodeSpec<'a> {
    pub name: &'a str,
    pub role: &'a str,
    pub ip: &'a str,
    pub db: &'a str,
    pub capacity: u32,
    /// Extra TOML appended right after the `[media]` section: keys before its first
    /// `[section]` header are media keys (e.g. `voicemail_dir`), then whole sections.
    pub extra: &'a str,
}

impl NodeProc {
    pub fn start(dir: &Path, spec: NodeSpec) -> NodeProc {
        let mut node = NodeProc::configure(dir, spec);
        node.spawn();
        node
    }

    /// Writes the node's config without starting it: a test edits [`NodeProc::config`]
    /// (e.g. keys of `[http]`), then calls [`NodeProc::spawn`].
    pub fn configure(dir: &Path, spec: NodeSpec) -> NodeProc {
        let sip: SocketAddr = format!("{}:5060", spec.ip).parse().expect("sip addr");
        let http: SocketAddr = format!("{}:8080", spec.ip).parse().expect("http addr");
        let config = dir.join(format!("{}.toml", spec.name));
        let token = dir.join(format!("{}.operator-token", spec.name));
        // `[http]` ends with `secret`: tests add keys right after the `[http]` line. The host is
        // shared by every test node (and more): neither its CPU (`lb.refuse_cpu`, which the
        // CPU levels follow) nor its load (`shed.load_per_core`) may shed a test node's load.
        let text = format!(
            "[node]\nname = \"{}\"\nrole = \"{}\"\ncapacity = {}\n[sip]\nlisten = \"{sip}\"\n[http]\nlisten = \"{http}\"\n\
             operator_token_file = \"{}\"\nsecret = \"{SECRET}\"\n\
             [database]\nurl = \"{}\"\n[carriers]\nallow = [\"127.0.0.0/8\"]\n\
             [heartbeat]\ninterval = \"1s\"\n[lb]\nrefuse_cpu = 1000.0\n[shed]\nload_per_core = [1000.0, 1000.0]\n[records]\nspool_dir = \"{}\"\n\
             [media]\nmoh_dir = \"{}\"\n{}\n",
            spec.name, spec.role, spec.capacity, token.display(), spec.db, dir.join("spool").display(), dir.join("moh").display(), spec.extra
        );
        std::fs::write(&config, text).expect("write node config");
        NodeProc {
            name: spec.name.to_string(),
            ip: spec.ip.to_string(),
            sip,
            http,
            log: dir.join(format!("{}.log", spec.name)),
            config,
            log_filter: std::env::var("CALLFLEET_TEST_LOG").unwrap_or_else(|_| {
                "info,rsipstack=warn,rsipstack::transport::stream=error,sqlx=warn".into()
            }),
            https_ca: None,
            child: None,
        }
    }

    /// Starts (or restarts) the process and waits for `/healthz`.
    pub fn spawn(&mut self) {
        self.spawn_binary(Path::new(env!("CARGO_BIN_EXE_callfleet")));
    }

    /// [`NodeProc::spawn`] with another `callfleet` executable (an upgrade).
    pub fn spawn_binary(&mut self, binary: &Path) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open node log");
        let child = Command::new(binary)
            .args(["node", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", &self.log_filter)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start callfleet node");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "node {} exited at start ({status}); log:\n{}",
                    self.name,
                    self.log_text()
                );
            }
            if self.healthy() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "node {} did not come up; log:\n{}",
            self.name,
            self.log_text()
        );
    }

    /// Whether `/healthz` answers 200 (over HTTPS, checking the certificate, when the node
    /// serves it).
    fn healthy(&self) -> bool {
        match &self.https_ca {
            Some(ca) => tls::curl(Some(ca), &[&format!("https://{}/healthz", self.http)])
                .is_ok_and(|r| r.status == 200),
            None => http_get(self.http, "/healthz").is_some_and(|(code, _)| code == 200),
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id of the running node.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The node's resident memory now, in bytes (`VmRSS` of `/proc/PID/status`).
    pub fn rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    }

    /// The operator token the running node wrote (what `curl` on the node's host reads).
    pub fn operator_token(&self) -> String {
        let file = self
            .config
            .with_file_name(format!("{}.operator-token", self.name));
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("read {}: {e}", file.display()))
            .trim()
            .to_owned()
    }

    /// A POST with a JSON body and the operator token, as curl on the node's host sends it:
    /// (status, body).
    pub fn post_json(&self, path: &str, json: &str) -> (u16, String) {
        let auth = format!("Authorization: Bearer {}", self.operator_token());
        if let Some(ca) = &self.https_ca {
            let url = format!("https://{}{path}", self.http);
            let r = tls::curl(
                Some(ca),
                &[
                    "-X",
                    "POST",
                    "-H",
                    "Content-Type: application/json",
                    "-H",
                    &auth,
                    "--data-binary",
                    json,
                    &url,
                ],
            )
            .unwrap_or_else(|e| panic!("POST {url}: {e:?}"));
            return (r.status, r.body);
        }
        let (status, _, body) = http::exchange(
            self.http,
            &format!("POST {path} HTTP/1.0\r\nContent-Type: application/json\r\n{auth}"),
            json,
        );
        (status, body)
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends `signal` (e.g. `"TERM"`) without waiting.
    pub fn signal(&self, signal: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(pid.to_string())
                .status();
        }
    }

    /// SIGTERM and wait (up to 20 s) for the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        wait_exit(&mut c, Duration::from_secs(20))
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        let st = wait_exit(&mut c, limit);
        if st.is_none() {
            self.child = Some(c);
        }
        st
    }

    pub fn nodes(&self) -> serde_json::Value {
        let (_, body) = self.get("/api/v1/nodes").expect("GET /api/v1/nodes");
        serde_json::from_str(&body).expect("nodes JSON")
    }

    pub fn metrics(&self) -> String {
        self.get("/metrics").expect("GET /metrics").1
    }

    /// A GET from the node's host without credentials (over HTTPS when the node serves it):
    /// (status, body).
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        match &self.https_ca {
            Some(ca) => tls::curl(Some(ca), &[&format!("https://{}{path}", self.http)])
                .ok()
                .map(|r| (r.status, r.body)),
            None => http_get(self.http, path),
        }
    }

    /// Value of one metric line (exact series text, e.g. `callfleet_calls_total{outcome="answered"}`).
    pub fn metric(&self, series: &str) -> f64 {
        self.metrics()
            .lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0.0)
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn wait_exit(c: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if let Ok(Some(st)) = c.try_wait() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// A plain HTTP/1.0 GET with a short timeout: (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    http_request(addr, "GET", path)
}

pub fn http_request(addr: SocketAddr, method: &str, path: &str) -> Option<(u16, String)> {
    http_send(addr, method, path, "")
}

/// A POST with a JSON body: (status, body).
pub fn http_post_json(addr: SocketAddr, path: &str, json: &str) -> Option<(u16, String)> {
    http_send(addr, "POST", path, json)
}

fn http_send(addr: SocketAddr, method: &str, path: &str, json: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{json}",
        json.len()
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let code = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((code, body))
}

/// The Kamailio carrier from `peers/carrier`.
pub struct Carrier {
    pub addr: SocketAddr,
    pid: u32,
    dir: PathBuf,
}

impl Carrier {
    pub fn start(dir: &Path, listen: &str, nodes: &[SocketAddr]) -> Carrier {
        require("kamailio", "kamailio");
        let dir = dir.join("carrier");
        let list: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
        let out = Command::new("bash")
            .arg(peers().join("carrier/run.sh"))
            .args(["--listen", listen, "--nodes", &list.join(","), "--dir"])
            .arg(&dir)
            .output()
            .expect("run carrier/run.sh");
        assert!(
            out.status.success(),
            "carrier failed to start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Kamailio prints its listening banner on stdout too; run.sh prints the PID last.
        let stdout = String::from_utf8_lossy(&out.stdout);
        let pid = stdout
            .lines()
            .rev()
            .find_map(|l| l.trim().parse().ok())
            .expect("carrier pid");
        std::thread::sleep(Duration::from_millis(500));
        Carrier {
            addr: listen.parse().expect("carrier addr"),
            pid,
            dir,
        }
    }
}

impl Drop for Carrier {
    fn drop(&mut self) {
        // Kamailio forks; the pid file's process is the main one and stops its children.
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
        std::thread::sleep(Duration::from_millis(300));
        let _ = Command::new("pkill")
            .arg("-f")
            .arg(self.dir.join("kamailio.cfg").to_string_lossy().as_ref())
            .status();
    }
}

/// Outcome of one SIPp run.
#[derive(Debug, Clone, Copy, Default)]
pub struct SippStats {
    pub successful: u64,
    pub failed: u64,
    pub retransmissions: u64,
}

/// Runs SIPp to completion (bounded by `-timeout`) and reads its final statistics.
pub fn sipp(dir: &Path, tag: &str, args: &[&str]) -> SippStats {
    require("sipp", "sip-tester");
    let stat = dir.join(format!("sipp-{tag}.csv"));
    let _ = std::fs::remove_file(&stat);
    let out = Command::new("sipp")
        .args(args)
        .args(["-nostdin", "-trace_stat", "-fd", "1", "-stf"])
        .arg(&stat)
        .args(["-trace_err", "-error_file"])
        .arg(dir.join(format!("sipp-{tag}-errors.log")))
        .current_dir(dir)
        .output()
        .expect("run sipp");
    std::fs::write(dir.join(format!("sipp-{tag}.out")), &out.stdout).ok();
    parse_stat(&stat).unwrap_or_else(|| {
        panic!(
            "no SIPp statistics in {}: {}",
            stat.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn parse_stat(path: &Path) -> Option<SippStats> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.split(';').collect();
    let last: Vec<&str> = lines.rfind(|l| !l.trim().is_empty())?.split(';').collect();
    let col = |name: &str| -> u64 {
        header
            .iter()
            .position(|h| *h == name)
            .and_then(|i| last.get(i))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    Some(SippStats {
        successful: col("SuccessfulCall(C)"),
        failed: col("FailedCall(C)"),
        retransmissions: col("Retransmissions(C)"),
    })
}

/// Calls SIPp places: how many, one every `every_ms`, each held `hold_ms` after its answer.
#[derive(Debug, Clone, Copy)]
pub struct Burst {
    pub calls: u32,
    pub every_ms: u32,
    pub hold_ms: u32,
}

/// Places calls to `service` (the number dialled) through the carrier with
/// `peers/sipp/carrier-call.xml` from `caller` (ip, port); bounded by SIPp's `-timeout`.
/// The caller number (From user) is `sipp`.
pub fn carrier_calls(
    dir: &Path,
    tag: &str,
    carrier: SocketAddr,
    service: &str,
    caller: (&str, u16),
    burst: Burst,
) -> SippStats {
    let scenario = peers().join("sipp/carrier-call.xml");
    let limit_s = (burst.calls * burst.every_ms + burst.hold_ms) / 1000 + 60;
    sipp(
        dir,
        tag,
        &[
            "-sf",
            scenario.to_str().expect("utf-8 path"),
            "-s",
            service,
            "-d",
            &burst.hold_ms.to_string(),
            "-r",
            "1",
            "-rp",
            &burst.every_ms.max(1).to_string(),
            "-m",
            &burst.calls.to_string(),
            "-l",
            "200",
            "-i",
            caller.0,
            "-p",
            &caller.1.to_string(),
            "-timeout",
            &limit_s.to_string(),
            "-max_retrans",
            "10",
            &carrier.to_string(),
        ],
    )
}

/// Polls `f` until it returns true or `limit` passes; returns the time it took.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// Waits until `node`'s view shows `count` alive nodes.
pub fn wait_alive(node: &NodeProc, count: usize) {
    let ok = wait_until(Duration::from_secs(15), || {
        node.nodes()
            .as_array()
            .is_some_and(|a| a.iter().filter(|n| n["alive"] == true).count() == count)
    });
    assert!(
        ok.is_some(),
        "cluster did not show {count} alive nodes: {}",
        node.nodes()
    );
}

/// Runs `callfleet ARGS --config <node's config>` with `stdin` on its standard input:
/// (succeeded, stdout, stderr).
pub fn cli(node: &NodeProc, args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_callfleet"))
        .args(args)
        .arg("--config")
        .arg(&node.config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run callfleet");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait for callfleet");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `callfleet user add` (password on stdin); panics with the command's output if it fails.
pub fn user_add(node: &NodeProc, name: &str, role: &str, password: &str, device: Option<&str>) {
    let mut args = vec!["user", "add", "--name", name, "--role", role];
    if let Some(device) = device {
        args.extend(["--device", device]);
    }
    let (ok, out, err) = cli(node, &args, &format!("{password}\n"));
    assert!(ok, "callfleet user add {name} failed: {out}{err}");
}
