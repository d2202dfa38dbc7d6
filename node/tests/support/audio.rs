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
    }
}
