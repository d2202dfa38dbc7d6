//! Reading a snapshot: [`verify`] checks all of it without writing anything, [`unpack`]
//! writes its entries where the caller places them, checking everything again.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::check::{Checker, EntryType};
use crate::manifest::{
    Digest, Entry, EntryPath, Kind, Manifest, MANIFEST_PATH, MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES,
};
use crate::SnapshotError;

/// A snapshot [`verify`] found whole.
#[derive(Debug, Clone)]
pub struct Verified {
    pub manifest: Manifest,
    /// The cluster settings (`config/cluster.toml`), TOML text.
    pub cluster_config: String,
}

/// A file [`unpack`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub entry: EntryPath,
    pub path: PathBuf,
}

/// Counts the compressed bytes read, for progress.
struct Counting<R, F> {
    inner: R,
    progress: F,
}

impl<R: Read, F: FnMut(u64)> Read for Counting<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.progress)(n as u64);
        Ok(n)
    }
}

/// Hashes and counts an entry's bytes as the sink reads them.
struct Hashing<'a> {
    inner: &'a mut dyn Read,
    hasher: Sha256,
    count: u64,
}

impl Read for Hashing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or_default());
        self.count += n as u64;
        Ok(n)
    }
}

fn unreadable(source: io::Error) -> SnapshotError {
    SnapshotError::Unreadable { source }
}

/// Reads the whole snapshot from `input` and checks it (see the crate's documentation),
/// writing nothing. `progress` gets the compressed bytes read.
pub fn verify(input: impl Read, progress: impl FnMut(u64)) -> Result<Verified, SnapshotError> {
    let mut config: Option<Vec<u8>> = None;
    let manifest = walk(input, progress, &mut |entry, data| {
        if entry.path.kind() == Kind::ClusterConfig {
            let mut bytes = Vec::new();
            data.take(MAX_CONFIG_BYTES)
                .read_to_end(&mut bytes)
                .map_err(unreadable)?;
            config = Some(bytes);
        }
        Ok(())
    })?;
    // The manifest requires the cluster settings, and `walk` saw every listed entry.
    let bytes = config.ok_or(SnapshotError::Missing {
        paths: vec![EntryPath::CLUSTER_CONFIG.to_owned()],
    })?;
    let cluster_config = String::from_utf8(bytes).map_err(|_| SnapshotError::ConfigNotText)?;
    Ok(Verified {
        manifest,
        cluster_config,
    })
}

/// Reads the snapshot from `input` again and writes each entry to the path `place` gives it
/// (`None`: not written), as a new file (an existing file there is an error) with mode 0755
/// for the binary and 0644 for the rest, flushed to disk. The parent folders must exist.
/// Everything [`verify`] checks is checked again; on any failure the files written so far are
/// removed. Returns the files written, in archive order.
pub fn unpack(
    input: impl Read,
    progress: impl FnMut(u64),
    mut place: impl FnMut(&Entry) -> Option<PathBuf>,
) -> Result<Vec<Placed>, SnapshotError> {
    let mut written: Vec<Placed> = Vec::new();
    let result = walk(input, progress, &mut |entry, data| {
        let Some(path) = place(entry) else {
            return Ok(());
        };
        let file = create(&path, entry.path.kind())?;
        written.push(Placed {
            entry: entry.path.clone(),
            path: path.clone(),
        });
        copy_to(data, file, &path)
    });
    match result {
        Ok(_) => Ok(written),
        Err(e) => {
            for placed in &written {
                // Best effort: the error being reported matters more than a leftover file.
                if let Err(remove) = std::fs::remove_file(&placed.path) {
                    if remove.kind() != io::ErrorKind::NotFound {
                        return Err(SnapshotError::Write {
                            path: placed.path.clone(),
                            source: remove,
                        });
                    }
                }
            }
            Err(e)
        }
    }
}

fn create(path: &Path, kind: Kind) -> Result<File, SnapshotError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if kind == Kind::Binary { 0o755 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = kind;
    options.open(path).map_err(|source| SnapshotError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Copies `data` into `file` and flushes it to disk. A read error is the archive's, a write
/// error the file's.
fn copy_to(data: &mut dyn Read, mut file: File, path: &Path) -> Result<(), SnapshotError> {
    let write_error = |source| SnapshotError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = data.read(&mut buf).map_err(unreadable)?;
        if n == 0 {
            break;
        }
        file.write_all(buf.get(..n).unwrap_or_default())
            .map_err(write_error)?;
    }
    file.sync_all().map_err(write_error)
}

/// What a sink does with one admitted entry: reads (some of) its bytes. Whatever it leaves is
/// read and hashed after it.
type Sink<'a> = dyn FnMut(&Entry, &mut dyn Read) -> Result<(), SnapshotError> + 'a;

/// Reads the archive: the manifest first, then every entry through `sink`, each admitted and
/// checked by a [`Checker`]; then that nothing is missing, that the zstd stream ends whole and
/// that only the archive's zero padding follows its end.
fn walk(
    input: impl Read,
    progress: impl FnMut(u64),
    sink: &mut Sink<'_>,
) -> Result<Manifest, SnapshotError> {
    let counting = Counting {
        inner: input,
        progress,
    };
    let decoder = zstd::Decoder::new(counting).map_err(unreadable)?;
    let mut archive = tar::Archive::new(decoder);
    let manifest = {
        let mut entries = archive.entries().map_err(unreadable)?;
        let manifest = read_manifest(&mut entries)?;
        let mut checker = Checker::new(&manifest);
        for entry in entries {
            let mut entry = entry.map_err(unreadable)?;
            let name = entry_name(&entry)?;
            let kind = entry_type(entry.header().entry_type());
            let size = entry.header().size().map_err(unreadable)?;
            let listed = checker.admit(&name, kind, size)?;
            let mut hashing = Hashing {
                inner: &mut entry,
                hasher: Sha256::new(),
                count: 0,
            };
            sink(listed, &mut hashing)?;
            io::copy(&mut hashing, &mut io::sink()).map_err(unreadable)?;
            let digest = Digest(hashing.hasher.finalize().into());
            Checker::content(listed, hashing.count, digest)?;
        }
        checker.finish()?;
        manifest
    };
    let mut rest = archive.into_inner();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = rest.read(&mut buf).map_err(unreadable)?;
        if n == 0 {
            break;
        }
        if buf.get(..n).unwrap_or_default().iter().any(|&b| b != 0) {
            return Err(SnapshotError::TrailingData);
        }
    }
    Ok(manifest)
}

fn read_manifest<R: Read>(entries: &mut tar::Entries<'_, R>) -> Result<Manifest, SnapshotError> {
    let mut first = match entries.next() {
        Some(entry) => entry.map_err(unreadable)?,
        None => return Err(SnapshotError::NoManifest),
    };
    let name = entry_name(&first)?;
    if name != MANIFEST_PATH || entry_type(first.header().entry_type()) != EntryType::Regular {
        return Err(SnapshotError::NoManifest);
    }
    let size = first.header().size().map_err(unreadable)?;
    if size > MAX_MANIFEST_BYTES {
        return Err(SnapshotError::ManifestTooLarge { size });
    }
    let mut bytes = Vec::new();
    (&mut first)
        .take(MAX_MANIFEST_BYTES)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 != size {
        return Err(unreadable(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the manifest is cut short",
        )));
    }
    Ok(Manifest::parse(&bytes)?)
}

/// The entry's path as written in the archive (GNU long names included), as UTF-8.
fn entry_name<R: Read>(entry: &tar::Entry<'_, R>) -> Result<String, SnapshotError> {
    let raw = entry.path_bytes();
    String::from_utf8(raw.to_vec()).map_err(|_| SnapshotError::PathNotUtf8 {
        path: String::from_utf8_lossy(&raw).into_owned(),
    })
}

fn entry_type(t: tar::EntryType) -> EntryType {
    match t {
        tar::EntryType::Regular => EntryType::Regular,
        tar::EntryType::Directory => EntryType::Directory,
        tar::EntryType::Symlink => EntryType::Symlink,
        tar::EntryType::Link => EntryType::HardLink,
        _ => EntryType::Other,
    }
}
