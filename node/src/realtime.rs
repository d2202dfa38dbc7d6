//! Realtime configuration: queues, queue members and agents as SQL has them, cached in memory
//! and reloaded when the cluster's config version changes (polled every second), so a change
//! made on any node or by a CRM is seen here on the next call without a query per call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use callfleet_store::{Agent, Queue};
use tracing::{debug, info};

use crate::node::Node;

/// One consistent copy of the configuration.
#[derive(Debug, Default)]
pub struct ConfigSnapshot {
    pub version: i64,
    pub queues: HashMap<String, Queue>,
    /// Agents by extension (their configuration; runtime state is read fresh where it matters).
    pub agents: HashMap<String, Agent>,
}

/// The cache; cheap reads, swapped whole.
#[derive(Debug, Default)]
pub struct Realtime {
    current: RwLock<Arc<ConfigSnapshot>>,
    seen: AtomicI64,
}

impl Realtime {
    pub fn get(&self) -> Arc<ConfigSnapshot> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set(&self, snap: ConfigSnapshot) {
        self.seen.store(snap.version, Ordering::Relaxed);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(snap);
    }
}

/// Loads the configuration now.
pub async fn reload(node: &Node) -> Result<(), callfleet_store::StoreError> {
    let version = node.store.config_version().await?;
    let queues = node.store.queues().await?;
    let agents = node.store.agents().await?;
    node.realtime.set(ConfigSnapshot {
        version,
        queues: queues.into_iter().map(|q| (q.name.clone(), q)).collect(),
        agents: agents
            .into_iter()
            .map(|a| (a.extension.clone(), a))
            .collect(),
    });
    Ok(())
}

/// Polls the config version every second and reloads on change.
pub async fn run(node: Node) {
    if let Err(e) = reload(&node).await {
        debug!(error = %e, "cannot load the configuration yet");
    }
    loop {
        tokio::select! {
            _ = node.stopping.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        match node.store.config_version().await {
            Ok(v) if v != node.realtime.seen.load(Ordering::Relaxed) => match reload(&node).await {
                Ok(()) => info!(version = v, "configuration reloaded"),
                Err(e) => debug!(error = %e, "configuration reload failed"),
            },
            Ok(_) => {}
            Err(e) => {
                debug!(error = %e, "cannot read the config version; keeping the cached configuration")
            }
        }
    }
}
