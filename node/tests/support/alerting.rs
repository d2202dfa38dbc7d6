//! The alert sinks of a test together: an SMTP sink and a webhook receiver, the `[alerts]`
//! section that points a node at both, and what they caught (each webhook's signature
//! checked).

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::sinks::{Mail, Post, SmtpSink, WebhookSink};
use super::wait_until;

/// Key of the webhook signatures.
pub const HOOK_SECRET: &str = "alert-sinks-secret-0123456789";

/// An SMTP sink and a webhook receiver.
pub struct Sinks {
    pub smtp: SmtpSink,
    pub hook: WebhookSink,
}

impl Sinks {
    /// Both sinks, listening on `smtp` and `hook` (`IP:PORT`).
    pub fn start(smtp: &str, hook: &str) -> Sinks {
        Sinks {
            smtp: SmtpSink::start(smtp),
            hook: WebhookSink::start(hook),
        }
    }

    /// `[alerts]` evaluated every second and resolved after 3 s clear, with the disk rule
    /// quiet (the host's disks never get in the way) and `rules` (more `[alerts]` keys), then
    /// `[alerts.email]` and `[[alerts.webhook]]` to the sinks.
    pub fn toml(&self, rules: &str) -> String {
        format!(
            "[alerts]\ninterval = \"1s\"\nclear_after = \"3s\"\ndisk_warning_pct = 100.0\n\
             disk_critical_pct = 100.0\n{rules}\n\
             [alerts.email]\nserver = \"{}\"\nport = {}\nfrom = \"callfleet <cf@example.com>\"\n\
             to = [\"oncall@example.com\"]\ntimeout = \"5s\"\n\
             [[alerts.webhook]]\nurl = \"{}\"\nsecret = \"{HOOK_SECRET}\"\ntimeout = \"3s\"\n",
            self.smtp.addr().ip(),
            self.smtp.addr().port(),
            self.hook.url(),
        )
    }

    /// The notices of every webhook POST answered 200, in order.
    pub fn notices(&self) -> Vec<serde_json::Value> {
        self.hook.delivered().iter().flat_map(checked).collect()
    }

    /// The notices of `kind` with `status` (`firing` or `resolved`).
    pub fn of(&self, kind: &str, status: &str) -> Vec<serde_json::Value> {
        self.notices()
            .into_iter()
            .filter(|n| n["kind"] == kind && n["status"] == status)
            .collect()
    }

    /// The mails that tell `part`, e.g. `WARNING: <message>` (each alert of a mail has a
    /// paragraph starting so; several alerts sent together share one subject).
    pub fn mailed(&self, part: &str) -> Vec<Mail> {
        self.smtp
            .mails()
            .into_iter()
            .filter(|m| m.data.contains(part))
            .collect()
    }

    /// Waits up to `limit` until `n` notices of `kind` with `status` came and a mail that
    /// tells `told` ([`Sinks::mailed`]); how long it took. Fails with what came otherwise.
    pub fn expect(
        &self,
        limit: Duration,
        (kind, status, n): (&str, &str, usize),
        told: &str,
    ) -> Duration {
        let got = wait_until(limit, || {
            self.of(kind, status).len() >= n && !self.mailed(told).is_empty()
        });
        match got {
            Some(took) => took,
            None => panic!(
                "{n} {kind} {status} notice(s) and a mail telling {told:?} within {limit:?}; \
                 webhooks: {:#?}; mails: {:#?}",
                self.notices(),
                self.smtp.mails()
            ),
        }
    }

    /// Whether nothing at all is notified for `span` (polled, not slept through).
    pub fn quiet_for(&self, span: Duration) -> bool {
        wait_until(span, || {
            !self.notices().is_empty() || !self.smtp.mails().is_empty()
        })
        .is_none()
    }
}

/// The notices of one POST, its signature and content type checked.
fn checked(post: &Post) -> Vec<serde_json::Value> {
    let mut mac = Hmac::<Sha256>::new_from_slice(HOOK_SECRET.as_bytes()).expect("HMAC key");
    mac.update(&post.body);
    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(
        post.header("x-callfleet-signature"),
        Some(want.as_str()),
        "webhook signature over the body"
    );
    assert_eq!(post.header("content-type"), Some("application/json"));
    let json = post.json();
    assert_eq!(json["source"], "callfleet");
    json["alerts"].as_array().cloned().unwrap_or_default()
}
