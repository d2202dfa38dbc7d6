//! The lock service for cluster tests: the shared memcached (required, never skipped) and
//! `callfleet lockd` processes over it, which a test may `kill -9` like a crashed host.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::http_get;

/// `HOST:PORT` of the memcached the tests share: `CALLFLEET_TEST_MEMCACHED`, else
/// 127.0.0.1:11211. Fails the test with an install hint when it does not answer.
pub fn memcached() -> String {
    let addr =
        std::env::var("CALLFLEET_TEST_MEMCACHED").unwrap_or_else(|_| "127.0.0.1:11211".into());
    if let Err(e) = memcached_answers(&addr) {
        panic!("memcached is not reachable at {addr} ({e}): install and start memcached (apt-get install memcached) or set CALLFLEET_TEST_MEMCACHED");
    }
    addr
}

fn memcached_answers(addr: &str) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let sock: SocketAddr = addr
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut stream = TcpStream::connect_timeout(&sock, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    stream.write_all(b"version\r\n")?;
    let mut buf = [0u8; 64];
    let n = stream.read(&mut buf)?;
    if buf[..n].starts_with(b"VERSION ") {
        Ok(())
    } else {
        Err(std::io::Error::other("it does not speak memcached"))
    }
}

/// One running `callfleet lockd`, killed (`-9`) on drop.
pub struct Lockd {
    pub listen: SocketAddr,
    /// Base URL for `[lock] urls`.
    pub url: String,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Lockd {
    /// Starts `callfleet lockd --listen LISTEN --backend BACKEND --secret-file FILE` (the
    /// tests' cluster secret, [`super::SECRET`]) and waits for `/healthz`.
    pub fn start(dir: &Path, listen: &str, backend: &str) -> Lockd {
        let addr: SocketAddr = listen.parse().expect("lockd listen address");
        let log = dir.join(format!("lockd-{}.log", addr.ip()));
        let out = std::fs::File::create(&log).expect("create the lockd log");
        let secret = dir.join("lockd-secret");
        write_private(&secret, super::SECRET);
        let mut child = Command::new(env!("CARGO_BIN_EXE_callfleet"))
            .args([
                "lockd",
                "--listen",
                listen,
                "--backend",
                backend,
                "--secret-file",
            ])
            .arg(&secret)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("start callfleet lockd");
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if let Ok(Some(status)) = child.try_wait() {
                let _ = child.wait();
                panic!(
                    "lockd on {listen} exited at start ({status}): {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            if http_get(addr, "/healthz").is_some_and(|(code, _)| code == 200) {
                return Lockd {
                    listen: addr,
                    url: format!("http://{addr}"),
                    log,
                    child: Some(child),
                };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("lockd on {listen} did not answer /healthz");
    }

    /// `kill -9`, like a crashed host.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Lockd {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Writes `text` to `path`, readable by its owner only.
pub fn write_private(path: &Path, text: &str) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .expect("create a private file");
    writeln!(f, "{text}").expect("write a private file");
}
