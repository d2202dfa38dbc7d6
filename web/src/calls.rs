//! `GET /calls` (supervisors and admins with a session): the call legs that ended in the last
//! 24 hours, newest first (at most [`MAX_ROWS`]), with their RTP quality as `call_quality`
//! stores it: what the node received from each party (loss, jitter, longest gap) and what the
//! party's RTCP said of what the node sent it. Like the admin pages, it reads SQL when loaded
//! (one indexed query), never on a timer. Below them, the newest recordings, each with an
//! HTML5 player, and the newest voicemail messages, likewise (see [`crate::playback`]).

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use callfleet_store::{LegQualityRow, RecordingRow, Voicemail};

use callfleet_vocab::now_ms;

use crate::admin::view::{Cell, Page, Row, Section, Table};
use crate::api::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::page::{Area, Chrome};

/// How far back the page looks.
const WINDOW_MS: i64 = 24 * 3600 * 1000;
/// At most this many legs are listed.
pub const MAX_ROWS: usize = 200;
/// At most this many recordings are listed (the newest).
pub const MAX_RECORDINGS: i64 = 50;

/// The page's route (access level `Page`).
pub fn page_routes() -> Router<AppState> {
    Router::new().route("/calls", get(page))
}

async fn page(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<Response, ApiError> {
    let now = now_ms();
    let db = |e| ApiError::unavailable("database", e);
    let rows = state
        .store
        .quality_since(now - WINDOW_MS)
        .await
        .map_err(db)?;
    let recordings = state
        .store
        .recordings(None, MAX_RECORDINGS)
        .await
        .map_err(db)?;
    let voicemails = state
        .store
        .recent_voicemails(MAX_RECORDINGS)
        .await
        .map_err(db)?;
    let mut page = view(chrome(principal, "Calls"), &rows, now);
    page.sections.push(recordings_section(&recordings, now));
    page.sections.push(voicemail_section(&voicemails, now));
    let body = Html(page.html());
    Ok((crate::admin::headers(), body).into_response())
}

/// The layout of a page of the Calls area for this user.
pub fn chrome(principal: Principal, title: &str) -> Chrome {
    match principal {
        Principal::User {
            name, csrf, role, ..
        } => Chrome {
            title: title.into(),
            area: Area::Calls,
            user: Some(name),
            csrf: Some(csrf),
            admin: role == callfleet_store::UserRole::Admin,
            script: None,
        },
        _ => Chrome {
            title: title.into(),
            area: Area::Calls,
            user: None,
            csrf: None,
            admin: false,
            script: None,
        },
    }
}

/// The page for `rows` (oldest first, as the store returns them) at time `now_ms`.
pub fn view(chrome: Chrome, rows: &[LegQualityRow], now_ms: i64) -> Page {
    let mut page = Page::new(chrome, "Calls");
    page.notes.push(
        "Call legs that ended in the last 24 hours, newest first. Received: what the node got \
         from the party; theirs: what the party's RTCP reports said of what the node sent it \
         (– when it sent none)."
            .into(),
    );
    let rows = rows
        .iter()
        .rev()
        .take(MAX_ROWS)
        .map(|q| row(q, now_ms))
        .collect();
    page.sections.push(Section {
        id: "legs".into(),
        title: "RTP quality per leg".into(),
        table: Some(Table {
            id: "legs-table".into(),
            headers: vec![
                "Ended",
                "Node",
                "Call-ID",
                "Leg",
                "Codec",
                "Received",
                "Lost",
                "Jitter",
                "Longest gap",
                "Their loss",
                "Their jitter",
                "Round trip",
            ],
            rows,
            empty: "No call leg ended in the last 24 hours.".into(),
        }),
        ..Section::default()
    });
    page
}

/// The newest recordings, each with a player (served by the node holding its file).
pub fn recordings_section(recs: &[RecordingRow], now_ms: i64) -> Section {
    let rows = recs
        .iter()
        .map(|r| Row {
            testid: format!("recording-{}", r.id),
            cells: vec![
                Cell::Text(ago(now_ms, r.created_at_ms)),
                Cell::Text(r.node.clone()),
                Cell::Text(r.call_id.clone()),
                Cell::Text(r.queue.clone().unwrap_or_default()),
                Cell::Text(r.agent.clone().unwrap_or_default()),
                Cell::Text(r.caller.clone()),
                Cell::Text(format!("{:.1} s", r.duration_ms as f64 / 1000.0)),
                Cell::Text(r.format.as_str().to_uppercase()),
                Cell::Audio {
                    src: crate::playback::audio_href(crate::playback::Kind::Recording, r.id),
                    label: format!("Recording of call {}", r.call_id),
                },
            ],
        })
        .collect();
    Section {
        id: "recordings".into(),
        title: "Recordings".into(),
        table: Some(Table {
            id: "recordings-table".into(),
            headers: vec![
                "Made", "Node", "Call-ID", "Queue", "Agent", "Caller", "Length", "Format", "Play",
            ],
            rows,
            empty: "No recording yet.".into(),
        }),
        ..Section::default()
    }
}

/// The newest voicemail messages, each with a player.
pub fn voicemail_section(msgs: &[Voicemail], now_ms: i64) -> Section {
    let rows = msgs
        .iter()
        .map(|v| Row {
            testid: format!("voicemail-{}", v.id),
            cells: vec![
                Cell::Text(ago(now_ms, v.created_at_ms)),
                Cell::Text(v.node.clone()),
                Cell::Text(v.agent.clone()),
                Cell::Text(v.caller.clone()),
                Cell::Text(format!("{:.1} s", v.duration_ms as f64 / 1000.0)),
                Cell::Audio {
                    src: crate::playback::audio_href(crate::playback::Kind::Voicemail, v.id),
                    label: format!("Voicemail for {} from {}", v.agent, v.caller),
                },
            ],
        })
        .collect();
    Section {
        id: "voicemail".into(),
        title: "Voicemail".into(),
        table: Some(Table {
            id: "voicemail-table".into(),
            headers: vec!["Left", "Node", "Mailbox", "Caller", "Length", "Play"],
            rows,
            empty: "No voicemail.".into(),
        }),
        ..Section::default()
    }
}

/// How long ago `at_ms` was, in words.
fn ago(now_ms: i64, at_ms: i64) -> String {
    let ago = (now_ms - at_ms).max(0) / 1000;
    if ago < 60 {
        format!("{ago} s ago")
    } else if ago < 3600 {
        format!("{} min ago", ago / 60)
    } else {
        format!("{} h ago", ago / 3600)
    }
}

fn ms(us: i64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

fn row(q: &LegQualityRow, now_ms: i64) -> Row {
    let ended = ago(now_ms, q.ended_at_ms);
    let lost = if q.expected > 0 {
        format!(
            "{} ({:.2} %)",
            q.lost,
            100.0 * q.lost as f64 / q.expected as f64
        )
    } else {
        "–".into()
    };
    let dash = || "–".to_string();
    let text = Cell::Text;
    Row {
        testid: format!("leg-{}-{}", q.call_id, q.leg.as_str()),
        cells: vec![
            text(ended),
            text(q.node.clone()),
            Cell::Links(vec![crate::admin::view::Link::new(
                format!("/calls/{}/trace", crate::trace::ladder::segment(&q.call_id)),
                q.call_id.clone(),
            )]),
            text(q.leg.as_str().into()),
            text(q.codec.clone()),
            text(format!("{} packets", q.packets_in)),
            text(lost),
            text(ms(q.jitter_us)),
            text(format!("{} ms", q.longest_gap_ms)),
            text(
                q.peer_fraction_lost
                    .map_or_else(dash, |f| format!("{:.1} %", 100.0 * f as f64 / 256.0)),
            ),
            text(q.peer_jitter_us.map_or_else(dash, ms)),
            text(q.rtt_us.map_or_else(dash, ms)),
        ],
    }
}

#[cfg(test)]
mod tests;
