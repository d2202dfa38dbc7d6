//! WAV to MP3 with LAME, and the check that an MP3 is whole before its WAV goes: decoded
//! (a pure-Rust decoder, not LAME) to the same channels, rate and length.

use std::io::Write;
use std::path::Path;

use mp3lame_encoder::{Bitrate, Builder, FlushNoGap, InterleavedPcm, Mode, Quality};
use symphonia::core::codecs::DecoderOptions;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// Stereo frames encoded per call into LAME (1 s at 8 kHz).
const CHUNK: usize = 8000;
/// How far the decoded length may be from the WAV's: LAME's delay and padding (a few
/// hundred samples) and a frame's rounding.
const SLACK_MS: i64 = 250;

#[derive(Debug, thiserror::Error)]
pub enum Mp3Error {
    #[error("read the WAV: {0}")]
    Wav(#[from] hound::Error),
    #[error("the WAV is not 16-bit PCM at 8 kHz ({0} channels, {1} Hz, {2} bits)")]
    WavFormat(u16, u32, u16),
    #[error("LAME: {0}")]
    Lame(String),
    #[error("write the MP3: {0}")]
    Io(#[from] std::io::Error),
    #[error("decode the MP3: {0}")]
    Decode(String),
    #[error("the MP3 does not match the WAV: {0}")]
    Mismatch(String),
}

/// What a decoded MP3 holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    pub channels: usize,
    pub rate: u32,
    /// Samples per channel.
    pub frames: u64,
}

impl Decoded {
    pub fn duration_ms(&self) -> i64 {
        if self.rate == 0 {
            return 0;
        }
        (self.frames * 1000 / u64::from(self.rate)) as i64
    }
}

fn bitrate(kbps: u32) -> Bitrate {
    match kbps {
        8 => Bitrate::Kbps8,
        16 => Bitrate::Kbps16,
        24 => Bitrate::Kbps24,
        40 => Bitrate::Kbps40,
        48 => Bitrate::Kbps48,
        64 => Bitrate::Kbps64,
        _ => Bitrate::Kbps32,
    }
}

fn lame<E: std::fmt::Display>(e: E) -> Mp3Error {
    Mp3Error::Lame(e.to_string())
}

/// Encodes the WAV at `wav` (8 kHz 16-bit, mono or stereo) into a new file `mp3`; returns
/// the WAV's length in milliseconds.
pub fn encode(wav: &Path, mp3: &Path, kbps: u32) -> Result<i64, Mp3Error> {
    let mut reader = hound::WavReader::open(wav)?;
    let spec = reader.spec();
    if spec.sample_rate != 8000 || spec.bits_per_sample != 16 || !(1..=2).contains(&spec.channels) {
        return Err(Mp3Error::WavFormat(
            spec.channels,
            spec.sample_rate,
            spec.bits_per_sample,
        ));
    }
    let mut b = Builder::new().ok_or_else(|| lame("cannot create an encoder"))?;
    b.set_num_channels(2).map_err(lame)?;
    b.set_sample_rate(8000).map_err(lame)?;
    b.set_brate(bitrate(kbps)).map_err(lame)?;
    b.set_mode(Mode::JointStereo).map_err(lame)?;
    b.set_quality(Quality::Good).map_err(lame)?;
    let mut enc = b.build().map_err(lame)?;
    let mut out = super::super::media::record::private_file(mp3)?;
    let mut buf = Vec::new();
    let mut chunk = Vec::with_capacity(2 * CHUNK);
    let mut frames = 0u64;
    let mut samples = reader.samples::<i16>();
    loop {
        chunk.clear();
        for s in samples.by_ref().take(CHUNK * usize::from(spec.channels)) {
            let s = s?;
            chunk.push(s);
            if spec.channels == 1 {
                chunk.push(s);
            }
        }
        if chunk.is_empty() {
            break;
        }
        frames += (chunk.len() / 2) as u64;
        buf.clear();
        buf.reserve(mp3lame_encoder::max_required_buffer_size(chunk.len() / 2));
        enc.encode_to_vec(InterleavedPcm(&chunk), &mut buf)
            .map_err(lame)?;
        out.write_all(&buf)?;
    }
    buf.clear();
    buf.reserve(7200);
    enc.flush_to_vec::<FlushNoGap>(&mut buf).map_err(lame)?;
    out.write_all(&buf)?;
    out.sync_all()?;
    Ok((frames / 8) as i64)
}

/// Decodes the whole MP3 at `path`.
pub fn decode(path: &Path) -> Result<Decoded, Mp3Error> {
    let bad = |e: SymphoniaError| Mp3Error::Decode(e.to_string());
    let file = std::fs::File::open(path)?;
    let stream = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    hint.with_extension("mp3");
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            stream,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(bad)?;
    let mut format = probed.format;
    let track = format
        .default_track()
        .ok_or_else(|| Mp3Error::Decode("no audio track".into()))?;
    let (track_id, params) = (track.id, track.codec_params.clone());
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .map_err(bad)?;
    let mut got = Decoded {
        channels: 0,
        rate: 0,
        frames: 0,
    };
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break
            }
            Err(e) => return Err(bad(e)),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let audio = decoder.decode(&packet).map_err(bad)?;
        let spec = audio.spec();
        got.channels = spec.channels.count();
        got.rate = spec.rate;
        got.frames += audio.frames() as u64;
    }
    Ok(got)
}

/// Checks that the MP3 at `path` decodes to stereo at 8 kHz and about `expect_ms` long.
pub fn verify(path: &Path, expect_ms: i64) -> Result<Decoded, Mp3Error> {
    let d = decode(path)?;
    check(&d, expect_ms).map(|()| d)
}

/// The verdict on a decoded MP3 (pure).
pub fn check(d: &Decoded, expect_ms: i64) -> Result<(), Mp3Error> {
    if d.channels != 2 || d.rate != 8000 {
        return Err(Mp3Error::Mismatch(format!(
            "{} channels at {} Hz, expected 2 at 8000",
            d.channels, d.rate
        )));
    }
    let got = d.duration_ms();
    if (got - expect_ms).abs() > SLACK_MS {
        return Err(Mp3Error::Mismatch(format!(
            "{got} ms decoded, the WAV holds {expect_ms} ms"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
