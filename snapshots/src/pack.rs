//! Writing a snapshot: [`manifest_for`] checksums the inputs, [`write`] streams the manifest
//! and every input into tar + zstd, checksumming each input again on the way so a file that
//! changed in between is refused instead of packed under a wrong checksum.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use sha2::{Digest as _, Sha256};

use crate::manifest::{Digest, Entry, EntryPath, Kind, Manifest, MANIFEST_PATH};
use crate::SnapshotError;

/// zstd level used by `callfleet snapshot create`: fast, and most of the gain.
pub const DEFAULT_LEVEL: i32 = 3;

/// Where an input's bytes come from.
#[derive(Debug, Clone)]
pub enum Source {
    File(PathBuf),
    Bytes(Vec<u8>),
}

/// One entry to pack.
#[derive(Debug, Clone)]
pub struct Input {
    pub path: EntryPath,
    pub source: Source,
}

impl Input {
    fn open(&self) -> Result<Box<dyn Read + '_>, SnapshotError> {
        Ok(match &self.source {
            Source::File(path) => {
                Box::new(File::open(path).map_err(|source| SnapshotError::ReadInput {
                    path: path.clone(),
                    source,
                })?)
            }
            Source::Bytes(bytes) => Box::new(bytes.as_slice()),
        })
    }

    fn read_error(&self, source: io::Error) -> SnapshotError {
        SnapshotError::ReadInput {
            path: self.origin(),
            source,
        }
    }

    fn origin(&self) -> PathBuf {
        match &self.source {
            Source::File(path) => path.clone(),
            Source::Bytes(_) => PathBuf::from(self.path.as_str()),
        }
    }
}

/// A reader that hashes and counts what passes through it, and reports progress.
struct Hashing<R, F> {
    inner: R,
    hasher: Sha256,
    count: u64,
    progress: F,
}

impl<R: Read, F: FnMut(u64)> Hashing<R, F> {
    fn new(inner: R, progress: F) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
            progress,
        }
    }

    fn digest(self) -> Digest {
        Digest(self.hasher.finalize().into())
    }
}

impl<R: Read, F: FnMut(u64)> Read for Hashing<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let done = buf.get(..n).unwrap_or_default();
        self.hasher.update(done);
        self.count += n as u64;
        (self.progress)(n as u64);
        Ok(n)
    }
}

/// Checksums every input (`progress` gets the bytes read) and makes the manifest.
pub fn manifest_for(
    inputs: &[Input],
    callfleet_version: &str,
    created_at_ms: i64,
    mut progress: impl FnMut(u64),
) -> Result<Manifest, SnapshotError> {
    let mut entries = Vec::with_capacity(inputs.len());
    for input in inputs {
        let mut hashing = Hashing::new(input.open()?, &mut progress);
        io::copy(&mut hashing, &mut io::sink()).map_err(|e| input.read_error(e))?;
        let size = hashing.count;
        entries.push(Entry {
            path: input.path.clone(),
            size,
            sha256: hashing.digest(),
        });
    }
    Ok(Manifest::new(callfleet_version, created_at_ms, entries)?)
}

/// Writes the snapshot of `inputs` described by `manifest` to `out` (zstd `level`), and
/// returns `out`. `progress` gets the input bytes packed. Each input must still be what the
/// manifest says, else [`SnapshotError::InputChanged`]; `out` then holds a broken archive
/// the caller must delete.
pub fn write<W: Write>(
    manifest: &Manifest,
    inputs: &[Input],
    out: W,
    level: i32,
    mut progress: impl FnMut(u64),
) -> Result<W, SnapshotError> {
    let archive_error = |source| SnapshotError::WriteArchive { source };
    let mut encoder = zstd::Encoder::new(out, level).map_err(archive_error)?;
    encoder.include_checksum(true).map_err(archive_error)?;
    let mut tar = tar::Builder::new(encoder);
    let json = manifest.to_json();
    let mtime = u64::try_from(manifest.created_at_ms / 1000).unwrap_or(0);
    let mut header = file_header(json.len() as u64, 0o644, mtime);
    tar.append_data(&mut header, MANIFEST_PATH, json.as_slice())
        .map_err(archive_error)?;
    for entry in manifest.entries() {
        let input = inputs
            .iter()
            .find(|i| i.path == entry.path)
            .ok_or_else(|| SnapshotError::InputChanged {
                path: PathBuf::from(entry.path.as_str()),
            })?;
        append(&mut tar, entry, input, mtime, &mut progress)?;
    }
    let encoder = tar.into_inner().map_err(archive_error)?;
    encoder.finish().map_err(archive_error)
}

/// Appends one input, exactly `entry.size` bytes of it, and checks it still hashes to
/// `entry.sha256` and has nothing more.
fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    entry: &Entry,
    input: &Input,
    mtime: u64,
    progress: &mut impl FnMut(u64),
) -> Result<(), SnapshotError> {
    let changed = || SnapshotError::InputChanged {
        path: input.origin(),
    };
    let mode = if entry.path.kind() == Kind::Binary {
        0o755
    } else {
        0o644
    };
    let mut header = file_header(entry.size, mode, mtime);
    let mut source = input.open()?;
    let mut hashing = Hashing::new(Exact::new(&mut source, entry.size), &mut *progress);
    tar.append_data(&mut header, entry.path.as_str(), &mut hashing)
        .map_err(|source| match source.kind() {
            io::ErrorKind::UnexpectedEof => changed(),
            _ => SnapshotError::WriteArchive { source },
        })?;
    if hashing.count != entry.size || hashing.digest() != entry.sha256 {
        return Err(changed());
    }
    let mut more = [0u8; 1];
    match source.read(&mut more) {
        Ok(0) => Ok(()),
        Ok(_) => Err(changed()),
        Err(e) => Err(input.read_error(e)),
    }
}

fn file_header(size: u64, mode: u32, mtime: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(mode);
    header.set_mtime(mtime);
    header.set_uid(0);
    header.set_gid(0);
    header
}

/// Reads exactly `left` bytes from `inner`: fewer is an `UnexpectedEof` error (the file
/// shrank), and it never reads past them.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R> Exact<R> {
    fn new(inner: R, left: u64) -> Self {
        Self { inner, left }
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.read(buf.get_mut(..want).unwrap_or_default())?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the input ended early",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Checksums `inputs` and writes their snapshot to `out`: [`manifest_for`] then [`write()`].
/// `progress` gets the bytes of both passes (twice the inputs' size in all).
pub fn pack<W: Write>(
    inputs: &[Input],
    callfleet_version: &str,
    created_at_ms: i64,
    out: W,
    level: i32,
    mut progress: impl FnMut(u64),
) -> Result<(Manifest, W), SnapshotError> {
    let manifest = manifest_for(inputs, callfleet_version, created_at_ms, &mut progress)?;
    let out = write(&manifest, inputs, out, level, &mut progress)?;
    Ok((manifest, out))
}
