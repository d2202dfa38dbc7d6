//! RTP port allocation from the configured range: even ports handed out round-robin, each
//! bound on the node's media address; a port still in use is skipped.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use tokio::net::UdpSocket;

use crate::config::PortRange;

/// No free port in the range.
#[derive(Debug, thiserror::Error)]
#[error("no free RTP port on {ip} in {low}-{high} (last error: {last})")]
pub struct NoPort {
    pub ip: IpAddr,
    pub low: u16,
    pub high: u16,
    pub last: std::io::Error,
}

#[derive(Debug, Clone)]
pub struct PortPool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    ip: IpAddr,
    first: u16,
    count: u32,
    next: AtomicU32,
}

impl PortPool {
    pub fn new(ip: IpAddr, range: PortRange) -> PortPool {
        let first = range.low + range.low % 2;
        let count = (u32::from(range.high.saturating_sub(first)) / 2 + 1).max(1);
        PortPool {
            inner: Arc::new(Inner {
                ip,
                first,
                count,
                next: AtomicU32::new(0),
            }),
        }
    }

    /// Binds a UDP socket on the next free even port.
    pub async fn bind(&self) -> Result<(UdpSocket, SocketAddr), NoPort> {
        let inner = &self.inner;
        let tries = inner.count.min(64);
        let mut last = std::io::Error::other("range is empty");
        for _ in 0..tries {
            let slot = inner.next.fetch_add(1, Ordering::Relaxed) % inner.count;
            let port = inner.first + (slot * 2) as u16;
            match UdpSocket::bind(SocketAddr::new(inner.ip, port)).await {
                Ok(sock) => return Ok((sock, SocketAddr::new(inner.ip, port))),
                Err(e) => last = e,
            }
        }
        Err(NoPort {
            ip: inner.ip,
            low: inner.first,
            high: inner.first + ((inner.count - 1) * 2) as u16,
            last,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hands_out_even_ports_and_skips_busy_ones() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let pool = PortPool::new(
            ip,
            PortRange {
                low: 41001,
                high: 41010,
            },
        );
        let (_a, a) = pool.bind().await.expect("first port");
        let (_b, b) = pool.bind().await.expect("second port");
        assert_eq!(a.port(), 41002);
        assert_eq!(b.port(), 41004);
        // Hold every other port in the range: the pool wraps and skips the busy ones.
        let mut held = vec![];
        for _ in 0..3 {
            held.push(pool.bind().await.expect("port"));
        }
        assert!(
            pool.bind().await.is_err(),
            "range of 5 even ports is exhausted"
        );
    }
}
