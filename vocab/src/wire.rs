//! JSON bodies that cross between callfleet's processes: the listen-in request a node
//! forwards to the node holding the call, and `/readyz`'s answer that `callfleet health`
//! reads.

use serde::{Deserialize, Serialize};

words! {
    /// What the supervisor hears and says.
    pub enum ListenMode ("listen mode") {
        /// The supervisor hears the caller and the agent; nobody hears the supervisor.
        Listen = "listen",
        /// As `Listen`, and the agent (only) also hears the supervisor.
        Whisper = "whisper",
        /// As `Listen`, and both parties hear the supervisor (a three-way call).
        Barge = "barge",
    }
}

/// The body of `POST /api/v1/calls/{call_id}/listen` and of its forwarded form
/// `POST /internal/v1/calls/{call_id}/listen`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListenRequest {
    /// The supervisor's phone (device extension); on the public route a user with a phone of
    /// their own may leave it out.
    #[serde(default)]
    pub device: Option<String>,
    /// `"listen"` (the default), `"whisper"` or `"barge"`; kept as text so that a bad mode gets the
    /// route's own 400 message, not a JSON rejection.
    #[serde(default)]
    pub mode: Option<String>,
}

words! {
    /// Whether a node takes new calls, as `GET /readyz` says it.
    pub enum ReadyState ("ready state") {
        /// Up, writing its heartbeat, taking (or redirecting) new calls.
        Ready = "ready",
        /// Draining: no new calls, exiting once its calls have ended.
        Draining = "draining",
        /// Refusing new calls (CPU at `lb.refuse_cpu`, or shed level 3).
        Refusing = "refusing",
        /// Its heartbeat writes fail: the database is unreachable, and other nodes count it out.
        DatabaseUnreachable = "database_unreachable",
    }
}

/// The body of `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    /// The state.
    pub state: ReadyState,
    /// One line for a person: the reason, with the figures behind it.
    pub detail: String,
}

impl Readiness {
    /// The HTTP status `/readyz` answers with: 200 when ready, else 503.
    pub fn http_status(&self) -> u16 {
        if self.state == ReadyState::Ready {
            200
        } else {
            503
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::words::check::words;

    #[test]
    fn the_wire_texts() {
        words(&ListenMode::ALL, &["listen", "whisper", "barge"]);
        words(
            &ReadyState::ALL,
            &["ready", "draining", "refusing", "database_unreachable"],
        );
    }

    #[test]
    fn bodies_as_sent_today() {
        let ready = Readiness {
            state: ReadyState::DatabaseUnreachable,
            detail: "no heartbeat".into(),
        };
        let json = serde_json::to_string(&ready).expect("serialises");
        assert_eq!(
            json,
            r#"{"state":"database_unreachable","detail":"no heartbeat"}"#
        );
        assert_eq!(ready.http_status(), 503);
        let back: Readiness = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, ready);
        let req: ListenRequest =
            serde_json::from_str(r#"{"device":"2001","mode":"whisper"}"#).expect("parses");
        assert_eq!(req.device.as_deref(), Some("2001"));
        assert_eq!(req.mode.as_deref(), Some("whisper"));
        let empty: ListenRequest = serde_json::from_str("{}").expect("parses");
        assert_eq!(empty, ListenRequest::default());
    }
}
