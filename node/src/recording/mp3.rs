//! WAV to MP3 with LAME, and the check that an MP3 is whole before its WAV goes: its frame
//! headers are walked ([`walk`]: no decoding) and must hold the WAV's channels and rate, cover
//! all of its samples and end on a frame's end.
//!
//! The encoder's settings were chosen by measuring 60 s of stereo telephone speech (two
//! synthetic voices taking turns, through G.711 µ-law, 8 kHz) with this LAME, CPU time per
//! minute of audio on the shared development host (operations.md, "Benchmarks", has what
//! this did to a call's evidence in `bench/evidence`):
//!
//! | LAME quality, mode             | 16 kbit/s | 24 kbit/s | 32 kbit/s |
//! |--------------------------------|----------:|----------:|----------:|
//! | `Quality::VeryNice` (3), joint |    111 ms |    115 ms |    105 ms |
//! | `Quality::Good` (5), joint     |     89 ms |     90 ms |     91 ms |
//! | `Quality::Ok` (7), joint       |     59 ms |     61 ms |     65 ms |
//! | `Quality::Ok` (7), stereo      |           |           |     51 ms |
//!
//! Levels 0 to 6 add noise shaping (and from 4 down, more searching), made for music at
//! high rates; on speech band-limited to 3.4 kHz the decoded signal is no further from the
//! original without it (signal-to-noise 15.3 dB at `Good`, 16.4 dB at `Ok`, 32 kbit/s).
//! Plain stereo rather than joint: the two channels are two different people, so mid/side
//! coding has little to share, its per-frame decision costs a fifth of the encoder, and it
//! would spread one party's quantisation noise into the other's channel. The bit rate hardly
//! moves the CPU; it is a matter of size and sound (`recording.mp3_kbps`, 32 kbit/s by
//! default: 16 kbit/s per party, about 14 MB an hour). Decoding the whole MP3 again to check
//! it cost another 9 ms per minute; walking its frame headers costs microseconds.
//!
//! Counted in instructions (`valgrind --tool=callgrind`, which the host's load does not
//! move), [`encode`] takes 511 million per minute of stereo speech (the example
//! `evidence_profile mp3 60`), 487 million of them inside LAME: its psychoacoustic model and
//! the model's FFTs 35 %, the polyphase filterbank and MDCT 20 %, quantisation 30 %, Huffman
//! coding 9 %. Each other setting alone, against these (60 s of two synthetic voices taking
//! turns through µ-law; signal-to-noise of the decoded MP3 against its input, left/right):
//!
//! | setting                                   | instructions | MP3 a minute | SNR L/R (dB) |
//! |-------------------------------------------|-------------:|-------------:|-------------:|
//! | these: CBR 32 kbit/s, level 7, stereo     |        487 M |       241 kB |  24.5 / 24.9 |
//! | level 9                                   |        487 M |              |              |
//! | joint stereo                              |        572 M |              |              |
//! | 24 / 16 kbit/s                            |  476 / 456 M | 181 / 120 kB | 23.2 / 23.9, 20.0 / 21.6 |
//! | 48 kbit/s                                 |        502 M |              |              |
//! | VBR (`mtrh`) at V7                        |        425 M |       188 kB |  23.3 / 25.6 |
//! | ABR                                       |        513 M |              |              |
//! | low-pass at 3.4 kHz (LAME's C API only)   |        468 M |              |              |
//! | bit reservoir off / ATH off / no short blocks | 482 / 487 / 486 M |      |              |
//! | the C built with `-ffast-math -funroll-loops` |    471 M |              |              |
//!
//! So the settings are left as they are. LAME does not resample: with the input at 8 kHz
//! it picks 8 kHz out at every bit rate offered (`recording.mp3_kbps`), which [`check`]
//! insists on. mp3lame-sys builds LAME's C at `-O3` in release builds (the flags LAME's own
//! build would add save 3 %). The psychoacoustic model runs at every quality level with a
//! constant bit rate: level 8 is level 7, and 9 drops only what 7 already drops (noise
//! shaping), for the same count. What is left to gain is VBR's 13 % (and a fifth less disk),
//! but a VBR file needs LAME's Xing/Info frame written back at its start for players to
//! show its length and seek in it (a browser's `<audio>` estimates both from the first
//! frame), and that frame would be counted by [`walk`]: not worth it for 2 ms a call.

use std::io::{Read, Write};
use std::path::Path;

use mp3lame_encoder::{Bitrate, Builder, FlushGap, InterleavedPcm, Mode, MonoPcm, Quality};

/// Frames (samples per channel) encoded per call into LAME (1 s at 8 kHz).
const CHUNK: usize = 8000;
/// LAME's quality (speed) level: see the module's notes.
const QUALITY: Quality = Quality::Ok;
/// What LAME puts before the first sample: its encoder delay (576) and the decoder's (529).
/// An MP3 that covers fewer than a WAV's samples plus these lost the WAV's end.
pub const DELAY: u64 = 576 + 529;
/// The most an MP3 may cover beyond its WAV: LAME's lead of 1152 (the delay and the
/// granule it flushes) and the padding of the last frame (less than one frame of 576).
pub const MAX_EXTRA: u64 = 1152 + 575;

#[derive(Debug, thiserror::Error)]
pub enum Mp3Error {
    #[error("read the WAV: {0}")]
    Wav(#[from] hound::Error),
    #[error("the WAV is not 16-bit PCM at 8 kHz ({0} channels, {1} Hz, {2} bits)")]
    WavFormat(u16, u32, u16),
    #[error("LAME: {0}")]
    Lame(String),
    #[error("read or write the MP3: {0}")]
    Io(#[from] std::io::Error),
    #[error("not an MP3 stream: {0}")]
    Frames(String),
    #[error("the MP3 does not match the WAV: {0}")]
    Mismatch(String),
}

/// What a WAV held, as encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoded {
    pub channels: u16,
    /// Samples per channel.
    pub samples: u64,
}

impl Encoded {
    /// The WAV's length (8 kHz).
    pub fn duration_ms(&self) -> i64 {
        (self.samples / 8) as i64
    }
}

/// What an MP3's frame headers say, all frames alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stream {
    pub frames: u64,
    pub channels: u16,
    pub rate: u32,
    /// Samples per channel the frames hold.
    pub samples: u64,
}

/// One Layer III frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub rate: u32,
    pub channels: u16,
    /// The frame's length in bytes, header included.
    pub len: usize,
    /// Samples per channel in the frame.
    pub samples: u64,
}

/// Layer III bit rates (kbit/s) by index: MPEG 1, then MPEG 2 and 2.5.
const KBPS_V1: [u32; 15] = [
    0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
];
const KBPS_V2: [u32; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];

/// Reads a Layer III frame header (pure): sync word, version, layer, bit rate, sample rate,
/// padding and channel mode. Free-format and reserved values are refused.
pub fn header(b: [u8; 4]) -> Result<Header, String> {
    let h = u32::from_be_bytes(b);
    if h >> 21 != 0x7ff {
        return Err(format!("no frame sync ({h:08x})"));
    }
    let version = (h >> 19) & 3;
    if (h >> 17) & 3 != 1 {
        return Err(format!("not Layer III ({h:08x})"));
    }
    let (rates, kbps, per_frame, coeff): ([u32; 3], &[u32; 15], u64, u32) = match version {
        3 => ([44_100, 48_000, 32_000], &KBPS_V1, 1152, 144),
        2 => ([22_050, 24_000, 16_000], &KBPS_V2, 576, 72),
        0 => ([11_025, 12_000, 8_000], &KBPS_V2, 576, 72),
        _ => return Err(format!("reserved MPEG version ({h:08x})")),
    };
    let bitrate = (h >> 12) & 15;
    let rate = (h >> 10) & 3;
    if bitrate == 0 || bitrate == 15 || rate == 3 {
        return Err(format!(
            "free or reserved bit rate or sample rate ({h:08x})"
        ));
    }
    let rate = rates[rate as usize];
    let padding = (h >> 9) & 1;
    let len = coeff * kbps[bitrate as usize] * 1000 / rate + padding;
    Ok(Header {
        rate,
        channels: if (h >> 6) & 3 == 3 { 1 } else { 2 },
        len: len as usize,
        samples: per_frame,
    })
}

/// Walks an MP3 stream frame by frame to its end (pure but for reading `r`): every frame
/// must have a valid header and the same rate and channels, and the stream must end where a
/// frame ends. No tags are allowed (the encoder writes none).
pub fn walk(mut r: impl Read) -> Result<Stream, Mp3Error> {
    let mut s = Stream {
        frames: 0,
        channels: 0,
        rate: 0,
        samples: 0,
    };
    let mut at = 0u64;
    loop {
        let mut b = [0u8; 4];
        let got = read_full(&mut r, &mut b)?;
        if got == 0 {
            break;
        }
        if got < 4 {
            return Err(Mp3Error::Frames(format!("{got} stray bytes at {at}")));
        }
        let h = header(b).map_err(|e| Mp3Error::Frames(format!("at byte {at}: {e}")))?;
        if s.frames > 0 && (h.rate, h.channels) != (s.rate, s.channels) {
            return Err(Mp3Error::Frames(format!(
                "the frame at byte {at} has {} channels at {} Hz, the first {} at {}",
                h.channels, h.rate, s.channels, s.rate
            )));
        }
        let body = h.len as u64 - 4;
        let skipped = std::io::copy(&mut r.by_ref().take(body), &mut std::io::sink())?;
        if skipped < body {
            return Err(Mp3Error::Frames(format!(
                "the stream ends inside the frame at byte {at}"
            )));
        }
        (s.channels, s.rate) = (h.channels, h.rate);
        s.frames += 1;
        s.samples += h.samples;
        at += h.len as u64;
    }
    if s.frames == 0 {
        return Err(Mp3Error::Frames("no frames".into()));
    }
    Ok(s)
}

/// Fills `buf` as far as the stream goes; the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The verdict on a walked MP3 against its WAV (pure): same channels, 8 kHz, and every
/// sample of the WAV covered past LAME's delay, with no more than LAME's padding after.
pub fn check(s: &Stream, wav: &Encoded) -> Result<(), Mp3Error> {
    if s.channels != wav.channels || s.rate != 8000 {
        return Err(Mp3Error::Mismatch(format!(
            "{} channels at {} Hz, expected {} at 8000",
            s.channels, s.rate, wav.channels
        )));
    }
    if s.samples < wav.samples + DELAY {
        return Err(Mp3Error::Mismatch(format!(
            "{} samples in the frames, the WAV's {} need {}",
            s.samples,
            wav.samples,
            wav.samples + DELAY
        )));
    }
    if s.samples > wav.samples + MAX_EXTRA {
        return Err(Mp3Error::Mismatch(format!(
            "{} samples in the frames, more than the WAV's {} and LAME's padding",
            s.samples, wav.samples
        )));
    }
    Ok(())
}

/// Checks the MP3 at `path` against the WAV it was made of.
pub fn verify(path: &Path, wav: &Encoded) -> Result<Stream, Mp3Error> {
    let file = std::io::BufReader::with_capacity(64 * 1024, std::fs::File::open(path)?);
    let s = walk(file)?;
    check(&s, wav).map(|()| s)
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

/// Encodes the WAV at `wav` (8 kHz 16-bit, mono or stereo) into a new file `mp3` with as
/// many channels; returns what the WAV held.
pub fn encode(wav: &Path, mp3: &Path, kbps: u32) -> Result<Encoded, Mp3Error> {
    let reader = hound::WavReader::open(wav)?;
    let spec = reader.spec();
    if spec.sample_rate != 8000
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
        || !(1..=2).contains(&spec.channels)
    {
        return Err(Mp3Error::WavFormat(
            spec.channels,
            spec.sample_rate,
            spec.bits_per_sample,
        ));
    }
    let stereo = spec.channels == 2;
    let mut b = Builder::new().ok_or_else(|| lame("cannot create an encoder"))?;
    b.set_num_channels(if stereo { 2 } else { 1 })
        .map_err(lame)?;
    b.set_sample_rate(8000).map_err(lame)?;
    b.set_brate(bitrate(kbps)).map_err(lame)?;
    b.set_mode(if stereo { Mode::Stereo } else { Mode::Mono })
        .map_err(lame)?;
    b.set_quality(QUALITY).map_err(lame)?;
    // The VBR/Info tag would be a placeholder frame of silence (it is only filled in by a
    // second pass over the file): left out, the MP3 starts with the audio.
    b.set_to_write_vbr_tag(false).map_err(lame)?;
    let mut enc = b.build().map_err(lame)?;
    let mut out = super::super::media::record::private_file(mp3)?;
    let per_chunk = CHUNK * usize::from(spec.channels);
    let mut buf = Vec::new();
    let mut chunk = Vec::with_capacity(per_chunk);
    let mut bytes = vec![0u8; 2 * per_chunk];
    let mut samples = 0u64;
    // The samples are read in bulk past the header hound has read (16-bit little-endian, as
    // the recorder writes them): hound's per-sample reading cost 8-16 ms per minute of
    // stereo audio, a sixth to a third of LAME, reading in bulk 0.2 ms.
    let mut left = reader.len() as usize;
    let mut data = reader.into_inner();
    while left > 0 {
        let n = left.min(per_chunk);
        data.read_exact(&mut bytes[..2 * n])
            .map_err(|e| Mp3Error::Wav(hound::Error::IoError(e)))?;
        left -= n;
        chunk.clear();
        chunk.extend(
            bytes[..2 * n]
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]])),
        );
        let frames = chunk.len() / usize::from(spec.channels);
        samples += frames as u64;
        buf.clear();
        buf.reserve(mp3lame_encoder::max_required_buffer_size(frames));
        if stereo {
            enc.encode_to_vec(InterleavedPcm(&chunk), &mut buf)
        } else {
            enc.encode_to_vec(MonoPcm(&chunk), &mut buf)
        }
        .map_err(lame)?;
        out.write_all(&buf)?;
    }
    buf.clear();
    buf.reserve(7200);
    // A flush that encodes what LAME still holds (the last ~1100 samples), padded to a
    // frame: the no-gap flush would only write out finished frames and lose the WAV's end.
    enc.flush_to_vec::<FlushGap>(&mut buf).map_err(lame)?;
    out.write_all(&buf)?;
    out.sync_all()?;
    Ok(Encoded {
        channels: spec.channels,
        samples,
    })
}

#[cfg(test)]
mod tests;
