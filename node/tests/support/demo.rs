//! `callfleet demo` run by a test: started in a scratch folder, watched through main-a's
//! panel snapshot and its traffic log, stopped with Ctrl-C (SIGINT), killed on drop if still
//! running.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{http_get, wait_until};

/// A running demo.
pub struct Demo {
    pub dir: PathBuf,
    child: Child,
    started: Instant,
}

impl Demo {
    /// Starts `callfleet demo --dir DIR` (stdout in `DIR/demo.out`).
    pub fn start(dir: &Path) -> Demo {
        let child = Command::new(env!("CARGO_BIN_EXE_callfleet"))
            .args(["demo", "--dir"])
            .arg(dir)
            .stdout(std::fs::File::create(dir.join("demo.out")).expect("create demo.out"))
            .stderr(Stdio::null())
            .spawn()
            .expect("start the demo");
        Demo {
            dir: dir.to_path_buf(),
            child,
            started: Instant::now(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the panel shows callers waiting, agents ringing or talking, and calls on
    /// more than one node, at most until `limit` after the start; the last snapshot otherwise.
    pub fn wait_lively(&self, limit: Duration) -> Result<Value, String> {
        let mut last = Value::Null;
        while self.started.elapsed() < limit {
            if let Some(s) = snapshot() {
                let (waiting, busy, nodes) = liveliness(&s);
                if waiting > 0 && busy > 0 && nodes > 1 {
                    return Ok(s);
                }
                last = s;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!(
            "(waiting, ringing or talking agents, nodes with calls) = {:?}\n{last:#}\ntraffic:\n{}",
            liveliness(&last),
            self.traffic_log()
        ))
    }

    pub fn traffic_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("traffic.log")).unwrap_or_default()
    }

    /// The demo's stdout so far.
    pub fn out(&self) -> String {
        std::fs::read_to_string(self.dir.join("demo.out")).unwrap_or_default()
    }

    /// A POST with a JSON body to `node`'s HTTP API as curl on this host sends it, with the
    /// operator token the node wrote to `DIR/<node>.operator-token`: (status, body).
    pub fn operator_post(&self, node: &str, path: &str, json: &str) -> (u16, String) {
        let file = self.dir.join(format!("{node}.operator-token"));
        let token = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        let ip = match node {
            "main-a" => "127.0.0.11",
            "main-b" => "127.0.0.12",
            _ => "127.0.0.13",
        };
        let addr = format!("{ip}:8080").parse().expect("node address");
        let (status, _, body) = super::http::exchange(
            addr,
            &format!(
                "POST {path} HTTP/1.0\r\nContent-Type: application/json\r\n\
                 Authorization: Bearer {}",
                token.trim()
            ),
            json,
        );
        (status, body)
    }

    /// The `admin` user's password the demo made.
    pub fn admin_password(&self) -> String {
        std::fs::read_to_string(self.dir.join("admin-password"))
            .expect("read admin-password")
            .trim()
            .to_owned()
    }

    /// Ctrl-C, and the exit status (panics if the demo does not exit within 40 s).
    pub fn interrupt(&mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -INT failed");
        let stopped = wait_until(Duration::from_secs(40), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        assert!(stopped.is_some(), "the demo did not stop on Ctrl-C");
        self.child.wait().expect("exit status")
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // A failed test: stop it the way a user would, so its children stop too.
            let _ = Command::new("kill")
                .args(["-INT", &self.child.id().to_string()])
                .status();
            if wait_until(Duration::from_secs(30), || {
                matches!(self.child.try_wait(), Ok(Some(_)))
            })
            .is_none()
            {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// main-a's panel snapshot.
pub fn snapshot() -> Option<Value> {
    let (code, body) = http_get("127.0.0.11:8080".parse().ok()?, "/api/v1/panel/snapshot")?;
    (code == 200).then(|| serde_json::from_str(&body).ok())?
}

/// What a snapshot shows: (callers waiting, agents ringing or talking, nodes holding calls).
pub fn liveliness(s: &Value) -> (i64, usize, usize) {
    let waiting = s["queues"]
        .as_array()
        .map_or(0, |q| q.iter().filter_map(|q| q["waiting"].as_i64()).sum());
    let busy = s["agents"].as_array().map_or(0, |a| {
        a.iter()
            .filter(|a| a["state"] == "ringing" || a["state"] == "in_call")
            .count()
    });
    let mut nodes: Vec<&str> = s["calls"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["node"].as_str()).collect())
        .unwrap_or_default();
    nodes.sort_unstable();
    nodes.dedup();
    (waiting, busy, nodes.len())
}

/// The id of a call talking to an agent, once there is one (at most `limit`).
pub fn talking_call(limit: Duration) -> Option<String> {
    let mut found = None;
    wait_until(limit, || {
        found = snapshot().and_then(|s| {
            s["calls"].as_array()?.iter().find_map(|c| {
                (c["state"] == "talking").then(|| c["call_id"].as_str().map(str::to_owned))?
            })
        });
        found.is_some()
    });
    found
}

/// The pids whose parent is `pid` (from /proc).
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            // "pid (comm) state ppid ...": the comm may hold spaces, so split after ')'.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                == Some(pid)
        })
        .collect()
}

/// Whether `pid` is a live process (not gone, not a zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}
