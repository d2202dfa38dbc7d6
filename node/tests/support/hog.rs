//! A CPU hog on the test host: `stress-ng` with one CPU worker per core, for a bounded time.
//!
//! It runs in its own process group, so stopping it stops its workers too, and only them; it
//! is stopped when dropped, and its own `--timeout` ends it should the test process die first.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::require;

/// Most CPU workers a hog starts, whatever the machine says it has.
pub const MAX_WORKERS: usize = 16;

/// A running `stress-ng --cpu N`.
pub struct Hog {
    child: Option<Child>,
    /// CPU workers: one per core this process may run on, at most [`MAX_WORKERS`].
    pub workers: usize,
    /// When it started.
    pub started: Instant,
}

impl Hog {
    /// Starts one CPU worker per core (at normal priority, the test's own) that stops by
    /// itself after `limit` (whole seconds, at least 1). Its messages go to `dir/stress-ng.log`.
    pub fn start(dir: &Path, limit: Duration) -> Hog {
        require("stress-ng", "stress-ng");
        let workers = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(1, MAX_WORKERS);
        let log = std::fs::File::create(dir.join("stress-ng.log")).expect("create stress-ng.log");
        let child = Command::new("stress-ng")
            .args(["--cpu", &workers.to_string(), "--timeout"])
            .arg(format!("{}s", limit.as_secs().max(1)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start stress-ng");
        Hog {
            child: Some(child),
            workers,
            started: Instant::now(),
        }
    }

    /// Whether it is still running (it did not stop or fail by itself).
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Stops it (SIGTERM to its process group: stress-ng and its workers) and waits up to
    /// `limit` for stress-ng to exit: its exit status, `None` if it did not.
    pub fn stop(&mut self, limit: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        // stress-ng stops its workers and waits for them before it exits.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", child.id())])
            .stderr(Stdio::null())
            .status();
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
