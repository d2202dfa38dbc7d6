//! The alert rules' readings that need I/O: lockd health checks, free space of the watched
//! directories (`statvfs` through `fs4`), and the carrier traffic this node saw, written to
//! and read back from SQL.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use callfleet_store::{Carrier, CarrierTraffic, Store, StoreError};
use ipnet::IpNet;
use tracing::debug;

use super::rules::{DiskUse, LockdProbe};

/// Deadline of one lockd health check.
const LOCKD_CHECK: Duration = Duration::from_secs(1);

/// `GET <url>/healthz` of every lockd, in turn (they are few, each check bounded by a
/// second): reachable when it answers anything but a 5xx (a 503 means its memcached is down,
/// which is as bad for leases).
pub async fn lockds(client: &reqwest::Client, urls: &[String]) -> Vec<LockdProbe> {
    let mut probes = Vec::with_capacity(urls.len());
    for url in urls {
        let health = format!("{}/healthz", url.trim_end_matches('/'));
        let ok = match client.get(&health).timeout(LOCKD_CHECK).send().await {
            Ok(answer) => !answer.status().is_server_error(),
            Err(e) => {
                debug!(url = %url, error = %e, "lockd health check failed");
                false
            }
        };
        probes.push(LockdProbe {
            url: url.clone(),
            ok,
        });
    }
    probes
}

/// How full the file system of each directory is; a directory that does not exist (yet) or
/// cannot be read is left out.
pub async fn disks(dirs: Vec<PathBuf>) -> Vec<DiskUse> {
    let read = tokio::task::spawn_blocking(move || {
        dirs.iter()
            .filter_map(|dir| match fs4::statvfs(dir) {
                Ok(stats) => used_pct(
                    stats.total_space(),
                    stats.free_space(),
                    stats.available_space(),
                )
                .map(|used_pct| DiskUse {
                    dir: dir.display().to_string(),
                    used_pct,
                }),
                Err(e) => {
                    debug!(dir = %dir.display(), error = %e, "cannot read free space");
                    None
                }
            })
            .collect::<Vec<_>>()
    });
    read.await.unwrap_or_default()
}

/// Used space as `df` shows it: used over what non-root users could have (used plus
/// available), in percent; `None` for an empty file system.
pub fn used_pct(total: u64, free: u64, available: u64) -> Option<f64> {
    let used = total.saturating_sub(free);
    let usable = used.saturating_add(available);
    (usable > 0).then(|| used as f64 * 100.0 / usable as f64)
}

/// The carrier whose network holds `ip`, if any.
pub fn carrier_of(ip: IpAddr, carriers: &[(String, IpNet)]) -> Option<&str> {
    carriers
        .iter()
        .find(|(_, net)| net.contains(&ip))
        .map(|(name, _)| name.as_str())
}

/// The carriers' networks that parse (a bad row is skipped, as the admission does).
pub fn networks(carriers: &[Carrier]) -> Vec<(String, IpNet)> {
    carriers
        .iter()
        .filter_map(|c| c.network.parse().ok().map(|net| (c.name.clone(), net)))
        .collect()
}

/// Writes when this node last heard from each carrier (`sources`: last INVITE per source
/// address) and reads back every node's; the carriers and all traffic rows.
pub async fn carrier_traffic(
    store: &Store,
    node: &str,
    sources: &HashMap<IpAddr, i64>,
) -> Result<(Vec<Carrier>, Vec<CarrierTraffic>), StoreError> {
    let carriers = store.carriers().await?;
    let nets = networks(&carriers);
    let mut latest: HashMap<&str, i64> = HashMap::new();
    for (ip, at) in sources {
        if let Some(name) = carrier_of(*ip, &nets) {
            let slot = latest.entry(name).or_insert(*at);
            *slot = (*slot).max(*at);
        }
    }
    for (carrier, at) in latest {
        store.note_carrier_traffic(carrier, node, at).await?;
    }
    let traffic = store.carrier_traffic().await?;
    Ok((carriers, traffic))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn used_space_as_df_shows_it() {
        // (total, free, available, percent)
        let cases = [
            (100, 100, 95, Some(0.0)),
            (100, 50, 45, Some(50.0 / 95.0 * 100.0)),
            (100, 5, 0, Some(100.0)),
            (0, 0, 0, None),
        ];
        for (total, free, avail, want) in cases {
            assert_eq!(used_pct(total, free, avail), want, "{total} {free} {avail}");
        }
    }

    #[test]
    fn sources_map_to_carriers_by_network() {
        let carriers = [
            Carrier {
                name: "acme".into(),
                network: "192.0.2.0/24".into(),
                created_at_ms: 0,
            },
            Carrier {
                name: "bad".into(),
                network: "nonsense".into(),
                created_at_ms: 0,
            },
        ];
        let nets = networks(&carriers);
        assert_eq!(nets.len(), 1);
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!(carrier_of(ip("192.0.2.9"), &nets), Some("acme"));
        assert_eq!(carrier_of(ip("198.51.100.1"), &nets), None);
    }

    #[tokio::test]
    async fn disks_reads_existing_directories_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        let uses = disks(vec![dir.path().to_path_buf(), dir.path().join("missing")]).await;
        assert_eq!(uses.len(), 1);
        assert!((0.0..=100.0).contains(&uses[0].used_pct), "{uses:?}");
    }
}
