//! Music on hold: WAV files (8 kHz, mono, 16-bit) found with a glob in the configured directory,
//! decoded once at start and pre-encoded to PCMU and PCMA so each caller's stream only slices
//! 160-byte frames. With no usable file, a short tune synthesised here is played instead.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use audio_codec::{create_encoder, CodecType};
use tracing::{info, warn};

use super::sdp::Codec;

/// Samples per 20 ms frame at 8 kHz.
pub const FRAME: usize = 160;

/// One playable track, encoded for both G.711 laws.
#[derive(Debug)]
pub struct Track {
    pub name: String,
    pcmu: Vec<u8>,
    pcma: Vec<u8>,
}

impl Track {
    pub fn from_samples(name: String, mut samples: Vec<i16>) -> Track {
        let pad = (FRAME - samples.len() % FRAME) % FRAME;
        samples.extend(std::iter::repeat_n(0, pad));
        let pcmu = create_encoder(CodecType::PCMU).encode(&samples);
        let pcma = create_encoder(CodecType::PCMA).encode(&samples);
        Track { name, pcmu, pcma }
    }

    /// The track decoded back to 16-bit samples (for joining prompts).
    pub fn samples(&self) -> Vec<i16> {
        audio_codec::create_decoder(CodecType::PCMU).decode(&self.pcmu)
    }

    /// Number of 20 ms frames.
    pub fn frames(&self) -> usize {
        self.pcmu.len() / FRAME
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

/// All tracks, shared by every call.
#[derive(Debug, Clone)]
pub struct Library {
    tracks: Arc<Vec<Track>>,
}

impl Library {
    /// Loads `dir/*.wav` (sorted); falls back to the built-in tune when none is usable.
    pub fn load(dir: &Path) -> Library {
        let pattern = dir.join("*.wav");
        let mut paths: Vec<PathBuf> = match glob::glob(&pattern.to_string_lossy()) {
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
        if tracks.is_empty() {
            warn!(dir = %dir.display(), "no usable music-on-hold WAV files; playing the built-in tune");
            tracks.push(Track::from_samples("built-in".into(), builtin_tune()));
        }
        info!(count = tracks.len(), "music on hold loaded");
        Library {
            tracks: Arc::new(tracks),
        }
    }

    /// The track for the n-th call (callers are spread over the tracks).
    pub fn track(&self, n: usize) -> &Track {
        &self.tracks[n % self.tracks.len()]
    }

    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    /// Never true: a library holds at least the built-in tune.
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }
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
