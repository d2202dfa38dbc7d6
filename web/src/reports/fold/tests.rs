use callfleet_store::{AgentRow, AreaHour, QualityRow, QueueRow};
use jiff::tz::TimeZone;

use super::*;

fn ms(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>()
        .expect("timestamp")
        .as_millisecond()
}

fn ny() -> TimeZone {
    TimeZone::get("America/New_York").expect("zone")
}

#[test]
fn local_intervals() {
    let paris = TimeZone::get("Europe/Paris").expect("zone");
    let kolkata = TimeZone::get("Asia/Kolkata").expect("zone");
    let table = [
        // 2026-12-04 03:20 UTC is 2026-12-03 22:20 in New York (a Thursday).
        (
            "2026-12-04T03:20:00Z",
            ny(),
            Interval::Quarter,
            "2026-12-03 22:15",
            "2026-12-04T03:15:00Z",
        ),
        (
            "2026-12-04T03:20:00Z",
            ny(),
            Interval::Hour,
            "2026-12-03 22:00",
            "2026-12-04T03:00:00Z",
        ),
        (
            "2026-12-04T03:20:00Z",
            ny(),
            Interval::Day,
            "2026-12-03",
            "2026-12-03T05:00:00Z",
        ),
        (
            "2026-12-04T03:20:00Z",
            ny(),
            Interval::Week,
            "week of 2026-11-30",
            "2026-11-30T05:00:00Z",
        ),
        // Summer time: the day of the spring change in Paris starts at 23:00 UTC the day before.
        (
            "2026-03-29T12:00:00Z",
            paris,
            Interval::Day,
            "2026-03-29",
            "2026-03-28T23:00:00Z",
        ),
        // Half-hour zones fold 15-minute UTC buckets into their own hours.
        (
            "2026-12-04T03:20:00Z",
            kolkata,
            Interval::Hour,
            "2026-12-04 08:00",
            "2026-12-04T02:30:00Z",
        ),
    ];
    for (at, tz, iv, label, start) in table {
        let (key, got) = local_interval(ms(at), &tz, iv);
        assert_eq!((got.as_str(), key), (label, ms(start)), "{at} {iv:?}");
    }
}

#[test]
fn intervals_parse() {
    for iv in [
        Interval::Quarter,
        Interval::Hour,
        Interval::Day,
        Interval::Week,
    ] {
        assert_eq!(Interval::parse(iv.as_str()), Some(iv));
    }
    assert_eq!(Interval::parse("month"), None);
    assert_eq!(Interval::Quarter.bucket_ms(), QUARTER_MS);
    assert_eq!(Interval::Week.bucket_ms(), HOUR_MS);
}

fn qrow(queue: &str, at: &str, offered: i64, answered: i64, abandoned: i64) -> QueueRow {
    QueueRow {
        queue: queue.into(),
        bucket: ms(at) / HOUR_MS,
        offered,
        answered,
        within_sl: answered / 2,
        wait_ms: answered * 10_000,
        completed: answered,
        talk_ms: answered * 60_000,
        abandoned,
        timed_out: offered - answered - abandoned,
    }
}

#[test]
fn queues_fold_into_local_days_and_departments() {
    let rows = [
        qrow("sales", "2026-12-04T03:00:00Z", 10, 8, 1), // Dec 3 in New York
        qrow("sales", "2026-12-04T15:00:00Z", 4, 4, 0),  // Dec 4
        qrow("support", "2026-12-04T16:00:00Z", 6, 2, 2),
        qrow("other", "2026-12-04T16:00:00Z", 100, 0, 100),
    ];
    let per_queue = fold_queues(&rows, None, false, &ny(), Interval::Day);
    assert_eq!(per_queue.len(), 4);
    let dept: Vec<String> = vec!["sales".into(), "support".into()];
    let merged = fold_queues(&rows, Some(&dept), true, &ny(), Interval::Day);
    let days: Vec<_> = merged.values().collect();
    assert_eq!(days.len(), 2);
    assert_eq!(
        (days[0].label.as_str(), days[0].offered, days[0].missed()),
        ("2026-12-03", 10, 2)
    );
    let d4 = days[1];
    assert_eq!(
        (d4.label.as_str(), d4.offered, d4.answered, d4.missed()),
        ("2026-12-04", 10, 6, 4)
    );
    assert_eq!(d4.missed_pct(), Some(40.0));
    assert_eq!(d4.asa_s(), Some(10.0));
    assert_eq!(d4.aht_s(), Some(60.0));
    assert_eq!(d4.service_level(), Some(30.0)); // (2 + 1) of 10
    assert_eq!(QueueFigures::default().service_level(), None);
}

#[test]
fn agents_sum_over_the_window() {
    let row = |agent: &str, bucket, answered, talk_ms| AgentRow {
        agent: agent.into(),
        bucket,
        answered,
        completed: answered,
        talk_ms,
    };
    let f = fold_agents(&[
        row("1001", 1, 2, 100_000),
        row("1001", 2, 1, 20_000),
        row("1002", 1, 1, 5000),
    ]);
    assert_eq!(f["1001"].answered, 3);
    assert_eq!(f["1001"].avg_talk_s(), Some(40.0));
    assert_eq!(f["1002"].talk_ms, 5000);
}

#[test]
fn evening_hours() {
    let h = Hours::parse("18-23").expect("hours");
    assert!(h.contains(18) && h.contains(22) && !h.contains(23) && !h.contains(9));
    let wrap = Hours::parse("22-2").expect("hours");
    assert!(wrap.contains(23) && wrap.contains(1) && !wrap.contains(2) && !wrap.contains(21));
    for bad in ["18", "18-18", "a-b", "18-25", ""] {
        assert_eq!(Hours::parse(bad), None, "{bad}");
    }
}

#[test]
fn evening_calls_counted_in_the_callers_own_zone() {
    let hours = Hours::parse("18-23").expect("hours");
    let area = |npa: &[u8; 3], at: &str, calls| AreaHour {
        npa: *npa,
        bucket: ms(at) / HOUR_MS,
        calls,
    };
    let mut e = EveningStates::default();
    // 23:00 UTC on a December day: 18:00 in New York (in), 15:00 in Los Angeles (out).
    e.add(area(b"212", "2026-12-04T23:00:00Z", 3), hours);
    e.add(area(b"213", "2026-12-04T23:00:00Z", 5), hours);
    // 05:00 UTC: 21:00 the day before in Los Angeles (in), midnight in New York (out).
    e.add(area(b"310", "2026-12-05T05:00:00Z", 2), hours);
    e.add(area(b"718", "2026-12-05T05:00:00Z", 7), hours);
    // In July New York is UTC-4: 22:00 UTC is 18:00 (in); in December it is 17:00 (out).
    e.add(area(b"917", "2026-07-04T22:00:00Z", 1), hours);
    e.add(area(b"917", "2026-12-04T22:00:00Z", 1), hours);
    // Arizona keeps standard time: 01:00 UTC in July is 18:00 there (in).
    e.add(area(b"602", "2026-07-05T01:00:00Z", 4), hours);
    // Toronto is not a US state.
    e.add(area(b"416", "2026-12-04T23:00:00Z", 9), hours);
    let got: Vec<_> = e.by_state.iter().map(|(s, n)| (*s, *n)).collect();
    assert_eq!(got, [("AZ", 4), ("CA", 2), ("NY", 4)]);
    assert_eq!(e.unknown, 9);
}

#[test]
fn heatmap_in_local_time() {
    // 2026-12-07 is a Monday; 14:00 UTC is 09:00 in New York.
    let grid = heatmap(
        &[
            (ms("2026-12-07T14:00:00Z") / HOUR_MS, 5),
            (ms("2026-12-13T04:00:00Z") / HOUR_MS, 2),
        ],
        &ny(),
    );
    assert_eq!(grid[0][9], 5);
    assert_eq!(grid[5][23], 2); // Saturday 23:00
    assert_eq!(grid.iter().flatten().sum::<i64>(), 7);
}

#[test]
fn quality_folds_prefixes_into_countries() {
    let row = |prefix: &str, legs, expected, lost, jitter, max| QualityRow {
        prefix: prefix.into(),
        legs,
        expected,
        lost,
        jitter_us_sum: jitter,
        jitter_max_us: max,
    };
    let rows = [
        // Two US area codes, a Canadian one (+1 without a US state), London, a short
        // extension and an anonymous caller.
        row("sip:+12125", 2, 2000, 10, 6_000, 5_000),
        row("sip:+13105", 1, 1000, 30, 3_000, 9_000),
        row("sips:+1416", 1, 1000, 0, 1_000, 1_000),
        row("sip:+44207", 3, 3000, 300, 90_000, 70_000),
        row("sip:1001", 1, 500, 0, 500, 500),
        row("sip:anonym", 1, 0, 0, 0, 0),
    ];
    let got = fold_quality(&rows);
    let us = &got["United States"];
    assert_eq!(
        (us.legs, us.expected, us.lost, us.jitter_max_us),
        (3, 3000, 40, 9_000)
    );
    assert_eq!(us.avg_jitter_ms(), Some(3.0));
    assert_eq!(got["United Kingdom"].loss_pct(), Some(10.0));
    let unknown = &got[NO_COUNTRY];
    assert_eq!((unknown.legs, unknown.loss_pct()), (2, Some(0.0)));
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(
        CountryQuality::default().loss_pct(),
        None,
        "no packets, no share"
    );
}
