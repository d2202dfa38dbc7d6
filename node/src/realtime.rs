//! Realtime configuration: queues, queue members, agents, carriers, numbers (DIDs), IVR menus,
//! ring groups, uploaded prompts' names
//! and office proxies' addresses as SQL has them, cached
//! in memory and reloaded when the cluster's config version changes (polled every second), so a
//! change made on any node, by a CRM or on the admin pages is seen here on the next call
//! without a query per call.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use callfleet_store::{Agent, Carrier, IvrMenu, Proxy, Queue, RingGroup, Store};
use ipnet::IpNet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::dialplan::schedule::NumberRoute;

/// One consistent copy of the configuration.
#[derive(Debug, Default)]
pub struct ConfigSnapshot {
    pub version: i64,
    pub queues: HashMap<String, Queue>,
    /// Agents by extension (their configuration; runtime state is read fresh where it matters).
    pub agents: HashMap<String, Agent>,
    /// Source networks of the carriers in SQL (admitted besides `carriers.allow`).
    pub carriers: Vec<IpNet>,
    /// Numbers (DIDs) by number, their schedules parsed.
    pub numbers: HashMap<String, NumberRoute>,
    /// IVR menus by name, with their choices.
    pub menus: HashMap<String, IvrMenu>,
    /// Ring groups by name, with their members in order.
    pub groups: HashMap<String, RingGroup>,
    /// Office proxies that checked in, by name, with their current address.
    pub proxies: Vec<(String, IpAddr)>,
    /// Prompts uploaded on the admin pages: name to upload time (the audio is fetched on
    /// first use, `media::uploaded`).
    pub prompts: HashMap<String, i64>,
}

impl ConfigSnapshot {
    /// Whether `ip` is in the network of a carrier from SQL.
    pub fn carrier_allows(&self, ip: IpAddr) -> bool {
        self.carriers.iter().any(|net| net.contains(&ip))
    }

    /// Whether `ip` is the current address of an office proxy.
    pub fn proxy_at(&self, ip: IpAddr) -> bool {
        self.proxies.iter().any(|(_, a)| *a == ip)
    }
}

/// The addresses of the proxies that checked in; a row whose address does not parse is left
/// out and logged.
pub fn proxy_addresses(proxies: &[Proxy]) -> Vec<(String, IpAddr)> {
    proxies
        .iter()
        .filter_map(|p| {
            let text = p.address.as_deref()?;
            match p.ip() {
                Some(ip) => Some((p.name.clone(), ip)),
                None => {
                    warn!(proxy = %p.name, address = %text, "proxy address is not an IP address; ignored");
                    None
                }
            }
        })
        .collect()
}

/// The proxies whose address changed from `before` to `after`: (old, new) per proxy.
pub fn proxy_moves(
    before: &[(String, IpAddr)],
    after: &[(String, IpAddr)],
) -> Vec<(IpAddr, IpAddr)> {
    after
        .iter()
        .filter_map(|(name, to)| {
            let (_, from) = before.iter().find(|(n, _)| n == name)?;
            (from != to).then_some((*from, *to))
        })
        .collect()
}

/// The networks of `carriers`; a row whose network does not parse is left out and logged.
pub fn carrier_networks(carriers: &[Carrier]) -> Vec<IpNet> {
    carriers
        .iter()
        .filter_map(|c| match c.network.trim().parse::<IpNet>() {
            Ok(net) => Some(net),
            Err(e) => {
                warn!(carrier = %c.name, network = %c.network, error = %e, "carrier network is not a CIDR; ignored");
                None
            }
        })
        .collect()
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

/// What the reload task uses of the node, and nothing more.
pub struct Reloader {
    pub store: Store,
    /// The cache it fills; the node's calls read it.
    pub cache: Arc<Realtime>,
    /// Stops the task.
    pub stopping: CancellationToken,
    /// Told of every office proxy that moved (old address, new one) when a reload sees it
    /// (the registrar re-keys the phones it knows by address).
    pub on_proxy_move: Option<Box<dyn Fn(IpAddr, IpAddr) + Send + Sync>>,
}

/// Loads the configuration now.
async fn reload(r: &Reloader) -> Result<(), callfleet_store::StoreError> {
    let version = r.store.config_version().await?;
    let queues = r.store.queues().await?;
    let agents = r.store.agents().await?;
    let carriers = r.store.carriers().await?;
    let numbers = r.store.numbers().await?;
    let menus = r.store.menus().await?;
    let groups = r.store.groups().await?;
    let prompts = r.store.prompts().await?;
    let proxies = proxy_addresses(&r.store.proxies().await?);
    if let Some(tell) = &r.on_proxy_move {
        for (from, to) in proxy_moves(&r.cache.get().proxies, &proxies) {
            tell(from, to);
        }
    }
    r.cache.set(ConfigSnapshot {
        version,
        queues: queues.into_iter().map(|q| (q.name.clone(), q)).collect(),
        agents: agents
            .into_iter()
            .map(|a| (a.extension.clone(), a))
            .collect(),
        carriers: carrier_networks(&carriers),
        numbers: numbers
            .into_iter()
            .map(|n| (n.number.clone(), NumberRoute::new(n)))
            .collect(),
        menus: menus.into_iter().map(|m| (m.name.clone(), m)).collect(),
        groups: groups.into_iter().map(|g| (g.name.clone(), g)).collect(),
        proxies,
        prompts: prompts
            .into_iter()
            .map(|p| (p.name, p.uploaded_at_ms))
            .collect(),
    });
    Ok(())
}

/// Loads the configuration before the node takes calls (a call routed before it would find
/// no queue); `false` when it could not within `limit`: [`run`] then keeps trying every second.
pub async fn first_load(r: &Reloader, limit: Duration) -> bool {
    match tokio::time::timeout(limit, reload(r)).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            warn!(error = %e, "cannot load the configuration before taking calls; trying again every second");
            false
        }
        Err(_) => {
            warn!(
                ?limit,
                "the configuration did not load in time; trying again every second"
            );
            false
        }
    }
}

/// Polls the config version every second and reloads on change (and until a first load,
/// when [`first_load`] did not make it: `loaded` false).
pub async fn run(r: Reloader, mut loaded: bool) {
    loop {
        tokio::select! {
            _ = r.stopping.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        match r.store.config_version().await {
            Ok(v) if !loaded || v != r.cache.seen.load(Ordering::Relaxed) => match reload(&r).await
            {
                Ok(()) => {
                    loaded = true;
                    info!(version = v, "configuration reloaded");
                }
                Err(e) => debug!(error = %e, "configuration reload failed"),
            },
            Ok(_) => {}
            Err(e) => {
                debug!(error = %e, "cannot read the config version; keeping the cached configuration")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn carrier(name: &str, network: &str) -> Carrier {
        Carrier {
            name: name.to_owned(),
            network: network.to_owned(),
            created_at_ms: 0,
        }
    }

    #[test]
    fn carriers_from_sql_admit_their_networks_only() {
        let snap = ConfigSnapshot {
            carriers: carrier_networks(&[
                carrier("a", "127.0.16.0/28"),
                carrier("bad", "not-a-network"),
                carrier("v6", "2001:db8::/32"),
            ]),
            ..ConfigSnapshot::default()
        };
        assert_eq!(snap.carriers.len(), 2);
        for (ip, want) in [
            ("127.0.16.5", true),
            ("127.0.16.16", false),
            ("2001:db8::1", true),
            ("2001:db9::1", false),
        ] {
            let ip: std::net::IpAddr = ip.parse().expect("ip");
            assert_eq!(snap.carrier_allows(ip), want, "{ip}");
        }
        assert!(!ConfigSnapshot::default().carrier_allows("127.0.0.1".parse().expect("ip")));
    }

    fn proxy(name: &str, address: Option<&str>) -> Proxy {
        Proxy {
            name: name.to_owned(),
            token_hash: String::new(),
            address: address.map(str::to_owned),
            last_checkin_ms: None,
            created_at_ms: 0,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn proxies_are_admitted_at_their_current_address_only() {
        let snap = ConfigSnapshot {
            proxies: proxy_addresses(&[
                proxy("office", Some("127.0.71.41")),
                proxy("new", None),
                proxy("bad", Some("somewhere")),
            ]),
            ..ConfigSnapshot::default()
        };
        assert_eq!(snap.proxies, vec![("office".to_owned(), ip("127.0.71.41"))]);
        assert!(snap.proxy_at(ip("127.0.71.41")));
        assert!(!snap.proxy_at(ip("127.0.71.42")));
        assert!(!ConfigSnapshot::default().proxy_at(ip("127.0.71.41")));
    }

    #[test]
    fn moves_are_the_proxies_whose_address_changed() {
        let before = vec![
            ("a".to_owned(), ip("10.0.0.1")),
            ("b".to_owned(), ip("10.0.0.2")),
            ("gone".to_owned(), ip("10.0.0.3")),
        ];
        let after = vec![
            ("a".to_owned(), ip("10.0.0.1")),
            ("b".to_owned(), ip("10.0.9.2")),
            ("new".to_owned(), ip("10.0.0.4")),
        ];
        assert_eq!(
            proxy_moves(&before, &after),
            vec![(ip("10.0.0.2"), ip("10.0.9.2"))]
        );
        assert_eq!(proxy_moves(&[], &after), vec![]);
    }
}
