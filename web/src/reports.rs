//! The report pages: what a call-centre manager asks of the call history, with filters, a
//! chart drawn on the server (SVG) and a CSV download of the same table, for supervisors and
//! admins with a session (level [`Access::Page`](crate::auth::Access::Page)).
//!
//! | route | report |
//! |-------|--------|
//! | `GET /reports` | the list |
//! | `GET /reports/queues[.csv]` | per queue and interval (15 min, hour, day, week): offered, answered, abandoned, timed out, service level, ASA, AHT |
//! | `GET /reports/agents[.csv]` | per agent: answered calls, talk time, average talk |
//! | `GET /reports/heatmap[.csv]` | calls per weekday and hour |
//! | `GET /reports/evening[.csv]` | calls per US state in the caller's evening (area code → state and time zone), of an agent or a queue |
//! | `GET /reports/departments[.csv]` | a department's missed calls (abandoned, timed out) per day or week |
//! | `GET /reports/callers[.csv]` | a caller's calls, and the top repeat callers |
//! | `GET /reports/cdrs.csv` | the call records of the window, streamed |
//!
//! Every route but the list computes, and a node at shed level 1 or more sends those to an
//! idle node or refuses them ([`crate::shed`]).
//!
//! Filters are query parameters (`from`, `to` as local dates, `tz`, `interval`, `queue`,
//! `agent`, `department`, `number`, `evening`, `sl`); a bad one answers 400 with the page and
//! every problem. The store returns UTC buckets ([`callfleet_store::ReportWindow`]); [`fold`]
//! turns them into local intervals of the chosen time zone. Numbers: [`numbers`].

pub mod chart;
pub mod departments;
mod export;
pub mod filters;
pub mod fold;
pub mod numbers;
mod run;

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};

use crate::api::AppState;
use crate::auth::Principal;
use crate::page::{Area, Chrome};
use filters::{Filters, Kind};

/// Pages may load only this node's style sheet; nothing is framed or scripted.
const CSP: &str = "default-src 'self'; img-src 'self' data:; script-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The list of reports (level `Page`): cheap, never shed.
pub fn routes() -> Router<AppState> {
    Router::new().route("/reports", get(index))
}

/// The routes that compute (level `Page`): each report's page and CSV, and the call-record
/// export. The router mounts them behind [`crate::shed::gate`]: a busy node sends them on.
pub fn heavy_routes() -> Router<AppState> {
    let mut r = Router::new().route("/reports/cdrs.csv", get(export::cdrs));
    for kind in Kind::ALL {
        r = r
            .route(
                &format!("/reports/{}", kind.path()),
                get(move |s, p, q| show(s, p, q, kind, false)),
            )
            .route(
                &format!("/reports/{}.csv", kind.path()),
                get(move |s, p, q| show(s, p, q, kind, true)),
            );
    }
    r
}

/// A table: what the page shows under the chart and what the CSV holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Column headings.
    pub headers: Vec<&'static str>,
    /// Rows of cells, as shown and as written to CSV.
    pub rows: Vec<Vec<String>>,
}

/// What a report computed.
#[derive(Debug, Default)]
pub struct Output {
    /// Summary lines shown above the chart.
    pub notes: Vec<String>,
    /// A bar chart, if the report draws one.
    pub bars: Option<chart::Bars>,
    /// The weekly heatmap, if the report draws one.
    pub heat: Option<chart::Heat>,
    /// The table (and the CSV).
    pub table: Table,
}

/// A filter field of the form.
#[derive(Debug, Clone)]
pub struct Field {
    /// The query parameter.
    pub name: &'static str,
    /// What the form calls it.
    pub label: &'static str,
    /// `date`, `text`, or `select` with `options`.
    pub kind: &'static str,
    /// Its current value.
    pub value: String,
    /// The choices of a `select` (value, label).
    pub options: Vec<(String, String)>,
    /// A line of help under it; empty for none.
    pub hint: &'static str,
}

#[derive(Template)]
#[template(path = "reports/page.html")]
struct Page {
    chrome: Chrome,
    heading: String,
    intro: &'static str,
    problems: Vec<String>,
    fields: Vec<Field>,
    action: String,
    out: Output,
    csv: String,
    links: Vec<(String, &'static str)>,
}

fn chrome(title: &str, principal: &Principal) -> Chrome {
    let (user, csrf, admin) = match principal {
        Principal::User { name, role, .. } => (
            Some(name.clone()),
            principal.csrf().map(str::to_owned),
            *role == callfleet_store::UserRole::Admin,
        ),
        _ => (None, None, false),
    };
    Chrome {
        title: title.to_owned(),
        area: Area::Reports,
        user,
        csrf,
        admin,
        script: None,
    }
}

fn html(status: StatusCode, page: &Page) -> Response {
    match page.render() {
        Ok(body) => (status, headers(), Html(body)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "render a report page");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn headers() -> [(header::HeaderName, HeaderValue); 3] {
    [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ]
}

async fn index(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Response {
    let _ = &state;
    let page = Page {
        chrome: chrome("Reports", &principal),
        heading: "Reports".into(),
        intro: "What the call history says: pick a report, set its filters, read the chart and \
                the table, or download the table as CSV.",
        problems: Vec::new(),
        fields: Vec::new(),
        action: String::new(),
        out: Output::default(),
        csv: String::new(),
        links: Kind::ALL
            .iter()
            .map(|k| (format!("/reports/{}", k.path()), k.title()))
            .chain([(
                "/reports/cdrs.csv".to_owned(),
                "Call records (CSV, last 7 days)",
            )])
            .collect(),
    };
    html(StatusCode::OK, &page)
}

async fn show(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    RawQuery(query): RawQuery,
    kind: Kind,
    csv: bool,
) -> Response {
    let query = query.unwrap_or_default();
    // The CSV link may be sent on again if this node gets busy: no shed marker in it.
    let link_query = crate::shed::strip_marker(&query);
    let parsed = Filters::parse(kind, &query, callfleet_vocab::now_ms());
    let mut page = Page {
        chrome: chrome(kind.title(), &principal),
        heading: kind.title().to_owned(),
        intro: kind.intro(),
        problems: Vec::new(),
        fields: Vec::new(),
        action: format!("/reports/{}", kind.path()),
        out: Output::default(),
        csv: format!("/reports/{}.csv?{}", kind.path(), link_query),
        links: vec![("/reports".to_owned(), "All reports")],
    };
    let filters = match parsed {
        Ok(f) => f,
        Err((problems, fields)) => {
            page.problems = problems;
            page.fields = fields;
            return html(StatusCode::BAD_REQUEST, &page);
        }
    };
    page.fields = filters.fields(kind);
    let started = std::time::Instant::now();
    match run::run(&state.store, kind, &filters).await {
        Ok(out) => {
            tracing::debug!(
                report = kind.path(),
                ms = started.elapsed().as_millis() as u64,
                "report computed"
            );
            if csv {
                return export::table_csv(kind.path(), &out.table);
            }
            page.out = out;
            html(StatusCode::OK, &page)
        }
        Err(run::Failure::Bad(problem)) => {
            page.problems = vec![problem];
            html(StatusCode::BAD_REQUEST, &page)
        }
        Err(run::Failure::Store(e)) => {
            tracing::warn!(
                error = &e as &(dyn std::error::Error + 'static),
                report = kind.path(),
                "report failed"
            );
            page.problems = vec![format!("The database did not answer ({e}); try again.")];
            html(StatusCode::SERVICE_UNAVAILABLE, &page)
        }
    }
}

#[cfg(test)]
mod tests;
