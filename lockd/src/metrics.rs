//! lockd's Prometheus metrics, served at `GET /metrics` (OpenMetrics text):
//!
//! | metric                                   | type      | labels                               |
//! |------------------------------------------|-----------|--------------------------------------|
//! | `lockd_leases_granted_total`             | counter   | `op` (`acquire`, `renew`)            |
//! | `lockd_leases_refused_total`             | counter   | `op` (`acquire`: held by another; `renew`, `release`: lost) |
//! | `lockd_leases_released_total`            | counter   |                                      |
//! | `lockd_backend_errors_total`             | counter   | `op` (`acquire`, `renew`, `release`, `check`) |
//! | `lockd_request_duration_seconds`         | histogram | `op` (`acquire`, `renew`, `release`, `health`, `metrics`, `other`) |
//!
//! Outcomes are counted by [`Metered`], a [`LockBackend`] wrapped around the real one, so the
//! routes' handlers are unchanged; request durations by a middleware around every route.
//! Labels are closed sets: no lock key or owner ever becomes a label. `/metrics` sits apart
//! from the lock routes ([`routes`]), so it stays readable without the lock API's credentials.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::backend::{AcquireOutcome, BackendError, LockBackend, ReleaseOutcome, RenewOutcome};
use crate::request::{LockKey, Owner, Ttl};

/// Request duration buckets: 100 µs doubling to about 0.8 s.
const DURATION_BUCKETS: u16 = 14;

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OpLabels {
    op: &'static str,
}

/// lockd's registry; cheap to clone.
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    granted: Family<OpLabels, Counter>,
    refused: Family<OpLabels, Counter>,
    released: Counter,
    backend_errors: Family<OpLabels, Counter>,
    duration: Family<OpLabels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every series at 0.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("lockd");
        let granted = Family::<OpLabels, Counter>::default();
        let refused = Family::<OpLabels, Counter>::default();
        let released = Counter::default();
        let backend_errors = Family::<OpLabels, Counter>::default();
        let duration = Family::<OpLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.0001, 2.0, DURATION_BUCKETS)))
                as fn() -> Histogram,
        );
        for op in ["acquire", "renew"] {
            let _ = granted.get_or_create_owned(&OpLabels { op });
        }
        for op in ["acquire", "renew", "release"] {
            let _ = refused.get_or_create_owned(&OpLabels { op });
        }
        for op in ["acquire", "renew", "release", "check"] {
            let _ = backend_errors.get_or_create_owned(&OpLabels { op });
        }
        registry.register(
            "leases_granted",
            "Leases granted (acquire) or extended (renew)",
            granted.clone(),
        );
        registry.register(
            "leases_refused",
            "Lease requests refused: the key is held by another (acquire) or the lease was lost (renew, release)",
            refused.clone(),
        );
        registry.register("leases_released", "Leases given back", released.clone());
        registry.register(
            "backend_errors",
            "Requests the lock backend (memcached) could not serve",
            backend_errors.clone(),
        );
        registry.register_with_unit(
            "request_duration",
            "Time to answer one HTTP request",
            Unit::Seconds,
            duration.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry,
                granted,
                refused,
                released,
                backend_errors,
                duration,
            }),
        }
    }

    /// The registry as OpenMetrics text.
    pub fn encode(&self) -> Result<String, fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.inner.registry)?;
        Ok(out)
    }

    fn count(family: &Family<OpLabels, Counter>, op: &'static str) {
        family.get_or_create(&OpLabels { op }).inc();
    }
}

/// `GET /metrics` over `metrics`.
pub fn routes(metrics: Metrics) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .with_state(metrics)
}

async fn serve_metrics(State(metrics): State<Metrics>) -> Response {
    match metrics.encode() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Middleware: times every request, labelled by what it asked for.
pub async fn time_request(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let op = match (req.method(), req.uri().path()) {
        (&Method::POST, _) => "acquire",
        (&Method::PUT, _) => "renew",
        (&Method::DELETE, _) => "release",
        (&Method::GET, "/healthz") => "health",
        (&Method::GET, "/metrics") => "metrics",
        _ => "other",
    };
    let started = Instant::now();
    let response = next.run(req).await;
    metrics
        .inner
        .duration
        .get_or_create(&OpLabels { op })
        .observe(started.elapsed().as_secs_f64());
    response
}

/// A backend whose every outcome is counted.
#[derive(Debug)]
pub struct Metered {
    inner: Arc<dyn LockBackend>,
    metrics: Metrics,
}

impl Metered {
    pub fn new(inner: Arc<dyn LockBackend>, metrics: Metrics) -> Self {
        Self { inner, metrics }
    }

    fn failed<T>(&self, op: &'static str, r: Result<T, BackendError>) -> Result<T, BackendError> {
        if r.is_err() {
            Metrics::count(&self.metrics.inner.backend_errors, op);
        }
        r
    }
}

#[async_trait]
impl LockBackend for Metered {
    async fn acquire(
        &self,
        key: &LockKey,
        owner: &Owner,
        ttl: Ttl,
    ) -> Result<AcquireOutcome, BackendError> {
        let r = self.failed("acquire", self.inner.acquire(key, owner, ttl).await)?;
        let m = &self.metrics.inner;
        match &r {
            AcquireOutcome::Granted(_) => Metrics::count(&m.granted, "acquire"),
            AcquireOutcome::Held { .. } => Metrics::count(&m.refused, "acquire"),
        }
        Ok(r)
    }

    async fn renew(
        &self,
        key: &LockKey,
        owner: &Owner,
        token: u64,
        ttl: Ttl,
    ) -> Result<RenewOutcome, BackendError> {
        let r = self.failed("renew", self.inner.renew(key, owner, token, ttl).await)?;
        let m = &self.metrics.inner;
        match &r {
            RenewOutcome::Renewed(_) => Metrics::count(&m.granted, "renew"),
            RenewOutcome::Lost { .. } => Metrics::count(&m.refused, "renew"),
        }
        Ok(r)
    }

    async fn release(
        &self,
        key: &LockKey,
        owner: &Owner,
        token: u64,
    ) -> Result<ReleaseOutcome, BackendError> {
        let r = self.failed("release", self.inner.release(key, owner, token).await)?;
        let m = &self.metrics.inner;
        match &r {
            ReleaseOutcome::Released => {
                m.released.inc();
            }
            ReleaseOutcome::Lost { .. } => Metrics::count(&m.refused, "release"),
        }
        Ok(r)
    }

    async fn check(&self) -> Result<(), BackendError> {
        self.failed("check", self.inner.check().await)
    }
}

#[cfg(test)]
mod tests;
