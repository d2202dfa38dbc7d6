//! The node as the HTTP layer sees it ([`NodeApi`]): cluster and call listings, agents'
//! logins, listen-in and live traces (here or on the node holding the call), forwarded
//! recordings, peers' shed levels, registrars, device credentials, readiness and drain.

use std::net::SocketAddr;

use callfleet_web::{ApiError, BoxFuture, NodeApi};
use tracing::info;

use super::Node;
use crate::{now_ms, registrar};

/// The node as the HTTP layer sees it.
pub(super) struct Api(pub(super) Node);

impl NodeApi for Api {
    fn nodes(&self) -> serde_json::Value {
        serde_json::to_value(self.0.cluster.balancer.snapshot(now_ms()))
            .unwrap_or_else(|_| serde_json::json!([]))
    }

    fn calls(&self) -> BoxFuture<'static, Result<serde_json::Value, ApiError>> {
        let calls = self.0.calls.snapshot(&self.0.base.cfg.node.name);
        Box::pin(async move {
            serde_json::to_value(calls).map_err(|e| ApiError::internal("encode calls", e))
        })
    }

    fn agents(&self) -> BoxFuture<'static, Result<serde_json::Value, ApiError>> {
        let store = self.0.base.store.clone();
        Box::pin(async move {
            let agents = store
                .agents()
                .await
                .map_err(|e| ApiError::unavailable("database", e))?;
            let list: Vec<serde_json::Value> = agents
                .into_iter()
                .map(|a| {
                    serde_json::json!({
                        "extension": a.extension, "name": a.name, "state": a.state.as_str(),
                        "device": a.device, "paused": a.paused, "state_since_ms": a.state_since_ms,
                        "calls_today": a.calls_today, "daily_limit": a.daily_limit,
                        "current_node": a.current_node,
                    })
                })
                .collect();
            Ok(serde_json::Value::Array(list))
        })
    }

    fn agent_login(&self, ext: String, device: String) -> BoxFuture<'static, Result<(), ApiError>> {
        let store = self.0.base.store.clone();
        Box::pin(async move {
            let db = |e| ApiError::unavailable("database", e);
            if store.agent(&ext).await.map_err(db)?.is_none() {
                return Err(ApiError::NotFound { what: "agent" });
            }
            if store.device(&device).await.map_err(db)?.is_none() {
                return Err(ApiError::NotFound { what: "device" });
            }
            if store
                .login_agent(&ext, &device, now_ms())
                .await
                .map_err(db)?
            {
                info!(agent = %ext, device = %device, "agent logged in over the API");
                Ok(())
            } else {
                Err(ApiError::Conflict {
                    reason: "agent or the phone's current agent is in a call",
                })
            }
        })
    }

    fn agent_logout(&self, ext: String) -> BoxFuture<'static, Result<(), ApiError>> {
        let store = self.0.base.store.clone();
        Box::pin(async move {
            let db = |e| ApiError::unavailable("database", e);
            if store.agent(&ext).await.map_err(db)?.is_none() {
                return Err(ApiError::NotFound { what: "agent" });
            }
            if store.logout_agent(&ext, now_ms()).await.map_err(db)? {
                info!(agent = %ext, "agent logged out over the API");
                Ok(())
            } else {
                Err(ApiError::Conflict {
                    reason: "agent is in a call",
                })
            }
        })
    }

    fn listen(
        &self,
        call_id: String,
        device: String,
        mode: callfleet_web::ListenMode,
    ) -> BoxFuture<'static, Result<(), ApiError>> {
        let listening = self.0.listening.clone();
        Box::pin(async move { crate::listen::listen(&listening, &call_id, &device, mode).await })
    }

    fn live_trace(
        &self,
        call_id: String,
    ) -> BoxFuture<'static, Result<Option<callfleet_vocab::CallTrace>, ApiError>> {
        let live = self.0.live_traces.clone();
        Box::pin(async move { crate::trace::remote::live_trace(&live, &call_id).await })
    }

    fn live_trace_here(
        &self,
        call_id: String,
    ) -> BoxFuture<'static, Option<callfleet_vocab::CallTrace>> {
        let trace = self.0.trace.clone();
        Box::pin(async move { trace.live(&call_id).await })
    }

    fn listen_here(
        &self,
        call_id: String,
        device: String,
        mode: callfleet_web::ListenMode,
    ) -> BoxFuture<'static, Result<(), ApiError>> {
        let listening = self.0.listening.clone();
        Box::pin(
            async move { crate::listen::listen_here(&listening, &call_id, &device, mode).await },
        )
    }

    fn node_name(&self) -> String {
        self.0.base.cfg.node.name.clone()
    }

    fn forward_get(
        &self,
        holder: String,
        path: String,
        range: Option<String>,
    ) -> BoxFuture<'static, Result<axum::response::Response, ApiError>> {
        let (cfg, cluster) = (self.0.base.cfg.clone(), self.0.cluster.clone());
        Box::pin(async move {
            crate::recording::forward::get(&cfg, &cluster, &holder, &path, range.as_deref()).await
        })
    }

    fn shed_peers(&self) -> Vec<callfleet_web::shed::Peer> {
        let view = self.0.cluster.balancer.view();
        view.nodes()
            .iter()
            .map(|n| callfleet_web::shed::Peer {
                name: n.name.clone(),
                base: crate::tls::node_url(crate::tls::serves_https(&n.services), n.http, ""),
                level: n.shed_level,
                utilisation: n.utilisation(),
                cpu_pct: n.cpu_pct,
                alive: view.is_alive(n),
                draining: n.draining,
            })
            .collect()
    }

    fn registrars(&self) -> Vec<SocketAddr> {
        let view = self.0.cluster.balancer.view();
        view.nodes()
            .iter()
            .filter(|n| n.role == callfleet_lb::Role::Main && view.is_alive(n) && !n.draining)
            .map(|n| n.sip)
            .collect()
    }

    fn device_credentials(
        &self,
        ext: &str,
        display_name: &str,
        password: &str,
    ) -> Result<callfleet_store::Device, ApiError> {
        registrar::credentials::device(
            ext,
            &self.0.base.cfg.sip.realm,
            password,
            display_name,
            now_ms(),
        )
        .map_err(|e| ApiError::internal("make device credentials", e))
    }

    fn readiness(&self) -> Option<callfleet_web::ready::Readiness> {
        Some(crate::drain::readiness_of(&self.0.watch()))
    }

    fn drain(&self) -> BoxFuture<'static, Result<(), ApiError>> {
        let node = self.0.clone();
        Box::pin(async move {
            node.request_drain();
            Ok(())
        })
    }
}
