//! `[outbound]`: the SIP trunk that agents' phones dial external numbers through (see
//! `crate::outbound`), and which dialled strings are external numbers ([`OutboundSection::external`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Shortest and longest E.164 number (digits after `+`): ITU-T E.164 allows up to 15; the
/// shortest real international numbers (country code and subscriber) have 7.
const E164_MIN_DIGITS: usize = 7;
const E164_MAX_DIGITS: usize = 15;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundSection {
    /// The trunk's SIP address, `host:port` (over UDP). Unset: no outbound calls.
    #[serde(default)]
    pub trunk: Option<String>,
    /// Digest user name the trunk challenges for (401 or 407); unset: no credentials.
    #[serde(default)]
    pub username: Option<String>,
    /// Digest password, with `username`.
    #[serde(default)]
    pub password: Option<String>,
    /// The caller ID (E.164, `+4930...`) sent to the trunk in From; required with `trunk`.
    #[serde(default)]
    pub caller_id: Option<String>,
    /// The outside-line access code a PBX user dials first (`"9"`, `"0"`), stripped when
    /// present; empty: none.
    #[serde(default)]
    pub access_code: String,
    /// The international call prefix dialled instead of `+` (`"00"` in most of the world,
    /// `"011"` in North America); empty: only `+` numbers are external.
    #[serde(default = "default_international_prefix")]
    pub international_prefix: String,
    /// How long the trunk may ring before the call is cancelled (the phone gets `480`).
    #[serde(default = "default_ring_timeout", with = "humantime_serde")]
    pub ring_timeout: Duration,
}

impl Default for OutboundSection {
    fn default() -> Self {
        Self {
            trunk: None,
            username: None,
            password: None,
            caller_id: None,
            access_code: String::new(),
            international_prefix: default_international_prefix(),
            ring_timeout: default_ring_timeout(),
        }
    }
}

fn default_international_prefix() -> String {
    "00".to_string()
}

fn default_ring_timeout() -> Duration {
    Duration::from_secs(60)
}

/// Whether `s` is `+` and 7 to 15 digits.
pub fn is_e164(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|d| {
        (E164_MIN_DIGITS..=E164_MAX_DIGITS).contains(&d.len())
            && d.bytes().all(|b| b.is_ascii_digit())
    })
}

impl OutboundSection {
    /// Whether outbound calls are configured (a trunk is set).
    pub fn enabled(&self) -> bool {
        self.trunk.is_some()
    }

    /// The E.164 number a dialled string names when it is an external number, as PBXes read
    /// it: visual separators (`-`, `.`, `(`, `)`, RFC 3966) left out, the access code
    /// stripped when it leads, then `+` or the international prefix and 7 to 15 digits.
    /// Anything else (extensions, queues, national numbers, feature codes) is not external.
    /// Pure: the dialplan asks it only for numbers that name nothing of its own.
    pub fn external(&self, dialled: &str) -> Option<String> {
        if !self.enabled() {
            return None;
        }
        let plain: String = dialled
            .chars()
            .filter(|c| !matches!(c, '-' | '.' | '(' | ')'))
            .collect();
        let rest = match self.access_code.as_str() {
            "" => plain.as_str(),
            code => plain.strip_prefix(code).unwrap_or(&plain),
        };
        let number = match rest.strip_prefix('+') {
            Some(digits) => format!("+{digits}"),
            None => match self.international_prefix.as_str() {
                "" => return None,
                p => format!("+{}", rest.strip_prefix(p)?),
            },
        };
        is_e164(&number).then_some(number)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, problem: &str| {
            Err(ConfigError::Invalid {
                key,
                problem: problem.to_string(),
            })
        };
        let Some(trunk) = &self.trunk else {
            if self.username.is_some() || self.password.is_some() || self.caller_id.is_some() {
                return bad(
                    "outbound.trunk",
                    "set the trunk's host:port (credentials and caller ID need a trunk)",
                );
            }
            return Ok(());
        };
        let port = trunk.rsplit_once(':').and_then(|(host, port)| {
            let host_ok = !host.is_empty() && !host.contains(['/', '@', ';', ' ']);
            port.parse::<u16>().ok().filter(|p| *p != 0 && host_ok)
        });
        if port.is_none() {
            return bad(
                "outbound.trunk",
                "must be host:port, e.g. \"sip.carrier.example:5060\"",
            );
        }
        match &self.caller_id {
            Some(id) if is_e164(id) => {}
            _ => {
                return bad(
                    "outbound.caller_id",
                    "must be an E.164 number, + and 7 to 15 digits (required with a trunk)",
                )
            }
        }
        if self.password.is_some() != self.username.is_some() {
            return bad("outbound.username", "username and password come together");
        }
        if self.username.as_deref().is_some_and(str::is_empty) {
            return bad("outbound.username", "must not be empty");
        }
        if !self.access_code.bytes().all(|b| b.is_ascii_digit()) {
            return bad("outbound.access_code", "digits only");
        }
        if !self
            .international_prefix
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            return bad("outbound.international_prefix", "digits only");
        }
        if self.ring_timeout < Duration::from_secs(1) {
            return bad("outbound.ring_timeout", "must be at least 1s");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(access_code: &str, international_prefix: &str) -> OutboundSection {
        OutboundSection {
            trunk: Some("192.0.2.1:5060".into()),
            caller_id: Some("+4930555000".into()),
            access_code: access_code.into(),
            international_prefix: international_prefix.into(),
            ..OutboundSection::default()
        }
    }

    #[test]
    fn which_dialled_strings_are_external() {
        let table: &[(&str, &str, &str, Option<&str>)] = &[
            // (access code, international prefix, dialled, external number)
            ("", "00", "+4930123456", Some("+4930123456")),
            ("", "00", "004930123456", Some("+4930123456")),
            ("", "00", "+49-30-123456", Some("+4930123456")),
            ("", "00", "+1(555)123.4567", Some("+15551234567")),
            ("", "00", "+123456", None), // 6 digits: too short
            ("", "00", "+1234567", Some("+1234567")), // 7: the shortest
            ("", "00", "+123456789012345", Some("+123456789012345")),
            ("", "00", "+1234567890123456", None), // 16: too long
            ("", "00", "+49301234x", None),
            ("", "00", "+", None),
            ("", "00", "", None),
            ("", "00", "1001", None), // an extension
            ("", "00", "sales", None),
            ("", "00", "*11", None),
            ("", "00", "030123456", None),  // national: not external
            ("", "", "004930123456", None), // no international prefix configured
            ("", "011", "01115551234567", Some("+15551234567")),
            ("9", "00", "9004930123456", Some("+4930123456")),
            ("9", "00", "9+4930123456", Some("+4930123456")),
            ("9", "00", "+4930123456", Some("+4930123456")), // the code is optional
            ("9", "00", "91001", None),
            ("0", "00", "0004930123456", Some("+4930123456")),
        ];
        for (code, intl, dialled, want) in table {
            assert_eq!(
                rule(code, intl).external(dialled).as_deref(),
                *want,
                "access code {code:?}, prefix {intl:?}, dialled {dialled:?}"
            );
        }
        let off = OutboundSection::default();
        assert_eq!(
            off.external("+4930123456"),
            None,
            "no trunk, nothing external"
        );
    }

    #[test]
    fn e164() {
        for (s, ok) in [
            ("+4930555000", true),
            ("4930555000", false),
            ("+49 30", false),
            ("++4930555000", false),
        ] {
            assert_eq!(is_e164(s), ok, "{s}");
        }
    }
}
