//! Open hours of the call centre (`alerts.open_hours`, `open_days`, `time_zone`): when the
//! carrier-silence rule applies, and since when the current opening runs. Pure, over
//! injected wall-clock milliseconds; the time zone comes from the system's tz database.

use jiff::tz::TimeZone;
use jiff::Timestamp;

/// Days and hours the centre is open, in one time zone.
#[derive(Debug, Clone)]
pub struct OpenHours {
    tz: TimeZone,
    /// Open on each weekday, Monday first.
    days: [bool; 7],
    /// Minutes after midnight (local), `open < close <= 1440`.
    open_min: i32,
    close_min: i32,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl OpenHours {
    /// `hours` as `"HH:MM-HH:MM"` (close after open, `24:00` allowed), `days` among
    /// `mon` .. `sun`, `time_zone` an IANA name (`UTC`, `Europe/Paris`).
    pub fn parse(hours: &str, days: &[String], time_zone: &str) -> Result<Self, String> {
        let (open, close) = hours
            .split_once('-')
            .ok_or_else(|| format!("open_hours {hours:?}: expected \"HH:MM-HH:MM\""))?;
        let open_min = minutes(open.trim())
            .ok_or_else(|| format!("open_hours {hours:?}: bad time {open:?}"))?;
        let close_min = minutes(close.trim())
            .ok_or_else(|| format!("open_hours {hours:?}: bad time {close:?}"))?;
        if close_min <= open_min {
            return Err(format!(
                "open_hours {hours:?}: closing must come after opening on the same day"
            ));
        }
        let mut open_days = [false; 7];
        for day in days {
            let i = DAYS
                .iter()
                .position(|d| d.eq_ignore_ascii_case(day.trim()))
                .ok_or_else(|| format!("open_days: {day:?} is not one of mon .. sun"))?;
            open_days[i] = true;
        }
        let tz = TimeZone::get(time_zone)
            .map_err(|e| format!("time_zone {time_zone:?} is not known here: {e}"))?;
        Ok(Self {
            tz,
            days: open_days,
            open_min,
            close_min,
        })
    }

    /// When the opening that `now_ms` falls in began, or `None` while closed.
    pub fn opened_at(&self, now_ms: i64) -> Option<i64> {
        let now = Timestamp::from_millisecond(now_ms).ok()?;
        let local = now.to_zoned_datetime(self.tz.clone());
        let day = usize::try_from(local.weekday().to_monday_zero_offset()).ok()?;
        let time = local.time();
        let minute = i32::from(time.hour()) * 60 + i32::from(time.minute());
        if !self.days.get(day).copied().unwrap_or(false)
            || minute < self.open_min
            || minute >= self.close_min
        {
            return None;
        }
        let hour = i8::try_from(self.open_min / 60).ok()?;
        let min = i8::try_from(self.open_min % 60).ok()?;
        let opened = local
            .date()
            .at(hour, min, 0, 0)
            .to_zoned_datetime(self.tz.clone())
            .ok()?;
        Some(opened.timestamp().as_millisecond())
    }
}

/// `HH:MM` as minutes after midnight; `24:00` is 1440.
fn minutes(text: &str) -> Option<i32> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: i32 = h.parse().ok()?;
    let m: i32 = m.parse().ok()?;
    match (h, m) {
        (0..=23, 0..=59) => Some(h * 60 + m),
        (24, 0) => Some(1440),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
