use super::*;
use crate::media::tap::tests::{pcmu, share, sine};
use crate::media::tap::TAP_DEPTH;

#[test]
fn the_aligner_puts_the_caller_left_and_the_agent_right() {
    let mut a = Aligner::default();
    let caller = sine(400.0, 8000.0, 10);
    let agent = sine(1000.0, 8000.0, 10);
    for f in 0..10 {
        let r = f * FRAME..(f + 1) * FRAME;
        a.push(Side::Caller, 0, &pcmu(&caller[r.clone()]));
        a.push(Side::Agent, 0, &pcmu(&agent[r]));
    }
    let blocks: Vec<Block> = (0..10).map(|_| a.next_block()).collect();
    let left: Vec<i16> = blocks
        .iter()
        .flat_map(|b| b.iter().step_by(2).copied())
        .collect();
    let right: Vec<i16> = blocks
        .iter()
        .flat_map(|b| b.iter().skip(1).step_by(2).copied())
        .collect();
    assert!(share(&left, 400.0) > 0.9, "{}", share(&left, 400.0));
    assert!(share(&left, 1000.0) < 0.01);
    assert!(share(&right, 1000.0) > 0.9, "{}", share(&right, 1000.0));
    assert!(share(&right, 400.0) < 0.01);
    assert_eq!(
        a.next_block(),
        [0i16; 2 * FRAME],
        "silence once both ran dry"
    );
}

#[test]
fn one_silent_side_leaves_its_channel_silent() {
    let mut a = Aligner::default();
    let caller = sine(400.0, 8000.0, 4);
    for f in 0..4 {
        a.push(Side::Caller, 8, &{
            let mut out = vec![0u8; FRAME];
            crate::media::tap::encode(
                crate::media::sdp::Codec::Pcma,
                &caller[f * FRAME..(f + 1) * FRAME],
                &mut out,
            );
            out
        });
    }
    a.push(Side::Agent, 101, &[1, 2, 3, 4]);
    let b = a.next_block();
    assert!(b.iter().step_by(2).any(|s| *s != 0));
    assert!(b.iter().skip(1).step_by(2).all(|s| *s == 0));
}

/// In real time: the writer is a thread of its own, which paused time would outrun.
#[tokio::test]
async fn a_bridged_call_becomes_a_stereo_wav() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("2026-12-05/c1.wav");
    let tap = Tap::new();
    assert_eq!(tap.listeners(), 0);
    let rec = start(&tap, &path, || true).unwrap();
    assert_eq!(tap.listeners(), 1, "the recorder makes the legs publish");
    let caller = sine(400.0, 8000.0, 100);
    let agent = sine(1000.0, 8000.0, 100);
    // Paced as RTP arrives: one frame of each side every 20 ms.
    let mut pace = tokio::time::interval(Duration::from_millis(FRAME_MS as u64));
    for f in 0..100 {
        pace.tick().await;
        let r = f * FRAME..(f + 1) * FRAME;
        tap.publish(Side::Caller, 0, &pcmu(&caller[r.clone()]));
        tap.publish(Side::Agent, 0, &pcmu(&agent[r]));
    }
    let out = rec.finish().await;
    assert_eq!(tap.listeners(), 0);
    assert_eq!(out.stopped, None);
    // Every 20 ms is written or counted as dropped (a loaded machine may stall the writer).
    let accounted = out.duration_ms + 20 * out.dropped_frames;
    assert!((1900..=2300).contains(&accounted), "{out:?}");
    assert!(out.dropped_frames < 10, "{out:?}");
    assert_eq!(
        out.size_bytes as u64,
        std::fs::metadata(&path).unwrap().len()
    );
    let reader = hound::WavReader::open(&path).unwrap();
    assert_eq!(
        (reader.spec().channels, reader.spec().sample_rate),
        (2, 8000)
    );
    let s: Vec<i16> = reader.into_samples().map(Result::unwrap).collect();
    let left: Vec<i16> = s.iter().step_by(2).copied().collect();
    let right: Vec<i16> = s.iter().skip(1).step_by(2).copied().collect();
    assert!(share(&left, 400.0) > 0.9, "left {}", share(&left, 400.0));
    assert!(
        share(&right, 1000.0) > 0.9,
        "right {}",
        share(&right, 1000.0)
    );
}

#[tokio::test(start_paused = true)]
async fn a_full_disk_stops_the_recording_not_the_publisher() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.wav");
    let tap = Tap::new();
    let rec = start(&tap, &path, || false).unwrap();
    for _ in 0..10 {
        tap.publish(Side::Caller, 0, &[0xff; FRAME]);
        tokio::time::sleep(TICK).await;
    }
    let out = rec.finish().await;
    assert_eq!(out.stopped.as_deref(), Some("the disk is nearly full"));
    assert!(
        hound::WavReader::open(&path).is_ok(),
        "what was written is a valid file"
    );
}

/// The bridge publishes without waiting: a recorder that cannot keep up loses the oldest
/// frames, and counts them.
#[tokio::test]
async fn a_recorder_that_falls_behind_drops_and_counts_frames() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slow.wav");
    let tap = Tap::new();
    let rec = start(&tap, &path, || true).unwrap();
    // On this one-thread runtime the recorder cannot run until the test yields: twice as
    // many frames as the tap holds arrive at once.
    let frame = pcmu(&sine(400.0, 8000.0, 1));
    for _ in 0..TAP_DEPTH {
        tap.publish(Side::Caller, 0, &frame);
        tap.publish(Side::Agent, 0, &frame);
    }
    tokio::task::yield_now().await;
    let out = rec.finish().await;
    assert!(out.dropped_frames >= TAP_DEPTH as i64, "{out:?}");
    assert_eq!(out.stopped, None);
}

/// The writer's batches make the same file, byte for byte, as writing each sample with hound.
#[test]
fn the_writer_writes_batches_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    // Batches of 1, BATCH and 7 blocks; samples cover both signs and both extremes.
    let mut n = 0i32;
    let mut block = || {
        let mut b = [0i16; 2 * FRAME];
        for s in b.iter_mut() {
            *s = (n.wrapping_mul(7919) % 65_536 - 32_768) as i16;
            n += 1;
        }
        b
    };
    let batches: Vec<Vec<Block>> = [1, BATCH, 7]
        .iter()
        .map(|&k| (0..k).map(|_| block()).collect())
        .collect();
    let all: Vec<i16> = batches.iter().flatten().flatten().copied().collect();
    assert!(all.contains(&i16::MIN) || all.iter().any(|s| *s < -32_000));
    assert!(all.iter().any(|s| *s > 32_000));

    let ours = dir.path().join("ours.wav");
    let w = hound::WavWriter::new(
        BufWriter::new(crate::media::record::private_file(&ours).unwrap()),
        spec,
    )
    .unwrap();
    let (tx, rx) = sync_channel(batches.len());
    for b in &batches {
        tx.send(b.clone()).unwrap();
    }
    drop(tx);
    let (samples, error) = write_all(w, rx, &ours);
    assert_eq!(error, None);
    assert_eq!(samples, ((1 + BATCH + 7) * FRAME) as u64);

    let reference = dir.path().join("reference.wav");
    let mut w = hound::WavWriter::create(&reference, spec).unwrap();
    for s in &all {
        w.write_sample(*s).unwrap();
    }
    w.finalize().unwrap();
    let (a, b) = (
        std::fs::read(&ours).unwrap(),
        std::fs::read(&reference).unwrap(),
    );
    assert_eq!(a.len(), 44 + 2 * all.len());
    assert!(a == b, "the files differ");
}
