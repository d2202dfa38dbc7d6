//! callfleet node: one process of the call-centre cluster.
//!
//! Layout:
//! - `alerts`: detection rules (pure), the alert state machine (pure), who sends each alert
//!   (lockd lease and `alerts` rows), and delivery by e-mail and signed webhooks;
//! - `acd`: agent selection for the cluster queue (sans-IO): which free agents go to which call;
//! - `config`: typed TOML configuration (unknown keys rejected);
//! - `node`: the shared state and the start/stop sequence;
//! - `heartbeat`: this node's row every interval, and the cluster view refresh;
//! - `drain`: how a node stops (SIGTERM drains, Ctrl-C hangs up) and its readiness (`/readyz`);
//! - `probe`: main nodes' SIP `OPTIONS` to their peers, excluding a dead node within a second;
//! - `sip`: UDP front (stateless fast path), transactions and dialogs (rsipstack), calls;
//! - `media`: SDP, RTP ports and packets, music on hold;
//! - `calls`, `records`: live calls in memory and their SQL records (written off the call path);
//! - `dialplan`: where an answered call goes (queue, agent, hot-desk codes, music on hold);
//! - `outbound`: agents' phones dialling external numbers through the outbound trunk;
//! - `queue`: the cluster queue's I/O shell: dispatcher, waiting callers, agent legs, voicemail;
//! - `listen`: supervisors listening in on (or whispering into) bridged calls, across nodes;
//! - `holder`: which other node holds a call and how to ask it (listen-in, live traces, files);
//! - `realtime`: queues and agents from SQL, cached and reloaded when the config version moves;
//! - `shed`: the load-shedding policy;
//! - `scale`: scale-out on main nodes: a command or webhook once the cluster stays busy, one
//!   main node acting (a lockd lease);
//! - `registrar`: phones REGISTER with digest auth (sans-IO digest, nonces, RFC 3261 §10.3
//!   bindings) and `locate` finds where an extension is; phones' INVITEs get `407` digest;
//! - `redact`: credentials hidden from every log line (the log writer);
//! - `throttle`: the limits on guessing (phone passwords, hot-desk PINs), sans-IO;
//! - `cli`: the `callfleet` subcommands (`demo`, `doctor`, `migrate`, `node drain`);
//! - `operator`: the operator token file a node writes at start for programs on its host.

#![forbid(unsafe_code)]

pub mod acd;
pub mod alerts;
pub mod calls;
pub mod cli;
pub mod config;
pub mod dialplan;
pub mod drain;
pub mod heartbeat;
pub mod holder;
pub mod lifecycle;
pub mod listen;
pub mod media;
pub mod node;
pub mod operator;
pub mod outbound;
pub mod probe;
pub mod quality;
pub mod queue;
pub mod realtime;
pub mod recording;
pub mod records;
pub mod redact;
pub mod registrar;
pub mod scale;
pub mod shed;
pub mod sip;
pub mod tcp;
pub mod throttle;
pub mod tls;
pub mod trace;

/// Wall-clock milliseconds since the UNIX epoch (heartbeats and records use wall time): the
/// one clock of [`callfleet_vocab`].
pub use callfleet_vocab::now_ms;
