use super::*;

#[test]
fn room_follows_the_quota() {
    let q = |max_messages, max_bytes| Quota {
        max_messages,
        max_bytes,
    };
    let secs = |s: u64| Some(Duration::from_secs(s));
    let cases: &[(Quota, i64, i64, Option<Duration>)] = &[
        // (quota, messages, total ms, room)
        (q(100, 100_000_000), 0, 0, secs(120)),
        (q(100, 100_000_000), 99, 60_000, secs(120)),
        (q(100, 100_000_000), 100, 0, None),
        (q(2, 100_000_000), 2, 1, None),
        // 1 MB: 62.5 s of audio; 30 s recorded in 1 message leaves 32.4 s.
        (
            q(100, 1_000_000),
            1,
            30_000,
            Some(Duration::from_millis(32_494)),
        ),
        (q(100, 1_000_000), 1, 62_000, None),
        // Less than a second of room is full.
        (q(100, 1_000_000), 0, 62_000, None),
        (
            q(100, 1_000_000),
            0,
            61_000,
            Some(Duration::from_millis(1_497)),
        ),
        // Rows the database should not hold do not open room.
        (
            q(1, 1_000_000),
            -5,
            -5_000,
            secs(62).map(|d| d + Duration::from_millis(497)),
        ),
    ];
    for (quota, messages, total_ms, want) in cases {
        assert_eq!(
            room(*quota, *messages, *total_ms),
            *want,
            "{quota:?} {messages} messages {total_ms} ms"
        );
    }
}
