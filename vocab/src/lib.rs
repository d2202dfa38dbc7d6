//! callfleet-vocab: the words every crate of callfleet shares, each defined once.
//!
//! Node, web and store used to pass these as strings and match them back; here each is an
//! enum whose text form (`as_str`, `Display`, `FromStr`, serde) is exactly what the database
//! stores and the wire carries, so no data migration is needed and no crate parses another's
//! strings.
//!
//! - `agent`: [`AgentState`], where an agent is in its day.
//! - `role`: [`Role`], what a panel user may do.
//! - `queue`: [`Strategy`], [`Fallback`] and [`QueueEventKind`].
//! - `recording`: [`RecordingPolicy`] (a queue's) and [`RecordingFormat`] (a stored file's).
//! - `destination`: [`DestKind`], where a dialled number or an IVR choice sends a caller.
//! - `group`: [`GroupStrategy`] and [`MemberKind`], how a ring group rings and what its members
//!   are.
//! - `hangup`: [`HangupCause`], [`HangupSide`] and [`CallDirection`], and the one table from a
//!   cause to the SIP
//!   status of the call's end ([`HangupCause::sip_status`]).
//! - `shed`: [`Work`], what a busy node gives up at which shed level, and [`ShedGate`], the
//!   node's current level shared by every part of it.
//! - `wire`: the JSON bodies that cross between nodes ([`ListenMode`], [`ListenRequest`],
//!   [`ReadyState`], [`Readiness`]).
//! - `trace`: a call's SIP trace ([`CallTrace`], [`TracedMessage`], [`TraceTransport`]).
//! - `sip`: [`uri_user`], the user part of a SIP URI.
//! - `clock`: [`now_ms`], the one wall clock (the only thing here that reads the system).
//!
//! No other I/O and no dependency on another crate of the workspace.

#![forbid(unsafe_code)]

#[macro_use]
mod words;

mod agent;
mod clock;
mod destination;
mod group;
mod hangup;
mod queue;
mod recording;
mod role;
mod shed;
mod sip;
mod trace;
mod wire;

pub use agent::AgentState;
pub use clock::now_ms;
pub use destination::DestKind;
pub use group::{GroupStrategy, MemberKind};
pub use hangup::{CallDirection, HangupCause, HangupSide};
pub use queue::{Fallback, QueueEventKind, Strategy};
pub use recording::{RecordingFormat, RecordingPolicy};
pub use role::Role;
pub use shed::{ShedGate, Work, MAX_LEVEL as MAX_SHED_LEVEL};
pub use sip::uri_user;
pub use trace::{CallTrace, TraceTransport, TracedMessage};
pub use wire::{ListenMode, ListenRequest, Readiness, ReadyState};

/// A text that names none of an enum's variants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct ParseEnumError {
    /// What was parsed, e.g. `"agent state"`.
    pub kind: &'static str,
    pub value: String,
}
