//! Admin forms: the urlencoded fields of a POST, checked and turned into store rows. Pure: no
//! I/O, so every rule has a unit test. A value that breaks a rule is an [`Invalid`] naming the
//! field and the problem, which the page shows above the form (HTTP 422).

use std::fmt;
use std::net::IpAddr;

use callfleet_store::{Agent, Carrier, Member, Queue, UserRole, VipCaller};

/// Queue strategies (the schema accepts these only).
pub const STRATEGIES: [&str; 7] = [
    "ringall",
    "leastrecent",
    "fewestcalls",
    "random",
    "rrmemory",
    "linear",
    "wrandom",
];

/// What a queue does with a caller at its maximum wait.
pub const FALLBACKS: [&str; 3] = ["hangup", "voicemail", "queue"];

/// Longest extension (agent or phone), as `callfleet device add` accepts.
pub const MAX_EXT: usize = 32;
/// Longest queue, carrier or user name, and caller number.
pub const MAX_NAME: usize = 64;
/// Longest display name.
pub const MAX_DISPLAY: usize = 100;
/// Shortest panel password, as `callfleet user add` asks.
pub const MIN_PASSWORD: usize = 8;
/// Longest password or PIN accepted (argon2 and digests take any length; forms need a bound).
pub const MAX_PASSWORD: usize = 256;
/// Longest agent PIN (dialled as DTMF digits).
pub const MAX_PIN: usize = 16;
/// Highest tier (0 is the best).
pub const MAX_TIER: i64 = 1000;
/// Highest member weight (`wrandom`).
pub const MAX_WEIGHT: i64 = 1000;
/// Highest daily limit.
pub const MAX_DAILY_LIMIT: i64 = 1_000_000;
/// One day in milliseconds: the upper bound of every queue time.
pub const DAY_MS: i64 = 86_400_000;

/// A form field that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Invalid {
    /// The field, as its label shows it.
    pub field: &'static str,
    /// What is wrong, in words for the admin.
    pub problem: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

fn invalid(field: &'static str, problem: impl Into<String>) -> Invalid {
    Invalid {
        field,
        problem: problem.into(),
    }
}

/// The fields of an urlencoded form body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    pairs: Vec<(String, String)>,
}

impl Fields {
    /// Parses `application/x-www-form-urlencoded` bytes.
    pub fn parse(body: &[u8]) -> Result<Fields, Invalid> {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
            .map(|pairs| Fields { pairs })
            .map_err(|_| invalid("form", "the request body is not an HTML form"))
    }

    /// Builds fields from pairs (tests, and pages that re-show what was sent).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Fields {
        Fields {
            pairs: pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    /// The first value of `key`, trimmed; `""` when absent.
    pub fn get(&self, key: &str) -> &str {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .unwrap_or("")
    }

    /// The first value of `key` as sent (passwords and PINs keep their spaces).
    pub fn raw(&self, key: &str) -> &str {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// Whether checkbox `key` is ticked (browsers send `on`; absent means unticked).
    pub fn checked(&self, key: &str) -> bool {
        matches!(self.get(key), "on" | "1" | "true" | "yes")
    }
}

/// An identifier: 1 to `max` ASCII letters, digits and `extra` characters.
fn ident(field: &'static str, value: &str, max: usize, extra: &str) -> Result<String, Invalid> {
    if value.is_empty() {
        return Err(invalid(field, "required"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || extra.contains(c);
    if value.len() > max || !value.chars().all(allowed) {
        let extra: Vec<String> = extra.chars().map(|c| format!("'{c}'")).collect();
        return Err(invalid(
            field,
            format!(
                "use 1 to {max} letters, digits, {} (got {value:?})",
                extra.join(", ")
            ),
        ));
    }
    Ok(value.to_owned())
}

/// An agent or phone extension: what phones put in the user part of a SIP URI.
pub fn extension(field: &'static str, value: &str) -> Result<String, Invalid> {
    ident(field, value, MAX_EXT, "-_.+")
}

/// A queue name: callers dial it, so the same characters as an extension.
pub fn queue_name(value: &str) -> Result<String, Invalid> {
    ident("name", value, MAX_NAME, "-_.+")
}

/// Free text shown to people: at most [`MAX_DISPLAY`] characters, no control characters.
fn display(field: &'static str, value: &str) -> Result<String, Invalid> {
    if value.chars().count() > MAX_DISPLAY {
        return Err(invalid(field, format!("at most {MAX_DISPLAY} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "no control characters"));
    }
    Ok(value.to_owned())
}

/// A whole number in `min..=max`; `default` when the field is empty (required without one).
fn int(
    field: &'static str,
    value: &str,
    min: i64,
    max: i64,
    default: Option<i64>,
) -> Result<i64, Invalid> {
    if value.is_empty() {
        return default.ok_or_else(|| invalid(field, "required"));
    }
    let n: i64 = value
        .parse()
        .map_err(|_| invalid(field, format!("{value:?} is not a whole number")))?;
    if n < 0 && min >= 0 {
        return Err(invalid(field, format!("must not be negative (got {n})")));
    }
    if !(min..=max).contains(&n) {
        return Err(invalid(
            field,
            format!("must be between {min} and {max} (got {n})"),
        ));
    }
    Ok(n)
}

/// A queue's rules from its form; `name` comes from the form (new queue) or the page (edit).
/// The fallback target must name an agent (voicemail) or another queue (queue); whether it
/// exists is checked against the database by the page.
pub fn queue(f: &Fields, name: &str) -> Result<Queue, Invalid> {
    let name = queue_name(name)?;
    let strategy = f.get("strategy");
    if !STRATEGIES.contains(&strategy) {
        return Err(invalid(
            "strategy",
            format!(
                "unknown strategy {strategy:?}: use one of {}",
                STRATEGIES.join(", ")
            ),
        ));
    }
    let ring_timeout_ms = int(
        "ring timeout (ms)",
        f.get("ring_timeout_ms"),
        1000,
        600_000,
        None,
    )?;
    let max_wait_ms = int("max wait (ms)", f.get("max_wait_ms"), 0, DAY_MS, None)?;
    let announce_interval_ms = int(
        "announce interval (ms)",
        f.get("announce_interval_ms"),
        0,
        3_600_000,
        Some(0),
    )?;
    let wrapup_ms = int("wrap-up (ms)", f.get("wrapup_ms"), 0, 3_600_000, Some(0))?;
    let moh_class = match f.get("moh_class") {
        "" => "default".to_owned(),
        class => ident("music on hold class", class, MAX_NAME, "-_.")?,
    };
    let fallback = f.get("fallback");
    if !FALLBACKS.contains(&fallback) {
        return Err(invalid(
            "fallback",
            format!(
                "unknown fallback {fallback:?}: use one of {}",
                FALLBACKS.join(", ")
            ),
        ));
    }
    let target = f.get("fallback_target");
    let fallback_target = match fallback {
        "hangup" => None,
        _ if target.is_empty() => {
            return Err(invalid(
                "fallback target",
                format!(
                    "required for fallback {fallback:?}: {}",
                    if fallback == "voicemail" {
                        "the agent whose mailbox records the caller"
                    } else {
                        "the queue the caller enters next"
                    }
                ),
            ))
        }
        "queue" if target == name => {
            return Err(invalid(
                "fallback target",
                "a queue cannot fall back to itself",
            ))
        }
        "queue" => Some(queue_name(target).map_err(|e| invalid("fallback target", e.problem))?),
        _ => Some(extension("fallback target", target)?),
    };
    Ok(Queue {
        name,
        strategy: strategy.to_owned(),
        ring_timeout_ms,
        max_wait_ms,
        announce_interval_ms,
        moh_class,
        wrapup_ms,
        fallback: fallback.to_owned(),
        fallback_target,
        rr_last: None,
    })
}

/// A membership of `queue` from the members form.
pub fn member(f: &Fields, queue: &str) -> Result<Member, Invalid> {
    Ok(Member {
        queue: queue.to_owned(),
        agent: extension("agent", f.get("agent"))?,
        tier: int("tier", f.get("tier"), 0, MAX_TIER, Some(0))?,
        vip_allowed: f.checked("vip_allowed"),
        weight: int("weight", f.get("weight"), 0, MAX_WEIGHT, Some(1))?,
        position: int(
            "position",
            f.get("position"),
            -1_000_000,
            1_000_000,
            Some(0),
        )?,
    })
}

/// A VIP caller of `queue`: the caller's number as it arrives (the From user).
pub fn vip(f: &Fields, queue: &str) -> Result<VipCaller, Invalid> {
    Ok(VipCaller {
        number: ident("number", f.get("number"), MAX_NAME, "+-_.*#")?,
        queue: queue.to_owned(),
    })
}

/// A new agent (or new settings for one): extension, name, PIN (digits, dialled as DTMF),
/// daily limit (empty = none). Stored with the PIN's hash only.
pub fn agent(f: &Fields, now_ms: i64) -> Result<Agent, Invalid> {
    let ext = extension("extension", f.get("extension"))?;
    let name = display("name", f.get("name"))?;
    let pin = f.get("pin");
    if pin.is_empty() || pin.len() > MAX_PIN || !pin.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid(
            "PIN",
            format!("use 1 to {MAX_PIN} digits (agents dial it on the phone's keypad)"),
        ));
    }
    let daily_limit = match f.get("daily_limit") {
        "" => None,
        v => Some(int("daily limit", v, 0, MAX_DAILY_LIMIT, None)?),
    };
    let hash = callfleet_store::pin::hash(&ext, pin).map_err(|e| invalid("PIN", e.to_string()))?;
    let mut agent = Agent::new(&ext, &name, &hash, now_ms);
    agent.daily_limit = daily_limit;
    Ok(agent)
}

/// A phone from the devices form; the node turns the password into HA1 digests.
#[derive(Clone, PartialEq, Eq)]
pub struct NewDevice {
    /// Extension (the digest user name).
    pub extension: String,
    /// Display name.
    pub name: String,
    /// The password the phone registers with (never stored).
    pub password: String,
}

impl fmt::Debug for NewDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewDevice")
            .field("extension", &self.extension)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A phone from the devices form.
pub fn device(f: &Fields) -> Result<NewDevice, Invalid> {
    let extension = extension("extension", f.get("extension"))?;
    let name = display("name", f.get("name"))?;
    let password = f.raw("password");
    if password.is_empty() {
        return Err(invalid("password", "required"));
    }
    if password.len() > MAX_PASSWORD {
        return Err(invalid("password", format!("at most {MAX_PASSWORD} bytes")));
    }
    Ok(NewDevice {
        extension,
        name,
        password: password.to_owned(),
    })
}

/// A panel user from the users form; the page hashes the password (argon2id).
#[derive(Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Login name.
    pub name: String,
    /// Admin or supervisor.
    pub role: UserRole,
    /// The password in clear, hashed before it is stored.
    pub password: String,
    /// The user's own phone (listen-in dials it).
    pub device: Option<String>,
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// A panel user from the users form.
pub fn user(f: &Fields) -> Result<NewUser, Invalid> {
    let name = ident("name", f.get("name"), MAX_NAME, "-_.@")?;
    let role: UserRole = f
        .get("role")
        .parse()
        .map_err(|_| invalid("role", "use admin or supervisor"))?;
    let password = f.raw("password");
    if password.chars().count() < MIN_PASSWORD {
        return Err(invalid(
            "password",
            format!("too short: use at least {MIN_PASSWORD} characters"),
        ));
    }
    if password.len() > MAX_PASSWORD {
        return Err(invalid("password", format!("at most {MAX_PASSWORD} bytes")));
    }
    let device = match f.get("device") {
        "" => None,
        d => Some(extension("phone", d)?),
    };
    Ok(NewUser {
        name,
        role,
        password: password.to_owned(),
        device,
    })
}

/// A carrier from the carriers form, its network in canonical CIDR form.
pub fn carrier(f: &Fields, now_ms: i64) -> Result<Carrier, Invalid> {
    Ok(Carrier {
        name: ident("name", f.get("name"), MAX_NAME, "-_.")?,
        network: cidr(f.get("network"))?,
        created_at_ms: now_ms,
    })
}

/// A network in CIDR notation (`203.0.113.0/24`, `2001:db8::/32`; a bare address is one
/// host), returned canonical: host bits cleared, so the text shows what is admitted.
pub fn cidr(value: &str) -> Result<String, Invalid> {
    const FIELD: &str = "network";
    let bad = || {
        invalid(
            FIELD,
            format!(
                "{value:?} is not a network: write ADDRESS/PREFIX, e.g. 203.0.113.0/24 or 2001:db8::/32"
            ),
        )
    };
    if value.is_empty() {
        return Err(invalid(FIELD, "required"));
    }
    let (addr, prefix) = match value.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (value, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| bad())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix: u32 = match prefix {
        None => max,
        Some(p) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => {
            p.parse().map_err(|_| bad())?
        }
        Some(_) => return Err(bad()),
    };
    if prefix > max {
        return Err(invalid(
            FIELD,
            format!("prefix /{prefix} is longer than /{max}"),
        ));
    }
    let net = match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            IpAddr::from(std::net::Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            IpAddr::from(std::net::Ipv6Addr::from(u128::from(v6) & mask))
        }
    };
    Ok(format!("{net}/{prefix}"))
}
