//! A phone's own INVITE, challenged like its REGISTER: `407 Proxy Authentication Required`
//! with the registrar's nonces and algorithms, then `Proxy-Authorization` checked against the
//! device's HA1 (RFC 3261 §22.3). The authenticated device is who calls; the From header is
//! never believed. Wrong passwords count towards the same bans as REGISTER's.

use std::net::SocketAddr;

use callfleet_web::metrics::guard::AuthKind;
use rsipstack::sip::{Request, StatusCode};
use tracing::{debug, info};

use super::auth::Verdict;
use super::digest::DigestError;
use super::{same_uri, store_failed, Registrar, Reply};

/// What to do with a phone's INVITE.
#[derive(Debug, Clone)]
pub enum InviteAuth {
    /// The credentials of this device verify: it is the caller.
    Device(String),
    /// Answer with this (a `407` challenge, `403`, `400`, `500` or `503`) and go no further.
    Reply(Reply),
}

impl Registrar {
    /// Authenticates the INVITE `req` that phone-address `src` sent at `now_ms`.
    pub async fn authenticate_invite(
        &self,
        req: &Request,
        src: SocketAddr,
        now_ms: i64,
    ) -> InviteAuth {
        let refuse = |status| InviteAuth::Reply(Reply::status(status));
        let creds = match self.credentials(req, true) {
            Ok(Some(c)) => c,
            Ok(None) => {
                // Nothing to check yet: a banned address still learns nothing (and costs no
                // nonce), anyone else gets the challenge.
                return match self.attempt(AuthKind::Invite, src, "", now_ms).await {
                    Ok(a) => InviteAuth::Reply(self.proxy_challenge(a.now_ms, false)),
                    Err(turned) => InviteAuth::Reply(turned.reply()),
                };
            }
            Err(e @ (DigestError::NotDigest { .. } | DigestError::UnsupportedAlgorithm { .. })) => {
                debug!(%src, error = %e, "unusable Proxy-Authorization");
                return InviteAuth::Reply(self.proxy_challenge(now_ms, false));
            }
            Err(e) => {
                debug!(%src, error = %e, "malformed Proxy-Authorization");
                return refuse(StatusCode::BadRequest);
            }
        };
        let ext = creds.username.clone();
        let attempt = match self.attempt(AuthKind::Invite, src, &ext, now_ms).await {
            Ok(a) => a,
            Err(turned) => return InviteAuth::Reply(turned.reply()),
        };
        let now_ms = attempt.now_ms;
        let device = match self.inner.store.device(&ext).await {
            Ok(d) => d,
            Err(e) => return InviteAuth::Reply(store_failed("read device", &e)),
        };
        let ha1 = device
            .as_ref()
            .and_then(|d| self.ha1_of(d, creds.algorithm));
        let uri_ok = same_uri(&creds.uri, &req.uri);
        match self
            .inner
            .auth
            .verify(&creds, ha1, "INVITE", uri_ok, now_ms)
        {
            Verdict::Accept { username } => {
                attempt.succeeded(now_ms);
                InviteAuth::Device(username)
            }
            Verdict::Challenge { stale, why } => {
                debug!(%ext, ?why, stale, "phone's INVITE challenged");
                InviteAuth::Reply(self.proxy_challenge(now_ms, stale))
            }
            Verdict::Forbidden { why } => {
                info!(%ext, ?why, %src, "phone's INVITE refused: credentials do not verify");
                attempt.failed(now_ms);
                refuse(StatusCode::Forbidden)
            }
            Verdict::BadRequest { why } => {
                debug!(%ext, why, "phone's INVITE refused");
                refuse(StatusCode::BadRequest)
            }
        }
    }
}
