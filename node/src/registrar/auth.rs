//! The digest decision for one request, sans-IO: given the credentials a client sent, the HA1
//! stored for its user (if any), the request line and `now`, say whether it is in, must be
//! challenged (`stale` or not), or is refused. Also builds the challenges.
//!
//! Policy (see the `registrar` module): a request with no credentials for our realm gets `401` whoever
//! it claims to be; credentials that do not verify get `403`, the same for an unknown user and
//! a wrong password, so the answers never tell which extensions exist.

use std::sync::Mutex;

use super::digest::{Algorithm, Challenge, Credentials};
use super::nonce::{NcRecord, NonceMint, NonceState};

/// Most (nonce, user) pairs whose nonce counts a node remembers.
pub const NC_RECORD_CAP: usize = 50_000;

/// Verifies digest credentials and writes challenges for one realm.
pub struct Authenticator {
    realm: String,
    algorithms: Vec<Algorithm>,
    mint: NonceMint,
    // A std mutex: held for a map update only, never across an await.
    record: Mutex<NcRecord>,
}

/// The outcome for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The credentials are good: the request is from `username`.
    Accept { username: String },
    /// Answer `401` with fresh challenges; `stale` when the password was right but the nonce
    /// was not (expired, another node's, or a replayed count).
    Challenge { stale: bool, why: ChallengeWhy },
    /// Answer `403`.
    Forbidden { why: Refused },
    /// Answer `400`: the credentials are not for this request.
    BadRequest { why: &'static str },
}

/// Why a request is challenged (for logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeWhy {
    NoCredentials,
    BadNonce,
    Expired,
    OtherInstance,
    Replayed,
}

/// Why credentials were refused (for logs only: the client sees a plain `403`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    UnknownUser,
    WrongResponse,
    NoHa1ForAlgorithm,
    QopRequired,
}

impl Authenticator {
    pub fn new(realm: String, algorithms: Vec<Algorithm>, mint: NonceMint) -> Authenticator {
        Authenticator {
            realm,
            algorithms,
            mint,
            record: Mutex::new(NcRecord::new(NC_RECORD_CAP)),
        }
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// `WWW-Authenticate` values, one per algorithm in the configured order, sharing one nonce.
    pub fn challenges(&self, now_ms: i64, salt: u64, stale: bool) -> Vec<String> {
        let nonce = self.mint.issue(now_ms, salt);
        self.algorithms
            .iter()
            .map(|&algorithm| {
                Challenge {
                    realm: &self.realm,
                    nonce: &nonce,
                    algorithm,
                    stale,
                }
                .to_string()
            })
            .collect()
    }

    /// Decides on `creds` (already known to be for our realm). `ha1` is the stored
    /// `H(user:realm:password)` for `creds.algorithm`, `None` for an unknown user;
    /// `uri_matches` says whether the digest `uri` names the Request-URI.
    pub fn verify(
        &self,
        creds: &Credentials,
        ha1: Option<&str>,
        method: &str,
        uri_matches: bool,
        now_ms: i64,
    ) -> Verdict {
        let nonce = self.mint.check(&creds.nonce, now_ms);
        if nonce == NonceState::Invalid {
            return Verdict::Challenge {
                stale: false,
                why: ChallengeWhy::BadNonce,
            };
        }
        if !uri_matches {
            return Verdict::BadRequest {
                why: "digest uri is not the Request-URI",
            };
        }
        let (Some(nc), Some(_)) = (&creds.nc, &creds.cnonce) else {
            return forbidden(Refused::QopRequired);
        };
        if !creds
            .qop
            .as_deref()
            .is_some_and(|q| q.eq_ignore_ascii_case("auth"))
        {
            return forbidden(Refused::QopRequired);
        }
        if !self.algorithms.contains(&creds.algorithm) {
            return forbidden(Refused::NoHa1ForAlgorithm);
        }
        let (stored, refusal) = match ha1 {
            Some(h) if !h.is_empty() => (Some(h), Refused::WrongResponse),
            Some(_) => (None, Refused::NoHa1ForAlgorithm),
            None => (None, Refused::UnknownUser),
        };
        // Hash with a stand-in HA1 when there is none, so timing does not tell an unknown user
        // from a wrong password either.
        let matches = creds.response_matches(stored.unwrap_or(DUMMY_HA1), method);
        if stored.is_none() || !matches {
            return forbidden(refusal);
        }
        let issued_ms = match nonce {
            NonceState::Fresh { issued_ms } => issued_ms,
            NonceState::Expired => return stale(ChallengeWhy::Expired),
            NonceState::Foreign => return stale(ChallengeWhy::OtherInstance),
            NonceState::Invalid => return stale(ChallengeWhy::BadNonce),
        };
        let advanced = self
            .record
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .advance(
                &creds.nonce,
                &creds.username,
                issued_ms,
                nc.value,
                now_ms,
                self.mint.ttl_ms(),
            );
        if !advanced {
            return stale(ChallengeWhy::Replayed);
        }
        Verdict::Accept {
            username: creds.username.clone(),
        }
    }
}

/// Stands in for a missing HA1 (its result is never used).
const DUMMY_HA1: &str = "00000000000000000000000000000000";

fn forbidden(why: Refused) -> Verdict {
    Verdict::Forbidden { why }
}

fn stale(why: ChallengeWhy) -> Verdict {
    Verdict::Challenge { stale: true, why }
}

#[cfg(test)]
mod tests;
