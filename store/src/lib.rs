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
//! - `devices`: [`Device`] (phones, HA1 digests) and [`Registration`]
//!   (registrar bindings).
//! - `agents`: [`Agent`] and [`AgentState`]: configuration, hot-desk login,
//!   guarded state transitions, calls counted per day.
//! - `queues`: [`Queue`], [`Member`] (tiers, VIP permission), [`VipCaller`].
//! - `entries`: the cluster queue, [`NewEntry`] / [`QueueEntry`] /
//!   [`EntryState`], claimed by one node at a time.
//! - `events`: append-only [`QueueEvent`]s and [`Voicemail`]s.
//! - `carriers`: [`Carrier`]s managed from the admin pages (source
//!   networks allowed to send INVITEs, besides each node's config file).
//! - `numbers`: [`Number`]s (DIDs) with their open and closed [`Destination`]s, open
//!   hours and holidays (`numbers::hours` parses them); `ivr`: [`IvrMenu`]s and their choices;
//!   `groups`: [`RingGroup`]s and their [`GroupMember`]s in ring order.
//! - `prompts`: [`PromptInfo`], prompts uploaded on the admin pages (table `prompts`,
//!   8 kHz mono WAV).
//! - `pin`: how agent PINs are stored and checked (argon2id; the old SHA-256
//!   form still verifies and is upgraded).
//! - `users`: [`User`] and [`UserRole`] (panel users), login [`Session`]s and CRM
//!   [`ApiToken`]s; password hashes and hashed secrets only.
//! - `quality`: [`LegQualityRow`] (table `call_quality`), the RTP quality of each
//!   [`CallLeg`] of a call, upserted by call and leg.
//! - `trace`: [`TraceChunk`] (table `sip_trace`), a call's SIP messages in compressed
//!   chunks, inserted once per call and chunk number.
//! - `alerts`: [`ActiveAlert`]s firing now ([`AlertKind`], [`Severity`]), raised and
//!   resolved by guarded writes so each is notified once; [`CarrierTraffic`].
//! - `reports`: the report queries over `cdrs` and `queue_events` (buckets in UTC, one row
//!   per dimension and bucket), [`Department`]s (groups of queues), and the bulk insert
//!   of a synthetic history (`callfleet dev seed`).
//! - `proxies`: office VoIP [`Proxy`]s (hashed tokens, the address of the last check-in);
//!   [`Store::proxy_checkin`] moves the bindings received from a proxy's old address.
//! - `config`: the config version every configuration write bumps.
//! - `decode`: 0/1 and enum columns; `error`: [`StoreError`],
//!   [`ParseEnumError`].
//!
//! # Invariants
//!
//! **One query text serves both databases**: `$N` placeholders, standard
//! SQL plus `INSERT .. ON CONFLICT .. DO UPDATE` and `RETURNING`, which
//! PostgreSQL and SQLite (3.35+) both accept.
//!
//! **Columns are integers or text only**: booleans are 0/1, times are
//! milliseconds since the UNIX epoch, absent values are NULL. The binary columns
//! are `sip_trace.blob` (BYTEA / BLOB), compressed trace chunks, and `prompts.wav`, uploaded
//! prompts.
//!
//! **Races are settled by guarded single-statement writes**: a state change
//! that several nodes may attempt at once (`transition_agent`,
//! `claim_entry`, ...) is one `UPDATE .. WHERE state IN (..)`, and the row
//! count says who won. Multi-statement transactions write before they read,
//! so on SQLite they take the write lock up front.
//!
//! **Every configuration write bumps `config_version` in its own
//! transaction** (devices, agents' name/PIN/daily limit, queues, members,
//! tiers, VIP callers, carriers, numbers, IVR menus, ring groups, a proxy's address or removal), and only
//! when it changed a row; runtime writes
//! (registrations, agent states, `rr_last`, queue entries) never do.
//!
//! **The heartbeat row is the node row**: static node facts (role,
//! addresses, services, version) travel with every beat; there is no
//! separate `nodes` table to keep in step.
//!
//! **A newer generation wins**: a beat never overwrites a row written by a
//! later start of the same node name (see [`Store::upsert_heartbeat`]).

#![forbid(unsafe_code)]

mod agents;
mod alerts;
mod calls;
mod carriers;
mod config;
mod db;
mod dburl;
mod decode;
mod devices;
mod entries;
mod error;
mod events;
mod groups;
mod heartbeat;
mod ivr;
mod jobs;
pub mod numbers;
pub mod pin;
mod prompts;
mod provisioning;
mod proxies;
mod quality;
mod queues;
mod recordings;
mod reports;
#[cfg(test)]
mod testdb;
pub mod trace;
mod users;

pub use agents::{utc_day, Agent, AgentState, Transition};
pub use alerts::{ActiveAlert, AlertKind, CarrierTraffic, Severity};
/// The shared vocabulary, re-exported so a crate using the store names one path.
pub use callfleet_vocab::{
    CallDirection, DestKind, Fallback, GroupStrategy, HangupCause, HangupSide, MemberKind,
    QueueEventKind, RecordingFormat, RecordingPolicy, Strategy,
};
pub use calls::{Cdr, LiveCall};
pub use carriers::Carrier;
pub use db::Store;
pub use dburl::{redact_url, sqlite_file, Flavour};
pub use devices::{Device, Registration};
pub use entries::{EntryState, NewEntry, QueueEntry};
pub use error::{ParseEnumError, StoreError};
pub use events::{QueueEvent, Voicemail};
pub use groups::{GroupMember, RingGroup};
pub use heartbeat::{Heartbeat, HeartbeatPoint};
pub use ivr::{IvrMenu, DIGITS as IVR_DIGITS};
pub use jobs::{Job, JobState, NewJob};
pub use numbers::{Destination, Number};
pub use prompts::PromptInfo;
pub use provisioning::{Provisioned, ProvisionedPhone, ProvisioningToken};
pub use proxies::{checkin_plan, received_prefix, Checkin, CheckinPlan, Proxy};
pub use quality::{CallLeg, LegQualityRow};
pub use queues::{Member, Queue, VipCaller};
pub use recordings::RecordingRow;
pub use reports::{
    AgentRow, AreaHour, CallFilter, CallerRow, Department, QualityRow, QueueRow, StateChange,
    StateTime, Window as ReportWindow, QUALITY_PREFIX_CHARS,
};
pub use trace::TraceChunk;
pub use users::{ApiToken, Session, User, UserRole};
