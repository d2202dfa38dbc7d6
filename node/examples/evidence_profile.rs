//! A call's evidence alone, for profiling its instructions (`valgrind --tool=callgrind`),
//! independent of the host's load: `tap` streams a call's worth of G.711 (two synthetic voices
//! taking turns, 50 packets a second each way) through a [`Tap`] into the stereo recorder, in
//! real time, as a bridge does; `mp3` encodes a stereo WAV of the same speech with
//! `recording::mp3::encode`; `call` does both, one after the other, as the node does for a
//! recorded call. See operations.md, "Benchmarks" (`bench/evidence`).
//!
//! ```text
//! cargo build --release --example evidence_profile
//! valgrind --tool=callgrind target/release/examples/evidence_profile call 25
//! ```

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use audio_codec::{create_encoder, CodecType};
use callfleet::media::stereo;
use callfleet::media::tap::{Side, Tap};
use callfleet::recording::mp3;

/// Samples per 20 ms packet at 8 kHz.
const PACKET: usize = 160;

/// One voice: a glottal pulse train at `f0` (gliding) through two moving formants, in
/// syllables of a quarter second; deterministic.
fn voice(n: usize, f0: f32, seed: u32) -> Vec<i16> {
    use std::f32::consts::PI;
    let (mut phase, mut rng) = (0f32, seed);
    let (mut y1, mut y2, mut z1, mut z2) = (0f32, 0f32, 0f32, 0f32);
    let r = 0.97f32;
    (0..n)
        .map(|i| {
            let t = i as f32 / 8000.0;
            phase += f0 * (1.0 + 0.1 * (t * 1.3).sin()) / 8000.0;
            let pulse = if phase >= 1.0 {
                phase -= 1.0;
                1.0
            } else {
                0.0
            };
            rng = rng.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let x = pulse + ((rng >> 16) as f32 / 32768.0 - 1.0) * 0.05;
            let c1 = 2.0 * r * (2.0 * PI * (500.0 + 300.0 * (t * 3.0).sin()) / 8000.0).cos();
            let c2 = 2.0 * r * (2.0 * PI * (1500.0 + 600.0 * (t * 2.1).cos()) / 8000.0).cos();
            let a = x + c1 * y1 - r * r * y2;
            (y2, y1) = (y1, a);
            let b = a + c2 * z1 - r * r * z2;
            (z2, z1) = (z1, b);
            let envelope = (t * 4.0 * PI).sin().abs();
            (b * 150.0 * envelope).clamp(-30000.0, 30000.0) as i16
        })
        .collect()
}

/// The two parties' audio, `secs` long: each speaks 3 s in turn, the other is quiet.
fn parties(secs: usize) -> (Vec<i16>, Vec<i16>) {
    let n = secs * 8000;
    let (a, b) = (voice(n, 120.0, 1), voice(n, 210.0, 2));
    let quiet = |i: usize| ((i * 7919) % 17) as i16 - 8;
    let caller = (0..n)
        .map(|i| if (i / 24000) % 2 == 0 { a[i] } else { quiet(i) })
        .collect();
    let agent = (0..n)
        .map(|i| if (i / 24000) % 2 == 1 { b[i] } else { quiet(i) })
        .collect();
    (caller, agent)
}

/// Streams both parties through a tap into a stereo recording at `wav`, one packet each
/// way every 20 ms of wall clock, as a bridge publishes them.
async fn tap(wav: &Path, secs: usize) -> anyhow::Result<stereo::Outcome> {
    let (caller, agent) = parties(secs);
    let mut pcmu = create_encoder(CodecType::PCMU);
    let tap = Tap::new();
    let running = stereo::start(&tap, wav, || true).context("start the recorder")?;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for (c, a) in caller.chunks(PACKET).zip(agent.chunks(PACKET)) {
        tick.tick().await;
        tap.publish(Side::Caller, 0, &pcmu.encode(c));
        tap.publish(Side::Agent, 0, &pcmu.encode(a));
    }
    Ok(running.finish().await)
}

/// Writes the parties straight into a stereo WAV (no tap), for `mp3` alone.
fn wav_of(wav: &Path, secs: usize) -> anyhow::Result<()> {
    let (caller, agent) = parties(secs);
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(wav, spec)?;
    for (c, a) in caller.iter().zip(&agent) {
        w.write_sample(*c)?;
        w.write_sample(*a)?;
    }
    w.finalize()?;
    Ok(())
}

fn encode(wav: &Path, out: &Path) -> anyhow::Result<()> {
    let t = Instant::now();
    let encoded = mp3::encode(wav, out, 32).context("encode")?;
    let stream = mp3::verify(out, &encoded).context("check")?;
    println!(
        "mp3: {} samples per channel, {} frames, {} bytes, {:?}",
        encoded.samples,
        stream.frames,
        std::fs::metadata(out)?.len(),
        t.elapsed()
    );
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let what = args.get(1).map(String::as_str).unwrap_or("call");
    let secs: usize = match args.get(2) {
        Some(s) => s.parse().context("seconds")?,
        None => 25,
    };
    let dir = tempfile::tempdir()?;
    let (wav, out) = (dir.path().join("call.wav"), dir.path().join("call.mp3"));
    if matches!(what, "tap" | "call") {
        let t = Instant::now();
        let o = tap(&wav, secs).await?;
        println!(
            "tap: {} ms recorded, {} frames dropped, {} bytes, {:?}",
            o.duration_ms,
            o.dropped_frames,
            o.size_bytes,
            t.elapsed()
        );
    }
    match what {
        "tap" => {}
        "call" => encode(&wav, &out)?,
        "mp3" => {
            wav_of(&wav, secs)?;
            encode(&wav, &out)?;
        }
        _ => bail!("usage: evidence_profile tap|mp3|call [SECONDS]"),
    }
    Ok(())
}
