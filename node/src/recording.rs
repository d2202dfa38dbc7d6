//! Recording bridged calls: whether a call is recorded (its queue's policy, drawn per call),
//! the recorder leg (a stereo WAV fed from the call's tap, see [`crate::media::stereo`]), its
//! row in SQL (through the record writer, with the MP3 conversion job in the same write), the
//! background jobs ([`jobs`], [`mp3`]) and retention ([`retention`]).
//!
//! Recording is never allowed to hurt a call: it does not start when the disk is nearly full
//! (`recording.min_free_mb`), stops when it gets there, and a slow disk only loses frames.

pub mod forward;
pub mod jobs;
pub mod mp3;
pub mod retention;

use std::path::{Path, PathBuf};

use callfleet_store::{NewJob, RecordingFormat, RecordingPolicy, RecordingRow};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::media::stereo::{self, Outcome};
use crate::media::tap::Tap;
use crate::node::Recordings;
use crate::now_ms;
use crate::records::Record;

/// The kind of the MP3 conversion job.
pub const MP3_JOB: &str = "mp3";

/// Whether a recording may start or go on with `free_bytes` left on its file system.
pub fn enough_room(free_bytes: u64, min_free_mb: u64) -> bool {
    free_bytes >= min_free_mb.saturating_mul(1_000_000)
}

/// Whether this call is recorded: the policy with a fresh draw.
pub fn draw(policy: RecordingPolicy) -> bool {
    policy.records(rand::random_range(0..100u8))
}

/// The file of a recording: `<dir>/<UTC day>/<call id, made safe>-<start ms>.wav`.
pub fn file_for(dir: &Path, call_id: &str, started_at_ms: i64) -> PathBuf {
    let day = jiff::Timestamp::from_millisecond(started_at_ms)
        .map(|t| t.strftime("%Y-%m-%d").to_string())
        .unwrap_or_else(|_| "undated".to_string());
    let safe: String = call_id
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe = safe.trim_start_matches('.');
    dir.join(day).join(format!("{safe}-{started_at_ms}.wav"))
}

/// Free bytes on the file system of `dir` (its nearest existing ancestor).
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut at = dir;
    loop {
        match fs4::available_space(at) {
            Ok(n) => return Ok(n),
            Err(e) => match at.parent() {
                Some(p) if !p.as_os_str().is_empty() => at = p,
                _ => return Err(e),
            },
        }
    }
}

/// What the conversion job is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mp3Payload {
    /// The recording's key.
    pub recording: String,
}

/// Who a recording is of.
#[derive(Debug, Clone)]
pub struct CallInfo {
    pub call_id: String,
    pub caller: String,
    pub queue: Option<String>,
    pub agent: Option<String>,
}

/// A call's recording in progress (with what finishing it uses).
pub struct Active {
    rec: Recordings,
    running: stereo::Running,
    call: CallInfo,
    started_at_ms: i64,
}

/// Starts recording a bridged call from its tap, unless the disk is nearly full (then the
/// call goes on unrecorded: logged and counted).
pub fn start(rec: &Recordings, tap: &Tap, call: CallInfo) -> Option<Active> {
    let cfg = &rec.cfg.recording;
    let metrics = rec.metrics.recordings();
    let room = |dir: &Path, min: u64| free_bytes(dir).map(|b| enough_room(b, min));
    match room(&cfg.dir, cfg.min_free_mb) {
        Ok(true) => {}
        Ok(false) => {
            warn!(call_id = %call.call_id, dir = %cfg.dir.display(), min_free_mb = cfg.min_free_mb, "disk nearly full: the call is not recorded");
            metrics.skipped_disk_full();
            return None;
        }
        Err(e) => {
            warn!(call_id = %call.call_id, dir = %cfg.dir.display(), error = %e, "cannot read the free space: the call is not recorded");
            metrics.failed();
            return None;
        }
    }
    let started_at_ms = now_ms();
    let path = file_for(&cfg.dir, &call.call_id, started_at_ms);
    let (dir, min) = (cfg.dir.clone(), cfg.min_free_mb);
    let disk_ok = move || room(&dir, min).unwrap_or(false);
    match stereo::start(tap, &path, disk_ok) {
        Ok(running) => {
            info!(call_id = %call.call_id, path = %path.display(), "recording the call");
            Some(Active {
                rec: rec.clone(),
                running,
                call,
                started_at_ms,
            })
        }
        Err(e) => {
            warn!(call_id = %call.call_id, path = %path.display(), error = %e, "cannot create the recording");
            metrics.failed();
            None
        }
    }
}

/// Stops a recording and stores its row (with its MP3 job) through the record writer.
pub async fn finish(active: Active) {
    let rec = &active.rec;
    let out = active.running.finish().await;
    let metrics = rec.metrics.recordings();
    metrics.dropped_frames(out.dropped_frames as u64);
    if let Some(why) = &out.stopped {
        warn!(call_id = %active.call.call_id, path = %out.path.display(), why, "the recording stopped before the call ended");
        if why.contains("disk") {
            metrics.stopped_disk_full();
        }
    }
    if out.duration_ms == 0 {
        remove_empty(&out);
        metrics.failed();
        return;
    }
    metrics.recorded();
    let row = row(
        &rec.cfg.node.name,
        &active.call,
        &out,
        active.started_at_ms,
        now_ms(),
    );
    let job = rec.cfg.recording.mp3.then(|| NewJob {
        kind: MP3_JOB.to_string(),
        payload: serde_json::to_string(&Mp3Payload {
            recording: row.uid.clone(),
        })
        .unwrap_or_default(),
        node: Some(row.node.clone()),
        at_ms: row.created_at_ms,
    });
    info!(call_id = %row.call_id, path = %row.path, duration_ms = row.duration_ms, dropped = row.dropped_frames, "call recorded");
    rec.recorder.send(Record::Recording { row, job });
}

fn remove_empty(out: &Outcome) {
    if let Err(e) = std::fs::remove_file(&out.path) {
        warn!(path = %out.path.display(), error = %e, "cannot remove an empty recording");
    }
}

/// The row of a finished recording; its key is the node and the file (unique on a node).
pub fn row(node: &str, call: &CallInfo, out: &Outcome, started: i64, now: i64) -> RecordingRow {
    let path = out.path.to_string_lossy().into_owned();
    RecordingRow {
        id: 0,
        uid: format!("{node}:{path}"),
        node: node.to_string(),
        call_id: call.call_id.clone(),
        queue: call.queue.clone(),
        agent: call.agent.clone(),
        caller: call.caller.clone(),
        path,
        format: RecordingFormat::Wav,
        duration_ms: out.duration_ms,
        size_bytes: out.size_bytes,
        dropped_frames: out.dropped_frames,
        started_at_ms: started,
        created_at_ms: now,
    }
}

#[cfg(test)]
mod tests;
