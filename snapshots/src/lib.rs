//! The callfleet snapshot format: everything a new node needs to join a cluster, in one file.
//!
//! A snapshot is a tar archive compressed with zstd (with the frame checksum on). Its first
//! entry is `manifest.json` ([`Manifest`]: format version, callfleet version, creation time,
//! size and SHA-256 of every other entry); then come the entries the manifest lists, regular
//! files only, at the few paths [`EntryPath`] allows: `bin/callfleet` (the executable),
//! `config/cluster.toml` (the cluster-wide settings, with no node's identity in them),
//! `sounds/moh/NAME.wav` and `sounds/prompts/NAME.wav`.
//!
//! - [`pack`] writes a snapshot from files and bytes ([`Input`]);
//! - [`verify`] reads a whole snapshot and checks it without writing anything: the manifest
//!   comes first and parses, every entry is a regular file at an allowed path, listed once,
//!   with the size and SHA-256 the manifest gives; no entry is missing or extra; the zstd
//!   frame is complete and nothing follows the archive. It returns the manifest and the
//!   cluster settings;
//! - [`unpack`] reads a snapshot again (after [`verify`]), writes each entry where the caller
//!   places it, checking everything once more, and removes what it wrote if anything fails;
//! - [`Checker`] is the pure bookkeeping behind both readers;
//! - [`Layout`] is where a restore installs each part under a root directory.
//!
//! The checksums find a damaged or truncated copy; they are not a signature. A snapshot holds
//! the database URL and the cluster secret: keep it as private as they are.

mod check;
mod layout;
mod manifest;
mod pack;
mod read;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use check::{Checker, EntryType};
pub use layout::Layout;
pub use manifest::{
    Digest, Entry, EntryPath, Kind, Manifest, ManifestError, PathError, FORMAT, MANIFEST_PATH,
    MAX_CONFIG_BYTES, MAX_ENTRIES, MAX_MANIFEST_BYTES, MAX_TOTAL_BYTES,
};
pub use pack::{manifest_for, pack, write, Input, Source, DEFAULT_LEVEL};
pub use read::{unpack, verify, Placed, Verified};

/// Why a snapshot could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The archive could not be read to its end: cut short, or damaged so that zstd or tar
    /// cannot decode it (this includes the zstd frame checksum).
    #[error("the snapshot is truncated or damaged: {source}")]
    Unreadable {
        #[source]
        source: std::io::Error,
    },
    #[error("the snapshot does not start with {MANIFEST_PATH}: it is not a callfleet snapshot")]
    NoManifest,
    #[error("the snapshot's manifest is too large ({size} bytes)")]
    ManifestTooLarge { size: u64 },
    #[error("bad manifest: {0}")]
    Manifest(#[from] ManifestError),
    #[error("bad entry: {0}")]
    Path(#[from] PathError),
    #[error("entry {path:?} has a name that is not UTF-8")]
    PathNotUtf8 { path: String },
    #[error("entry {path} is a {kind}: a snapshot holds regular files only")]
    NotAFile { path: String, kind: &'static str },
    #[error("entry {path} is not listed in the manifest")]
    Extra { path: String },
    #[error("entry {path} appears twice in the archive")]
    Duplicate { path: String },
    #[error("entry {path} holds {found} bytes where the manifest says {expected}")]
    Size {
        path: String,
        expected: u64,
        found: u64,
    },
    #[error("the snapshot is truncated: entry {path} ends after {read} of its {expected} bytes")]
    Truncated {
        path: String,
        read: u64,
        expected: u64,
    },
    #[error("entry {path} does not match its checksum (SHA-256 {found}, the manifest says {expected}): the file was changed or damaged")]
    Checksum {
        path: String,
        expected: Digest,
        found: Digest,
    },
    #[error("entries listed in the manifest are missing from the archive: {}", paths.join(", "))]
    Missing { paths: Vec<String> },
    #[error("data follows the end of the archive")]
    TrailingData,
    #[error(
        "the cluster settings ({}) are not UTF-8 text",
        EntryPath::CLUSTER_CONFIG
    )]
    ConfigNotText,
    #[error("cannot read {path}: {source}")]
    ReadInput {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} changed while the snapshot was being made; make it again")]
    InputChanged { path: PathBuf },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the snapshot: {source}")]
    WriteArchive {
        #[source]
        source: std::io::Error,
    },
}
