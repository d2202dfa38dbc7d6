//! A panel request for a file held by another node (a recording, a voicemail): forwarded to
//! that node's internal route, signed with the cluster secret as listen-in's are, and its
//! answer streamed back with the headers a player needs (type, length, range).

use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use callfleet_web::{ApiError, SIGNATURE_HEADER};
use tracing::debug;

use crate::config::Config;
use crate::holder::{self, Unreachable};
use crate::node::Cluster;

/// The longest a forwarded file may take to stream.
const STREAM_TIMEOUT: Duration = Duration::from_secs(600);
/// Headers passed back from the holder.
const KEPT: [reqwest::header::HeaderName; 5] = [
    reqwest::header::CONTENT_TYPE,
    reqwest::header::CONTENT_LENGTH,
    reqwest::header::CONTENT_RANGE,
    reqwest::header::ACCEPT_RANGES,
    reqwest::header::LAST_MODIFIED,
];

/// `GET path` on node `holder` with the asker's `range`, streamed back (the holder found in
/// `cluster`'s view, the request signed by its signer).
pub async fn get(
    cfg: &Config,
    cluster: &Cluster,
    holder: &str,
    path: &str,
    range: Option<&str>,
) -> Result<Response, ApiError> {
    let unavailable = |e: Unreachable| ApiError::unavailable("node holding the file", e);
    let Some(at) = holder::address(&cluster.balancer, holder) else {
        return Err(unavailable(Unreachable::Dead {
            node: holder.to_string(),
        }));
    };
    let url = crate::tls::node_url(at.https, at.addr, path);
    let client = crate::tls::client(cfg, STREAM_TIMEOUT)
        .map_err(|e| ApiError::internal("build an HTTP client", e))?;
    let signature = cluster.signer.sign_now("GET", path, b"");
    let mut req = client.get(&url).header(SIGNATURE_HEADER, signature);
    if let Some(r) = range {
        req = req.header(reqwest::header::RANGE, r);
    }
    let resp = req.send().await.map_err(|source| {
        unavailable(Unreachable::Http {
            node: holder.to_string(),
            url: url.clone(),
            source,
        })
    })?;
    let status = resp.status();
    debug!(
        holder,
        path,
        status = status.as_u16(),
        "file request forwarded"
    );
    if matches!(status.as_u16(), 401 | 403) {
        return Err(unavailable(Unreachable::Secret {
            node: holder.to_string(),
        }));
    }
    let mut out = Response::builder().status(status.as_u16());
    for name in KEPT {
        if let Some(v) = resp.headers().get(&name) {
            out = out.header(name.as_str(), v.as_bytes());
        }
    }
    out = out.header("cache-control", "private, no-store");
    out.body(Body::from_stream(resp.bytes_stream()))
        .map_err(|e| ApiError::internal("pass on the file", e))
}
