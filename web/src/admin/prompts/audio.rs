//! An uploaded recording (WAV of any PCM format and rate, or MP3) turned into what the nodes
//! play: 8 kHz mono 16-bit WAV. Decoded by symphonia, the channels averaged, resampled by
//! rubato's FFT resampler (band-limited, so a 44.1 kHz recording does not alias into the
//! telephone band), then written by hound. Pure: bytes in, bytes out.

use std::io::Cursor;

use rubato::audioadapter_buffers::direct::SequentialSliceOfVecs;
use rubato::{Fft, FixedSync, Resampler};
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::DecoderOptions;
use symphonia::core::errors::Error as DecodeError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// The rate the nodes play prompts at.
pub const RATE: u32 = 8_000;
/// The longest prompt taken, in seconds (a menu prompt is a few seconds to a minute).
pub const MAX_SECONDS: u32 = 300;

/// Why an upload cannot be a prompt.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AudioError {
    /// Not a format symphonia reads, or damaged beyond its frames.
    #[error("the file is not a WAV or MP3 recording this node can read ({0})")]
    Unreadable(String),
    /// No samples at all.
    #[error("the recording holds no sound")]
    Empty,
    /// Past [`MAX_SECONDS`].
    #[error("the recording is longer than {MAX_SECONDS} s")]
    TooLong,
    /// A rate outside 4 to 192 kHz.
    #[error("the recording's sample rate {0} Hz is not one this node takes (4000 to 192000)")]
    Rate(u32),
    /// The resampler refused it.
    #[error("the recording cannot be resampled: {0}")]
    Resample(String),
    /// The WAV could not be written.
    #[error("the prompt cannot be written: {0}")]
    Write(String),
}

/// A prompt ready to store: its WAV and its length in samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// 8 kHz mono 16-bit WAV.
    pub wav: Vec<u8>,
    /// Its length in samples.
    pub samples: i64,
}

/// Converts an uploaded recording to an 8 kHz mono 16-bit WAV.
pub fn to_prompt(bytes: Vec<u8>) -> Result<Prompt, AudioError> {
    let (rate, mono) = decode_mono(bytes)?;
    let samples = resample(rate, mono)?;
    if samples.is_empty() {
        return Err(AudioError::Empty);
    }
    let pcm: Vec<i16> = samples
        .iter()
        .map(|s| (s.clamp(-1.0, 1.0) * f32::from(i16::MAX)) as i16)
        .collect();
    Ok(Prompt {
        samples: pcm.len() as i64,
        wav: write_wav(&pcm).map_err(|e| AudioError::Write(e.to_string()))?,
    })
}

fn unreadable(e: impl std::fmt::Display) -> AudioError {
    AudioError::Unreadable(e.to_string())
}

/// The recording's rate and its channels averaged into one, stopping (with an error) past
/// [`MAX_SECONDS`] so a small file cannot expand into unbounded memory.
fn decode_mono(bytes: Vec<u8>) -> Result<(u32, Vec<f32>), AudioError> {
    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes)), Default::default());
    let probed = symphonia::default::get_probe()
        .format(
            &Hint::new(),
            source,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(unreadable)?;
    let mut format = probed.format;
    let track = format
        .default_track()
        .ok_or_else(|| AudioError::Unreadable("no audio track".into()))?;
    let track_id = track.id;
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(unreadable)?;
    let mut rate = track.codec_params.sample_rate.unwrap_or(0);
    let mut mono = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(DecodeError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(unreadable(e)),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            // A damaged frame is skipped, as players do.
            Err(DecodeError::DecodeError(_)) => continue,
            Err(e) => return Err(unreadable(e)),
        };
        let spec = *decoded.spec();
        rate = spec.rate;
        if !(4_000..=192_000).contains(&rate) {
            return Err(AudioError::Rate(rate));
        }
        let channels = spec.channels.count().max(1);
        let mut buf = SampleBuffer::<f32>::new(decoded.capacity() as u64, spec);
        buf.copy_interleaved_ref(decoded);
        mono.extend(
            buf.samples()
                .chunks(channels)
                .map(|frame| frame.iter().sum::<f32>() / channels as f32),
        );
        if mono.len() as u64 > u64::from(rate) * u64::from(MAX_SECONDS) {
            return Err(AudioError::TooLong);
        }
    }
    if mono.is_empty() {
        return Err(AudioError::Empty);
    }
    Ok((rate, mono))
}

/// `mono` at `rate` resampled to [`RATE`].
fn resample(rate: u32, mono: Vec<f32>) -> Result<Vec<f32>, AudioError> {
    if rate == RATE {
        return Ok(mono);
    }
    let fail = |e: &dyn std::fmt::Display| AudioError::Resample(e.to_string());
    let mut resampler = Fft::<f32>::new(rate as usize, RATE as usize, 1024, 1, FixedSync::Both)
        .map_err(|e| fail(&e))?;
    let frames = mono.len();
    let input = [mono];
    let adapter = SequentialSliceOfVecs::new(&input, 1, frames).map_err(|e| fail(&e))?;
    let out = resampler
        .process_all(&adapter, frames, None)
        .map_err(|e| fail(&e))?;
    Ok(out.take_data())
}

fn write_wav(pcm: &[i16]) -> Result<Vec<u8>, hound::Error> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = Cursor::new(Vec::with_capacity(44 + pcm.len() * 2));
    let mut w = hound::WavWriter::new(&mut out, spec)?;
    for s in pcm {
        w.write_sample(*s)?;
    }
    w.finalize()?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests;
