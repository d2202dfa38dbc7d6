//! Attacks on the phones' side of a real node, each refused while a real phone (baresip) goes
//! on working: hot-desk codes with a forged From header or guessed PINs, REGISTER password
//! guessing, RTP from a third address, credentials in debug logs, and world-readable files.
//! Each test runs its own node on 127.0.33.x.

mod support;

use std::time::Duration;

use callfleet_store::{Agent, AgentState};
use support::phone::{device_add, Phone};
use support::queue::Db;
use support::raw_phone::RawPhone;
use support::{wait_until, workdir, NodeProc, NodeSpec};

fn node(test: &str, ip: &str, extra: &str) -> (std::path::PathBuf, NodeProc, Db) {
    let dir = workdir(test);
    let db = format!("sqlite://{}", dir.join("cluster.db").display());
    let n = NodeProc::start(
        &dir,
        NodeSpec {
            name: "solo",
            role: "main",
            ip,
            db: &db,
            capacity: 20,
            extra,
        },
    );
    let db = Db::connect(&db);
    (dir, n, db)
}

fn wait_registered(db: &Db, device: &str, phone: &Phone) {
    let ok = wait_until(Duration::from_secs(15), || db.registered(device));
    assert!(ok.is_some(), "{device} did not register:\n{}", phone.log());
}

/// Calls ended so far in baresip's log (to dial the next one after the last ended).
fn ended(phone: &Phone) -> usize {
    phone.log().matches("session closed").count()
}

/// Dials `uri` from baresip and waits for the node to end the call (it plays a prompt, then
/// hangs up).
fn dial_and_wait(phone: &Phone, uri: &str) {
    let before = ended(phone);
    phone.dial(uri);
    let done = wait_until(Duration::from_secs(15), || ended(phone) > before);
    assert!(
        done.is_some(),
        "call to {uri} did not end:\n{}",
        phone.log()
    );
}

/// A raw call to a hot-desk code, answered and then hung up by the node: (statuses, BYE seen).
fn raw_call(
    p: &mut RawPhone,
    dialled: &str,
    from: &str,
    call_id: &str,
    auth: bool,
) -> (Vec<u16>, bool) {
    let answers = p.call(dialled, from, call_id, auth);
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    let answered = statuses.last() == Some(&200);
    let bye = answered && p.bye_from_node(Duration::from_secs(10)).is_some();
    (statuses, bye)
}

#[test]
fn hot_desk_codes_act_on_the_authenticated_phone_only() {
    let (dir, n, db) = node("attack-hotdesk", "127.0.33.1", "");
    device_add(&n, "2001", "phone-secret", false);
    device_add(&n, "2002", "thief-secret", false);
    // Agent 1001's PIN as older versions stored it (SHA-256): upgraded at its next login.
    let legacy = callfleet_store::pin::legacy_sha256("1001", "1234");
    db.block(
        db.store
            .upsert_agent(&Agent::new("1001", "Ada", &legacy, callfleet::now_ms())),
    )
    .expect("add agent 1001");
    db.add_agent("1002", "5678");
    let phone = Phone::start_with_ctrl(&dir, "127.0.33.41", "2001", "phone-secret", &n, 4444);
    wait_registered(&db, "2001", &phone);

    // The real phone logs agent 1001 in: its INVITE is challenged (407) and answered.
    dial_and_wait(&phone, &format!("sip:*11*1001*1234@{}", n.sip));
    let agent = db.agent("1001");
    assert_eq!(
        agent.device.as_deref(),
        Some("2001"),
        "{agent:?}\n{}",
        phone.log()
    );
    assert!(
        agent.pin_hash.starts_with("$argon2id$"),
        "PIN upgraded: {}",
        agent.pin_hash
    );
    assert!(n.metric("callfleet_sip_responses_total{status=\"407\"}") >= 1.0);

    // An unregistered address (inside carriers.allow, so its call is answered) sends *12 with
    // the phone's number in From: the call is a carrier's, and logs nobody out.
    let mut stranger = RawPhone::new("127.0.33.66", n.sip, "2001", "");
    let (statuses, bye) = raw_call(&mut stranger, "*12", "2001", "forged-12", false);
    assert_eq!((statuses, bye), (vec![200], true), "answered, then refused");
    // A registered phone of its own (2002) forges From: 2001. Without credentials: 407.
    let mut thief = RawPhone::new("127.0.33.67", n.sip, "2002", "thief-secret");
    assert_eq!(thief.register().map(|r| r.status), Some(200));
    let (statuses, _) = raw_call(&mut thief, "*12", "2001", "forged-12b", false);
    assert_eq!(statuses, vec![407]);
    // With its own credentials it is phone 2002 whatever From says: nobody on 2002 to log out.
    let (statuses, bye) = raw_call(&mut thief, "*12", "2001", "forged-12c", true);
    assert_eq!((statuses, bye), (vec![407, 200], true));
    // A wrong password: 403.
    thief.password = "wrong".into();
    let (statuses, _) = raw_call(&mut thief, "*12", "2001", "forged-12d", true);
    thief.password = "thief-secret".into();
    assert_eq!(statuses, vec![407, 403]);
    let agent = db.agent("1001");
    assert_eq!(
        (agent.device.as_deref(), agent.state),
        (Some("2001"), AgentState::Available),
        "untouched: {agent:?}\n{}",
        n.log_text()
    );

    // Guessing 1001's PIN from 2002: five wrong PINs lock it out; then even the right PIN is
    // refused without being checked.
    for (i, pin) in ["0000", "1111", "2222", "3333", "4444", "1234"]
        .iter()
        .enumerate()
    {
        let (statuses, bye) = raw_call(
            &mut thief,
            &format!("*11*1001*{pin}"),
            "2002",
            &format!("guess-{i}"),
            true,
        );
        assert_eq!((statuses, bye), (vec![407, 200], true), "guess {i}");
    }
    let agent = db.agent("1001");
    assert_eq!(
        agent.device.as_deref(),
        Some("2001"),
        "still on the real phone: {agent:?}"
    );
    for (series, want) in [
        ("callfleet_auth_failures_total{kind=\"pin\"}", 5.0),
        (
            "callfleet_auth_bans_total{kind=\"pin\",scope=\"source\"}",
            1.0,
        ),
        (
            "callfleet_auth_bans_total{kind=\"pin\",scope=\"subject\"}",
            1.0,
        ),
        ("callfleet_auth_refused_total{kind=\"pin\"}", 1.0),
        ("callfleet_auth_failures_total{kind=\"invite\"}", 1.0),
    ] {
        assert_eq!(n.metric(series), want, "{series}");
    }
    let log = n.log_text();
    assert_eq!(
        log.matches("too many wrong PINs for this agent").count(),
        1,
        "logged once"
    );
    assert_eq!(
        log.matches("too many wrong PINs from this phone").count(),
        1,
        "logged once"
    );

    // The real phone still does everything: log 1001 out, log 1002 in.
    dial_and_wait(&phone, &format!("sip:*12@{}", n.sip));
    assert_eq!(db.agent("1001").state, AgentState::LoggedOut);
    dial_and_wait(&phone, &format!("sip:*11*1002*5678@{}", n.sip));
    assert_eq!(db.agent("1002").device.as_deref(), Some("2001"));
    assert!(db.registered("2001") && db.registered("2002"));
}

/// Short registrations so baresip refreshes within seconds; baresip 1.0 only knows MD5.
const FAST_MD5: &str =
    "[registrar]\nmin_expires = 5\nmax_expires = 10\ndefault_expires = 10\nalgorithms = [\"MD5\"]\n";

#[test]
fn register_guessing_is_banned_while_real_phones_register() {
    let (dir, n, db) = node("attack-register", "127.0.33.2", FAST_MD5);
    device_add(&n, "1001", "secret", false);
    device_add(&n, "1002", "other-secret", false);
    let phone = Phone::start(&dir, "127.0.33.42", "1001", "secret", &n);
    wait_registered(&db, "1001", &phone);
    let binding = |aor: &str| {
        db.block(db.store.registrations(aor, callfleet::now_ms()))
            .expect("read registrations")
    };
    let before = binding("1001");
    assert_eq!(before.len(), 1, "{before:?}");

    // 1,000 wrong passwords for 1001 from one address, as fast as it can send them.
    let mut thief = RawPhone::new("127.0.33.68", n.sip, "1001", "not-the-password");
    let first = thief.register().expect("an answer");
    assert_eq!(first.status, 403, "{}", first.text);
    let challenge = thief.register_challenge().expect("a challenge");
    // In bursts of 111 sent at once, each burst's answers read before the next: a burst of
    // all 999 can overflow a loopback socket's buffer on a busy host (a lost datagram, not a
    // guess left unanswered).
    let mut answers = vec![];
    for burst in 1..=9 {
        for _ in 0..111 {
            thief.register_with(&challenge);
        }
        while let Some(r) = thief.uac.recv(Duration::from_secs(5)) {
            answers.push(r.status);
            if answers.len() == burst * 111 {
                break;
            }
        }
    }
    // 403 once banned; 503 (try again later) for a guess that found the ten checks in flight
    // and could not wait for them (too many waiting already).
    assert!(answers.iter().all(|&s| s == 403 || s == 503), "{answers:?}");
    assert_eq!(answers.len(), 999, "every guess answered");
    // Only the first ten were checked; the rest were refused unchecked.
    for (series, want) in [
        ("callfleet_auth_failures_total{kind=\"register\"}", 10.0),
        (
            "callfleet_auth_bans_total{kind=\"register\",scope=\"source\"}",
            1.0,
        ),
        (
            "callfleet_auth_bans_total{kind=\"register\",scope=\"subject\"}",
            1.0,
        ),
    ] {
        assert_eq!(n.metric(series), want, "{series}");
    }
    let refused = n.metric("callfleet_auth_refused_total{kind=\"register\"}")
        + n.metric("callfleet_auth_busy_total{kind=\"register\",outcome=\"refused\"}");
    assert!(refused >= 990.0, "refused unchecked: {refused}");
    let log = n.log_text();
    assert_eq!(
        log.matches("from this address: banned").count(),
        1,
        "logged once"
    );
    assert_eq!(
        log.matches("for this extension: banned").count(),
        1,
        "logged once"
    );
    assert!(
        log.matches("REGISTER refused").count() <= 10,
        "not one line per guess"
    );

    // The phone that has 1001 keeps refreshing its binding from its own address ...
    let refreshed = wait_until(Duration::from_secs(20), || {
        binding("1001")
            .first()
            .is_some_and(|b| b.call_id == before[0].call_id && b.cseq > before[0].cseq + 1)
    });
    assert!(
        refreshed.is_some(),
        "{:?}\n{}",
        binding("1001"),
        phone.log()
    );
    let after = binding("1001");
    assert_eq!(
        (
            after.len(),
            after[0].received.as_str(),
            after[0].contact.as_str()
        ),
        (1, "127.0.33.42:5060", before[0].contact.as_str()),
        "the binding is the phone's"
    );
    // ... and another phone, from another address, registers as usual.
    let other = Phone::start(&dir, "127.0.33.43", "1002", "other-secret", &n);
    wait_registered(&db, "1002", &other);
    // The banned address is refused anything, even with the right password.
    let mut right = RawPhone::new("127.0.33.68", n.sip, "1001", "secret");
    assert_eq!(right.register().map(|r| r.status), Some(403));
}

/// Sends a `freq` Hz PCMU tone from `sock` to `to`, 20 ms a packet, for `frames` packets.
fn send_tone(sock: &std::net::UdpSocket, to: std::net::SocketAddr, freq: f32, frames: usize) {
    for (i, f) in support::audio::pcmu_tone(freq, frames).iter().enumerate() {
        let mut pkt = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef];
        pkt[2..4].copy_from_slice(&(i as u16).to_be_bytes());
        pkt[4..8].copy_from_slice(&((i * 160) as u32).to_be_bytes());
        pkt.extend_from_slice(f);
        let _ = sock.send_to(&pkt, to);
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn rtp_from_a_third_address_neither_takes_the_stream_nor_reaches_a_voicemail() {
    let (dir, n, db) = node(
        "attack-rtp",
        "127.0.33.3",
        &format!(
            "voicemail_dir = \"{}\"\n",
            dir_of("attack-rtp").join("vm").display()
        ),
    );
    db.add_agent("1001", "1234");
    std::thread::sleep(Duration::from_millis(1500)); // the node reloads its config each second

    // A call to music on hold; before the caller sends anything, a third address sends RTP.
    let mut caller = support::uac::Uac::new("127.0.33.100", n.sip);
    let ok = caller
        .answered("777", "rtp-steal", Duration::from_secs(5))
        .expect("answered");
    let media = support::uac::Uac::media_addr(&ok);
    let stranger = std::net::UdpSocket::bind("127.0.33.201:0").expect("bind the stranger");
    send_tone(&stranger, media, 3000.0, 25);
    let heard = caller.rtp_for(Duration::from_secs(1));
    assert!(
        heard.len() >= 30,
        "the caller still gets the stream: {} packets",
        heard.len()
    );
    stranger
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut buf = [0u8; 2048];
    assert!(
        stranger.recv_from(&mut buf).is_err(),
        "the stranger is sent nothing"
    );
    assert!(n.metric("callfleet_rtp_ignored_total") >= 25.0);
    caller.in_dialog("BYE", "rtp-steal", &ok, None);

    // A message for agent 1001 (not logged in: voicemail at once); a third address sends a
    // 3000 Hz tone into the call from before the caller's first packet to the end.
    let mut caller = support::uac::Uac::new("127.0.33.101", n.sip);
    let ok = caller
        .answered("1001", "rtp-inject", Duration::from_secs(5))
        .expect("voicemail answers");
    let media = support::uac::Uac::media_addr(&ok);
    let injector = std::thread::spawn(move || {
        let sock = std::net::UdpSocket::bind("127.0.33.202:0").expect("bind the injector");
        send_tone(&sock, media, 3000.0, 400);
    });
    std::thread::sleep(Duration::from_millis(300));
    caller.talk(media, 1000.0, Duration::from_secs(6));
    caller.in_dialog("BYE", "rtp-inject", &ok, None);
    injector.join().expect("injector");
    let mut vms = vec![];
    wait_until(Duration::from_secs(10), || {
        vms = db
            .block(db.store.voicemails(Some("1001")))
            .expect("read voicemails");
        !vms.is_empty()
    });
    let [vm] = vms.as_slice() else {
        panic!("one voicemail: {vms:?}\n{}", n.log_text());
    };
    let (rate, samples) = support::audio::wav_samples(std::path::Path::new(&vm.path));
    let ours = support::audio::tone_share(&samples, 1000.0, rate);
    let theirs = support::audio::tone_share(&samples, 3000.0, rate);
    eprintln!(
        "voicemail: {} samples, 1000 Hz {ours:.3}, 3000 Hz {theirs:.3}",
        samples.len()
    );
    assert!(ours > 0.5, "the caller is recorded: {ours:.3}");
    assert!(theirs < 0.02, "the injected tone is not: {theirs:.3}");
    // Only the caller's packets: no more than the caller sent after the beep.
    assert!(samples.len() <= 6 * 8000, "{} samples", samples.len());
    drop(dir);
}

fn dir_of(test: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("it")
        .join(test)
}

#[test]
fn debug_logs_hold_no_credentials() {
    let dir = workdir("attack-logs");
    let db_url = format!("sqlite://{}", dir.join("cluster.db").display());
    let mut n = NodeProc::configure(
        &dir,
        NodeSpec {
            name: "solo",
            role: "main",
            ip: "127.0.33.5",
            db: &db_url,
            capacity: 20,
            extra: "",
        },
    );
    n.log_filter = "debug".into();
    n.spawn();
    let db = Db::connect(&db_url);
    device_add(&n, "2001", "phone-secret", false);
    device_add(&n, "2002", "raw-secret", false);
    db.add_agent("1001", "4321");
    let phone = Phone::start_with_ctrl(&dir, "127.0.33.45", "2001", "phone-secret", &n, 4444);
    wait_registered(&db, "2001", &phone);
    let since = callfleet::now_ms();
    dial_and_wait(&phone, &format!("sip:*11*1001*4321@{}", n.sip));
    assert_eq!(db.agent("1001").device.as_deref(), Some("2001"));
    let mut raw = RawPhone::new("127.0.33.69", n.sip, "2002", "raw-secret");
    assert_eq!(raw.register().map(|r| r.status), Some(200));
    let (statuses, bye) = raw_call(&mut raw, "*12", "2002", "log-12", true);
    assert_eq!((statuses, bye), (vec![407, 200], true));
    assert_eq!(raw.responses.len(), 2);

    let log = n.log_text();
    // The SIP stack did log the messages, with their credentials hidden.
    assert!(
        log.contains("Authorization: <redacted>"),
        "no redacted header in the debug log"
    );
    assert!(log.contains("Proxy-Authorization: <redacted>"));
    for response in &raw.responses {
        assert!(
            !log.contains(response.as_str()),
            "digest response {response} in the log"
        );
    }
    let digest_response = log
        .lines()
        .find(|l| l.contains("response=\\\"") && !l.contains("response=\\\"<redacted>"));
    assert!(digest_response.is_none(), "{digest_response:?}");
    for secret in [
        "phone-secret",
        "raw-secret",
        "*11*1001*4321",
        "%2A11%2A1001%2A4321",
    ] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
    assert!(
        log.contains("*11*1001*<redacted>"),
        "the dialled code is logged, its PIN hidden"
    );
    // The CDR keeps the number dialled without the PIN.
    let cdrs = db.block(db.store.cdrs_since(since)).expect("read CDRs");
    let login = cdrs
        .iter()
        .find(|c| c.to_uri.contains("*11*1001"))
        .unwrap_or_else(|| panic!("the login's CDR: {cdrs:?}"));
    assert_eq!(login.to_uri, format!("sip:*11*1001*<redacted>@{}", n.sip));
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Leaves a message of `secs` seconds for `mailbox` from `caller`.
fn leave_message(caller: &mut support::uac::Uac, mailbox: &str, call_id: &str, secs: u64) {
    let ok = caller
        .answered(mailbox, call_id, Duration::from_secs(5))
        .expect("voicemail answers");
    assert!(ok.body().contains("m=audio"), "{call_id}: {}", ok.text);
    caller.talk(
        support::uac::Uac::media_addr(&ok),
        1000.0,
        Duration::from_secs(secs),
    );
    caller.in_dialog("BYE", call_id, &ok, None);
    let bye = caller
        .recv_final(Duration::from_secs(3))
        .expect("BYE answered");
    assert_eq!(bye.status, 200, "{}", bye.text);
}

#[cfg(unix)]
#[test]
fn files_are_private_and_a_full_mailbox_records_nothing() {
    let vm_dir = dir_of("attack-files").join("vm");
    let (dir, n, db) = node(
        "attack-files",
        "127.0.33.6",
        &format!(
            "voicemail_dir = \"{}\"\nvoicemail_max_messages = 2\n",
            vm_dir.display()
        ),
    );
    db.add_agent("1001", "1234");
    db.add_agent("1002", "5678");
    std::thread::sleep(Duration::from_millis(1500)); // the node reloads its config each second
                                                     // The database the node created, with its WAL files: its owner's only.
    for name in ["cluster.db", "cluster.db-wal", "cluster.db-shm"] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }

    // A stranger fills 1001's mailbox (two messages here), then tries a third.
    let since = callfleet::now_ms();
    let mut caller = support::uac::Uac::new("127.0.33.103", n.sip);
    leave_message(&mut caller, "1001", "vm-fill-1", 3);
    leave_message(&mut caller, "1001", "vm-fill-2", 3);
    let listed = |mailbox: &str| {
        db.block(db.store.voicemails(Some(mailbox)))
            .expect("read voicemails")
    };
    let two = wait_until(Duration::from_secs(10), || listed("1001").len() == 2);
    assert!(two.is_some(), "{:?}", listed("1001"));
    let ok = caller
        .answered("1001", "vm-full", Duration::from_secs(5))
        .expect("answered");
    let heard = caller.rtp_for(Duration::from_millis(500));
    assert!(
        !heard.is_empty(),
        "the caller hears the mailbox-full prompt"
    );
    let bye = caller.answer_request("BYE", Duration::from_secs(10));
    assert!(bye.is_some(), "the node hangs up after the prompt");
    let _ = ok;
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(listed("1001").len(), 2, "nothing recorded over quota");
    let files: Vec<_> = std::fs::read_dir(vm_dir.join("1001"))
        .expect("mailbox folder")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    assert_eq!(n.metric("callfleet_voicemail_full_total"), 1.0);
    let full = wait_until(Duration::from_secs(5), || {
        db.block(db.store.cdrs_since(since))
            .expect("read CDRs")
            .iter()
            .any(|c| c.call_id == "vm-full" && c.hangup_cause.as_str() == "voicemail_full")
    });
    assert!(full.is_some(), "CDR with cause voicemail_full");

    // Another agent's mailbox is untouched by it.
    leave_message(&mut caller, "1002", "vm-other", 2);
    let other = wait_until(Duration::from_secs(10), || listed("1002").len() == 1);
    assert!(other.is_some());
    // Recordings and their folders: no access for others.
    for vm in listed("1001").iter().chain(&listed("1002")) {
        let path = std::path::Path::new(&vm.path);
        assert_eq!(mode(path) & 0o037, 0, "{} is {:o}", vm.path, mode(path));
        let folder = path.parent().expect("mailbox folder");
        assert_eq!(
            mode(folder) & 0o027,
            0,
            "{} is {:o}",
            folder.display(),
            mode(folder)
        );
    }
    assert_eq!(mode(&vm_dir) & 0o027, 0);
}
