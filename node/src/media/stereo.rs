//! Recording a bridged call as a stereo WAV (8 kHz, 16-bit; left the caller, right the agent),
//! fed from the call's [`Tap`]. The bridge only publishes to the tap, which never waits: a
//! recorder that falls behind loses frames there. Every `TICK` (250 ms) the recorder takes
//! what the tap holds, makes one 20 ms frame of each side per 20 ms of wall clock since the
//! start ([`Aligner`], silence for a side with nothing buffered), and once a second hands
//! them together to a writer thread through a short queue, which writes them with one system
//! call; when the disk is too slow the queue is full and the frames are dropped. Either loss
//! is counted ([`Outcome::dropped_frames`]).
//! Waking per tick rather than per packet keeps a recording cheap: a call's RTP arrives as
//! 100 packets a second, and waking the recorder for each (and its writer every 20 ms) cost
//! more than half as much CPU as the rest of the call (measured with `bench/evidence`). A
//! tick of 250 ms (it was 100 ms) wakes the recorder 100 times in a call of 25 s rather than
//! 250, each wake-up a timer, a poll and a park of the runtime's thread; the tap holds 64
//! frames for it, 25 arrive per tick (50 with 10 ms packets).

use std::fs::File;
use std::io::BufWriter;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::time::Duration;

use tokio::sync::broadcast::error::TryRecvError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::moh::FRAME;
use super::tap::{Fifo, Side, Tap, TapFrame};

/// One 20 ms stereo frame, interleaved (caller, agent, caller, agent, ...).
pub type Block = [i16; 2 * FRAME];
/// Frames handed to the writer at once (1 s): the writer thread wakes once a second and
/// writes them with one system call.
const BATCH: usize = 50;
/// Batches queued for the writer before new frames are dropped (2 s).
const QUEUE_BATCHES: usize = 2;
/// The disk's free space is checked this often.
const DISK_CHECK: Duration = Duration::from_secs(5);
/// How often the recorder drains the tap: well within what the tap holds (64 frames, 640 ms
/// of both sides).
const TICK: Duration = Duration::from_millis(250);
/// One frame's length.
const FRAME_MS: u128 = 20;

/// Samples per side the recorder keeps (500 ms): a tick's worth (250 ms) arrives before it
/// takes its frames, and a source's jitter comes on top.
const ALIGN_MAX: usize = 4000;

/// The two sides' samples waiting to be written, aligned per 20 ms frame.
#[derive(Debug)]
pub struct Aligner {
    caller: Fifo,
    agent: Fifo,
}

impl Default for Aligner {
    fn default() -> Self {
        Aligner {
            caller: Fifo::with_max(ALIGN_MAX),
            agent: Fifo::with_max(ALIGN_MAX),
        }
    }
}

impl Aligner {
    /// Decodes one published frame onto its side.
    pub fn push(&mut self, side: Side, pt: u8, payload: &[u8]) {
        match side {
            Side::Caller => self.caller.push(pt, payload),
            Side::Agent => self.agent.push(pt, payload),
        }
    }

    /// The next 20 ms: left the caller, right the agent.
    pub fn next_block(&mut self) -> Block {
        let (mut left, mut right) = ([0i16; FRAME], [0i16; FRAME]);
        self.caller.add_into(&mut left);
        self.agent.add_into(&mut right);
        let mut out = [0i16; 2 * FRAME];
        for ((o, l), r) in out.chunks_exact_mut(2).zip(&left).zip(&right) {
            o[0] = *l;
            o[1] = *r;
        }
        out
    }
}

/// How a recording ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub path: PathBuf,
    /// Audio written.
    pub duration_ms: i64,
    /// 20 ms frames lost (the recorder or the disk fell behind).
    pub dropped_frames: i64,
    pub size_bytes: i64,
    /// Why it stopped before the call's end, if it did.
    pub stopped: Option<String>,
}

/// A recording in progress; [`Running::finish`] stops it.
pub struct Running {
    stop: CancellationToken,
    task: JoinHandle<Outcome>,
}

impl Running {
    /// Stops the recording and closes the file.
    pub async fn finish(self) -> Outcome {
        self.stop.cancel();
        match self.task.await {
            Ok(o) => o,
            Err(e) => Outcome {
                path: PathBuf::new(),
                duration_ms: 0,
                dropped_frames: 0,
                size_bytes: 0,
                stopped: Some(format!("recorder task failed: {e}")),
            },
        }
    }
}

/// Starts recording `tap` into a new file at `path`; `disk_ok` is asked every few seconds
/// whether there is still room (a `false` stops the recording, never the call).
pub fn start(
    tap: &Tap,
    path: &Path,
    disk_ok: impl Fn() -> bool + Send + 'static,
) -> Result<Running, hound::Error> {
    let (tx, written) = spawn_writer(path)?;
    let sub = tap.subscribe();
    let stop = CancellationToken::new();
    let token = stop.clone();
    let path = path.to_path_buf();
    let task = tokio::spawn(async move {
        let mut sub = sub;
        let mut pump = Pump::new(tx);
        let stopped = pump.run(&mut sub.rx, &token, disk_ok).await;
        pump.finish(written, path, stopped).await
    });
    Ok(Running { stop, task })
}

/// What the writer thread answers once its queue closes: the samples per channel written and
/// the error that stopped it, if any (see [`write_all`]).
type Written = tokio::sync::oneshot::Receiver<(u64, Option<String>)>;

/// Creates the WAV file at `path` and starts the thread that writes it; returns the queue of
/// batches it takes and where it answers once that queue closes.
fn spawn_writer(path: &Path) -> Result<(SyncSender<Vec<Block>>, Written), hound::Error> {
    let file = super::record::private_file(path)?;
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let writer = hound::WavWriter::new(BufWriter::new(file), spec)?;
    let (tx, rx) = sync_channel::<Vec<Block>>(QUEUE_BATCHES);
    let write_path = path.to_path_buf();
    // A thread of its own (not the blocking pool): a recording lasts as long as its call.
    let (done_tx, written) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("recorder".into())
        .spawn(move || {
            if done_tx.send(write_all(writer, rx, &write_path)).is_err() {
                // The pump's task was aborted (the runtime stopping): the file is closed.
                debug!("recording closed after its recorder stopped");
            }
        })
        .map_err(hound::Error::IoError)?;
    Ok((tx, written))
}

/// The recorder task's state: the two sides being aligned, the frames made since the start,
/// the batch being filled for the writer and the frames lost so far.
struct Pump {
    aligner: Aligner,
    dropped: i64,
    started: tokio::time::Instant,
    made: u128,
    batch: Vec<Block>,
    tx: SyncSender<Vec<Block>>,
}

impl Pump {
    fn new(tx: SyncSender<Vec<Block>>) -> Pump {
        Pump {
            aligner: Aligner::default(),
            dropped: 0,
            started: tokio::time::Instant::now(),
            made: 0,
            batch: Vec::with_capacity(2 * BATCH),
            tx,
        }
    }

    /// Ticks until the recording is stopped, the tap closes, the disk is nearly full or the
    /// file cannot be written; returns why it stopped before the call's end, if it did.
    async fn run(
        &mut self,
        rx: &mut tokio::sync::broadcast::Receiver<TapFrame>,
        stop: &CancellationToken,
        disk_ok: impl Fn() -> bool,
    ) -> Option<String> {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut check = tokio::time::interval(DISK_CHECK);
        loop {
            // The last tick takes what arrived since the one before, then the loop ends.
            let last = tokio::select! {
                biased;
                _ = stop.cancelled() => true,
                _ = tick.tick() => false,
                _ = check.tick() => {
                    if !disk_ok() {
                        return Some("the disk is nearly full".to_string());
                    }
                    continue;
                },
            };
            if let ControlFlow::Break(stopped) = self.tick(rx, last) {
                return stopped;
            }
        }
    }

    /// One tick: takes what the tap holds, makes the frames due by now and hands the batch to
    /// the writer once it is full (or, at the end, whatever it holds). Breaks at the end, with
    /// the reason when the file could not be written.
    fn tick(
        &mut self,
        rx: &mut tokio::sync::broadcast::Receiver<TapFrame>,
        last: bool,
    ) -> ControlFlow<Option<String>> {
        let closed = drain(rx, &mut self.aligner, &mut self.dropped);
        let due = self.started.elapsed().as_millis() / FRAME_MS;
        let aligner = &mut self.aligner;
        self.batch
            .extend((self.made..due).map(|_| aligner.next_block()));
        self.made = self.made.max(due);
        let end = last || closed;
        if self.batch.len() >= BATCH || (end && !self.batch.is_empty()) {
            let full = std::mem::replace(&mut self.batch, Vec::with_capacity(2 * BATCH));
            match self.tx.try_send(full) {
                Ok(()) => {}
                Err(TrySendError::Full(b)) => self.dropped += b.len() as i64,
                Err(TrySendError::Disconnected(_)) => {
                    return ControlFlow::Break(Some("the file could not be written".to_string()));
                }
            }
        }
        if end {
            ControlFlow::Break(None)
        } else {
            ControlFlow::Continue(())
        }
    }

    /// Hands what is left to the writer, closes its queue and waits for the file to be
    /// closed; `stopped` says why the recording ended early, if it did.
    async fn finish(self, written: Written, path: PathBuf, stopped: Option<String>) -> Outcome {
        let Pump {
            batch, tx, dropped, ..
        } = self;
        // Stopped for a full disk: what was made still goes to the file (the room kept
        // free, `recording.min_free_mb`, is far more than a second of audio).
        if !batch.is_empty() && tx.try_send(batch).is_err() {
            debug!("the last frames of a stopped recording were not written");
        }
        drop(tx);
        let (samples, error) = match written.await {
            Ok(r) => r,
            Err(_) => (0, Some("the writer thread died".to_string())),
        };
        let size_bytes = std::fs::metadata(&path)
            .map(|m| m.len() as i64)
            .unwrap_or(0);
        Outcome {
            path,
            duration_ms: (samples / 8) as i64,
            dropped_frames: dropped,
            size_bytes,
            stopped: error.or(stopped),
        }
    }
}

fn push(aligner: &mut Aligner, f: &TapFrame) {
    aligner.push(f.side(), f.pt(), f.payload());
}

/// Takes every frame the tap holds; counts those lost to lag. True once the tap is closed.
fn drain(
    rx: &mut tokio::sync::broadcast::Receiver<TapFrame>,
    aligner: &mut Aligner,
    dropped: &mut i64,
) -> bool {
    loop {
        match rx.try_recv() {
            Ok(f) => push(aligner, &f),
            Err(TryRecvError::Lagged(n)) => *dropped += n as i64,
            Err(TryRecvError::Empty) => return false,
            Err(TryRecvError::Closed) => return true,
        }
    }
}

/// The writer thread: writes every batch of blocks until the queue closes (each batch in
/// one write); returns the samples per channel written and the error that stopped it, if any.
fn write_all(
    mut w: hound::WavWriter<BufWriter<File>>,
    rx: Receiver<Vec<Block>>,
    path: &Path,
) -> (u64, Option<String>) {
    let mut frames = 0u64;
    let mut error = None;
    for batch in rx.iter() {
        // 16-bit integer samples, as `start` made the file: the only format this writer takes.
        let mut out = w.get_i16_writer((batch.len() * 2 * FRAME) as u32);
        for s in batch.iter().flatten() {
            out.write_sample(*s);
        }
        if let Err(e) = out.flush() {
            warn!(path = %path.display(), error = %e, "recording write failed; stopping it");
            error = Some(format!("write failed: {e}"));
            break;
        }
        frames += batch.len() as u64;
    }
    if let Err(e) = w.finalize() {
        warn!(path = %path.display(), error = %e, "recording could not be closed");
        error.get_or_insert(format!("close failed: {e}"));
    }
    (frames * FRAME as u64, error)
}

#[cfg(test)]
mod tests;
