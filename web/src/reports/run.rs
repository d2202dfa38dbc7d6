//! Each report: its store queries, folded ([`super::fold`]) into a chart and a table.

use std::collections::BTreeMap;

use callfleet_store::{CallFilter, ReportWindow, Store, StoreError};
use jiff::Timestamp;

use super::chart;
use super::filters::{Filters, Kind};
use super::fold::{self, EveningStates, Interval, QueueFigures, HOUR_MS};
use super::numbers;
use super::{Output, Table};

/// Why a report has no result.
#[derive(Debug)]
pub enum Failure {
    /// The filters name something that does not exist.
    Bad(String),
    /// The database failed.
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

/// Most rows of the top-callers table.
const TOP_CALLERS: i64 = 50;
/// Most bars of a chart over agents, states or callers (the table has them all).
const MAX_BARS: usize = 40;

/// Runs report `kind`.
pub async fn run(store: &Store, kind: Kind, f: &Filters) -> Result<Output, Failure> {
    match kind {
        Kind::Queues => queues(store, f).await,
        Kind::Agents => agents(store, f).await,
        Kind::Heatmap => heatmap(store, f).await,
        Kind::Evening => evening(store, f).await,
        Kind::Departments => departments(store, f).await,
        Kind::Callers => callers(store, f).await,
        Kind::Quality => quality(store, f).await,
    }
}

fn opt(v: Option<f64>) -> String {
    v.map(chart::trim).unwrap_or_default()
}

fn figures_cells(q: &QueueFigures) -> [String; 7] {
    [
        q.offered.to_string(),
        q.answered.to_string(),
        q.abandoned.to_string(),
        q.timed_out.to_string(),
        opt(q.service_level()),
        opt(q.asa_s()),
        opt(q.aht_s()),
    ]
}

async fn queues(store: &Store, f: &Filters) -> Result<Output, Failure> {
    let rows = store
        .report_queues(
            f.window(f.interval.bucket_ms()),
            f.queue.as_deref(),
            f.sl_s * 1000,
        )
        .await?;
    let per_queue = fold::fold_queues(&rows, None, false, &f.tz, f.interval);
    let total = fold::fold_queues(&rows, None, true, &f.tz, f.interval);
    let mut lines: Vec<_> = per_queue.iter().collect();
    lines.sort_by(|a, b| (a.0 .1, &a.0 .0).cmp(&(b.0 .1, &b.0 .0)));
    let table = Table {
        headers: vec![
            "interval",
            "queue",
            "offered",
            "answered",
            "abandoned",
            "timed out",
            "service level %",
            "ASA s",
            "AHT s",
        ],
        rows: lines
            .into_iter()
            .map(|((queue, _), q)| {
                let mut row = vec![q.label.clone(), queue.clone()];
                row.extend(figures_cells(q));
                row
            })
            .collect(),
    };
    let points: Vec<_> = total
        .values()
        .map(|q| (q.label.clone(), q.offered as f64))
        .collect();
    let sum = total.values().fold(QueueFigures::default(), |mut acc, q| {
        acc.offered += q.offered;
        acc.answered += q.answered;
        acc.within_sl += q.within_sl;
        acc.abandoned += q.abandoned;
        acc.timed_out += q.timed_out;
        acc
    });
    Ok(Output {
        notes: vec![format!(
            "{} calls offered, {} answered, {} abandoned, {} timed out; service level {} % (answered within {} s).",
            sum.offered,
            sum.answered,
            sum.abandoned,
            sum.timed_out,
            opt(sum.service_level()),
            f.sl_s
        )],
        bars: Some(chart::bars("Calls offered per interval", &points, "")),
        heat: None,
        table,
    })
}

fn hms(ms: i64) -> String {
    let s = ms / 1000;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

async fn agents(store: &Store, f: &Filters) -> Result<Output, Failure> {
    // States up to now in a window that has not ended.
    let end = f.to_ms.min(f.now_ms.max(f.from_ms));
    let window = ReportWindow {
        from_ms: f.from_ms,
        to_ms: end,
        bucket_ms: 1,
    };
    // The calls and the state times are two queries on two tables: asked at once, on two of
    // the pool's connections.
    let (rows, states) = tokio::try_join!(
        store.report_agents(f.window(24 * HOUR_MS), f.agent.as_deref()),
        store.report_agent_state_times(window, f.agent.as_deref()),
    )?;
    let per = fold::fold_agents(&rows);
    let states = fold::state_times(states);
    let none = (fold::AgentFigures::default(), fold::StateTimes::default());
    let mut all: BTreeMap<&str, (&fold::AgentFigures, &fold::StateTimes)> = BTreeMap::new();
    for (a, x) in &per {
        all.insert(a, (x, &none.1));
    }
    for (a, t) in &states {
        all.entry(a).or_insert((&none.0, t)).1 = t;
    }
    let mut order: Vec<_> = all.into_iter().collect();
    order.sort_by(|a, b| b.1 .0.answered.cmp(&a.1 .0.answered).then(a.0.cmp(b.0)));
    let points: Vec<_> = order
        .iter()
        .take(MAX_BARS)
        .map(|(a, (x, _))| (a.to_string(), x.answered as f64))
        .collect();
    Ok(Output {
        notes: vec!["Calls: queue calls answered in the window. Time: from the agents' state changes; occupancy is talking and wrap-up as a share of the time logged in and not paused.".into()],
        bars: Some(chart::bars("Calls answered per agent", &points, "")),
        heat: None,
        table: Table {
            headers: vec![
                "agent",
                "answered",
                "talk time",
                "average talk s",
                "logged in",
                "paused",
                "occupancy %",
            ],
            rows: order
                .into_iter()
                .map(|(a, (x, t))| {
                    vec![
                        a.to_owned(),
                        x.answered.to_string(),
                        hms(x.talk_ms),
                        opt(x.avg_talk_s()),
                        hms(t.logged_in_ms),
                        hms(t.paused_ms),
                        opt(t.occupancy_pct()),
                    ]
                })
                .collect(),
        },
    })
}

fn cdr_filter(f: &Filters) -> CallFilter {
    match (&f.agent, &f.queue) {
        (Some(a), _) => CallFilter::Agent(a.clone()),
        (None, Some(q)) => CallFilter::Queue(q.clone()),
        (None, None) => CallFilter::All,
    }
}

async fn heatmap(store: &Store, f: &Filters) -> Result<Output, Failure> {
    let filter = f.queue.clone().map_or(CallFilter::All, CallFilter::Queue);
    let buckets = store
        .report_call_buckets(f.window(HOUR_MS), &filter)
        .await?;
    let grid = fold::heatmap(&buckets, &f.tz);
    let mut headers = vec!["day"];
    headers.extend(HOURS);
    let rows = grid
        .iter()
        .zip(fold::WEEKDAYS)
        .map(|(row, day)| {
            std::iter::once(day.to_owned())
                .chain(row.iter().map(i64::to_string))
                .collect()
        })
        .collect();
    let total: i64 = grid.iter().flatten().sum();
    Ok(Output {
        notes: vec![format!("{total} calls.")],
        bars: None,
        heat: Some(chart::heat(
            "Calls per weekday and hour",
            &grid,
            &fold::WEEKDAYS,
        )),
        table: Table { headers, rows },
    })
}

const HOURS: [&str; 24] = [
    "00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "13", "14", "15",
    "16", "17", "18", "19", "20", "21", "22", "23",
];

async fn evening(store: &Store, f: &Filters) -> Result<Output, Failure> {
    let mut states = EveningStates::default();
    let hours = f.evening;
    store
        .report_area_buckets(f.window(HOUR_MS), &cdr_filter(f), |row| {
            states.add(row, hours)
        })
        .await?;
    let mut order: Vec<_> = states.by_state.iter().map(|(s, n)| (*s, *n)).collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let total: i64 = order.iter().map(|s| s.1).sum();
    let who = match cdr_filter(f) {
        CallFilter::Agent(a) => format!("agent {a}"),
        CallFilter::Queue(q) => format!("queue {q}"),
        CallFilter::All => "every agent and queue".into(),
    };
    let points: Vec<_> = order
        .iter()
        .take(MAX_BARS)
        .map(|(s, n)| (s.to_string(), *n as f64))
        .collect();
    Ok(Output {
        notes: vec![format!(
            "{total} calls of {who} from {} states between {}:00 and {}:00 local time; {} calls from numbers with no US state (Canada, the Caribbean, other) are not counted.",
            order.len(),
            hours.start,
            hours.end,
            states.unknown
        )],
        bars: Some(chart::bars("Evening calls per state", &points, "")),
        heat: None,
        table: Table {
            headers: vec!["state", "calls"],
            rows: order.into_iter().map(|(s, n)| vec![s.to_owned(), n.to_string()]).collect(),
        },
    })
}

async fn departments(store: &Store, f: &Filters) -> Result<Output, Failure> {
    let mut depts = store.departments().await?;
    if let Some(name) = &f.department {
        depts.retain(|d| &d.name == name);
        if depts.is_empty() {
            return Err(Failure::Bad(format!(
                "There is no department named {name:?}."
            )));
        }
    }
    let rows = store
        .report_queues(f.window(HOUR_MS), None, f.sl_s * 1000)
        .await?;
    let mut table = Table {
        headers: vec![
            "department",
            "interval",
            "offered",
            "missed",
            "missed %",
            "abandoned",
            "timed out",
        ],
        rows: Vec::new(),
    };
    let mut chart_points = Vec::new();
    for (i, d) in depts.iter().enumerate() {
        let folded: BTreeMap<_, _> =
            fold::fold_queues(&rows, Some(&d.queues), true, &f.tz, f.interval);
        for q in folded.values() {
            table.rows.push(vec![
                d.name.clone(),
                q.label.clone(),
                q.offered.to_string(),
                q.missed().to_string(),
                opt(q.missed_pct()),
                q.abandoned.to_string(),
                q.timed_out.to_string(),
            ]);
            if i == 0 {
                chart_points.push((q.label.clone(), q.missed_pct().unwrap_or(0.0)));
            }
        }
    }
    let caption = match depts.first() {
        Some(d) => format!("Missed calls of {} (% of offered)", d.name),
        None => "No departments yet: an admin makes them on the admin pages.".into(),
    };
    let interval = if f.interval == Interval::Week {
        "week"
    } else {
        "day"
    };
    Ok(Output {
        notes: vec![format!("{} department(s), per {interval}.", depts.len())],
        bars: Some(chart::bars(&caption, &chart_points, "%")),
        heat: None,
        table,
    })
}

fn local(ms: i64, f: &Filters) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| {
            t.to_zoned_datetime(f.tz.clone())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

async fn callers(store: &Store, f: &Filters) -> Result<Output, Failure> {
    let w = f.window(1);
    let (rows, note) = match &f.number {
        Some(n) => {
            let forms = numbers::caller_forms(n)
                .ok_or_else(|| Failure::Bad(format!("{n:?} is not a number.")))?;
            let rows = store.report_caller(w, &forms).await?;
            let calls: i64 = rows.iter().map(|r| r.calls).sum();
            (
                rows,
                format!("{n} called {calls} times between {} and {}.", f.from, f.to),
            )
        }
        None => {
            let rows = store.report_top_callers(w, 2, TOP_CALLERS).await?;
            let note = format!(
                "The {} numbers that called most (twice or more) between {} and {}.",
                rows.len(),
                f.from,
                f.to
            );
            (rows, note)
        }
    };
    let points: Vec<_> = rows
        .iter()
        .take(MAX_BARS)
        .map(|r| (numbers::caller_number(&r.caller).to_owned(), r.calls as f64))
        .collect();
    Ok(Output {
        notes: vec![note],
        bars: Some(chart::bars("Calls per caller", &points, "")),
        heat: None,
        table: Table {
            headers: vec![
                "number",
                "country",
                "calls",
                "answered",
                "first call",
                "last call",
            ],
            rows: rows
                .iter()
                .map(|r| {
                    let number = numbers::caller_number(&r.caller);
                    vec![
                        number.to_owned(),
                        numbers::country(number).unwrap_or("").to_owned(),
                        r.calls.to_string(),
                        r.answered.to_string(),
                        local(r.first_ms, f),
                        local(r.last_ms, f),
                    ]
                })
                .collect(),
        },
    })
}

async fn quality(store: &Store, f: &Filters) -> Result<Output, Failure> {
    let mut rows = Vec::new();
    store
        .report_quality_prefixes(f.window(HOUR_MS), &cdr_filter(f), |r| rows.push(r))
        .await?;
    let per = fold::fold_quality(&rows);
    let mut order: Vec<_> = per.into_iter().collect();
    order.sort_by(|a, b| b.1.legs.cmp(&a.1.legs).then(a.0.cmp(b.0)));
    let legs: i64 = order.iter().map(|c| c.1.legs).sum();
    let points: Vec<_> = order
        .iter()
        .take(MAX_BARS)
        .map(|(c, q)| (c.to_string(), q.loss_pct().unwrap_or(0.0)))
        .collect();
    let ms = |us: i64| chart::trim(us as f64 / 1000.0);
    Ok(Output {
        notes: vec![format!(
            "{legs} calls with RTP figures from {} countries. Loss is the share of the packets expected from the callers that never arrived (RFC 3550 sequence numbers); jitter is the interarrival jitter at the end of each call.",
            order.len()
        )],
        bars: Some(chart::bars("Packet loss from callers per country", &points, " %")),
        heat: None,
        table: Table {
            headers: vec!["country", "calls", "loss %", "average jitter ms", "highest jitter ms"],
            rows: order
                .into_iter()
                .map(|(c, q)| {
                    vec![
                        c.to_owned(),
                        q.legs.to_string(),
                        opt(q.loss_pct()),
                        opt(q.avg_jitter_ms()),
                        ms(q.jitter_max_us),
                    ]
                })
                .collect(),
        },
    })
}
