//! The pure part of the reports: UTC buckets from the store folded into local intervals,
//! states, departments and the weekly heatmap, in the report's time zone; caller prefixes
//! folded into countries.

use std::collections::{BTreeMap, HashMap};

use callfleet_store::{AgentRow, AreaHour, QualityRow, QueueRow};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime};

use super::numbers;

/// One hour in milliseconds: the bucket of the area-code and heatmap queries.
pub const HOUR_MS: i64 = 3_600_000;
/// A quarter of an hour: the finest bucket (every time zone is a whole number of them from
/// UTC, so a 15-minute UTC bucket lies in one local interval).
pub const QUARTER_MS: i64 = 900_000;

/// A report's interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    /// 15 minutes.
    Quarter,
    /// An hour.
    Hour,
    /// A local day.
    Day,
    /// A local week, from Monday.
    Week,
}

impl Interval {
    /// From a filter value: `15m`, `hour`, `day`, `week`.
    pub fn parse(s: &str) -> Option<Interval> {
        Some(match s {
            "15m" => Interval::Quarter,
            "hour" => Interval::Hour,
            "day" => Interval::Day,
            "week" => Interval::Week,
            _ => return None,
        })
    }

    /// The filter value.
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Quarter => "15m",
            Interval::Hour => "hour",
            Interval::Day => "day",
            Interval::Week => "week",
        }
    }

    /// The UTC bucket the store groups by for this interval.
    pub fn bucket_ms(self) -> i64 {
        match self {
            Interval::Quarter => QUARTER_MS,
            _ => HOUR_MS,
        }
    }
}

/// The local start of the interval holding `ms`, as a sortable key (its instant) and a label
/// (`2026-12-04 10:15`, `2026-12-04`, `week of 2026-11-30`).
pub fn local_interval(ms: i64, tz: &TimeZone, iv: Interval) -> (i64, String) {
    let z = Timestamp::from_millisecond(ms)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_zoned_datetime(tz.clone());
    let start = match iv {
        Interval::Quarter | Interval::Hour => {
            let step = if iv == Interval::Quarter { 15 } else { 60 };
            let minute = z.minute() - z.minute() % step;
            z.with()
                .minute(minute)
                .second(0)
                .subsec_nanosecond(0)
                .build()
        }
        Interval::Day => z.start_of_day(),
        Interval::Week => {
            let back = i64::from(z.weekday().to_monday_zero_offset());
            z.start_of_day()
                .and_then(|d| d.checked_sub(jiff::Span::new().days(back)))
        }
    }
    .unwrap_or_else(|_| z.clone());
    let key = start.timestamp().as_millisecond();
    let label = match iv {
        Interval::Quarter | Interval::Hour => start.strftime("%Y-%m-%d %H:%M").to_string(),
        Interval::Day => start.strftime("%Y-%m-%d").to_string(),
        Interval::Week => format!("week of {}", start.strftime("%Y-%m-%d")),
    };
    (key, label)
}

/// A queue's (or department's) figures over one local interval.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueFigures {
    /// What the form calls it.
    pub label: String,
    /// Calls that entered the queue.
    pub offered: i64,
    /// Answered by an agent.
    pub answered: i64,
    /// Answered within the service-level threshold.
    pub within_sl: i64,
    /// Sum of the answered calls' waits.
    pub wait_ms: i64,
    /// Answered calls whose conversation ended.
    pub completed: i64,
    /// Sum of their talk times.
    pub talk_ms: i64,
    /// The caller hung up while waiting.
    pub abandoned: i64,
    /// Reached the queue's maximum wait.
    pub timed_out: i64,
}

impl QueueFigures {
    fn add(&mut self, r: &QueueRow) {
        self.offered += r.offered;
        self.answered += r.answered;
        self.within_sl += r.within_sl;
        self.wait_ms += r.wait_ms;
        self.completed += r.completed;
        self.talk_ms += r.talk_ms;
        self.abandoned += r.abandoned;
        self.timed_out += r.timed_out;
    }

    /// Missed: abandoned or timed out (then sent to voicemail, another queue or hung up).
    pub fn missed(&self) -> i64 {
        self.abandoned + self.timed_out
    }

    /// Share of offered calls answered within the threshold, in percent.
    pub fn service_level(&self) -> Option<f64> {
        pct(self.within_sl, self.offered)
    }

    /// Share of offered calls missed, in percent.
    pub fn missed_pct(&self) -> Option<f64> {
        pct(self.missed(), self.offered)
    }

    /// Average speed of answer, in seconds.
    pub fn asa_s(&self) -> Option<f64> {
        avg_s(self.wait_ms, self.answered)
    }

    /// Average handle (talk) time of the calls that ended, in seconds.
    pub fn aht_s(&self) -> Option<f64> {
        avg_s(self.talk_ms, self.completed)
    }
}

fn pct(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| 100.0 * part as f64 / whole as f64)
}

fn avg_s(total_ms: i64, n: i64) -> Option<f64> {
    (n > 0).then(|| total_ms as f64 / n as f64 / 1000.0)
}

/// Rows of the named queues (all when `queues` is `None`) summed per (key, local interval):
/// the key is the queue, or `""` when `merge` folds the queues together (a department).
pub fn fold_queues(
    rows: &[QueueRow],
    queues: Option<&[String]>,
    merge: bool,
    tz: &TimeZone,
    iv: Interval,
) -> BTreeMap<(String, i64), QueueFigures> {
    let mut out: BTreeMap<(String, i64), QueueFigures> = BTreeMap::new();
    for r in rows {
        if queues.is_some_and(|qs| !qs.contains(&r.queue)) {
            continue;
        }
        let (key, label) = local_interval(r.bucket * iv.bucket_ms(), tz, iv);
        let name = if merge {
            String::new()
        } else {
            r.queue.clone()
        };
        let f = out.entry((name, key)).or_default();
        f.label = label;
        f.add(r);
    }
    out
}

/// An agent's totals over the window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentFigures {
    /// Answered by an agent.
    pub answered: i64,
    /// Answered calls whose conversation ended.
    pub completed: i64,
    /// Sum of their talk times.
    pub talk_ms: i64,
}

impl AgentFigures {
    /// Average talk time, in seconds.
    pub fn avg_talk_s(&self) -> Option<f64> {
        avg_s(self.talk_ms, self.completed)
    }
}

/// Per agent, over the whole window.
pub fn fold_agents(rows: &[AgentRow]) -> BTreeMap<String, AgentFigures> {
    let mut out: BTreeMap<String, AgentFigures> = BTreeMap::new();
    for r in rows {
        let f = out.entry(r.agent.clone()).or_default();
        f.answered += r.answered;
        f.completed += r.completed;
        f.talk_ms += r.talk_ms;
    }
    out
}

/// The RTP quality of the callers' legs from one country, over the window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CountryQuality {
    /// Calls (callers' legs) with a quality record.
    pub legs: i64,
    /// Packets expected from the callers.
    pub expected: i64,
    /// Of those, never received.
    pub lost: i64,
    /// Sum of the legs' jitter at their end, microseconds.
    pub jitter_us_sum: i64,
    /// The highest jitter any leg reached, microseconds.
    pub jitter_max_us: i64,
}

impl CountryQuality {
    /// Packets lost as a share of those expected, in percent.
    pub fn loss_pct(&self) -> Option<f64> {
        (self.expected > 0).then(|| self.lost.max(0) as f64 * 100.0 / self.expected as f64)
    }

    /// Average jitter of a leg, in milliseconds.
    pub fn avg_jitter_ms(&self) -> Option<f64> {
        (self.legs > 0).then(|| self.jitter_us_sum as f64 / self.legs as f64 / 1000.0)
    }
}

/// The label of callers whose number has no known country (not E.164, anonymous).
pub const NO_COUNTRY: &str = "Unknown (not an E.164 number)";

/// Per country of the caller's number ([`numbers::country`] of the prefix).
pub fn fold_quality(rows: &[QualityRow]) -> BTreeMap<&'static str, CountryQuality> {
    let mut out: BTreeMap<&'static str, CountryQuality> = BTreeMap::new();
    for r in rows {
        let country = numbers::country(numbers::caller_number(&r.prefix)).unwrap_or(NO_COUNTRY);
        let c = out.entry(country).or_default();
        c.legs += r.legs;
        c.expected += r.expected;
        c.lost += r.lost;
        c.jitter_us_sum += r.jitter_us_sum;
        c.jitter_max_us = c.jitter_max_us.max(r.jitter_max_us);
    }
    out
}

/// The evening: from `start` (inclusive) to `end` (exclusive) local hours, 0–24; a start
/// after the end wraps past midnight (`22-2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hours {
    /// First local hour, 0–24 (included).
    pub start: u8,
    /// Last local hour, 0–24 (excluded).
    pub end: u8,
}

impl Hours {
    /// From a filter value `18-23`.
    pub fn parse(s: &str) -> Option<Hours> {
        let (a, b) = s.split_once('-')?;
        let (start, end) = (a.trim().parse::<u8>().ok()?, b.trim().parse::<u8>().ok()?);
        (start <= 24 && end <= 24 && start != end).then_some(Hours { start, end })
    }

    /// Whether local hour `h` (0–23) is in.
    pub fn contains(self, h: i8) -> bool {
        let h = h as u8;
        if self.start < self.end {
            (self.start..self.end).contains(&h)
        } else {
            h >= self.start || h < self.end
        }
    }
}

/// Calls per US state whose start fell within `hours` in the caller's own time zone (the zone
/// of its area code). Area codes outside the US table are counted under `None`.
#[derive(Debug, Default)]
pub struct EveningStates {
    /// Calls per state code.
    pub by_state: BTreeMap<&'static str, i64>,
    /// Calls in the window from numbers with no US state (Canada, the Caribbean, unlisted).
    pub unknown: i64,
    zones: HashMap<&'static str, TimeZone>,
}

impl EveningStates {
    /// Takes one row of [`Store::report_area_buckets`](callfleet_store::Store) (hour buckets).
    pub fn add(&mut self, row: AreaHour, hours: Hours) {
        let Some(area) = numbers::us_area(row.npa) else {
            self.unknown += row.calls;
            return;
        };
        let tz = self
            .zones
            .entry(area.zone)
            .or_insert_with(|| TimeZone::get(area.zone).unwrap_or(TimeZone::UTC));
        let Ok(t) = Timestamp::from_millisecond(row.bucket * HOUR_MS) else {
            return;
        };
        if hours.contains(t.to_zoned_datetime(tz.clone()).hour()) {
            *self.by_state.entry(area.state).or_default() += row.calls;
        }
    }
}

/// Calls per local weekday (Monday first) and hour, from hour buckets.
pub fn heatmap(buckets: &[(i64, i64)], tz: &TimeZone) -> [[i64; 24]; 7] {
    let mut grid = [[0i64; 24]; 7];
    for &(bucket, calls) in buckets {
        let Ok(t) = Timestamp::from_millisecond(bucket * HOUR_MS) else {
            continue;
        };
        let z: ZonedDateTime = t.to_zoned_datetime(tz.clone());
        let day = usize::try_from(z.weekday().to_monday_zero_offset()).unwrap_or(0);
        let hour = usize::try_from(z.hour()).unwrap_or(0);
        grid[day % 7][hour % 24] += calls;
    }
    grid
}

/// Weekday names, Monday first.
pub const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

mod states;
pub use states::{state_times, StateTimes};

#[cfg(test)]
mod tests;
