//! The cluster settings a snapshot carries, and a node's configuration made from them: a
//! node's config minus its identity (name, role, addresses) and its host paths (media
//! folders), and back, with a new identity and the paths of the restored install.

use std::net::{IpAddr, SocketAddr};

use anyhow::{bail, Context as _};
use callfleet_lb::Role;
use callfleet_snapshots::Layout;

use crate::config::Config;

/// Keys that belong to one node, never to a snapshot: `(section, key)`. A node's certificates
/// name its own addresses (and their files are not in the snapshot), so a restored node starts
/// without TLS until it is given its own; `http.ca_file` is the cluster's and stays.
const IDENTITY_KEYS: [(&str, &str); 11] = [
    ("node", "name"),
    ("node", "role"),
    ("sip", "listen"),
    ("sip", "advertise"),
    ("sip", "tls_listen"),
    ("sip", "tls_cert"),
    ("sip", "tls_key"),
    ("http", "listen"),
    ("http", "advertise"),
    ("http", "tls_cert"),
    ("http", "tls_key"),
];

/// Host paths, set by a restore to where it installs things (the operator token file is
/// also one node's own: each node writes its own token at every start).
const PATH_KEYS: [(&str, &str); 5] = [
    ("media", "moh_dir"),
    ("media", "prompts_dir"),
    ("media", "voicemail_dir"),
    ("records", "spool_dir"),
    ("http", "operator_token_file"),
];

/// The first lines of the settings file in a snapshot.
const SETTINGS_HEADER: &str =
    "# Cluster-wide settings of a callfleet snapshot: every key of the node it was made\n\
# from except the node's identity (node.name, node.role, sip and http addresses, its TLS\n\
# certificates and keys) and its host paths (media and spool folders, operator token\n\
# file). A restore adds the new node's identity and paths.\n\n";

/// The cluster-wide settings of `cfg` as TOML: every key, defaults spelled out, except the
/// identity and path keys.
pub fn cluster_settings(cfg: &Config) -> anyhow::Result<String> {
    let value = toml::Value::try_from(cfg).context("encode the configuration as TOML")?;
    let mut table = match value {
        toml::Value::Table(table) => table,
        _ => bail!("the configuration did not encode as a TOML table"),
    };
    for (section, key) in IDENTITY_KEYS.iter().chain(&PATH_KEYS) {
        if let Some(toml::Value::Table(t)) = table.get_mut(*section) {
            t.remove(*key);
        }
    }
    for (_, section) in table.iter_mut() {
        if let toml::Value::Table(t) = section {
            t.iter_mut().for_each(|(_, v)| shortest_float(v));
        }
    }
    let text = toml::to_string_pretty(&table).context("write the cluster settings")?;
    Ok(format!("{SETTINGS_HEADER}{}\n", text.trim_end()))
}

/// Writes a float key (an `f32` in the config) the way it was given: `0.05`, not the
/// `0.05000000074505806` its widening to `f64` prints.
fn shortest_float(value: &mut toml::Value) {
    if let toml::Value::Float(f) = value {
        if let Ok(short) = (*f as f32).to_string().parse::<f64>() {
            *f = short;
        }
    }
}

/// Who a restored node is.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub name: String,
    pub role: Role,
    pub sip: SocketAddr,
    pub http: SocketAddr,
    /// Overrides the capacity in the cluster settings.
    pub capacity: Option<u32>,
}

impl Identity {
    /// From the command line's text: `sip` and `http` are `IP` or `IP:PORT`; SIP defaults to
    /// port 5060, HTTP to the SIP address's IP and port 8080.
    pub fn parse(
        name: &str,
        role: &str,
        sip: &str,
        http: Option<&str>,
        capacity: Option<u32>,
    ) -> anyhow::Result<Self> {
        let role: Role = role.parse().context("--role")?;
        let sip = address(sip, 5060).context("--sip")?;
        let http = match http {
            Some(text) => address(text, 8080).context("--http")?,
            None => SocketAddr::new(sip.ip(), 8080),
        };
        Ok(Self {
            name: name.to_owned(),
            role,
            sip,
            http,
            capacity,
        })
    }
}

/// `10.0.0.5`, `10.0.0.5:5070`, `::1`, `[::1]:5070`.
fn address(text: &str, default_port: u16) -> anyhow::Result<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    match text.parse::<IpAddr>() {
        Ok(ip) => Ok(SocketAddr::new(ip, default_port)),
        Err(_) => bail!("{text:?} is not an IP address or IP:PORT"),
    }
}

/// The node's configuration: `settings` (a snapshot's cluster settings) with `identity` and
/// the media folders of `layout`. Returns the TOML text to write and the configuration it
/// parses to, checked as the node will check it.
pub fn node_config(
    settings: &str,
    identity: &Identity,
    layout: &Layout,
) -> anyhow::Result<(String, Config)> {
    let mut table: toml::Table =
        toml::from_str(settings).context("the snapshot's cluster settings are not valid TOML")?;
    let path = |p: std::path::PathBuf| toml::Value::String(p.display().to_string());
    let text = |s: String| toml::Value::String(s);
    let mut set = |section: &str, key: &str, value: toml::Value| -> anyhow::Result<()> {
        let entry = table
            .entry(section.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        match entry {
            toml::Value::Table(t) => {
                t.insert(key.to_owned(), value);
                Ok(())
            }
            _ => bail!("the snapshot's cluster settings have [{section}] as a plain value"),
        }
    };
    set("node", "name", text(identity.name.clone()))?;
    set("node", "role", text(identity.role.as_str().to_owned()))?;
    if let Some(capacity) = identity.capacity {
        set(
            "node",
            "capacity",
            toml::Value::Integer(i64::from(capacity)),
        )?;
    }
    set("sip", "listen", text(identity.sip.to_string()))?;
    set("http", "listen", text(identity.http.to_string()))?;
    set("media", "moh_dir", path(layout.moh_dir()))?;
    set("media", "prompts_dir", path(layout.prompts_dir()))?;
    set("media", "voicemail_dir", path(layout.voicemail_dir()))?;
    set(
        "records",
        "spool_dir",
        path(layout.state_dir().join("spool")),
    )?;
    let token_file = format!("{}.operator-token", identity.name);
    set(
        "http",
        "operator_token_file",
        path(layout.state_dir().join(token_file)),
    )?;
    let body = toml::to_string_pretty(&table).context("write the node's configuration")?;
    let out = format!(
        "# callfleet node {}, restored from a snapshot. Reference: docs/config.md\n\n{}\n",
        identity.name,
        body.trim_end()
    );
    let cfg = Config::parse(&out).context("the restored node's configuration is not valid")?;
    Ok((out, cfg))
}
