//! HTTP surface of a callfleet node: JSON API, admin routes and the Prometheus metrics registry.
//!
//! # Layout
//!
//! - [`api`]: [`router`] builds the axum [`Router`](axum::Router) over an [`AppState`]; the node
//!   plugs itself in through the [`NodeApi`] trait, so this crate never sees SQL or SIP.
//! - [`error`]: [`ApiError`], the one error type handlers return; it logs the cause and shows the
//!   client a clean `{"error": "..."}` body with a status that says who is at fault.
//! - [`crm`]: the CRM operations (queues, agents, tiers, daily limits, sales, VIP callers,
//!   live calls) written once over the store, with a stable numeric code per failure, and
//!   their JSON routes; [`rpc`] serves the same operations over XML-RPC at `/RPC2`.
//! - [`listen`]: listen-in and whisper routes; the node behind [`NodeApi::listen`] finds the
//!   call, here or on the node holding it.
//! - [`admin`]: the admin pages (queues, members, VIP callers, agents, phones, users,
//!   carriers) as server-rendered forms for admins with a session, one generic handler over a
//!   [`admin::Resource`] per kind.
//! - [`calls`]: the call legs of the last 24 hours with their RTP quality (`/calls`).
//! - [`trace`]: a call's SIP trace: JSON, pcap and the ladder diagram (`/calls/{id}/trace`).
//! - [`page`]: the one HTML layout of the panel and the admin pages (askama templates in
//!   `templates/`, checked at compile time, every value escaped).
//! - [`names`]: the rules of names (extensions, queues, users, carriers, caller numbers) that
//!   the admin forms and the CRM API share.
//! - [`reports`]: the report pages (queues, agents, heatmap, evening callers by US state,
//!   departments' missed calls, repeat callers) with server-drawn SVG charts and CSV, the
//!   streamed call-record export, departments (admin pages and CRM API), and the number data
//!   (NANP area code → state and time zone, E.164 country codes).
//! - [`shed`]: shedding the reporting load: at shed level 1 and up a heavy report request goes
//!   to an idle node (`307`) or waits (`503` + `Retry-After`); the panel's stream slows down.
//! - [`provision`]: `GET /provision/{file}`, phones that configure themselves (Yealink and
//!   Grandstream files from askama templates, per-phone credentials, automatic device extensions).
//! - [`ready`]: `GET /readyz`, whether the node takes new calls now and why not.
//! - [`metrics`]: [`Metrics`], the node's Prometheus registry with typed increment helpers that
//!   are cheap enough for the SIP hot path.
//! - [`snapshot`]: the panel's cluster snapshot, read from SQL once per second by one task per
//!   node and published on a watch channel ([`snapshot::Hub`]) for every viewer and gauge;
//!   [`panel`] serves the supervisor page, its script and the SSE stream of snapshots.
//!
//! # Invariants
//!
//! - **Handlers hold no lock across `.await`**: state is `Arc`s and atomics; the node's own
//!   futures (behind [`NodeApi`]) own their I/O.
//! - **Metric cardinality is bounded**: label values come from closed enums
//!   ([`Outcome`], [`SipMethod`]), SIP status codes (100..=699, anything else is folded into `0`),
//!   the cluster's node names, agent states, or the configured queues' names.
//! - **Panel viewers never touch SQL**: pages and event streams read the published snapshot.
//! - **Changes are closed by default**: only a session (with its CSRF token), a CRM token, a
//!   request signed with the cluster secret or the node's operator token may change anything;
//!   a loopback peer without credentials may only read, and a request a browser marks as
//!   cross-site is identified by its session only. A missing peer address counts as remote.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod api;
pub mod auth;
pub mod calls;
pub mod crm;
pub mod error;
pub mod listen;
pub mod login;
pub mod metrics;
pub mod names;
pub mod page;
pub mod panel;
pub mod playback;
pub mod provision;
pub mod proxy;
pub mod ready;
pub mod reports;
pub mod rpc;
pub mod shed;
pub mod snapshot;
#[cfg(test)]
mod testing;
pub mod tls;
pub mod trace;

pub use api::{router, AppState, BoxFuture, NodeApi, SIGNATURE_HEADER};
pub use error::{ApiError, BoxError};
pub use listen::ListenMode;
pub use metrics::{Metrics, Outcome, SipMethod};
