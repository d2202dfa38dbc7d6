//! Admin forms: the urlencoded fields of a POST, checked and turned into store rows. Pure: no
//! I/O, so every rule has a unit test. Every field that breaks a rule is an [`Invalid`] naming
//! the field (its `name` in the form) and the problem; a form's [`Problems`] list them all,
//! and the page shows each next to its field (HTTP 422).
//!
//! Durations are typed in seconds (up to three decimals) and stored in milliseconds: the
//! conversion happens here, at the form's edge ([`seconds`], [`parse_seconds`]).

use std::fmt;
use std::net::IpAddr;

use callfleet_store::{
    Agent, Carrier, Fallback, Member, Queue, RecordingPolicy, UserRole, VipCaller,
};

use crate::names::{self, Kind};

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
/// Lowest and highest member position (`linear`).
pub const MAX_POSITION: i64 = 1_000_000;

/// How long an agent's phone rings before the next agent is tried.
pub const RING_TIMEOUT: Duration = Duration {
    field: "ring_timeout_s",
    min_ms: 1_000,
    max_ms: 600_000,
    default_ms: None,
};
/// How long a caller waits at most before the fallback.
pub const MAX_WAIT: Duration = Duration {
    field: "max_wait_s",
    min_ms: 0,
    max_ms: 86_400_000,
    default_ms: None,
};
/// How often the position is announced (0 = never).
pub const ANNOUNCE: Duration = Duration {
    field: "announce_interval_s",
    min_ms: 0,
    max_ms: 3_600_000,
    default_ms: Some(0),
};
/// An agent's pause after each call.
pub const WRAPUP: Duration = Duration {
    field: "wrapup_s",
    min_ms: 0,
    max_ms: 3_600_000,
    default_ms: Some(0),
};

/// The rule of one duration field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration {
    /// The form field (seconds).
    pub field: &'static str,
    /// Lowest value, in milliseconds.
    pub min_ms: i64,
    /// Highest value, in milliseconds.
    pub max_ms: i64,
    /// The value of an empty field; `None`: the field is required.
    pub default_ms: Option<i64>,
}

/// A form field that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Invalid {
    /// The field's `name` in the form; `""` for the form as a whole.
    pub field: &'static str,
    /// What is wrong, in words for the admin.
    pub problem: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field {
            "" => f.write_str(&self.problem),
            field => write!(f, "{field}: {}", self.problem),
        }
    }
}

/// A problem with `field`.
pub fn invalid(field: &'static str, problem: impl Into<String>) -> Invalid {
    Invalid {
        field,
        problem: problem.into(),
    }
}

/// Every problem of one form, in the order of its fields (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Problems(pub Vec<Invalid>);

impl Problems {
    /// The problem of `field`, if it has one.
    pub fn on(&self, field: &str) -> Option<&Invalid> {
        self.0.iter().find(|p| p.field == field)
    }

    /// The fields with a problem, in order.
    pub fn fields(&self) -> Vec<&'static str> {
        self.0.iter().map(|p| p.field).collect()
    }
}

impl From<Invalid> for Problems {
    fn from(e: Invalid) -> Self {
        Problems(vec![e])
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Collects the problems of a form's fields, so that one answer lists them all.
#[derive(Debug, Default)]
struct Check(Vec<Invalid>);

impl Check {
    /// The value, or its default with the problem noted.
    fn take<T: Default>(&mut self, result: Result<T, Invalid>) -> T {
        result.unwrap_or_else(|e| {
            self.0.push(e);
            T::default()
        })
    }

    /// A problem found by a rule across fields.
    fn add(&mut self, e: Invalid) {
        self.0.push(e);
    }

    /// `value` if no field had a problem.
    fn done<T>(self, value: T) -> Result<T, Problems> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(Problems(self.0))
        }
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
            .map_err(|_| invalid("", "the request body is not an HTML form"))
    }

    /// Builds fields from pairs (tests, and pages that show a row's values).
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

/// A name of `kind` in `field` (the one rule of [`crate::names`]).
pub fn name(field: &'static str, kind: Kind, value: &str) -> Result<String, Invalid> {
    match names::check(kind, value) {
        Ok(()) => Ok(value.to_owned()),
        Err(names::NameError::Empty) => Err(invalid(field, "required")),
        Err(e) => Err(invalid(field, format!("{e} (got {value:?})"))),
    }
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

/// Milliseconds as the forms show them: seconds, with the decimals it takes (`1500` → `1.5`).
pub fn seconds(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let (s, frac) = (ms.unsigned_abs() / 1000, ms.unsigned_abs() % 1000);
    if frac == 0 {
        format!("{sign}{s}")
    } else {
        let digits = format!("{frac:03}");
        format!("{sign}{s}.{}", digits.trim_end_matches('0'))
    }
}

/// A duration typed in seconds (`20`, `1.5`, `0.25`: at most three decimals), in milliseconds
/// within the rule's bounds.
pub fn parse_seconds(rule: &Duration, value: &str) -> Result<i64, Invalid> {
    let field = rule.field;
    if value.is_empty() {
        return rule.default_ms.ok_or_else(|| invalid(field, "required"));
    }
    let not_a_number = || {
        invalid(
            field,
            format!("{value:?} is not a number of seconds (e.g. 20 or 1.5)"),
        )
    };
    if value.starts_with('-') {
        return Err(invalid(
            field,
            format!("must not be negative (got {value})"),
        ));
    }
    let (whole, frac) = value.split_once('.').unwrap_or((value, ""));
    let digits = |t: &str| t.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty() && frac.is_empty() || !digits(whole) || !digits(frac) {
        return Err(not_a_number());
    }
    if frac.len() > 3 {
        return Err(invalid(
            field,
            "at most three decimals (the unit below a second is the millisecond)",
        ));
    }
    let whole: i64 = match whole {
        "" => 0,
        w => w.parse().map_err(|_| not_a_number())?,
    };
    let frac: i64 = format!("{frac:0<3}").parse().map_err(|_| not_a_number())?;
    let ms = whole
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(frac))
        .filter(|ms| (rule.min_ms..=rule.max_ms).contains(ms))
        .ok_or_else(|| {
            invalid(
                field,
                format!(
                    "must be between {} and {} seconds (got {value})",
                    seconds(rule.min_ms),
                    seconds(rule.max_ms)
                ),
            )
        })?;
    Ok(ms)
}

/// One of `allowed` (the texts of `T`'s variants), or a problem naming them.
fn choice<T: std::str::FromStr>(
    field: &'static str,
    value: &str,
    allowed: &[&str],
) -> Result<T, Invalid> {
    if let Ok(v) = value.parse() {
        return Ok(v);
    }
    Err(invalid(
        field,
        format!(
            "unknown {field} {value:?}: use one of {}",
            allowed.join(", ")
        ),
    ))
}

/// A queue's rules from its form; `name` comes from the form (new queue) or the page (edit).
/// The fallback target must name an agent (voicemail) or another queue (queue); whether it
/// exists is checked against the database by the page.
pub fn queue(f: &Fields, name: &str) -> Result<Queue, Problems> {
    let mut c = Check::default();
    let name = c.take(self::name("name", Kind::Queue, name));
    let strategy = c.take(choice("strategy", f.get("strategy"), &STRATEGIES));
    let ring_timeout_ms = c.take(parse_seconds(&RING_TIMEOUT, f.get(RING_TIMEOUT.field)));
    let max_wait_ms = c.take(parse_seconds(&MAX_WAIT, f.get(MAX_WAIT.field)));
    let announce_interval_ms = c.take(parse_seconds(&ANNOUNCE, f.get(ANNOUNCE.field)));
    let wrapup_ms = c.take(parse_seconds(&WRAPUP, f.get(WRAPUP.field)));
    let moh_class = match f.get("moh_class") {
        "" => "default".to_owned(),
        class => c.take(self::name("moh_class", Kind::Class, class)),
    };
    let fallback = c.take(choice("fallback", f.get("fallback"), &FALLBACKS));
    let fallback_target = c.take(fallback_target(&fallback, f.get("fallback_target"), &name));
    let recording = c.take(recording(f.get("recording")));
    c.done(Queue {
        name,
        strategy,
        ring_timeout_ms,
        max_wait_ms,
        announce_interval_ms,
        moh_class,
        wrapup_ms,
        fallback,
        fallback_target,
        rr_last: None,
        recording,
        recording_prompt: f.checked("recording_prompt"),
    })
}

/// A queue's recording policy: `never` (also when empty), `always`, or a percentage.
fn recording(value: &str) -> Result<RecordingPolicy, Invalid> {
    match value.trim() {
        "" => Ok(RecordingPolicy::Never),
        v => v.parse().map_err(|_| {
            invalid(
                "recording",
                format!("use never, always, or a percentage of calls from 0 to 100 (got {v:?})"),
            )
        }),
    }
}

/// The target of a queue's fallback: none for `hangup` (a target typed is dropped), an
/// agent for `voicemail`, another queue for `queue`.
fn fallback_target(
    fallback: &Fallback,
    target: &str,
    queue: &str,
) -> Result<Option<String>, Invalid> {
    const FIELD: &str = "fallback_target";
    match *fallback {
        Fallback::Voicemail | Fallback::Queue if target.is_empty() => Err(invalid(
            FIELD,
            format!(
                "required for fallback {:?}: {}",
                fallback.as_str(),
                if *fallback == Fallback::Voicemail {
                    "the agent whose mailbox records the caller"
                } else {
                    "the queue the caller enters next"
                }
            ),
        )),
        Fallback::Queue if target == queue => {
            Err(invalid(FIELD, "a queue cannot fall back to itself"))
        }
        Fallback::Queue => name(FIELD, Kind::Queue, target).map(Some),
        Fallback::Voicemail => name(FIELD, Kind::Extension, target).map(Some),
        Fallback::Hangup => Ok(None),
    }
}

/// A membership of `queue` from the members form.
pub fn member(f: &Fields, queue: &str) -> Result<Member, Problems> {
    let mut c = Check::default();
    let member = Member {
        queue: queue.to_owned(),
        agent: c.take(name("agent", Kind::Extension, f.get("agent"))),
        tier: c.take(int("tier", f.get("tier"), 0, MAX_TIER, Some(0))),
        vip_allowed: f.checked("vip_allowed"),
        weight: c.take(int("weight", f.get("weight"), 0, MAX_WEIGHT, Some(1))),
        position: c.take(int(
            "position",
            f.get("position"),
            -MAX_POSITION,
            MAX_POSITION,
            Some(0),
        )),
    };
    c.done(member)
}

/// A VIP caller of `queue`: the caller's number as it arrives (the From user).
pub fn vip(f: &Fields, queue: &str) -> Result<VipCaller, Problems> {
    let mut c = Check::default();
    let number = c.take(name("number", Kind::Number, f.get("number")));
    c.done(VipCaller {
        number,
        queue: queue.to_owned(),
    })
}

/// An agent from its form; `key` is the agent's extension on its own page (`None`: new).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentForm {
    /// The row to store; its `pin_hash` is empty when the PIN is kept.
    pub agent: Agent,
    /// A new PIN was typed (a new agent always has one).
    pub new_pin: bool,
}

/// A new agent, or new settings for one: extension, name, PIN (digits, dialled as DTMF;
/// required for a new agent, empty keeps the PIN of an existing one), daily limit (empty =
/// none). Stored with the PIN's hash only.
pub fn agent(f: &Fields, key: Option<&str>, now_ms: i64) -> Result<AgentForm, Problems> {
    let mut c = Check::default();
    let ext = c.take(name(
        "extension",
        Kind::Extension,
        key.unwrap_or(f.get("extension")),
    ));
    let name = c.take(display("name", f.get("name")));
    let pin = f.get("pin");
    let new_pin = !pin.is_empty() || key.is_none();
    if new_pin
        && (pin.is_empty() || pin.len() > MAX_PIN || !pin.chars().all(|c| c.is_ascii_digit()))
    {
        c.add(invalid(
            "pin",
            format!("use 1 to {MAX_PIN} digits (agents dial it on the phone's keypad)"),
        ));
    }
    let daily_limit = match f.get("daily_limit") {
        "" => None,
        v => Some(c.take(int("daily_limit", v, 0, MAX_DAILY_LIMIT, None))),
    };
    // Salted and slow, as the dialplan checks it (`callfleet_store::pin`).
    let hash = if new_pin && c.0.is_empty() {
        c.take(callfleet_store::pin::hash(&ext, pin).map_err(|e| invalid("pin", e.to_string())))
    } else {
        String::new()
    };
    let mut agent = Agent::new(&ext, &name, &hash, now_ms);
    agent.daily_limit = daily_limit;
    c.done(AgentForm { agent, new_pin })
}

/// A phone from the phones form; the node turns the password into HA1 digests.
#[derive(Clone, PartialEq, Eq)]
pub struct NewDevice {
    /// Extension (the digest user name).
    pub extension: String,
    /// Display name.
    pub name: String,
    /// The password the phone registers with (never stored); `None` keeps the current one.
    pub password: Option<String>,
}

impl fmt::Debug for NewDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewDevice")
            .field("extension", &self.extension)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A password field: required for something new, optional (empty keeps) when `editing`.
fn password(f: &Fields, editing: bool, min: usize) -> Result<Option<String>, Invalid> {
    let password = f.raw("password");
    if password.is_empty() && editing {
        return Ok(None);
    }
    if password.is_empty() {
        return Err(invalid("password", "required"));
    }
    if password.chars().count() < min {
        return Err(invalid(
            "password",
            format!("too short: use at least {min} characters"),
        ));
    }
    if password.len() > MAX_PASSWORD {
        return Err(invalid("password", format!("at most {MAX_PASSWORD} bytes")));
    }
    Ok(Some(password.to_owned()))
}

/// A phone from its form; `key` is the phone's extension on its own page (`None`: new).
pub fn device(f: &Fields, key: Option<&str>) -> Result<NewDevice, Problems> {
    let mut c = Check::default();
    let extension = c.take(name(
        "extension",
        Kind::Extension,
        key.unwrap_or(f.get("extension")),
    ));
    let name = c.take(display("name", f.get("name")));
    let password = c.take(password(f, key.is_some(), 1));
    c.done(NewDevice {
        extension,
        name,
        password,
    })
}

/// A panel user from the users form; the page hashes the password (argon2id).
#[derive(Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Login name.
    pub name: String,
    /// Admin or supervisor.
    pub role: UserRole,
    /// The password in clear, hashed before it is stored; `None` keeps the current one.
    pub password: Option<String>,
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

/// A panel user from its form; `key` is the user's name on its own page (`None`: new).
pub fn user(f: &Fields, key: Option<&str>) -> Result<NewUser, Problems> {
    let mut c = Check::default();
    let name = c.take(name("name", Kind::User, key.unwrap_or(f.get("name"))));
    let role = f.get("role").parse::<UserRole>().unwrap_or_else(|_| {
        c.add(invalid("role", "use admin or supervisor"));
        UserRole::Supervisor
    });
    let password = c.take(password(f, key.is_some(), MIN_PASSWORD));
    let device = match f.get("device") {
        "" => None,
        d => Some(c.take(self::name("device", Kind::Extension, d))),
    };
    c.done(NewUser {
        name,
        role,
        password,
        device,
    })
}

/// A carrier from its form, its network in canonical CIDR form; `key` is the carrier's name
/// on its own page (`None`: new).
pub fn carrier(f: &Fields, key: Option<&str>, now_ms: i64) -> Result<Carrier, Problems> {
    let mut c = Check::default();
    let carrier = Carrier {
        name: c.take(name("name", Kind::Carrier, key.unwrap_or(f.get("name")))),
        network: c.take(cidr(f.get("network"))),
        created_at_ms: now_ms,
    };
    c.done(carrier)
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

#[cfg(test)]
mod tests;
