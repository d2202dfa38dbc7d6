//! [`Checker`]: the pure bookkeeping of reading a snapshot. It admits each archive entry
//! against the manifest (a regular file, at an allowed path, listed, seen once, of the listed
//! size), compares each entry's digest, and at the end names what is missing.

use crate::manifest::{Digest, Entry, EntryPath, Manifest};
use crate::SnapshotError;

#[cfg(test)]
mod tests;

/// The type of an archive entry, as far as a snapshot cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryType {
    Regular,
    Directory,
    Symlink,
    HardLink,
    /// Devices, FIFOs, sparse files, extension headers that are not consumed by the reader...
    Other,
}

impl EntryType {
    fn name(self) -> &'static str {
        match self {
            EntryType::Regular => "regular file",
            EntryType::Directory => "directory",
            EntryType::Symlink => "symbolic link",
            EntryType::HardLink => "hard link",
            EntryType::Other => "special file",
        }
    }
}

/// Tracks which of a manifest's entries an archive has delivered.
#[derive(Debug)]
pub struct Checker<'m> {
    manifest: &'m Manifest,
    seen: Vec<bool>,
}

impl<'m> Checker<'m> {
    pub fn new(manifest: &'m Manifest) -> Self {
        Self {
            manifest,
            seen: vec![false; manifest.entries().len()],
        }
    }

    /// Admits the archive entry named `name`, of type `kind`, announcing `size` bytes: the
    /// manifest's entry for it, or why it is refused. A refused entry is never read and does
    /// not count as delivered.
    pub fn admit(
        &mut self,
        name: &str,
        kind: EntryType,
        size: u64,
    ) -> Result<&'m Entry, SnapshotError> {
        let path = EntryPath::parse(name)?;
        if kind != EntryType::Regular {
            return Err(SnapshotError::NotAFile {
                path: name.to_owned(),
                kind: kind.name(),
            });
        }
        let manifest = self.manifest;
        let index = manifest
            .entries()
            .iter()
            .position(|e| e.path == path)
            .ok_or_else(|| SnapshotError::Extra {
                path: name.to_owned(),
            })?;
        let entry = manifest
            .entries()
            .get(index)
            .ok_or_else(|| SnapshotError::Extra {
                path: name.to_owned(),
            })?;
        let seen = self
            .seen
            .get_mut(index)
            .ok_or_else(|| SnapshotError::Extra {
                path: name.to_owned(),
            })?;
        if *seen {
            return Err(SnapshotError::Duplicate {
                path: name.to_owned(),
            });
        }
        if size != entry.size {
            return Err(SnapshotError::Size {
                path: name.to_owned(),
                expected: entry.size,
                found: size,
            });
        }
        *seen = true;
        Ok(entry)
    }

    /// Compares what was read of `entry` (`read` bytes hashing to `digest`) with the manifest.
    pub fn content(entry: &Entry, read: u64, digest: Digest) -> Result<(), SnapshotError> {
        if read != entry.size {
            return Err(SnapshotError::Truncated {
                path: entry.path.as_str().to_owned(),
                read,
                expected: entry.size,
            });
        }
        if digest != entry.sha256 {
            return Err(SnapshotError::Checksum {
                path: entry.path.as_str().to_owned(),
                expected: entry.sha256,
                found: digest,
            });
        }
        Ok(())
    }

    /// After the last entry: every listed entry was delivered, or which were not.
    pub fn finish(self) -> Result<(), SnapshotError> {
        let paths: Vec<String> = self
            .manifest
            .entries()
            .iter()
            .zip(&self.seen)
            .filter(|(_, seen)| !**seen)
            .map(|(e, _)| e.path.as_str().to_owned())
            .collect();
        if paths.is_empty() {
            Ok(())
        } else {
            Err(SnapshotError::Missing { paths })
        }
    }
}
