//! A live call's trace for the HTTP API, from the node holding the call: this one (the
//! collector's memory), or another, asked over HTTP with a request signed with the cluster
//! secret (`GET /internal/v1/calls/{call_id}/trace`), as listen-in is forwarded.

use std::time::Duration;

use callfleet_vocab::CallTrace;
use callfleet_web::{ApiError, SIGNATURE_HEADER};
use tracing::debug;

use crate::listen::Unreachable;
use crate::node::CallKit;

/// Longest wait for the holding node's answer.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);

/// The trace of call `call_id` while some node holds it; `None` when none does (or the one
/// that did is gone: its stored trace is then what there is).
pub async fn live_trace(kit: &CallKit, call_id: &str) -> Result<Option<CallTrace>, ApiError> {
    if let Some(trace) = kit.trace.live(call_id).await {
        return Ok(Some(trace));
    }
    let calls = kit
        .store
        .live_calls(None)
        .await
        .map_err(|e| ApiError::unavailable("database", e))?;
    let me = kit.cfg.node.name.as_str();
    let Some(holder) = calls
        .into_iter()
        .find(|c| c.call_id == call_id && c.node != me)
        .map(|c| c.node)
    else {
        return Ok(None);
    };
    let view = kit.cluster.balancer.view();
    let Some((addr, https)) = view
        .get(&holder)
        .filter(|n| view.is_alive(n))
        .map(|n| (n.http, crate::tls::serves_https(&n.services)))
    else {
        debug!(
            holder,
            call_id, "the node holding the call is not alive; stored trace only"
        );
        return Ok(None);
    };
    forward(kit, &holder, (addr, https), call_id).await
}

async fn forward(
    kit: &CallKit,
    holder: &str,
    (addr, https): (std::net::SocketAddr, bool),
    call_id: &str,
) -> Result<Option<CallTrace>, ApiError> {
    let unavailable = |e: Unreachable| ApiError::unavailable("node holding the call", e);
    let url_error = || {
        unavailable(Unreachable::Url {
            node: holder.to_string(),
            reason: "bad HTTP address",
        })
    };
    let mut url =
        reqwest::Url::parse(&crate::tls::node_url(https, addr, "/")).map_err(|_| url_error())?;
    url.path_segments_mut()
        .map_err(|_| url_error())?
        .clear()
        .extend(["internal", "v1", "calls", call_id, "trace"]);
    let client = crate::tls::client(&kit.cfg, FORWARD_TIMEOUT)
        .map_err(|e| ApiError::internal("build an HTTP client", e))?;
    let signature = kit.cluster.signer.sign_now("GET", url.path(), b"");
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
