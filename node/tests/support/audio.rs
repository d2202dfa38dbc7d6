//! Audio checks for tests: G.711 frames of a tone to send, and how strong a frequency is in
//! what was heard (Goertzel), so tests check the sound, not just the signalling.

use audio_codec::{create_decoder, create_encoder, CodecType};

/// `n` 20 ms PCMU frames of a sine tone.
pub fn pcmu_tone(freq: f32, n: usize) -> Vec<Vec<u8>> {
    let mut enc = create_encoder(CodecType::PCMU);
    (0..n)
        .map(|f| {
            let pcm: Vec<i16> = (0..160)
                .map(|i| {
                    let t = (f * 160 + i) as f32 / 8000.0;
                    ((2.0 * std::f32::consts::PI * freq * t).sin() * 8000.0) as i16
                })
                .collect();
            enc.encode(&pcm)
        })
        .collect()
}

pub fn decode_pcmu(payload: &[u8]) -> Vec<i16> {
    create_decoder(CodecType::PCMU).decode(payload)
}

/// Relative power of `freq` in `samples` at `rate` Hz: Goertzel power over total energy, 0..~1.
pub fn tone_share(samples: &[i16], freq: f32, rate: u32) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let k = 2.0 * (2.0 * std::f64::consts::PI * f64::from(freq) / f64::from(rate)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut energy = 0.0f64;
    for &x in samples {
        let x = f64::from(x);
        let s = x + k * s1 - s2;
        s2 = s1;
        s1 = s;
        energy += x * x;
    }
    let power = s1 * s1 + s2 * s2 - k * s1 * s2;
    if energy == 0.0 {
        0.0
    } else {
        2.0 * power / (energy * samples.len() as f64)
    }
}

/// Samples of a WAV file (any sample rate; 16-bit).
pub fn wav_samples(path: &std::path::Path) -> (u32, Vec<i16>) {
    let r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let rate = r.spec().sample_rate;
    let ch = r.spec().channels as usize;
    let all: Vec<i16> = r.into_samples::<i16>().map(|s| s.unwrap_or(0)).collect();
    (rate, all.into_iter().step_by(ch.max(1)).collect())
}

/// The one of `freqs` that carries most of `frame`'s power (a share above one half), if any:
/// labels a 20 ms frame of what a caller heard with the tone it is made of.
pub fn dominant(frame: &[i16], freqs: &[f32]) -> Option<f32> {
    freqs
        .iter()
        .map(|&f| (f, tone_share(frame, f, 8000)))
        .filter(|(_, share)| *share > 0.5)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(f, _)| f)
}

/// Tone labels (of [`dominant`]) as runs, for failure messages: `600x120 1400x200 ...`.
pub fn heard(l: &[Option<f32>]) -> String {
    runs(l)
        .iter()
        .map(|(t, n)| match t {
            Some(t) => format!("{t}x{n}"),
            None => format!("-x{n}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Share of frames labelled `tone`.
pub fn share(l: &[Option<f32>], tone: f32) -> f64 {
    l.iter().filter(|x| **x == Some(tone)).count() as f64 / l.len().max(1) as f64
}

/// Runs of equal labels: (label, how many frames in a row).
pub fn runs<T: PartialEq + Copy>(labels: &[T]) -> Vec<(T, usize)> {
    let mut out: Vec<(T, usize)> = vec![];
    for &l in labels {
        match out.last_mut() {
            Some((last, n)) if *last == l => *n += 1,
            _ => out.push((l, 1)),
        }
    }
    out
}

/// Writes `secs` seconds of a `freq` Hz sine as an 8 kHz mono 16-bit WAV (a whole number of
/// 20 ms frames), as prompts and music-on-hold files are.
pub fn write_tone_wav(path: &std::path::Path, freq: f32, secs: f32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("create the WAV's folder");
    }
    let mut w = hound::WavWriter::create(path, spec)
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    let n = ((secs * 50.0).round() as usize).max(1) * 160;
    for i in 0..n {
        let t = i as f32 / 8000.0;
        let s = (2.0 * std::f32::consts::PI * freq * t).sin() * 8000.0;
        w.write_sample(s as i16).expect("write a sample");
    }
    w.finalize().expect("close the WAV");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goertzel_finds_the_tone() {
        let pcm: Vec<i16> = pcmu_tone(1000.0, 50)
            .iter()
            .flat_map(|f| decode_pcmu(f))
            .collect();
        assert!(
            tone_share(&pcm, 1000.0, 8000) > 0.5,
            "{}",
            tone_share(&pcm, 1000.0, 8000)
        );
        assert!(tone_share(&pcm, 600.0, 8000) < 0.05);
        let labels: Vec<Option<f32>> = pcm
            .chunks(160)
            .map(|f| dominant(f, &[600.0, 1000.0]))
            .collect();
        assert_eq!(runs(&labels), vec![(Some(1000.0), 50)]);
        assert_eq!(dominant(&[0; 160], &[1000.0]), None);
        assert_eq!(runs(&[1, 1, 2, 1]), vec![(1, 2), (2, 1), (1, 1)]);
    }
}
