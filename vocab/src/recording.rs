//! A queue's recording policy (`queues.recording`) and the format of a stored recording
//! (`recordings.format`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ParseEnumError;

/// Which of a queue's calls are recorded once bridged: none, all, or a share of them drawn
/// per call. Stored as `never`, `always`, or the percentage (`0` to `100`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RecordingPolicy {
    #[default]
    Never,
    Always,
    /// This share of calls, in percent (0 to 100).
    Percent(u8),
}

impl RecordingPolicy {
    /// Whether a call is recorded, given a draw uniform in `0..100` made for it.
    pub fn records(self, draw: u8) -> bool {
        match self {
            RecordingPolicy::Never => false,
            RecordingPolicy::Always => true,
            RecordingPolicy::Percent(p) => draw < p,
        }
    }

    /// Whether any call at all may be recorded.
    pub fn may_record(self) -> bool {
        !matches!(self, RecordingPolicy::Never | RecordingPolicy::Percent(0))
    }
}

impl fmt::Display for RecordingPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordingPolicy::Never => f.write_str("never"),
            RecordingPolicy::Always => f.write_str("always"),
            RecordingPolicy::Percent(p) => write!(f, "{p}"),
        }
    }
}

impl FromStr for RecordingPolicy {
    type Err = ParseEnumError;

    /// `never`, `always`, or a whole percentage `0` to `100` (a trailing `%` allowed).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseEnumError {
            kind: "recording policy",
            value: s.to_owned(),
        };
        match s {
            "never" => Ok(RecordingPolicy::Never),
            "always" => Ok(RecordingPolicy::Always),
            _ => {
                let digits = s.strip_suffix('%').unwrap_or(s);
                if digits.is_empty()
                    || digits.len() > 3
                    || !digits.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(bad());
                }
                match digits.parse::<u8>() {
                    Ok(p) if p <= 100 => Ok(RecordingPolicy::Percent(p)),
                    _ => Err(bad()),
                }
            }
        }
    }
}

impl Serialize for RecordingPolicy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RecordingPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

words! {
    /// The format of a stored recording.
    pub enum RecordingFormat ("recording format") {
        /// Stereo WAV, 8 kHz 16-bit (caller left, agent right), as recorded.
        Wav = "wav",
        /// MP3, after the background conversion.
        Mp3 = "mp3",
    }
}

impl RecordingFormat {
    /// The media type served for it.
    pub fn mime(self) -> &'static str {
        match self {
            RecordingFormat::Wav => "audio/wav",
            RecordingFormat::Mp3 => "audio/mpeg",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_print() {
        let cases = [
            ("never", Some(RecordingPolicy::Never), "never"),
            ("always", Some(RecordingPolicy::Always), "always"),
            ("0", Some(RecordingPolicy::Percent(0)), "0"),
            ("25", Some(RecordingPolicy::Percent(25)), "25"),
            ("25%", Some(RecordingPolicy::Percent(25)), "25"),
            ("100", Some(RecordingPolicy::Percent(100)), "100"),
            ("101", None, ""),
            ("-1", None, ""),
            ("", None, ""),
            ("%", None, ""),
            ("0100", None, ""),
            ("2.5", None, ""),
            ("Always", None, ""),
            ("99999999999999999999", None, ""),
        ];
        for (text, want, printed) in cases {
            let got = text.parse::<RecordingPolicy>().ok();
            assert_eq!(got, want, "{text:?}");
            if let Some(p) = got {
                assert_eq!(p.to_string(), printed);
            }
        }
    }

    #[test]
    fn the_draw_decides_the_share() {
        // (policy, draw, recorded)
        let cases = [
            (RecordingPolicy::Never, 0, false),
            (RecordingPolicy::Never, 99, false),
            (RecordingPolicy::Always, 0, true),
            (RecordingPolicy::Always, 99, true),
            (RecordingPolicy::Percent(0), 0, false),
            (RecordingPolicy::Percent(30), 29, true),
            (RecordingPolicy::Percent(30), 30, false),
            (RecordingPolicy::Percent(100), 99, true),
        ];
        for (policy, draw, want) in cases {
            assert_eq!(policy.records(draw), want, "{policy} draw {draw}");
        }
        let share = (0..100u8)
            .filter(|d| RecordingPolicy::Percent(37).records(*d))
            .count();
        assert_eq!(share, 37, "every draw once: exactly the percentage");
        assert!(!RecordingPolicy::Percent(0).may_record());
        assert!(RecordingPolicy::Percent(1).may_record());
    }

    #[test]
    fn serde_uses_the_text() {
        let json = serde_json::to_string(&RecordingPolicy::Percent(40)).unwrap();
        assert_eq!(json, "\"40\"");
        let back: RecordingPolicy = serde_json::from_str("\"always\"").unwrap();
        assert_eq!(back, RecordingPolicy::Always);
        assert!(serde_json::from_str::<RecordingPolicy>("\"sometimes\"").is_err());
    }
}
