//! The pure rules of provisioning: which file name is which phone family and MAC, what a
//! request's credentials are, whether they open a phone's file, which extension a new phone
//! gets, which main nodes it registers with, and the per-source admission and log limits.
//! Nothing here does I/O or reads a clock: callers pass the time.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};

use base64::Engine as _;

/// The phone families served, one file name pattern each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `{mac}.cfg`: `key = value` lines.
    Yealink,
    /// `cfg{mac}.xml`: `<gs_provision>` with P-values.
    Grandstream,
}

impl Family {
    /// The name stored in `provisioned_phones.family`.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Yealink => "yealink",
            Family::Grandstream => "grandstream",
        }
    }

    /// The `Content-Type` of its file.
    pub fn content_type(self) -> &'static str {
        match self {
            Family::Yealink => "text/plain; charset=utf-8",
            Family::Grandstream => "application/xml; charset=utf-8",
        }
    }

    /// How many SIP servers (registrars) one account of the family holds: a primary and a
    /// backup on both (Yealink `sip_server.1` / `.2`, Grandstream P47 / P2312).
    pub fn registrar_slots(self) -> usize {
        2
    }
}

/// A MAC address as 12 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mac(String);

impl Mac {
    /// Exactly 12 hex digits (either case, no separators); anything else is not a MAC.
    pub fn parse(s: &str) -> Option<Mac> {
        (s.len() == 12 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Mac(s.to_ascii_lowercase()))
    }

    /// The 12 lower-case hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The MAC as a number (spreads phones over the main nodes).
    fn value(&self) -> u64 {
        u64::from_str_radix(&self.0, 16).unwrap_or(0)
    }
}

impl std::fmt::Display for Mac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The family and MAC of a requested file name, or `None` for any other name (the family's
/// common files, firmware, path tricks): those are 404.
pub fn phone_file(name: &str) -> Option<(Family, Mac)> {
    if let Some(mac) = name.strip_suffix(".cfg") {
        return Mac::parse(mac).map(|m| (Family::Yealink, m));
    }
    let mac = name.strip_prefix("cfg")?.strip_suffix(".xml")?;
    Mac::parse(mac).map(|m| (Family::Grandstream, m))
}

/// What the request presented, from its `Authorization: Basic` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// Nothing usable: challenge with 401.
    Nothing,
    /// The user name is the phone's MAC: its own provisioning password follows.
    Phone(String),
    /// Any other user name: the password is a provisioning token.
    Token(String),
}

/// Reads `Authorization: Basic base64(user:password)` for the phone `mac`. Phones send the
/// user name in any case; a MAC user name is compared after lower-casing.
pub fn presented(authorization: Option<&str>, mac: &Mac) -> Presented {
    let Some(value) = authorization else {
        return Presented::Nothing;
    };
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return Presented::Nothing;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Presented::Nothing;
    }
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return Presented::Nothing;
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return Presented::Nothing;
    };
    let Some((user, password)) = text.split_once(':') else {
        return Presented::Nothing;
    };
    if password.is_empty() || password.len() > 200 {
        return Presented::Nothing;
    }
    if user.eq_ignore_ascii_case(mac.as_str()) {
        Presented::Phone(password.to_owned())
    } else {
        Presented::Token(password.to_owned())
    }
}

/// What the node knows that the decision needs, looked up for what was presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    /// The MAC's own provisioning password, when the MAC provisioned already.
    pub phone_password: Option<String>,
    /// The name of the provisioning token presented, when it is one.
    pub token: Option<String>,
}

/// What to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The phone's own credentials: serve its file.
    Serve,
    /// A valid provisioning token for a MAC never seen: make the device (within the limits),
    /// then serve.
    Create {
        /// The token's name.
        token: String,
    },
    /// Refused: answer with this status; nothing is created.
    Refuse(Refusal),
}

/// Why a request is refused, each with its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a phone's file name: 404.
    NotAPhoneFile,
    /// No credentials: 401 with a challenge.
    NoCredentials,
    /// Wrong credentials (an unknown token, or not this phone's password): 401.
    BadCredentials,
    /// A valid token for a MAC that has its device already: 403 (a token never opens an
    /// existing phone's file; an admin removes the device to provision it again).
    AlreadyProvisioned,
    /// This source made too many phones lately: 429.
    TooMany,
    /// No free extension in the provisioning range: 503.
    RangeFull,
    /// The request's `Host` cannot be put in a provisioning URL: 400.
    BadHost,
}

impl Refusal {
    /// The HTTP status.
    pub fn status(self) -> u16 {
        match self {
            Refusal::NotAPhoneFile => 404,
            Refusal::NoCredentials | Refusal::BadCredentials => 401,
            Refusal::AlreadyProvisioned => 403,
            Refusal::TooMany => 429,
            Refusal::RangeFull => 503,
            Refusal::BadHost => 400,
        }
    }

    /// A few words for the log.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::NotAPhoneFile => "not a phone's file name",
            Refusal::NoCredentials => "no credentials",
            Refusal::BadCredentials => "wrong credentials",
            Refusal::AlreadyProvisioned => "a token for a phone provisioned already",
            Refusal::TooMany => "too many new phones from this source",
            Refusal::RangeFull => "no free extension in the provisioning range",
            Refusal::BadHost => "a Host header that is not a host name",
        }
    }
}

/// The auth decision: a phone's own password opens only its own file; a token only creates
/// a phone never seen.
pub fn decide(presented: &Presented, known: &Known) -> Decision {
    match presented {
        Presented::Nothing => Decision::Refuse(Refusal::NoCredentials),
        Presented::Phone(password) => match &known.phone_password {
            Some(want) if same(password.as_bytes(), want.as_bytes()) => Decision::Serve,
            _ => Decision::Refuse(Refusal::BadCredentials),
        },
        Presented::Token(_) => match (&known.token, &known.phone_password) {
            (None, _) => Decision::Refuse(Refusal::BadCredentials),
            (Some(_), Some(_)) => Decision::Refuse(Refusal::AlreadyProvisioned),
            (Some(token), None) => Decision::Create {
                token: token.clone(),
            },
        },
    }
}

/// Constant-time equality of two byte strings (the length is not secret).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An inclusive range of numeric extensions (`provisioning.extensions`, e.g. `7000-7999`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtensionRange {
    /// First extension.
    pub first: u32,
    /// Last extension.
    pub last: u32,
}

impl ExtensionRange {
    /// `"FIRST-LAST"`, both numbers, `FIRST <= LAST`, at most 100 000 extensions.
    pub fn parse(s: &str) -> Option<ExtensionRange> {
        let (a, b) = s.trim().split_once('-')?;
        let digits =
            |x: &str| !x.is_empty() && x.len() <= 9 && x.bytes().all(|c| c.is_ascii_digit());
        if !digits(a.trim()) || !digits(b.trim()) {
            return None;
        }
        let first = a.trim().parse().ok()?;
        let last = b.trim().parse().ok()?;
        (first <= last && last - first < 100_000).then_some(ExtensionRange { first, last })
    }
}

/// The lowest extension of `range` that is not `taken`.
pub fn free_extension(range: ExtensionRange, taken: &BTreeSet<String>) -> Option<String> {
    (range.first..=range.last)
        .map(|n| n.to_string())
        .find(|ext| !taken.contains(ext))
}

/// The registrars a phone gets: the live main nodes' SIP addresses (unspecified addresses
/// left out, duplicates once), in a stable order rotated by the MAC so phones spread over the
/// main nodes, as many as the family holds.
pub fn registrars(mac: &Mac, mains: &[SocketAddr], slots: usize) -> Vec<SocketAddr> {
    let mut all: Vec<SocketAddr> = mains
        .iter()
        .filter(|a| !a.ip().is_unspecified())
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if all.is_empty() {
        return all;
    }
    let start = usize::try_from(mac.value() % all.len() as u64).unwrap_or(0);
    all.rotate_left(start);
    all.truncate(slots);
    all
}

/// The URL a phone fetches its files from later: `scheme://host/provision/`, the host as the
/// phone asked for it. `None` when `host` is not a plain host name or address with a port.
pub fn base_url(host: Option<&str>, tls: bool) -> Option<String> {
    let host = host?;
    let ok = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    let scheme = if tls { "https" } else { "http" };
    ok.then(|| format!("{scheme}://{host}/provision/"))
}

/// Sources remembered at most by [`Gate`] (a full table first drops what no longer counts).
const MAX_SOURCES: usize = 4096;

/// Per source address: how many phones it made in the current hour, and when a refusal was
/// last logged for it. Both bounded in size; the caller passes the time.
#[derive(Debug)]
pub struct Gate {
    per_hour: u32,
    log_every_ms: i64,
    made: HashMap<IpAddr, (i64, u32)>,
    logged: HashMap<IpAddr, i64>,
}

const HOUR_MS: i64 = 3_600_000;

impl Gate {
    /// At most `per_hour` new phones per source address per hour; one log line per source per
    /// `log_every_ms` at most.
    pub fn new(per_hour: u32, log_every_ms: i64) -> Gate {
        Gate {
            per_hour,
            log_every_ms,
            made: HashMap::new(),
            logged: HashMap::new(),
        }
    }

    /// Takes one new phone for `source` at `now_ms`; `false` when its hour is used up.
    pub fn admit(&mut self, source: IpAddr, now_ms: i64) -> bool {
        if self.made.len() >= MAX_SOURCES && !self.made.contains_key(&source) {
            self.made.retain(|_, (start, _)| now_ms - *start < HOUR_MS);
            if self.made.len() >= MAX_SOURCES {
                return false;
            }
        }
        let entry = self.made.entry(source).or_insert((now_ms, 0));
        if now_ms - entry.0 >= HOUR_MS {
            *entry = (now_ms, 0);
        }
        if entry.1 >= self.per_hour {
            return false;
        }
        entry.1 += 1;
        true
    }

    /// Gives back a phone [`Gate::admit`] took and that was not made after all.
    pub fn undo(&mut self, source: IpAddr) {
        if let Some(entry) = self.made.get_mut(&source) {
            entry.1 = entry.1.saturating_sub(1);
        }
    }

    /// Whether a refusal for `source` at `now_ms` should be logged: the first one, then one
    /// per `log_every_ms`.
    pub fn should_log(&mut self, source: IpAddr, now_ms: i64) -> bool {
        if let Some(last) = self.logged.get(&source) {
            if now_ms - *last < self.log_every_ms {
                return false;
            }
        }
        if self.logged.len() >= MAX_SOURCES && !self.logged.contains_key(&source) {
            let every = self.log_every_ms;
            self.logged.retain(|_, last| now_ms - *last < every);
            if self.logged.len() >= MAX_SOURCES {
                // Full of sources refused just now: stay quiet rather than grow.
                return false;
            }
        }
        self.logged.insert(source, now_ms);
        true
    }
}
