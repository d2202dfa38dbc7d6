//! callfleet-store: the cluster database, and the only code that speaks SQL.
//!
//! # Layout
//!
//! - `db`: [`Store`], a cheap-to-clone handle on one `sqlx::AnyPool`;
//!   [`Store::connect`] picks PostgreSQL or SQLite by URL scheme,
//!   [`Store::migrate`] applies the embedded migrations of that flavour
//!   (`migrations/postgres`, `migrations/sqlite` at the repo root).
//! - `dburl`: [`Flavour`], [`redact_url`], and where a SQLite URL puts its file.
//! - `heartbeat`: [`Heartbeat`] (table `heartbeats`, one row per node) and
//!   [`HeartbeatPoint`] (table `heartbeat_history`).
//! - `calls`: [`LiveCall`] (table `live_calls`) and [`Cdr`] (table `cdrs`).
//! - `error`: [`StoreError`].
//!
//! # Invariants
//!
//! **One query text serves both databases**: `$N` placeholders, standard
//! SQL plus `INSERT .. ON CONFLICT .. DO UPDATE` and `RETURNING`, which
//! PostgreSQL and SQLite (3.35+) both accept.
//!
//! **Columns are integers or text only**: booleans are 0/1, times are
//! milliseconds since the UNIX epoch, absent values are NULL.
//!
//! **The heartbeat row is the node row**: static node facts (role,
//! addresses, services, version) travel with every beat; there is no
//! separate `nodes` table to keep in step.
//!
//! **A newer generation wins**: a beat never overwrites a row written by a
//! later start of the same node name (see [`Store::upsert_heartbeat`]).

#![forbid(unsafe_code)]

mod calls;
mod db;
mod dburl;
mod error;
mod heartbeat;
#[cfg(test)]
mod testdb;

pub use calls::{Cdr, LiveCall};
pub use db::Store;
pub use dburl::{redact_url, Flavour};
pub use error::StoreError;
pub use heartbeat::{Heartbeat, HeartbeatPoint};
