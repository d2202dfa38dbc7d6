//! `/login` under a flood of wrong passwords, on a real node: 500 concurrent logins from 25
//! addresses with 500 names (so no per-address or per-name limit stops them first) are
//! answered 401 or, past the few password checks a node runs at once, 503 with `Retry-After`;
//! the node's memory stays within 200 MB of where it was, and a call in progress keeps
//! receiving its audio throughout. 40 concurrent guesses at one name get at most 5 password
//! checks. Then a real user still logs in. Addresses: 127.0.63.x.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::http::{exchange, exchange_from, header};
use support::uac::Uac;
use support::{user_add, workdir, NodeProc, NodeSpec};

const FLOOD: usize = 500;
const SOURCES: usize = 25;
const MAX_GROWTH: u64 = 200 * 1024 * 1024;

/// One login from `from`: (status, Retry-After).
fn login(from: &str, http: SocketAddr, name: &str) -> (u16, Option<String>) {
    let (status, headers, _) = exchange_from(
        from,
        http,
        "POST /login HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded",
        &format!("name={name}&password=not-the-password&next=%2F"),
    );
    (status, header(&headers, "retry-after").map(str::to_owned))
}

/// `n` concurrent logins, the `i`-th from `source(i)` for `name(i)`: how many got each status.
fn burst(
    http: SocketAddr,
    n: usize,
    source: impl Fn(usize) -> String,
    name: impl Fn(usize) -> String,
) -> BTreeMap<u16, usize> {
    let start = Arc::new(std::sync::Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (from, name, start) = (source(i), name(i), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let (status, retry) = login(&from, http, &name);
                if status == 503 || status == 429 {
                    assert!(retry.is_some(), "{status} without Retry-After");
                }
                status
            })
        })
        .collect();
    let mut seen = BTreeMap::new();
    for t in threads {
        *seen.entry(t.join().expect("a login thread")).or_insert(0) += 1;
    }
    seen
}

/// Receives the call's RTP until `stop`, counting packets per second since it began.
fn receive(uac: Uac, to: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<u32>> {
    std::thread::spawn(move || {
        uac.rtp
            .set_read_timeout(Some(Duration::from_millis(5)))
            .expect("timeout");
        let start = Instant::now();
        let mut per_second: Vec<u32> = vec![];
        let mut buf = [0u8; 2048];
        let mut sent: u16 = 0;
        let mut next_send = start;
        while !stop.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(120) {
            // Our own RTP too, as a phone sends it.
            if Instant::now() >= next_send {
                let mut pkt = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0xca, 0xfe, 0xba, 0xbe];
                pkt[2..4].copy_from_slice(&sent.to_be_bytes());
                pkt.extend_from_slice(&[0xff; 160]);
                let _ = uac.rtp.send_to(&pkt, to);
                sent = sent.wrapping_add(1);
                next_send += Duration::from_millis(20);
            }
            if let Ok((n, _)) = uac.rtp.recv_from(&mut buf) {
                if n > 12 {
                    let second = start.elapsed().as_secs() as usize;
                    if per_second.len() <= second {
                        per_second.resize(second + 1, 0);
                    }
                    per_second[second] += 1;
                }
            }
        }
        per_second
    })
}

#[test]
fn a_login_flood_neither_exhausts_memory_nor_silences_a_call() {
    let _serial = support::serial();
    let dir = workdir("login-flood");
    let db = format!("sqlite://{}", dir.join("cluster.db").display());
    let node = NodeProc::start(
        &dir,
        NodeSpec {
            name: "flood-a",
            role: "main",
            ip: "127.0.63.1",
            db: &db,
            capacity: 10,
            extra: "",
        },
    );
    user_add(&node, "ada", "admin", "ada-password-1", None);
    // One wrong login first, so what a password check allocates once is in the baseline.
    assert_eq!(login("127.0.63.200", node.http, "warm-up").0, 401);

    // A call to music on hold, received throughout.
    let mut uac = Uac::new("127.0.63.2", node.sip);
    let ok = uac
        .answered("100", "flood-call-1", Duration::from_secs(5))
        .expect("the call is answered");
    let media = Uac::media_addr(&ok);
    let stop = Arc::new(AtomicBool::new(false));
    let audio = receive(uac, media, stop.clone());
    std::thread::sleep(Duration::from_secs(2));

    let baseline = node.rss_bytes().expect("the node's RSS");
    let peak = Arc::new(AtomicU64::new(baseline));
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (peak, watching) = (peak.clone(), watching.clone());
        let pid = node.pid().expect("pid");
        std::thread::spawn(move || {
            while watching.load(Ordering::Relaxed) {
                let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .ok()
                    .and_then(|s| {
                        s.lines()
                            .find_map(|l| l.strip_prefix("VmRSS:"))
                            .and_then(|v| {
                                v.trim().trim_end_matches("kB").trim().parse::<u64>().ok()
                            })
                    });
                if let Some(kib) = rss {
                    peak.fetch_max(kib * 1024, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    let flood = burst(
        node.http,
        FLOOD,
        |i| format!("127.0.63.{}", 10 + i % SOURCES),
        |i| format!("guess{i}"),
    );
    // The race: 40 guesses at one name at once, from 40 addresses.
    let race = burst(
        node.http,
        40,
        |i| format!("127.0.63.{}", 100 + i),
        |_| "ada".to_owned(),
    );
    watching.store(false, Ordering::Relaxed);
    watcher.join().expect("the memory watcher");
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let per_second = audio.join().expect("the RTP receiver");

    let growth = peak.load(Ordering::Relaxed).saturating_sub(baseline);
    eprintln!(
        "flood: {flood:?}; race: {race:?}; RSS {} MiB, peak +{} MiB; RTP per second {per_second:?}",
        baseline >> 20,
        growth >> 20
    );
    assert_eq!(flood.values().sum::<usize>(), FLOOD);
    assert!(
        flood.keys().all(|s| *s == 401 || *s == 503),
        "every flood login is refused (401) or turned away unchecked (503): {flood:?}"
    );
    assert!(
        flood.contains_key(&503),
        "no login was turned away: {flood:?}"
    );
    assert!(growth < MAX_GROWTH, "the node grew by {} MiB", growth >> 20);
    assert!(
        race.get(&401).copied().unwrap_or(0) <= 5,
        "more than 5 guesses at one name were checked: {race:?}"
    );
    assert!(race.keys().all(|s| [401, 429, 503].contains(s)), "{race:?}");
    // Audio every second of the call, the flood's included (the last, partial second aside).
    let whole = &per_second[..per_second.len().saturating_sub(1)];
    assert!(whole.len() >= 3, "{per_second:?}");
    assert!(
        whole.iter().all(|n| *n > 0),
        "the call went silent during the flood: packets per second {per_second:?}"
    );

    // The real user, from elsewhere, still gets in, unless the guesses used up the name's 5
    // failures (then it waits, as the limit says); other names are not held up.
    let checked = race.get(&401).copied().unwrap_or(0);
    let (status, _, body) = exchange(
        node.http,
        "POST /login HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded",
        "name=ada&password=ada-password-1&next=%2F",
    );
    let want = if checked >= 5 { 429 } else { 303 };
    assert_eq!(status, want, "ada after {checked} checked guesses: {body}");
    let (status, _, _) = exchange(
        node.http,
        "POST /login HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded",
        "name=warm-up&password=x&next=%2F",
    );
    assert_eq!(status, 401, "other names are checked as before");
}
