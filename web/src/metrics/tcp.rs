//! The metrics of the SIP TCP listener's caps (see `sip.tcp_max_connections` and
//! `sip.tcp_max_per_source` in `docs/config.md`):
//!
//! | metric                                | type    | labels               |
//! |---------------------------------------|---------|----------------------|
//! | `callfleet_sip_tcp_connections`       | gauge   |                      |
//! | `callfleet_sip_tcp_refused_total`     | counter | `cap` ([`TcpCap`])   |

use std::fmt;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Which cap closed a new TCP connection at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TcpCap {
    /// `sip.tcp_max_per_source`: too many from one address.
    PerSource,
    /// `sip.tcp_max_connections`: too many in all.
    Total,
}

impl TcpCap {
    /// Every cap, in a fixed order.
    pub const ALL: [TcpCap; 2] = [TcpCap::PerSource, TcpCap::Total];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            TcpCap::PerSource => "per_source",
            TcpCap::Total => "total",
        }
    }
}

impl EncodeLabelValue for TcpCap {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        fmt::Write::write_str(encoder, self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CapLabels {
    cap: TcpCap,
}

/// The gauge and counters; every label set exists from the start (exported at 0).
#[derive(Debug, Default)]
pub struct TcpMetrics {
    open: Gauge,
    refused: Family<CapLabels, Counter>,
}

impl TcpMetrics {
    pub(super) fn new() -> TcpMetrics {
        let t = TcpMetrics::default();
        for cap in TcpCap::ALL {
            t.refused.get_or_create_owned(&CapLabels { cap });
        }
        t
    }

    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "sip_tcp_connections",
            "SIP TCP connections open on this node",
            self.open.clone(),
        );
        r.register(
            "sip_tcp_refused",
            "SIP TCP connections closed at once by a cap, by cap",
            self.refused.clone(),
        );
    }

    /// Sets how many SIP TCP connections are open.
    pub fn set_open(&self, open: i64) {
        self.open.set(open);
    }

    /// Counts one connection closed at once by `cap`.
    pub fn refused(&self, cap: TcpCap) {
        self.refused.get_or_create(&CapLabels { cap }).inc();
    }
}
