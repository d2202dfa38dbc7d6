//! [`Strikes`]: refused credentials counted per source address, in fixed windows, so a
//! receiver can turn away whoever keeps presenting wrong ones without checking them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Most addresses remembered; past it, addresses whose window ended are forgotten first, and
/// if all are current the oldest window goes.
pub const MAX_ADDRS: usize = 10_000;

/// What one more failure made of its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strike {
    /// The first failure of its window: worth a log line.
    First,
    /// Another one, still under the limit or already over it.
    Again,
    /// This one reached the limit: the address is turned away now (log it, once).
    LimitReached,
}

/// Counts failures per source address: past `limit` in one `window`, the address is refused
/// until the window ends.
#[derive(Debug)]
pub struct Strikes {
    map: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    window: Duration,
    limit: u32,
}

impl Default for Strikes {
    /// 10 failures a minute.
    fn default() -> Self {
        Self::new(Duration::from_secs(60), 10)
    }
}

impl Strikes {
    /// At most `limit` failures per address in each `window`.
    pub fn new(window: Duration, limit: u32) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            window,
            limit,
        }
    }

    /// `Err(retry_after)` while `addr` is over the limit.
    pub fn check(&self, addr: IpAddr, now: Instant) -> Result<(), Duration> {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get(&addr) {
            Some(&(start, count)) if count >= self.limit => {
                let elapsed = now.saturating_duration_since(start);
                match self.window.checked_sub(elapsed) {
                    Some(left) if !left.is_zero() => Err(left.max(Duration::from_secs(1))),
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// Counts one failure of `addr`.
    pub fn strike(&self, addr: IpAddr, now: Instant) -> Strike {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_ADDRS && !map.contains_key(&addr) {
            let window = self.window;
            map.retain(|_, (start, _)| now.saturating_duration_since(*start) < window);
            if map.len() >= MAX_ADDRS {
                let oldest = map
                    .iter()
                    .min_by_key(|(_, (start, _))| *start)
                    .map(|(a, _)| *a);
                if let Some(oldest) = oldest {
                    map.remove(&oldest);
                }
            }
        }
        let entry = map.entry(addr).or_insert((now, 0));
        if now.saturating_duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        if entry.1 == self.limit {
            Strike::LimitReached
        } else if entry.1 == 1 {
            Strike::First
        } else {
            Strike::Again
        }
    }
}

#[cfg(test)]
mod tests;
