//! The spool's file format, pure: one record per line, `<checksum> <json>\n`, where the
//! checksum is the first 8 bytes of the SHA-256 of the JSON, in hex (16 characters). JSON
//! never holds a raw newline, so a line is a record.
//!
//! A crash may leave the file's last line half written (no newline, or zeros the file system
//! had not filled yet): [`scan`] stops before it and says where, so the spool cuts it off. A
//! complete line whose checksum does not match (a damaged disk block) is skipped and counted,
//! never replayed.
//!
//! The JSON is [`Record`]'s serde form, so it is an on-disk format: a spool written by one
//! version is replayed by the next after an upgrade. A field added to a record later needs
//! `#[serde(default)]`, and a variant or field is never renamed.

use sha2::{Digest, Sha256};

use super::Record;

/// Hex digits of the checksum.
const SUM_LEN: usize = 16;

/// The line for `record` (ends with `\n`).
pub fn encode(record: &Record) -> Vec<u8> {
    // A `Record` is plain data (strings, integers): its JSON encoding cannot fail.
    let json = serde_json::to_vec(record).unwrap_or_default();
    let mut line = Vec::with_capacity(SUM_LEN + json.len() + 2);
    line.extend_from_slice(checksum(&json).as_bytes());
    line.push(b' ');
    line.extend_from_slice(&json);
    line.push(b'\n');
    line
}

fn checksum(json: &[u8]) -> String {
    hex::encode(&Sha256::digest(json)[..SUM_LEN / 2])
}

/// What [`scan`] found in a run of bytes.
#[derive(Debug, Default)]
pub struct Scan {
    /// The records, each with the offset just past its line (relative to the bytes given).
    pub records: Vec<(usize, Record)>,
    /// Length of the complete lines: where the next record goes.
    pub complete: usize,
    /// Complete lines skipped because their checksum or JSON is wrong.
    pub damaged: usize,
}

impl Scan {
    /// Bytes after the last complete line (a torn write).
    pub fn torn(&self, total: usize) -> usize {
        total - self.complete
    }
}

/// Reads the records of `bytes`, at most `max` of them (the rest is left for a later scan:
/// `complete` then stops after the last record taken).
pub fn scan(bytes: &[u8], max: usize) -> Scan {
    let mut out = Scan::default();
    let mut at = 0;
    while out.records.len() < max {
        let Some(nl) = bytes[at..].iter().position(|&b| b == b'\n') else {
            break;
        };
        let end = at + nl + 1;
        match decode(&bytes[at..at + nl]) {
            Some(r) => out.records.push((end, r)),
            None => out.damaged += 1,
        }
        at = end;
        out.complete = end;
    }
    out
}

/// One line without its newline.
fn decode(line: &[u8]) -> Option<Record> {
    if line.len() < SUM_LEN + 1 || line[SUM_LEN] != b' ' {
        return None;
    }
    let (sum, json) = (&line[..SUM_LEN], &line[SUM_LEN + 1..]);
    if sum != checksum(json).as_bytes() {
        return None;
    }
    serde_json::from_slice(json).ok()
}

/// Whether a record of `kind` taking `len` bytes may go into a spool holding `used` bytes of
/// at most `capacity`. Live-call rows (the panel's view of calls in progress, rebuilt by the
/// node itself) give way first: past 90 % only call ends, CDRs, queue events and voicemails
/// are kept.
pub fn admit(kind: Kind, len: u64, used: u64, capacity: u64) -> bool {
    let limit = match kind {
        Kind::Live => capacity / 10 * 9,
        Kind::Kept => capacity,
    };
    used.saturating_add(len) <= limit
}

/// How much a record matters when the spool fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A live-call row or its answer time: dropped first.
    Live,
    /// Everything else.
    Kept,
}

impl Record {
    /// See [`Kind`].
    pub fn kind(&self) -> Kind {
        match self {
            Record::Live(_) | Record::Answered { .. } => Kind::Live,
            Record::Gone { .. }
            | Record::EntryGone { .. }
            | Record::Cdr(_)
            | Record::QueueEvent(_)
            | Record::Voicemail(_)
            | Record::Quality(_)
            | Record::Recording { .. } => Kind::Kept,
        }
    }
}

/// Whether the spool should copy its unreplayed tail to a new file: when more than half of
/// the file, and at least `min` bytes, are records already in the database. (An empty tail
/// is cheaper still: the file is cut to zero.)
pub fn should_compact(head: u64, len: u64, min: u64) -> bool {
    head >= min && head * 2 > len
}

#[cfg(test)]
pub(crate) mod tests;
