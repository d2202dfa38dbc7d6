use std::net::SocketAddr;

use callfleet_lb::Role;
use callfleet_snapshots::Layout;

use super::*;

const SOURCE: &str = r#"
[node]
name = "main-a"
role = "main"
capacity = 300
[sip]
listen = "10.0.0.11:5060"
advertise = "203.0.113.11:5060"
realm = "acme"
tls_cert = "/etc/callfleet/tls/main-a-sip.pem"
tls_key = "/etc/callfleet/tls/main-a-sip.key"
tls_listen = "10.0.0.11:5071"
[http]
listen = "10.0.0.11:8080"
secret = "a-cluster-secret-of-at-least-32-chars!"
tls_cert = "/etc/callfleet/tls/main-a.pem"
tls_key = "/etc/callfleet/tls/main-a.key"
ca_file = "/etc/callfleet/tls/ca.pem"
operator_token_file = "/srv/state/main-a.operator-token"
[database]
url = "postgres://cf:pw@10.0.0.5/cf"
[carriers]
allow = ["198.51.100.0/24"]
[heartbeat]
interval = "1s"
[lb]
prefer_self = false
[media]
moh_dir = "/srv/moh"
rtp_ports = "30000-30999"
[lock]
urls = ["http://10.0.0.1:7070", "http://10.0.0.2:7070"]
"#;

#[test]
fn cluster_settings_keep_everything_but_the_node_identity_and_host_paths() {
    let cfg = Config::parse(SOURCE).expect("source config");
    let text = cluster_settings(&cfg).expect("settings");
    let keys: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    for gone in [
        "main-a",
        "10.0.0.11",
        "203.0.113.11",
        "/srv/moh",
        "/srv/state",
        "role",
        "advertise",
        "tls_cert",
        "tls_key",
        "tls_listen",
    ] {
        assert!(!keys.contains(gone), "{gone} left in:\n{text}");
    }
    for kept in [
        "postgres://cf:pw@10.0.0.5/cf",
        "a-cluster-secret-of-at-least-32-chars!",
        "198.51.100.0/24",
        "http://10.0.0.2:7070",
        "realm = \"acme\"",
        "capacity = 300",
        "prefer_self = false",
        "30000-30999",
        "interval = \"1s\"",
        "hysteresis = 0.05\n",
        "/etc/callfleet/tls/ca.pem",
    ] {
        assert!(text.contains(kept), "{kept} missing from:\n{text}");
    }
    // Without an identity the settings are not a node's config on their own.
    assert!(Config::parse(&text).is_err());
}

fn identity(role: Role, capacity: Option<u32>) -> Identity {
    Identity {
        name: "extra-e".into(),
        role,
        sip: "10.0.0.21:5060".parse().expect("addr"),
        http: "10.0.0.21:8080".parse().expect("addr"),
        capacity,
    }
}

#[test]
fn a_node_config_is_the_settings_plus_a_new_identity_and_the_installed_paths() {
    let cfg = Config::parse(SOURCE).expect("source config");
    let settings = cluster_settings(&cfg).expect("settings");
    let layout = Layout::new("/tmp/fresh");
    let (text, restored) =
        node_config(&settings, &identity(Role::Extra, None), &layout).expect("node config");
    assert_eq!(restored.node.name, "extra-e");
    assert_eq!(restored.node.role, Role::Extra);
    assert_eq!(
        restored.node.capacity, 300,
        "the snapshot's capacity by default"
    );
    assert_eq!(
        restored.sip.listen,
        "10.0.0.21:5060".parse::<SocketAddr>().expect("addr")
    );
    assert_eq!(restored.sip.advertise, None);
    assert_eq!(restored.http.listen.to_string(), "10.0.0.21:8080");
    assert_eq!(restored.http.secret, cfg.http.secret, "the secret as it is");
    assert_eq!(restored.database.url, cfg.database.url);
    assert_eq!(restored.lock.urls, cfg.lock.urls);
    assert_eq!(restored.sip.realm, "acme");
    assert!(!restored.lb.prefer_self);
    assert_eq!(restored.media.rtp_ports, cfg.media.rtp_ports);
    assert_eq!(restored.media.moh_dir, layout.moh_dir());
    assert_eq!(restored.media.prompts_dir, layout.prompts_dir());
    assert_eq!(restored.media.voicemail_dir, layout.voicemail_dir());
    assert_eq!(
        restored.operator_token_file(),
        layout.state_dir().join("extra-e.operator-token"),
        "the new node's own token file"
    );
    // What is written reads back the same.
    let again = Config::parse(&text).expect("written config parses");
    assert_eq!(again.node.name, "extra-e");
    let (_, bigger) =
        node_config(&settings, &identity(Role::Main, Some(40)), &layout).expect("node config");
    assert_eq!((bigger.node.role, bigger.node.capacity), (Role::Main, 40));
}

#[test]
fn a_bad_identity_is_refused_before_anything_is_installed() {
    let ok = Identity::parse("n", "extra", "10.0.0.5", None, None).expect("identity");
    assert_eq!(ok.sip.to_string(), "10.0.0.5:5060");
    assert_eq!(ok.http.to_string(), "10.0.0.5:8080");
    let ok = Identity::parse("n", "main", "[::1]:5070", Some("::1"), None).expect("v6");
    assert_eq!(
        (ok.sip.to_string(), ok.http.to_string()),
        ("[::1]:5070".into(), "[::1]:8080".into())
    );
    assert!(Identity::parse("n", "boss", "10.0.0.5", None, None).is_err());
    assert!(Identity::parse("n", "main", "node-5", None, None).is_err());
    assert!(Identity::parse("n", "main", "10.0.0.5", Some("10.0.0.5:http"), None).is_err());
    let cfg = Config::parse(SOURCE).expect("source config");
    let settings = cluster_settings(&cfg).expect("settings");
    let layout = Layout::new("/tmp/fresh");
    let mut bad = identity(Role::Extra, None);
    bad.name = "no spaces allowed".into();
    let err = node_config(&settings, &bad, &layout).expect_err("bad name");
    assert!(format!("{err:#}").contains("node.name"), "{err:#}");
    let err = node_config(&settings, &identity(Role::Extra, Some(0)), &layout).expect_err("0");
    assert!(format!("{err:#}").contains("node.capacity"), "{err:#}");
    assert!(node_config("not = [toml", &identity(Role::Extra, None), &layout).is_err());
}
