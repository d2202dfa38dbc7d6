//! Music on hold: WAV files (8 kHz, mono, 16-bit) found with a glob in the configured directory
//! (the `default` class) and in each of its sub-directories (a class of that name), decoded
//! once at start and pre-encoded to PCMU and PCMA so each caller's stream only slices
//! 160-byte frames, sent by one clock per track to all its callers ([`super::clock`]).
//! With no usable file, a short tune synthesised here is played instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use audio_codec::{create_encoder, CodecType};
use tracing::{info, warn};

use super::clock::Clock;
use super::sdp::Codec;

/// Samples per 20 ms frame at 8 kHz.
pub const FRAME: usize = 160;

/// One playable track, encoded for both G.711 laws.
#[derive(Debug)]
pub struct Track {
    pub name: String,
    audio: Arc<Encoded>,
    /// The clock that sends the track to every caller hearing it (see [`super::clock`]).
    clock: Clock,
}

/// A track's audio, pre-encoded once in both G.711 laws; shared with the track's clock,
/// which cuts every listener's frames from it.
#[derive(Debug)]
pub struct Encoded {
    pcmu: Vec<u8>,
    pcma: Vec<u8>,
}

impl Encoded {
    /// `samples` (a whole number of frames) in both laws.
    pub fn from_samples(samples: &[i16]) -> Encoded {
        Encoded {
            pcmu: create_encoder(CodecType::PCMU).encode(samples),
            pcma: create_encoder(CodecType::PCMA).encode(samples),
        }
    }

    /// Number of 20 ms frames.
    pub fn frames(&self) -> usize {
        self.pcmu.len() / FRAME
    }

    /// The frame a clock's count `n` stands at (wrapping) in the given codec.
    pub fn frame_at(&self, codec: Codec, n: u64) -> &[u8] {
        let frames = self.frames().max(1) as u64;
        self.frame(codec, (n % frames) as usize)
    }

    /// Frame `i` (wrapping) in the given codec.
    pub fn frame(&self, codec: Codec, i: usize) -> &[u8] {
        let data = match codec {
            Codec::Pcmu => &self.pcmu,
            Codec::Pcma => &self.pcma,
        };
        let n = data.len() / FRAME;
        let at = (i % n.max(1)) * FRAME;
        &data[at..at + FRAME]
    }
}

impl Track {
    pub fn from_samples(name: String, mut samples: Vec<i16>) -> Track {
        let pad = (FRAME - samples.len() % FRAME) % FRAME;
        samples.extend(std::iter::repeat_n(0, pad));
        let audio = Arc::new(Encoded::from_samples(&samples));
        Track {
            name,
            clock: Clock::new(audio.clone()),
            audio,
        }
    }

    /// The track decoded back to 16-bit samples (for joining prompts).
    pub fn samples(&self) -> Vec<i16> {
        audio_codec::create_decoder(CodecType::PCMU).decode(&self.audio.pcmu)
    }

    /// The track's shared clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Number of 20 ms frames.
    pub fn frames(&self) -> usize {
        self.audio.frames()
    }

    /// The frame a clock's count `n` stands at (wrapping) in the given codec.
    pub fn frame_at(&self, codec: Codec, n: u64) -> &[u8] {
        self.audio.frame_at(codec, n)
    }

    /// Frame `i` (wrapping) in the given codec.
    pub fn frame(&self, codec: Codec, i: usize) -> &[u8] {
        self.audio.frame(codec, i)
    }
}

/// Why a WAV file was skipped.
#[derive(Debug, thiserror::Error)]
pub enum MohError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: hound::Error },
    #[error(
        "{path}: need 8000 Hz mono 16-bit PCM, got {rate} Hz, {channels} channel(s), {bits}-bit"
    )]
    Format {
        path: PathBuf,
        rate: u32,
        channels: u16,
        bits: u16,
    },
    #[error("{path}: shorter than one 20 ms frame")]
    TooShort { path: PathBuf },
}

/// The tracks of one music-on-hold class, shared by every call that plays it.
#[derive(Debug, Clone)]
pub struct Playlist {
    tracks: Arc<Vec<Track>>,
}

impl Playlist {
    /// The track for the n-th call (callers are spread over the tracks).
    pub fn track(&self, n: usize) -> &Track {
        &self.tracks[n % self.tracks.len()]
    }

    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    /// Never true: a playlist holds at least one track.
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }
}

/// The class every queue starts with: the WAV files directly in `media.moh_dir`.
pub const DEFAULT_CLASS: &str = "default";

/// Music on hold by class: `default` from `dir/*.wav`, and one class per sub-directory
/// `dir/CLASS/*.wav` (a queue picks one by its `moh_class`).
#[derive(Debug, Clone)]
pub struct Library {
    default: Playlist,
    classes: Arc<BTreeMap<String, Playlist>>,
}

impl Library {
    /// Loads `dir/*.wav` (sorted) as the default class, falling back to the built-in tune when
    /// none is usable, and each sub-directory with a usable WAV as a class of its name.
    pub fn load(dir: &Path) -> Library {
        let mut tracks = load_tracks(dir);
        if tracks.is_empty() {
            warn!(dir = %dir.display(), "no usable music-on-hold WAV files; playing the built-in tune");
            tracks.push(Track::from_samples("built-in".into(), builtin_tune()));
        }
        let mut classes = BTreeMap::new();
        for sub in class_dirs(dir) {
            let Some(name) = sub.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                continue;
            };
            if !is_class_name(&name) || name == DEFAULT_CLASS {
                warn!(dir = %sub.display(), "music-on-hold class directory with an unusable name: left out");
                continue;
            }
            let tracks = load_tracks(&sub);
            if tracks.is_empty() {
                warn!(dir = %sub.display(), class = %name, "no usable WAV files in a music-on-hold class: its queues play the default class");
                continue;
            }
            classes.insert(
                name,
                Playlist {
                    tracks: Arc::new(tracks),
                },
            );
        }
        info!(
            count = tracks.len(),
            classes = ?classes.keys().collect::<Vec<_>>(),
            "music on hold loaded"
        );
        Library {
            default: Playlist {
                tracks: Arc::new(tracks),
            },
            classes: Arc::new(classes),
        }
    }

    /// The default class.
    pub fn default_class(&self) -> Playlist {
        self.default.clone()
    }

    /// The class `name`: the default class for `default` and for a class with no tracks.
    pub fn class(&self, name: &str) -> Playlist {
        self.classes
            .get(name)
            .cloned()
            .unwrap_or_else(|| self.default.clone())
    }

    /// The names of the classes besides `default`.
    pub fn class_names(&self) -> impl Iterator<Item = &str> {
        self.classes.keys().map(String::as_str)
    }
}

/// A class name as the admin forms take it ([`callfleet_web::names`]).
fn is_class_name(name: &str) -> bool {
    callfleet_web::names::check(callfleet_web::names::Kind::Class, name).is_ok()
}

/// The usable tracks of `dir/*.wav`, sorted by path; unusable files are logged and skipped.
fn load_tracks(dir: &Path) -> Vec<Track> {
    let mut paths: Vec<PathBuf> = match glob::glob(&dir.join("*.wav").to_string_lossy()) {
        Ok(paths) => paths.filter_map(Result::ok).collect(),
        Err(e) => {
            warn!(dir = %dir.display(), error = %e, "bad music-on-hold directory pattern");
            Vec::new()
        }
    };
    paths.sort();
    let mut tracks = Vec::new();
    for path in paths {
        match read_wav(&path) {
            Ok(t) => tracks.push(t),
            Err(e) => warn!(error = %e, "skipping music-on-hold file"),
        }
    }
    tracks
}

/// The sub-directories of `dir`, sorted (none when it cannot be read).
fn class_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|list| {
            list.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

pub fn read_wav(path: &Path) -> Result<Track, MohError> {
    let reader = hound::WavReader::open(path).map_err(|source| MohError::Read {
        path: path.into(),
        source,
    })?;
    let spec = reader.spec();
    if spec.sample_rate != 8000
        || spec.channels != 1
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
    {
        return Err(MohError::Format {
            path: path.into(),
            rate: spec.sample_rate,
            channels: spec.channels,
            bits: spec.bits_per_sample,
        });
    }
    let samples: Vec<i16> = reader
        .into_samples::<i16>()
        .collect::<Result<_, _>>()
        .map_err(|source| MohError::Read {
            path: path.into(),
            source,
        })?;
    if samples.len() < FRAME {
        return Err(MohError::TooShort { path: path.into() });
    }
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Track::from_samples(name, samples))
}

/// A gentle arpeggio (C major, A minor, F major, G major), 8 kHz, about 13 s.
pub fn builtin_tune() -> Vec<i16> {
    const CHORDS: [[f32; 4]; 4] = [
        [261.63, 329.63, 392.00, 523.25],
        [220.00, 261.63, 329.63, 440.00],
        [174.61, 220.00, 261.63, 349.23],
        [196.00, 246.94, 293.66, 392.00],
    ];
    let note = 3200; // 0.4 s
    let mut out = Vec::with_capacity(CHORDS.len() * 8 * note);
    for chord in CHORDS {
        for step in 0..8 {
            let f = chord[[0, 1, 2, 3, 2, 1, 2, 3][step]];
            for i in 0..note {
                let t = i as f32 / 8000.0;
                let env = (1.0 - i as f32 / note as f32).powf(1.5) * (i as f32 / 80.0).min(1.0);
                let s = (2.0 * std::f32::consts::PI * f * t).sin() * 0.6
                    + (4.0 * std::f32::consts::PI * f * t).sin() * 0.15;
                out.push((s * env * 9000.0) as i16);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
