//! `[recording]`: where bridged calls are recorded, for how long they are kept, when the
//! disk is too full to record, and the MP3 conversion (see `crate::recording`). Which calls
//! are recorded is each queue's policy, in SQL.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingSection {
    /// Directory of this node's recordings, one folder per UTC day. Created (mode 0750)
    /// when missing.
    #[serde(default = "default_dir")]
    pub dir: PathBuf,
    /// Days a recording is kept before it is deleted (file and row); 0 keeps them forever.
    #[serde(default = "default_keep")]
    pub keep: u32,
    /// A call is not recorded (the call itself goes on) while the recordings' file system
    /// has fewer than this many megabytes (10^6 bytes) free, and a recording in progress stops.
    #[serde(default = "default_min_free_mb")]
    pub min_free_mb: u64,
    /// Convert recordings to MP3 in the background (the WAV is removed once the MP3 is
    /// verified); `false` keeps the WAV.
    #[serde(default = "default_mp3")]
    pub mp3: bool,
    /// MP3 bit rate in kbit/s (stereo: 8, 16, 24, 32, 40, 48 or 64).
    #[serde(default = "default_mp3_kbps")]
    pub mp3_kbps: u32,
}

impl Default for RecordingSection {
    fn default() -> Self {
        Self {
            dir: default_dir(),
            keep: default_keep(),
            min_free_mb: default_min_free_mb(),
            mp3: default_mp3(),
            mp3_kbps: default_mp3_kbps(),
        }
    }
}

/// Bit rates LAME offers at 8 kHz (MPEG 2.5).
pub const MP3_KBPS: [u32; 7] = [8, 16, 24, 32, 40, 48, 64];

impl RecordingSection {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.dir.as_os_str().is_empty() {
            return Err(ConfigError::Invalid {
                key: "recording.dir",
                problem: "must name a directory".to_string(),
            });
        }
        if !MP3_KBPS.contains(&self.mp3_kbps) {
            return Err(ConfigError::Invalid {
                key: "recording.mp3_kbps",
                problem: format!("must be one of {MP3_KBPS:?} (got {})", self.mp3_kbps),
            });
        }
        Ok(())
    }

    /// The retention in milliseconds, if recordings expire.
    pub fn keep_ms(&self) -> Option<i64> {
        (self.keep > 0).then(|| i64::from(self.keep) * 86_400_000)
    }
}

fn default_dir() -> PathBuf {
    PathBuf::from("/var/lib/callfleet/recordings")
}

fn default_keep() -> u32 {
    90
}

fn default_min_free_mb() -> u64 {
    1024
}

fn default_mp3() -> bool {
    true
}

fn default_mp3_kbps() -> u32 {
    32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_rates_and_retention_are_checked() {
        let ok = RecordingSection::default();
        assert!(ok.validate().is_ok());
        assert_eq!(ok.keep_ms(), Some(90 * 86_400_000));
        let forever = RecordingSection {
            keep: 0,
            ..ok.clone()
        };
        assert_eq!(forever.keep_ms(), None);
        for kbps in [0, 7, 56, 65, 320] {
            let bad = RecordingSection {
                mp3_kbps: kbps,
                ..ok.clone()
            };
            assert!(
                matches!(
                    bad.validate(),
                    Err(ConfigError::Invalid {
                        key: "recording.mp3_kbps",
                        ..
                    })
                ),
                "{kbps}"
            );
        }
        let no_dir = RecordingSection {
            dir: PathBuf::new(),
            ..ok
        };
        assert!(no_dir.validate().is_err());
        let parsed: RecordingSection = toml::from_str("keep = 7\nmp3 = false").unwrap();
        assert_eq!((parsed.keep, parsed.mp3, parsed.mp3_kbps), (7, false, 32));
        assert!(
            toml::from_str::<RecordingSection>("kept = 7").is_err(),
            "unknown keys refused"
        );
    }
}
