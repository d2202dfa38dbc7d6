//! The load generator of `bench/media`: calls through a callfleet node with real SIP (the
//! carrier's callers in, the agents' phones registered with digest and answering), G.711 at
//! 20 ms on every leg, and at every receiving end RFC 3550 jitter, loss, order, a byte-for-byte
//! payload check and the delay the relay adds; or, as the reference, the same bridged streams
//! through rtpengine driven by its ng protocol.
//!
//! - `stats`: payloads, jitter, order, histograms (pure);
//! - `media`: the RTP engine (shared sockets, one sending thread, one receiving thread each);
//! - `sip`: the carrier and the phones on rsipstack;
//! - `provision`: the queue, agents and phones a run needs, written to the cluster database;
//! - `run`: one run through a node; `ng`: one run through rtpengine.

#![forbid(unsafe_code)]

pub mod media;
pub mod ng;
pub mod provision;
pub mod run;
pub mod sip;
pub mod stats;
