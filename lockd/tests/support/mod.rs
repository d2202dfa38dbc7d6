//! Test harness: the shared memcached (required, never skipped), private memcached servers
//! that tests may kill, and lockd servers that run on their own runtime so a test can kill
//! one abruptly. Everything listens on 127.0.0.x.

#![allow(dead_code)]
// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use callfleet_lockd::{Auth, Backend, ClusterKey};

/// The cluster secret of the tests' lockd servers and clients.
pub const SECRET: &str = "lockd-integration-test-secret-0123456789";

/// The key of [`SECRET`].
pub fn key() -> ClusterKey {
    ClusterKey::new(SECRET)
}

/// `HOST:PORT` of the memcached the tests share: `CALLFLEET_TEST_MEMCACHED`, else
/// 127.0.0.1:11211. Fails the test when it does not answer.
pub fn memcached() -> String {
    let addr =
        std::env::var("CALLFLEET_TEST_MEMCACHED").unwrap_or_else(|_| "127.0.0.1:11211".into());
    if let Err(e) = memcached_answers(&addr) {
        panic!("memcached is not reachable at {addr} ({e}): install and start memcached (apt-get install memcached)");
    }
    addr
}

/// `memcached://` URL of the shared memcached.
pub fn memcached_url() -> String {
    format!("memcached://{}", memcached())
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
        Err(std::io::Error::other(
            "it does not speak the memcached protocol",
        ))
    }
}

/// A fresh random key prefix, so tests never see each other's (or an earlier run's) leases.
pub fn prefix() -> String {
    format!("t{:016x}", rand::random::<u64>())
}

/// Wall-clock nanoseconds since the UNIX epoch: comparable across processes on one host.
pub fn wall_ns() -> u64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// An HTTP client that never goes through a proxy (the tests' servers are on loopback).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A lockd server on its own tokio runtime; [`Lockd::kill`] drops the runtime and with it
/// every connection at once, like a crashed process.
pub struct Lockd {
    pub url: String,
    rt: Option<tokio::runtime::Runtime>,
}

impl Lockd {
    pub fn start(ip: &str, backend: Backend) -> Self {
        Self::start_keyed(ip, backend, key())
    }

    /// A lockd that takes requests signed with `key` (another cluster's, in tests).
    pub fn start_keyed(ip: &str, backend: Backend, key: ClusterKey) -> Self {
        let listener =
            TcpListener::bind((ip, 0)).unwrap_or_else(|e| panic!("bind lockd on {ip}: {e}"));
        Self::serve(listener, backend, key)
    }

    /// A lockd on the address of one that was killed (like a restarted process). Waits up
    /// to 5 s for the old one's socket to be gone.
    pub fn restart(&mut self, backend: Backend) {
        self.kill();
        let addr = self.url.trim_start_matches("http://").to_owned();
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(addr.as_str()) {
                Ok(listener) => break listener,
                Err(e) if Instant::now() >= deadline => panic!("rebind lockd on {addr}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        *self = Self::serve(listener, backend, key());
    }

    fn serve(listener: TcpListener, backend: Backend, key: ClusterKey) -> Self {
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            callfleet_lockd::serve(listener, backend, Auth::new(key), std::future::pending())
                .await
                .unwrap();
        });
        Self { url, rt: Some(rt) }
    }

    pub fn kill(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for Lockd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A memcached of the test's own, on 127.0.0.1 and a free port, that the test may stop and
/// start again on the same port.
pub struct PrivateMemcached {
    pub addr: String,
    child: Option<Child>,
}

impl PrivateMemcached {
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let mut me = Self {
            addr: format!("127.0.0.1:{port}"),
            child: None,
        };
        me.restart();
        me
    }

    /// Starts it (again) on the same address and waits until it answers.
    pub fn restart(&mut self) {
        self.stop();
        let (host, port) = self.addr.split_once(':').unwrap();
        let mut cmd = Command::new("memcached");
        cmd.args(["-l", host, "-p", port, "-U", "0", "-m", "16", "-t", "1"]);
        // memcached refuses to run as root unless told which user to be.
        if Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
        {
            cmd.args(["-u", "root"]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("start memcached ({e}): install memcached (apt-get install memcached)")
            });
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(5);
        while memcached_answers(&self.addr).is_err() {
            assert!(
                Instant::now() < until,
                "private memcached on {} did not start",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateMemcached {
    fn drop(&mut self) {
        self.stop();
    }
}
