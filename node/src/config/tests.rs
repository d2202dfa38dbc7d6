use super::*;
use crate::registrar::digest::Algorithm;

const MINIMAL: &str = r#"
[node]
name = "main-a"
role = "main"
capacity = 500
[sip]
listen = "127.0.0.11:5060"
[http]
listen = "127.0.0.11:8080"
secret = "config-test-cluster-secret-0123456789ab"
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
    assert_eq!(cfg.carriers.register_from, RegisterFrom::Anywhere);
    assert!(cfg.lb.prefer_self);
    assert_eq!(cfg.sip_advertise(), "127.0.0.11:5060".parse().unwrap());
}

#[test]
fn register_from_reads_its_two_values_only() {
    let with = |v: &str| {
        Config::parse(&MINIMAL.replace("[carriers]", &format!("[carriers]\nregister_from = {v}")))
    };
    assert_eq!(
        with("\"listed\"").expect("listed").carriers.register_from,
        RegisterFrom::Listed
    );
    assert_eq!(
        with("\"anywhere\"")
            .expect("anywhere")
            .carriers
            .register_from,
        RegisterFrom::Anywhere
    );
    assert!(with("\"proxies\"").is_err());
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
fn the_shipped_example_config_is_valid_once_its_secret_is_set() {
    let text = include_str!("../../callfleet.example.toml");
    let err = Config::parse(text)
        .expect_err("the example's placeholder secret is refused")
        .to_string();
    assert!(
        err.contains("http.secret") && err.contains("placeholder"),
        "{err}"
    );
    let text = text.replace(
        callfleet_sign::EXAMPLE_SECRET,
        "4f1c0e9a7b2d4c6e8f0a1b3c5d7e9f1a3b5c7d9e1f3a5b7c",
    );
    let cfg = Config::parse(&text).expect("node/callfleet.example.toml parses");
    assert_eq!(
        cfg.media.prompts_dir,
        PathBuf::from("/usr/share/callfleet/prompts")
    );
    let t = &cfg.trace;
    assert!(t.enabled && t.hep.is_none());
    assert_eq!((t.budget(), t.hep_id), (5_000_000, 2001));
    // Its commented HEP target is a valid one.
    let hep = text.replace("# hep = ", "hep = ");
    let cfg = Config::parse(&hep).expect("the example with HEP on parses");
    assert_eq!(
        cfg.trace.hep_target(),
        Some("10.0.0.50:9060".parse().unwrap())
    );
}

#[test]
fn voicemail_quota_defaults_parses_and_refuses_zero() {
    let cfg = Config::parse(MINIMAL).expect("parses");
    assert_eq!(
        (cfg.media.voicemail_max_messages, cfg.media.voicemail_max_mb),
        (100, 100)
    );
    let text = MINIMAL.replace(
        "[sip]\n",
        "[media]\nvoicemail_max_messages = 3\nvoicemail_max_mb = 7\n[sip]\n",
    );
    let cfg = Config::parse(&text).expect("parses");
    assert_eq!(
        (cfg.media.voicemail_max_messages, cfg.media.voicemail_max_mb),
        (3, 7)
    );
    for (key, line) in [
        ("media.voicemail_max_messages", "voicemail_max_messages = 0"),
        ("media.voicemail_max_mb", "voicemail_max_mb = 0"),
    ] {
        let text = MINIMAL.replace("[sip]\n", &format!("[media]\n{line}\n[sip]\n"));
        let err = Config::parse(&text).expect_err("zero").to_string();
        assert!(err.contains(key), "{err}");
    }
}

#[test]
fn guessing_limits_default_and_parse() {
    let cfg = Config::parse(MINIMAL).expect("parses");
    let (r, h) = (&cfg.registrar, &cfg.hotdesk);
    let min = |m: u64| Duration::from_secs(60 * m);
    assert_eq!(
        (r.max_failures, r.failure_window, r.ban, r.max_ban),
        (10, min(10), min(10), min(24 * 60))
    );
    assert_eq!(
        (h.max_failures, h.failure_window, h.lockout, h.max_lockout),
        (5, min(15), min(15), min(24 * 60))
    );
    let text = format!(
        "{MINIMAL}\n[registrar]\nmax_failures = 3\nfailure_window = \"30s\"\nban = \"1m\"\nmax_ban = \"2h\"\n\
         [hotdesk]\nmax_failures = 2\nfailure_window = \"1m\"\nlockout = \"5m\"\nmax_lockout = \"1h\"\n"
    );
    let cfg = Config::parse(&text).expect("parses");
    assert_eq!(
        (
            cfg.registrar.max_failures,
            cfg.registrar.ban,
            cfg.registrar.max_ban
        ),
        (3, min(1), min(120))
    );
    assert_eq!((cfg.hotdesk.max_failures, cfg.hotdesk.lockout), (2, min(5)));
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
        ("[registrar]\nmax_failures = 0\n", "registrar.max_failures"),
        ("[registrar]\nban = \"0s\"\n", "registrar.ban"),
        (
            "[registrar]\nfailure_window = \"0s\"\n",
            "registrar.failure_window",
        ),
        (
            "[registrar]\nban = \"2h\"\nmax_ban = \"1h\"\n",
            "registrar.max_ban",
        ),
        ("[hotdesk]\nmax_failures = 0\n", "hotdesk.max_failures"),
        ("[hotdesk]\nlockout = \"0s\"\n", "hotdesk.lockout"),
        ("[hotdesk]\nmax_lockout = \"1m\"\n", "hotdesk.max_lockout"),
        ("[hotdesk]\npin = 1\n", "pin"),
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

#[test]
fn sip_domains() {
    let cfg = Config::parse(MINIMAL).expect("parses");
    assert!(
        cfg.sip.domains.is_empty(),
        "no domain by default, not even the realm"
    );
    let text = MINIMAL.replace(
        "[sip]\n",
        "[sip]\nrealm = \"pbx.example.com\"\ndomains = [\"pbx.example.com\", \"callcentre\", \"sip-1.example.org\"]\n",
    );
    let cfg = Config::parse(&text).expect("parses");
    assert_eq!(
        cfg.sip.domains,
        vec!["pbx.example.com", "callcentre", "sip-1.example.org"]
    );
    for bad in [
        "",
        "PBX.example.com",
        "pbx.example.com:5060",
        "sip:pbx.example.com",
        "1002@pbx.example.com",
        "pbx.example.com.",
        "pbx..example.com",
        "-pbx.example.com",
        "pbx-.example.com",
        "pbx example.com",
        "pbx_example.com",
        "127.0.0.1",
        "10.1.2.3",
        "[::1]",
        "::1",
    ] {
        let text = MINIMAL.replace("[sip]\n", &format!("[sip]\ndomains = [{bad:?}]\n"));
        let err = Config::parse(&text).expect_err(bad).to_string();
        assert!(err.contains("sip.domains"), "{bad:?}: {err}");
    }
    let long = format!("{}.com", "a".repeat(64));
    assert!(crate::config::sip::domain_problem(&long).is_some());
    let longest = [
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(61),
    ]
    .join(".");
    assert_eq!(longest.len(), 253);
    assert_eq!(crate::config::sip::domain_problem(&longest), None);
    assert!(crate::config::sip::domain_problem(&format!("{longest}e")).is_some());
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
            ("CALLFLEET_HTTP_SECRET", "0123456789abcdef0123456789abcdef"),
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
        ("CALLFLEET_HTTP_SECRET", "0123456789abcdef0123456789abcdef"),
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
fn a_missing_or_weak_cluster_secret_is_refused() {
    let line = "secret = \"config-test-cluster-secret-0123456789ab\"\n";
    assert!(MINIMAL.contains(line));
    // (replacement of the secret line, what the error says)
    let cases = [
        (String::new(), "the cluster secret is required"),
        (
            "secret = \"change-me\"\n".to_owned(),
            "has 9 characters; it needs at least 32",
        ),
        (
            "secret = \"0123456789abcdef0123456789abcde\"\n".to_owned(),
            "has 31 characters",
        ),
        (
            format!("secret = \"{}\"\n", callfleet_sign::EXAMPLE_SECRET),
            "placeholder",
        ),
    ];
    for (replacement, says) in cases {
        let err = Config::parse(&MINIMAL.replace(line, &replacement))
            .expect_err("refused")
            .to_string();
        assert!(err.contains("http.secret") && err.contains(says), "{err}");
    }
    let cfg = Config::parse(MINIMAL).expect("strong secret");
    let signer = callfleet_sign::Signer::new(cfg.cluster_key());
    let verifier = callfleet_sign::Verifier::new(
        callfleet_sign::ClusterKey::new("config-test-cluster-secret-0123456789ab"),
        callfleet_sign::WINDOW,
    );
    let header = signer.sign_now("POST", "/x", b"");
    assert_eq!(
        verifier.verify(
            header.as_bytes(),
            "POST",
            "/x",
            b"",
            callfleet_sign::now_ms()
        ),
        Ok(())
    );
}

#[test]
fn alerts_are_typed_and_checked() {
    let full = format!(
        "{MINIMAL}\n[alerts]\ninterval = \"2s\"\ntime_zone = \"Europe/Paris\"\n\
         [alerts.email]\nserver = \"smtp.example.com\"\nfrom = \"cf <cf@example.com>\"\n\
         to = [\"oncall@example.com\"]\ntls = \"starttls\"\nca_file = \"/etc/callfleet/smtp-ca.pem\"\n\
         [[alerts.webhook]]\nurl = \"https://hooks.example.com/x\"\nsecret = \"0123456789abcdef\"\n\
         min_severity = \"critical\"\n\
         [[alerts.webhook]]\nurl = \"http://10.0.0.9:9000/sms\"\nsecret = \"fedcba9876543210\"\n"
    );
    let cfg = Config::parse(&full).expect("alerts config parses");
    assert_eq!(cfg.alerts.interval, Duration::from_secs(2));
    let email = cfg.alerts.email.as_ref().expect("email");
    assert_eq!((email.port, email.tls), (587, SmtpTls::Starttls));
    assert_eq!(
        email.ca_file.as_deref(),
        Some(std::path::Path::new("/etc/callfleet/smtp-ca.pem"))
    );
    assert_eq!(cfg.alerts.webhook.len(), 2);
    assert_eq!(
        cfg.alerts.webhook[0].min_severity,
        callfleet_store::Severity::Critical
    );
    assert_eq!(
        Config::parse(MINIMAL)
            .expect("minimal")
            .alerts
            .webhook
            .len(),
        0
    );

    let bad = [
        ("[alerts]\nrepeat = \"1h\"\n", "repeat"),
        ("[alerts.email]\nserver = \"s\"\nfrom = \"a@b.c\"\nto = [\"x@y.z\"]\nport = 25\nhost = \"h\"\n", "host"),
        ("[alerts]\ntime_zone = \"Mars/Olympus\"\n", "alerts.open_hours"),
        ("[alerts]\nopen_hours = \"18:00-08:00\"\n", "alerts.open_hours"),
        ("[alerts]\ndisk_warning_pct = 96.0\n", "alerts.disk_warning_pct"),
        ("[alerts]\nservice_level_target = 80.0\n", "alerts.service_level_target"),
        ("[alerts.email]\nserver = \"s\"\nfrom = \"not an address\"\nto = [\"x@y.z\"]\n", "alerts.email.from"),
        ("[alerts.email]\nserver = \"s\"\nfrom = \"a@b.c\"\nto = []\n", "alerts.email.to"),
        ("[alerts.email]\nserver = \"s\"\nfrom = \"a@b.c\"\nto = [\"x@y.z\"]\nusername = \"u\"\n", "alerts.email.username"),
        ("[alerts.email]\nserver = \"s\"\nfrom = \"a@b.c\"\nto = [\"x@y.z\"]\ntls = \"none\"\nca_file = \"/ca.pem\"\n", "alerts.email.ca_file"),
        ("[alerts.email]\nserver = \"s\"\nfrom = \"a@b.c\"\nto = [\"x@y.z\"]\nca_file = \"\"\n", "alerts.email.ca_file"),
        ("[[alerts.webhook]]\nurl = \"ftp://x/y\"\nsecret = \"0123456789abcdef\"\n", "alerts.webhook.url"),
        ("[[alerts.webhook]]\nurl = \"https://x/y\"\nsecret = \"short\"\n", "alerts.webhook.secret"),
        ("[[alerts.webhook]]\nurl = \"https://x/y\"\nsecret = \"0123456789abcdef\"\nmin_severity = \"page\"\n", "page"),
    ];
    for (extra, needle) in bad {
        let err = Config::parse(&format!("{MINIMAL}\n{extra}"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(needle), "{extra:?}: {err:?}");
    }
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

#[test]
fn tls_is_off_by_default_and_keys_come_in_pairs() {
    let cfg = Config::parse(MINIMAL).expect("minimal config parses");
    assert!(!cfg.http_tls());
    assert_eq!(cfg.http_scheme(), "http");
    assert_eq!(cfg.sip_tls_listen(), None);

    let on = MINIMAL
        .replace(
            "listen = \"127.0.0.11:8080\"",
            "listen = \"127.0.0.11:8080\"\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\nca_file = \"/ca.pem\"",
        )
        .replace(
            "listen = \"127.0.0.11:5060\"",
            "listen = \"127.0.0.11:5060\"\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"",
        );
    let cfg = Config::parse(&on).expect("TLS config parses");
    assert_eq!(cfg.http_scheme(), "https");
    assert_eq!(
        cfg.sip_tls_listen(),
        Some("127.0.0.11:5061".parse().unwrap())
    );
    assert_eq!(
        cfg.sip_tls_advertise(),
        Some("127.0.0.11:5061".parse().unwrap())
    );

    // (replace, with, key named in the error)
    let cases = [
        ("tls_key = \"/k.pem\"\nca_file", "ca_file", "http.tls_key"),
        ("tls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\nca_file", "tls_key = \"/k.pem\"\nca_file", "http.tls_cert"),
        (
            "listen = \"127.0.0.11:5060\"\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"",
            "listen = \"127.0.0.11:5060\"\ntls_cert = \"/c.pem\"",
            "sip.tls_key",
        ),
        (
            "listen = \"127.0.0.11:5060\"\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"",
            "listen = \"127.0.0.11:5060\"\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\ntls_listen = \"127.0.0.11:5060\"",
            "sip.tls_listen",
        ),
        (
            "listen = \"127.0.0.11:5060\"\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"",
            "listen = \"127.0.0.11:5060\"\ntls_listen = \"127.0.0.11:5062\"",
            "sip.tls_listen",
        ),
    ];
    for (from, to, key) in cases {
        assert!(on.contains(from), "{from}");
        let err = Config::parse(&on.replacen(from, to, 1))
            .expect_err("must fail")
            .to_string();
        assert!(err.contains(key), "{err} should name {key}");
    }
}

#[test]
fn tcp_connection_caps_default_and_are_checked() {
    let cfg = Config::parse(MINIMAL).expect("minimal config parses");
    assert_eq!(
        (cfg.sip.tcp_max_per_source, cfg.sip.tcp_max_connections),
        (32, 4096)
    );
    let with = |keys: &str| MINIMAL.replace("[sip]\n", &format!("[sip]\n{keys}\n"));
    let cfg = Config::parse(&with("tcp_max_connections = 100")).expect("parses");
    assert_eq!(cfg.sip.tcp_max_connections, 100);
    for (keys, key) in [
        ("tcp_max_per_source = 0", "sip.tcp_max_per_source"),
        ("tcp_max_connections = 0", "sip.tcp_max_connections"),
    ] {
        let err = Config::parse(&with(keys))
            .expect_err("a cap that cannot hold")
            .to_string();
        assert!(err.contains(key), "{err} should name {key}");
    }
}

#[test]
fn shed_thresholds_default_from_the_refuse_threshold() {
    let cfg = Config::parse(MINIMAL).expect("minimal config parses");
    let t = cfg.shed.thresholds(cfg.lb.refuse_cpu);
    assert_eq!(t.cpu, [70.0, 85.0, 95.0]);
    assert_eq!(t.load, [150.0, 200.0]);
    assert_eq!(t.calls, [70.0, 85.0]);
    assert_eq!(cfg.shed.cpu_window, Duration::from_secs(10));
    assert_eq!(cfg.shed.retry_after, Duration::from_secs(30));
    assert_eq!(cfg.shed.panel_interval, Duration::from_secs(5));
    // A lowered refuse threshold lowers levels 1 and 2 with it, as before `[shed]` existed.
    let low = cfg.shed.thresholds(47.5);
    assert_eq!(low.cpu, [35.0, 42.5, 47.5]);
    // Set ones are kept, but never above the refuse threshold.
    let text = format!("{MINIMAL}[shed]\ncpu = [60.0, 90.0]\nload_per_core = [1.0, 3.0]\n");
    let cfg = Config::parse(&text).expect("shed section parses");
    assert_eq!(cfg.shed.thresholds(80.0).cpu, [60.0, 80.0, 80.0]);
    assert_eq!(cfg.shed.thresholds(80.0).load, [100.0, 300.0]);
}

#[test]
fn bad_shed_keys_are_refused_by_name() {
    let cases = [
        ("cpu = [90.0, 80.0]", "shed.cpu"),
        ("cpu = [0.0, 80.0]", "shed.cpu"),
        ("load_per_core = [2.0, 1.0]", "shed.load_per_core"),
        ("calls = [-1.0, 80.0]", "shed.calls"),
        ("hysteresis = 60.0", "shed.hysteresis"),
        ("cpu_window = \"0s\"", "shed.cpu_window"),
        ("retry_after = \"0s\"", "shed.retry_after"),
        ("retry_after = \"2h\"", "shed.retry_after"),
        ("panel_interval = \"0s\"", "shed.panel_interval"),
    ];
    for (line, key) in cases {
        let text = format!("{MINIMAL}[shed]\n{line}\n");
        let err = Config::parse(&text).expect_err(line).to_string();
        assert!(err.contains(key), "{line}: {err}");
    }
}

#[test]
fn outbound_is_off_by_default_and_checked() {
    let cfg = Config::parse(MINIMAL).expect("parses");
    assert!(!cfg.outbound.enabled());
    assert_eq!(cfg.outbound.ring_timeout, Duration::from_secs(60));
    assert_eq!(cfg.outbound.international_prefix, "00");
    let trunk = "[outbound]\ntrunk = \"sip.carrier.example:5060\"\ncaller_id = \"+4930555000\"\n";
    let cfg = Config::parse(&format!(
        "{MINIMAL}{trunk}username = \"u\"\npassword = \"p\"\n"
    ))
    .expect("a trunk with credentials parses");
    assert!(cfg.outbound.enabled());
    assert_eq!(cfg.outbound.username.as_deref(), Some("u"));
    for (extra, key) in [
        (
            "[outbound]\ntrunk = \"x:5060\"\ncallerid = \"+4930555000\"\n",
            "callerid",
        ),
        ("[outbound]\ntrunk = \"x:5060\"\n", "outbound.caller_id"),
        (
            "[outbound]\ntrunk = \"x\"\ncaller_id = \"+4930555000\"\n",
            "outbound.trunk",
        ),
        (
            "[outbound]\ntrunk = \"x:0\"\ncaller_id = \"+4930555000\"\n",
            "outbound.trunk",
        ),
        (
            "[outbound]\ntrunk = \"x:5060\"\ncaller_id = \"030555\"\n",
            "outbound.caller_id",
        ),
        (
            "[outbound]\nusername = \"u\"\npassword = \"p\"\n",
            "outbound.trunk",
        ),
        (&format!("{trunk}username = \"u\"\n"), "outbound.username"),
        (
            &format!("{trunk}access_code = \"9a\"\n"),
            "outbound.access_code",
        ),
        (
            &format!("{trunk}ring_timeout = \"0s\"\n"),
            "outbound.ring_timeout",
        ),
    ] {
        let err = Config::parse(&format!("{MINIMAL}{extra}"))
            .expect_err("must fail")
            .to_string();
        assert!(err.contains(key), "{err} should name {key}");
    }
}
