//! A PostgreSQL server of a test's own (initdb and pg_ctl from /usr/lib/postgresql/*/bin), on
//! its own address, port and data directory, so a test may stop and start it without
//! touching the server the other tests share. Run as the `postgres` user when the test runs
//! as root (PostgreSQL refuses root). Stopped on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct PgServer {
    pub url: String,
    bin: PathBuf,
    data: PathBuf,
    /// Holds the data directory until the server is stopped.
    _dir: tempfile::TempDir,
    options: String,
}

/// The newest `/usr/lib/postgresql/<version>/bin`.
fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .expect("no PostgreSQL server under /usr/lib/postgresql: apt-get install postgresql (or run scripts/test.sh)")
}

fn as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL tool, as `postgres` when we are root.
fn run(tool: &Path, args: &[&str]) -> Output {
    let mut cmd = if as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(tool);
        c
    } else {
        Command::new(tool)
    };
    cmd.args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", tool.display()))
}

impl PgServer {
    /// initdb a fresh cluster (trust authentication, loopback only) and start it on
    /// `ip:port`.
    pub fn start(ip: &str, port: u16) -> PgServer {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("cf-pg-")
            .tempdir()
            .expect("temp dir for PostgreSQL");
        if as_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown the PostgreSQL data directory");
        }
        let data = dir.path().join("data");
        let out = run(
            &bin.join("initdb"),
            &[
                "-D",
                path(&data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
            ],
        );
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let options = format!(
            "-c listen_addresses={ip} -p {port} -k {} -c fsync=off",
            dir.path().display()
        );
        let server = PgServer {
            url: format!("postgres://postgres@{ip}:{port}/postgres"),
            bin,
            data,
            _dir: dir,
            options,
        };
        server.start_again();
        server
    }

    /// Starts the stopped server (waiting until it accepts connections).
    pub fn start_again(&self) {
        let log = self.data.with_file_name("server.log");
        let out = run(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                path(&self.data),
                "-o",
                &self.options,
                "-l",
                path(&log),
                "-w",
                "-t",
                "30",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Stops it at once (`-m immediate`, like a crash: connections are cut).
    pub fn stop(&self) {
        let out = run(
            &self.bin.join("pg_ctl"),
            &["-D", path(&self.data), "-m", "immediate", "-w", "stop"],
        );
        assert!(
            out.status.success(),
            "pg_ctl stop failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = run(
            &self.bin.join("pg_ctl"),
            &["-D", path(&self.data), "-m", "immediate", "stop"],
        );
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}
