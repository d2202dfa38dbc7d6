//! lockd: the lock service of a callfleet cluster. A node takes a lease on `agent:<ext>`
//! before it offers a call to that agent and acts only if it got it; a lease has a TTL and a
//! fencing token that is larger than every token an earlier holder of the key got.
//!
//! # Layout
//!
//! - [`request`]: what a request may name (keys, owners, TTLs), checked before any backend
//!   sees it.
//! - [`backend`]: the [`LockBackend`] trait and its two implementations: `memory` (this
//!   process, for one host) and `memcached://HOST:PORT` (shared by all lockd of a cluster;
//!   the module documents the acquire/renew/release steps and why they are safe).
//! - [`api`]: the JSON bodies of the HTTP API.
//! - `server`: the axum routes, every lock route behind [`Auth`] (requests signed with the
//!   cluster secret, see `callfleet_sign`); [`serve`] runs them on a listener.
//! - [`metrics`]: `GET /metrics`, leases granted, refused and released, backend errors and
//!   request durations.
//! - `client`: [`LockClient`], which nodes use: failover across lockd URLs, or in-process.
//!
//! # Guarantees
//!
//! - **One live lease per key.** Acquire is an atomic store-if-absent; renew and release act
//!   only when owner and token match the current live lease (compare-and-swap).
//! - **Tokens only increase per key**, in the order the key is held: across lockd instances
//!   sharing a memcached, across lockd restarts, and across a memcached restart as long as the
//!   lockd hosts' clocks are in sync (a new token counter starts at the wall clock in µs).
//! - **A lease ends at its TTL in milliseconds**, not at memcached's whole-second expiry.
//! - **Every write is confirmed** by the backend before lockd answers.
//! - **Only the cluster's parts act on leases.** A lock request needs a valid signature made
//!   with the cluster secret, fresh and never seen before; without one it is refused before any
//!   backend sees it, so nobody else can read holders, hold a key or release a lease.

pub mod api;
pub mod backend;
mod client;
pub mod metrics;
pub mod request;
mod server;

pub use backend::{
    AcquireOutcome, Backend, BackendError, BackendUrlError, ConnectionError, Grant, LockBackend,
    MemoryBackend, ProtocolError, ReleaseOutcome, RenewOutcome,
};
pub use callfleet_sign::ClusterKey;
pub use client::{
    Acquire, AttemptError, Lease, LockClient, LockError, MalformedReply, TransportError,
    DEFAULT_TIMEOUT,
};
pub use request::{InvalidRequest, LockKey, Owner, Ttl};
pub use server::{router, runtime, serve, Auth};
