//! Which destination of a number (DID) applies at a given instant: its open destination
//! within its weekly open hours in its own time zone, its closed destination outside them and
//! all day on its holidays. [`destination`] is pure over injected wall-clock milliseconds;
//! [`NumberRoute::new`] parses a row once, when the configuration cache loads it.

use callfleet_store::numbers::hours::{self, Day, Hours};
use callfleet_store::{Destination, Number};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use tracing::warn;

/// A number as the cache keeps it: the row and its parsed schedule. A schedule that does
/// not parse (a row written around the admin pages) leaves `schedule` `None`: the number is
/// always closed, and the cache logged why.
#[derive(Debug, Clone)]
pub struct NumberRoute {
    pub row: Number,
    schedule: Option<Schedule>,
}

#[derive(Debug, Clone)]
struct Schedule {
    tz: TimeZone,
    hours: Hours,
    holidays: Vec<Day>,
}

impl NumberRoute {
    /// Parses the row's time zone, hours and holidays (and logs what does not parse).
    pub fn new(row: Number) -> NumberRoute {
        let parsed = (|| -> Result<Schedule, String> {
            let tz = TimeZone::get(&row.time_zone)
                .map_err(|e| format!("time zone {:?}: {e}", row.time_zone))?;
            let hours = Hours::parse(&row.open_hours).map_err(|e| e.to_string())?;
            let holidays = hours::parse_holidays(&row.holidays).map_err(|e| e.to_string())?;
            Ok(Schedule {
                tz,
                hours,
                holidays,
            })
        })();
        let schedule = match parsed {
            Ok(s) => Some(s),
            Err(e) => {
                warn!(number = %row.number, error = %e, "the number's schedule does not parse; it is treated as closed");
                None
            }
        };
        NumberRoute { row, schedule }
    }
}

/// Whether the number is open at `now_ms` (wall clock, milliseconds since the epoch).
pub fn is_open(n: &NumberRoute, now_ms: i64) -> bool {
    let Some(s) = &n.schedule else {
        return false;
    };
    let Ok(now) = Timestamp::from_millisecond(now_ms) else {
        return false;
    };
    let local = now.to_zoned_datetime(s.tz.clone());
    let (Ok(month), Ok(day)) = (u8::try_from(local.month()), u8::try_from(local.day())) else {
        return false;
    };
    let today = Day {
        year: local.year(),
        month,
        day,
    };
    if s.holidays.binary_search(&today).is_ok() {
        return false;
    }
    let (Ok(weekday), Ok(hour), Ok(minute)) = (
        u8::try_from(local.weekday().to_monday_zero_offset()),
        u16::try_from(local.hour()),
        u16::try_from(local.minute()),
    ) else {
        return false;
    };
    s.hours.open_at(weekday, hour * 60 + minute)
}

/// Where a call to the number goes at `now_ms`.
pub fn destination(n: &NumberRoute, now_ms: i64) -> &Destination {
    if is_open(n, now_ms) {
        &n.row.open
    } else {
        &n.row.closed
    }
}

#[cfg(test)]
mod tests {
    use callfleet_store::DestKind;

    use super::*;

    fn number(tz: &str, open_hours: &str, holidays: &str) -> NumberRoute {
        NumberRoute::new(Number {
            number: "0800".into(),
            open: Destination::new(DestKind::Menu, "main"),
            closed: Destination::new(DestKind::Message, "closed.wav"),
            time_zone: tz.into(),
            open_hours: open_hours.into(),
            holidays: holidays.into(),
            created_at_ms: 0,
        })
    }

    /// Milliseconds of a UTC instant written `YYYY-MM-DDTHH:MM:SSZ`.
    fn at(text: &str) -> i64 {
        text.parse::<Timestamp>()
            .expect("timestamp")
            .as_millisecond()
    }

    #[test]
    fn open_hours_and_holidays_in_the_numbers_time_zone() {
        let paris = number(
            "Europe/Paris",
            "mon-fri 09:00-17:00; sat 10:00-12:00",
            "2026-12-25 2027-01-01",
        );
        for (utc, open, why) in [
            // 2026-12-07 is a Monday; Paris is UTC+1 in winter.
            ("2026-12-07T08:00:00Z", true, "Monday 09:00 in Paris"),
            ("2026-12-07T07:59:00Z", false, "Monday 08:59 in Paris"),
            ("2026-12-07T15:59:00Z", true, "Monday 16:59 in Paris"),
            ("2026-12-07T16:00:00Z", false, "Monday 17:00 in Paris"),
            ("2026-12-12T09:30:00Z", true, "Saturday 10:30"),
            ("2026-12-12T11:00:00Z", false, "Saturday 12:00"),
            ("2026-12-13T10:00:00Z", false, "Sunday"),
            ("2026-12-25T10:00:00Z", false, "a Friday that is a holiday"),
            (
                "2026-12-24T23:30:00Z",
                false,
                "the holiday begins at local midnight",
            ),
            ("2026-12-24T15:30:00Z", true, "the day before the holiday"),
            // Summer time: UTC+2.
            ("2026-07-06T07:00:00Z", true, "Monday 09:00 in summer"),
            ("2026-07-06T06:59:00Z", false, "Monday 08:59 in summer"),
            // Friday 23:30 UTC is Saturday 00:30 in Paris.
            (
                "2026-12-11T23:30:00Z",
                false,
                "Saturday 00:30 local, not Friday",
            ),
        ] {
            assert_eq!(is_open(&paris, at(utc)), open, "{why} ({utc})");
            let want = if open {
                &paris.row.open
            } else {
                &paris.row.closed
            };
            assert_eq!(destination(&paris, at(utc)), want, "{why}");
        }
    }

    #[test]
    fn no_hours_is_always_open_except_holidays() {
        let n = number("UTC", "", "2026-05-01");
        assert!(is_open(&n, at("2026-04-30T23:59:00Z")));
        assert!(!is_open(&n, at("2026-05-01T00:00:00Z")));
        assert!(is_open(&n, at("2026-05-02T00:00:00Z")));
    }

    #[test]
    fn a_schedule_that_does_not_parse_is_closed() {
        let now = at("2026-12-07T10:00:00Z");
        for n in [
            number("Mars/Olympus", "", ""),
            number("UTC", "someday 09:00-10:00", ""),
            number("UTC", "", "2026-02-30"),
        ] {
            assert!(!is_open(&n, now), "{:?}", n.row);
            assert_eq!(destination(&n, now), &n.row.closed);
        }
        // Instants jiff cannot represent are closed too, not a panic.
        assert!(!is_open(&number("UTC", "", ""), i64::MAX));
    }
}
