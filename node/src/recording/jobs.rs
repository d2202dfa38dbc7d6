//! The background job runner: claims this node's ready jobs one at a time (see
//! `callfleet_store::jobs`), runs them, and settles them: done, again later with backoff, or
//! failed for good after [`MAX_ATTEMPTS`]. A node killed mid-job leaves its claim to run
//! out; the job is then claimed again (by this node, restarted). Background work yields to
//! load shedding: nothing is claimed while `Lifecycle::background_allowed` says no (shed level 2
//! and up; each deferral is counted).

use std::path::{Path, PathBuf};
use std::time::Duration;

use callfleet_store::{Job, JobState, RecordingFormat, StoreError};
use tracing::{debug, info, warn};

use super::{mp3, Mp3Payload, MP3_JOB};
use crate::node::Base;
use crate::now_ms;

/// How often the runner looks for work when it found none.
const POLL: Duration = Duration::from_secs(2);
/// How long a claim lasts; a job not settled by then is taken again.
const CLAIM: Duration = Duration::from_secs(600);
/// Attempts before a job is failed for good.
pub const MAX_ATTEMPTS: i64 = 6;
/// The first retry's delay; each next one doubles, up to [`BACKOFF_MAX`].
const BACKOFF_FIRST: Duration = Duration::from_secs(30);
const BACKOFF_MAX: Duration = Duration::from_secs(3600);

/// What to do with a job after its `attempts`-th attempt failed, at `now_ms`: queued again
/// at the returned time, or failed for good.
pub fn after_failure(attempts: i64, now_ms: i64) -> (JobState, i64) {
    if attempts >= MAX_ATTEMPTS {
        return (JobState::Failed, now_ms);
    }
    let shift = attempts.clamp(1, 20) - 1;
    let delay = (BACKOFF_FIRST.as_millis() as i64)
        .saturating_mul(1 << shift)
        .min(BACKOFF_MAX.as_millis() as i64);
    (JobState::Queued, now_ms + delay)
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("unknown job kind {0:?}")]
    Kind(String),
    #[error("bad payload: {0}")]
    Payload(#[from] serde_json::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Mp3(#[from] mp3::Mp3Error),
    #[error("{0}")]
    Io(String),
}

impl JobError {
    /// Whether trying again cannot help.
    fn is_final(&self) -> bool {
        matches!(self, JobError::Kind(_) | JobError::Payload(_))
    }
}

/// Runs jobs until the node stops, with the node's [`Base`] (configuration, run state,
/// store, metrics) and nothing else.
pub async fn run(base: Base) {
    let worker = format!("{}/{}", base.cfg.node.name, base.life.generation);
    loop {
        let worked = base.background_allowed() && turn(&base, &worker).await;
        if !worked {
            tokio::select! {
                _ = base.life.stopping.cancelled() => return,
                _ = tokio::time::sleep(POLL) => {}
            }
        } else if base.life.stopping.is_cancelled() {
            return;
        }
    }
}

/// Claims and runs one job; `false` when there was none (or the database failed).
async fn turn(base: &Base, worker: &str) -> bool {
    let me = &base.cfg.node.name;
    let now = now_ms();
    let until = now + CLAIM.as_millis() as i64;
    let job = match base.store.claim_job(worker, me, now, until).await {
        Ok(Some(job)) => job,
        Ok(None) => return false,
        Err(e) => {
            debug!(error = %e, "cannot claim a background job");
            return false;
        }
    };
    let result = perform(base, &job).await;
    let now = now_ms();
    let metrics = base.metrics.recordings();
    let (state, next_at, error) = match &result {
        Ok(()) => (JobState::Done, now, None),
        Err(e) => {
            let (state, at) = if e.is_final() {
                (JobState::Failed, now)
            } else {
                after_failure(job.attempts, now)
            };
            warn!(job = job.id, kind = %job.kind, attempt = job.attempts, error = %e, retry = state == JobState::Queued, "background job failed");
            (state, at, Some(e.to_string()))
        }
    };
    metrics.job(state);
    match base
        .store
        .settle_job(job.id, worker, state, next_at, error.as_deref(), now)
        .await
    {
        Ok(true) => {}
        Ok(false) => warn!(
            job = job.id,
            "the job's claim ran out before it ended; it runs again"
        ),
        Err(e) => {
            warn!(job = job.id, error = %e, "cannot settle the job; it runs again once its claim runs out")
        }
    }
    true
}

async fn perform(base: &Base, job: &Job) -> Result<(), JobError> {
    match job.kind.as_str() {
        MP3_JOB => {
            let p: Mp3Payload = serde_json::from_str(&job.payload)?;
            convert(base, &p.recording).await
        }
        other => Err(JobError::Kind(other.to_string())),
    }
}

/// The MP3 conversion of one recording: encode, verify, point the row at the MP3, then
/// remove the WAV. Each step may be repeated after a crash.
async fn convert(base: &Base, uid: &str) -> Result<(), JobError> {
    let Some(rec) = base.store.recording_by_uid(uid).await? else {
        info!(
            recording = uid,
            "recording gone before its conversion; nothing to do"
        );
        return Ok(());
    };
    let wav = PathBuf::from(&rec.path);
    if rec.format == RecordingFormat::Mp3 {
        // Converted, but the WAV may have outlived a crash.
        return remove_wav(&wav.with_extension("wav"));
    }
    let mp3_path = wav.with_extension("mp3");
    let kbps = base.cfg.recording.mp3_kbps;
    let (w, m) = (wav.clone(), mp3_path.clone());
    let size = tokio::task::spawn_blocking(move || encode_verified(&w, &m, kbps))
        .await
        .map_err(|e| JobError::Io(format!("encoder task: {e}")))??;
    let moved = base
        .store
        .set_recording_file(
            rec.id,
            &rec.path,
            &mp3_path.to_string_lossy(),
            RecordingFormat::Mp3,
            size,
        )
        .await?;
    if !moved {
        // Deleted (retention) meanwhile: the MP3 is nobody's.
        remove_wav(&mp3_path)?;
        return Ok(());
    }
    remove_wav(&wav)?;
    info!(recording = uid, mp3 = %mp3_path.display(), bytes = size, "recording converted to MP3");
    Ok(())
}

/// Encodes (replacing an MP3 left by an interrupted attempt) and verifies; the MP3's size.
fn encode_verified(wav: &Path, mp3_path: &Path, kbps: u32) -> Result<i64, JobError> {
    match std::fs::remove_file(mp3_path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(JobError::Io(format!("remove {}: {e}", mp3_path.display()))),
    }
    let held = mp3::encode(wav, mp3_path, kbps)?;
    if let Err(e) = mp3::verify(mp3_path, &held) {
        remove_wav(mp3_path)?;
        return Err(e.into());
    }
    let size = std::fs::metadata(mp3_path)
        .map_err(|e| JobError::Io(format!("stat {}: {e}", mp3_path.display())))?
        .len();
    Ok(size as i64)
}

/// Removes a file; one already gone is fine.
fn remove_wav(path: &Path) -> Result<(), JobError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(JobError::Io(format!("remove {}: {e}", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_then_give_up() {
        // (attempts so far, state, delay in ms)
        let cases = [
            (1, JobState::Queued, 30_000),
            (2, JobState::Queued, 60_000),
            (3, JobState::Queued, 120_000),
            (5, JobState::Queued, 480_000),
            (6, JobState::Failed, 0),
            (60, JobState::Failed, 0),
            (0, JobState::Queued, 30_000),
        ];
        for (attempts, state, delay) in cases {
            assert_eq!(
                after_failure(attempts, 1_000),
                (state, 1_000 + delay),
                "attempt {attempts}"
            );
        }
    }

    #[test]
    fn a_bad_payload_or_kind_is_not_retried() {
        assert!(JobError::Kind("x".into()).is_final());
        let bad = serde_json::from_str::<Mp3Payload>("{").unwrap_err();
        assert!(JobError::Payload(bad).is_final());
        assert!(!JobError::Io("disk".into()).is_final());
    }
}
