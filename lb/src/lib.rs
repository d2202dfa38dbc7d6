//! Cluster view and load-balancing decision: handle an INVITE here, 302 it to a peer, or refuse.
//!
//! # Layout
//!
//! - [`role`]: [`Role`], the part a node plays (`main` decides, `extra` only handles).
//! - [`view`]: [`NodeStatus`] (one heartbeat row, already typed by the node) and
//!   [`ClusterView`], an immutable snapshot of all rows stamped with the time it was built.
//! - [`decision`]: [`LocalLoad`], [`Decision`] and [`choose`], the pure routing rule. No I/O,
//!   no clock, no allocation: everything it needs is passed in.
//! - [`balancer`]: [`Balancer`], the cheap-to-clone shared shell the SIP layer calls per
//!   INVITE; it owns the current view and the pending-redirect counts.
//! - [`health`]: [`Health`], probe results per peer, flipped only after consecutive misses or
//!   answers; the balancer never chooses a peer that is down.
//! - [`hold`]: [`ProbeLoad`] and the view held while the heartbeat table cannot be read: peers
//!   that answer probes stay with the load they answered, the others age out.
//! - [`report`]: [`NodeReport`], the per-node JSON row of `GET /api/v1/nodes`.
//!
//! This crate knows nothing about SQL, sockets or timers: the node converts store rows into
//! [`NodeStatus`] and calls [`Balancer::replace_view`] after each heartbeat-table read,
//! [`Balancer::hold`] after a failed read and [`Balancer::answered`] per probe answer.
//!
//! # Invariants
//!
//! - **`alive` means the heartbeat is fresh** (`now - updated_at < ttl`): the node process is
//!   up; while the view is held (database down), a probe answer stands in for the heartbeat. **`accepting` means alive, not draining, not refusing and below shed level 3**: the
//!   node may be sent new calls. Only accepting nodes are ever redirect targets.
//! - **A node with a stale heartbeat or zero capacity is never chosen.**
//! - **No redirect ping-pong**: an INVITE that already carries the redirect marker is handled
//!   here or refused, never redirected again; extra nodes never redirect.
//! - **The balancer lock is held only for pure work**: the [`choose`] scan of a few rows and a
//!   counter bump per INVITE, or a handle swap/copy when the view is replaced or reported, or
//!   the few rows of a held view rebuilt (at most once per probe answer while the database is
//!   down). No I/O, no logging, no allocation on the decision path under it, never across an
//!   `.await`.
//! - **A held view never refreshes this node's own row**: it ages as before, so code that asks
//!   whether this node's own view is fresh (`alive(self)`) still learns that it is not.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod balancer;
pub mod decision;
pub mod health;
pub mod hold;
pub mod report;
pub mod role;
pub mod view;

#[cfg(test)]
mod testutil;

pub use balancer::{Balancer, LbConfig, DEFAULT_BAND, DEFAULT_TTL};
pub use decision::{choose, Band, Choice, Decision, LocalLoad, Peers};
pub use health::{Health, PeerState, Thresholds};
pub use hold::{ProbeLoad, LOAD_HEADER};
pub use report::NodeReport;
pub use role::{ParseRoleError, Role};
pub use view::{ClusterView, NodeStatus, REFUSE_SHED_LEVEL};
