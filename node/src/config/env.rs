//! `CALLFLEET_<SECTION>_<KEY>` environment overrides of config keys.

use super::ConfigError;

/// Prefix of the environment variables that override config keys.
pub const ENV_PREFIX: &str = "CALLFLEET_";

/// The config's sections, as `CALLFLEET_<SECTION>_<KEY>` names them (lower-cased).
const SECTIONS: [&str; 18] = [
    "node",
    "sip",
    "http",
    "database",
    "carriers",
    "heartbeat",
    "lb",
    "media",
    "call",
    "registrar",
    "lock",
    "hotdesk",
    "alerts",
    "scale",
    "records",
    "shed",
    "provisioning",
    "outbound",
];

/// Applies `CALLFLEET_<SECTION>_<KEY>=VALUE` overrides to the parsed file; returns the names of
/// the variables applied, sorted. A value is read as a TOML value when it is one (`200`,
/// `true`, `["a", "b"]`, `"quoted"`), else as a string (`postgres://…`, `10.0.0.5:5060`, `2s`).
pub(super) fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<String>, ConfigError> {
    let mut applied = Vec::new();
    for (var, value) in env {
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let rest = rest.to_ascii_lowercase();
        let Some((section, key)) = rest.split_once('_') else {
            continue;
        };
        if !SECTIONS.contains(&section) {
            continue;
        }
        if key.is_empty() {
            return Err(ConfigError::Env {
                var,
                problem: "name a key after the section, e.g. CALLFLEET_NODE_NAME",
            });
        }
        let entry = table
            .entry(section.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(section_table) = entry.as_table_mut() else {
            return Err(ConfigError::Env {
                var,
                problem: "the config file has this section as a plain value",
            });
        };
        section_table.insert(key.to_owned(), env_value(&value));
        applied.push(var);
    }
    applied.sort();
    Ok(applied)
}

/// `value` as TOML when it parses as one, else as a string.
fn env_value(value: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()))
}
