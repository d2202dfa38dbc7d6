use rsipstack::sip::SipMessage;

use super::digest::ha1;
use super::*;

const T0: i64 = 1_700_000_000_000;
const REALM: &str = "callfleet";

fn settings(node: &str, instance: u64) -> Settings {
    Settings {
        realm: REALM.into(),
        limits: Limits {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
        },
        nonce_ttl: Duration::from_secs(300),
        secret: Some("cluster secret".into()),
        algorithms: Algorithm::ALL.to_vec(),
        node: node.into(),
        instance,
        throttle: crate::throttle::Policy::new(
            3,
            Duration::from_secs(60),
            Duration::from_secs(60),
            Duration::from_secs(600),
        )
        .trusting(guard::TRUST),
    }
}

fn device(ext: &str, password: &str) -> Device {
    Device {
        extension: ext.into(),
        ha1_md5: ha1(Algorithm::Md5, ext, REALM, password),
        ha1_sha256: ha1(Algorithm::Sha256, ext, REALM, password),
        realm: REALM.into(),
        display_name: String::new(),
        created_at_ms: T0,
    }
}

async fn registrar() -> (Registrar, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    store
        .upsert_device(&device("1001", "secret"))
        .await
        .expect("device");
    (
        Registrar::new(store.clone(), settings("main-a", 1), Metrics::new()),
        store,
    )
}

fn src() -> Source {
    Source {
        addr: "127.0.0.41:5062".parse().expect("addr"),
        transport: Transport::Udp,
    }
}

/// A phone as the registrar sees it: builds REGISTERs and answers challenges.
struct Phone {
    user: String,
    password: String,
    call_id: String,
    cseq: u32,
    nc: u32,
    nonce: Option<(String, Algorithm)>,
}

impl Phone {
    fn new(user: &str, password: &str) -> Phone {
        Phone {
            user: user.into(),
            password: password.into(),
            call_id: format!("call-{user}"),
            cseq: 0,
            nc: 0,
            nonce: None,
        }
    }

    /// Takes the nonce of the challenge for `alg` from a 401.
    fn take_challenge(&mut self, reply: &Reply, alg: Algorithm) {
        let value = reply
            .headers
            .iter()
            .find_map(|h| match h {
                Header::WwwAuthenticate(w) if w.value().contains(alg.as_str()) => {
                    Some(w.value().to_string())
                }
                Header::ProxyAuthenticate(w) if w.value().contains(alg.as_str()) => {
                    Some(w.value().to_string())
                }
                _ => None,
            })
            .expect("a challenge for the algorithm");
        let start = value.find("nonce=\"").expect("nonce") + 7;
        let end = start + value[start..].find('"').expect("closing quote");
        self.nonce = Some((value[start..end].to_string(), alg));
        self.nc = 0;
    }

    /// The credentials header for `method` on `uri`, if a challenge was taken.
    fn auth(&mut self, header: &str, method: &str, uri: &str) -> String {
        let Some((nonce, alg)) = &self.nonce else {
            return String::new();
        };
        self.nc += 1;
        let h = ha1(*alg, &self.user, REALM, &self.password);
        let ha2 = alg.hash(&format!("{method}:{uri}"));
        let nc = format!("{:08x}", self.nc);
        let response = alg.hash(&format!("{h}:{nonce}:{nc}:abcdef:auth:{ha2}"));
        format!("{header}: Digest username=\"{}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm={alg}, qop=auth, nc={nc}, cnonce=\"abcdef\"\r\n", self.user)
    }

    /// An INVITE to `*12` whose From header names `from`, with `Proxy-Authorization` once a
    /// challenge was taken.
    fn invite(&mut self, from: &str) -> Request {
        self.cseq += 1;
        let uri = "sip:*12@127.0.0.11:5060";
        let auth = self.auth("Proxy-Authorization", "INVITE", uri);
        let text = format!(
            "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.41:5062;branch=z9hG4bKi{}\r\n\
             From: <sip:{from}@127.0.0.11>;tag=f\r\nTo: <{uri}>\r\nCall-ID: inv-{}\r\nCSeq: {} INVITE\r\n\
             {auth}Content-Length: 0\r\n\r\n",
            self.cseq, self.call_id, self.cseq
        );
        match SipMessage::try_from(text.as_str()) {
            Ok(SipMessage::Request(r)) => r,
            other => panic!("test INVITE does not parse: {other:?}"),
        }
    }

    fn register(&mut self, extra: &str) -> Request {
        self.cseq += 1;
        let auth = self.auth("Authorization", "REGISTER", "sip:127.0.0.11:5060");
        let text = format!(
            "REGISTER sip:127.0.0.11:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.41:5062;branch=z9hG4bK{}\r\n\
             From: <sip:{u}@127.0.0.11>;tag=f\r\nTo: <sip:{u}@127.0.0.11>\r\nCall-ID: {}\r\nCSeq: {} REGISTER\r\n\
             User-Agent: test-phone\r\n{auth}{extra}Content-Length: 0\r\n\r\n",
            self.cseq, self.call_id, self.cseq, u = self.user
        );
        match SipMessage::try_from(text.as_str()) {
            Ok(SipMessage::Request(r)) => r,
            other => panic!("test REGISTER does not parse: {other:?}"),
        }
    }
}

const CONTACT: &str = "Contact: <sip:1001@127.0.0.41:5062>\r\n";

fn contacts(reply: &Reply) -> Vec<String> {
    reply
        .headers
        .iter()
        .filter_map(|h| match h {
            Header::Contact(c) => Some(c.value().to_string()),
            _ => None,
        })
        .collect()
}

fn code(reply: &Reply) -> u16 {
    reply.status.code()
}

/// Registers `phone` (challenge, then credentials) and returns the final reply.
async fn login(r: &Registrar, phone: &mut Phone, alg: Algorithm, extra: &str, now: i64) -> Reply {
    let first = r.register(&phone.register(extra), src(), now).await;
    assert_eq!(code(&first), 401);
    phone.take_challenge(&first, alg);
    r.register(&phone.register(extra), src(), now).await
}

#[tokio::test]
async fn a_phone_is_challenged_then_registered() {
    let (r, store) = registrar().await;
    let mut phone = Phone::new("1001", "secret");
    let first = r.register(&phone.register(CONTACT), src(), T0).await;
    assert_eq!(code(&first), 401);
    let offered: Vec<String> = first.headers.iter().map(|h| h.to_string()).collect();
    assert_eq!(offered.len(), 2, "{offered:?}");
    assert!(offered[0].starts_with("WWW-Authenticate: Digest realm=\"callfleet\""));
    assert!(offered[0].contains("algorithm=SHA-256") && offered[1].contains("algorithm=MD5"));
    assert!(store.all_registrations().is_empty());

    phone.take_challenge(&first, Algorithm::Sha256);
    let ok = r.register(&phone.register(CONTACT), src(), T0).await;
    assert_eq!(code(&ok), 200);
    assert_eq!(
        contacts(&ok),
        vec!["<sip:1001@127.0.0.41:5062>;expires=3600"]
    );
    let regs = store.all_registrations();
    assert_eq!(regs.len(), 1);
    let reg = &regs[0];
    assert_eq!(
        (
            reg.aor.as_str(),
            reg.received.as_str(),
            reg.transport.as_str(),
            reg.node.as_str()
        ),
        ("1001", "127.0.0.41:5062", "udp", "main-a")
    );
    assert_eq!(
        (reg.user_agent.as_str(), reg.call_id.as_str(), reg.cseq),
        ("test-phone", "call-1001", 2)
    );
    assert_eq!(reg.expires_at_ms, T0 + 3_600_000);
}

#[tokio::test]
async fn refreshes_reuse_the_nonce_with_rising_counts() {
    let (r, store) = registrar().await;
    let mut phone = Phone::new("1001", "secret");
    let extra = format!("{CONTACT}Expires: 600\r\n");
    assert_eq!(
        code(&login(&r, &mut phone, Algorithm::Md5, &extra, T0).await),
        200
    );
    // nc 00000002 .. 0000000c on the same nonce: past 9 the count is hex.
    for i in 2..=12 {
        let now = T0 + i64::from(i) * 1000;
        let reply = r.register(&phone.register(&extra), src(), now).await;
        assert_eq!(code(&reply), 200, "nc={:08x}", phone.nc);
        assert_eq!(store.all_registrations()[0].expires_at_ms, now + 600_000);
    }
    // The same message again (a replay): a fresh challenge, marked stale.
    phone.nc -= 1;
    phone.cseq -= 1;
    let replay = r
        .register(&phone.register(&extra), src(), T0 + 20_000)
        .await;
    assert_eq!(code(&replay), 401);
    assert!(replay.headers[0].to_string().ends_with("stale=true"));
}

#[tokio::test]
async fn unknown_users_and_wrong_passwords_look_the_same() {
    let (r, store) = registrar().await;
    let mut wrong = Phone::new("1001", "guess");
    let mut unknown = Phone::new("1009", "secret");
    let a = login(&r, &mut wrong, Algorithm::Md5, CONTACT, T0).await;
    let b = login(&r, &mut unknown, Algorithm::Md5, CONTACT, T0).await;
    assert_eq!((code(&a), code(&b)), (403, 403));
    assert_eq!((a.headers.len(), b.headers.len()), (0, 0));
    assert!(store.all_registrations().is_empty());
}

#[tokio::test]
async fn stale_nonces_get_a_stale_challenge() {
    let (r, _) = registrar().await;
    let mut phone = Phone::new("1001", "secret");
    assert_eq!(
        code(&login(&r, &mut phone, Algorithm::Md5, CONTACT, T0).await),
        200
    );
    let later = T0 + 301_000;
    let stale = r.register(&phone.register(CONTACT), src(), later).await;
    assert_eq!(code(&stale), 401);
    assert!(stale
        .headers
        .iter()
        .all(|h| h.to_string().contains("stale=true")));
    phone.take_challenge(&stale, Algorithm::Md5);
    assert_eq!(
        code(&r.register(&phone.register(CONTACT), src(), later).await),
        200
    );
}

#[tokio::test]
async fn another_nodes_nonce_is_stale_here() {
    let (a, _) = registrar().await;
    let store = Arc::new(MemoryStore::new());
    store
        .upsert_device(&device("1001", "secret"))
        .await
        .expect("device");
    let b = Registrar::new(store, settings("main-b", 2), Metrics::new());
    let mut phone = Phone::new("1001", "secret");
    assert_eq!(
        code(&login(&a, &mut phone, Algorithm::Sha256, CONTACT, T0).await),
        200
    );
    let moved = b.register(&phone.register(CONTACT), src(), T0 + 1000).await;
    assert_eq!(code(&moved), 401);
    assert!(moved.headers[0].to_string().ends_with("stale=true"));
}

#[tokio::test]
async fn a_phone_registers_only_its_own_extension() {
    let (r, store) = registrar().await;
    store
        .upsert_device(&device("1002", "other"))
        .await
        .expect("device");
    let mut phone = Phone::new("1002", "other");
    let first = r.register(&phone.register(CONTACT), src(), T0).await;
    phone.take_challenge(&first, Algorithm::Md5);
    // Credentials of 1002 in a REGISTER whose To names 1001.
    let req = phone.register(CONTACT);
    let text = req.to_string().replace("To: <sip:1002@", "To: <sip:1001@");
    let Ok(SipMessage::Request(req)) = SipMessage::try_from(text.as_str()) else {
        panic!("reparse")
    };
    assert_eq!(code(&r.register(&req, src(), T0).await), 403);
}

#[tokio::test]
async fn binding_rules_reach_the_wire() {
    let (r, store) = registrar().await;
    let mut phone = Phone::new("1001", "secret");
    let brief = login(
        &r,
        &mut phone,
        Algorithm::Md5,
        "Contact: <sip:1001@127.0.0.41:5062>;expires=10\r\n",
        T0,
    )
    .await;
    assert_eq!(code(&brief), 423);
    assert_eq!(brief.headers[0].to_string(), "Min-Expires: 60");
    let two = format!("{CONTACT}Contact: <sip:1001@10.1.1.1:5060>;expires=120\r\n");
    let ok = r.register(&phone.register(&two), src(), T0).await;
    assert_eq!(code(&ok), 200);
    let mut listed = contacts(&ok);
    listed.sort();
    assert_eq!(
        listed,
        vec![
            "<sip:1001@10.1.1.1:5060>;expires=120",
            "<sip:1001@127.0.0.41:5062>;expires=3600"
        ]
    );
    // A query (no Contact) lists them with the time left.
    let query = r.register(&phone.register(""), src(), T0 + 60_000).await;
    assert!(contacts(&query).contains(&"<sip:1001@10.1.1.1:5060>;expires=60".to_string()));
    // An old CSeq of the same Call-ID is refused.
    phone.cseq -= 3;
    assert_eq!(
        code(&r.register(&phone.register(&two), src(), T0).await),
        400
    );
    phone.cseq += 3;
    // Contact: * removes everything.
    let gone = r
        .register(&phone.register("Contact: *\r\nExpires: 0\r\n"), src(), T0)
        .await;
    assert_eq!((code(&gone), contacts(&gone).len()), (200, 0));
    assert!(store.all_registrations().is_empty());
}

#[tokio::test]
async fn malformed_credentials_are_refused_or_challenged() {
    let (r, _) = registrar().await;
    let mut phone = Phone::new("1001", "secret");
    for (auth, want) in [
        ("Authorization: Digest username=\"1001\", realm=\"callfleet\"\r\n", 400),
        ("Authorization: Digest username=\"1001\", realm=\"callfleet\", nonce=\"n\", uri=\"sip:x\", response=\"r\", qop=auth, nc=1, cnonce=\"c\"\r\n", 400),
        ("Authorization: Basic dXNlcjpwYXNz\r\n", 401),
        ("Authorization: Digest username=\"1001\", realm=\"elsewhere\", nonce=\"n\", uri=\"sip:x\", response=\"r\"\r\n", 401),
    ] {
        let reply = r.register(&phone.register(&format!("{auth}{CONTACT}")), src(), T0).await;
        assert_eq!(code(&reply), want, "{auth}");
    }
}

/// A store whose every call fails, as a database that is down.
struct DownStore;

fn down() -> StoreError {
    StoreError::Query {
        what: "test",
        source: sqlx::Error::PoolTimedOut,
    }
}

#[async_trait::async_trait]
impl RegistrarStore for DownStore {
    async fn upsert_device(&self, _: &Device) -> Result<(), StoreError> {
        Err(down())
    }
    async fn device(&self, _: &str) -> Result<Option<Device>, StoreError> {
        Err(down())
    }
    async fn upsert_registration(&self, _: &Registration) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn delete_registration(&self, _: &str, _: &str) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn delete_registrations(&self, _: &str) -> Result<u64, StoreError> {
        Err(down())
    }
    async fn registrations(&self, _: &str, _: i64) -> Result<Vec<Registration>, StoreError> {
        Err(down())
    }
    async fn purge_expired_registrations(&self, _: i64) -> Result<u64, StoreError> {
        Err(down())
    }
}

#[tokio::test]
async fn an_unreachable_database_is_a_503_with_retry_after() {
    let r = Registrar::new(Arc::new(DownStore), settings("main-a", 1), Metrics::new());
    let mut phone = Phone::new("1001", "secret");
    let first = r.register(&phone.register(CONTACT), src(), T0).await;
    assert_eq!(code(&first), 401, "challenges need no database");
    phone.take_challenge(&first, Algorithm::Md5);
    let reply = r.register(&phone.register(CONTACT), src(), T0).await;
    assert_eq!(code(&reply), 503);
    let retry: Vec<String> = reply
        .headers
        .iter()
        .filter_map(|h| match h {
            Header::Other(name, value) if name == "Retry-After" => Some(value.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(retry, ["30"]);
}

#[tokio::test]
async fn locate_prefers_the_source_address() {
    let (r, store) = registrar().await;
    let reg = |contact: &str, received: &str, expires_at_ms| Registration {
        aor: "1001".into(),
        contact: contact.into(),
        received: received.into(),
        transport: "udp".into(),
        expires_at_ms,
        user_agent: String::new(),
        node: "main-a".into(),
        call_id: "c".into(),
        cseq: 1,
    };
    for row in [
        reg(
            "sip:1001@192.168.1.20:5060",
            "203.0.113.7:40123",
            T0 + 5_000,
        ),
        reg("sip:1001@10.0.0.2:5070", "", T0 + 9_000),
        reg("sip:1001@phone.example", "", T0 + 8_000),
        reg("sip:1001@10.0.0.3", "", T0 - 1),
    ] {
        store.upsert_registration(&row).await.expect("row");
    }
    let found = r.locate_at("1001", T0).await.expect("locate");
    let targets: Vec<String> = found.iter().map(|b| b.target.to_string()).collect();
    // Newest expiry first; a host name without an address is skipped; expired rows are gone.
    assert_eq!(targets, vec!["10.0.0.2:5070", "203.0.113.7:40123"]);
    assert_eq!(found[1].contact, "sip:1001@192.168.1.20:5060");
    assert!(r.locate_at("1002", T0).await.expect("locate").is_empty());
    assert_eq!(r.purge(T0).await.expect("purge"), 1);
}

#[tokio::test]
async fn a_device_of_another_realm_cannot_log_in() {
    let (r, store) = registrar().await;
    let mut other = device("1001", "secret");
    other.realm = "old-realm".into();
    store.upsert_device(&other).await.expect("device");
    let mut phone = Phone::new("1001", "secret");
    assert_eq!(
        code(&login(&r, &mut phone, Algorithm::Md5, CONTACT, T0).await),
        403
    );
}

#[tokio::test]
async fn the_memory_store_keeps_cseq_order_like_sql() {
    let store = MemoryStore::new();
    let reg = |call_id: &str, cseq| Registration {
        aor: "1001".into(),
        contact: "sip:1001@h".into(),
        received: "127.0.0.41:5062".into(),
        transport: "udp".into(),
        expires_at_ms: T0 + 60_000,
        user_agent: String::new(),
        node: "main-a".into(),
        call_id: call_id.into(),
        cseq,
    };
    for (row, written) in [
        (reg("c1", 5), true),
        (reg("c1", 5), false),
        (reg("c1", 4), false),
        (reg("c1", 6), true),
        (reg("c2", 1), true),
    ] {
        assert_eq!(
            store.upsert_registration(&row).await.expect("memory"),
            written,
            "{row:?}"
        );
    }
    assert_eq!(store.all_registrations()[0].call_id, "c2");
}

fn at(addr: &str) -> Source {
    Source {
        addr: addr.parse().expect("addr"),
        transport: Transport::Udp,
    }
}

fn metric(r: &Registrar, series: &str) -> f64 {
    let text = r.inner.metrics.encode().expect("metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(-1.0)
}

#[tokio::test]
async fn guessing_bans_the_source_and_the_extension_but_not_the_phone_that_has_it() {
    let (r, store) = registrar().await;
    let (phone_at, thief_at, other_at) = (
        at("10.0.0.5:5060"),
        at("10.6.6.6:4000"),
        at("10.7.7.7:5060"),
    );
    let mut phone = Phone::new("1001", "secret");
    let first = r.register(&phone.register(CONTACT), phone_at, T0).await;
    phone.take_challenge(&first, Algorithm::Md5);
    assert_eq!(
        code(&r.register(&phone.register(CONTACT), phone_at, T0).await),
        200
    );
    let before = store.all_registrations();

    // Three wrong passwords from one address: the address and the extension are banned.
    let mut thief = Phone::new("1001", "guess");
    let challenge = r.register(&thief.register(CONTACT), thief_at, T0).await;
    thief.take_challenge(&challenge, Algorithm::Md5);
    for i in 0..3 {
        let reply = r.register(&thief.register(CONTACT), thief_at, T0 + i).await;
        assert_eq!(code(&reply), 403, "guess {i}");
    }
    // Banned: even the right password and a bare REGISTER get 403, with no challenge.
    let mut right = Phone::new("1001", "secret");
    let bare = r
        .register(&right.register(CONTACT), thief_at, T0 + 10)
        .await;
    assert_eq!((code(&bare), bare.headers.len()), (403, 0));
    let mut stranger = Phone::new("1002", "x");
    assert_eq!(
        code(
            &r.register(&stranger.register(CONTACT), thief_at, T0 + 10)
                .await
        ),
        403
    );
    // The extension is banned for other addresses too ...
    assert_eq!(
        code(
            &r.register(&right.register(CONTACT), other_at, T0 + 10)
                .await
        ),
        403
    );
    // ... but not for the phone that registered it from this address and port.
    assert_eq!(
        code(
            &r.register(&phone.register(CONTACT), phone_at, T0 + 10)
                .await
        ),
        200
    );
    assert_eq!(store.all_registrations().len(), before.len());
    assert_eq!(
        metric(&r, "callfleet_auth_failures_total{kind=\"register\"}"),
        3.0
    );
    assert_eq!(
        metric(
            &r,
            "callfleet_auth_bans_total{kind=\"register\",scope=\"source\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &r,
            "callfleet_auth_bans_total{kind=\"register\",scope=\"subject\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(&r, "callfleet_auth_refused_total{kind=\"register\"}"),
        3.0
    );

    // After the ban (60 s) the address is heard again; the next ban lasts twice as long.
    let later = T0 + 61_000;
    let mut thief = Phone::new("1001", "guess again");
    let challenge = r.register(&thief.register(CONTACT), thief_at, later).await;
    assert_eq!(code(&challenge), 401);
    thief.take_challenge(&challenge, Algorithm::Md5);
    for i in 0..3 {
        assert_eq!(
            code(
                &r.register(&thief.register(CONTACT), thief_at, later + i)
                    .await
            ),
            403
        );
    }
    let bare = r
        .register(&stranger.register(CONTACT), thief_at, later + 61_000)
        .await;
    assert_eq!(code(&bare), 403, "second ban: 120 s");
    let bare = r
        .register(&stranger.register(CONTACT), thief_at, later + 121_000)
        .await;
    assert_eq!(code(&bare), 401);
}

#[tokio::test]
async fn a_phones_invite_is_challenged_and_its_device_is_the_caller() {
    let (r, store) = registrar().await;
    store
        .upsert_device(&device("1002", "other"))
        .await
        .expect("device");
    let src: SocketAddr = "127.0.0.41:5062".parse().expect("addr");
    for alg in [Algorithm::Md5, Algorithm::Sha256] {
        let mut phone = Phone::new("1001", "secret");
        // The From header names another phone: it is never believed.
        let first = r.authenticate_invite(&phone.invite("1002"), src, T0).await;
        let InviteAuth::Reply(challenge) = first else {
            panic!("a challenge first: {first:?}")
        };
        assert_eq!(code(&challenge), 407);
        let offered: Vec<String> = challenge.headers.iter().map(|h| h.to_string()).collect();
        assert!(
            offered
                .iter()
                .all(|h| h.starts_with("Proxy-Authenticate: Digest realm=\"callfleet\"")),
            "{offered:?}"
        );
        phone.take_challenge(&challenge, alg);
        let again = r.authenticate_invite(&phone.invite("1002"), src, T0).await;
        assert!(
            matches!(&again, InviteAuth::Device(d) if d == "1001"),
            "{alg}: {again:?}"
        );
        // The same credentials again (a replay): a stale challenge.
        phone.nc -= 1;
        let replay = r.authenticate_invite(&phone.invite("1002"), src, T0).await;
        match replay {
            InviteAuth::Reply(rep) => {
                assert_eq!(code(&rep), 407);
                assert!(rep.headers[0].to_string().ends_with("stale=true"));
            }
            other => panic!("replay accepted: {other:?}"),
        }
    }
    // A wrong password is a 403 and counts towards the bans REGISTER shares.
    let mut wrong = Phone::new("1001", "guess");
    let InviteAuth::Reply(challenge) = r.authenticate_invite(&wrong.invite("1001"), src, T0).await
    else {
        panic!("challenge")
    };
    wrong.take_challenge(&challenge, Algorithm::Md5);
    let refused = r.authenticate_invite(&wrong.invite("1001"), src, T0).await;
    assert!(
        matches!(&refused, InviteAuth::Reply(rep) if code(rep) == 403),
        "{refused:?}"
    );
    assert_eq!(
        metric(&r, "callfleet_auth_failures_total{kind=\"invite\"}"),
        1.0
    );
}

#[tokio::test]
async fn phones_behind_a_moved_proxy_are_known_at_its_new_address() {
    let (r, _) = registrar().await;
    let mut phone = Phone::new("1001", "secret");
    let first = r.register(&phone.register(CONTACT), src(), T0).await;
    phone.take_challenge(&first, Algorithm::Sha256);
    assert_eq!(
        code(&r.register(&phone.register(CONTACT), src(), T0).await),
        200
    );
    let old = src().addr;
    let new: std::net::SocketAddr = "127.0.0.42:5062".parse().expect("addr");
    assert_eq!(r.phone_at(old, T0).as_deref(), Some("1001"));

    assert_eq!(r.readdress("127.0.0.99".parse().expect("ip"), new.ip()), 0);
    assert_eq!(r.phone_at(old, T0).as_deref(), Some("1001"));
    assert_eq!(r.readdress(old.ip(), new.ip()), 1);
    assert_eq!(r.phone_at(old, T0), None);
    assert_eq!(r.phone_at(new, T0).as_deref(), Some("1001"));
    let other_port: std::net::SocketAddr = "127.0.0.42:5063".parse().expect("addr");
    assert_eq!(r.phone_at(other_port, T0), None, "the port is kept");
}

mod burst;
