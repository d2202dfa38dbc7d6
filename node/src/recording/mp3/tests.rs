use super::*;

/// A stereo WAV: `left_hz` on the left, `right_hz` on the right, `ms` long.
fn stereo_wav(path: &Path, left_hz: f32, right_hz: f32, ms: u32) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..ms * 8 {
        let t = i as f32 / 8000.0;
        let s = |f: f32| ((2.0 * std::f32::consts::PI * f * t).sin() * 8000.0) as i16;
        w.write_sample(s(left_hz)).unwrap();
        w.write_sample(s(right_hz)).unwrap();
    }
    w.finalize().unwrap();
}

#[test]
fn a_stereo_wav_becomes_an_mp3_that_decodes_to_its_length() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, mp3) = (dir.path().join("a.wav"), dir.path().join("a.mp3"));
    stereo_wav(&wav, 400.0, 1000.0, 3000);
    let ms = encode(&wav, &mp3, 32).unwrap();
    assert_eq!(ms, 3000);
    let size = std::fs::metadata(&mp3).unwrap().len();
    // 32 kbit/s for 3 s is 12 000 bytes; LAME's frames round it a little.
    assert!((10_000..16_000).contains(&size), "{size} bytes");
    let d = verify(&mp3, ms).unwrap();
    assert_eq!((d.channels, d.rate), (2, 8000));
    assert!(
        encode(&wav, &mp3, 32).is_err(),
        "an existing MP3 is never replaced"
    );
}

#[test]
fn a_truncated_or_foreign_file_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, mp3) = (dir.path().join("b.wav"), dir.path().join("b.mp3"));
    stereo_wav(&wav, 400.0, 1000.0, 4000);
    encode(&wav, &mp3, 32).unwrap();
    let bytes = std::fs::read(&mp3).unwrap();
    let cut = dir.path().join("cut.mp3");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(verify(&cut, 4000), Err(Mp3Error::Mismatch(_))));
    let junk = dir.path().join("junk.mp3");
    std::fs::write(&junk, b"not an mp3 at all, just words").unwrap();
    assert!(verify(&junk, 4000).is_err());
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

#[test]
fn the_check_allows_the_encoders_padding_only() {
    let d = |channels, rate, frames| Decoded {
        channels,
        rate,
        frames,
    };
    // (decoded, expected ms, ok)
    let cases = [
        (d(2, 8000, 80_000), 10_000, true),
        (d(2, 8000, 81_600), 10_000, true),
        (d(2, 8000, 77_000), 10_000, false),
        (d(2, 8000, 84_000), 10_000, false),
        (d(1, 8000, 80_000), 10_000, false),
        (d(2, 16000, 160_000), 10_000, false),
        (d(0, 0, 0), 0, false),
    ];
    for (decoded, ms, ok) in cases {
        assert_eq!(check(&decoded, ms).is_ok(), ok, "{decoded:?} vs {ms} ms");
    }
}
