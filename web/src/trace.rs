//! A call's SIP trace over HTTP, on any node:
//!
//! | route | access | answer |
//! |-------|--------|--------|
//! | `GET /api/v1/calls/{call_id}/trace` | `Read` | the trace as JSON ([`CallTrace`]) |
//! | `GET /api/v1/calls/{call_id}/trace.pcap` | `Read` | the trace as a pcap file ([`pcap`]) |
//! | `GET /calls/{call_id}/trace` | `Page` | the ladder diagram ([`ladder`]) |
//! | `GET /internal/v1/calls/{call_id}/trace` | `Internal` | a live call's trace held by this node |
//!
//! A live call's trace is served by the node holding it ([`NodeApi::live_trace`]: here, or
//! asked over signed HTTP like listen-in); a finished call's comes from SQL (`sip_trace`),
//! from the last node and start with that Call-ID. 404 when there is neither.
//!
//! [`NodeApi::live_trace`]: crate::NodeApi::live_trace

pub mod ladder;
pub mod pcap;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use callfleet_store::TraceChunk;
use callfleet_vocab::CallTrace;

use crate::api::AppState;
use crate::auth::Principal;
use crate::error::ApiError;

/// The JSON and pcap routes (access level `Read`).
pub fn read_routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/calls/{call_id}/trace", get(json))
        .route("/api/v1/calls/{call_id}/trace.pcap", get(pcap_file))
}

/// The page (access level `Page`).
pub fn page_routes() -> Router<AppState> {
    Router::new().route("/calls/{call_id}/trace", get(page))
}

/// The route other nodes ask (access level `Internal`).
pub fn internal_routes() -> Router<AppState> {
    Router::new().route("/internal/v1/calls/{call_id}/trace", get(internal))
}

/// The call's trace: live from the node holding it, else stored.
pub async fn find(state: &AppState, call_id: &str) -> Result<CallTrace, ApiError> {
    if let Some(live) = state.api.live_trace(call_id.to_owned()).await? {
        return Ok(live);
    }
    let chunks = state
        .store
        .trace_of_call(call_id)
        .await
        .map_err(|e| ApiError::unavailable("database", e))?;
    stored(call_id, chunks)?.ok_or(ApiError::NotFound { what: "call trace" })
}

/// The stored trace of the last call (by start, then node) among `chunks`.
pub fn stored(call_id: &str, chunks: Vec<TraceChunk>) -> Result<Option<CallTrace>, ApiError> {
    let Some(last) = chunks
        .iter()
        .map(|c| (c.started_at_ms, c.node.clone()))
        .max()
    else {
        return Ok(None);
    };
    let mut trace = CallTrace {
        call_id: call_id.to_owned(),
        node: last.1.clone(),
        live: false,
        cut: 0,
        messages: Vec::new(),
    };
    let mut mine: Vec<_> = chunks
        .into_iter()
        .filter(|c| (c.started_at_ms, &c.node) == (last.0, &last.1))
        .collect();
    mine.sort_by_key(|c| c.seq);
    for c in mine {
        let messages = callfleet_store::trace::decode(&c.blob)
            .map_err(|e| ApiError::internal("read a stored SIP trace", e))?;
        trace.messages.extend(messages);
        trace.cut += u64::try_from(c.cut).unwrap_or(0);
    }
    Ok(Some(trace))
}

async fn json(
    State(state): State<AppState>,
    Path(call_id): Path<String>,
) -> Result<Json<CallTrace>, ApiError> {
    Ok(Json(find(&state, &call_id).await?))
}

async fn pcap_file(
    State(state): State<AppState>,
    Path(call_id): Path<String>,
) -> Result<Response, ApiError> {
    let trace = find(&state, &call_id).await?;
    let name = format!(
        "attachment; filename=\"call-{}.pcap\"",
        call_id
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            })
            .take(80)
            .collect::<String>()
    );
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.tcpdump.pcap".to_owned(),
            ),
            (header::CONTENT_DISPOSITION, name),
        ],
        pcap::write(&trace.messages),
    )
        .into_response())
}

async fn page(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(call_id): Path<String>,
) -> Result<Response, ApiError> {
    let chrome = crate::calls::chrome(principal, "SIP trace");
    let (status, page) = match find(&state, &call_id).await {
        Ok(trace) => (StatusCode::OK, ladder::page(chrome, &trace)),
        Err(ApiError::NotFound { .. }) => (
            StatusCode::NOT_FOUND,
            ladder::missing(
                chrome,
                &call_id,
                "No SIP trace of this call: no node holds it now and none was stored.",
            ),
        ),
        Err(e) => return Err(e),
    };
    Ok((status, crate::admin::headers(), Html(page.html())).into_response())
}

async fn internal(State(state): State<AppState>, Path(call_id): Path<String>) -> Response {
    match state.api.live_trace_here(call_id).await {
        Some(trace) => Json(trace).into_response(),
        None => ApiError::NotFound { what: "live call" }.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callfleet_vocab::{TraceTransport, TracedMessage};

    fn msg(text: &str) -> TracedMessage {
        TracedMessage {
            at_us: 1,
            transport: TraceTransport::Udp,
            src: "127.0.0.1:5060".parse().expect("addr"),
            dst: "127.0.0.2:5060".parse().expect("addr"),
            text: text.into(),
        }
    }

    fn chunk(node: &str, started: i64, seq: i64, texts: &[&str], cut: i64) -> TraceChunk {
        let messages: Vec<_> = texts.iter().map(|t| msg(t)).collect();
        TraceChunk {
            node: node.into(),
            call_id: "c".into(),
            started_at_ms: started,
            seq,
            at_ms: 0,
            messages: messages.len() as i64,
            bytes: 0,
            cut,
            blob: callfleet_store::trace::encode(&messages).expect("encode"),
        }
    }

    #[test]
    fn the_last_call_with_the_call_id_is_read_in_chunk_order() {
        let chunks = vec![
            chunk("a", 10, 0, &["OLD"], 0),
            chunk("b", 20, 1, &["BYE", "200"], 2),
            chunk("b", 20, 0, &["INVITE", "100"], 1),
        ];
        let t = stored("c", chunks).expect("decodes").expect("found");
        let texts: Vec<_> = t.messages.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["INVITE", "100", "BYE", "200"]);
        assert_eq!((t.node.as_str(), t.cut, t.live), ("b", 3, false));
        assert!(stored("c", Vec::new()).expect("empty").is_none());
        let mut bad = chunk("a", 1, 0, &["X"], 0);
        bad.blob = b"junk".to_vec();
        assert!(stored("c", vec![bad]).is_err());
    }
}
