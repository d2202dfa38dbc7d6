use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::DecoderOptions;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::*;
use crate::media::tap::tests::share;

fn write_wav(path: &Path, channels: u16, samples: &[i16]) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for s in samples {
        w.write_sample(*s).unwrap();
    }
    w.finalize().unwrap();
}

fn tone(hz: f32, i: u32) -> i16 {
    let t = i as f32 / 8000.0;
    ((2.0 * std::f32::consts::PI * hz * t).sin() * 8000.0) as i16
}

/// A stereo WAV: `left_hz` on the left, `right_hz` on the right, `ms` long.
fn stereo_wav(path: &Path, left_hz: f32, right_hz: f32, ms: u32) {
    let samples: Vec<i16> = (0..ms * 8)
        .flat_map(|i| [tone(left_hz, i), tone(right_hz, i)])
        .collect();
    write_wav(path, 2, &samples);
}

/// Decodes an MP3 with symphonia (not LAME, not the frame walk): channels and the
/// interleaved samples.
fn decode(path: &Path) -> (usize, Vec<i16>) {
    let file = std::fs::File::open(path).unwrap();
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
        .unwrap();
    let mut format = probed.format;
    let track = format.default_track().unwrap();
    let (id, params) = (track.id, track.codec_params.clone());
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .unwrap();
    let (mut channels, mut out) = (0, Vec::new());
    while let Ok(packet) = format.next_packet() {
        if packet.track_id() != id {
            continue;
        }
        let audio = decoder.decode(&packet).unwrap();
        channels = audio.spec().channels.count();
        let mut buf = SampleBuffer::<i16>::new(audio.capacity() as u64, *audio.spec());
        buf.copy_interleaved_ref(audio);
        out.extend_from_slice(buf.samples());
    }
    (channels, out)
}

/// Header bytes of a Layer III frame (no CRC): MPEG version bits, bit rate and sample rate
/// indexes, padding, channel mode.
fn head(version: u8, bitrate: u8, rate: u8, padding: bool, mode: u8) -> [u8; 4] {
    [
        0xff,
        0xe0 | version << 3 | 1 << 1 | 1,
        bitrate << 4 | rate << 2 | u8::from(padding) << 1,
        mode << 6,
    ]
}

/// A stream of frames with these headers and zero bodies.
fn stream(headers: &[[u8; 4]]) -> Vec<u8> {
    let mut out = Vec::new();
    for h in headers {
        let len = header(*h).unwrap().len;
        out.extend_from_slice(h);
        out.resize(out.len() + len - 4, 0);
    }
    out
}

#[test]
fn frame_headers_give_rate_channels_and_length() {
    let h = |rate, channels, len, samples| Header {
        rate,
        channels,
        len,
        samples,
    };
    // (header bytes, what they say)
    let cases = [
        // What LAME writes here: MPEG 2.5, 8 kHz, 32 kbit/s, joint stereo; then mono,
        // padded, stereo at 8 and 64 kbit/s.
        ([0xff, 0xe3, 0x48, 0x44], Ok(h(8000, 2, 288, 576))),
        (head(0, 4, 2, false, 3), Ok(h(8000, 1, 288, 576))),
        (head(0, 4, 2, true, 0), Ok(h(8000, 2, 289, 576))),
        (head(0, 1, 2, false, 0), Ok(h(8000, 2, 72, 576))),
        (head(0, 8, 2, false, 0), Ok(h(8000, 2, 576, 576))),
        // MPEG 2.5 at 11.025 kHz: 72 × 32000 / 11025 = 208.98, rounded down.
        (head(0, 4, 0, false, 0), Ok(h(11_025, 2, 208, 576))),
        // MPEG 2 at 16 kHz, 8 kbit/s; MPEG 1 at 44.1 kHz, 128 kbit/s (417.9 bytes).
        (head(2, 1, 2, false, 3), Ok(h(16_000, 1, 36, 576))),
        ([0xff, 0xfb, 0x90, 0x64], Ok(h(44_100, 2, 417, 1152))),
        (head(3, 14, 1, true, 1), Ok(h(48_000, 2, 961, 1152))),
    ];
    for (bytes, want) in cases {
        assert_eq!(header(bytes).map_err(|_| ()), want, "{bytes:02x?}");
    }
    let bad = [
        [0, 0, 0, 0],
        [b'I', b'D', b'3', 4],
        [b'T', b'A', b'G', 0],
        [0xff, 0xc3, 0x48, 0x44],        // a sync word short of 11 bits
        head(1, 4, 2, false, 0),         // the reserved MPEG version
        head(0, 0, 2, false, 0),         // free format
        head(0, 15, 2, false, 0),        // the reserved bit rate
        head(0, 4, 3, false, 0),         // the reserved sample rate
        [0xff, 0xe5, 0x48, 0x44],        // Layer II
        [0xff, 0xe7, 0x48, 0x44],        // Layer I
        [0xff, 0xe1, 0x48, 0x44],        // the reserved layer
        [0xff, 0xff, 0xff, 0xff],        // all ones
        [0xff, 0xe3, 0xf0 | 0x08, 0x44], // bit rate 15
    ];
    for bytes in bad {
        assert!(header(bytes).is_err(), "{bytes:02x?}");
    }
}

#[test]
fn a_stream_is_walked_to_its_last_frame_and_must_end_there() {
    let stereo = head(0, 4, 2, false, 0);
    let padded = head(0, 4, 2, true, 1);
    let mono = head(0, 4, 2, false, 3);
    let other_rate = head(0, 4, 0, false, 0);
    let s = |frames, channels, rate| Stream {
        frames,
        channels,
        rate,
        samples: frames * 576,
    };
    let three = stream(&[stereo, padded, stereo]);
    assert_eq!(three.len(), 288 + 289 + 288);
    let mut junk_after = three.clone();
    junk_after.extend_from_slice(b"TAG");
    let mut four_after = three.clone();
    four_after.extend_from_slice(&[0; 4]);
    let mut junk_before = b"x".to_vec();
    junk_before.extend_from_slice(&three);
    // (bytes, Ok(what the walk finds) or Err(a word of the error))
    let cases: Vec<(Vec<u8>, Result<Stream, &str>)> = vec![
        (stream(&[stereo]), Ok(s(1, 2, 8000))),
        (three.clone(), Ok(s(3, 2, 8000))),
        (stream(&[mono; 5]), Ok(s(5, 1, 8000))),
        (stream(&[other_rate, other_rate]), Ok(s(2, 2, 11_025))),
        (Vec::new(), Err("no frames")),
        (three[..three.len() - 1].to_vec(), Err("ends inside")),
        (three[..288 + 2].to_vec(), Err("stray")),
        (three[..288 + 4].to_vec(), Err("ends inside")),
        (junk_after, Err("stray")),
        (four_after, Err("sync")),
        (junk_before, Err("sync")),
        (stream(&[stereo, mono]), Err("channels")),
        (stream(&[stereo, other_rate]), Err("Hz")),
        (b"not an mp3 at all, just words".to_vec(), Err("sync")),
    ];
    for (i, (bytes, want)) in cases.into_iter().enumerate() {
        let got = walk(&bytes[..]);
        match (got, want) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "case {i}"),
            (Err(Mp3Error::Frames(e)), Err(word)) => {
                assert!(e.contains(word), "case {i}: {e:?} lacks {word:?}")
            }
            (got, want) => panic!("case {i}: {got:?}, expected {want:?}"),
        }
    }
}

#[test]
fn the_check_wants_every_wav_sample_and_no_more_than_lames_padding() {
    let s = |channels, rate, samples| Stream {
        frames: samples / 576,
        channels,
        rate,
        samples,
    };
    let wav = |channels, samples| Encoded { channels, samples };
    let n = 200_000;
    // (the MP3's frames, the WAV, ok)
    let cases = [
        (s(2, 8000, n + 1152), wav(2, n), true),
        (s(2, 8000, n + DELAY), wav(2, n), true),
        (s(2, 8000, n + DELAY - 1), wav(2, n), false),
        (s(2, 8000, n + MAX_EXTRA), wav(2, n), true),
        (s(2, 8000, n + MAX_EXTRA + 1), wav(2, n), false),
        (s(2, 8000, n), wav(2, n), false),
        (s(2, 8000, n / 2), wav(2, n), false),
        (s(1, 8000, n + 1152), wav(1, n), true),
        (s(1, 8000, n + 1152), wav(2, n), false),
        (s(2, 8000, n + 1152), wav(1, n), false),
        (s(2, 16_000, n + 1152), wav(2, n), false),
        (s(2, 8000, 1152), wav(2, 0), true),
        (s(2, 8000, 0), wav(2, 0), false),
    ];
    for (stream, wav, ok) in cases {
        assert_eq!(
            check(&stream, &wav).is_ok(),
            ok,
            "{stream:?} against {wav:?}"
        );
    }
}

#[test]
fn a_stereo_wav_becomes_a_stereo_mp3_whose_frames_another_decoder_agrees_with() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, mp3) = (dir.path().join("a.wav"), dir.path().join("a.mp3"));
    stereo_wav(&wav, 400.0, 1000.0, 3000);
    let got = encode(&wav, &mp3, 32).unwrap();
    assert_eq!(
        got,
        Encoded {
            channels: 2,
            samples: 24_000
        }
    );
    assert_eq!(got.duration_ms(), 3000);
    let size = std::fs::metadata(&mp3).unwrap().len();
    // 32 kbit/s for 3 s is 12 000 bytes; LAME's delay and last frame add a little.
    assert!((12_000..14_000).contains(&size), "{size} bytes");
    let s = verify(&mp3, &got).unwrap();
    assert_eq!((s.channels, s.rate), (2, 8000));
    let (channels, pcm) = decode(&mp3);
    assert_eq!(channels, 2);
    assert_eq!(
        pcm.len() as u64,
        2 * s.samples,
        "the walk counts what decodes"
    );
    let left: Vec<i16> = pcm.iter().step_by(2).copied().collect();
    let right: Vec<i16> = pcm.iter().skip(1).step_by(2).copied().collect();
    assert!(share(&left, 400.0) > 0.9, "left {}", share(&left, 400.0));
    assert!(
        share(&right, 1000.0) > 0.9,
        "right {}",
        share(&right, 1000.0)
    );
    assert!(
        encode(&wav, &mp3, 32).is_err(),
        "an existing MP3 is never replaced"
    );
}

#[test]
fn a_mono_wav_stays_mono() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, mp3) = (dir.path().join("m.wav"), dir.path().join("m.mp3"));
    let samples: Vec<i16> = (0..8000).map(|i| tone(440.0, i)).collect();
    write_wav(&wav, 1, &samples);
    let got = encode(&wav, &mp3, 16).unwrap();
    assert_eq!(
        got,
        Encoded {
            channels: 1,
            samples: 8000
        }
    );
    let s = verify(&mp3, &got).unwrap();
    assert_eq!(s.channels, 1);
    assert_eq!(decode(&mp3).0, 1);
    assert!(matches!(
        verify(&mp3, &Encoded { channels: 2, ..got }),
        Err(Mp3Error::Mismatch(_))
    ));
}

/// The last 20 ms of the WAV are a loud tone after silence: the MP3 must hold them (a flush
/// that only writes out finished frames loses them).
#[test]
fn the_wavs_last_frame_is_in_the_mp3() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, mp3) = (dir.path().join("e.wav"), dir.path().join("e.mp3"));
    let n: u32 = 16_000;
    let samples: Vec<i16> = (0..n)
        .flat_map(|i| {
            let s = if i >= n - 160 { tone(1000.0, i) } else { 0 };
            [s, s]
        })
        .collect();
    write_wav(&wav, 2, &samples);
    let got = encode(&wav, &mp3, 32).unwrap();
    verify(&mp3, &got).unwrap();
    let (_, pcm) = decode(&mp3);
    // The burst is at n - 160 .. n, shifted by LAME's delay.
    let at = |i: u64| pcm.get(2 * i as usize).copied().unwrap_or(0);
    let burst = (u64::from(n) - 160..u64::from(n)).map(|i| at(i + DELAY).unsigned_abs());
    let loud = burst.max().unwrap();
    assert!(loud > 2000, "the last 20 ms are missing: peak {loud}");
    let before = (0..u64::from(n) - 2000).map(|i| at(i + DELAY).unsigned_abs());
    assert!(before.max().unwrap() < 500, "silence before the burst");
}

#[test]
fn a_truncated_or_foreign_file_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, mp3) = (dir.path().join("b.wav"), dir.path().join("b.mp3"));
    stereo_wav(&wav, 400.0, 1000.0, 4000);
    let got = encode(&wav, &mp3, 32).unwrap();
    let bytes = std::fs::read(&mp3).unwrap();
    // Every frame is 288 bytes here (32 kbit/s at 8 kHz, no padding).
    assert_eq!(bytes.len() % 288, 0);
    let cut = dir.path().join("cut.mp3");
    std::fs::write(&cut, &bytes[..bytes.len() / 2 + 7]).unwrap();
    assert!(matches!(verify(&cut, &got), Err(Mp3Error::Frames(_))));
    std::fs::write(&cut, &bytes[..bytes.len() - 288]).unwrap();
    assert!(matches!(verify(&cut, &got), Err(Mp3Error::Mismatch(_))));
    let junk = dir.path().join("junk.mp3");
    std::fs::write(&junk, b"not an mp3 at all, just words").unwrap();
    assert!(matches!(verify(&junk, &got), Err(Mp3Error::Frames(_))));
    assert!(matches!(
        verify(&dir.path().join("none.mp3"), &got),
        Err(Mp3Error::Io(_))
    ));
    // A WAV cut short of what its header says.
    let wav_bytes = std::fs::read(&wav).unwrap();
    let short = dir.path().join("short.wav");
    std::fs::write(&short, &wav_bytes[..wav_bytes.len() - 3]).unwrap();
    assert!(matches!(
        encode(&short, &dir.path().join("short.mp3"), 32),
        Err(Mp3Error::Wav(_))
    ));
    let mono = dir.path().join("mono.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    hound::WavWriter::create(&mono, spec)
        .unwrap()
        .finalize()
        .unwrap();
    assert!(matches!(
        encode(&mono, &dir.path().join("m.mp3"), 32),
        Err(Mp3Error::WavFormat(1, 16000, 16))
    ));
}
