//! Many requests from one address at once (an office's phones behind one NAT address after a
//! power cut): held back while the failure budget is busy with checks in flight, then served;
//! a burst of guesses still gets no more checks than the failures allowed. Paused time: the
//! store's slowness and the waits are virtual.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::*;
use crate::registrar::guard::{BUSY_RETRY_AFTER_S, BUSY_WAIT};

const MAX_FAILURES: u32 = 10;
const OFFICE: &str = "198.51.100.20";

/// A [`MemoryStore`] whose device look-up (the part of a password check that awaits) takes
/// `delay`, counting the look-ups and the most in flight at once.
struct SlowStore {
    inner: MemoryStore,
    delay: Duration,
    calls: AtomicUsize,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

#[async_trait::async_trait]
impl RegistrarStore for SlowStore {
    async fn upsert_device(&self, d: &Device) -> Result<(), StoreError> {
        self.inner.upsert_device(d).await
    }
    async fn device(&self, ext: &str) -> Result<Option<Device>, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.inner.device(ext).await
    }
    async fn upsert_registration(&self, reg: &Registration) -> Result<bool, StoreError> {
        self.inner.upsert_registration(reg).await
    }
    async fn delete_registration(&self, aor: &str, contact: &str) -> Result<bool, StoreError> {
        self.inner.delete_registration(aor, contact).await
    }
    async fn delete_registrations(&self, aor: &str) -> Result<u64, StoreError> {
        self.inner.delete_registrations(aor).await
    }
    async fn registrations(&self, aor: &str, now_ms: i64) -> Result<Vec<Registration>, StoreError> {
        self.inner.registrations(aor, now_ms).await
    }
    async fn purge_expired_registrations(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.inner.purge_expired_registrations(now_ms).await
    }
}

/// A registrar allowing [`MAX_FAILURES`], over a store with devices `2001..=2000+phones`
/// (password "pw") whose look-ups take `delay`.
async fn office(phones: u16, delay: Duration) -> (Registrar, Arc<SlowStore>) {
    let store = Arc::new(SlowStore {
        inner: MemoryStore::new(),
        delay,
        calls: AtomicUsize::new(0),
        in_flight: AtomicUsize::new(0),
        most_in_flight: AtomicUsize::new(0),
    });
    for i in 1..=phones {
        store
            .inner
            .upsert_device(&device(&(2000 + i).to_string(), "pw"))
            .await
            .expect("device");
    }
    let mut s = settings("main-a", 1);
    s.throttle = crate::throttle::Policy::new(
        MAX_FAILURES,
        Duration::from_secs(60),
        Duration::from_secs(60),
        Duration::from_secs(600),
    )
    .trusting(guard::TRUST);
    (Registrar::new(store.clone(), s, Metrics::new()), store)
}

/// Phone `i` of the office: extension 200i, its own port on the office's address.
fn office_phone(i: u16) -> (Source, String) {
    (
        at(&format!("{OFFICE}:{}", 5060 + i)),
        format!("Contact: <sip:{}@{OFFICE}:{}>\r\n", 2000 + i, 5060 + i),
    )
}

/// Every phone gets its challenge (one after another: challenges need no password check),
/// then all send their credentials at once; the replies, by phone.
async fn burst(r: &Registrar, phones: u16, password: &str) -> Vec<Reply> {
    let mut tasks = JoinSet::new();
    for i in 1..=phones {
        let (src, contact) = office_phone(i);
        let mut phone = Phone::new(&(2000 + i).to_string(), password);
        let first = r.register(&phone.register(&contact), src, T0).await;
        assert_eq!(code(&first), 401, "phone {i}");
        phone.take_challenge(&first, Algorithm::Sha256);
        let req = phone.register(&contact);
        let r = r.clone();
        tasks.spawn(async move { (i, r.register(&req, src, T0).await) });
    }
    let mut replies: Vec<(u16, Reply)> = Vec::new();
    while let Some(done) = tasks.join_next().await {
        replies.push(done.expect("register task"));
    }
    replies.sort_by_key(|(i, _)| *i);
    replies.into_iter().map(|(_, r)| r).collect()
}

fn codes(replies: &[Reply]) -> Vec<u16> {
    replies.iter().map(code).collect()
}

#[tokio::test(start_paused = true)]
async fn thirty_phones_behind_one_address_all_register() {
    // Each check takes 300 ms; ten at a time, the thirty are through in about a second.
    let (r, store) = office(30, Duration::from_millis(300)).await;
    let started = Instant::now();
    let replies = burst(&r, 30, "pw").await;
    assert_eq!(codes(&replies), [200; 30]);
    assert!(started.elapsed() < BUSY_WAIT, "{:?}", started.elapsed());
    assert_eq!(store.calls.load(Ordering::SeqCst), 30);
    let most = store.most_in_flight.load(Ordering::SeqCst);
    assert_eq!(
        most, MAX_FAILURES as usize,
        "never more in flight than failures left"
    );
    let busy = |outcome: &str| {
        metric(
            &r,
            &format!("callfleet_auth_busy_total{{kind=\"register\",outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(busy("admitted"), 20.0);
    assert_eq!(busy("refused"), 0.0);
    assert_eq!(
        metric(&r, "callfleet_auth_refused_total{kind=\"register\"}"),
        0.0
    );
    assert_eq!(store.inner.all_registrations().len(), 30);
}

#[tokio::test(start_paused = true)]
async fn thirty_wrong_passwords_at_once_get_ten_checks() {
    let (r, store) = office(30, Duration::from_millis(300)).await;
    let replies = burst(&r, 30, "guess").await;
    assert_eq!(codes(&replies), [403; 30]);
    // The ten checked failed and banned the address; the twenty waiting found the ban.
    assert_eq!(store.calls.load(Ordering::SeqCst), MAX_FAILURES as usize);
    assert_eq!(
        metric(&r, "callfleet_auth_failures_total{kind=\"register\"}"),
        10.0
    );
    assert_eq!(
        metric(
            &r,
            "callfleet_auth_bans_total{kind=\"register\",scope=\"source\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(&r, "callfleet_auth_refused_total{kind=\"register\"}"),
        20.0
    );
    assert_eq!(
        metric(
            &r,
            "callfleet_auth_busy_total{kind=\"register\",outcome=\"refused\"}"
        ),
        0.0,
        "a wait ended by a ban counts as a ban refusal only"
    );
    assert!(store.inner.all_registrations().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_request_still_busy_after_the_wait_gets_503_with_retry_after() {
    // Checks that take longer than the wait: the eleventh phone is not served in time.
    let (r, store) = office(11, BUSY_WAIT * 3).await;
    let started = Instant::now();
    let replies = burst(&r, 11, "pw").await;
    let mut got = codes(&replies);
    got.sort_unstable();
    let mut want = vec![200; 10];
    want.push(503);
    want.sort_unstable();
    assert_eq!(got, want);
    assert_eq!(store.calls.load(Ordering::SeqCst), 10);
    let refused = replies.iter().find(|r| code(r) == 503).expect("a 503");
    let retry: Vec<&str> = refused
        .headers
        .iter()
        .filter_map(|h| match h {
            Header::Other(name, value) if name == "Retry-After" => Some(value.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(retry, [BUSY_RETRY_AFTER_S.to_string()]);
    assert!(
        started.elapsed() >= BUSY_WAIT * 3,
        "the ten checks ran to their end"
    );
    assert_eq!(
        metric(
            &r,
            "callfleet_auth_busy_total{kind=\"register\",outcome=\"refused\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(&r, "callfleet_auth_refused_total{kind=\"register\"}"),
        0.0
    );
}
