use super::*;

const MINIMAL: &str = r#"
[node]
name = "main-a"
role = "main"
capacity = 500
[sip]
listen = "127.0.0.11:5060"
[http]
listen = "127.0.0.11:8080"
[database]
url = "postgres://user@127.0.0.1/callfleet"
[carriers]
allow = ["127.0.0.0/8"]
"#;

#[test]
fn minimal_file_gets_defaults() {
    let cfg = Config::parse(MINIMAL).expect("minimal config parses");
    assert_eq!(cfg.node.name, "main-a");
    assert_eq!(cfg.node.role, Role::Main);
    assert_eq!(cfg.heartbeat.interval, Duration::from_secs(2));
    assert_eq!(cfg.heartbeat.ttl(), Duration::from_secs(6));
    assert_eq!(
        cfg.media.rtp_ports,
        PortRange {
            low: 20000,
            high: 29999
        }
    );
    assert_eq!(cfg.carriers.refuse, RefuseAction::Forbidden);
    assert!(cfg.lb.prefer_self);
    assert_eq!(cfg.sip_advertise(), "127.0.0.11:5060".parse().unwrap());
}

#[test]
fn unknown_keys_are_rejected_with_their_name() {
    for (text, needle) in [
        (format!("{MINIMAL}\n[sip2]\nx = 1\n"), "sip2"),
        (
            MINIMAL.replace("capacity = 500", "capacty = 500"),
            "capacty",
        ),
        (
            format!("{MINIMAL}\n[heartbeat]\nintervall = \"1s\"\n"),
            "intervall",
        ),
    ] {
        let err = Config::parse(&text)
            .expect_err("unknown key must fail")
            .to_string();
        assert!(err.contains(needle), "{err} should name {needle}");
    }
}

#[test]
fn bad_values_are_explained() {
    for (from, to, key) in [
        ("role = \"main\"", "role = \"boss\"", "boss"),
        ("capacity = 500", "capacity = 0", "node.capacity"),
        ("name = \"main-a\"", "name = \"main a\"", "node.name"),
        ("\"127.0.0.0/8\"", "\"127.0.0.0/88\"", "allow"),
    ] {
        let err = Config::parse(&MINIMAL.replace(from, to))
            .expect_err("bad value must fail")
            .to_string();
        assert!(err.contains(key), "{err} should mention {key}");
    }
}

#[test]
fn durations_and_ranges_parse() {
    let text = format!(
        "{MINIMAL}\n[heartbeat]\ninterval = \"500ms\"\n[media]\nrtp_ports = \"30000-30100\"\n[call]\nanswer_delay = \"2s\"\n"
    );
    let cfg = Config::parse(&text).expect("parses");
    assert_eq!(cfg.heartbeat.ttl(), Duration::from_millis(1500));
    assert_eq!(
        cfg.media.rtp_ports,
        PortRange {
            low: 30000,
            high: 30100
        }
    );
    assert_eq!(cfg.call.answer_delay, Duration::from_secs(2));
    assert!(PortRange::try_from("5-4".to_string()).is_err());
    assert!(PortRange::try_from("abc".to_string()).is_err());
}

#[test]
fn allowlist_matches_sources() {
    let cfg = Config::parse(MINIMAL).expect("parses");
    assert!(cfg.carriers.allows("127.0.0.99".parse().unwrap()));
    assert!(!cfg.carriers.allows("10.0.0.1".parse().unwrap()));
}

#[test]
fn the_shipped_example_config_is_valid() {
    let text = include_str!("../../callfleet.example.toml");
    let cfg = Config::parse(text).expect("node/callfleet.example.toml parses");
    assert_eq!(
        cfg.media.prompts_dir,
        PathBuf::from("/usr/share/callfleet/prompts")
    );
}

#[test]
fn registrar_defaults_and_limits() {
    let cfg = Config::parse(MINIMAL).expect("parses");
    assert_eq!(cfg.sip.realm, "callfleet");
    let r = &cfg.registrar;
    assert_eq!(
        (r.min_expires, r.max_expires, r.default_expires),
        (60, 3600, 3600)
    );
    assert_eq!(r.nonce_ttl, Duration::from_secs(300));
    assert_eq!(r.algorithms, vec![Algorithm::Md5]);
    let text = format!(
        "{MINIMAL}\n[registrar]\nmin_expires = 5\nmax_expires = 10\ndefault_expires = 10\nnonce_ttl = \"1m\"\nalgorithms = [\"MD5\"]\n"
    )
    .replace("[sip]\n", "[sip]\nrealm = \"pbx.example\"\n");
    let cfg = Config::parse(&text).expect("parses");
    assert_eq!(cfg.sip.realm, "pbx.example");
    assert_eq!(cfg.registrar.algorithms, vec![Algorithm::Md5]);
    assert_eq!(cfg.registrar.nonce_ttl, Duration::from_secs(60));
    for (section, key) in [
        ("[registrar]\nmin_expires = 0\n", "registrar.min_expires"),
        ("[registrar]\nmin_expires = 4000\n", "registrar.min_expires"),
        (
            "[registrar]\ndefault_expires = 30\n",
            "registrar.default_expires",
        ),
        (
            "[registrar]\ndefault_expires = 7200\n",
            "registrar.default_expires",
        ),
        ("[registrar]\nnonce_ttl = \"1s\"\n", "registrar.nonce_ttl"),
        ("[registrar]\nalgorithms = []\n", "registrar.algorithms"),
        ("[registrar]\nalgorithms = [\"SHA-1\"]\n", "SHA-1"),
    ] {
        let err = Config::parse(&format!("{MINIMAL}\n{section}"))
            .expect_err("bad registrar value must fail")
            .to_string();
        assert!(err.contains(key), "{err} should mention {key}");
    }
    for realm in ["", "a b", "a\\\"b"] {
        let text = MINIMAL.replace("[sip]\n", &format!("[sip]\nrealm = \"{realm}\"\n"));
        let err = Config::parse(&text).expect_err("bad realm").to_string();
        assert!(err.contains("sip.realm"), "{realm:?}: {err}");
    }
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn environment_overrides_the_file_and_can_replace_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("node.toml");
    std::fs::write(&path, MINIMAL).expect("write config");
    let cfg = Config::load_with_env(
        Some(&path),
        env(&[
            ("CALLFLEET_NODE_CAPACITY", "250"),
            (
                "CALLFLEET_DATABASE_URL",
                "postgres://cf:pw@127.0.0.1/cluster",
            ),
            ("CALLFLEET_LOCK_URLS", r#"["http://127.0.0.1:7070"]"#),
            ("CALLFLEET_HEARTBEAT_INTERVAL", "3s"),
            ("CALLFLEET_LB_REFUSE_CPU", "95.5"),
            ("CALLFLEET_HTTP_TRUST_LOOPBACK", "false"),
            // Not a config section: left for whoever uses it.
            ("CALLFLEET_TEST_PG", "postgres://elsewhere"),
            ("HOME", "/root"),
        ]),
    )
    .expect("file + environment");
    assert_eq!(cfg.node.capacity, 250);
    assert_eq!(cfg.database.url, "postgres://cf:pw@127.0.0.1/cluster");
    assert_eq!(cfg.lock.urls.len(), 1);
    assert_eq!(cfg.heartbeat.interval, Duration::from_secs(3));
    assert!((cfg.lb.refuse_cpu - 95.5).abs() < f32::EPSILON);
    assert!(!cfg.http.trust_loopback);

    // No file at all: a container's whole config from the environment.
    let cfg = Config::load_with_env(
        None,
        env(&[
            ("CALLFLEET_NODE_NAME", "pod-7"),
            ("CALLFLEET_SIP_LISTEN", "127.0.0.7:5060"),
            ("CALLFLEET_HTTP_LISTEN", "127.0.0.7:8080"),
        ]),
    )
    .expect("environment only");
    assert_eq!(cfg.node.name, "pod-7");
    assert_eq!(cfg.sip.listen, "127.0.0.7:5060".parse().expect("addr"));
}

#[test]
fn a_wrong_environment_key_is_refused_by_name() {
    let base = [
        ("CALLFLEET_NODE_NAME", "pod-7"),
        ("CALLFLEET_SIP_LISTEN", "127.0.0.7:5060"),
        ("CALLFLEET_HTTP_LISTEN", "127.0.0.7:8080"),
    ];
    let mut vars = env(&base);
    vars.push(("CALLFLEET_LB_REFUSE_CPUS".to_owned(), "90".to_owned()));
    let err = Config::load_with_env(None, vars)
        .expect_err("unknown key")
        .to_string();
    assert!(
        err.contains("refuse_cpus") && err.contains("CALLFLEET_LB_REFUSE_CPUS"),
        "{err}"
    );

    let mut vars = env(&base);
    vars.push(("CALLFLEET_NODE_CAPACITY".to_owned(), "lots".to_owned()));
    let err = Config::load_with_env(None, vars)
        .expect_err("bad type")
        .to_string();
    assert!(err.contains("capacity"), "{err}");

    let mut vars = env(&base);
    vars.push(("CALLFLEET_NODE_".to_owned(), "x".to_owned()));
    let err = Config::load_with_env(None, vars)
        .expect_err("no key")
        .to_string();
    assert!(err.contains("CALLFLEET_NODE_"), "{err}");

    let err = Config::load_with_env(None, Vec::new())
        .expect_err("nothing at all")
        .to_string();
    assert!(err.contains("node"), "{err}");
}

#[test]
fn scale_and_drain_defaults_and_limits() {
    let cfg = Config::parse(MINIMAL).expect("parses");
    assert_eq!(cfg.node.drain_timeout, Duration::from_secs(300));
    let s = &cfg.scale;
    assert!(!s.enabled(), "off unless a command or webhook is set");
    assert_eq!((s.threshold, s.duration), (0.8, Duration::from_secs(120)));
    assert_eq!(
        (s.cooldown, s.timeout),
        (Duration::from_secs(900), Duration::from_secs(300))
    );
    let text = format!(
        "{MINIMAL}\n[scale]\nthreshold = 0.6\nduration = \"30s\"\ncommand = \"add-node.sh\"\n\
         webhook = \"http://10.0.0.9:9000/scale\"\ncooldown = \"10m\"\n"
    )
    .replace("[node]\n", "[node]\ndrain_timeout = \"90s\"\n");
    let cfg = Config::parse(&text).expect("parses");
    assert!(cfg.scale.enabled());
    assert_eq!(cfg.scale.command.as_deref(), Some("add-node.sh"));
    assert_eq!(cfg.scale.cooldown, Duration::from_secs(600));
    assert_eq!(cfg.node.drain_timeout, Duration::from_secs(90));
    for (section, key) in [
        ("[scale]\nthreshold = 0.0\n", "scale.threshold"),
        ("[scale]\nthreshold = 1.5\n", "scale.threshold"),
        ("[scale]\ncooldown = \"2h\"\n", "scale.cooldown"),
        ("[scale]\ncooldown = \"0s\"\n", "scale.cooldown"),
        ("[scale]\ntimeout = \"0s\"\n", "scale.timeout"),
        ("[scale]\ncommand = \"  \"\n", "scale.command"),
        (
            "[scale]\nwebhook = \"https://hooks.example/x\"\n",
            "scale.webhook",
        ),
        ("[scale]\nwebhook = \"http://\"\n", "scale.webhook"),
        ("[scale]\nthreshhold = 0.5\n", "threshhold"),
    ] {
        let err = Config::parse(&format!("{MINIMAL}\n{section}"))
            .expect_err("bad scale value must fail")
            .to_string();
        assert!(err.contains(key), "{err} should mention {key}");
    }
    // The environment reaches [scale] too.
    let env = [("CALLFLEET_SCALE_THRESHOLD".to_owned(), "0.7".to_owned())];
    let path = std::env::temp_dir().join(format!("cf-scale-{}.toml", std::process::id()));
    std::fs::write(&path, MINIMAL).expect("write config");
    let cfg = Config::load_with_env(Some(&path), env).expect("env override");
    let _ = std::fs::remove_file(&path);
    assert_eq!(cfg.scale.threshold, 0.7);
}
