//! Failures per address with injected time.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::*;

#[test]
fn an_address_over_the_limit_waits_for_its_window() {
    let s = Strikes::new(Duration::from_secs(60), 3);
    let t0 = Instant::now();
    let a = IpAddr::from([127, 0, 0, 5]);
    let b: IpAddr = IpAddr::from([127, 0, 0, 6]);
    assert_eq!(s.check(a, t0), Ok(()));
    assert_eq!(s.strike(a, t0), Strike::First);
    assert_eq!(s.strike(a, t0 + Duration::from_secs(1)), Strike::Again);
    assert_eq!(s.check(a, t0 + Duration::from_secs(1)), Ok(()));
    assert_eq!(
        s.strike(a, t0 + Duration::from_secs(2)),
        Strike::LimitReached,
        "the third reaches the limit"
    );
    assert_eq!(
        s.strike(a, t0 + Duration::from_secs(3)),
        Strike::Again,
        "reported once"
    );
    assert_eq!(
        s.check(a, t0 + Duration::from_secs(10)),
        Err(Duration::from_secs(50))
    );
    assert_eq!(
        s.check(a, t0 + Duration::from_millis(59_500)),
        Err(Duration::from_secs(1)),
        "never less than a second"
    );
    assert_eq!(
        s.check(b, t0 + Duration::from_secs(10)),
        Ok(()),
        "another address"
    );
    assert_eq!(s.check(a, t0 + Duration::from_secs(60)), Ok(()));
    assert_eq!(
        s.strike(a, t0 + Duration::from_secs(61)),
        Strike::First,
        "a new window"
    );
    assert_eq!(s.check(a, t0 + Duration::from_secs(61)), Ok(()));
}

#[test]
fn memory_stays_bounded() {
    let s = Strikes::new(Duration::from_secs(60), 3);
    let t0 = Instant::now();
    for i in 0..(MAX_ADDRS as u32 + 50) {
        s.strike(
            IpAddr::from(i.to_be_bytes()),
            t0 + Duration::from_millis(u64::from(i)),
        );
    }
    assert!(s.map.lock().map(|m| m.len()).unwrap_or(0) <= MAX_ADDRS);
}
