//! Open hours and holidays of a number, as typed on the admin pages: pure parsing and the one
//! question the dialplan asks ("open at this local weekday and minute?"). No clock here: the
//! caller converts its instant to the number's time zone.
//!
//! Open hours: `;`-separated spans `DAYS HH:MM-HH:MM`, DAYS being `mon`..`sun`, a range
//! `mon-fri` or a list `mon,wed,fri`; `24:00` ends a day. Empty means always open. A span
//! does not cross midnight (write two). Holidays: `YYYY-MM-DD` dates separated by spaces or
//! commas, closed all day.

use std::fmt;

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
/// Most spans and holidays one number may have (a form's bound, not a real limit).
pub const MAX_ITEMS: usize = 200;

/// Text that is not open hours or holidays, said in words for the admin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HoursError(pub String);

/// One span: the days it applies to (bit 0 Monday .. bit 6 Sunday), from and to in minutes
/// since local midnight, `from < to <= 1440`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub days: u8,
    pub from_min: u16,
    pub to_min: u16,
}

/// Parsed open hours; no span means always open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hours {
    pub spans: Vec<Span>,
}

/// A calendar day (proleptic Gregorian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day {
    pub year: i16,
    pub month: u8,
    pub day: u8,
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl Hours {
    /// Parses open hours (see the module's text).
    pub fn parse(text: &str) -> Result<Hours, HoursError> {
        let mut spans = Vec::new();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            if spans.len() >= MAX_ITEMS {
                return Err(HoursError(format!("more than {MAX_ITEMS} spans")));
            }
            spans.push(span(part)?);
        }
        Ok(Hours { spans })
    }

    /// Always open (no span).
    pub fn always(&self) -> bool {
        self.spans.is_empty()
    }

    /// Open on `weekday` (0 Monday .. 6 Sunday) at `minute` since local midnight.
    pub fn open_at(&self, weekday: u8, minute: u16) -> bool {
        self.always()
            || self.spans.iter().any(|s| {
                weekday < 7
                    && s.days & (1 << weekday) != 0
                    && s.from_min <= minute
                    && minute < s.to_min
            })
    }
}

fn span(part: &str) -> Result<Span, HoursError> {
    let bad = |why: &str| HoursError(format!("{part:?}: {why}; write e.g. mon-fri 09:00-17:00"));
    let (days, times) = part
        .split_once(char::is_whitespace)
        .ok_or_else(|| bad("days and times are needed"))?;
    let mut mask = 0u8;
    for item in days.split(',') {
        let item = item.trim().to_ascii_lowercase();
        let (a, b) = item.split_once('-').unwrap_or((&item, &item));
        let a = day_index(a).ok_or_else(|| bad("unknown day"))?;
        let b = day_index(b).ok_or_else(|| bad("unknown day"))?;
        if a > b {
            return Err(bad("a day range runs from mon towards sun"));
        }
        for d in a..=b {
            mask |= 1 << d;
        }
    }
    let (from, to) = times
        .trim()
        .split_once('-')
        .ok_or_else(|| bad("times are HH:MM-HH:MM"))?;
    let from_min = clock(from.trim()).ok_or_else(|| bad("a time is HH:MM"))?;
    let to_min = clock(to.trim()).ok_or_else(|| bad("a time is HH:MM"))?;
    if from_min >= to_min {
        return Err(bad(
            "the end must be after the start (a span does not cross midnight)",
        ));
    }
    Ok(Span {
        days: mask,
        from_min,
        to_min,
    })
}

fn day_index(name: &str) -> Option<u8> {
    DAYS.iter()
        .position(|d| *d == name)
        .and_then(|i| u8::try_from(i).ok())
}

/// `HH:MM`, 00:00 ..= 24:00, as minutes.
fn clock(text: &str) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let h: u16 = h.parse().ok()?;
    let m: u16 = m.parse().ok()?;
    let total = h.checked_mul(60)?.checked_add(m)?;
    (m < 60 && total <= 24 * 60).then_some(total)
}

/// Parses holidays (see the module's text), sorted and without duplicates.
pub fn parse_holidays(text: &str) -> Result<Vec<Day>, HoursError> {
    let mut days = Vec::new();
    for item in text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|i| !i.is_empty())
    {
        if days.len() >= MAX_ITEMS {
            return Err(HoursError(format!("more than {MAX_ITEMS} holidays")));
        }
        days.push(date(item).ok_or_else(|| {
            HoursError(format!(
                "{item:?} is not a date; write YYYY-MM-DD, e.g. 2026-12-25"
            ))
        })?);
    }
    days.sort();
    days.dedup();
    Ok(days)
}

fn date(text: &str) -> Option<Day> {
    let mut parts = text.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let year: i16 = y.parse().ok()?;
    let month: u8 = m.parse().ok()?;
    let day: u8 = d.parse().ok()?;
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let last = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    (year >= 1 && (1..=last).contains(&day)).then_some(Day { year, month, day })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_parse_and_answer() {
        let h = Hours::parse("mon-fri 09:00-17:00; sat,sun 10:00-12:30").expect("parse");
        assert_eq!(h.spans.len(), 2);
        assert_eq!(h.spans[0].days, 0b001_1111);
        assert_eq!(h.spans[1].days, 0b110_0000);
        for (day, minute, open) in [
            (0, 9 * 60, true),       // Monday 09:00: the first minute
            (0, 9 * 60 - 1, false),  // 08:59
            (4, 17 * 60 - 1, true),  // Friday 16:59
            (4, 17 * 60, false),     // 17:00: the end is excluded
            (5, 10 * 60 + 29, true), // Saturday
            (6, 12 * 60 + 30, false),
            (6, 11 * 60, true),
            (7, 11 * 60, false), // no such weekday
        ] {
            assert_eq!(h.open_at(day, minute), open, "day {day} minute {minute}");
        }
        let all_day = Hours::parse("Sun 00:00-24:00").expect("parse");
        assert!(all_day.open_at(6, 1439) && !all_day.open_at(5, 0));
    }

    #[test]
    fn empty_hours_are_always_open() {
        let h = Hours::parse("  ; ").expect("parse");
        assert!(h.always());
        assert!(h.open_at(3, 0));
    }

    #[test]
    fn bad_hours_are_refused_in_words() {
        for bad in [
            "mon",
            "mon 9-17",
            "xyz 09:00-17:00",
            "fri-mon 09:00-17:00",
            "mon 17:00-09:00",
            "mon 09:00-09:00",
            "mon 22:00-24:01",
            "mon 09:60-10:00",
            "mon 09:00",
            "mon -1:00-02:00",
        ] {
            let e = Hours::parse(bad).expect_err(bad);
            assert!(e.0.contains("write e.g."), "{bad}: {e}");
        }
        let many = "mon 09:00-10:00;".repeat(MAX_ITEMS + 1);
        assert!(Hours::parse(&many).is_err());
    }

    #[test]
    fn holidays_parse_sorted_and_checked() {
        let d = parse_holidays("2026-12-25, 2026-01-01 2026-12-25\n2024-02-29").expect("parse");
        let text: Vec<String> = d.iter().map(Day::to_string).collect();
        assert_eq!(text, ["2024-02-29", "2026-01-01", "2026-12-25"]);
        assert_eq!(parse_holidays("").expect("empty"), vec![]);
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-1-01",
            "26-01-01",
            "2026-04-31",
            "x",
        ] {
            assert!(parse_holidays(bad).is_err(), "{bad}");
        }
    }
}
