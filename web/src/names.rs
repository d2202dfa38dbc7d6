//! Names of things, one rule for every way in: the admin forms ([`crate::admin::form`]) and
//! the CRM API ([`crate::crm`], over JSON and XML-RPC) check queue names, agent and phone
//! extensions, user names, carrier names and caller numbers here, so a name one of them
//! accepts is a name the other accepts too.
//!
//! | kind | length | characters besides ASCII letters and digits | why |
//! |------|--------|---------------------------------------------|-----|
//! | [`Kind::Extension`] (agent, phone) | 1–32 | `-` `_` `.` `+` | the user part of a SIP URI, as `callfleet device add` accepts it |
//! | [`Kind::Queue`] | 1–64 | `-` `_` `.` `+` | callers dial it, like an extension |
//! | [`Kind::User`] | 1–64 | `-` `_` `.` `@` | as `callfleet user add` accepts it |
//! | [`Kind::Carrier`] | 1–64 | `-` `_` `.` | a label |
//! | [`Kind::Number`] (a caller's number) | 1–64 | `+` `-` `_` `.` `*` `#` | the From user of a call, as it arrives |
//! | [`Kind::Class`] (music on hold) | 1–64 | `-` `_` `.` | a folder name under the music directory |
//!
//! Names are compared as they are: `Sales` and `sales` are two queues.

use std::fmt;

/// What a name names; each kind has its rule (module table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An agent's or a phone's extension.
    Extension,
    /// A queue.
    Queue,
    /// A panel user.
    User,
    /// A carrier.
    Carrier,
    /// A caller's number (VIP callers).
    Number,
    /// A music-on-hold class.
    Class,
}

/// Longest extension, in bytes.
pub const MAX_EXTENSION: usize = 32;
/// Longest name of any other kind, in bytes.
pub const MAX_NAME: usize = 64;

impl Kind {
    /// The longest name of this kind, in bytes.
    pub const fn max(self) -> usize {
        match self {
            Kind::Extension => MAX_EXTENSION,
            _ => MAX_NAME,
        }
    }

    /// The characters allowed besides ASCII letters and digits.
    pub const fn extra(self) -> &'static str {
        match self {
            Kind::Extension | Kind::Queue => "-_.+",
            Kind::User => "-_.@",
            Kind::Carrier | Kind::Class => "-_.",
            Kind::Number => "+-_.*#",
        }
    }

    /// The rule in words, as every refusal states it.
    pub const fn rule(self) -> &'static str {
        match self {
            Kind::Extension => "use 1 to 32 letters, digits, '-', '_', '.' or '+'",
            Kind::Queue => "use 1 to 64 letters, digits, '-', '_', '.' or '+'",
            Kind::User => "use 1 to 64 letters, digits, '-', '_', '.' or '@'",
            Kind::Carrier | Kind::Class => "use 1 to 64 letters, digits, '-', '_' or '.'",
            Kind::Number => "use 1 to 64 digits, letters, '+', '-', '_', '.', '*' or '#'",
        }
    }
}

/// A name that breaks its kind's rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("required")]
    Empty,
    /// Too long, or a character the kind does not allow.
    #[error("{}", .0.rule())]
    Rule(Kind),
}

impl NameError {
    /// The refusal in words, fixed per kind (for error types that hold a `&'static str`).
    pub const fn reason(self) -> &'static str {
        match self {
            NameError::Empty => "must not be empty",
            NameError::Rule(kind) => kind.rule(),
        }
    }
}

/// Checks `value` against the rule of `kind`.
pub fn check(kind: Kind, value: &str) -> Result<(), NameError> {
    if value.is_empty() {
        return Err(NameError::Empty);
    }
    let extra = kind.extra();
    let allowed = |c: char| c.is_ascii_alphanumeric() || extra.contains(c);
    if value.len() > kind.max() || !value.chars().all(allowed) {
        return Err(NameError::Rule(kind));
    }
    Ok(())
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Extension => "extension",
            Kind::Queue => "queue name",
            Kind::User => "user name",
            Kind::Carrier => "carrier name",
            Kind::Number => "caller number",
            Kind::Class => "music on hold class",
        })
    }
}

#[cfg(test)]
mod tests;
