//! Open hours: parsing, and the opening a moment falls in, in UTC and across a DST change.

use super::OpenHours;

fn days(list: &[&str]) -> Vec<String> {
    list.iter().map(|d| (*d).to_owned()).collect()
}

/// 2024-06-03 is a Monday; ms of `hh:mm` UTC that day plus `day` days.
fn utc(day: i64, hh: i64, mm: i64) -> i64 {
    1_717_372_800_000 + day * 86_400_000 + (hh * 60 + mm) * 60_000
}

#[test]
fn openings_in_utc() {
    let hours = OpenHours::parse(
        "08:00-18:00",
        &days(&["mon", "tue", "wed", "thu", "fri"]),
        "UTC",
    )
    .expect("parses");
    // (moment, opened at)
    let cases = [
        (utc(0, 7, 59), None),
        (utc(0, 8, 0), Some(utc(0, 8, 0))),
        (utc(0, 12, 30), Some(utc(0, 8, 0))),
        (utc(0, 17, 59), Some(utc(0, 8, 0))),
        (utc(0, 18, 0), None),
        (utc(4, 9, 0), Some(utc(4, 8, 0))),
        (utc(5, 9, 0), None),
        (utc(6, 9, 0), None),
        (utc(7, 9, 0), Some(utc(7, 8, 0))),
    ];
    for (now, want) in cases {
        assert_eq!(hours.opened_at(now), want, "at {now}");
    }
}

#[test]
fn openings_follow_the_time_zone_and_its_summer_time() {
    let hours = OpenHours::parse("08:00-24:00", &days(&["sun", "mon"]), "Europe/Paris")
        .expect("Europe/Paris is in the tz database");
    // 2024-06-03 (Monday) 06:30 UTC is 08:30 in Paris (UTC+2 in summer): open since 06:00 UTC.
    assert_eq!(hours.opened_at(utc(0, 6, 30)), Some(utc(0, 6, 0)));
    assert_eq!(hours.opened_at(utc(0, 5, 59)), None);
    // 23:30 Paris on Sunday 2024-06-09 is 21:30 UTC.
    assert_eq!(hours.opened_at(utc(6, 21, 30)), Some(utc(6, 6, 0)));
    // 2024-01-08 (Monday) 07:30 UTC is 08:30 in Paris in winter (UTC+1): open since 07:00 UTC.
    let winter_monday = 1_704_672_000_000;
    assert_eq!(
        hours.opened_at(winter_monday + 7 * 3_600_000 + 1_800_000),
        Some(winter_monday + 7 * 3_600_000)
    );
}

#[test]
fn bad_settings_say_what_is_wrong() {
    let cases = [
        ("8:00-18:00", vec!["mon"], "UTC", "bad time"),
        ("08:00", vec!["mon"], "UTC", "expected"),
        ("18:00-08:00", vec!["mon"], "UTC", "after opening"),
        ("08:00-24:30", vec!["mon"], "UTC", "bad time"),
        ("08:00-18:00", vec!["monday"], "UTC", "mon .. sun"),
        ("08:00-18:00", vec!["mon"], "Mars/Olympus", "not known"),
    ];
    for (h, d, tz, want) in cases {
        let err = OpenHours::parse(h, &days(&d), tz).expect_err(h);
        assert!(err.contains(want), "{h} {d:?} {tz}: {err}");
    }
}
