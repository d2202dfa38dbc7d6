//! CSV: a report's table, and the call records of a window streamed from the database.

use std::sync::{Arc, LazyLock};

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use callfleet_store::CallFilter;
use futures_util::TryStreamExt as _;
use tokio::sync::Semaphore;

use super::filters::{Filters, Kind};
use super::Table;
use crate::api::AppState;

/// Call-record exports running at once on this node: each holds a database connection
/// for as long as its client reads.
pub const MAX_EXPORTS: usize = 2;
static EXPORTS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| Arc::new(Semaphore::new(MAX_EXPORTS)));

/// Bytes gathered before a chunk is sent.
const CHUNK: usize = 64 * 1024;

/// One CSV field: quoted when it holds a comma, a quote or a line break; a field a
/// spreadsheet would run as a formula (`=`, `@`, or `+`/`-` not followed by a digit) is
/// prefixed with `'`.
pub fn field(out: &mut String, v: &str) {
    let mut chars = v.chars();
    let first = chars.next();
    let second = chars.next();
    let formula = match first {
        Some('=' | '@' | '\t' | '\r') => true,
        Some('+' | '-') => !second.is_some_and(|c| c.is_ascii_digit()),
        _ => false,
    };
    let quote = v.contains([',', '"', '\n', '\r']);
    if quote {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    for c in v.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quote {
        out.push('"');
    }
}

/// One CSV line of `fields`, ended with CRLF (RFC 4180).
pub fn line<'a>(out: &mut String, fields: impl IntoIterator<Item = &'a str>) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(out, f);
    }
    out.push_str("\r\n");
}

fn csv_headers(name: &str) -> [(header::HeaderName, HeaderValue); 3] {
    let disposition = format!("attachment; filename=\"callfleet-{name}.csv\"");
    [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        ),
        (
            header::CONTENT_DISPOSITION,
            HeaderValue::from_str(&disposition).unwrap_or(HeaderValue::from_static("attachment")),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ]
}

/// A report's table as CSV (a table is at most one row per dimension and interval).
pub fn table_csv(name: &str, table: &Table) -> Response {
    let mut out = String::new();
    line(&mut out, table.headers.iter().copied());
    for row in &table.rows {
        line(&mut out, row.iter().map(String::as_str));
    }
    (csv_headers(name), out).into_response()
}

const CDR_HEADER: [&str; 15] = [
    "node",
    "call_id",
    "from",
    "to",
    "started_at",
    "answered_at",
    "ended_at",
    "hangup_cause",
    "hangup_side",
    "sip_status",
    "redirected_from",
    "agent",
    "queue",
    "direction",
    "destination",
];

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn cdr_line(out: &mut String, c: &callfleet_store::Cdr) {
    let answered = c.answered_at_ms.map(rfc3339).unwrap_or_default();
    let fields = [
        c.node.as_str(),
        &c.call_id,
        &c.from_uri,
        &c.to_uri,
        &rfc3339(c.started_at_ms),
        &answered,
        &rfc3339(c.ended_at_ms),
        c.hangup_cause.as_str(),
        c.hangup_side.as_str(),
        &c.sip_status.to_string(),
        c.redirected_from.as_deref().unwrap_or(""),
        c.agent.as_deref().unwrap_or(""),
        c.queue.as_deref().unwrap_or(""),
        c.direction.as_str(),
        c.destination.as_deref().unwrap_or(""),
    ];
    line(out, fields);
}

/// `GET /reports/cdrs.csv`: the call records started in the window (`from`, `to`, `tz`; of
/// one `agent` or `queue`), by start time, times in UTC (RFC 3339). Streamed in chunks as
/// the database returns rows, through a channel of a few chunks: memory stays the same
/// whatever the size, and a client that stops reading stops the query.
pub async fn cdrs(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let filters = match Filters::parse(
        Kind::Queues,
        &query.unwrap_or_default(),
        callfleet_vocab::now_ms(),
    ) {
        Ok(f) => f,
        Err((problems, _)) => {
            return (StatusCode::BAD_REQUEST, problems.join("\n")).into_response()
        }
    };
    let Ok(permit) = EXPORTS.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, HeaderValue::from_static("30"))],
            "Too many exports are running on this node; try again shortly.",
        )
            .into_response();
    };
    let filter = match (&filters.agent, &filters.queue) {
        (Some(a), _) => CallFilter::Agent(a.clone()),
        (None, Some(q)) => CallFilter::Queue(q.clone()),
        (None, None) => CallFilter::All,
    };
    let window = filters.window(1);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let store = state.store.clone();
    tokio::spawn(async move {
        let _permit = permit;
        let rows = store.report_cdrs(window, &filter);
        futures_util::pin_mut!(rows);
        let mut buf = String::with_capacity(CHUNK + 1024);
        line(&mut buf, CDR_HEADER);
        let mut sent = 0u64;
        loop {
            match rows.try_next().await {
                Ok(Some(cdr)) => {
                    cdr_line(&mut buf, &cdr);
                    sent += 1;
                    if buf.len() >= CHUNK
                        && tx
                            .send(Ok(Bytes::from(std::mem::take(&mut buf))))
                            .await
                            .is_err()
                    {
                        tracing::debug!(rows = sent, "call-record export: the client went away");
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(
                        error = &e as &(dyn std::error::Error + 'static),
                        rows = sent,
                        "call-record export failed"
                    );
                    // The body ends in an error: the client sees a broken transfer, never a
                    // short file that looks whole.
                    if tx
                        .send(Err(std::io::Error::other(e.to_string())))
                        .await
                        .is_err()
                    {
                        tracing::debug!("call-record export: the client went away");
                    }
                    return;
                }
            }
        }
        if !buf.is_empty() && tx.send(Ok(Bytes::from(buf))).await.is_err() {
            tracing::debug!("call-record export: the client went away");
        }
        tracing::debug!(rows = sent, "call-record export done");
    });
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    (csv_headers("cdrs"), body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_and_formulas_defused() {
        let table = [
            ("plain", "plain"),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("two\nlines", "\"two\nlines\""),
            ("=1+2", "'=1+2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("+15551234567", "+15551234567"),
            ("-3", "-3"),
            ("+cmd", "'+cmd"),
            ("-", "'-"),
            ("=a,b", "\"'=a,b\""),
            ("", ""),
        ];
        for (v, want) in table {
            let mut out = String::new();
            field(&mut out, v);
            assert_eq!(out, want, "{v}");
        }
        let mut l = String::new();
        line(&mut l, ["a", "b,c"]);
        assert_eq!(l, "a,\"b,c\"\r\n");
    }
}
