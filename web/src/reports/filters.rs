//! The reports and their filters: parsed from the query string, checked, with defaults.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};

use super::fold::{Hours, Interval};
use super::Field;
use crate::names;

/// The longest window a report reads.
pub const MAX_DAYS: i64 = 400;
/// The longest window in 15-minute intervals.
pub const MAX_QUARTER_DAYS: i64 = 31;

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Per queue and interval.
    Queues,
    /// Per agent.
    Agents,
    /// Calls per weekday and hour.
    Heatmap,
    /// Evening callers by US state.
    Evening,
    /// Missed calls by department.
    Departments,
    /// Repeat callers.
    Callers,
    /// RTP loss and jitter by the caller's country.
    Quality,
}

impl Kind {
    /// Every report, in the order of the list.
    pub const ALL: [Kind; 7] = [
        Kind::Queues,
        Kind::Agents,
        Kind::Heatmap,
        Kind::Evening,
        Kind::Departments,
        Kind::Callers,
        Kind::Quality,
    ];

    /// Its address under `/reports/`.
    pub fn path(self) -> &'static str {
        match self {
            Kind::Queues => "queues",
            Kind::Agents => "agents",
            Kind::Heatmap => "heatmap",
            Kind::Evening => "evening",
            Kind::Departments => "departments",
            Kind::Callers => "callers",
            Kind::Quality => "quality",
        }
    }

    /// Its heading.
    pub fn title(self) -> &'static str {
        match self {
            Kind::Queues => "Queues by interval",
            Kind::Agents => "Agents",
            Kind::Heatmap => "Calls per hour",
            Kind::Evening => "Evening callers by US state",
            Kind::Departments => "Missed calls by department",
            Kind::Callers => "Repeat callers",
            Kind::Quality => "Call quality by caller country",
        }
    }

    /// The paragraph under the heading.
    pub fn intro(self) -> &'static str {
        match self {
            Kind::Queues => "Queued calls by the interval they entered the queue: offered, answered, answered within the service-level threshold, abandoned (the caller hung up while waiting), timed out (sent to the queue's fallback), average speed of answer and average handle (talk) time.",
            Kind::Agents => "Queue calls each agent answered in the window, their talk time and average talk time; from the agents' state changes, their time logged in, their pause time and their occupancy.",
            Kind::Heatmap => "Calls started per weekday and hour, in the chosen time zone.",
            Kind::Evening => "Calls from US numbers that started in the caller's evening, in the caller's own time zone (the area code's state and zone), per state. Pick an agent or a queue.",
            Kind::Departments => "Missed calls (abandoned or timed out, then voicemail, another queue or hang-up) of a department's queues, as a share of the calls offered, per day or week.",
            Kind::Callers => "How often one number called in the window, and the numbers that called most.",
            Kind::Quality => "RTP packet loss and jitter of the callers' audio as this cluster received it, per country of the caller's number (E.164 country code; +1 by area code). Pick an agent or a queue, or neither for every call.",
        }
    }

    fn default_days(self) -> DefaultWindow {
        match self {
            Kind::Queues | Kind::Agents => DefaultWindow::Days(7),
            Kind::Heatmap | Kind::Departments | Kind::Quality => DefaultWindow::Days(28),
            Kind::Evening => DefaultWindow::Months(3),
            Kind::Callers => DefaultWindow::ThisMonth,
        }
    }
}

enum DefaultWindow {
    Days(i64),
    Months(i64),
    ThisMonth,
}

/// The query string as given.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    from: Option<String>,
    to: Option<String>,
    tz: Option<String>,
    interval: Option<String>,
    queue: Option<String>,
    agent: Option<String>,
    department: Option<String>,
    number: Option<String>,
    evening: Option<String>,
    sl: Option<String>,
    /// Set by a shed redirect (`crate::shed::MARKER`); not a filter.
    #[serde(rename = "shed_from")]
    _shed_from: Option<String>,
}

/// Checked filters.
#[derive(Debug, Clone)]
pub struct Filters {
    /// The report's time zone.
    pub tz: TimeZone,
    /// Its IANA name.
    pub tz_name: String,
    /// First and last day (local, both included).
    pub from: Date,
    /// Last day (local, included).
    pub to: Date,
    /// The window: `[from_ms, to_ms)`.
    pub from_ms: i64,
    /// End of the window (excluded).
    pub to_ms: i64,
    /// The table's interval.
    pub interval: Interval,
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this agent.
    pub agent: Option<String>,
    /// Only this department.
    pub department: Option<String>,
    /// The caller asked about.
    pub number: Option<String>,
    /// The evening hours (caller's local time).
    pub evening: Hours,
    /// Service-level threshold, seconds.
    pub sl_s: i64,
    /// When the report was asked for: figures of a window that has not ended stop here.
    pub now_ms: i64,
}

/// Problems, and the form to show them with.
pub type Rejected = (Vec<String>, Vec<Field>);

fn nonempty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

impl Filters {
    /// Parses and checks the query string of report `kind` at `now_ms`.
    pub fn parse(kind: Kind, query: &str, now_ms: i64) -> Result<Filters, Rejected> {
        let raw: Raw = serde_urlencoded::from_str(query).map_err(|e| {
            let problem = format!("The filters could not be read: {e}.");
            (vec![problem], Vec::new())
        })?;
        let mut problems = Vec::new();
        let tz_name = nonempty(raw.tz.clone()).unwrap_or_else(|| "UTC".into());
        let tz = TimeZone::get(&tz_name).unwrap_or_else(|_| {
            problems.push(format!(
                "Unknown time zone {tz_name:?} (an IANA name such as America/New_York)."
            ));
            TimeZone::UTC
        });
        let (from, to, interval) = window(kind, &raw, &tz, now_ms, &mut problems);
        let queue = name(&raw.queue, "Queue", names::Kind::Queue, &mut problems);
        let agent = name(&raw.agent, "Agent", names::Kind::Extension, &mut problems);
        let department = name(
            &raw.department,
            "Department",
            names::Kind::Queue,
            &mut problems,
        );
        let number = nonempty(raw.number.clone());
        if number
            .as_deref()
            .is_some_and(|n| super::numbers::caller_forms(n).is_none())
        {
            problems.push(format!(
                "The number {:?} is not a phone number (digits, with a leading + for E.164).",
                number.as_deref().unwrap_or_default()
            ));
        }
        let (evening, sl_s) = extras(&raw, &mut problems);
        if matches!(kind, Kind::Evening | Kind::Quality) && queue.is_some() && agent.is_some() {
            problems.push("Pick an agent or a queue, not both.".into());
        }
        let start = |d: Result<Date, jiff::Error>| {
            d.and_then(|d| d.to_zoned_datetime(tz.clone()))
                .map(|z| z.timestamp().as_millisecond())
        };
        let (from_ms, to_ms) = match (start(Ok(from)), start(to.tomorrow())) {
            (Ok(a), Ok(b)) => (a, b),
            _ => {
                problems.push("The window is out of range.".into());
                (0, 0)
            }
        };
        let filters = Filters {
            tz,
            tz_name,
            from,
            to,
            from_ms,
            to_ms,
            interval,
            queue,
            agent,
            department,
            number,
            evening,
            sl_s,
            now_ms,
        };
        if problems.is_empty() {
            return Ok(filters);
        }
        let mut fields = filters.fields(kind);
        // Show what was typed, not the defaults that replaced it.
        for f in &mut fields {
            if let Some(typed) = raw.typed(f.name) {
                f.value = typed;
            }
        }
        Err((problems, fields))
    }

    /// The form's fields for report `kind`, filled with these filters: the period's, then the
    /// report's own.
    pub fn fields(&self, kind: Kind) -> Vec<Field> {
        let mut out = self.period_fields();
        out.extend(self.report_fields(kind));
        out
    }

    /// The fields every report has: the dates and the time zone they are read in.
    fn period_fields(&self) -> Vec<Field> {
        vec![
            input("from", "From", "date", self.from.to_string(), ""),
            input("to", "To", "date", self.to.to_string(), "Included."),
            input(
                "tz",
                "Time zone",
                "text",
                self.tz_name.clone(),
                "IANA name, e.g. America/New_York.",
            ),
        ]
    }

    /// The fields of report `kind` after the period's.
    fn report_fields(&self, kind: Kind) -> Vec<Field> {
        let text = |name, label, value: &Option<String>, hint| {
            input(name, label, "text", value.clone().unwrap_or_default(), hint)
        };
        match kind {
            Kind::Queues => vec![
                self.interval_field(&["15m", "hour", "day", "week"]),
                text("queue", "Queue", &self.queue, "Empty: every queue."),
                input(
                    "sl",
                    "Service level (s)",
                    "number",
                    self.sl_s.to_string(),
                    "Answered within this many seconds.",
                ),
            ],
            Kind::Agents => vec![text("agent", "Agent", &self.agent, "Empty: every agent.")],
            Kind::Heatmap => vec![text("queue", "Queue", &self.queue, "Empty: every call.")],
            Kind::Evening => vec![
                text("agent", "Agent", &self.agent, "Its calls,"),
                text("queue", "Queue", &self.queue, "or a queue's."),
                input(
                    "evening",
                    "Evening",
                    "text",
                    format!("{}-{}", self.evening.start, self.evening.end),
                    "Local hours, from-to.",
                ),
            ],
            Kind::Departments => vec![
                self.interval_field(&["day", "week"]),
                text(
                    "department",
                    "Department",
                    &self.department,
                    "Empty: every department.",
                ),
            ],
            Kind::Quality => vec![
                text("agent", "Agent", &self.agent, "Its calls,"),
                text("queue", "Queue", &self.queue, "or a queue's."),
            ],
            Kind::Callers => vec![text(
                "number",
                "Number",
                &self.number,
                "Empty: the top repeat callers.",
            )],
        }
    }

    fn interval_field(&self, choices: &[&str]) -> Field {
        Field {
            name: "interval",
            label: "Interval",
            kind: "select",
            value: self.interval.as_str().to_owned(),
            options: choices
                .iter()
                .map(|c| (c.to_string(), c.to_string()))
                .collect(),
            hint: "",
        }
    }

    /// The store's window for buckets of `bucket_ms`.
    pub fn window(&self, bucket_ms: i64) -> callfleet_store::ReportWindow {
        callfleet_store::ReportWindow {
            from_ms: self.from_ms,
            to_ms: self.to_ms,
            bucket_ms,
        }
    }
}

/// A field without choices: its name, label, kind (`date`, `text`, `number`), value and hint.
fn input(
    name: &'static str,
    label: &'static str,
    kind: &'static str,
    value: String,
    hint: &'static str,
) -> Field {
    Field {
        name,
        label,
        kind,
        value,
        options: Vec::new(),
        hint,
    }
}

impl Raw {
    /// What was typed for field `name`.
    fn typed(&self, name: &str) -> Option<String> {
        match name {
            "from" => self.from.clone(),
            "to" => self.to.clone(),
            "tz" => self.tz.clone(),
            "queue" => self.queue.clone(),
            "agent" => self.agent.clone(),
            "department" => self.department.clone(),
            "number" => self.number.clone(),
            "evening" => self.evening.clone(),
            "sl" => self.sl.clone(),
            _ => None,
        }
    }
}

/// The first and last day and the interval, checked (defaults per report, in `tz`).
fn window(
    kind: Kind,
    raw: &Raw,
    tz: &TimeZone,
    now_ms: i64,
    problems: &mut Vec<String>,
) -> (Date, Date, Interval) {
    let today = Timestamp::from_millisecond(now_ms)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_zoned_datetime(tz.clone())
        .date();
    let mut date = |v: &Option<String>, what: &str| -> Option<Date> {
        let s = nonempty(v.clone())?;
        s.parse::<Date>()
            .map_err(|_| {
                problems.push(format!("The {what} date {s:?} is not a date (YYYY-MM-DD)."))
            })
            .ok()
    };
    let to = date(&raw.to, "last").unwrap_or(today);
    let from = date(&raw.from, "first").unwrap_or_else(|| match kind.default_days() {
        DefaultWindow::Days(n) => to.checked_sub(Span::new().days(n - 1)).unwrap_or(to),
        DefaultWindow::Months(n) => to.checked_sub(Span::new().months(n)).unwrap_or(to),
        DefaultWindow::ThisMonth => to.first_of_month(),
    });
    let interval = match nonempty(raw.interval.clone()) {
        None if kind == Kind::Departments => Interval::Day,
        None => Interval::Hour,
        Some(s) => Interval::parse(&s).unwrap_or_else(|| {
            problems.push(format!("Unknown interval {s:?} (15m, hour, day or week)."));
            Interval::Hour
        }),
    };
    let days = i64::from((to - from).get_days()) + 1;
    if from > to {
        problems.push("The first date is after the last date.".into());
    } else if days > MAX_DAYS {
        problems.push(format!("The window is {days} days; at most {MAX_DAYS}."));
    } else if interval == Interval::Quarter && days > MAX_QUARTER_DAYS {
        problems.push(format!(
            "15-minute intervals cover at most {MAX_QUARTER_DAYS} days."
        ));
    }
    (from, to, interval)
}

/// A name filter, checked against its kind's rule.
fn name(
    v: &Option<String>,
    what: &str,
    kind: names::Kind,
    problems: &mut Vec<String>,
) -> Option<String> {
    let s = nonempty(v.clone())?;
    match names::check(kind, &s) {
        Ok(()) => Some(s),
        Err(e) => {
            problems.push(format!("{what} {s:?}: {e}."));
            None
        }
    }
}

/// The evening hours and the service-level threshold (seconds).
fn extras(raw: &Raw, problems: &mut Vec<String>) -> (Hours, i64) {
    const EVENING: Hours = Hours { start: 18, end: 23 };
    let evening = match nonempty(raw.evening.clone()) {
        None => EVENING,
        Some(s) => Hours::parse(&s).unwrap_or_else(|| {
            problems.push(format!(
                "The evening {s:?} is not two hours 0-24 such as 18-23."
            ));
            EVENING
        }),
    };
    let sl_s = match nonempty(raw.sl.clone()) {
        None => 20,
        Some(s) => match s.parse::<i64>() {
            Ok(v) if (1..=3600).contains(&v) => v,
            _ => {
                problems.push(format!(
                    "The service-level threshold {s:?} is not 1 to 3600 seconds."
                ));
                20
            }
        },
    };
    (evening, sl_s)
}
