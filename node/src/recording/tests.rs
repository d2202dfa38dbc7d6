use std::path::Path;

use super::*;

#[test]
fn recording_needs_the_minimum_free_space() {
    // (free bytes, min_free_mb, may record)
    let cases = [
        (0, 0, true),
        (999_999, 1, false),
        (1_000_000, 1, true),
        (5_000_000_000, 1024, true),
        (1_023_999_999, 1024, false),
        (u64::MAX, u64::MAX, true),
        (u64::MAX - 1, u64::MAX, false),
    ];
    for (free, min, ok) in cases {
        assert_eq!(
            enough_room(free, min),
            ok,
            "{free} bytes free, {min} MB needed"
        );
    }
}

#[test]
fn recording_files_are_per_day_and_safe_whatever_the_call_id() {
    let dir = Path::new("/rec");
    // 2026-12-05T23:00:00Z
    let at = 1_796_511_600_000;
    let cases = [
        (
            "abc@10.0.0.1",
            "/rec/2026-12-05/abc_10.0.0.1-1796511600000.wav",
        ),
        (
            "../../etc/passwd",
            "/rec/2026-12-05/_.._etc_passwd-1796511600000.wav",
        ),
        ("a/b\\c\0d", "/rec/2026-12-05/a_b_c_d-1796511600000.wav"),
        ("", "/rec/2026-12-05/-1796511600000.wav"),
        ("é☎", "/rec/2026-12-05/__-1796511600000.wav"),
    ];
    for (call_id, want) in cases {
        let got = file_for(dir, call_id, at);
        assert_eq!(got, Path::new(want), "{call_id:?}");
        assert!(got.starts_with(dir) && got.components().count() == 4);
    }
    let long = "x".repeat(500);
    let name = file_for(dir, &long, at);
    assert!(name.file_name().unwrap().len() < 100, "{name:?}");
}

#[test]
fn a_finished_recording_becomes_a_wav_row_keyed_by_node_and_file() {
    let call = CallInfo {
        call_id: "c1".into(),
        caller: "+1555".into(),
        queue: Some("sales".into()),
        agent: Some("3001".into()),
    };
    let out = Outcome {
        path: "/rec/d/c1-5.wav".into(),
        duration_ms: 12_340,
        dropped_frames: 2,
        size_bytes: 394_924,
        stopped: None,
    };
    let r = row("n1", &call, &out, 5, 20_000);
    assert_eq!(r.uid, "n1:/rec/d/c1-5.wav");
    assert_eq!(
        (r.format, r.duration_ms, r.dropped_frames),
        (RecordingFormat::Wav, 12_340, 2)
    );
    assert_eq!(
        (r.queue.as_deref(), r.agent.as_deref()),
        (Some("sales"), Some("3001"))
    );
    assert_eq!((r.started_at_ms, r.created_at_ms), (5, 20_000));
}
