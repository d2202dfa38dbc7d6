//! A live call's trace for the HTTP API, from the node holding the call: this one (the
//! collector's memory), or another (found by [`crate::holder::find`]), asked over HTTP with a
//! request signed with the cluster secret (`GET /internal/v1/calls/{call_id}/trace`), as
//! listen-in is forwarded.

use std::time::Duration;

use callfleet_vocab::CallTrace;
use callfleet_web::{ApiError, SIGNATURE_HEADER};
use tracing::debug;

use crate::holder::{self, Holder, Unreachable};
use crate::node::LiveTraces;

/// Longest wait for the holding node's answer.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);

/// The trace of call `call_id` while some node holds it; `None` when none does (or the one
/// that did is gone: its stored trace is then what there is).
pub async fn live_trace(live: &LiveTraces, call_id: &str) -> Result<Option<CallTrace>, ApiError> {
    if let Some(trace) = live.trace.live(call_id).await {
        return Ok(Some(trace));
    }
    match holder::find(&live.peers, call_id).await? {
        Holder::Nowhere => Ok(None),
        Holder::Stale { node } => {
            debug!(
                holder = %node,
                call_id, "the node holding the call is not alive; stored trace only"
            );
            Ok(None)
        }
        Holder::At { node, at } => forward(live, &node, at, call_id).await,
    }
}

async fn forward(
    live: &LiveTraces,
    holder: &str,
    at: holder::Address,
    call_id: &str,
) -> Result<Option<CallTrace>, ApiError> {
    let unavailable = |e: Unreachable| ApiError::unavailable("node holding the call", e);
    let url = holder::url(holder, at, &["internal", "v1", "calls", call_id, "trace"])
        .map_err(unavailable)?;
    let client = crate::tls::client(&live.peers.cfg, FORWARD_TIMEOUT)
        .map_err(|e| ApiError::internal("build an HTTP client", e))?;
    let signature = live.peers.signer.sign_now("GET", url.path(), b"");
    let http = |source| Unreachable::Http {
        node: holder.to_string(),
        url: url.to_string(),
        source,
    };
    let resp = client
        .get(url.clone())
        .header(SIGNATURE_HEADER, signature)
        .send()
        .await
        .map_err(|e| unavailable(http(e)))?;
    let status = resp.status().as_u16();
    let body = resp.text().await.map_err(|e| unavailable(http(e)))?;
    match status {
        200 => serde_json::from_str(&body)
            .map(Some)
            .map_err(|e| ApiError::internal("read the holding node's trace", e)),
        // The call ended meanwhile: its trace is (or is about to be) stored.
        404 => Ok(None),
        401 | 403 => Err(unavailable(Unreachable::Secret {
            node: holder.to_string(),
        })),
        _ => Err(unavailable(Unreachable::Status {
            node: holder.to_string(),
            status,
            body: body.chars().take(200).collect(),
        })),
    }
}
