use std::io::Cursor;

use super::*;

/// A WAV of a `freq` Hz sine, `secs` long, at `rate` with `channels` (all the same signal).
fn tone_wav(rate: u32, channels: u16, freq: f32, secs: f32) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut out, spec).expect("header");
    for i in 0..(rate as f32 * secs) as u32 {
        let s = (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin() * 12_000.0;
        for _ in 0..channels {
            w.write_sample(s as i16).expect("sample");
        }
    }
    w.finalize().expect("finish");
    out.into_inner()
}

/// The 8 kHz mono samples of a prompt's WAV (and checks its format).
fn samples(p: &Prompt) -> Vec<i16> {
    let mut r = hound::WavReader::new(Cursor::new(&p.wav)).expect("a WAV");
    let spec = r.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (1, 8_000, 16)
    );
    let s: Vec<i16> = r.samples::<i16>().map(|s| s.expect("sample")).collect();
    assert_eq!(s.len() as i64, p.samples);
    s
}

/// Power of `freq` in `s` (Goertzel), relative to the signal's whole power.
fn share(s: &[i16], freq: f32) -> f64 {
    let k = 2.0 * (2.0 * std::f64::consts::PI * f64::from(freq) / 8000.0).cos();
    let (mut a, mut b) = (0.0f64, 0.0f64);
    let mut total = 0.0f64;
    for x in s {
        let x = f64::from(*x);
        total += x * x;
        let c = x + k * a - b;
        b = a;
        a = c;
    }
    let power = a * a + b * b - k * a * b;
    if total == 0.0 {
        0.0
    } else {
        2.0 * power / (total * s.len() as f64)
    }
}

fn rms(s: &[i16]) -> f64 {
    (s.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / s.len().max(1) as f64).sqrt()
}

#[test]
fn recordings_of_any_rate_and_channels_become_8_khz_mono_with_their_sound() {
    // (rate, channels, tone, seconds)
    let cases = [
        (8_000, 1, 1_000.0, 1.0),
        (44_100, 2, 1_000.0, 2.0),
        (48_000, 1, 440.0, 1.5),
        (16_000, 2, 3_000.0, 0.5),
        (11_025, 1, 700.0, 1.0),
    ];
    for (rate, channels, freq, secs) in cases {
        let p = to_prompt(tone_wav(rate, channels, freq, secs)).expect("converted");
        let s = samples(&p);
        let want = (8_000.0 * secs) as i64;
        assert!(
            (p.samples - want).abs() <= 8,
            "{rate} Hz: {} samples, want {want}",
            p.samples
        );
        let middle = &s[s.len() / 4..s.len() * 3 / 4];
        let got = share(middle, freq);
        assert!(
            got > 0.9,
            "{rate} Hz x{channels}, {freq} Hz: share {got:.3}"
        );
    }
}

#[test]
fn what_the_telephone_band_cannot_carry_is_filtered_not_folded_into_it() {
    // 6 kHz at 44.1 kHz would fold to 2 kHz if decimated naively.
    let p = to_prompt(tone_wav(44_100, 1, 6_000.0, 1.0)).expect("converted");
    let s = samples(&p);
    let loud = rms(&samples(
        &to_prompt(tone_wav(44_100, 1, 1_000.0, 1.0)).expect("converted"),
    ));
    let folded = rms(&s[s.len() / 4..s.len() * 3 / 4]);
    assert!(
        folded < loud / 100.0,
        "6 kHz left {folded:.1} rms against {loud:.1} for 1 kHz"
    );
}

/// Whether a refusal is the one expected.
type Expected = fn(&AudioError) -> bool;

#[test]
fn what_is_not_a_usable_recording_is_refused_with_its_reason() {
    let long = tone_wav(4_000, 1, 500.0, (MAX_SECONDS + 1) as f32);
    let cases: [(&str, Vec<u8>, Expected); 4] = [
        ("text", b"hello, not audio".to_vec(), |e| {
            matches!(e, AudioError::Unreadable(_))
        }),
        ("nothing", Vec::new(), |e| {
            matches!(e, AudioError::Unreadable(_))
        }),
        ("no samples", tone_wav(8_000, 1, 500.0, 0.0), |e| {
            matches!(e, AudioError::Empty | AudioError::Unreadable(_))
        }),
        ("too long", long, |e| *e == AudioError::TooLong),
    ];
    for (what, bytes, expected) in cases {
        let e = to_prompt(bytes).expect_err(what);
        assert!(expected(&e), "{what}: {e}");
    }
}
