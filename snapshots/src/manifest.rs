//! The manifest (format version, callfleet version, creation time, size and SHA-256 of every
//! entry) and the entry paths a snapshot may hold; parsing refuses anything else.

use std::fmt;

use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

/// The snapshot format this crate writes and reads.
pub const FORMAT: u32 = 1;
/// The manifest's path in the archive; it is always the first entry.
pub const MANIFEST_PATH: &str = "manifest.json";
/// A manifest larger than this is refused before it is parsed.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// Most entries a manifest may list.
pub const MAX_ENTRIES: usize = 10_000;
/// Most bytes all entries together may hold (once unpacked).
pub const MAX_TOTAL_BYTES: u64 = 8 << 30;
/// The cluster settings are read into memory: at most this many bytes.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Longest sound file name.
const MAX_NAME: usize = 100;

/// What an entry is, which says where a restore puts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `bin/callfleet`: the `callfleet` executable.
    Binary,
    /// `config/cluster.toml`: the cluster-wide settings, without any node's identity.
    ClusterConfig,
    /// `sounds/moh/NAME.wav`: music on hold.
    Moh,
    /// `sounds/prompts/NAME.wav`: a spoken prompt or another sound.
    Prompt,
}

/// A path inside a snapshot, one of the few places a snapshot may hold: relative, clean, and
/// never leaving the snapshot's root.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntryPath {
    text: String,
    kind: Kind,
}

/// Why a path is not one a snapshot may hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path {path:?} is absolute: entries are relative to the snapshot's root")]
    Absolute { path: String },
    #[error("path {path:?} climbs out of the snapshot's root (\"..\")")]
    Escapes { path: String },
    #[error("path {path:?} is not a clean relative path (empty or \".\" parts, backslashes, control characters)")]
    NotClean { path: String },
    #[error("path {path:?} is not one a snapshot holds (bin/callfleet, config/cluster.toml, sounds/moh/NAME.wav, sounds/prompts/NAME.wav)")]
    Unknown { path: String },
    #[error("sound file name {name:?}: use letters, digits, '.', '_' and '-' (not first), end in .wav, at most 100 characters")]
    BadSoundName { name: String },
}

impl EntryPath {
    /// Where the executable is in a snapshot.
    pub const BINARY: &'static str = "bin/callfleet";
    /// Where the cluster settings are in a snapshot.
    pub const CLUSTER_CONFIG: &'static str = "config/cluster.toml";
    const MOH_DIR: &'static str = "sounds/moh/";
    const PROMPTS_DIR: &'static str = "sounds/prompts/";

    pub fn binary() -> Self {
        Self {
            text: Self::BINARY.to_owned(),
            kind: Kind::Binary,
        }
    }

    pub fn cluster_config() -> Self {
        Self {
            text: Self::CLUSTER_CONFIG.to_owned(),
            kind: Kind::ClusterConfig,
        }
    }

    /// A music-on-hold file named `name` (e.g. `01-harbour.wav`) of the default class.
    pub fn moh(name: &str) -> Result<Self, PathError> {
        Self::sound(Kind::Moh, Self::MOH_DIR, name)
    }

    /// A music-on-hold file named `name` of class `class` (its folder under the music).
    pub fn moh_class(class: &str, name: &str) -> Result<Self, PathError> {
        if !valid_class_name(class) {
            return Err(PathError::BadSoundName {
                name: format!("{class}/{name}"),
            });
        }
        Self::sound(Kind::Moh, &format!("{}{class}/", Self::MOH_DIR), name)
    }

    /// Where a music-on-hold file goes under the music folder: its name, or `class/name`;
    /// `None` for other entries.
    pub fn moh_relative(&self) -> Option<&str> {
        match self.kind {
            Kind::Moh => self.text.strip_prefix(Self::MOH_DIR),
            _ => None,
        }
    }

    /// A prompt or other sound named `name` (e.g. `all-busy.wav`).
    pub fn prompt(name: &str) -> Result<Self, PathError> {
        Self::sound(Kind::Prompt, Self::PROMPTS_DIR, name)
    }

    fn sound(kind: Kind, dir: &str, name: &str) -> Result<Self, PathError> {
        if !valid_sound_name(name) {
            return Err(PathError::BadSoundName { name: name.into() });
        }
        Ok(Self {
            text: format!("{dir}{name}"),
            kind,
        })
    }

    /// Reads a path from a manifest or an archive header.
    pub fn parse(text: &str) -> Result<Self, PathError> {
        let path = || text.to_owned();
        if text.starts_with('/') {
            return Err(PathError::Absolute { path: path() });
        }
        if text.split('/').any(|part| part == "..") {
            return Err(PathError::Escapes { path: path() });
        }
        let unclean = text.is_empty()
            || text.chars().any(|c| c == '\\' || c.is_control())
            || text.split('/').any(|part| part.is_empty() || part == ".");
        if unclean {
            return Err(PathError::NotClean { path: path() });
        }
        match text {
            Self::BINARY => return Ok(Self::binary()),
            Self::CLUSTER_CONFIG => return Ok(Self::cluster_config()),
            _ => {}
        }
        let sound = if let Some(rest) = text.strip_prefix(Self::MOH_DIR) {
            // `name`, or `class/name` for a class of music.
            match rest.split_once('/') {
                Some((class, name)) if valid_class_name(class) => Some((Kind::Moh, name)),
                Some(_) => None,
                None => Some((Kind::Moh, rest)),
            }
        } else {
            text.strip_prefix(Self::PROMPTS_DIR)
                .map(|name| (Kind::Prompt, name))
        };
        match sound {
            Some((kind, name)) if valid_sound_name(name) => Ok(Self {
                text: text.to_owned(),
                kind,
            }),
            _ => Err(PathError::Unknown { path: path() }),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The last part of the path (`callfleet`, `cluster.toml`, a sound's file name).
    pub fn file_name(&self) -> &str {
        self.text.rsplit('/').next().unwrap_or(&self.text)
    }
}

impl fmt::Display for EntryPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A sound's file name: `[A-Za-z0-9._-]`, not starting with `.` or `-`, ending in `.wav`.
/// A music-on-hold class (a folder name): 1–64 ASCII letters, digits, `.`, `_`, `-`, not
/// starting with `.` or `-`.
fn valid_class_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn valid_sound_name(name: &str) -> bool {
    name.len() <= MAX_NAME
        && name.len() > ".wav".len()
        && name.ends_with(".wav")
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// Reads 64 hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).ok()?;
        Some(Self(out))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// One file of a snapshot as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: EntryPath,
    pub size: u64,
    pub sha256: Digest,
}

/// What a snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// [`FORMAT`] when written by this crate.
    pub format: u32,
    /// The version of the callfleet that made the snapshot (and of its binary).
    pub callfleet_version: String,
    /// When the snapshot was made, in milliseconds since the UNIX epoch.
    pub created_at_ms: i64,
    entries: Vec<Entry>,
}

/// Why a manifest cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("the manifest is not valid JSON of the expected shape: {0}")]
    Json(#[source] serde_json::Error),
    #[error("snapshot format {found} is not one this callfleet reads (format {supported}): restore it with a newer callfleet")]
    Format { found: u32, supported: u32 },
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("the manifest lists {path} twice")]
    Duplicate { path: String },
    #[error("the manifest does not list {path}, which every snapshot holds")]
    Required { path: &'static str },
    #[error("the manifest lists {count} entries, more than {MAX_ENTRIES}")]
    TooManyEntries { count: usize },
    #[error("the manifest's entries hold more than {MAX_TOTAL_BYTES} bytes")]
    TooLarge,
    #[error("the manifest gives {path} a size of {size} bytes, more than its kind may hold")]
    EntryTooLarge { path: String, size: u64 },
    #[error("the manifest's SHA-256 of {path} is not 64 hex digits")]
    BadDigest { path: String },
    #[error("the manifest's callfleet version {version:?} is empty or not printable")]
    BadVersion { version: String },
}

/// The manifest as JSON.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    format: u32,
    callfleet_version: String,
    created_at_ms: i64,
    entries: Vec<RawEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    path: String,
    size: u64,
    sha256: String,
}

/// Only the format number, read before the rest so a newer format is named as such.
#[derive(Deserialize)]
struct FormatOnly {
    format: u32,
}

impl Manifest {
    /// A manifest of `entries`, checked as [`Manifest::parse`] checks one read back.
    pub fn new(
        callfleet_version: impl Into<String>,
        created_at_ms: i64,
        entries: Vec<Entry>,
    ) -> Result<Self, ManifestError> {
        let manifest = Self {
            format: FORMAT,
            callfleet_version: callfleet_version.into(),
            created_at_ms,
            entries,
        };
        manifest.check()?;
        Ok(manifest)
    }

    /// Reads and checks a manifest: the format, every path, no duplicates, the binary and
    /// the cluster settings present, sizes within bounds.
    pub fn parse(bytes: &[u8]) -> Result<Self, ManifestError> {
        let format: FormatOnly = serde_json::from_slice(bytes).map_err(ManifestError::Json)?;
        if format.format != FORMAT {
            return Err(ManifestError::Format {
                found: format.format,
                supported: FORMAT,
            });
        }
        let raw: RawManifest = serde_json::from_slice(bytes).map_err(ManifestError::Json)?;
        if raw.entries.len() > MAX_ENTRIES {
            return Err(ManifestError::TooManyEntries {
                count: raw.entries.len(),
            });
        }
        let entries = raw
            .entries
            .into_iter()
            .map(|e| {
                let path = EntryPath::parse(&e.path)?;
                let sha256 =
                    Digest::from_hex(&e.sha256).ok_or(ManifestError::BadDigest { path: e.path })?;
                Ok(Entry {
                    path,
                    size: e.size,
                    sha256,
                })
            })
            .collect::<Result<Vec<_>, ManifestError>>()?;
        let manifest = Self {
            format: raw.format,
            callfleet_version: raw.callfleet_version,
            created_at_ms: raw.created_at_ms,
            entries,
        };
        manifest.check()?;
        Ok(manifest)
    }

    fn check(&self) -> Result<(), ManifestError> {
        let version = &self.callfleet_version;
        if version.is_empty()
            || version.len() > 64
            || !version.chars().all(|c| c.is_ascii_graphic())
        {
            return Err(ManifestError::BadVersion {
                version: version.clone(),
            });
        }
        if self.entries.len() > MAX_ENTRIES {
            return Err(ManifestError::TooManyEntries {
                count: self.entries.len(),
            });
        }
        let mut seen = std::collections::HashSet::new();
        let mut total: u64 = 0;
        for entry in &self.entries {
            if !seen.insert(entry.path.as_str()) {
                return Err(ManifestError::Duplicate {
                    path: entry.path.as_str().to_owned(),
                });
            }
            if entry.path.kind() == Kind::ClusterConfig && entry.size > MAX_CONFIG_BYTES {
                return Err(ManifestError::EntryTooLarge {
                    path: entry.path.as_str().to_owned(),
                    size: entry.size,
                });
            }
            total = total.saturating_add(entry.size);
        }
        if total > MAX_TOTAL_BYTES {
            return Err(ManifestError::TooLarge);
        }
        for required in [EntryPath::BINARY, EntryPath::CLUSTER_CONFIG] {
            if !seen.contains(required) {
                return Err(ManifestError::Required { path: required });
            }
        }
        Ok(())
    }

    /// The manifest as written into a snapshot (pretty JSON, entries in order).
    pub fn to_json(&self) -> Vec<u8> {
        let raw = RawManifest {
            format: self.format,
            callfleet_version: self.callfleet_version.clone(),
            created_at_ms: self.created_at_ms,
            entries: self
                .entries
                .iter()
                .map(|e| RawEntry {
                    path: e.path.as_str().to_owned(),
                    size: e.size,
                    sha256: e.sha256.to_hex(),
                })
                .collect(),
        };
        // Serialising plain strings and integers cannot fail.
        serde_json::to_vec_pretty(&raw).unwrap_or_default()
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry at `path`, if the manifest lists it.
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.path.as_str() == path)
    }

    /// Bytes of all entries together.
    pub fn total_size(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }
}
