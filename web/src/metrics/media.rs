//! The RTP quality of call legs, observed once per leg when its media stops:
//!
//! | metric                       | type      | buckets                                   |
//! |------------------------------|-----------|-------------------------------------------|
//! | `callfleet_rtp_loss_ratio`   | histogram | 0, 0.1 %, 0.5 %, 1 %, 2 %, 3 %, 5 %, 10 %, 20 %, 50 % |
//! | `callfleet_rtp_jitter_seconds` | histogram | 0.5 ms doubling to 256 ms               |
//!
//! Loss is the share of the party's packets that never came (sequence gaps); jitter is the
//! RFC 3550 interarrival jitter at the end of the leg. Legs that received no RTP are not
//! observed (nothing was measured).

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

const LOSS_BUCKETS: [f64; 10] = [0.0, 0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5];

/// The loss and jitter histograms.
#[derive(Debug)]
pub struct MediaMetrics {
    loss: Histogram,
    jitter: Histogram,
}

impl MediaMetrics {
    pub(super) fn new() -> MediaMetrics {
        MediaMetrics {
            loss: Histogram::new(LOSS_BUCKETS),
            jitter: Histogram::new(exponential_buckets(0.0005, 2.0, 10)),
        }
    }

    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "rtp_loss_ratio",
            "Share of a call leg's received RTP packets lost (sequence gaps), per leg",
            self.loss.clone(),
        );
        r.register_with_unit(
            "rtp_jitter",
            "Interarrival jitter of a call leg's received RTP (RFC 3550) at its end, per leg",
            Unit::Seconds,
            self.jitter.clone(),
        );
    }

    /// One leg's loss (0..1) and jitter in seconds.
    pub fn observe(&self, loss_ratio: f64, jitter_seconds: f64) {
        self.loss.observe(loss_ratio);
        self.jitter.observe(jitter_seconds);
    }
}
