//! Webhooks: the batch as JSON in a `POST`, signed with HMAC-SHA256 over the exact body
//! bytes under the webhook's secret (`X-Callfleet-Signature: sha256=<hex>`), so a receiver
//! can refuse forged alerts. The body carries `sent_at_ms`: a receiver may refuse old ones.

use std::time::Duration;

use callfleet_store::Severity;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Batch, SendError};
use crate::config::WebhookSection;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Callfleet-Signature";

/// `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// One configured webhook.
pub(super) struct Hook {
    pub(super) url: reqwest::Url,
    secret: Vec<u8>,
    client: reqwest::Client,
    pub(super) min_severity: Severity,
    pub(super) attempts: u32,
}

impl Hook {
    pub(super) fn new(cfg: &WebhookSection) -> anyhow::Result<Self> {
        let url = reqwest::Url::parse(&cfg.url)
            .map_err(|e| anyhow::anyhow!("alert webhook URL {:?}: {e}", cfg.url))?;
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("callfleet/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow::anyhow!("set up the HTTP client of alert webhooks: {e}"))?;
        Ok(Self {
            url,
            secret: cfg.secret.as_bytes().to_vec(),
            client,
            min_severity: cfg.min_severity,
            attempts: cfg.attempts,
        })
    }

    /// One POST: 2xx is delivered; 408, 429 and 5xx and transport errors are worth another
    /// attempt; other answers are not.
    pub(super) async fn send(&self, batch: &Batch) -> Result<(), SendError> {
        let body = serde_json::to_vec(batch).map_err(|e| SendError {
            message: format!("encode the alert batch: {e}"),
            retry: false,
        })?;
        let answer = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature(&self.secret, &body))
            .body(body)
            .send()
            .await
            .map_err(|e| SendError {
                message: format!("POST {}: {}", self.url, chain(&e)),
                retry: true,
            })?;
        let status = answer.status();
        if status.is_success() {
            return Ok(());
        }
        Err(SendError {
            message: format!("POST {} answered {status}", self.url),
            retry: status.is_server_error()
                || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                || status == reqwest::StatusCode::REQUEST_TIMEOUT,
        })
    }
}

/// `e: cause: cause...`.
pub(super) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
