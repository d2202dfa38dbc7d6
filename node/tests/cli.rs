//! The `callfleet` command line as an operator meets it: a bad config names the bad key,
//! `doctor` reports, `migrate` creates the schema, logs written to a file carry no colour codes
//! and `--log-format json` / `CALLFLEET_LOG_FORMAT=json` writes one JSON object per line, and
//! `demo --quiet` runs three nodes on 127.0.0.11-13 and stops them all on Ctrl-C.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{http_get, wait_until, workdir};

fn callfleet(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_callfleet"))
        .args(args)
        .output()
        .expect("run callfleet")
}

#[test]
fn a_config_with_an_unknown_key_is_refused_by_name() {
    let dir = workdir("cli-badkey");
    let cfg = dir.join("bad.toml");
    std::fs::write(
        &cfg,
        "[node]\nname = \"x\"\ncapacty = 5\n[sip]\nlisten = \"127.0.5.1:5060\"\n[http]\nlisten = \"127.0.5.1:8080\"\n",
    )
    .unwrap();
    for args in [vec!["node", "--config"], vec!["doctor", "--config"]] {
        let mut args: Vec<&str> = args;
        args.push(cfg.to_str().unwrap());
        let out = callfleet(&args);
        assert!(!out.status.success(), "{args:?} must fail");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("capacty"), "{args:?} names the key: {text}");
    }
}

#[test]
fn a_node_or_lockd_with_a_weak_cluster_secret_refuses_to_start() {
    let dir = workdir("cli-weak-secret");
    let example = include_str!("../callfleet.example.toml");
    // (the [http] secret line, or none, and what the error says)
    let cases = [
        (None, "the cluster secret is required"),
        (Some("secret = \"change-me\""), "it needs at least 32"),
        (
            Some("secret = \"0123456789abcdef0123456789abcde\""),
            "has 31 characters",
        ),
        (
            Some("secret = \"replace-me-with-the-output-of-openssl-rand-hex-32\""),
            "placeholder",
        ),
    ];
    for (i, (line, says)) in cases.into_iter().enumerate() {
        let cfg = dir.join(format!("weak-{i}.toml"));
        let mut text = format!(
            "[node]\nname = \"weak\"\n[sip]\nlisten = \"127.0.5.3:5060\"\n[http]\nlisten = \"127.0.5.3:8080\"\n[database]\nurl = \"sqlite://{}/w.db\"\n",
            dir.display()
        );
        if let Some(line) = line {
            text = text.replace("[database]", &format!("{line}\n[database]"));
        }
        std::fs::write(&cfg, text).unwrap();
        let cfg = cfg.to_str().unwrap();
        for args in [
            vec!["node", "--config", cfg],
            vec!["lockd", "--listen", "127.0.5.3:7070", "--config", cfg],
        ] {
            let out = callfleet(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{args:?} started with {line:?}");
            assert!(
                err.contains("http.secret") && err.contains(says),
                "{args:?}: {err}"
            );
        }
    }
    // The example config as shipped names its placeholder, which is refused.
    assert!(example.contains("secret = \"replace-me-with-the-output-of-openssl-rand-hex-32\""));
    // lockd with a weak secret file, or with none at all.
    let file = dir.join("weak-secret");
    std::fs::write(&file, "short\n").unwrap();
    let out = callfleet(&[
        "lockd",
        "--listen",
        "127.0.5.3:7070",
        "--secret-file",
        file.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("it needs at least 32"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_callfleet"))
        .args(["lockd", "--listen", "127.0.5.3:7070"])
        .env_remove("CALLFLEET_HTTP_SECRET")
        .output()
        .expect("run callfleet");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--secret-file"),
        "{err}"
    );
}

#[test]
fn migrate_then_doctor_report_a_healthy_setup() {
    let dir = workdir("cli-doctor");
    let db = format!("sqlite://{}", dir.join("c.db").display());
    let cfg = dir.join("ok.toml");
    std::fs::write(
        &cfg,
        format!("[node]\nname = \"doc\"\n[sip]\nlisten = \"127.0.5.2:5060\"\n[http]\nlisten = \"127.0.5.2:8080\"\nsecret = \"{}\"\n[database]\nurl = \"{db}\"\n", support::SECRET),
    )
    .unwrap();
    // Before the database exists doctor says so, and does not create it.
    let out = callfleet(&["doctor", "--config", cfg.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("does not exist yet"), "{text}");
    assert!(
        !dir.join("c.db").exists(),
        "doctor created the database file"
    );
    let out = callfleet(&["migrate", "--database", &db]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = callfleet(&["doctor", "--config", cfg.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("database reachable") && text.contains("SIP UDP 127.0.5.2:5060 free"),
        "{text}"
    );
    // A port taken by someone else is reported.
    let _taken = std::net::UdpSocket::bind("127.0.5.2:5060").unwrap();
    let out = callfleet(&["doctor", "--config", cfg.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL  SIP UDP 127.0.5.2:5060"));
}

/// Runs a node on `ip` with its log on stderr into a file until `/healthz` answers, stops it
/// with SIGTERM, and returns the log.
fn node_log(dir: &std::path::Path, ip: &str, args: &[&str], env: &[(&str, &str)]) -> Vec<u8> {
    let db = format!("sqlite://{}", dir.join("log.db").display());
    let cfg = dir.join(format!("{ip}.toml"));
    std::fs::write(
        &cfg,
        format!(
            "[node]\nname = \"log\"\n[sip]\nlisten = \"{ip}:5060\"\n[http]\nlisten = \"{ip}:8080\"\n\
             secret = \"{}\"\noperator_token_file = \"{d}/{ip}.operator-token\"\n\
             [database]\nurl = \"{db}\"\n[media]\nmoh_dir = \"{d}\"\n\
             [records]\nspool_dir = \"{d}/spool-{ip}\"\n",
            support::SECRET,
            d = dir.display()
        ),
    )
    .expect("write the node config");
    let log = dir.join(format!("{ip}.log"));
    let mut node = Command::new(env!("CARGO_BIN_EXE_callfleet"))
        .args(args)
        .args(["node", "--config"])
        .arg(&cfg)
        .envs(env.iter().copied())
        .env_remove("NO_COLOR")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("create the log file"))
        .spawn()
        .expect("start the node");
    let http = format!("{ip}:8080").parse().expect("HTTP address");
    let up = wait_until(Duration::from_secs(20), || {
        http_get(http, "/healthz").is_some_and(|(c, _)| c == 200)
    });
    let _ = Command::new("kill").arg(node.id().to_string()).status();
    let stopped = wait_until(Duration::from_secs(20), || {
        matches!(node.try_wait(), Ok(Some(_)))
    });
    if stopped.is_none() {
        let _ = node.kill();
    }
    let text = std::fs::read(&log).expect("read the log");
    assert!(
        up.is_some() && stopped.is_some(),
        "the node did not start and stop: {}",
        String::from_utf8_lossy(&text)
    );
    text
}

#[test]
fn logs_in_a_file_have_no_colour_codes_and_json_lines_parse() {
    let dir = workdir("cli-logs");
    let text = node_log(&dir, "127.0.17.1", &[], &[]);
    assert!(
        String::from_utf8_lossy(&text).contains("INFO"),
        "the node logged nothing: {}",
        String::from_utf8_lossy(&text)
    );
    assert!(
        !text.contains(&0x1b),
        "ESC in a log written to a file: {}",
        String::from_utf8_lossy(&text)
    );
    for (args, env) in [
        (vec!["--log-format", "json"], vec![]),
        (vec![], vec![("CALLFLEET_LOG_FORMAT", "json")]),
    ] {
        let text = node_log(&dir, "127.0.17.2", &args, &env);
        let text = String::from_utf8(text).expect("UTF-8 log");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() >= 2, "{args:?} {env:?}: {text}");
        for line in lines {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{args:?} {env:?}: not JSON ({e}): {line}"));
            assert!(
                v["level"].is_string() && v["message"].is_string() && v["timestamp"].is_string(),
                "{line}"
            );
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_callfleet"))
        .args(["device", "list", "--config", "/nonexistent.toml"])
        .env("CALLFLEET_LOG_FORMAT", "yaml")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("CALLFLEET_LOG_FORMAT=\"yaml\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn demo_quiet_runs_three_bare_nodes_and_ctrl_c_stops_them() {
    let _serial = support::serial();
    let dir = workdir("cli-demo");
    let mut demo = Command::new(env!("CARGO_BIN_EXE_callfleet"))
        .args(["demo", "--quiet", "--dir"])
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start demo");
    let main_a = "127.0.0.11:8080".parse().unwrap();
    let all_alive = wait_until(Duration::from_secs(20), || {
        http_get(main_a, "/api/v1/nodes")
            .and_then(|(_, b)| serde_json::from_str::<serde_json::Value>(&b).ok())
            .and_then(|v| {
                v.as_array()
                    .map(|a| a.iter().filter(|n| n["alive"] == true).count())
            })
            == Some(3)
    });
    if all_alive.is_none() {
        let _ = demo.kill();
        panic!("demo cluster did not show 3 alive nodes");
    }
    // Bare: no call centre, no simulated traffic.
    let (_, queues) = http_get(main_a, "/api/v1/queues").unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&queues).unwrap(),
        serde_json::json!([])
    );
    assert!(!dir.join("traffic.log").exists());
    let lockd = http_get("127.0.0.10:7070".parse().unwrap(), "/healthz");
    assert_eq!(
        lockd.map(|(c, _)| c),
        Some(200),
        "the demo's lock service answers"
    );
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(demo.id().to_string())
        .status();
    let stopped = wait_until(Duration::from_secs(20), || {
        matches!(demo.try_wait(), Ok(Some(_)))
    });
    if stopped.is_none() {
        let _ = demo.kill();
        panic!("demo did not stop on Ctrl-C");
    }
    let status = demo.wait().unwrap();
    assert!(status.success(), "demo exit status {status}");
    let mut banner = String::new();
    std::io::Read::read_to_string(demo.stdout.as_mut().unwrap(), &mut banner).unwrap();
    assert!(
        banner.contains("sip:127.0.0.13:5060") && banner.contains("demo stopped"),
        "{banner}"
    );
    for ip in ["127.0.0.11", "127.0.0.12", "127.0.0.13"] {
        let addr = format!("{ip}:8080").parse().unwrap();
        assert!(
            http_get(addr, "/healthz").is_none(),
            "node on {ip} still answers after Ctrl-C"
        );
    }
}
