//! The record spool on disk: `<dir>/<node>.spool`, append-only lines (see [`super::frame`]),
//! each batch written with one `write` and made durable with `fdatasync` before anything is
//! sent to the database; `<dir>/<node>.head` holds the offset of the first record the
//! database has not taken yet.
//!
//! Crash safety rests on two rules: the head only moves forward after the database took the
//! records before it, and before the file is cut or replaced the head is first set back to 0.
//! A crash at any point therefore leaves the head at or before the first record not yet in
//! the database; records replayed a second time are recognised by their keys.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, FileExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use super::frame::{self, should_compact};
use super::Record;

/// Bytes read at a time when scanning or replaying.
const CHUNK: usize = 1 << 20;
/// Longest line taken (a read of [`CHUNK`] always holds at least one whole line).
const MAX_LINE: usize = CHUNK / 2;
/// The file is compacted only when this much of it is already in the database.
const COMPACT_MIN: u64 = 1 << 20;

/// A spool file operation that failed.
#[derive(Debug, thiserror::Error)]
#[error("record spool: {what} {}", path.display())]
pub struct SpoolError {
    what: &'static str,
    path: PathBuf,
    source: std::io::Error,
}

/// The spool of one node.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    head_path: PathBuf,
    file: File,
    /// Offset of the first record not in the database yet.
    head: u64,
    /// Length of the complete lines in the file.
    len: u64,
    capacity: u64,
    /// Records between `head` and `len`.
    waiting: u64,
    /// While a replayed batch is in flight: appends must not compact (offsets stay valid).
    pinned: bool,
}

/// What [`Spool::open`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Opened {
    /// Records waiting for the database (left by an earlier run).
    pub records: u64,
    /// Bytes of a half-written last line, cut off.
    pub torn: u64,
    /// Damaged lines, skipped.
    pub damaged: usize,
}

/// Records read by [`Spool::peek`]: each with the offset just past it, and where the run
/// ends (past any damaged lines in it).
#[derive(Debug, Default)]
pub struct Batch {
    pub records: Vec<(u64, Record)>,
    pub end: u64,
    pub damaged: usize,
}

impl Spool {
    /// Opens (creating it and its directory, private to the owner) the spool `<dir>/<name>.spool`
    /// holding at most `capacity` bytes; cuts a torn last line off.
    pub fn open(dir: &Path, name: &str, capacity: u64) -> Result<(Spool, Opened), SpoolError> {
        let path = dir.join(format!("{name}.spool"));
        let head_path = dir.join(format!("{name}.head"));
        let err = |what, path: &Path| {
            let path = path.to_owned();
            move |source| SpoolError { what, path, source }
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(err("create the directory", dir))?;
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .map_err(err("open", &path))?;
        let size = file
            .metadata()
            .map_err(err("read the size of", &path))?
            .len();
        let head = std::fs::read_to_string(&head_path)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|&h| h <= size)
            .unwrap_or(0);
        let mut spool = Spool {
            path,
            head_path,
            file,
            head,
            len: size,
            capacity,
            waiting: 0,
            pinned: false,
        };
        let mut opened = Opened::default();
        let mut at = head;
        loop {
            let batch = spool.read_from(at, usize::MAX)?;
            if batch.end == at {
                break;
            }
            opened.records += batch.records.len() as u64;
            opened.damaged += batch.damaged;
            at = batch.end;
        }
        if at < size {
            opened.torn = size - at;
            spool
                .file
                .set_len(at)
                .map_err(err("cut the torn end of", &spool.path))?;
            spool.file.sync_data().map_err(err("sync", &spool.path))?;
        }
        spool.len = at;
        spool.waiting = opened.records;
        if spool.head == spool.len {
            spool.reset()?;
        }
        Ok((spool, opened))
    }

    /// Offset of the first record not in the database yet.
    pub fn head(&self) -> u64 {
        self.head
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether every record is in the database.
    pub fn is_empty(&self) -> bool {
        self.head >= self.len
    }

    /// Records not in the database yet.
    pub fn waiting(&self) -> u64 {
        self.waiting
    }

    /// Bytes the file takes.
    pub fn bytes(&self) -> u64 {
        self.len
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Appends the records that fit (see [`frame::admit`]; a record of more than half a
    /// megabyte never does) with one write, and makes them durable; returns those that did
    /// not fit. On an error nothing of the batch is kept.
    pub fn append(&mut self, batch: Vec<Record>) -> Result<Vec<Record>, SpoolError> {
        let lines: Vec<(Record, Vec<u8>)> = batch
            .into_iter()
            .map(|r| {
                let line = frame::encode(&r);
                (r, line)
            })
            .collect();
        let total: u64 = lines.iter().map(|(_, l)| l.len() as u64).sum();
        if self.head > 0 && !self.pinned && self.len + total > self.capacity {
            self.compact()?;
        }
        let mut buf = Vec::with_capacity(total as usize);
        let mut refused = Vec::new();
        let mut added = 0;
        for (r, line) in lines {
            if line.len() > MAX_LINE {
                refused.push(r);
            } else if frame::admit(
                r.kind(),
                line.len() as u64,
                self.len + buf.len() as u64,
                self.capacity,
            ) {
                buf.extend_from_slice(&line);
                added += 1;
            } else {
                refused.push(r);
            }
        }
        if buf.is_empty() {
            return Ok(refused);
        }
        let written = self
            .file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data());
        if let Err(source) = written {
            // Whatever part of the batch reached the file is cut off again: the caller keeps
            // the whole batch and tries again.
            if self.file.set_len(self.len).is_err() {
                tracing::error!(file = %self.path.display(), "cannot cut a failed write off the record spool");
            }
            return Err(SpoolError {
                what: "append to",
                path: self.path.clone(),
                source,
            });
        }
        self.len += buf.len() as u64;
        self.waiting += added;
        Ok(refused)
    }

    /// While `on`, appends never compact the file, so the offsets of a [`Batch`] being
    /// written to the database stay valid (a full spool then refuses records sooner).
    pub fn pin_offsets(&mut self, on: bool) {
        self.pinned = on;
    }

    /// Up to `max` records from the head, oldest first.
    pub fn peek(&self, max: usize) -> Result<Batch, SpoolError> {
        self.read_from(self.head, max)
    }

    /// The database took every record before `to` (an offset from a [`Batch`]), `records` of
    /// them: the head moves there, and the file is emptied or compacted when that is cheap.
    pub fn done(&mut self, to: u64, records: u64) -> Result<(), SpoolError> {
        self.head = to.clamp(self.head, self.len);
        self.waiting = self.waiting.saturating_sub(records);
        if self.head == self.len {
            self.waiting = 0;
            return self.reset();
        }
        if should_compact(self.head, self.len, COMPACT_MIN) {
            return self.compact();
        }
        self.write_head(self.head)
    }

    fn read_from(&self, at: u64, max: usize) -> Result<Batch, SpoolError> {
        let want = usize::try_from(self.len.saturating_sub(at))
            .unwrap_or(usize::MAX)
            .min(CHUNK);
        let mut buf = vec![0; want];
        let mut got = 0;
        while got < want {
            match self.file.read_at(&mut buf[got..], at + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(SpoolError {
                        what: "read",
                        path: self.path.clone(),
                        source,
                    })
                }
            }
        }
        let scan = frame::scan(&buf[..got], max);
        Ok(Batch {
            records: scan
                .records
                .into_iter()
                .map(|(end, r)| (at + end as u64, r))
                .collect(),
            end: at + scan.complete as u64,
            damaged: scan.damaged,
        })
    }

    /// Empties the file (every record is in the database). The head is set back first.
    fn reset(&mut self) -> Result<(), SpoolError> {
        self.write_head(0)?;
        self.file.set_len(0).map_err(|source| SpoolError {
            what: "empty",
            path: self.path.clone(),
            source,
        })?;
        self.head = 0;
        self.len = 0;
        Ok(())
    }

    /// Copies the records not in the database yet to a new file that replaces this one.
    fn compact(&mut self) -> Result<(), SpoolError> {
        let err = |what, path: &Path| {
            let path = path.to_owned();
            move |source| SpoolError { what, path, source }
        };
        let new_path = self.path.with_extension("spool.new");
        let mut new = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&new_path)
            .map_err(err("create", &new_path))?;
        new.set_len(0).map_err(err("empty", &new_path))?;
        let mut at = self.head;
        while at < self.len {
            let n = usize::try_from(self.len - at).unwrap_or(CHUNK).min(CHUNK);
            let mut buf = vec![0; n];
            self.file
                .read_exact_at(&mut buf, at)
                .map_err(err("read", &self.path))?;
            new.write_all(&buf).map_err(err("write", &new_path))?;
            at += n as u64;
        }
        new.sync_data().map_err(err("sync", &new_path))?;
        self.write_head(0)?;
        std::fs::rename(&new_path, &self.path).map_err(err("replace", &self.path))?;
        if let Some(dir) = self.path.parent() {
            if let Ok(d) = File::open(dir) {
                d.sync_all()
                    .map_err(err("sync the directory of", &self.path))?;
            }
        }
        self.len -= self.head;
        self.head = 0;
        self.file = new;
        Ok(())
    }

    fn write_head(&self, head: u64) -> Result<(), SpoolError> {
        let tmp = self.head_path.with_extension("head.new");
        std::fs::write(&tmp, head.to_string())
            .and_then(|()| std::fs::rename(&tmp, &self.head_path))
            .map_err(|source| SpoolError {
                what: "write the head offset next to",
                path: self.path.clone(),
                source,
            })
    }
}

#[cfg(test)]
mod tests;
