//! Call recordings and background jobs:
//!
//! | metric                                       | type    | labels                        |
//! |----------------------------------------------|---------|-------------------------------|
//! | `callfleet_recordings_total`                 | counter | `outcome` (see below)         |
//! | `callfleet_recording_dropped_frames_total`   | counter |                               |
//! | `callfleet_jobs_total`                       | counter | `outcome`: done, retry, failed|
//!
//! Recording outcomes: `recorded` (a recording stored), `skipped_disk_full` (not started:
//! the disk is nearly full), `stopped_disk_full` (stopped before the call's end), `failed`
//! (could not be made), `deleted` (removed by retention).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use callfleet_store::JobState;

const RECORDING_OUTCOMES: [&str; 5] = [
    "recorded",
    "skipped_disk_full",
    "stopped_disk_full",
    "failed",
    "deleted",
];
const JOB_OUTCOMES: [&str; 3] = ["done", "retry", "failed"];

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Labels {
    outcome: &'static str,
}

/// The handles, registered once.
#[derive(Debug, Default)]
pub struct RecordingMetrics {
    recordings: Family<Labels, Counter>,
    dropped: Counter,
    jobs: Family<Labels, Counter>,
}

impl RecordingMetrics {
    pub(super) fn register(&self, r: &mut Registry) {
        for outcome in RECORDING_OUTCOMES {
            self.recordings.get_or_create_owned(&Labels { outcome });
        }
        for outcome in JOB_OUTCOMES {
            self.jobs.get_or_create_owned(&Labels { outcome });
        }
        r.register(
            "recordings",
            "Call recordings by what became of them",
            self.recordings.clone(),
        );
        r.register(
            "recording_dropped_frames",
            "20 ms frames lost from recordings because the recorder or the disk fell behind",
            self.dropped.clone(),
        );
        r.register(
            "jobs",
            "Background jobs (MP3 conversion) run, by outcome",
            self.jobs.clone(),
        );
    }

    fn count(&self, outcome: &'static str) {
        self.recordings.get_or_create(&Labels { outcome }).inc();
    }

    /// A recording stored.
    pub fn recorded(&self) {
        self.count("recorded");
    }

    /// A call not recorded: the disk is nearly full.
    pub fn skipped_disk_full(&self) {
        self.count("skipped_disk_full");
    }

    /// A recording stopped before its call's end: the disk got nearly full.
    pub fn stopped_disk_full(&self) {
        self.count("stopped_disk_full");
    }

    /// A recording that could not be made.
    pub fn failed(&self) {
        self.count("failed");
    }

    /// A recording deleted by retention.
    pub fn deleted(&self) {
        self.count("deleted");
    }

    /// Frames a recording lost.
    pub fn dropped_frames(&self, n: u64) {
        self.dropped.inc_by(n);
    }

    /// Counts one job attempt by how it was settled.
    pub fn job(&self, state: JobState) {
        let outcome = match state {
            JobState::Done => "done",
            JobState::Queued => "retry",
            JobState::Failed => "failed",
        };
        self.jobs.get_or_create(&Labels { outcome }).inc();
    }
}
